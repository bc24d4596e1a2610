package state

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/internal/clocktest"
)

// The behaviour every Store has, run against each implementation.
var storeCases = []struct {
	name string
	run  func(t *testing.T, s Store, c *clocktest.Clock)
}{
	{"FirstUseWins", testFirstUseWins},
	{"PartitionsAreSeparate", testPartitionsAreSeparate},
	{"IDForgottenAtExpiry", testIDForgottenAtExpiry},
	{"ExpiredIDRefused", testExpiredIDRefused},
	{"SameIDTwiceInOneAdmission", testSameIDTwice},
	{"BucketLimitsAndRefills", testBucket},
	{"RefusalSpendsNothing", testRefusalSpendsNothing},
	{"LockoutEscalates", testLockoutEscalates},
	{"FailureWindowSlides", testFailureWindowSlides},
	{"BeforeEpochRefused", testBeforeEpoch},
	{"InvalidAdmission", testInvalidAdmission},
	{"ConcurrentUseOneWinner", testConcurrentOneWinner},
}

func runStoreCases(t *testing.T, mk maker) {
	for _, tc := range storeCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newFakeClock()
			tc.run(t, mk(t, c.Now), c)
		})
	}
}

func TestMemoryStore(t *testing.T) { runStoreCases(t, memoryMaker) }
func TestRedisStore(t *testing.T)  { runStoreCases(t, redisMaker) }

func admit(t *testing.T, s Store, a Admission) Verdict {
	t.Helper()
	v, err := s.Admit(context.Background(), a)
	require.NoError(t, err)
	return v
}

func once(c *clocktest.Clock, id string) Once {
	return Once{ID: id, Expires: c.Now().Add(10 * time.Minute)}
}

func testFirstUseWins(t *testing.T, s Store, c *clocktest.Clock) {
	a := Admission{Partition: "tenant-a", IssuedAt: c.Now(), Once: []Once{once(c, "jti-1")}}
	assert.Equal(t, Verdict{Outcome: Admitted}, admit(t, s, a))
	assert.Equal(t, Verdict{Outcome: Replayed}, admit(t, s, a))
	c.Advance(9 * time.Minute)
	assert.Equal(t, Replayed, admit(t, s, a).Outcome, "remembered until it expires")
}

func testPartitionsAreSeparate(t *testing.T, s Store, c *clocktest.Clock) {
	assert.Equal(t, Admitted, admit(t, s, Admission{Partition: "tenant-a", Once: []Once{once(c, "jti-1")}}).Outcome)
	assert.Equal(t, Admitted, admit(t, s, Admission{Partition: "tenant-b", Once: []Once{once(c, "jti-1")}}).Outcome,
		"the same ID in another tenant is another record")
	// Lockouts and buckets live in their partition too.
	p := Lockout{Failures: 1, Window: time.Hour, Base: time.Minute, Max: time.Minute}
	_, err := s.Fail(context.Background(), "tenant-a", "user", p)
	require.NoError(t, err)
	assert.Equal(t, LockedOut, admit(t, s, Admission{Partition: "tenant-a", Locks: []string{"user"}}).Outcome)
	assert.Equal(t, Admitted, admit(t, s, Admission{Partition: "tenant-b", Locks: []string{"user"}}).Outcome,
		"a lockout in one tenant is not one in another")
	one := []Bucket{{Key: "b", Limit: Limit{Burst: 1, Per: time.Hour}}}
	assert.Equal(t, Admitted, admit(t, s, Admission{Partition: "tenant-a", Buckets: one}).Outcome)
	assert.Equal(t, RateLimited, admit(t, s, Admission{Partition: "tenant-a", Buckets: one}).Outcome)
	assert.Equal(t, Admitted, admit(t, s, Admission{Partition: "tenant-b", Buckets: one}).Outcome,
		"a bucket in one tenant is not one in another")
}

func testIDForgottenAtExpiry(t *testing.T, s Store, c *clocktest.Clock) {
	o := once(c, "jti")
	assert.Equal(t, Admitted, admit(t, s, Admission{Partition: "t", Once: []Once{o}}).Outcome)
	c.Advance(10 * time.Minute)
	o.Expires = c.Now().Add(time.Minute)
	assert.Equal(t, Admitted, admit(t, s, Admission{Partition: "t", Once: []Once{o}}).Outcome,
		"an ID is remembered until its expiry and no longer")
}

