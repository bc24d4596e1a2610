package idp_test

import (
	"context"
	"crypto/ecdsa"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/service"
)

func TestRegisterKeyOneKeyPerToken(t *testing.T) {
	f := newFixture(t, idp.TenantConfig{})
	ctx := context.Background()
	newKey := func() *ecdsa.PublicKey {
		k := newP256(t)
		return &k.PublicKey
	}
	const first, second = "{0B0D8E1A-0000-0000-0000-00000000000A}", "{0B0D8E1A-0000-0000-0000-00000000000B}"
	_, tok := f.boundSignIn(t, testDevice)
	k1 := newKey()
	require.NoError(t, f.p.RegisterKey(ctx, tok, first, k1))
	require.NoError(t, f.p.RegisterKey(ctx, tok, first, k1), "the same registration again (a retry) is a no-op")

	// The same token cannot register a second key, for the rest of its life
	// and the verifier's skew.
	err := f.p.RegisterKey(ctx, tok, second, newKey())
	assert.ErrorIs(t, err, idp.ErrTokenUsed)
	assert.ErrorIs(t, err, idp.ErrTokenRefused)
	f.clk.Advance(idp.DefaultTokenLifetime + service.DefaultSkew - time.Second)
	assert.ErrorIs(t, f.p.RegisterKey(ctx, tok, second, newKey()), idp.ErrTokenUsed, "just before the token stops verifying")
	f.clk.Advance(2 * time.Second)
	assert.ErrorIs(t, f.p.RegisterKey(ctx, tok, second, newKey()), idp.ErrTokenRefused, "after it: the token is expired")
	_, err = f.p.LookupKey(second)
	assert.ErrorIs(t, err, idp.ErrKeyNotFound)

	// A refused registration does not spend the token.
	_, tok2 := f.boundSignIn(t, otherDevice)
	assert.ErrorIs(t, f.p.RegisterKey(ctx, tok2, first, newKey()), idp.ErrExists)
	require.NoError(t, f.p.RegisterKey(ctx, tok2, second, newKey()))
	keys, err := f.p.RegisteredKeys(f.alice.UPN)
	require.NoError(t, err)
	assert.Len(t, keys, 2)

	// Each fresh token (a refresh, too) registers its own key.
	p, tok3 := f.boundSignIn(t, testDevice)
	require.NoError(t, f.p.RegisterKey(ctx, tok3, "k3", newKey()))
	tok4, err := p.Refresh(ctx)
	require.NoError(t, err)
	require.NoError(t, f.p.RegisterKey(ctx, tok4, "k4", newKey()))
	assert.ErrorIs(t, f.p.RegisterKey(ctx, tok4, "k5", newKey()), idp.ErrTokenUsed)
}

// RegisterKey is device-bound as the DRS endpoint is: the token must come
// from a sign-in bound to an enabled device of the user's tenant, by the
// key the directory holds for it, and the key is recorded as that device's.
func TestRegisterKeyIsDeviceBound(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idp.TenantConfig{})
	ctx := context.Background()
	newKey := func() *ecdsa.PublicKey {
		k := newP256(t)
		return &k.PublicKey
	}
	_, bound := f.boundSignIn(t, testDevice)

	p, unbound := f.signIn(t)
	assert.ErrorIs(t, f.p.RegisterKey(ctx, unbound, "k1", newKey()), idp.ErrDeviceNotBound, "a token of an unbound sign-in")
	named, err := p.DeviceToken(ctx, testDevice, identity.PINResetServiceAppID)
	require.NoError(t, err)
	assert.ErrorIs(t, f.p.RegisterKey(ctx, named, "k1", newKey()), idp.ErrDeviceNotBound,
		"a token naming the device but not bound to the key the directory holds")

	require.NoError(t, f.p.SetDeviceDisabled(testDevice, true))
	assert.ErrorIs(t, f.p.RegisterKey(ctx, bound, "k1", newKey()), idp.ErrDeviceNotBound, "a disabled device registers nothing")
	require.NoError(t, f.p.SetDeviceDisabled(testDevice, false))

	require.NoError(t, f.p.RegisterKey(ctx, bound, "k1", newKey()))
	k, err := f.p.LookupKey("k1")
	require.NoError(t, err)
	assert.Equal(t, testDevice, k.DeviceID)

	// The device's next key takes the old one's place.
	_, next := f.boundSignIn(t, testDevice)
	require.NoError(t, f.p.RegisterKey(ctx, next, "k2", newKey()))
	keys, err := f.p.RegisteredKeys(f.alice.UPN)
	require.NoError(t, err)
	require.Len(t, keys, 1)
	assert.Equal(t, "k2", keys[0].KeyID)
}
