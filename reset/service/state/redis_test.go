package state

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/internal/redistest"
)

// TestRedisTwoClientsRaceOneWins: two stores, as two service instances
// with their own connections, race on the same token ID with the server's
// clock: exactly one admission in every round.
func TestRedisTwoClientsRaceOneWins(t *testing.T) {
	url := redisURL(t)
	prefix := testPrefix(t)
	a := newRedisStore(t, url, RedisOptions{Prefix: prefix})
	b := newRedisStore(t, url, RedisOptions{Prefix: prefix})
	exp := time.Now().Add(time.Minute)
	for round := range 50 {
		o := Once{ID: fmt.Sprint("jti-", round), Expires: exp}
		admitted, replayed := race(t, 8, Admission{Partition: "tenant", Once: []Once{o}}, a, b)
		require.EqualValues(t, 1, admitted, "round %d", round)
		require.EqualValues(t, 7, replayed, "round %d", round)
	}
}

// TestRedisKilledAndRestarted: Redis dies mid-run; every call fails closed
// with ErrStoreUnavailable within the deadline; a restarted Redis (no
// persistence) is used again without a new store, and the epoch refuses
// every token issued before the restart, so the token admitted before the
// crash is not admitted twice.
func TestRedisKilledAndRestarted(t *testing.T) {
	p := redistest.Start(t)
	ctx := context.Background()
	s := newRedisStore(t, p.URL(), RedisOptions{Timeout: 200 * time.Millisecond})
	issued := time.Now().Add(-time.Second)
	used := Admission{Partition: "t", IssuedAt: issued, Once: []Once{{ID: "used-before-crash", Expires: time.Now().Add(time.Hour)}}}
	// The first admission after an empty keyspace sets the epoch to now,
	// which is after issued: so start with a store that has been running.
	_, err := s.Admit(ctx, Admission{})
	require.NoError(t, err)
	used.IssuedAt = time.Now()
	time.Sleep(5 * time.Millisecond)
	require.Equal(t, Admitted, admit(t, s, used).Outcome)
	require.Equal(t, Replayed, admit(t, s, used).Outcome)

	p.Kill()
	for _, call := range []func() error{
		func() error { _, err := s.Admit(ctx, used); return err },
		func() error { _, err := s.Fail(ctx, "t", "user", DefaultLockout()); return err },
		func() error { return s.Ping(ctx) },
	} {
		start := time.Now()
		err := call()
		assert.ErrorIs(t, err, ErrStoreUnavailable)
		var ue *UnavailableError
		assert.True(t, errors.As(err, &ue))
		assert.Less(t, time.Since(start), time.Second, "fails within the deadline")
	}

	p.Restart()
	var v Verdict
	require.Eventually(t, func() bool {
		v, err = s.Admit(ctx, used)
		return err == nil
	}, 5*time.Second, 20*time.Millisecond, "the store recovers by itself")
	assert.Equal(t, BeforeEpoch, v.Outcome, "the token used before the crash is refused: its record is gone, the epoch is new")
	ep, err := s.Epoch(ctx, "t")
	require.NoError(t, err)
	assert.True(t, ep.After(used.IssuedAt))
	fresh := Admission{Partition: "t", IssuedAt: time.Now(), Once: []Once{{ID: "issued-after", Expires: time.Now().Add(time.Hour)}}}
	assert.Equal(t, Admitted, admit(t, s, fresh).Outcome)
	assert.Equal(t, Replayed, admit(t, s, fresh).Outcome)
}

// TestRedisSlowIsUnavailable: a Redis that answers after the deadline is
// an unavailable one, and the decision it makes late is not reported as
// made.
func TestRedisSlowIsUnavailable(t *testing.T) {
	p := redistest.Start(t)
	ctx := context.Background()
	s := newRedisStore(t, p.URL(), RedisOptions{Timeout: 100 * time.Millisecond})
	require.NoError(t, s.Ping(ctx))
	bo, err := redis.ParseURL(p.URL())
	require.NoError(t, err)
	blocker := redis.NewClient(bo)
	defer blocker.Close()
	done := make(chan error, 1)
	go func() { done <- blocker.Do(ctx, "DEBUG", "SLEEP", "0.5").Err() }()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	_, err = s.Admit(ctx, Admission{Partition: "t", Once: []Once{{ID: "slow", Expires: time.Now().Add(time.Hour)}}})
	assert.ErrorIs(t, err, ErrStoreUnavailable)
	assert.Less(t, time.Since(start), 400*time.Millisecond)
	require.NoError(t, <-done)
	require.Eventually(t, func() bool { return s.Ping(ctx) == nil }, 2*time.Second, 10*time.Millisecond)
}