func testExpiredIDRefused(t *testing.T, s Store, c *clocktest.Clock) {
	o := Once{ID: "jti", Expires: c.Now()}
	assert.Equal(t, Verdict{Outcome: Expired}, admit(t, s, Admission{Partition: "t", Once: []Once{once(c, "other"), o}}).withIndex(1))
	assert.Equal(t, Admitted, admit(t, s, Admission{Partition: "t", Once: []Once{once(c, "other")}}).Outcome,
		"the refusal recorded nothing")
}

// withIndex lets a table line read naturally: the verdict, minus its index
// once checked.
func (v Verdict) withIndex(i int) Verdict {
	if v.Index == i {
		v.Index = 0
	} else {
		v.Index = -1
	}
	return v
}

func testSameIDTwice(t *testing.T, s Store, c *clocktest.Clock) {
	v := admit(t, s, Admission{Partition: "t", Once: []Once{once(c, "x"), once(c, "x")}})
	assert.Equal(t, Verdict{Outcome: Replayed, Index: 1}, v)
	assert.Equal(t, Admitted, admit(t, s, Admission{Partition: "t", Once: []Once{once(c, "x")}}).Outcome)
}

func testBucket(t *testing.T, s Store, c *clocktest.Clock) {
	b := []Bucket{{Key: "user:1", Limit: Limit{Burst: 3, Per: 3 * time.Second}}}
	for i := range 3 {
		assert.Equal(t, Admitted, admit(t, s, Admission{Buckets: b}).Outcome, "request %d", i)
	}
	v := admit(t, s, Admission{Buckets: b})
	assert.Equal(t, RateLimited, v.Outcome)
	assert.Equal(t, time.Second, v.RetryAfter)
	c.Advance(500 * time.Millisecond)
	v = admit(t, s, Admission{Buckets: b})
	assert.Equal(t, RateLimited, v.Outcome)
	assert.Equal(t, 500*time.Millisecond, v.RetryAfter)
	c.Advance(500 * time.Millisecond)
	assert.Equal(t, Admitted, admit(t, s, Admission{Buckets: b}).Outcome)
	// Another key has its own bucket; a key named twice draws twice.
	two := []Bucket{{Key: "addr", Limit: Limit{Burst: 1, Per: time.Second}}, {Key: "addr", Limit: Limit{Burst: 1, Per: time.Second}}}
	assert.Equal(t, Verdict{Outcome: RateLimited, Index: 1, RetryAfter: time.Second}, admit(t, s, Admission{Partition: "t", Buckets: two}))
}

func testRefusalSpendsNothing(t *testing.T, s Store, c *clocktest.Clock) {
	lim := Limit{Burst: 1, Per: time.Minute}
	user := Bucket{Key: "user", Limit: lim}
	require.Equal(t, Admitted, admit(t, s, Admission{Partition: "t", Once: []Once{once(c, "used")}}).Outcome)
	// A replay does not draw from the bucket.
	v := admit(t, s, Admission{Partition: "t", Once: []Once{once(c, "used")}, Buckets: []Bucket{user}})
	assert.Equal(t, Replayed, v.Outcome)
	// Only the second bucket is empty: the first is not drawn, the ID not recorded.
	empty := Bucket{Key: "addr", Limit: lim}
	require.Equal(t, Admitted, admit(t, s, Admission{Partition: "t", Buckets: []Bucket{empty}}).Outcome)
	v = admit(t, s, Admission{Partition: "t", Once: []Once{once(c, "fresh")}, Buckets: []Bucket{user, empty}})
	assert.Equal(t, RateLimited, v.Outcome)
	assert.Equal(t, 1, v.Index)
	assert.Equal(t, Admitted, admit(t, s, Admission{Partition: "t", Once: []Once{once(c, "fresh")}, Buckets: []Bucket{user}}).Outcome,
		"the rate-limited request spent neither the user's token nor its ID")
	// A lockout refusal spends nothing either.
	p := Lockout{Failures: 1, Window: time.Hour, Base: time.Minute, Max: time.Minute}
	_, err := s.Fail(context.Background(), "t", "locked", p)
	require.NoError(t, err)
	v = admit(t, s, Admission{Partition: "t", Locks: []string{"other", "locked"}, Once: []Once{once(c, "after-lock")}})
	assert.Equal(t, Verdict{Outcome: LockedOut, Index: 1, RetryAfter: time.Minute}, v)
	c.Advance(time.Minute)
	assert.Equal(t, Admitted, admit(t, s, Admission{Partition: "t", Locks: []string{"locked"}, Once: []Once{once(c, "after-lock")}}).Outcome)
}

