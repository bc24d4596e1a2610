package state

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Store is the state a PIN reset service shares across its instances.
// Implementations are safe for concurrent use. Every error means that no
// decision was made and nothing was recorded or spent: the caller refuses
// the request and releases nothing.
type Store interface {
	// Admit decides an admission atomically: it checks the epoch, the
	// lockouts, the one-time IDs and the buckets, in that order, and
	// either refuses (changing nothing) or records every ID and draws one
	// token from every bucket.
	Admit(ctx context.Context, a Admission) (Verdict, error)

	// Fail counts one failure for key (a lockout key of Admission.Locks)
	// in partition under p and returns the count in the window and the
	// lockout in force after it.
	Fail(ctx context.Context, partition, key string, p Lockout) (Failures, error)

	// Epoch returns the time from which the store remembers partition's
	// records: admissions issued before it are refused. It is zero when
	// nothing has been admitted there since the keyspace that holds them
	// was emptied (the next Admit sets it). The memory store and a single
	// Redis have one epoch for every partition; a Redis Cluster has one
	// per hash slot, lost with the slot's records.
	Epoch(ctx context.Context, partition string) (time.Time, error)

	// Ping reports whether the store answers, within ctx's deadline and
	// the store's own; for readiness checks.
	Ping(ctx context.Context) error

	// Close releases the store's connections.
	Close() error
}

// Admission is everything one decision depends on.
type Admission struct {
	// Partition is the tenant. Every lockout, one-time ID and bucket of
	// the admission lives in it: keys of one partition never meet those
	// of another, one partition's one-time IDs never crowd out another's,
	// and on a Redis Cluster the partition is the hash tag of every key,
	// so that the decision is one script on one shard. It may not hold
	// '{', '}' or NUL. An admission without a partition holds one lockout key
	// or one bucket at most and no one-time ID (the per-address bucket,
	// which spans tenants): its key is then a slot of its own.
	Partition string

	// IssuedAt is when the credential being admitted was issued (the
	// access token's iat). Admissions issued before the store's epoch are
	// refused with BeforeEpoch. The zero time skips the check (use it
	// only for requests that carry no one-time ID).
	IssuedAt time.Time

	// Locks are lockout keys (a user) that must not be locked out.
	Locks []string

	// Once are one-time IDs (the token's jti, the DPoP proof's jti) that
	// must not have been recorded before, and are recorded when admitted.
	Once []Once

	// Buckets are token buckets (per user, per client address, per
	// tenant) that must each hold a token; one is drawn from each when
	// admitted.
	Buckets []Bucket
}

// Once is a one-time ID within the admission's partition.
type Once struct {
	// ID is unique within the partition (a jti). The store keeps only a
	// hash of it.
	ID string
	// Expires is when the ID may be forgotten: the token's exp plus the
	// clock skew its verifier allows. An ID whose expiry has passed is
	// refused with Expired: the store could not remember it.
	Expires time.Time
}

// Bucket is a token bucket identified by Key under a Limit.
type Bucket struct {
	Key   string
	Limit Limit
}

// Limit is a token bucket's rule: Burst tokens at most, refilled at Burst
// per Per. Both must be positive.
type Limit struct {
	Burst int
	Per   time.Duration
}

func (l Limit) check() error {
	if l.Burst <= 0 || l.Per <= 0 {
		return fmt.Errorf("%w: limit %d per %s", ErrInvalidAdmission, l.Burst, l.Per)
	}
	return nil
}

// Lockout is a failure policy: the Failures-th failure within Window locks
// the key for Base; each further failure within the window locks it for
// twice as long as the one before, up to Max.
type Lockout struct {
	Failures int
	Window   time.Duration
	Base     time.Duration
	Max      time.Duration
}

// DefaultLockout: 10 failures in 24 hours lock a user for 15 minutes, then
// 30, 60, … up to 24 hours — the escrow services' cap of 10 guesses, with
// the lockout escalating instead of destroying the escrow.
func DefaultLockout() Lockout {
	return Lockout{Failures: 10, Window: 24 * time.Hour, Base: 15 * time.Minute, Max: 24 * time.Hour}
}

func (p Lockout) check() error {
	if p.Failures <= 0 || p.Window <= 0 || p.Base <= 0 || p.Max < p.Base {
		return fmt.Errorf("%w: lockout policy %+v", ErrInvalidAdmission, p)
	}
	return nil
}

// keep is how many failure times a window holds at most: enough for the
// lockout to reach Max long before, so a hammered key costs bounded memory.
func (p Lockout) keep() int { return p.Failures + 64 }

// duration is the lockout after the n-th failure in the window: zero below
// the threshold, Base at it, doubling after, at most Max.
func (p Lockout) duration(n int) time.Duration {
	if n < p.Failures {
		return 0
	}
	d := p.Base
	for i := p.Failures; i < n && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}

// Failures is the result of Fail.
type Failures struct {
	// Count is the number of failures in the window, this one included.
	Count int
	// LockedUntil is the end of the lockout in force, or zero.
	LockedUntil time.Time
}

// Outcome is what Admit decided.
type Outcome int

