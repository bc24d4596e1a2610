// Package tpmtest gives each test a TPM: the embedded simulator by default,
// or the TPM named by the environment variable HELLOSIM_TPM (a spec for
// tpm.Open, such as tcp://127.0.0.1:2321 for swtpm), so the same tests run
// on both. The TPM is closed by t.Cleanup.
//
// Every TPM handed out is a test TPM: its dictionary-attack lockout is reset
// and given Windows' parameters (32 tries, one forgiven every 10 minutes), so
// tests start from the same state on the simulator and on swtpm; on a
// simulator or a tcp:// TPM the library's NV secret indices left by earlier
// tests are undefined too, so that NV does not fill up over a suite. Never
// point HELLOSIM_TPM at a TPM whose lockout state or NV indices matter.
package tpmtest

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/hellosim/hellosim/tpm"
)

// EnvVar names the environment variable holding the TPM spec.
const EnvVar = "HELLOSIM_TPM"

// Spec is the TPM spec tests use: $HELLOSIM_TPM, or "sim".
func Spec() string {
	if s := os.Getenv(EnvVar); s != "" {
		return s
	}
	return "sim"
}

// Open opens the test TPM (see the package documentation), resets its
// lockout and sets Windows' lockout parameters. It fails the test when the
// TPM cannot be opened, and skips it when the simulator is wanted but the
// build has no cgo.
func Open(t testing.TB) *tpm.TPM {
	t.Helper()
	tp, err := tpm.Open(Spec())
	if errors.Is(err, tpm.ErrSimulatorUnavailable) {
		t.Skipf("tpmtest: %v", err)
	}
	return ready(t, tp, err)
}

// ready fails the test when the TPM did not open (err), and else prepares
// it.
func ready(t testing.TB, tp *tpm.TPM, err error) *tpm.TPM {
	t.Helper()
	if err != nil {
		t.Fatalf("tpmtest: open %s: %v", Spec(), err)
	}
	prepare(t, tp)
	return tp
}

// prepare resets lockout, sets the Windows parameters and registers Close.
func prepare(t testing.TB, tp *tpm.TPM) {
	t.Helper()
	t.Cleanup(func() {
		if err := tp.Close(); err != nil {
			t.Errorf("tpmtest: close: %v", err)
		}
	})
	ctx := context.Background()
	if err := tp.ResetLockout(ctx, nil); err != nil {
		t.Fatalf("tpmtest: reset lockout: %v", err)
	}
	if err := tp.SetLockoutParameters(ctx, tpm.WindowsMaxTries, tpm.WindowsRecovery, tpm.WindowsLockoutRecovery, nil); err != nil {
		t.Fatalf("tpmtest: set lockout parameters: %v", err)
	}
	if spec := Spec(); spec == "sim" || strings.HasPrefix(spec, "sim:") || strings.HasPrefix(spec, "tcp://") {
		left, err := tp.Secrets(ctx)
		if err != nil {
			t.Fatalf("tpmtest: list NV secrets: %v", err)
		}
		for _, s := range left {
			if err := tp.UndefineSecret(ctx, s); err != nil {
				t.Fatalf("tpmtest: undefine NV secret %#x: %v", s.Handle, err)
			}
		}
	}
	tp.ResetStats()
}