func testLockoutEscalates(t *testing.T, s Store, c *clocktest.Clock) {
	p := Lockout{Failures: 3, Window: time.Hour, Base: time.Minute, Max: 4 * time.Minute}
	ctx := context.Background()
	want := []time.Duration{0, 0, time.Minute, 2 * time.Minute, 4 * time.Minute, 4 * time.Minute}
	for i, d := range want {
		f, err := s.Fail(ctx, "t", "user", p)
		require.NoError(t, err)
		assert.Equal(t, i+1, f.Count)
		if d == 0 {
			assert.True(t, f.LockedUntil.IsZero(), "failure %d: no lockout yet", i+1)
			assert.Equal(t, Admitted, admit(t, s, Admission{Partition: "t", Locks: []string{"user"}}).Outcome)
		} else {
			assert.WithinDuration(t, c.Now().Add(d), f.LockedUntil, 0, "failure %d", i+1)
			assert.Equal(t, Verdict{Outcome: LockedOut, RetryAfter: d}, admit(t, s, Admission{Partition: "t", Locks: []string{"user"}}))
		}
		c.Advance(time.Second)
	}
	f, err := s.Fail(ctx, "t", "someone-else", p)
	require.NoError(t, err)
	assert.Equal(t, Failures{Count: 1}, f, "failures are counted per key")
}

func testFailureWindowSlides(t *testing.T, s Store, c *clocktest.Clock) {
	p := Lockout{Failures: 3, Window: time.Hour, Base: time.Minute, Max: time.Minute}
	ctx := context.Background()
	for range 2 {
		_, err := s.Fail(ctx, "t", "user", p)
		require.NoError(t, err)
		c.Advance(40 * time.Minute)
	}
	// The first failure left the window 20 minutes ago.
	f, err := s.Fail(ctx, "t", "user", p)
	require.NoError(t, err)
	assert.Equal(t, Failures{Count: 2}, f)
	c.Advance(10 * time.Minute)
	f, err = s.Fail(ctx, "t", "user", p)
	require.NoError(t, err)
	assert.Equal(t, 3, f.Count)
	assert.WithinDuration(t, c.Now().Add(time.Minute), f.LockedUntil, 0)
}

func testBeforeEpoch(t *testing.T, s Store, c *clocktest.Clock) {
	ep, err := s.Epoch(context.Background(), "t")
	require.NoError(t, err)
	require.False(t, ep.IsZero())
	assert.Equal(t, c.Now().Add(-time.Hour).UnixMilli(), ep.UnixMilli())
	a := Admission{Partition: "t", IssuedAt: ep.Add(-time.Millisecond), Once: []Once{once(c, "old")}}
	assert.Equal(t, Verdict{Outcome: BeforeEpoch}, admit(t, s, a))
	a.IssuedAt = ep
	assert.Equal(t, Admitted, admit(t, s, a).Outcome, "the refusal recorded nothing")
}

