package state

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
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
	// state use the same prefix.
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
// uses the same server and prefix. Each Admit and Fail is one Lua script,
// atomic on the server and one round trip (two after a Redis restart, when
// the script cache is empty). It is safe for concurrent use.
type Redis struct {
	c       *redis.Client
	prefix  string
	timeout time.Duration
	clock   func() time.Time
	observe func(string, time.Duration, error)
	scripts scripts
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

// NewRedis connects to the Redis at url ("redis://host:port/db",
// "rediss://" for TLS, or "unix:///path/to/socket?db=N"; a password in the URL or in REDIS_PASSWORD-style
// configuration is the caller's to supply). It does not dial: the first
// call does, and a Redis that is down makes calls fail with ErrStoreUnavailable
// until it is back.
func NewRedis(url string, o RedisOptions) (*Redis, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		// The URL may hold a password: do not repeat it.
		return nil, errors.New("state: redis URL: not a redis://, rediss:// or unix:// URL")
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultRedisTimeout
	}
	opt.DialTimeout = o.Timeout
	opt.ReadTimeout = o.Timeout
	opt.WriteTimeout = o.Timeout
	opt.PoolTimeout = o.Timeout
	opt.ContextTimeoutEnabled = true
	// No automatic retries: a script whose answer was lost may have run,
	// and a decision must be made once. The caller answers 503 instead.
	opt.MaxRetries = -1
	r := &Redis{
		c:       redis.NewClient(opt),
		prefix:  o.Prefix,
		timeout: o.Timeout,
		clock:   o.Clock,
		observe: o.Observe,
		scripts: newScripts(),
	}
	if r.prefix == "" {
		r.prefix = "hellosim:"
	}
	return r, nil
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

func (r *Redis) epochKey() string { return r.prefix + "epoch" }

// onceKey keeps the partition as a Redis Cluster hash tag and only a hash
// of the ID.
func (r *Redis) onceKey(o Once) string {
	h := sha256.Sum256([]byte(o.ID))
	return r.prefix + "r:{" + o.Partition + "}:" + base64.RawURLEncoding.EncodeToString(h[:idSize])
}

// Admit implements Store.
func (r *Redis) Admit(ctx context.Context, a Admission) (Verdict, error) {
	if err := a.check(); err != nil {
		return Verdict{}, err
	}
	keys := make([]string, 0, 1+len(a.Locks)+len(a.Once)+len(a.Buckets))
	keys = append(keys, r.epochKey())
	for _, k := range a.Locks {
		keys = append(keys, r.prefix+"l:"+k)
	}
	for _, o := range a.Once {
		keys = append(keys, r.onceKey(o))
	}
	for _, b := range a.Buckets {
		keys = append(keys, r.prefix+"b:"+b.Key)
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
func (r *Redis) Fail(ctx context.Context, key string, p Lockout) (Failures, error) {
	if key == "" {
		return Failures{}, fmt.Errorf("%w: empty failure key", ErrInvalidAdmission)
	}
	if err := p.check(); err != nil {
		return Failures{}, err
	}
	keys := []string{r.prefix + "f:" + key, r.prefix + "l:" + key}
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
func (r *Redis) Epoch(ctx context.Context) (time.Time, error) {
	var ms int64
	err := r.run(ctx, "epoch", func(ctx context.Context) error {
		var err error
		ms, err = r.c.Get(ctx, r.epochKey()).Int64()
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
