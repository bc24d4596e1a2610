//go:build cgo

package pkcs11

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// The test token: the one named by HELLOSIM_PKCS11_TOKEN and
// HELLOSIM_PKCS11_PIN (CI makes it), or, when only HELLOSIM_PKCS11_MODULE is
// set, a SoftHSM2 token made for this run in a temporary SOFTHSM2_CONF.
// A module is initialised once per process at a time, so the tests open
// their Tokens one after another (none is parallel); each test's keys carry
// a label of its own.
var (
	tokenOnce sync.Once
	tokenCfg  Config
	tokenErr  error
	tokenSkip string
	cleanup   func()
)

func TestMain(m *testing.M) {
	code := m.Run()
	if cleanup != nil {
		cleanup()
	}
	os.Exit(code)
}

func setupToken() {
	module := os.Getenv("HELLOSIM_PKCS11_MODULE")
	if module == "" {
		tokenSkip = "HELLOSIM_PKCS11_MODULE is not set (e.g. /usr/lib/softhsm/libsofthsm2.so); skipping the PKCS11 tests"
		return
	}
	tokenCfg = Config{Module: module, TokenLabel: os.Getenv("HELLOSIM_PKCS11_TOKEN"), PIN: os.Getenv("HELLOSIM_PKCS11_PIN")}
	if tokenCfg.TokenLabel != "" {
		return
	}
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		tokenSkip = "HELLOSIM_PKCS11_TOKEN is not set and softhsm2-util is not on PATH to make a token; skipping"
		return
	}
	dir, err := os.MkdirTemp("", "hellosim-softhsm-")
	if err != nil {
		tokenErr = err
		return
	}
	cleanup = func() { os.RemoveAll(dir) }
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.MkdirAll(filepath.Join(dir, "tokens"), 0o700); err != nil {
		tokenErr = err
		return
	}
	if err := os.WriteFile(conf, fmt.Appendf(nil, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", filepath.Join(dir, "tokens")), 0o600); err != nil {
		tokenErr = err
		return
	}
	os.Setenv("SOFTHSM2_CONF", conf)
	pin := randomHex(8)
	out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "hellosim-test",
		"--pin", pin, "--so-pin", randomHex(8)).CombinedOutput()
	if err != nil {
		tokenErr = fmt.Errorf("softhsm2-util --init-token: %v: %s", err, out)
		return
	}
	tokenCfg.TokenLabel, tokenCfg.PIN = "hellosim-test", pin
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// openToken opens the test token with a label of the test's own, so that
// Keys sees only this test's keys; the keys are destroyed at the end.
func openToken(t testing.TB) *Token {
	t.Helper()
	tokenOnce.Do(setupToken)
	if tokenSkip != "" {
		t.Skip(tokenSkip)
	}
	require.NoError(t, tokenErr)
	cfg := tokenCfg
	cfg.Label = "hellosim-test-" + randomHex(4)
	tok, err := Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		keys, _ := tok.Keys()
		for _, k := range keys {
			_ = tok.Destroy(k.Public().ID())
		}
		tok.Close()
	})
	return tok
}