func testInvalidAdmission(t *testing.T, s Store, c *clocktest.Clock) {
	ctx := context.Background()
	for name, a := range map[string]Admission{
		"empty lock":             {Locks: []string{""}},
		"empty partition":        {Once: []Once{{ID: "x", Expires: c.Now().Add(time.Hour)}}},
		"empty ID":               {Partition: "t", Once: []Once{{Expires: c.Now().Add(time.Hour)}}},
		"brace partition":        {Partition: "t}x", Locks: []string{"u"}},
		"NUL partition":          {Partition: "t\x00x", Locks: []string{"u"}},
		"brace lock":             {Partition: "t", Locks: []string{"{u}"}},
		"brace bucket":           {Buckets: []Bucket{{Key: "addr:{x", Limit: Limit{Burst: 1, Per: time.Second}}}},
		"two keys, no partition": {Locks: []string{"u"}, Buckets: []Bucket{{Key: "b", Limit: Limit{Burst: 1, Per: time.Second}}}},
		"empty bucket":           {Buckets: []Bucket{{Limit: Limit{Burst: 1, Per: time.Second}}}},
		"zero limit":             {Buckets: []Bucket{{Key: "k"}}},
	} {
		_, err := s.Admit(ctx, a)
		assert.ErrorIs(t, err, ErrInvalidAdmission, name)
	}
	_, err := s.Fail(ctx, "t", "k", Lockout{})
	assert.ErrorIs(t, err, ErrInvalidAdmission)
	_, err = s.Fail(ctx, "t", "", DefaultLockout())
	assert.ErrorIs(t, err, ErrInvalidAdmission)
	_, err = s.Fail(ctx, "t{", "k", DefaultLockout())
	assert.ErrorIs(t, err, ErrInvalidAdmission)
	_, err = s.Fail(ctx, "t", "k}", DefaultLockout())
	assert.ErrorIs(t, err, ErrInvalidAdmission)
}

func testConcurrentOneWinner(t *testing.T, s Store, c *clocktest.Clock) {
	const n = 32
	admitted, replayed := race(t, n, Admission{Partition: "t", Once: []Once{once(c, "contested")}}, s)
	assert.EqualValues(t, 1, admitted)
	assert.EqualValues(t, n-1, replayed)
}

// race admits a from n goroutines at once, goroutine i through
// stores[i%len(stores)], and counts the admissions and the replays.
func race(t *testing.T, n int, a Admission, stores ...Store) (admitted, replayed int32) {
	var adm, rep atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		s := stores[i%len(stores)]
		wg.Go(func() {
			v, err := s.Admit(context.Background(), a)
			if !assert.NoError(t, err) {
				return
			}
			switch v.Outcome {
			case Admitted:
				adm.Add(1)
			case Replayed:
				rep.Add(1)
			}
		})
	}
	wg.Wait()
	return adm.Load(), rep.Load()
}

func TestLockoutDuration(t *testing.T) {
	p := DefaultLockout()
	for n, want := range map[int]time.Duration{
		1: 0, 9: 0, 10: 15 * time.Minute, 11: 30 * time.Minute, 12: time.Hour,
		16: 16 * time.Hour, 17: 24 * time.Hour, 74: 24 * time.Hour, 1000: 24 * time.Hour,
	} {
		assert.Equal(t, want, p.duration(n), fmt.Sprint(n))
	}
}

func TestMemoryPartitionFullIsPerTenant(t *testing.T) {
	c := newFakeClock()
	m := NewMemory(MemoryOptions{Clock: c.Now, MaxPerPartition: 2})
	for i := range 2 {
		require.Equal(t, Admitted, admit(t, m, Admission{Partition: "noisy", Once: []Once{once(c, fmt.Sprint(i))}}).Outcome)
	}
	assert.Equal(t, Full, admit(t, m, Admission{Partition: "noisy", Once: []Once{once(c, "2")}}).Outcome)
	assert.Equal(t, Admitted, admit(t, m, Admission{Partition: "quiet", Once: []Once{once(c, "0")}}).Outcome,
		"one tenant filling its partition does not refuse another's")
}

func TestMemoryEpochIsItsStart(t *testing.T) {
	c := newFakeClock()
	m := NewMemory(MemoryOptions{Clock: c.Now})
	assert.Equal(t, BeforeEpoch, admit(t, m, Admission{IssuedAt: c.Now().Add(-time.Second)}).Outcome,
		"a restarted process refuses tokens issued before it started")
	require.NoError(t, m.Close())
	_, err := m.Admit(context.Background(), Admission{})
	assert.True(t, errors.Is(err, ErrStoreClosed))
}
