package idp_test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/idp/drs"
	"github.com/hellosim/hellosim/reset/idp/internal/idptest"
	"github.com/hellosim/hellosim/reset/keycred"
)

// drsWorld is a fixture with a joined device and the DRS endpoint on a
// loopback server.
type drsWorld struct {
	*fixture
	device idp.Device
	srv    *httptest.Server
	client *drs.Client
}

func newDRSWorld(t *testing.T, tcfg idp.TenantConfig) *drsWorld {
	t.Helper()
	f := newFixture(t, tcfg)
	d, err := f.p.AddDevice(idp.DeviceConfig{TenantID: f.tenant.ID, DisplayName: "DESKTOP-1"})
	require.NoError(t, err)
	srv := httptest.NewServer(drs.Handler(f.p))
	t.Cleanup(srv.Close)
	c, err := drs.NewClient(srv.URL, srv.Client())
	require.NoError(t, err)
	return &drsWorld{fixture: f, device: d, srv: srv, client: c}
}

// drsToken signs alice in with MFA and asks for a device-bound DRS token.
func (w *drsWorld) drsToken(t *testing.T) string {
	t.Helper()
	p, _ := w.signIn(t)
	return idptest.DRSToken(t, p, w.device.DeviceID)
}

func TestDeviceTokenCarriesEntraClaims(t *testing.T) {
	t.Parallel()
	w := newDRSWorld(t, idp.TenantConfig{})
	p, _ := w.signIn(t)
	mfaAt := w.clk.Now()
	tok, err := p.DeviceToken(context.Background(), w.device.DeviceID, idp.DRSResource)
	require.NoError(t, err)
	c := payload(t, tok)
	assert.Equal(t, idp.DRSResource, c["aud"])
	assert.Equal(t, "https://login.hellosim.test/"+w.tenant.ID+"/v2.0", c["iss"])
	assert.Equal(t, w.device.DeviceID, c["deviceid"])
	assert.Equal(t, []any{"pwd", "mfa", "ngcmfa"}, c["amr"])
	assert.Equal(t, idp.DeviceRegistrationClientAppID, c["azp"])
	assert.Equal(t, float64(mfaAt.Unix()), c["auth_time"])
	assert.Equal(t, c["jti"], c["uti"])
	assert.Equal(t, w.tenant.ID, c["tid"])
	assert.Equal(t, w.alice.ObjectID, c["oid"])
	assert.Equal(t, w.alice.UPN, c["upn"])
	assert.Equal(t, "2.0", c["ver"])

	// MFA long ago no longer earns ngcmfa.
	w.clk.Advance(idp.NGCMFAWindow + time.Second)
	tok, err = p.DeviceToken(context.Background(), w.device.DeviceID, idp.DRSResource)
	require.NoError(t, err)
	assert.Equal(t, []any{"pwd", "mfa"}, payload(t, tok)["amr"])

	// Not device-bound: no deviceid.
	tok, err = p.DeviceToken(context.Background(), "", idp.DRSResource)
	require.NoError(t, err)
	assert.NotContains(t, payload(t, tok), "deviceid")

	_, err = p.DeviceToken(context.Background(), "0f0f0f0f-0000-4000-8000-000000000000", idp.DRSResource)
	assert.ErrorIs(t, err, idp.ErrDeviceNotFound)
	_, err = p.DeviceToken(context.Background(), w.device.DeviceID, "https://graph.example")
	assert.ErrorIs(t, err, idp.ErrInvalid)
	pending, err := w.p.SignIn(context.Background(), w.alice.UPN, alicePW)
	require.NoError(t, err)
	_, err = pending.DeviceToken(context.Background(), w.device.DeviceID, idp.DRSResource)
	assert.ErrorIs(t, err, idp.ErrMFANotCompleted)
}

func TestDRSRegistersHelloKey(t *testing.T) {
	t.Parallel()
	w := newDRSWorld(t, idp.TenantConfig{})
	key := idptest.RSAKey(t)
	blob, err := keycred.MarshalPublicKey(&key.PublicKey)
	require.NoError(t, err)
	tok := w.drsToken(t)
	res, err := w.client.RegisterHelloKey(context.Background(), tok, &key.PublicKey)
	require.NoError(t, err)
	assert.Equal(t, keycred.Identifier(blob), res.KID)
	assert.Equal(t, w.alice.UPN, res.UPN)

	// A retry with the same token and key answers the same.
	again, err := w.client.RegisterHelloKey(context.Background(), tok, &key.PublicKey)
	require.NoError(t, err)
	assert.Equal(t, res, again)

	k, err := w.p.LookupKey(res.KID)
	require.NoError(t, err)
	assert.Equal(t, w.device.DeviceID, k.DeviceID)
	assert.True(t, key.PublicKey.Equal(k.Public))

	u, err := w.p.DirectoryUser(w.alice.UPN)
	require.NoError(t, err)
	require.Len(t, u.Keys, 1)
	assert.Equal(t, []idp.Device{w.device}, u.Devices)
	kc, owner, err := keycred.ParseAttributeValue(u.Keys[0].KeyCredentialLink)
	require.NoError(t, err)
	assert.Equal(t, w.alice.UPN, owner)
	assert.Equal(t, blob, kc.KeyMaterial)
	assert.Equal(t, keycred.KeyUsageNGC, kc.Usage)
	assert.Equal(t, keycred.KeySourceAzureAD, kc.Source)
	assert.Equal(t, w.device.DeviceID, kc.DeviceID)
	assert.Equal(t, keycred.KeyFlags(0), kc.CustomKeyInfo.Flags)
	assert.Equal(t, k.RegisteredAt, kc.Created)
	assert.Empty(t, u.Keys[0].OnPremisesKeyCredentialLink, "cloud-only: nothing written back")
}

