// Package redistest gives the module's tests a Redis: the shared one of
// the run (HELLOSIM_REDIS, started by the CI script) with a keyspace prefix
// of the test's own, a redis-server of the test's own to kill and restart,
// or a Redis Cluster of the test's own. Without HELLOSIM_REDIS every helper
// skips the test, so that `go test ./...` needs nothing installed; with
// CI=true a missing part fails the test instead.
//
// A server of the test's own listens on a unix socket in a directory of
// its own and on no TCP port at all. That is what keeps tests in packages
// that run at once apart: a port picked as "free" can be taken by another
// test's server between the probe and the bind, or while a killed server is
// down, and a client that reconnects then talks to the other test's Redis.
// A socket path in a private directory cannot be taken. A cluster needs TCP
// (its nodes announce host:port); its nodes are started on random ports and
// moved to others when redis-server cannot bind, and a node counts as up
// only when its own log says it is listening, never when something answers
// on the port.
package redistest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"testing"
	"time"
)

// EnvURL names the variable holding the shared Redis's URL.
const EnvURL = "HELLOSIM_REDIS"

// Timeout is the store deadline for tests that are not about deadlines.
// The production default (a quarter second) is ample for one decision, but
// a test machine shared by parallel builds stalls a process for longer
// than that, and a test of "exactly one admission" must not fail with a
// 503 because the machine was busy. Tests of the deadline itself set
// their own.
const Timeout = 10 * time.Second

// URL is the shared Redis of the run, or a skip (a failure with CI=true).
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		missing(t, EnvURL+" is not set (e.g. redis://127.0.0.1:6390/0); skipping the Redis test")
	}
	return u
}

// Prefix is a keyspace prefix no other test uses, so that tests on the
// shared Redis stay out of each other's way.
func Prefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "hellosim-test:" + hex.EncodeToString(b[:]) + ":"
}

// missing skips the test for a part that is not there, or fails it when
// CI=true: CI installs every part, so a missing one there is a broken run,
// not a reason to test less.
func missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why + " (CI=true: failing instead of skipping)")
	}
	t.Skip(why)
}

// need makes sure the Redis tests are opted into and the programs are on
// PATH.
func need(t testing.TB, programs ...string) {
	t.Helper()
	URL(t)
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			missing(t, p+" is not on PATH (Debian: apt-get install redis-server); skipping")
		}
	}
}

// privateDir is a fresh directory only this process uses, removed when the
// test ends. It is short, unlike t.TempDir(), whose name carries the
// test's: a unix socket path must fit in 108 bytes.
func privateDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
