package state

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	neturl "net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisTimeout is the deadline of one Redis store call. A decision
// is one round trip on loopback or in a data centre (well under a
// millisecond); a Redis slower than this is treated as unavailable.
const DefaultRedisTimeout = 250 * time.Millisecond

// RedisOptions configures NewRedis.
type RedisOptions struct {
	// Prefix starts every key; "" means "hellosim:". Instances that share
	// state use the same prefix. It may not hold '{' or '}', which would
	// move every key of a Redis Cluster to one slot.
	Prefix string
	// Timeout bounds each call (dial, script, answer); 0 means
	// DefaultRedisTimeout.
	Timeout time.Duration
	// Clock overrides the Redis server's clock, for tests that move time;
	// nil (production) decides with the server's TIME. A Clock is read
	// when the call starts, not when the script runs: a call that waits
	// for a connection through a Redis restart sets the new epoch to a
	// reading from before the restart. The server's TIME has no such gap.
	Clock func() time.Time
	// Observe, when set, is called after every call with its operation
	// ("admit", "fail", "epoch", "ping"), duration and error (nil on
	// success): a place to hang latency metrics.
	Observe func(op string, d time.Duration, err error)
}

// Redis is a Store in Redis, shared by every instance of a service that
// uses the same server (or cluster) and prefix. Each Admit and Fail is one
// Lua script, atomic on the server and one round trip (two after a Redis
// restart, when the script cache is empty). On a Redis Cluster every key
// of a script carries its partition as the hash tag, so each decision runs
// on the one shard that holds the partition. It is safe for concurrent
// use.
type Redis struct {
	c       redis.UniversalClient
	prefix  string
	timeout time.Duration
	clock   func() time.Time
	observe func(string, time.Duration, error)
	scripts scripts
	// slotTags is nil on a single Redis, whose one epoch covers every
	// key. On a cluster, where each shard can lose its keys alone, every
	// hash slot has an epoch of its own, and slotTags names a hash tag of
	// each slot to spell that epoch's key.
	slotTags []string
}

var _ Store = (*Redis)(nil)

//go:embed admit.lua
var admitLua string

//go:embed fail.lua
var failLua string

// scripts are the store's Lua scripts, made once per store (no package
// state); go-redis runs them by SHA-1 and loads them again after a Redis
// restart has emptied its script cache.
type scripts struct{ admit, fail *redis.Script }

// NewRedis connects to the Redis at url: "redis://host:port/db",
// "rediss://" for TLS, "unix:///path/to/socket?db=N", or a Redis Cluster
// as "redis+cluster://host:port,host:port,…" ("rediss+cluster://" for TLS;
// any node will do, the client learns the others). A password in the URL is
// the caller's to supply. It does not dial: the first call does, and a
// Redis that is down makes calls fail with ErrStoreUnavailable until it is
// back.
func NewRedis(url string, o RedisOptions) (*Redis, error) {
	if strings.ContainsAny(o.Prefix, "{}") {
		return nil, fmt.Errorf("state: redis prefix %q holds a brace", o.Prefix)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultRedisTimeout
	}
	r := &Redis{
		prefix:  o.Prefix,
		timeout: o.Timeout,
		clock:   o.Clock,
		observe: o.Observe,
		scripts: newScripts(),
	}
	if r.prefix == "" {
		r.prefix = "hellosim:"
	}
	if scheme, _, ok := strings.Cut(url, "://"); ok && strings.HasSuffix(scheme, "+cluster") {
		opt, err := parseClusterURL(url)
		if err != nil {
			return nil, err
		}
		deadline(o.Timeout, &opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, &opt.PoolTimeout)
		opt.ContextTimeoutEnabled, opt.MaxRetries = true, -1
		// The cluster client follows a MOVED answer and retries a dropped
		// connection in one loop, bounded by MaxRedirects: a script whose
		// answer was lost would run twice. So neither: a moved slot or a
		// lost answer is one 503, and the client reloads the slot map for
		// the next call.
		opt.MaxRedirects = -1
		r.c = redis.NewClusterClient(opt)
		r.slotTags = slotTags()
		return r, nil
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		// The URL may hold a password: do not repeat it.
		return nil, errors.New("state: redis URL: not a redis://, rediss://, unix:// or redis+cluster:// URL")
	}
	deadline(o.Timeout, &opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, &opt.PoolTimeout)
	// No automatic retries: a script whose answer was lost may have run,
	// and a decision must be made once. The caller answers 503 instead.
	opt.ContextTimeoutEnabled, opt.MaxRetries = true, -1
	r.c = redis.NewClient(opt)
	return r, nil
}

