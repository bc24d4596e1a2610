package idp_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/internal/clocktest"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/idp/internal/idptest"
	"github.com/hellosim/hellosim/reset/resettest"
	"github.com/hellosim/hellosim/reset/service"
)

type fixture struct {
	clk     *clocktest.Clock
	p       *idp.IdP
	tenant  idp.Tenant
	alice   idp.User
	devKeys map[string]*ecdsa.PrivateKey // by device ID (boundSignIn)
}

const alicePW = "correct horse battery"

func newFixture(t *testing.T, tcfg idp.TenantConfig) *fixture {
	t.Helper()
	f := &fixture{clk: clocktest.New(time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC))}
	var err error
	f.p, err = idp.New(idp.WithClock(f.clk.Now), idp.WithArgon2(resettest.CheapArgon2()))
	require.NoError(t, err)
	if tcfg.Domain == "" {
		tcfg.Domain = "contoso.test"
	}
	f.tenant, err = f.p.AddTenant(tcfg)
	require.NoError(t, err)
	f.alice, err = f.p.AddUser(idp.UserConfig{TenantID: f.tenant.ID, UPN: "alice@" + tcfg.Domain, Password: alicePW})
	require.NoError(t, err)
	return f
}

// newP256 is a fresh P-256 key: a device key, a Hello key, an attacker's.
func newP256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

// signIn completes password + TOTP; it moves the clock to the next TOTP
// step first so that repeated sign-ins never reuse a code.
func (f *fixture) signIn(t *testing.T) (*idp.Pending, string) {
	t.Helper()
	return idptest.SignIn(t, f.p, f.clk, f.alice.UPN, alicePW)
}

// boundSignIn is signIn bound to deviceID (BindDevice before the MFA), a
// device of alice's recorded with a fresh key the first time: its token
// can register keys from that device.
func (f *fixture) boundSignIn(t *testing.T, deviceID string) (*idp.Pending, string) {
	t.Helper()
	p := f.boundPending(t, deviceID)
	code, err := f.p.TOTPCode(f.alice.UPN)
	require.NoError(t, err)
	tok, err := p.CompleteMFA(context.Background(), code)
	require.NoError(t, err)
	return p, tok
}

// boundPending is boundSignIn before the MFA.
func (f *fixture) boundPending(t *testing.T, deviceID string) *idp.Pending {
	t.Helper()
	ctx := context.Background()
	if f.devKeys == nil {
		f.devKeys = map[string]*ecdsa.PrivateKey{}
	}
	key := f.devKeys[deviceID]
	if key == nil {
		var err error
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		require.NoError(t, f.p.AddDeviceKey(f.tenant.ID, f.alice.ObjectID, deviceID, &key.PublicKey))
		f.devKeys[deviceID] = key
	}
	f.clk.Advance(idp.TOTPPeriod)
	p, err := f.p.SignIn(ctx, f.alice.UPN, alicePW)
	require.NoError(t, err)
	proof, err := f.p.DeviceProof(key, f.tenant.ID, f.clk.Now())
	require.NoError(t, err)
	require.NoError(t, p.BindDevice(ctx, deviceID, proof))
	return p
}

// payload decodes a token's claims without verifying (the verifier is
// tested in reset/service).
func payload(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3)
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	return m
}

func header(t *testing.T, tok string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	return m
}

func TestSignInWithMFAIssuesVerifiableToken(t *testing.T) {
	f := newFixture(t, idp.TenantConfig{})
	_, tok := f.signIn(t)
	h := header(t, tok)
	assert.Equal(t, "ES256", h["alg"])
	assert.Equal(t, "JWT", h["typ"])
	assert.Equal(t, f.p.SigningKeyID(), h["kid"])
	c := payload(t, tok)
	assert.Equal(t, "https://login.hellosim.test/"+f.tenant.ID+"/v2.0", c["iss"])
	assert.Equal(t, identity.PINResetServiceAppID, c["aud"])
	assert.Equal(t, identity.PINResetClientAppID, c["azp"])
	assert.Equal(t, f.tenant.ID, c["tid"])
	assert.Equal(t, f.alice.ObjectID, c["oid"])
	assert.Equal(t, "alice@contoso.test", c["upn"])
	assert.Equal(t, []any{"pwd", "mfa"}, c["amr"])
	now := f.clk.Now().Unix()
	assert.EqualValues(t, now, c["iat"])
	assert.EqualValues(t, now, c["nbf"])
	assert.EqualValues(t, now+int64(idp.DefaultTokenLifetime/time.Second), c["exp"])
	assert.NotEmpty(t, c["jti"])
	assert.NotContains(t, c, "idp", "managed tenant: no federation claim")

	claims, err := mustVerifier(f.p).Verify(context.Background(), tok)
	require.NoError(t, err)
	assert.True(t, claims.HasMFA())
}