func TestRedisUnreachableIsUnavailable(t *testing.T) {
	redisURL(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	s := newRedisStore(t, "redis://"+addr+"/0", RedisOptions{Timeout: 100 * time.Millisecond})
	_, err = s.Admit(context.Background(), Admission{})
	assert.ErrorIs(t, err, ErrStoreUnavailable)
	assert.NotContains(t, err.Error(), "jti")
}

func TestRedisBadURL(t *testing.T) {
	_, err := NewRedis("http://user:s3cret@host/", RedisOptions{})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cret", "a password in the URL is not repeated")
}

// countingHook counts commands and round trips (a pipeline is one).
type countingHook struct{ cmds, trips atomic.Int64 }

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.cmds.Add(1)
		h.trips.Add(1)
		return next(ctx, cmd)
	}
}
func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.cmds.Add(int64(len(cmds)))
		h.trips.Add(1)
		return next(ctx, cmds)
	}
}

// TestRedisOneRoundTripPerDecision: Admit and Fail are one command each
// once the scripts are cached.
func TestRedisOneRoundTripPerDecision(t *testing.T) {
	url := redisURL(t)
	s := newRedisStore(t, url, RedisOptions{Prefix: testPrefix(t)})
	h := new(countingHook)
	s.c.AddHook(h)
	ctx := context.Background()
	a := recoverAdmission(0)
	_, err := s.Admit(ctx, a) // loads the script if needed
	require.NoError(t, err)
	_, err = s.Fail(ctx, tenant, user, DefaultLockout())
	require.NoError(t, err)
	h.trips.Store(0)
	_, err = s.Admit(ctx, recoverAdmission(1))
	require.NoError(t, err)
	assert.EqualValues(t, 1, h.trips.Load(), "admit")
	h.trips.Store(0)
	_, err = s.Fail(ctx, tenant, user, DefaultLockout())
	require.NoError(t, err)
	assert.EqualValues(t, 1, h.trips.Load(), "fail")
}

// The tenant and user of recoverAdmission.
const (
	tenant = "8f6ba4d2-5bd9-4e0a-9c43-0d1c6f2b7a11"
	user   = tenant + "/3b1e0c9a-7d44-4f2e-a8b5-6c2d9e1f0a37"
)

// recoverAdmission is the decision of a recover request (a request the
// service split in two asks for a part of it): the user's lockout, the
// token and DPoP jtis, and three buckets, all in the tenant's partition.
func recoverAdmission(i int) Admission {
	exp := time.Now().Add(time.Hour)
	return Admission{
		Partition: tenant,
		IssuedAt:  time.Now(),
		Locks:     []string{user},
		Once: []Once{
			{ID: fmt.Sprintf("token-jti-%d-AAAAAAAAAAAAAAAAAAAA", i), Expires: exp},
			{ID: fmt.Sprintf("dpop-jti-%d-AAAAAAAAAAAAAAAAAAAAA", i), Expires: exp},
		},
		Buckets: []Bucket{
			{Key: "user:" + user, Limit: Limit{Burst: 1 << 30, Per: time.Minute}},
			{Key: "addr:192.0.2.10", Limit: Limit{Burst: 1 << 30, Per: time.Second}},
			{Key: "tenant:" + tenant, Limit: Limit{Burst: 1 << 30, Per: time.Second}},
		},
	}
}

// TestRedisInstancesShareLimitsAndLockouts: three stores, as three service
// instances, draw from one bucket and count failures toward one lockout.
func TestRedisInstancesShareLimitsAndLockouts(t *testing.T) {
	url := redisURL(t)
	prefix := testPrefix(t)
	var inst [3]*Redis
	for i := range inst {
		inst[i] = newRedisStore(t, url, RedisOptions{Prefix: prefix})
	}
	ctx := context.Background()
	user := Bucket{Key: "user:u", Limit: Limit{Burst: 5, Per: time.Hour}}
	admitted := 0
	for i := range 9 {
		v, err := inst[i%3].Admit(ctx, Admission{Partition: "tenant", Buckets: []Bucket{user}})
		require.NoError(t, err)
		if v.Outcome == Admitted {
			admitted++
		} else {
			assert.Equal(t, RateLimited, v.Outcome)
		}
	}
	assert.Equal(t, 5, admitted, "the limit counts requests at every instance")

	p := Lockout{Failures: 10, Window: time.Hour, Base: time.Minute, Max: time.Hour}
	for i := range 10 {
		f, err := inst[i%3].Fail(ctx, "tenant", "u", p)
		require.NoError(t, err)
		assert.Equal(t, i+1, f.Count)
	}
	for _, s := range inst {
		v, err := s.Admit(ctx, Admission{Partition: "tenant", Locks: []string{"u"}})
		require.NoError(t, err)
		assert.Equal(t, LockedOut, v.Outcome, "locked out at one instance, locked out at all")
		assert.InDelta(t, time.Minute.Seconds(), v.RetryAfter.Seconds(), 1)
	}
}