// The outcomes. Everything but Admitted is a refusal that changed nothing.
const (
	Admitted    Outcome = iota
	BeforeEpoch         // IssuedAt is before the store's epoch
	LockedOut           // Locks[Index] is locked out; RetryAfter says until when
	Replayed            // Once[Index] was recorded before
	Expired             // Once[Index] has already expired
	Full                // Once[Index]'s partition holds as many IDs as the store allows
	RateLimited         // Buckets[Index] is empty; RetryAfter says when a token is there
)

// String names the outcome.
func (o Outcome) String() string {
	switch o {
	case Admitted:
		return "admitted"
	case BeforeEpoch:
		return "before_epoch"
	case LockedOut:
		return "locked_out"
	case Replayed:
		return "replayed"
	case Expired:
		return "expired"
	case Full:
		return "full"
	case RateLimited:
		return "rate_limited"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Verdict is Admit's decision.
type Verdict struct {
	Outcome Outcome
	// Index is the position, in the Admission's Locks, Once or Buckets, of
	// the entry that refused; 0 when admitted or BeforeEpoch.
	Index int
	// RetryAfter is, for LockedOut and RateLimited, how long until the
	// same admission could pass.
	RetryAfter time.Duration
}

// Sentinel errors.
var (
	// ErrStoreUnavailable: the store did not answer (unreachable, too slow,
	// failed). No decision was made; refuse with 503 and retry later.
	ErrStoreUnavailable = errors.New("state: store unavailable")

	// ErrInvalidAdmission: an Admission or a policy the store cannot
	// decide (a limit or policy that is not positive, an empty key).
	ErrInvalidAdmission = errors.New("state: invalid admission")

	// ErrStoreClosed: the store was closed.
	ErrStoreClosed = errors.New("state: store closed")
)

// UnavailableError is the error of a store that did not answer. It
// matches ErrStoreUnavailable and wraps the cause (a timeout, a refused
// connection), which never contains a key or an ID.
type UnavailableError struct {
	Op  string // "admit", "fail", "epoch", "ping"
	Err error
}

// Error names the operation and the cause.
func (e *UnavailableError) Error() string {
	return fmt.Sprintf("state: %s: store unavailable: %v", e.Op, e.Err)
}

// Unwrap returns ErrStoreUnavailable and the cause.
func (e *UnavailableError) Unwrap() []error { return []error{ErrStoreUnavailable, e.Err} }

// check validates an admission before any state is touched.
func (a Admission) check() error {
	if err := checkPartition(a.Partition); err != nil {
		return err
	}
	if a.Partition == "" {
		if len(a.Once) > 0 {
			return fmt.Errorf("%w: one-time IDs without a partition", ErrInvalidAdmission)
		}
		if len(a.Locks)+len(a.Buckets) > 1 {
			return fmt.Errorf("%w: %d keys without a partition (one at most: they would span hash slots)",
				ErrInvalidAdmission, len(a.Locks)+len(a.Buckets))
		}
	}
	for _, k := range a.Locks {
		if err := checkKey("lockout", k); err != nil {
			return err
		}
	}
	for _, o := range a.Once {
		if o.ID == "" {
			return fmt.Errorf("%w: empty one-time ID", ErrInvalidAdmission)
		}
	}
	for _, b := range a.Buckets {
		if err := checkKey("bucket", b.Key); err != nil {
			return err
		}
		if err := b.Limit.check(); err != nil {
			return err
		}
	}
	return nil
}

// checkFailure validates Fail's arguments.
func checkFailure(partition, key string, p Lockout) error {
	if err := checkPartition(partition); err != nil {
		return err
	}
	if err := checkKey("failure", key); err != nil {
		return err
	}
	return p.check()
}

// checkKey refuses an empty key or one with a brace: a key without a
// partition is its own Redis Cluster hash tag.
func checkKey(what, k string) error {
	switch {
	case k == "":
		return fmt.Errorf("%w: empty %s key", ErrInvalidAdmission, what)
	case strings.ContainsAny(k, "{}"):
		return fmt.Errorf("%w: %s key holds a brace", ErrInvalidAdmission, what)
	}
	return nil
}

// checkPartition refuses a partition with a brace or a NUL: on a Redis
// Cluster a brace would end the hash tag early, and the keys of two
// partitions could then be spelt alike; the memory store ends a partition
// with a NUL.
func checkPartition(p string) error {
	if strings.ContainsAny(p, "{}\x00") {
		return fmt.Errorf("%w: partition %q holds a brace or a NUL", ErrInvalidAdmission, p)
	}
	return nil
}

// bucketState is a token bucket's content, shared by both stores'
// arithmetic (the Redis script mirrors it).
type bucketState struct {
	tokens float64
	last   time.Time
}

// refill returns the tokens in b at now under l.
func (b bucketState) refill(l Limit, now time.Time) float64 {
	burst := float64(l.Burst)
	el := now.Sub(b.last).Seconds()
	if el <= 0 {
		return min(b.tokens, burst)
	}
	return min(burst, b.tokens+el*burst/l.Per.Seconds())
}

// wait is how long until tokens reaches one under l.
func wait(l Limit, tokens float64) time.Duration {
	ms := (1 - tokens) * float64(l.Per.Milliseconds()) / float64(l.Burst)
	return time.Duration(math.Ceil(ms)) * time.Millisecond
}