func TestTokenWithoutMFA(t *testing.T) {
	f := newFixture(t, idp.TenantConfig{})
	p, err := f.p.SignIn(context.Background(), f.alice.UPN, alicePW)
	require.NoError(t, err)
	tok, err := p.TokenWithoutMFA(context.Background())
	require.NoError(t, err)
	c, err := mustVerifier(f.p).Verify(context.Background(), tok)
	require.NoError(t, err)
	assert.Equal(t, []string{"pwd"}, c.AMR)
	assert.False(t, c.HasMFA())
	_, err = p.Refresh(context.Background())
	assert.ErrorIs(t, err, idp.ErrMFANotCompleted)
}

func TestSignInFailures(t *testing.T) {
	f := newFixture(t, idp.TenantConfig{})
	ctx := context.Background()
	_, err := f.p.SignIn(ctx, "nobody@contoso.test", alicePW)
	assert.ErrorIs(t, err, idp.ErrUnknownUser)
	_, err = f.p.SignIn(ctx, f.alice.UPN, alicePW+"x")
	assert.ErrorIs(t, err, idp.ErrWrongPassword)
	_, err = f.p.SignIn(ctx, strings.ToUpper(f.alice.UPN), alicePW)
	assert.NoError(t, err, "UPNs are case-insensitive")

	p, err := f.p.SignIn(ctx, f.alice.UPN, alicePW)
	require.NoError(t, err)
	code, err := f.p.TOTPCode(f.alice.UPN)
	require.NoError(t, err)
	wrong := fmt.Sprintf("%06d", (atoi(code)+1)%1000000)
	for i := range idp.MaxMFAAttempts {
		_, err = p.CompleteMFA(ctx, wrong)
		assert.ErrorIs(t, err, idp.ErrWrongCode, "attempt %d", i)
	}
	_, err = p.CompleteMFA(ctx, code)
	assert.ErrorIs(t, err, idp.ErrSignInExpired, "dead after too many wrong codes")

	require.NoError(t, f.p.SetDisabled(f.alice.UPN, true))
	_, err = f.p.SignIn(ctx, f.alice.UPN, alicePW)
	assert.ErrorIs(t, err, idp.ErrDisabled)
	_, err = f.p.SignIn(ctx, f.alice.UPN, "wrong password")
	assert.ErrorIs(t, err, idp.ErrWrongPassword, "a disabled account does not reveal itself to a wrong password")
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func TestTOTPCodeIsSingleUse(t *testing.T) {
	f := newFixture(t, idp.TenantConfig{})
	ctx := context.Background()
	code, err := f.p.TOTPCode(f.alice.UPN)
	require.NoError(t, err)
	p1, err := f.p.SignIn(ctx, f.alice.UPN, alicePW)
	require.NoError(t, err)
	_, err = p1.CompleteMFA(ctx, code)
	require.NoError(t, err)
	p2, err := f.p.SignIn(ctx, f.alice.UPN, alicePW)
	require.NoError(t, err)
	_, err = p2.CompleteMFA(ctx, code)
	assert.ErrorIs(t, err, idp.ErrWrongCode, "RFC 6238 §5.2: a code is accepted once")
	// The previous step's code is within the skew but older than the one used.
	f.clk.Advance(idp.TOTPPeriod)
	next, err := f.p.TOTPCode(f.alice.UPN)
	require.NoError(t, err)
	_, err = p2.CompleteMFA(ctx, next)
	assert.NoError(t, err)
}

func TestTOTPSkew(t *testing.T) {
	f := newFixture(t, idp.TenantConfig{})
	ctx := context.Background()
	secret := f.alice.TOTPSecret()
	for _, tc := range []struct {
		offset time.Duration
		ok     bool
	}{{-idp.TOTPPeriod, true}, {idp.TOTPPeriod, true}, {-3 * idp.TOTPPeriod, false}, {3 * idp.TOTPPeriod, false}} {
		f.clk.Advance(5 * idp.TOTPPeriod) // fresh steps, never reused
		code, err := idp.TOTPCodeAt(secret, f.clk.Now().Add(tc.offset))
		require.NoError(t, err)
		p, err := f.p.SignIn(ctx, f.alice.UPN, alicePW)
		require.NoError(t, err)
		_, err = p.CompleteMFA(ctx, code)
		if tc.ok {
			assert.NoError(t, err, "offset %s", tc.offset)
		} else {
			assert.ErrorIs(t, err, idp.ErrWrongCode, "offset %s", tc.offset)
		}
	}
}

func TestLockout(t *testing.T) {
	f := newFixture(t, idp.TenantConfig{})
	ctx := context.Background()
	for i := range idp.DefaultLockoutThreshold - 1 {
		_, err := f.p.SignIn(ctx, f.alice.UPN, "wrong password")
		require.ErrorIs(t, err, idp.ErrWrongPassword, "failure %d", i)
	}
	_, err := f.p.SignIn(ctx, f.alice.UPN, "wrong password")
	var le *idp.LockedError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, idp.DefaultLockoutDuration, le.RetryAfter)
	_, err = f.p.SignIn(ctx, f.alice.UPN, alicePW)
	assert.ErrorIs(t, err, idp.ErrLocked, "even the right password while locked")
	f.clk.Advance(idp.DefaultLockoutDuration)
	_, err = f.p.SignIn(ctx, f.alice.UPN, alicePW)
	assert.NoError(t, err)
}

