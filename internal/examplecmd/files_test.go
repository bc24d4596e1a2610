package examplecmd

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestLoopbackOnly(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:8080", "[::1]:0", "localhost:80", "127.1.2.3:9"} {
		assert.NoError(t, LoopbackOnly(ok, "the demo service"), ok)
	}
	for _, bad := range []string{"0.0.0.0:8080", ":8080", "10.0.0.1:80", "example.com:80", "nonsense"} {
		assert.Error(t, LoopbackOnly(bad, "the demo service"), bad)
	}
	assert.EqualError(t, LoopbackOnly("0.0.0.0:80", "the directory"), "-addr 0.0.0.0:80: the directory listens on loopback addresses only")
}
