package idp_test

import (
	"context"
	"crypto/ecdsa"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/internal/dpop"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
)

const (
	testDevice  = "5d2c9f3e-8b1a-4c7d-9e6f-0a1b2c3d4e5f"
	otherDevice = "5d2c9f3e-8b1a-4c7d-9e6f-0a1b2c3d4e60"
)

// A device registered by a user with MFA binds later sign-ins: their tokens
// carry deviceid and cnf.jkt, and a refreshed token keeps the MFA's
// auth_time.
func TestDeviceBoundSignIn(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, idp.TenantConfig{})
	key := newP256(t)
	_, tok := f.signIn(t)
	require.NoError(t, f.p.RegisterDevice(ctx, tok, testDevice, &key.PublicKey))
	assert.ErrorIs(t, f.p.RegisterDevice(ctx, tok, testDevice, &key.PublicKey), idp.ErrExists)
	jkt, err := dpop.Thumbprint(&key.PublicKey)
	require.NoError(t, err)

	f.clk.Advance(idp.TOTPPeriod)
	p, err := f.p.SignIn(ctx, f.alice.UPN, alicePW)
	require.NoError(t, err)
	proof := func(k *ecdsa.PrivateKey, htu string) string {
		s, err := dpop.Sign(k, dpop.Claims{HTM: "POST", HTU: htu, IAT: f.clk.Now().Unix(), JTI: "j"})
		require.NoError(t, err)
		return s
	}
	other := newP256(t)
	assert.ErrorIs(t, p.BindDevice(ctx, testDevice, proof(other, f.p.TokenEndpoint(f.tenant.ID))), idp.ErrTokenRefused, "another key")
	assert.ErrorIs(t, p.BindDevice(ctx, testDevice, proof(key, "https://elsewhere.test/token")), idp.ErrTokenRefused, "another htu")
	require.NoError(t, p.BindDevice(ctx, testDevice, proof(key, f.p.TokenEndpoint(f.tenant.ID))))
	code, err := f.p.TOTPCode(f.alice.UPN)
	require.NoError(t, err)
	bound, err := p.CompleteMFA(ctx, code)
	require.NoError(t, err)
	c := payload(t, bound)
	assert.Equal(t, testDevice, c["deviceid"])
	assert.Equal(t, map[string]any{"jkt": jkt}, c["cnf"])
	mfaAt := f.clk.Now().Unix()
	assert.EqualValues(t, mfaAt, c["auth_time"])
	assert.Equal(t, identity.PINResetClientAppID, c["azp"])

	f.clk.Advance(time.Hour)
	refreshed, err := p.Refresh(ctx)
	require.NoError(t, err)
	rc := payload(t, refreshed)
	assert.EqualValues(t, mfaAt, rc["auth_time"], "a refresh never claims a newer MFA")
	assert.Equal(t, testDevice, rc["deviceid"])

	d, err := f.p.Device(ctx, f.tenant.ID, testDevice)
	require.NoError(t, err)
	assert.Equal(t, identity.StandingEnabled, d.Standing)
	assert.Equal(t, jkt, d.KeyThumbprint)
	require.NoError(t, f.p.SetDeviceDisabled(testDevice, true))
	d, err = f.p.Device(ctx, f.tenant.ID, testDevice)
	require.NoError(t, err)
	assert.Equal(t, identity.StandingDisabled, d.Standing)
	_, err = p.Refresh(ctx)
	assert.ErrorIs(t, err, idp.ErrDeviceNotBound, "no bound token for a disabled device")
	_, err = p.DeviceToken(ctx, testDevice, idp.DRSResource)
	assert.ErrorIs(t, err, idp.ErrDeviceNotBound, "nor a DRS token")
	require.NoError(t, f.p.SetDeviceDisabled(testDevice, false))
	_, err = p.Refresh(ctx)
	require.NoError(t, err, "enabled again")

	otherTenant, err := f.p.AddTenant(idp.TenantConfig{Domain: "fabrikam.test"})
	require.NoError(t, err)
	_, err = f.p.Device(ctx, otherTenant.ID, testDevice)
	assert.ErrorIs(t, err, idp.ErrDeviceNotFound, "another tenant's device is not found, not deleted")
	d, err = f.p.Device(ctx, f.tenant.ID, "0f0f0f0f-0000-4000-8000-000000000000")
	require.NoError(t, err)
	assert.Equal(t, identity.StandingDeleted, d.Standing, "a device the directory does not hold stands deleted")
}