func TestPendingExpires(t *testing.T) {
	f := newFixture(t, idp.TenantConfig{})
	ctx := context.Background()
	p, err := f.p.SignIn(ctx, f.alice.UPN, alicePW)
	require.NoError(t, err)
	f.clk.Advance(idp.DefaultPendingLifetime + time.Second)
	code, err := f.p.TOTPCode(f.alice.UPN)
	require.NoError(t, err)
	_, err = p.CompleteMFA(ctx, code)
	assert.ErrorIs(t, err, idp.ErrSignInExpired)
	_, err = p.TokenWithoutMFA(ctx)
	assert.ErrorIs(t, err, idp.ErrSignInExpired)
}

func TestRefresh(t *testing.T) {
	f := newFixture(t, idp.TenantConfig{})
	ctx := context.Background()
	p, first := f.signIn(t)
	f.clk.Advance(time.Hour)
	tok, err := p.Refresh(ctx)
	require.NoError(t, err)
	c, err := mustVerifier(f.p).Verify(ctx, tok)
	require.NoError(t, err)
	assert.True(t, c.HasMFA())
	assert.NotEqual(t, payload(t, first)["jti"], c.JTI)
	assert.Equal(t, f.clk.Now(), c.IssuedAt)
	_, err = p.CompleteMFA(ctx, "000000")
	assert.ErrorIs(t, err, idp.ErrSignInExpired, "a completed sign-in cannot be completed again")

	require.NoError(t, f.p.SetDisabled(f.alice.UPN, true))
	_, err = p.Refresh(ctx)
	assert.ErrorIs(t, err, idp.ErrDisabled)
	require.NoError(t, f.p.SetDisabled(f.alice.UPN, false))
	f.clk.Advance(idp.DefaultSessionLifetime)
	_, err = p.Refresh(ctx)
	assert.ErrorIs(t, err, idp.ErrSignInExpired)
}

