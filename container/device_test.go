package container

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/device"
	"github.com/hellosim/hellosim/protector"
)

// A protector enrolled on a device names it through key rotations and
// resets.
func TestDeviceIdentityBindsTheProtector(t *testing.T) {
	ctx := context.Background()
	tp := openTPM(t)
	d, err := device.Join(ctx, tp, nil)
	require.NoError(t, err)
	svc, err := protector.GenerateServiceKey(protector.HPKEX25519)
	require.NoError(t, err)
	c := provision(t, tp, testConfig())
	s := unlock(t, tp, c, testPIN)
	_, err = s.EnablePINRecoveryOnDevice(ctx, svc.Public(), "NOT-A-GUID")
	assert.ErrorIs(t, err, ErrInvalidConfig)
	c, err = s.EnablePINRecoveryOnDevice(ctx, svc.Public(), d.ID())
	require.NoError(t, err)
	assert.Equal(t, d.ID(), c.DeviceID())
	assert.Equal(t, 2, c.Envelope().Version())

	// Re-wrapping to a rotated key keeps the device.
	svc2, err := protector.GenerateServiceKey(protector.HPKEX25519)
	require.NoError(t, err)
	c, err = s.EnablePINRecovery(ctx, svc2.Public())
	require.NoError(t, err)
	assert.Equal(t, d.ID(), c.DeviceID())
	parsed, err := Parse(marshal(t, c))
	require.NoError(t, err)
	assert.Equal(t, d.ID(), parsed.DeviceID())

	// A non-destructive reset re-enrols on the same device.
	r := recovered(t, svc2, c)
	defer r.Destroy()
	next, err := ResetPIN(ctx, tp, c, r, otherPIN, ptr(svc.Public()))
	require.NoError(t, err)
	assert.Equal(t, d.ID(), next.DeviceID())
}

func ptr[T any](v T) *T { return &v }
