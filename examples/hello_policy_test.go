package examples_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/tpm"
)

// setPINPolicy writes the device's managed PIN policy into device.json, as
// device management would set it; nil removes it.
func (h *helloCLI) setPINPolicy(p map[string]any) {
	h.t.Helper()
	path := filepath.Join(h.state, "device.json")
	data, err := os.ReadFile(path)
	require.NoError(h.t, err)
	var dev map[string]any
	require.NoError(h.t, json.Unmarshal(data, &dev))
	if p == nil {
		delete(dev, "pin_policy")
	} else {
		dev["pin_policy"] = p
	}
	data, err = json.Marshal(dev)
	require.NoError(h.t, err)
	require.NoError(h.t, os.WriteFile(path, data, 0o600))
}

// device reads the TPM spec the CLI recorded, as tpm.Open takes it (a
// state file's path is relative to the state directory).
func (h *helloCLI) device() (spec string) {
	h.t.Helper()
	var dev struct {
		TPM string `json:"tpm"`
	}
	data, err := os.ReadFile(filepath.Join(h.state, "device.json"))
	require.NoError(h.t, err)
	require.NoError(h.t, json.Unmarshal(data, &dev))
	if p, ok := strings.CutPrefix(dev.TPM, "sim:state="); ok && !filepath.IsAbs(p) {
		return "sim:state=" + filepath.Join(h.state, p)
	}
	return dev.TPM
}

// The PIN policy device management sets on the device (device.json's
// pin_policy) is what change-pin and both resets hold a new PIN to, even
// when the container records a weaker one, and its Expiration is what makes
// sign tell the user to change the PIN.
func TestHelloCLIAppliesTheManagedPINPolicy(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	h := &helloCLI{t: t, state: filepath.Join(home, "state"), home: home}
	const password = "demo password 42"

	h.expect(exitOK, "135792\n135792\n", "provision", "-password", password)
	h.expect(exitOK, "135792\n", "enable-recovery")
	r := h.expect(exitOK, "", "status")
	assert.Contains(t, r.stdout, "PIN policy : 4 to 127 characters; digits require, lowercase disallow, uppercase disallow, special disallow; history 0; never expires (the container's)")
	id := keyID(t, r.stdout)

	// A policy the CSP would not accept is an error, not ignored.
	h.setPINPolicy(map[string]any{"digits": 7})
	r = h.expect(exitFailure, "135792\n", "sign")
	assert.Contains(t, r.stderr, "pin_policy")

	// Device management: at least eight characters, expiring after 30 days.
	managed := container.PINPolicy{MinimumLength: 8, Expiration: 30}
	h.setPINPolicy(map[string]any{"minimum_pin_length": 8, "expiration": 30})
	r = h.expect(exitOK, "", "status")
	assert.Contains(t, r.stdout, "PIN policy : 8 to 127 characters; digits require, lowercase disallow, uppercase disallow, special disallow; history 0; expires after 30 days (managed by the device)")
	// The expiry date follows the policy in force, as the line above does.
	assert.NotContains(t, r.stdout, "PIN expires : never")
	assert.Regexp(t, `PIN expires : \d{4}-\d{2}-\d{2} `, r.stdout)

	// The container records four digits; the device's policy refuses six.
	r = h.expect(exitPINRefused, "135792\n246813\n246813\n", "change-pin")
	assert.Contains(t, r.stderr, "MinimumPINLength")
	r = h.expect(exitPINRefused, password+"\n"+h.totp()+"\n917364\n917364\n", "reset", "--destructive", "-y")
	assert.Contains(t, r.stderr, "at least 8 characters")
	r = h.expect(exitOK, password+"\n"+h.totp()+"\n582046\n582046\n71938264\n71938264\n", "reset", "--non-destructive")
	assert.Contains(t, r.stderr, "at least 8 characters (rule MinimumPINLength). Try again.", "the six-digit PIN is refused and asked again")
	assert.Contains(t, r.stdout, "Same NgcKeyId "+id)

	// A fresh PIN: sign says nothing about expiry.
	r = h.expect(exitOK, "71938264\n", "sign", "-m", "fresh PIN")
	h.verifySig(r.stdout, "fresh PIN")
	assert.NotContains(t, r.stderr, "expired")

	// The PIN was set 31 days ago (changed here with a clock set back):
	// it still signs, and sign says it must be changed.
	spec := h.device()
	st, c := h.container()
	assert.Equal(t, 8, c.Config().PINPolicy.MinimumLength, "the reset recorded the device's policy")
	tp, err := tpm.Open(spec)
	require.NoError(t, err)
	past := func() time.Time { return time.Now().AddDate(0, 0, -31) }
	n, err := container.ChangePIN(context.Background(), tp, c, "71938264", "82640157", container.WithClock(past), container.WithPINPolicy(managed))
	require.NoError(t, tp.Close())
	require.NoError(t, err)
	require.NoError(t, st.Save(n))

	r = h.expect(exitOK, "82640157\n", "sign", "-m", "expired PIN")
	h.verifySig(r.stdout, "expired PIN")
	assert.Contains(t, r.stderr, "Your PIN has expired under the PIN policy and must be changed: run 'hello change-pin'.")

	// Changing it restarts the clock.
	h.expect(exitOK, "82640157\n93751468\n93751468\n", "change-pin")
	r = h.expect(exitOK, "93751468\n", "sign", "-m", "new PIN")
	h.verifySig(r.stdout, "new PIN")
	assert.NotContains(t, r.stderr, "expired")

	// Without a managed policy the container's (now the device's, recorded
	// by change-pin) applies.
	h.setPINPolicy(nil)
	r = h.expect(exitOK, "", "status")
	assert.Contains(t, r.stdout, "8 to 127 characters; digits require, lowercase disallow, uppercase disallow, special disallow; history 0; expires after 30 days (the container's)")
}
