package redistest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cluster is a Redis Cluster of the test's own: three masters without
// replicas on 127.0.0.1, with no persistence, joined by
// `redis-cli --cluster create`, each owning a third of the hash slots.
type Cluster struct {
	// Addrs are the nodes' host:port.
	Addrs []string
	nodes []*node
}

// node is a running cluster node; exited closes when it has ended.
type node struct {
	proc   *os.Process
	exited chan struct{}
}

// StartCluster starts a Cluster and stops it when the test ends. It skips
// unless HELLOSIM_REDIS is set (the opt-in to the Redis tests) and
// redis-server and redis-cli are on PATH; with CI=true it fails instead.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	need(t, "redis-server", "redis-cli")
	dir := privateDir(t)
	c := &Cluster{}
	t.Cleanup(c.stop)
	for i := range 3 {
		n, addr := startNode(t, filepath.Join(dir, strconv.Itoa(i)))
		c.nodes = append(c.nodes, n)
		c.Addrs = append(c.Addrs, addr)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, addr := range c.Addrs {
		for !strings.Contains(cli(addr, "cluster", "info"), "cluster_state:ok") {
			if time.Now().After(deadline) {
				t.Fatalf("redistest: cluster not ready at %s:\n%s", addr, cli(addr, "cluster", "info"))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// URL is the cluster's URL as state.NewRedis reads it.
func (c *Cluster) URL() string { return "redis+cluster://" + strings.Join(c.Addrs, ",") }

func (c *Cluster) stop() {
	for _, n := range c.nodes {
		_ = n.proc.Kill()
		<-n.exited
	}
	c.nodes = nil
}

// cli runs one redis-cli command at addr and returns its output.
func cli(addr string, args ...string) string {
	host, port, _ := strings.Cut(addr, ":")
	out, _ := exec.Command("redis-cli", append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	return string(out)
}

// startNode starts one cluster node in dir on a random port in
// 20000–29999 (its cluster bus 10000 higher) and returns it once its own
// log says it listens. A port that turns out to be taken makes
// redis-server exit; the node is then tried on another port. Nothing is
// probed: a port counts as the node's only once the node holds it.
func startNode(t testing.TB, dir string) (*node, string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	logFile := filepath.Join(dir, "redis.log")
	for range 20 {
		port := 20000 + rand.IntN(10000)
		_ = os.Remove(logFile)
		cmd := exec.Command("redis-server",
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-node-timeout", "5000",
			"--dir", dir, "--save", "", "--appendonly", "no",
			"--logfile", logFile)
		if err := cmd.Start(); err != nil {
			t.Fatalf("redistest: start redis-server: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		deadline := time.After(10 * time.Second)
	wait:
		for {
			log, _ := os.ReadFile(logFile)
			if bytes.Contains(log, []byte("Ready to accept connections")) {
				return &node{proc: cmd.Process, exited: exited}, fmt.Sprintf("127.0.0.1:%d", port)
			}
			select {
			case <-exited:
				break wait // most likely the port or its bus port was taken
			case <-deadline:
				_ = cmd.Process.Kill()
				<-exited
				t.Fatalf("redistest: cluster node did not start:\n%s", log)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	log, _ := os.ReadFile(logFile)
	t.Fatalf("redistest: no cluster node started in 20 tries; last log:\n%s", log)
	return nil, ""
}