func TestDRSRefusesAnotherUsersKey(t *testing.T) {
	t.Parallel()
	w := newDRSWorld(t, idp.TenantConfig{})
	bob, err := w.p.AddUser(idp.UserConfig{TenantID: w.tenant.ID, UPN: "bob@contoso.test", Password: alicePW})
	require.NoError(t, err)
	key := idptest.RSAKey(t)
	_, err = w.client.RegisterHelloKey(context.Background(), w.drsToken(t), &key.PublicKey)
	require.NoError(t, err)

	w.clk.Advance(idp.TOTPPeriod)
	p, err := w.p.SignIn(context.Background(), bob.UPN, alicePW)
	require.NoError(t, err)
	code, err := w.p.TOTPCode(bob.UPN)
	require.NoError(t, err)
	_, err = p.CompleteMFA(context.Background(), code)
	require.NoError(t, err)
	tok, err := p.DeviceToken(context.Background(), w.device.DeviceID, idp.DRSResource)
	require.NoError(t, err)
	_, err = w.client.RegisterHelloKey(context.Background(), tok, &key.PublicKey)
	assert.ErrorIs(t, err, idp.ErrExists)
}

func TestNewKeyFromADeviceReplacesTheOld(t *testing.T) {
	t.Parallel()
	w := newDRSWorld(t, idp.TenantConfig{})
	other, err := w.p.AddDevice(idp.DeviceConfig{TenantID: w.tenant.ID, DisplayName: "LAPTOP-2"})
	require.NoError(t, err)
	first, second := idptest.RSAKey(t), idptest.RSAKey(t)
	ec := newP256(t)

	r1, err := w.client.RegisterHelloKey(context.Background(), w.drsToken(t), &first.PublicKey)
	require.NoError(t, err)
	p, _ := w.signIn(t)
	tok, err := p.DeviceToken(context.Background(), other.DeviceID, idp.DRSResource)
	require.NoError(t, err)
	rOther, err := w.client.RegisterHelloKey(context.Background(), tok, &ec.PublicKey) // ECS1: our extension
	require.NoError(t, err)
	// A destructive reset on the first device: its new key replaces the old one.
	r2, err := w.client.RegisterHelloKey(context.Background(), w.drsToken(t), &second.PublicKey)
	require.NoError(t, err)

	u, err := w.p.DirectoryUser(w.alice.UPN)
	require.NoError(t, err)
	var kids []string
	for _, k := range u.Keys {
		kids = append(kids, k.KID)
	}
	assert.ElementsMatch(t, []string{rOther.KID, r2.KID}, kids)
	assert.NotContains(t, kids, r1.KID)
	_, err = w.p.LookupKey(r1.KID)
	assert.ErrorIs(t, err, idp.ErrKeyNotFound)
}

func TestHybridKeyTrustWritesTheValueBackAfterTheSyncDelay(t *testing.T) {
	t.Parallel()
	w := newDRSWorld(t, idp.TenantConfig{Hybrid: true, TrustType: identity.KeyTrust, SyncDelay: 30 * time.Minute})
	key := idptest.RSAKey(t)
	_, err := w.client.RegisterHelloKey(context.Background(), w.drsToken(t), &key.PublicKey)
	require.NoError(t, err)
	u, err := w.p.DirectoryUser(w.alice.UPN)
	require.NoError(t, err)
	assert.Equal(t, "CN=alice,CN=Users,DC=contoso,DC=test", u.DistinguishedName)
	require.Len(t, u.Keys, 1)
	assert.Empty(t, u.Keys[0].OnPremisesKeyCredentialLink, "not yet synchronised")

	w.clk.Advance(30 * time.Minute)
	u, err = w.p.DirectoryUser(w.alice.UPN)
	require.NoError(t, err)
	onPrem := u.Keys[0].OnPremisesKeyCredentialLink
	require.NotEmpty(t, onPrem)
	kc, owner, err := keycred.ParseAttributeValue(onPrem)
	require.NoError(t, err)
	assert.Equal(t, u.DistinguishedName, owner)
	assert.Equal(t, keycred.KeySourceAzureAD, kc.Source)
	cloud, _, err := keycred.ParseAttributeValue(u.Keys[0].KeyCredentialLink)
	require.NoError(t, err)
	assert.Equal(t, cloud, kc, "the written-back value is Entra's")
	assert.Equal(t, u.Keys[0].RegisteredAt.Add(30*time.Minute), u.Keys[0].WrittenBackAt)
}