// One device, one record: the key a join records and the object AddDevice
// describes are the same device, in either order, and a second key or
// another tenant under the same ID is refused.
func TestOneRecordPerDevice(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idp.TenantConfig{})
	ctx := context.Background()
	_, tok := f.signIn(t)
	key := newP256(t)
	jkt, err := dpop.Thumbprint(&key.PublicKey)
	require.NoError(t, err)

	require.NoError(t, f.p.RegisterDevice(ctx, tok, testDevice, &key.PublicKey))
	obj, err := f.p.AddDevice(idp.DeviceConfig{TenantID: f.tenant.ID, DeviceID: testDevice, DisplayName: "DESKTOP-1"})
	require.NoError(t, err, "the join's device gets its name")
	assert.Equal(t, []idp.Device{obj}, f.p.Devices(f.tenant.ID), "one device, not two")
	_, err = f.p.AddDevice(idp.DeviceConfig{TenantID: f.tenant.ID, DeviceID: testDevice})
	assert.ErrorIs(t, err, idp.ErrExists, "described once")
	d, err := f.p.Device(ctx, f.tenant.ID, testDevice)
	require.NoError(t, err)
	assert.Equal(t, jkt, d.KeyThumbprint, "the object keeps the key")

	// The other order: the object first, then its key.
	second := "7e57de71-0000-4000-8000-000000000002"
	_, err = f.p.AddDevice(idp.DeviceConfig{TenantID: f.tenant.ID, DeviceID: second, DisplayName: "LAPTOP-2"})
	require.NoError(t, err)
	d, err = f.p.Device(ctx, f.tenant.ID, second)
	require.NoError(t, err)
	assert.Empty(t, d.KeyThumbprint, "no key yet")
	require.NoError(t, f.p.AddDeviceKey(f.tenant.ID, f.alice.ObjectID, second, &key.PublicKey))
	require.NoError(t, f.p.AddDeviceKey(f.tenant.ID, f.alice.ObjectID, second, &key.PublicKey), "the same key again: a no-op")
	d, err = f.p.Device(ctx, f.tenant.ID, second)
	require.NoError(t, err)
	assert.Equal(t, jkt, d.KeyThumbprint)
	assert.Len(t, f.p.Devices(f.tenant.ID), 2)
	other := newP256(t)
	assert.ErrorIs(t, f.p.AddDeviceKey(f.tenant.ID, f.alice.ObjectID, second, &other.PublicKey), idp.ErrExists, "another key")
	assert.ErrorIs(t, f.p.RegisterDevice(ctx, tok, second, &other.PublicKey), idp.ErrExists, "another key by a join")

	// A device joined only with its key is a device object too, and its ID
	// is taken in every tenant.
	third := "7e57de71-0000-4000-8000-000000000003"
	require.NoError(t, f.p.AddDeviceKey(f.tenant.ID, f.alice.ObjectID, third, &other.PublicKey))
	var ids []string
	for _, d := range f.p.Devices(f.tenant.ID) {
		ids = append(ids, d.DeviceID)
	}
	assert.ElementsMatch(t, []string{testDevice, second, third}, ids)
	fabrikam, err := f.p.AddTenant(idp.TenantConfig{Domain: "fabrikam.test"})
	require.NoError(t, err)
	_, err = f.p.AddDevice(idp.DeviceConfig{TenantID: fabrikam.ID, DeviceID: third})
	assert.ErrorIs(t, err, idp.ErrExists, "one ID, one device, one tenant")
}

// Revoking sessions stops refreshes and shows in Account; deleting a user
// makes them stand deleted.
func TestAccountStanding(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, idp.TenantConfig{})
	p, _ := f.signIn(t)
	a, err := f.p.Account(ctx, f.tenant.ID, f.alice.ObjectID)
	require.NoError(t, err)
	assert.Equal(t, identity.StandingEnabled, a.Standing)
	assert.True(t, a.SessionsRevokedAt.IsZero())

	f.clk.Advance(time.Second)
	require.NoError(t, f.p.RevokeSessions(f.alice.UPN))
	_, err = p.Refresh(ctx)
	assert.ErrorIs(t, err, idp.ErrSignInExpired)
	a, err = f.p.Account(ctx, f.tenant.ID, f.alice.ObjectID)
	require.NoError(t, err)
	assert.Equal(t, f.clk.Now(), a.SessionsRevokedAt)

	require.NoError(t, f.p.SetDisabled(f.alice.UPN, true))
	a, _ = f.p.Account(ctx, f.tenant.ID, f.alice.ObjectID)
	assert.Equal(t, identity.StandingDisabled, a.Standing)
	require.NoError(t, f.p.DeleteUser(f.alice.UPN))
	a, _ = f.p.Account(ctx, f.tenant.ID, f.alice.ObjectID)
	assert.Equal(t, identity.StandingDeleted, a.Standing)
}

// A device proof binds one sign-in: the same proof presented again, for
// this sign-in or another of the same user, is refused; a fresh proof of
// the same device binds.
func TestBindDeviceProofUsedOnce(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, idp.TenantConfig{})
	key := newP256(t)
	_, tok := f.signIn(t)
	require.NoError(t, f.p.RegisterDevice(ctx, tok, testDevice, &key.PublicKey))
	f.clk.Advance(idp.TOTPPeriod)

	proof, err := f.p.DeviceProof(key, f.tenant.ID, f.clk.Now())
	require.NoError(t, err)
	first, err := f.p.SignIn(ctx, f.alice.UPN, alicePW)
	require.NoError(t, err)
	require.NoError(t, first.BindDevice(ctx, testDevice, proof))
	assert.ErrorIs(t, first.BindDevice(ctx, testDevice, proof), idp.ErrTokenRefused, "again, for the same sign-in")

	second, err := f.p.SignIn(ctx, f.alice.UPN, alicePW)
	require.NoError(t, err)
	f.clk.Advance(idp.DeviceProofMaxAge / 2)
	err = second.BindDevice(ctx, testDevice, proof)
	assert.ErrorIs(t, err, idp.ErrTokenRefused, "a captured proof, for another sign-in")
	assert.ErrorContains(t, err, "already used")

	fresh, err := f.p.DeviceProof(key, f.tenant.ID, f.clk.Now())
	require.NoError(t, err)
	require.NoError(t, second.BindDevice(ctx, testDevice, fresh))
}