// deadline sets each of a client's timeouts (dial, read, write, waiting
// for a pooled connection) to d: the store's one deadline per call.
func deadline(d time.Duration, timeouts ...*time.Duration) {
	for _, t := range timeouts {
		*t = d
	}
}

// parseClusterURL reads "redis+cluster://[user:password@]host:port,host:port…[?options]"
// (or rediss+cluster) into go-redis's cluster options: the first node is
// the URL's host, the others become addr parameters.
func parseClusterURL(raw string) (*redis.ClusterOptions, error) {
	// The URL may hold a password: errors do not repeat it.
	bad := errors.New("state: redis URL: not a redis+cluster://host:port,host:port… URL")
	u, err := neturl.Parse(raw)
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, bad
	}
	u.Scheme = strings.TrimSuffix(u.Scheme, "+cluster")
	hosts := strings.Split(u.Host, ",")
	u.Host, u.Path = hosts[0], ""
	q := u.Query()
	for _, h := range hosts[1:] {
		if h == "" {
			return nil, bad
		}
		q.Add("addr", h)
	}
	u.RawQuery = q.Encode()
	opt, err := redis.ParseClusterURL(u.String())
	if err != nil {
		return nil, bad
	}
	return opt, nil
}

func newScripts() scripts {
	return scripts{admit: redis.NewScript(admitLua), fail: redis.NewScript(failLua)}
}

// run calls f under the store's deadline and turns every failure into an
// *UnavailableError.
func (r *Redis) run(ctx context.Context, op string, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	start := time.Now()
	err := f(ctx)
	if r.observe != nil {
		r.observe(op, time.Since(start), err)
	}
	if err == nil {
		return nil
	}
	if errors.Is(err, redis.ErrClosed) {
		return ErrStoreClosed
	}
	return &UnavailableError{Op: op, Err: err}
}

// nowArg is the script's clock argument: "" for the server's TIME.
func (r *Redis) nowArg() string {
	if r.clock == nil {
		return ""
	}
	return strconv.FormatInt(r.clock().UnixMilli(), 10)
}

// key is the Redis key of a lockout ("l"), failure window ("f"), bucket
// ("b") or one-time ID ("r") in partition. The partition is the key's
// hash tag, so that all of a partition's keys share one cluster slot; a
// key without a partition is its own tag, so that a failure window and its
// lockout still do. Neither holds a brace (Admission.check).
func (r *Redis) key(kind, partition, key string) string {
	if partition == "" {
		return r.prefix + kind + ":{" + key + "}"
	}
	return r.prefix + kind + ":{" + partition + "}:" + key
}

// onceKey keeps only a hash of the ID.
func (r *Redis) onceKey(partition string, o Once) string {
	h := sha256.Sum256([]byte(o.ID))
	return r.key("r", partition, base64.RawURLEncoding.EncodeToString(h[:idSize]))
}

// epochKey is the key of the epoch that covers keys (one slot's keys; the
// first decides): the store's one epoch on a single Redis, the slot's on a
// cluster. Without keys it is the epoch of partition's slot, or of an
// arbitrary but fixed slot when partition is empty too.
func (r *Redis) epochKey(partition string, keys []string) string {
	if r.slotTags == nil {
		return r.prefix + "epoch"
	}
	var slot int
	switch {
	case len(keys) > 0:
		slot = keySlot(keys[0])
	case partition != "":
		slot = keySlot("{" + partition + "}")
	}
	return r.prefix + "epoch:{" + r.slotTags[slot] + "}"
}

// oneSlot makes sure a script's keys share a hash slot, as a cluster
// requires; on a single Redis any keys do. Admission.check's rules make it
// so; this catches a store whose key layout broke them before the cluster
// refuses with CROSSSLOT.
func (r *Redis) oneSlot(keys []string) error {
	if r.slotTags == nil || len(keys) == 0 {
		return nil
	}
	s := keySlot(keys[0])
	for _, k := range keys[1:] {
		if keySlot(k) != s {
			return fmt.Errorf("%w: keys of one decision span Redis Cluster hash slots", ErrInvalidAdmission)
		}
	}
	return nil
}