func TestUserNeverPrintsTOTPSecret(t *testing.T) {
	f := newFixture(t, idp.TenantConfig{})
	secret := f.alice.TOTPSecret()
	require.Len(t, secret, 32, "160-bit secret in base32")
	for _, s := range []string{fmt.Sprint(f.alice), fmt.Sprintf("%v %+v %#v %s", f.alice, f.alice, f.alice, f.alice)} {
		assert.NotContains(t, s, secret)
		assert.Contains(t, s, "alice@contoso.test")
	}
	assert.Contains(t, f.alice.TOTPURI(), "secret="+secret)
	assert.True(t, strings.HasPrefix(f.alice.TOTPURI(), "otpauth://totp/"))
}

func TestAddUserAndTenantValidation(t *testing.T) {
	f := newFixture(t, idp.TenantConfig{})
	bad := []idp.UserConfig{
		{TenantID: f.tenant.ID, UPN: "bob@fabrikam.test", Password: alicePW},  // other domain
		{TenantID: f.tenant.ID, UPN: "bob", Password: alicePW},                // no domain
		{TenantID: f.tenant.ID, UPN: "bob@contoso.test", Password: "short"},   // short password
		{TenantID: f.tenant.ID, UPN: "alice@contoso.test", Password: alicePW}, // exists
		{TenantID: "not-a-guid", UPN: "bob@contoso.test", Password: alicePW},  // unknown tenant
		{TenantID: f.tenant.ID, UPN: "b o@contoso.test", Password: alicePW},   // bad local part
		{TenantID: f.tenant.ID, UPN: "bob@contoso.test", Password: alicePW, ObjectID: "x"},
		{TenantID: f.tenant.ID, UPN: "bob@contoso.test", Password: alicePW, TOTPSecret: "!!"},
		{TenantID: f.tenant.ID, UPN: "bob@contoso.test", Password: alicePW, ObjectID: f.alice.ObjectID},
	}
	for i, cfg := range bad {
		_, err := f.p.AddUser(cfg)
		assert.Error(t, err, "case %d", i)
	}
	badT := []idp.TenantConfig{
		{Domain: "contoso.test"}, // domain taken
		{Domain: "nodot"},
		{Domain: "UPPER..test"},
		{ID: "nope", Domain: "x.test"},
		{ID: f.tenant.ID, Domain: "y.test"},
		{Domain: "z.test", FederationSignInURL: "http://adfs.z.test/adfs/ls"},
		{Domain: "z.test", Cloud: 7},
		{Domain: "z.test", ConsentedApps: []string{"not-a-guid"}},
		{Domain: "z.test", SyncDelay: -time.Second},
	}
	for i, cfg := range badT {
		_, err := f.p.AddTenant(cfg)
		assert.Error(t, err, "tenant case %d", i)
	}
	_, err := f.p.AddTenant(idp.TenantConfig{ID: strings.ToUpper("6B0D8E1A-1F2E-4A3B-9C4D-5E6F7A8B9C0D"), Domain: "upper.test"})
	require.NoError(t, err)
	tn, err := f.p.LookupTenant("6b0d8e1a-1f2e-4a3b-9c4d-5e6f7a8b9c0d")
	require.NoError(t, err)
	assert.Equal(t, "6b0d8e1a-1f2e-4a3b-9c4d-5e6f7a8b9c0d", tn.ID, "GUIDs are kept in lower case")
}

func TestOnboardingNeedsBothConsents(t *testing.T) {
	f := newFixture(t, idp.TenantConfig{})
	ctx := context.Background()
	info := func() identity.Tenant {
		i, err := f.p.Tenant(ctx, f.tenant.ID)
		require.NoError(t, err)
		return i
	}
	assert.False(t, info().Onboarded())
	require.NoError(t, f.p.GrantConsent(f.tenant.ID, identity.PINResetServiceAppID))
	assert.False(t, info().Onboarded(), "service app only")
	require.NoError(t, f.p.GrantConsent(f.tenant.ID, identity.PINResetClientAppID))
	assert.True(t, info().Onboarded())
	tn, err := f.p.LookupTenant(f.tenant.ID)
	require.NoError(t, err)
	assert.True(t, tn.Onboarded())
	require.NoError(t, f.p.RevokeConsent(f.tenant.ID, identity.PINResetServiceAppID))
	assert.False(t, info().Onboarded(), "client app only")
	require.NoError(t, f.p.Onboard(f.tenant.ID))
	assert.True(t, info().Onboarded())
	assert.Equal(t, identity.PublicCloud, info().Cloud)

	_, err = f.p.Tenant(ctx, "00000000-0000-4000-8000-000000000000")
	assert.ErrorIs(t, err, identity.ErrUnknownTenant)
}

