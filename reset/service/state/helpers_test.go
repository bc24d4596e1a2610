package state

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/internal/clocktest"
	"github.com/hellosim/hellosim/internal/redistest"
)

// newFakeClock is a clock tests move by hand.
func newFakeClock() *clocktest.Clock {
	return clocktest.New(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
}

// maker makes a fresh, empty store that decides with clock.
type maker func(t *testing.T, clock func() time.Time) Store

func memoryMaker(t *testing.T, clock func() time.Time) Store {
	m := NewMemory(MemoryOptions{Clock: clock, Epoch: clock().Add(-time.Hour)})
	t.Cleanup(func() { m.Close() })
	return m
}

// redisURL is the shared Redis of the run, or a skip.
func redisURL(t testing.TB) string { return redistest.URL(t) }

// testPrefix gives each test its own keyspace on the shared Redis.
func testPrefix(testing.TB) string { return redistest.Prefix() }

func newRedisStore(t testing.TB, url string, o RedisOptions) *Redis {
	t.Helper()
	if o.Timeout == 0 {
		o.Timeout = redistest.Timeout
	}
	r, err := NewRedis(url, o)
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	return r
}

// redisMaker makes a store on the shared Redis with a fresh prefix whose
// epoch is set an hour before clock's now, as a store that has been running.
func redisMaker(t *testing.T, clock func() time.Time) Store {
	url := redisURL(t)
	prefix := testPrefix(t)
	past := clock().Add(-time.Hour)
	seed := newRedisStore(t, url, RedisOptions{Prefix: prefix, Clock: func() time.Time { return past }})
	_, err := seed.Admit(context.Background(), Admission{})
	require.NoError(t, err, "set the epoch")
	return newRedisStore(t, url, RedisOptions{Prefix: prefix, Clock: clock})
}
