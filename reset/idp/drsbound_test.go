package idp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/internal/dpop"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/idp/drs"
	"github.com/hellosim/hellosim/reset/idp/internal/idptest"
	"github.com/hellosim/hellosim/reset/keycred"
)

// boundDRSWorld is a drsWorld whose device has a key in the directory, and
// a sign-in of alice bound to it.
type boundDRSWorld struct {
	*drsWorld
	key     *ecdsa.PrivateKey
	pending *idp.Pending
	jkt     string
}

func newBoundDRSWorld(t *testing.T) *boundDRSWorld {
	t.Helper()
	w := newDRSWorld(t, idp.TenantConfig{})
	key := newP256(t)
	require.NoError(t, w.p.AddDeviceKey(w.tenant.ID, w.alice.ObjectID, w.device.DeviceID, &key.PublicKey))
	p, _ := w.signIn(t)
	proof, err := w.p.DeviceProof(key, w.tenant.ID, w.clk.Now())
	require.NoError(t, err)
	require.NoError(t, p.BindDevice(context.Background(), w.device.DeviceID, proof))
	jkt, err := dpop.Thumbprint(&key.PublicKey)
	require.NoError(t, err)
	return &boundDRSWorld{drsWorld: w, key: key, pending: p, jkt: jkt}
}

func (w *boundDRSWorld) token(t *testing.T) string {
	t.Helper()
	tok, err := w.pending.DeviceToken(context.Background(), w.device.DeviceID, idp.DRSResource)
	require.NoError(t, err)
	return tok
}

// proof is a DPoP proof for the registration endpoint, signed by key.
func (w *boundDRSWorld) proof(t *testing.T, key *ecdsa.PrivateKey, c dpop.Claims) string {
	t.Helper()
	if c.HTM == "" {
		c.HTM = "POST"
	}
	if c.HTU == "" {
		c.HTU = w.srv.URL + drs.KeyPath
	}
	if c.IAT == 0 {
		c.IAT = w.clk.Now().Unix()
	}
	if c.JTI == "" {
		c.JTI = randJTI(t)
	}
	p, err := dpop.Sign(key, c)
	require.NoError(t, err)
	return p
}

func randJTI(t *testing.T) string {
	t.Helper()
	var b [12]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	return keycred.Identifier(b[:])
}

// A sign-in bound to the device key yields DRS tokens bound to it
// (cnf.jkt), for that device only.
func TestDeviceTokenOfABoundSignInIsBound(t *testing.T) {
	t.Parallel()
	w := newBoundDRSWorld(t)
	c := payload(t, w.token(t))
	assert.Equal(t, map[string]any{"jkt": w.jkt}, c["cnf"])
	assert.Equal(t, w.device.DeviceID, c["deviceid"])

	other, err := w.p.AddDevice(idp.DeviceConfig{TenantID: w.tenant.ID, DisplayName: "DESKTOP-2"})
	require.NoError(t, err)
	_, err = w.pending.DeviceToken(context.Background(), other.DeviceID, idp.DRSResource)
	assert.ErrorIs(t, err, idp.ErrDeviceNotBound, "a bound sign-in gives no token for another device")
}