// Admit implements Store.
func (r *Redis) Admit(ctx context.Context, a Admission) (Verdict, error) {
	if err := a.check(); err != nil {
		return Verdict{}, err
	}
	keys := make([]string, 1, 1+len(a.Locks)+len(a.Once)+len(a.Buckets))
	for _, k := range a.Locks {
		keys = append(keys, r.key("l", a.Partition, k))
	}
	for _, o := range a.Once {
		keys = append(keys, r.onceKey(a.Partition, o))
	}
	for _, b := range a.Buckets {
		keys = append(keys, r.key("b", a.Partition, b.Key))
	}
	keys[0] = r.epochKey(a.Partition, keys[1:])
	if err := r.oneSlot(keys); err != nil {
		return Verdict{}, err
	}
	issued := ""
	if !a.IssuedAt.IsZero() {
		issued = strconv.FormatInt(a.IssuedAt.UnixMilli(), 10)
	}
	args := make([]any, 0, 5+len(a.Once)+2*len(a.Buckets))
	args = append(args, r.nowArg(), issued, len(a.Locks), len(a.Once), len(a.Buckets))
	for _, o := range a.Once {
		args = append(args, o.Expires.UnixMilli())
	}
	for _, b := range a.Buckets {
		args = append(args, b.Limit.Burst, b.Limit.Per.Milliseconds())
	}
	var res []int64
	err := r.run(ctx, "admit", func(ctx context.Context) error {
		var err error
		res, err = r.scripts.admit.Run(ctx, r.c, keys, args...).Int64Slice()
		if err == nil && len(res) != 3 {
			err = fmt.Errorf("admit script answered %d values", len(res))
		}
		return err
	})
	if err != nil {
		return Verdict{}, err
	}
	v := Verdict{Outcome: Outcome(res[0]), Index: int(res[1]), RetryAfter: time.Duration(res[2]) * time.Millisecond}
	if v.Outcome < Admitted || v.Outcome > RateLimited {
		return Verdict{}, &UnavailableError{Op: "admit", Err: fmt.Errorf("admit script answered outcome %d", res[0])}
	}
	return v, nil
}

// Fail implements Store.
func (r *Redis) Fail(ctx context.Context, partition, key string, p Lockout) (Failures, error) {
	if err := checkFailure(partition, key, p); err != nil {
		return Failures{}, err
	}
	keys := []string{r.key("f", partition, key), r.key("l", partition, key)}
	if err := r.oneSlot(keys); err != nil {
		return Failures{}, err
	}
	args := []any{r.nowArg(), p.Failures, p.Window.Milliseconds(), p.Base.Milliseconds(), p.Max.Milliseconds(), p.keep()}
	var res []int64
	err := r.run(ctx, "fail", func(ctx context.Context) error {
		var err error
		res, err = r.scripts.fail.Run(ctx, r.c, keys, args...).Int64Slice()
		if err == nil && len(res) != 2 {
			err = fmt.Errorf("fail script answered %d values", len(res))
		}
		return err
	})
	if err != nil {
		return Failures{}, err
	}
	out := Failures{Count: int(res[0])}
	if res[1] > 0 {
		out.LockedUntil = time.UnixMilli(res[1])
	}
	return out, nil
}

// Epoch implements Store.
func (r *Redis) Epoch(ctx context.Context, partition string) (time.Time, error) {
	if err := checkPartition(partition); err != nil {
		return time.Time{}, err
	}
	var ms int64
	err := r.run(ctx, "epoch", func(ctx context.Context) error {
		var err error
		ms, err = r.c.Get(ctx, r.epochKey(partition, nil)).Int64()
		if errors.Is(err, redis.Nil) {
			ms, err = 0, nil
		}
		return err
	})
	if err != nil || ms == 0 {
		return time.Time{}, err
	}
	return time.UnixMilli(ms), nil
}

// Ping implements Store.
func (r *Redis) Ping(ctx context.Context) error {
	return r.run(ctx, "ping", func(ctx context.Context) error { return r.c.Ping(ctx).Err() })
}

// Close implements Store.
func (r *Redis) Close() error { return r.c.Close() }
