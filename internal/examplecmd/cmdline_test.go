package examplecmd

import (
	"bytes"
	"flag"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A server's command line is "totp SECRET" or flags alone; nothing else
// gets through, so no mistyped command starts a server.
func TestServerParse(t *testing.T) {
	for _, args := range [][]string{{"totp"}, {"totp", "A", "B"}, {"totp", "-addr"}, {"serve"}, {"-addr", "127.0.0.1:0", "x"},
		{"-cert", "c.pem"}, {"-key", "k.pem"}, {"-nosuchflag"}} {
		var stderr bytes.Buffer
		var f ServerFlags
		cmd := NewServer("demo", "demo: a server.\n", &stderr, &f, "127.0.0.1:1", "TLS certificate (PEM)")
		_, err := cmd.Parse(args)
		assert.ErrorIs(t, err, ErrUsage, "%q", args)
		assert.NotEmpty(t, stderr.String(), "%q: no message", args)
		assert.Equal(t, 2, cmd.Main(args, &bytes.Buffer{}, &bytes.Buffer{}, func() error { t.Fatal("served"); return nil }), "%q", args)
	}

	var f ServerFlags
	cmd := NewServer("demo", "demo: a server.\n", &bytes.Buffer{}, &f, "127.0.0.1:1", "TLS certificate (PEM)")
	secret, err := cmd.Parse([]string{"totp", "JBSWY3DPEHPK3PXP"})
	require.NoError(t, err)
	assert.Equal(t, "JBSWY3DPEHPK3PXP", secret)
	var out bytes.Buffer
	assert.Equal(t, 0, cmd.Main([]string{"totp", "JBSWY3DPEHPK3PXP"}, &out, &bytes.Buffer{}, nil))
	assert.Regexp(t, `^\d{6}\n$`, out.String())

	secret, err = cmd.Parse([]string{"-cert", "c.pem", "-key", "k.pem"})
	require.NoError(t, err)
	assert.Empty(t, secret)
	assert.Equal(t, ServerFlags{Addr: "127.0.0.1:1", CertFile: "c.pem", KeyFile: "k.pem"}, f)

	var stderr bytes.Buffer
	cmd = NewServer("demo", "demo: a server.\n", &stderr, &f, "127.0.0.1:1", "TLS certificate (PEM)")
	_, err = cmd.Parse([]string{"-h"})
	assert.ErrorIs(t, err, flag.ErrHelp)
	assert.Contains(t, stderr.String(), "demo: a server.\n  -addr string")
}