func TestRestoreKeyPutsBackWhatWasSaved(t *testing.T) {
	t.Parallel()
	w := newDRSWorld(t, idp.TenantConfig{})
	key := idptest.RSAKey(t)
	res, err := w.client.RegisterHelloKey(context.Background(), w.drsToken(t), &key.PublicKey)
	require.NoError(t, err)
	saved, err := w.p.LookupKey(res.KID)
	require.NoError(t, err)
	before, err := w.p.DirectoryUser(w.alice.UPN)
	require.NoError(t, err)

	// A second directory, rebuilt from what the first one holds.
	g := newFixture(t, idp.TenantConfig{ID: w.tenant.ID})
	_, err = g.p.AddUser(idp.UserConfig{TenantID: w.tenant.ID, UPN: "carol@contoso.test", Password: alicePW})
	require.NoError(t, err)
	saved.ObjectID, saved.TenantID = g.alice.ObjectID, g.tenant.ID
	assert.ErrorIs(t, g.p.RestoreKey(saved), idp.ErrDeviceNotFound, "the device is not there yet")
	_, err = g.p.AddDevice(idp.DeviceConfig{TenantID: w.tenant.ID, DeviceID: w.device.DeviceID, DisplayName: w.device.DisplayName, RegisteredAt: w.device.RegisteredAt})
	require.NoError(t, err)
	bad := saved
	bad.KID = "AAAA"
	assert.ErrorIs(t, g.p.RestoreKey(bad), idp.ErrInvalid, "a kid that does not name the key")
	require.NoError(t, g.p.RestoreKey(saved))
	assert.ErrorIs(t, g.p.RestoreKey(saved), idp.ErrExists)
	after, err := g.p.DirectoryUser(g.alice.UPN)
	require.NoError(t, err)
	require.Len(t, after.Keys, 1)
	assert.Equal(t, before.Keys[0].KID, after.Keys[0].KID)
	kb, _, err := keycred.ParseAttributeValue(before.Keys[0].KeyCredentialLink)
	require.NoError(t, err)
	ka, _, err := keycred.ParseAttributeValue(after.Keys[0].KeyCredentialLink)
	require.NoError(t, err)
	assert.Equal(t, kb, ka, "the same msDS-KeyCredentialLink value")
}

func TestPINResetTokensCarryEntraClaims(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idp.TenantConfig{})
	_, tok := f.signIn(t)
	c := payload(t, tok)
	assert.Equal(t, c["jti"], c["uti"])
	assert.Equal(t, identity.PINResetServiceAppID, c["aud"])
	assert.Equal(t, identity.PINResetClientAppID, c["azp"])
	assert.Equal(t, []any{"pwd", "mfa"}, c["amr"])
	assert.NotContains(t, c, "deviceid", "a password sign-in is not device-bound")
}

func TestConcurrentRegistrationsWithOneTokenAdmitOneKey(t *testing.T) {
	t.Parallel()
	w := newDRSWorld(t, idp.TenantConfig{})
	tok := w.drsToken(t)
	const n = 8
	keys := make([]*rsa.PrivateKey, n)
	for i := range keys {
		keys[i] = idptest.RSAKey(t)
	}
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := w.client.RegisterHelloKey(context.Background(), tok, &keys[i].PublicKey)
			errs <- err
		}()
	}
	admitted := 0
	for range n {
		if err := <-errs; err == nil {
			admitted++
		} else {
			assert.ErrorIs(t, err, idp.ErrTokenUsed)
		}
	}
	assert.Equal(t, 1, admitted)
	ks, err := w.p.RegisteredKeys(w.alice.UPN)
	require.NoError(t, err)
	assert.Len(t, ks, 1)
}

// A tenant that requires TPM key attestation takes no unattested key
// through the device registration service either: both ways in share one
// registration.
func TestDRSRefusesUnattestedKeyWhereAttestationIsRequired(t *testing.T) {
	t.Parallel()
	w := newDRSWorld(t, idp.TenantConfig{})
	require.NoError(t, w.p.SetKeyAttestation(w.tenant.ID, x509.NewCertPool(), true))
	_, err := w.client.RegisterHelloKey(context.Background(), w.drsToken(t), &idptest.RSAKey(t).PublicKey)
	assert.ErrorIs(t, err, idp.ErrAttestationRequired)
	var e *drs.RefusalError
	require.ErrorAs(t, err, &e)
	assert.Equal(t, http.StatusForbidden, e.Status)
	keys, err := w.p.RegisteredKeys(w.alice.UPN)
	require.NoError(t, err)
	assert.Empty(t, keys)
}
