package redistest

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// do sends one inline command and returns the first line of the answer.
func do(t *testing.T, socket, cmd string) string {
	t.Helper()
	c, err := net.DialTimeout("unix", socket, time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(2*time.Second)))
	_, err = c.Write([]byte(cmd + "\r\n"))
	require.NoError(t, err)
	line, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	return strings.TrimSpace(line)
}

// A Server answers on its socket, is gone after Kill, and comes back empty
// after Restart, as an unpersisted Redis after a crash.
func TestServerKillAndRestart(t *testing.T) {
	s := Start(t)
	assert.Equal(t, "unix://"+s.Socket()+"?db=0", s.URL())
	assert.Equal(t, "+OK", do(t, s.Socket(), "SET k v"))
	assert.Equal(t, "$1", do(t, s.Socket(), "GET k"))

	s.Kill()
	_, err := net.DialTimeout("unix", s.Socket(), time.Second)
	assert.Error(t, err, "nothing listens after Kill")
	s.Kill() // a second Kill does nothing

	s.Restart()
	assert.Equal(t, "$-1", do(t, s.Socket(), "GET k"), "the keyspace is empty after a restart")
}

// Servers of tests that run at once never share an address, and none
// listens on TCP: while one is killed, its socket cannot lead to another.
func TestServersNeverShareAnAddress(t *testing.T) {
	a, b := Start(t), Start(t)
	assert.NotEqual(t, a.Socket(), b.Socket())
	assert.Equal(t, "+OK", do(t, a.Socket(), "SET k a"))
	a.Kill()
	_, err := net.DialTimeout("unix", a.Socket(), time.Second)
	assert.Error(t, err, "a killed server's socket leads nowhere")
	assert.Equal(t, "$-1", do(t, b.Socket(), "GET k"), "the other server never saw the key")
	c, err := net.DialTimeout("unix", b.Socket(), time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(2*time.Second)))
	_, err = c.Write([]byte("CONFIG GET port\r\n"))
	require.NoError(t, err)
	r := bufio.NewReader(c)
	var lines []string
	for range 5 {
		l, err := r.ReadString('\n')
		require.NoError(t, err)
		lines = append(lines, strings.TrimSpace(l))
	}
	assert.Equal(t, []string{"*2", "$4", "port", "$1", "0"}, lines, "no TCP port")
}

func TestPrefixesDiffer(t *testing.T) {
	a, b := Prefix(), Prefix()
	assert.NotEqual(t, a, b)
	assert.True(t, strings.HasPrefix(a, "hellosim-test:") && strings.HasSuffix(a, ":"))
}

// A Cluster is three masters that together serve every hash slot.
func TestClusterServesEverySlot(t *testing.T) {
	c := StartCluster(t)
	require.Len(t, c.Addrs, 3)
	assert.True(t, strings.HasPrefix(c.URL(), "redis+cluster://127.0.0.1:"))
	info := cli(c.Addrs[0], "cluster", "info")
	assert.Contains(t, info, "cluster_slots_assigned:16384")
	assert.Contains(t, info, "cluster_known_nodes:3")
	assert.Contains(t, info, "cluster_size:3")
}