func TestFederatedAndGovernmentTenants(t *testing.T) {
	f := newFixture(t, idp.TenantConfig{Domain: "fed.test", FederationSignInURL: "https://adfs.fed.test/adfs/ls/"})
	assert.True(t, f.tenant.Federated())
	assert.Equal(t, "adfs.fed.test", f.tenant.SignInHost())
	_, tok := f.signIn(t)
	assert.Equal(t, "https://adfs.fed.test/adfs/ls", payload(t, tok)["idp"])

	gov, err := f.p.AddTenant(idp.TenantConfig{Domain: "agency.test", Cloud: identity.AzureGovernment})
	require.NoError(t, err)
	assert.Equal(t, "login.microsoftonline.us", gov.SignInHost())
	info, err := f.p.Tenant(context.Background(), gov.ID)
	require.NoError(t, err)
	assert.Equal(t, identity.AzureGovernment, info.Cloud)
	assert.Equal(t, "azure-government", info.Cloud.String())
}

// A user whom the tenant's federation service authenticated signs in
// without a password at the directory, then needs MFA as anyone; a managed
// user, another federation service, a disabled account are refused.
func TestSignInFederated(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, idp.TenantConfig{Domain: "fed.test", FederationSignInURL: "https://adfs.fed.test/adfs/ls/"})
	other, err := f.p.AddTenant(idp.TenantConfig{Domain: "other.test", FederationSignInURL: "https://adfs.other.test/adfs/ls/"})
	require.NoError(t, err)
	_, err = f.p.AddUser(idp.UserConfig{TenantID: other.ID, UPN: "bob@other.test", Password: alicePW})
	require.NoError(t, err)
	managed, err := f.p.AddTenant(idp.TenantConfig{Domain: "managed.test"})
	require.NoError(t, err)
	_, err = f.p.AddUser(idp.UserConfig{TenantID: managed.ID, UPN: "carol@managed.test", Password: alicePW})
	require.NoError(t, err)

	f.clk.Advance(idp.TOTPPeriod)
	p, err := f.p.SignInFederated(ctx, "ALICE@fed.test", "ADFS.fed.test")
	require.NoError(t, err)
	_, err = p.Refresh(ctx)
	assert.ErrorIs(t, err, idp.ErrMFANotCompleted, "the second factor is still owed")
	code, err := f.p.TOTPCode(f.alice.UPN)
	require.NoError(t, err)
	tok, err := p.CompleteMFA(ctx, code)
	require.NoError(t, err)
	assert.Equal(t, "https://adfs.fed.test/adfs/ls", payload(t, tok)["idp"])

	for _, c := range []struct{ upn, host string }{
		{"alice@fed.test", "adfs.other.test"},   // another tenant's federation service
		{"bob@other.test", "adfs.fed.test"},     // likewise, the other way
		{"alice@fed.test", ""},                  // no service named
		{"carol@managed.test", "adfs.fed.test"}, // a managed user
		{"carol@managed.test", "login.microsoftonline.com"},
		{"nobody@fed.test", "adfs.fed.test"}, // no such user
	} {
		_, err := f.p.SignInFederated(ctx, c.upn, c.host)
		assert.ErrorIs(t, err, idp.ErrUnknownUser, "%s via %q", c.upn, c.host)
	}
	require.NoError(t, f.p.SetDisabled(f.alice.UPN, true))
	_, err = f.p.SignInFederated(ctx, f.alice.UPN, "adfs.fed.test")
	assert.ErrorIs(t, err, idp.ErrDisabled)
}