// For a device whose key the directory holds, the registration service
// takes a key only with a token bound to that key and a fresh, unused
// DPoP proof of it: a token read off the wire registers nothing.
func TestDRSDeviceBoundRegistration(t *testing.T) {
	t.Parallel()
	w := newBoundDRSWorld(t)
	ctx := context.Background()
	thief := newP256(t)
	kngc := func() []byte {
		blob, err := keycred.MarshalPublicKey(&idptest.RSAKey(t).PublicKey)
		require.NoError(t, err)
		return blob
	}
	url := w.srv.URL + drs.KeyPath

	tok := w.token(t)
	_, err := w.client.RegisterHelloKey(ctx, tok, &idptest.RSAKey(t).PublicKey)
	assert.ErrorIs(t, err, idp.ErrTokenRefused, "the bound token sent as a bearer token")
	_, err = w.client.WithDevice(thief).WithClock(w.clk.Now).RegisterHelloKey(ctx, tok, &idptest.RSAKey(t).PublicKey)
	assert.ErrorIs(t, err, idp.ErrTokenRefused, "a proof by another key")

	for name, c := range map[string]dpop.Claims{
		"proof for another URL":    {HTU: "https://elsewhere.test" + drs.KeyPath, ATH: dpop.Hash([]byte(tok))},
		"proof for another method": {HTM: "PUT", ATH: dpop.Hash([]byte(tok))},
		"proof for another token":  {ATH: dpop.Hash([]byte("another token"))},
		"proof without ath":        {},
		"stale proof":              {IAT: w.clk.Now().Add(-2 * idp.DeviceProofMaxAge).Unix(), ATH: dpop.Hash([]byte(tok))},
	} {
		_, err := w.p.RegisterHelloKey(ctx, tok, kngc(), idp.Proof{URL: url, JWT: w.proof(t, w.key, c)})
		assert.ErrorIs(t, err, idp.ErrTokenRefused, name)
	}

	// A token of a sign-in that was not bound, for the device with a key.
	p, _ := w.signIn(t)
	unbound, err := p.DeviceToken(ctx, w.device.DeviceID, idp.DRSResource)
	require.NoError(t, err)
	_, err = w.client.RegisterHelloKey(ctx, unbound, &idptest.RSAKey(t).PublicKey)
	assert.ErrorIs(t, err, idp.ErrDeviceNotBound, "a bearer token for a device whose key the directory holds")
	_, err = w.p.RegisterHelloKey(ctx, unbound, kngc(),
		idp.Proof{URL: url, JWT: w.proof(t, w.key, dpop.Claims{ATH: dpop.Hash([]byte(unbound))})})
	assert.ErrorIs(t, err, idp.ErrTokenRefused, "a proof with a token that is not bound")
	keys, err := w.p.RegisteredKeys(w.alice.UPN)
	require.NoError(t, err)
	assert.Empty(t, keys, "nothing registered so far")

	_, err = w.p.RegisterHelloKey(ctx, tok, kngc(),
		idp.Proof{JWT: w.proof(t, w.key, dpop.Claims{HTU: " ", ATH: dpop.Hash([]byte(tok))})})
	assert.ErrorIs(t, err, idp.ErrInvalid, "a direct call must say which URL the proof names")

	// The device itself.
	proof := w.proof(t, w.key, dpop.Claims{ATH: dpop.Hash([]byte(tok))})
	blob := kngc()
	res, err := w.p.RegisterHelloKey(ctx, tok, blob, idp.Proof{URL: url, JWT: proof})
	require.NoError(t, err)
	assert.Equal(t, keycred.Identifier(blob), res.KID)
	keys, err = w.p.RegisteredKeys(w.alice.UPN)
	require.NoError(t, err)
	require.Len(t, keys, 1)
	assert.Equal(t, w.device.DeviceID, keys[0].DeviceID)

	// The same proof again, even for the same registration, is refused.
	_, err = w.p.RegisterHelloKey(ctx, tok, blob, idp.Proof{URL: url, JWT: proof})
	assert.ErrorIs(t, err, idp.ErrTokenRefused, "a replayed proof")
	assert.ErrorContains(t, err, "already used")

	// Over HTTP with the device-bound client: the next sign-in's token.
	p2, _ := w.signIn(t)
	proof2, err := w.p.DeviceProof(w.key, w.tenant.ID, w.clk.Now())
	require.NoError(t, err)
	require.NoError(t, p2.BindDevice(ctx, w.device.DeviceID, proof2))
	tok2, err := p2.DeviceToken(ctx, w.device.DeviceID, idp.DRSResource)
	require.NoError(t, err)
	_, err = w.client.WithDevice(w.key).WithClock(w.clk.Now).RegisterHelloKey(ctx, tok2, &idptest.RSAKey(t).PublicKey)
	require.NoError(t, err)
}
