// Package redistest gives the module's tests a Redis: the shared one of
// the run (HELLOSIM_REDIS, started by the CI script) with a keyspace prefix
// of the test's own, or a redis-server of the test's own to kill and
// restart. Without HELLOSIM_REDIS every helper skips the test, so that
// `go test ./...` needs nothing installed.
package redistest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// EnvURL names the variable holding the shared Redis's URL.
const EnvURL = "HELLOSIM_REDIS"

// URL is the shared Redis of the run, or a skip.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		t.Skip(EnvURL + " is not set (e.g. redis://127.0.0.1:6390/0); skipping the Redis test")
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

// Server is a redis-server of the test's own, with no persistence (a
// restart empties it, as a crash of an unpersisted Redis does), listening on
// loopback only.
type Server struct {
	t    testing.TB
	Port int
	dir  string
	cmd  *exec.Cmd
}

// Start starts a Server on a free loopback port in 6390–6399 with a fresh
// directory and stops it when the test ends. It skips unless HELLOSIM_REDIS
// is set (the opt-in to the Redis tests) and redis-server is on PATH.
func Start(t testing.TB) *Server {
	t.Helper()
	URL(t)
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not on PATH; skipping")
	}
	s := &Server{t: t, Port: freePort(t), dir: t.TempDir()}
	s.Restart()
	t.Cleanup(s.Kill)
	return s
}

// freePort is a free loopback port in 6390–6399 (the range this project's
// Redis servers use, so that they stay out of other services' way), or a
// skip.
func freePort(t testing.TB) int {
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

// URL is the server's URL, database 0.
func (s *Server) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.Port) }

// Addr is the server's host:port.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

// Restart starts the server again after Kill (or for the first time) and
// waits until it accepts connections. Its keyspace is empty.
func (s *Server) Restart() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatal("redistest: Restart of a running server")
	}
	s.cmd = exec.Command("redis-server",
		"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--dir", s.dir, "--save", "", "--appendonly", "no",
		"--enable-debug-command", "local",
		"--logfile", filepath.Join(s.dir, "redis.log"))
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("redistest: start redis-server: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", s.Addr()); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	s.t.Fatalf("redistest: redis-server did not start:\n%s", log)
}

// Kill stops the server the hard way, as a crash would. Killing a stopped
// server does nothing.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}