func TestRegisterKey(t *testing.T) {
	f := newFixture(t, idp.TenantConfig{})
	ctx := context.Background()
	_, tok := f.boundSignIn(t, testDevice)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	const kid = "{FA0DB076-A5D7-4844-82D8-50A2FB42EC7B}"
	require.NoError(t, f.p.RegisterKey(ctx, tok, kid, &rsaKey.PublicKey))
	require.NoError(t, f.p.RegisterKey(ctx, tok, kid, &rsaKey.PublicKey), "idempotent")
	k, err := f.p.LookupKey(kid)
	require.NoError(t, err)
	assert.Equal(t, f.alice.ObjectID, k.ObjectID)
	assert.Equal(t, f.tenant.ID, k.TenantID)
	assert.Equal(t, f.clk.Now(), k.RegisteredAt)
	assert.True(t, rsaKey.PublicKey.Equal(k.Public))

	ec := newP256(t)
	assert.ErrorIs(t, f.p.RegisterKey(ctx, tok, kid, &ec.PublicKey), idp.ErrExists, "another key under a taken id")
	_, tok2 := f.boundSignIn(t, otherDevice) // a token registers one key; a device holds one

	require.NoError(t, f.p.RegisterKey(ctx, tok2, "{0B0D8E1A-0000-0000-0000-000000000001}", &ec.PublicKey))
	keys, err := f.p.RegisteredKeys(f.alice.UPN)
	require.NoError(t, err)
	assert.Len(t, keys, 2)

	small, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	for name, pub := range map[string]crypto.PublicKey{"rsa1024": &small.PublicKey, "p384": &p384.PublicKey, "ed25519": edPub, "nil": nil} {
		assert.ErrorIs(t, f.p.RegisterKey(ctx, tok, "k-"+name, pub), idp.ErrUnsupportedKey, name)
	}
	assert.ErrorIs(t, f.p.RegisterKey(ctx, tok, "", &ec.PublicKey), idp.ErrInvalid)
	assert.ErrorIs(t, f.p.RegisterKey(ctx, tok, "a b", &ec.PublicKey), idp.ErrInvalid)
}

func TestRegisterKeyNeedsAValidTokenWithMFA(t *testing.T) {
	f := newFixture(t, idp.TenantConfig{})
	ctx := context.Background()
	ec := newP256(t)
	noMFA, err := f.boundPending(t, testDevice).TokenWithoutMFA(ctx)
	require.NoError(t, err)
	assert.ErrorIs(t, f.p.RegisterKey(ctx, noMFA, "k1", &ec.PublicKey), idp.ErrTokenWithoutMFA)
	assert.ErrorIs(t, f.p.RegisterKey(ctx, "garbage", "k1", &ec.PublicKey), idp.ErrTokenRefused)

	_, tok := f.boundSignIn(t, testDevice)
	f.clk.Advance(idp.DefaultTokenLifetime + 2*time.Minute)
	assert.ErrorIs(t, f.p.RegisterKey(ctx, tok, "k1", &ec.PublicKey), idp.ErrTokenRefused, "expired")

	other, err := idp.New(idp.WithClock(f.clk.Now), idp.WithArgon2(resettest.CheapArgon2()))
	require.NoError(t, err)
	_, tok = f.boundSignIn(t, testDevice)
	assert.ErrorIs(t, other.RegisterKey(ctx, tok, "k1", &ec.PublicKey), idp.ErrTokenRefused, "another IdP's token")
	_, err = f.p.LookupKey("k1")
	assert.ErrorIs(t, err, idp.ErrKeyNotFound)
}

// directory is reset.Directory, restated here: the IdP must satisfy it.
type directory interface {
	RegisterKey(ctx context.Context, token, keyID string, pub crypto.PublicKey) error
}

var _ directory = (*idp.IdP)(nil)

