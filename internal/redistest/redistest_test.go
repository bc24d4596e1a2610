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
func do(t *testing.T, addr, cmd string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(2*time.Second)))
	_, err = c.Write([]byte(cmd + "\r\n"))
	require.NoError(t, err)
	line, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	return strings.TrimSpace(line)
}

// A Server answers on loopback, is gone after Kill, and comes back empty
// after Restart, as an unpersisted Redis after a crash.
func TestServerKillAndRestart(t *testing.T) {
	s := Start(t)
	assert.True(t, strings.HasPrefix(s.URL(), "redis://127.0.0.1:"))
	assert.Equal(t, "+OK", do(t, s.Addr(), "SET k v"))
	assert.Equal(t, "$1", do(t, s.Addr(), "GET k"))

	s.Kill()
	_, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	assert.Error(t, err, "nothing listens after Kill")
	s.Kill() // a second Kill does nothing

	s.Restart()
	assert.Equal(t, "$-1", do(t, s.Addr(), "GET k"), "the keyspace is empty after a restart")
}

func TestPrefixesDiffer(t *testing.T) {
	a, b := Prefix(), Prefix()
	assert.NotEqual(t, a, b)
	assert.True(t, strings.HasPrefix(a, "hellosim-test:") && strings.HasSuffix(a, ":"))
}
