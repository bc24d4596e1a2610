package redistest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Server is a redis-server of the test's own, with no persistence (a
// restart empties it, as a crash of an unpersisted Redis does), listening
// on a unix socket in a directory of its own and on no TCP port.
type Server struct {
	t   testing.TB
	dir string
	cmd *exec.Cmd
}

// Start starts a Server and stops it when the test ends. It skips unless
// HELLOSIM_REDIS is set (the opt-in to the Redis tests) and redis-server is
// on PATH.
func Start(t testing.TB) *Server {
	t.Helper()
	need(t, "redis-server")
	s := &Server{t: t, dir: privateDir(t)}
	s.Restart()
	t.Cleanup(s.Kill)
	return s
}

// Socket is the path of the server's unix socket.
func (s *Server) Socket() string { return filepath.Join(s.dir, "redis.sock") }

// URL is the server's URL, database 0.
func (s *Server) URL() string { return "unix://" + s.Socket() + "?db=0" }

// Restart starts the server again after Kill (or for the first time) and
// waits until it accepts connections. Its keyspace is empty.
func (s *Server) Restart() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatal("redistest: Restart of a running server")
	}
	logFile := filepath.Join(s.dir, "redis.log")
	s.cmd = exec.Command("redis-server",
		"--port", "0", "--unixsocket", s.Socket(), "--unixsocketperm", "700",
		"--dir", s.dir, "--save", "", "--appendonly", "no",
		"--enable-debug-command", "local",
		"--logfile", logFile)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("redistest: start redis-server: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("unix", s.Socket()); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	log, _ := os.ReadFile(logFile)
	s.Kill()
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
