package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// maker makes a fresh, empty store that decides with clock.
type maker func(t *testing.T, clock func() time.Time) Store

func memoryMaker(t *testing.T, clock func() time.Time) Store {
	m := NewMemory(MemoryOptions{Clock: clock, Epoch: clock().Add(-time.Hour)})
	t.Cleanup(func() { m.Close() })
	return m
}

// redisURL is the shared Redis of the run, or a skip.
func redisURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("HELLOSIM_REDIS")
	if u == "" {
		t.Skip("HELLOSIM_REDIS is not set (e.g. redis://127.0.0.1:6390/0); skipping the Redis tests")
	}
	return u
}

// testPrefix gives each test its own keyspace on the shared Redis.
func testPrefix(t testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "hellosim-test:" + hex.EncodeToString(b[:]) + ":"
}

func newRedisStore(t testing.TB, url string, o RedisOptions) *Redis {
	t.Helper()
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

// redisProcess is a redis-server of the test's own, to kill and restart.
type redisProcess struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
}

// startRedis starts a redis-server with no persistence on a free loopback
// port and a fresh directory. It needs HELLOSIM_REDIS set (the opt-in to
// the Redis tests) and redis-server on PATH.
func startRedis(t *testing.T) *redisProcess {
	t.Helper()
	redisURL(t)
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not on PATH; skipping")
	}
	port := freePort(t)
	p := &redisProcess{t: t, port: port, dir: t.TempDir()}
	p.start()
	t.Cleanup(p.kill)
	return p
}

// freePort is a free loopback port in 6390–6399 (the range this project's
// Redis servers use, so that they stay out of other services' way), or a
// skip.
func freePort(t *testing.T) int {
	t.Helper()
	for port := 6390; port <= 6399; port++ {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ln.Close()
		return port
	}
	t.Skip("no free port in 127.0.0.1:6390-6399 for a Redis of the test's own")
	return 0
}

func (p *redisProcess) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", p.port) }

func (p *redisProcess) start() {
	p.t.Helper()
	p.cmd = exec.Command("redis-server",
		"--port", strconv.Itoa(p.port), "--bind", "127.0.0.1",
		"--dir", p.dir, "--save", "", "--appendonly", "no",
		"--enable-debug-command", "local",
		"--logfile", filepath.Join(p.dir, "redis.log"))
	require.NoError(p.t, p.cmd.Start())
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(p.dir, "redis.log"))
	p.t.Fatalf("redis-server did not start:\n%s", log)
}

// kill stops the server the hard way, as a crash would.
func (p *redisProcess) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	p.cmd = nil
}