func TestKeyUsableOnPremisesAfterSyncDelay(t *testing.T) {
	tests := []struct {
		name   string
		cfg    idp.TenantConfig
		before bool // usable right after registration
		after  bool // usable after the sync delay
		err    error
	}{
		{"hybrid key trust", idp.TenantConfig{Hybrid: true, TrustType: identity.KeyTrust, SyncDelay: 30 * time.Minute}, false, true, nil},
		{"hybrid cert trust", idp.TenantConfig{Hybrid: true, TrustType: identity.CertificateTrust}, true, true, nil},
		{"hybrid cloud kerberos trust", idp.TenantConfig{Hybrid: true, TrustType: identity.CloudKerberosTrust}, true, true, nil},
		{"cloud only", idp.TenantConfig{}, false, false, idp.ErrNotHybrid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.cfg)
			_, tok := f.boundSignIn(t, testDevice)
			ec := newP256(t)
			require.NoError(t, f.p.RegisterKey(context.Background(), tok, "k", &ec.PublicKey))
			reg := f.clk.Now()
			ok, err := f.p.KeyUsableOnPremises("k", reg.Add(29*time.Minute))
			assert.ErrorIs(t, err, tc.err)
			assert.Equal(t, tc.before, ok)
			ok, err = f.p.KeyUsableOnPremises("k", reg.Add(30*time.Minute))
			assert.ErrorIs(t, err, tc.err)
			assert.Equal(t, tc.after, ok)
		})
	}
	f := newFixture(t, idp.TenantConfig{Hybrid: true})
	assert.Equal(t, idp.DefaultSyncDelay, f.tenant.SyncDelay)
	_, err := f.p.KeyUsableOnPremises("missing", time.Now())
	assert.ErrorIs(t, err, idp.ErrKeyNotFound)
}

func TestJWKSPublishesOnlyPublicKeys(t *testing.T) {
	f := newFixture(t, idp.TenantConfig{})
	raw, err := json.Marshal(f.p.JWKS())
	require.NoError(t, err)
	var set struct{ Keys []map[string]any }
	require.NoError(t, json.Unmarshal(raw, &set))
	require.Len(t, set.Keys, 1)
	k := set.Keys[0]
	assert.Equal(t, "EC", k["kty"])
	assert.Equal(t, "P-256", k["crv"])
	assert.Equal(t, "ES256", k["alg"])
	assert.Equal(t, "sig", k["use"])
	assert.NotContains(t, k, "d", "no private part")
	assert.Equal(t, f.p.SigningKeyID(), k["kid"])
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []idp.Option{idp.WithClock(nil), idp.WithRand(nil), idp.WithIssuer("http://x/{tid}"),
		idp.WithArgon2(idp.Argon2Params{}), idp.WithTokenLifetime(0), idp.WithTokenLifetime(48 * time.Hour), idp.WithLockout(0, time.Second)} {
		_, err := idp.New(o)
		assert.ErrorIs(t, err, idp.ErrInvalid)
	}
	p, err := idp.New(idp.WithIssuer("https://sts.example.test/{tid}/"), idp.WithArgon2(resettest.CheapArgon2()),
		idp.WithTokenLifetime(time.Minute), idp.WithLockout(3, time.Hour))
	require.NoError(t, err)
	assert.Equal(t, "https://sts.example.test/abc/", p.Issuer("ABC"))
}

func TestConcurrentSignIns(t *testing.T) {
	f := newFixture(t, idp.TenantConfig{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, err := f.p.AddUser(idp.UserConfig{TenantID: f.tenant.ID, UPN: fmt.Sprintf("u%d@contoso.test", i), Password: alicePW})
			if !assert.NoError(t, err) {
				return
			}
			p, err := f.p.SignIn(context.Background(), u.UPN, alicePW)
			if !assert.NoError(t, err) {
				return
			}
			code, _ := f.p.TOTPCode(u.UPN)
			tok, err := p.CompleteMFA(context.Background(), code)
			if assert.NoError(t, err) {
				_, err = mustVerifier(f.p).Verify(context.Background(), tok)
				assert.NoError(t, err)
			}
		}()
	}
	wg.Wait()
}

// mustVerifier is the PIN reset service's verifier for iss's tokens.
func mustVerifier(iss service.TokenIssuer) *service.JWTVerifier {
	v, err := service.VerifierFor(iss)
	if err != nil {
		panic(err)
	}
	return v
}
