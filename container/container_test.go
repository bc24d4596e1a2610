package container

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/tpm"

	"github.com/hellosim/hellosim/container/event"
)

func TestProvisionUnlockSign(t *testing.T) {
	forEachAlg(t, func(t *testing.T, tp *tpm.TPM, cfg Config, c *Container) {

		assert.True(t, ValidID(c.ID()), "container ID %q", c.ID())
		assert.Regexp(t, `^\{[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}\}$`, c.KeyID())
		assert.Equal(t, uint64(1), c.Generation())
		assert.Equal(t, []string{LoginKeyName}, c.KeyNames())
		assert.Nil(t, c.Envelope())
		assert.False(t, c.HasProtector())
		assert.Equal(t, DestructiveOnly, c.UserState().CanReset)
		switch cfg.Algorithm {
		case tpm.RSA2048:
			pub, ok := c.PublicKey().(*rsa.PublicKey)
			require.True(t, ok)
			assert.Equal(t, 2048, pub.N.BitLen())
		case tpm.ECCP256:
			_, ok := c.PublicKey().(*ecdsa.PublicKey)
			assert.True(t, ok)
		}

		s := unlock(t, tp, c, testPIN)
		signVerify(t, s.Signer(), c.PublicKey())
		assert.True(t, samePublicKey(s.Signer().Public(), c.PublicKey()))
		require.NoError(t, s.Close())
		_, err := s.Signer().Sign(nil, make([]byte, 32), crypto.SHA256)
		assert.ErrorIs(t, err, ErrSessionClosed)
		assert.NoError(t, s.Close(), "Close is idempotent")
	})
}

func TestProvisionGivesDistinctContainers(t *testing.T) {
	tp := openTPM(t)
	a := provision(t, tp, testConfig())
	b := provision(t, tp, testConfig())
	assert.NotEqual(t, a.ID(), b.ID())
	assert.NotEqual(t, a.KeyID(), b.KeyID())
	assert.False(t, samePublicKey(a.PublicKey(), b.PublicKey()))
	// A's PIN protector does not open with B's salt: each container has its own.
	assert.NotEqual(t, a.salt, b.salt)
}

func TestProvisionChecksPolicyBeforeTheTPM(t *testing.T) {
	tp := openTPM(t)
	tp.ResetStats()
	_, err := Provision(context.Background(), tp, testConfig(), "1234")
	var pe *PolicyError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, RuleConstantDelta, pe.Rule)
	assert.Zero(t, tp.Stats().Total(), "no TPM command for a refused PIN")
}

func TestProvisionRefusesInvalidConfig(t *testing.T) {
	tp := openTPM(t)
	for name, mod := range map[string]func(*Config){
		"no user":        func(c *Config) { c.User = "" },
		"no user ID":     func(c *Config) { c.UserID = "" },
		"no tenant":      func(c *Config) { c.TenantID = "" },
		"long tenant":    func(c *Config) { c.TenantID = strings.Repeat("t", 256) },
		"long user":      func(c *Config) { c.User = strings.Repeat("u", 1025) },
		"bad algorithm":  func(c *Config) { c.Algorithm = 7 },
		"bad policy":     func(c *Config) { c.PINPolicy.MinimumLength = 2 },
		"long WAM field": func(c *Config) { c.WAMDefault = &WAMAccount{ID: strings.Repeat("w", 1025)} },
	} {
		cfg := testConfig()
		mod(&cfg)
		_, err := Provision(context.Background(), tp, cfg, testPIN)
		assert.ErrorIs(t, err, ErrInvalidConfig, name)
	}
}

func TestConfigDefaults(t *testing.T) {
	tp := openTPM(t)
	c := provision(t, tp, testConfig())
	cfg := c.Config()
	assert.Equal(t, PINPolicy{}.withDefaults(), cfg.PINPolicy)
	require.NotNil(t, cfg.WAMDefault)
	assert.Equal(t, sampleWAM(), *cfg.WAMDefault)
	cfg.WAMDefault.ID = "changed"
	assert.Equal(t, sampleWAM(), *c.Config().WAMDefault, "Config returns a copy")
}

func TestWrongPINSaysHowManyTriesRemain(t *testing.T) {
	tp := openTPM(t)
	c := provision(t, tp, testConfig())
	_, err := Unlock(context.Background(), tp, c, otherPIN)
	require.ErrorIs(t, err, ErrWrongPIN)
	var pe *PINError
	require.ErrorAs(t, err, &pe)
	st, serr := tp.LockoutStatus(context.Background())
	require.NoError(t, serr)
	assert.Equal(t, st.Remaining(), pe.Remaining)
	assert.Contains(t, err.Error(), fmt.Sprintf("%d tries remain", pe.Remaining))
	// The right PIN still works.
	s := unlock(t, tp, c, testPIN)
	signVerify(t, s.Signer(), c.PublicKey())
}

func TestEmptyPINSpendsNoTry(t *testing.T) {
	tp := openTPM(t)
	c := provision(t, tp, testConfig())
	before := failures(t, tp)
	_, err := Unlock(context.Background(), tp, c, "")
	assert.ErrorIs(t, err, ErrPINPolicy)
	assert.Equal(t, before, failures(t, tp))
}

// Windows configures TPM 2.0 to lock after 32 failures (WHfB tpm-fundamentals).
func TestLockoutAfter32WrongPINs(t *testing.T) {
	tp := openTPM(t)
	ctx := context.Background()
	c := provision(t, tp, testConfig())
	st, err := tp.LockoutStatus(ctx)
	require.NoError(t, err)
	if st.MaxTries != tpm.WindowsMaxTries || st.Failures != 0 {
		t.Skipf("TPM has maxTries %d, failures %d; the test needs Windows' 32 and a clean counter", st.MaxTries, st.Failures)
	}
	var events []event.Event
	opt := WithEventHandler(func(e event.Event) { events = append(events, e) })
	for want := 31; want >= 0; want-- {
		_, err := Unlock(ctx, tp, c, otherPIN, opt)
		var pe *PINError
		require.ErrorAs(t, err, &pe, "try %d", 32-want)
		require.Equal(t, want, pe.Remaining)
	}
	_, err = Unlock(ctx, tp, c, otherPIN, opt)
	require.ErrorIs(t, err, ErrPINLocked)
	var le *PINLockedError
	require.ErrorAs(t, err, &le)
	assert.Greater(t, le.RetryAfter, time.Duration(0))
	assert.LessOrEqual(t, le.RetryAfter, tpm.WindowsRecovery)
	assert.Contains(t, err.Error(), "next try possible in")

	// While locked, even the right PIN is refused.
	_, err = Unlock(ctx, tp, c, testPIN)
	assert.ErrorIs(t, err, ErrPINLocked)
	_, err = ChangePIN(ctx, tp, c, testPIN, thirdPIN)
	assert.ErrorIs(t, err, ErrPINLocked)

	require.Len(t, events, 33)
	for i, e := range events[:32] {
		assert.Equal(t, event.WrongPIN, e.Kind)
		assert.Equal(t, 31-i, e.Remaining)
	}
	assert.Equal(t, event.LockedOut, events[32].Kind)

	require.NoError(t, tp.ResetLockout(ctx, nil))
	s := unlock(t, tp, c, testPIN)
	signVerify(t, s.Signer(), c.PublicKey())
}

func TestChangePINKeepsKeys(t *testing.T) {
	tp := openTPM(t)
	ctx := context.Background()
	c := provision(t, tp, testConfig())
	n, err := ChangePIN(ctx, tp, c, testPIN, otherPIN)
	require.NoError(t, err)
	assert.Equal(t, c.Generation()+1, n.Generation())
	assert.Equal(t, c.ID(), n.ID())
	assert.Equal(t, c.KeyID(), n.KeyID())
	assert.True(t, samePublicKey(c.PublicKey(), n.PublicKey()))
	assert.Equal(t, c.keys, n.keys, "key blobs unchanged")

	_, err = Unlock(ctx, tp, n, testPIN)
	assert.ErrorIs(t, err, ErrWrongPIN, "the old PIN no longer opens the new container")
	s := unlock(t, tp, n, otherPIN)
	signVerify(t, s.Signer(), c.PublicKey())
}

func TestChangePINNeedsTheOldPIN(t *testing.T) {
	tp := openTPM(t)
	c := provision(t, tp, testConfig())
	_, err := ChangePIN(context.Background(), tp, c, thirdPIN, otherPIN)
	assert.ErrorIs(t, err, ErrWrongPIN)
}

func TestChangePINChecksPolicyFirst(t *testing.T) {
	tp := openTPM(t)
	ctx := context.Background()
	c := provision(t, tp, testConfig())
	before := failures(t, tp)
	_, err := ChangePIN(ctx, tp, c, thirdPIN, "9753")
	var pe *PolicyError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, RuleConstantDelta, pe.Rule)
	assert.Equal(t, before, failures(t, tp), "a refused new PIN spends no try of the old")
}

func TestChangePINHistory(t *testing.T) {
	tp := openTPM(t)
	ctx := context.Background()
	cfg := testConfig()
	cfg.PINPolicy.History = 3
	c := provision(t, tp, cfg) // history: A
	pins := []string{testPIN, otherPIN, thirdPIN, "470258"}
	var err error
	for i := 1; i < len(pins); i++ { // A→B→C→D; history D, C, B
		c, err = ChangePIN(ctx, tp, c, pins[i-1], pins[i])
		require.NoError(t, err, "change %d", i)
	}
	cur := pins[3]
	for _, reused := range pins[1:] {
		_, err := ChangePIN(ctx, tp, c, cur, reused)
		var pe *PolicyError
		require.ErrorAs(t, err, &pe, "reusing a PIN from the last 3")
		assert.Equal(t, RuleHistory, pe.Rule)
	}
	// A is four PINs back: allowed again.
	_, err = ChangePIN(ctx, tp, c, cur, pins[0])
	assert.NoError(t, err)

	// The history is encrypted: no entry appears in the file.
	// The last change succeeded: with rollback protection the TPM holds
	// pins[0] now, and c (the file from before it) unlocks with it.
	data := marshal(t, c)
	s := unlock(t, tp, c, pins[0])
	for _, p := range pins {
		mac := (&options{}).historyMAC(s.secret, c.id, enter(p))
		assert.NotContains(t, string(data), string(mac))
	}
}

func TestChangePINWithoutHistoryAllowsSamePIN(t *testing.T) {
	tp := openTPM(t)
	c := provision(t, tp, testConfig())
	assert.Empty(t, c.history)
	_, err := ChangePIN(context.Background(), tp, c, testPIN, testPIN)
	assert.NoError(t, err)
}

func TestPINExpiration(t *testing.T) {
	tp := openTPM(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := WithClock(func() time.Time { return now })
	cfg := testConfig()
	c, err := Provision(context.Background(), tp, cfg, testPIN, clock)
	require.NoError(t, err)
	assert.True(t, c.PINExpires().IsZero())
	assert.Equal(t, now, c.Created())

	cfg.PINPolicy.Expiration = 30
	c, err = Provision(context.Background(), tp, cfg, testPIN, clock)
	require.NoError(t, err)
	assert.Equal(t, now.AddDate(0, 0, 30), c.PINExpires())
	now = now.Add(48 * time.Hour)
	n, err := ChangePIN(context.Background(), tp, c, testPIN, otherPIN, clock)
	require.NoError(t, err)
	assert.Equal(t, now.AddDate(0, 0, 30), n.PINExpires(), "a new PIN restarts the clock")
}

func newServiceKey(t testing.TB, s protector.Scheme) *protector.ServicePrivateKey {
	t.Helper()
	k, err := protector.GenerateServiceKey(s)
	require.NoError(t, err)
	return k
}

// enableRecovery unlocks c with pin and enables PIN recovery to svc.
// openWithService gives a PIN recovery test a TPM (as openTPM) and a PIN
// reset service key (HPKE X25519).
func openWithService(t testing.TB) (*tpm.TPM, *protector.ServicePrivateKey) {
	t.Helper()
	return openTPM(t), newServiceKey(t, protector.HPKEX25519)
}

// recovered is the protector the service svc unwraps from c's envelope:
// what a PIN reset gives ResetPIN.
func recovered(t testing.TB, svc *protector.ServicePrivateKey, c *Container) *protector.Key {
	t.Helper()
	r, err := svc.Unwrap(c.Envelope())
	require.NoError(t, err)
	return r
}

func enableRecovery(t testing.TB, tp *tpm.TPM, c *Container, pin string, svc *protector.ServicePrivateKey) *Container {
	t.Helper()
	e, err := unlock(t, tp, c, pin).EnablePINRecovery(context.Background(), svc.Public())
	require.NoError(t, err)
	return e
}

func TestEnablePINRecoveryAndResetPIN(t *testing.T) {
	for _, scheme := range []protector.Scheme{protector.HPKEX25519, protector.HPKEXWing, protector.RSAOAEP3072} {
		t.Run(fmt.Sprint(scheme), func(t *testing.T) {
			tp := openTPM(t)
			ctx := context.Background()
			svc := newServiceKey(t, scheme)
			cfg := testConfig()
			cfg.PINPolicy.History = 5
			c := provision(t, tp, cfg)
			s := unlock(t, tp, c, testPIN)
			e, err := s.EnablePINRecovery(ctx, svc.Public())
			require.NoError(t, err)
			assert.Same(t, e, s.Container())
			assert.Equal(t, c.Generation()+1, e.Generation())
			assert.Equal(t, DestructiveAndNonDestructive, e.UserState().CanReset)
			env := e.Envelope()
			require.NotNil(t, env)
			assert.Equal(t, e.Binding(), env.Binding())
			assert.Equal(t, protector.Binding{TenantID: cfg.TenantID, UserID: cfg.UserID, ContainerID: c.ID()}, env.Binding())
			assert.Equal(t, svc.Public().ID(), env.KeyID())
			assert.Less(t, len(marshal(t, e)), 4096+1200, "container with envelope stays small")

			// The service unwraps R; the client resets the PIN with it.
			r, err := svc.Unwrap(env)
			require.NoError(t, err)
			defer r.Destroy()
			n, err := ResetPIN(ctx, tp, e, r, otherPIN, nil)
			require.NoError(t, err)
			assert.Equal(t, e.Generation()+1, n.Generation())
			assert.Equal(t, c.KeyID(), n.KeyID())
			assert.True(t, samePublicKey(c.PublicKey(), n.PublicKey()))
			assert.Equal(t, e.envelope, n.envelope, "without a next key the enrolment is kept")
			_, err = Unlock(ctx, tp, n, testPIN)
			assert.ErrorIs(t, err, ErrWrongPIN)
			ns := unlock(t, tp, n, otherPIN)
			signVerify(t, ns.Signer(), c.PublicKey())

			// History is cleared by the reset: the pre-reset PIN is allowed again.
			_, err = ChangePIN(ctx, tp, n, otherPIN, testPIN)
			assert.NoError(t, err)
		})
	}
}

func TestResetPINReenrolsUnderNextKey(t *testing.T) {
	tp := openTPM(t)
	ctx := context.Background()
	old, next := newServiceKey(t, protector.HPKEX25519), newServiceKey(t, protector.HPKEX25519)
	c := provision(t, tp, testConfig())
	e, err := unlock(t, tp, c, testPIN).EnablePINRecovery(ctx, old.Public())
	require.NoError(t, err)
	r := recovered(t, old, e)
	nk := next.Public()
	n, err := ResetPIN(ctx, tp, e, r, otherPIN, &nk)
	require.NoError(t, err)
	assert.Equal(t, next.Public().ID(), n.Envelope().KeyID())
	assert.NotEqual(t, e.encS, n.encS)
	_, err = r.Open(n.encS, n.ID())
	assert.Error(t, err, "the protector the service saw no longer opens the secret")
	_, err = old.Unwrap(n.Envelope())
	assert.Error(t, err)
	r2 := recovered(t, next, n)
	n2, err := ResetPIN(ctx, tp, n, r2, thirdPIN, nil)
	require.NoError(t, err)
	signVerify(t, unlock(t, tp, n2, thirdPIN).Signer(), c.PublicKey())
}

func TestEnablePINRecoveryAgainRewrapsUnderRotatedKey(t *testing.T) {
	tp := openTPM(t)
	ctx := context.Background()
	k1, k2 := newServiceKey(t, protector.HPKEX25519), newServiceKey(t, protector.HPKEXWing)
	c := provision(t, tp, testConfig())
	s := unlock(t, tp, c, testPIN)
	e1, err := s.EnablePINRecovery(ctx, k1.Public())
	require.NoError(t, err)
	e2, err := s.EnablePINRecovery(ctx, k2.Public())
	require.NoError(t, err)
	assert.Equal(t, e1.Generation()+1, e2.Generation())
	assert.Equal(t, k2.Public().ID(), e2.Envelope().KeyID())
	_, err = k1.Unwrap(e2.Envelope())
	assert.Error(t, err)
	r := recovered(t, k2, e2)
	_, err = ResetPIN(ctx, tp, e2, r, otherPIN, nil)
	assert.NoError(t, err)
}

func TestChangePINKeepsProtectorValid(t *testing.T) {
	tp, svc := openWithService(t)
	ctx := context.Background()
	c := provision(t, tp, testConfig())
	e := enableRecovery(t, tp, c, testPIN, svc)
	n, err := ChangePIN(ctx, tp, e, testPIN, otherPIN)
	require.NoError(t, err)
	assert.Equal(t, e.encS, n.encS)
	assert.Equal(t, e.envelope, n.envelope)
	r := recovered(t, svc, n)
	m, err := ResetPIN(ctx, tp, n, r, thirdPIN, nil)
	require.NoError(t, err)
	signVerify(t, unlock(t, tp, m, thirdPIN).Signer(), c.PublicKey())
}

func TestResetPINRefusals(t *testing.T) {
	tp, svc := openWithService(t)
	ctx := context.Background()
	c := provision(t, tp, testConfig())
	stranger, err := protector.NewKey(nil)
	require.NoError(t, err)

	_, err = ResetPIN(ctx, tp, c, stranger, otherPIN, nil)
	assert.ErrorIs(t, err, ErrNoProtector)

	e := enableRecovery(t, tp, c, testPIN, svc)
	_, err = ResetPIN(ctx, tp, e, stranger, otherPIN, nil)
	assert.ErrorIs(t, err, protector.ErrDecrypt, "another protector does not open the secret")

	r := recovered(t, svc, e)
	_, err = ResetPIN(ctx, tp, e, r, "1111", nil)
	assert.ErrorIs(t, err, ErrPINPolicy)
}

func TestReprovisionIsDestructive(t *testing.T) {
	tp, svc := openWithService(t)
	ctx := context.Background()
	cfg := testConfig()
	cfg.PINPolicy.MinimumLength = 6
	c := provision(t, tp, cfg)
	s := unlock(t, tp, c, testPIN)
	_, err := s.AddKey(ctx, "vpn", tpm.ECCP256)
	require.NoError(t, err)
	cert := selfSigned(t, s.Signer())
	_, err = s.AddCertificate(LoginKeyName, cert)
	require.NoError(t, err)
	full, err := s.EnablePINRecovery(ctx, svc.Public())
	require.NoError(t, err)

	_, err = Reprovision(ctx, tp, full, "12345")
	assert.ErrorIs(t, err, ErrPINPolicy, "the new PIN meets the same policy")

	n, err := Reprovision(ctx, tp, full, otherPIN)
	require.NoError(t, err)
	assert.Equal(t, full.ID(), n.ID())
	assert.Equal(t, full.Generation()+1, n.Generation())
	assert.NotEqual(t, full.KeyID(), n.KeyID())
	assert.False(t, samePublicKey(full.PublicKey(), n.PublicKey()))
	assert.Equal(t, full.Config(), n.Config())
	assert.Equal(t, []string{LoginKeyName}, n.KeyNames())
	assert.Empty(t, n.Certificates())
	assert.Nil(t, n.Envelope())
	assert.Equal(t, DestructiveOnly, n.UserState().CanReset)
	_, err = Unlock(ctx, tp, n, testPIN)
	assert.ErrorIs(t, err, ErrWrongPIN)
	signVerify(t, unlock(t, tp, n, otherPIN).Signer(), n.PublicKey())
}

func TestSRKIsPinned(t *testing.T) {
	tp := openTPM(t)
	c := provision(t, tp, testConfig())
	forged := c.clone()
	forged.srkName[len(forged.srkName)-1] ^= 1
	tp.ResetStats()
	_, err := Unlock(context.Background(), tp, forged, testPIN)
	assert.ErrorIs(t, err, tpm.ErrSRKMismatch)
	_, err = ChangePIN(context.Background(), tp, forged, testPIN, otherPIN)
	assert.ErrorIs(t, err, tpm.ErrSRKMismatch)
}

func TestSessionKeysAndCertificates(t *testing.T) {
	tp := openTPM(t)
	ctx := context.Background()
	c := provision(t, tp, testConfig())
	s := unlock(t, tp, c, testPIN)

	withKey, err := s.AddKey(ctx, "vpn", tpm.ECCP256)
	require.NoError(t, err)
	assert.Equal(t, []string{LoginKeyName, "vpn"}, withKey.KeyNames())
	assert.Equal(t, c.Generation()+1, withKey.Generation())
	_, err = s.AddKey(ctx, "vpn", tpm.RSA2048)
	assert.ErrorIs(t, err, ErrKeyExists)
	_, err = s.AddKey(ctx, LoginKeyName, tpm.RSA2048)
	assert.ErrorIs(t, err, ErrKeyExists)
	_, err = s.AddKey(ctx, "bad name", tpm.RSA2048)
	assert.ErrorIs(t, err, ErrInvalidConfig)

	vpn, err := s.Key("vpn")
	require.NoError(t, err)
	pub, err := withKey.PublicKeyOf("vpn")
	require.NoError(t, err)
	signVerify(t, vpn, pub)
	_, err = s.Key("nope")
	assert.ErrorIs(t, err, ErrNoKey)

	loginCert := selfSigned(t, s.Signer())
	vpnCert := selfSigned(t, vpn)
	_, err = s.AddCertificate("vpn", loginCert)
	assert.ErrorIs(t, err, ErrCertificateMismatch)
	_, err = s.AddCertificate("nope", loginCert)
	assert.ErrorIs(t, err, ErrNoKey)
	_, err = s.AddCertificate(LoginKeyName, loginCert)
	require.NoError(t, err)
	final, err := s.AddCertificate("vpn", vpnCert)
	require.NoError(t, err)
	certs := final.Certificates()
	require.Len(t, certs, 2)
	assert.Equal(t, loginCert.Raw, certs[0].Raw)
	got, ok := final.Certificate("vpn")
	require.True(t, ok)
	assert.Equal(t, vpnCert.Raw, got.Raw)

	// Replacing a key's certificate keeps one per key.
	again, err := s.AddCertificate(LoginKeyName, selfSigned(t, s.Signer()))
	require.NoError(t, err)
	assert.Len(t, again.Certificates(), 2)

	// Keys and certificates survive the binary format and a new session.
	parsed, err := Parse(marshal(t, again))
	require.NoError(t, err)
	assert.Len(t, parsed.Certificates(), 2)
	s2 := unlock(t, tp, parsed, testPIN)
	vpn2, err := s2.Key("vpn")
	require.NoError(t, err)
	signVerify(t, vpn2, pub)
}

// Operations never change their input: its encoding is the same afterwards.
func TestOperationsLeaveInputUnchanged(t *testing.T) {
	tp, svc := openWithService(t)
	ctx := context.Background()
	cfg := testConfig()
	cfg.PINPolicy.History = 4
	c := provision(t, tp, cfg)
	orig := marshal(t, c)
	check := func(step string) {
		t.Helper()
		assert.Equal(t, orig, marshal(t, c), "after %s", step)
	}

	s := unlock(t, tp, c, testPIN)
	check("Unlock")
	_, err := s.AddKey(ctx, "extra", tpm.ECCP256)
	require.NoError(t, err)
	check("AddKey")
	_, err = s.AddCertificate(LoginKeyName, selfSigned(t, s.Signer()))
	require.NoError(t, err)
	check("AddCertificate")
	e, err := s.EnablePINRecovery(ctx, svc.Public())
	require.NoError(t, err)
	check("EnablePINRecovery")
	_, err = ChangePIN(ctx, tp, c, testPIN, otherPIN)
	require.NoError(t, err)
	check("ChangePIN")
	_, err = ChangePIN(ctx, tp, c, "13579135", thirdPIN)
	require.Error(t, err)
	check("failed ChangePIN")
	_, err = Reprovision(ctx, tp, c, otherPIN)
	require.NoError(t, err)
	check("Reprovision")
	_ = c.UserState()
	_ = c.Config()
	_ = c.Certificates()
	check("accessors")

	eOrig := marshal(t, e)
	r := recovered(t, svc, e)
	nk := svc.Public()
	_, err = ResetPIN(ctx, tp, e, r, otherPIN, &nk)
	require.NoError(t, err)
	assert.Equal(t, eOrig, marshal(t, e), "after ResetPIN")

	cl := e.clone()
	cl.encS[0] ^= 0xff
	cl.keys[0].blob.Public[3] ^= 0xff
	cl.cfg.WAMDefault.ID = "x"
	assert.Equal(t, eOrig, marshal(t, e), "after changing a clone")
}

func TestCloneSharesNoMemory(t *testing.T) {
	tp := openTPM(t)
	c := provision(t, tp, testConfig())
	s := unlock(t, tp, c, testPIN)
	_, err := s.AddCertificate(LoginKeyName, selfSigned(t, s.Signer()))
	require.NoError(t, err)
	c, err = s.EnablePINRecovery(context.Background(), newServiceKey(t, protector.HPKEX25519).Public())
	require.NoError(t, err)
	n := c.clone()
	same := func(a, b []byte) bool { return len(a) > 0 && len(b) > 0 && &a[0] == &b[0] }
	cp, np := c.protectorFields(), n.protectorFields()
	for name, p := range map[string][2][]byte{
		"srkName": {c.srkName, n.srkName}, "salt": {c.salt, n.salt},
		"pin.Public": {cp.blob.Public, np.blob.Public}, "pin.Private": {cp.blob.Private, np.blob.Private}, "pin.nv": {cp.nv.Name, np.nv.Name},
		"key.Public": {c.keys[0].blob.Public, n.keys[0].blob.Public}, "key.Private": {c.keys[0].blob.Private, n.keys[0].blob.Private},
		"cert": {c.certs[0].der, n.certs[0].der}, "encS": {c.encS, n.encS}, "envelope": {c.envelope, n.envelope},
	} {
		assert.False(t, same(p[0], p[1]), name)
		assert.Equal(t, p[0], p[1], name)
	}
	assert.NotSame(t, c.cfg.WAMDefault, n.cfg.WAMDefault)
	assert.Equal(t, marshal(t, c), marshal(t, n))
}

func TestSessionStringShowsNoSecret(t *testing.T) {
	tp := openTPM(t)
	c := provision(t, tp, testConfig())
	s := unlock(t, tp, c, testPIN)
	secret := append([]byte(nil), s.secret...)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s), fmt.Sprint(c), fmt.Sprintf("%+v", c)} {
		assert.NotContains(t, out, string(secret))
		assert.NotContains(t, out, fmt.Sprintf("%x", secret))
		assert.NotContains(t, out, fmt.Sprint(secret))
		assert.NotContains(t, out, testPIN)
	}
	require.NoError(t, s.Close())
	assert.Nil(t, s.secret)
}

func TestSessionClosedRefusesWork(t *testing.T) {
	tp := openTPM(t)
	ctx := context.Background()
	c := provision(t, tp, testConfig())
	s := unlock(t, tp, c, testPIN)
	require.NoError(t, s.Close())
	_, err := s.AddKey(ctx, "k", tpm.ECCP256)
	assert.ErrorIs(t, err, ErrSessionClosed)
	_, err = s.Key(LoginKeyName)
	assert.ErrorIs(t, err, ErrSessionClosed)
	_, err = s.EnablePINRecovery(ctx, newServiceKey(t, protector.HPKEX25519).Public())
	assert.ErrorIs(t, err, ErrSessionClosed)
	objects, _, err := tp.LoadedHandles(ctx)
	require.NoError(t, err)
	assert.LessOrEqual(t, len(objects), 1, "only the SRK may stay loaded after Close")
}

func TestPINErrorMessages(t *testing.T) {
	assert.Equal(t, "container: wrong PIN; 5 tries remain before the TPM locks", (&PINError{Remaining: 5}).Error())
	assert.Equal(t, "container: wrong PIN; 1 try remains before the TPM locks", (&PINError{Remaining: 1}).Error())
	assert.Contains(t, (&PINError{Remaining: 0}).Error(), "no tries remain")
	assert.Equal(t, "container: wrong PIN", (&PINError{Remaining: -1}).Error())
	assert.Contains(t, (&PINLockedError{RetryAfter: 9*time.Minute + 30*time.Second}).Error(), "9m30s")
	assert.True(t, errors.Is(&PINLockedError{}, ErrPINLocked))
}

func TestSignerWorksWithPSS(t *testing.T) {
	tp := openTPM(t)
	c := provision(t, tp, testConfig())
	s := unlock(t, tp, c, testPIN)
	digest := sha256.Sum256([]byte("pss"))
	opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	sig, err := s.Signer().Sign(nil, digest[:], opts)
	require.NoError(t, err)
	assert.NoError(t, rsa.VerifyPSS(c.PublicKey().(*rsa.PublicKey), crypto.SHA256, digest[:], sig, opts))
}

// A zero Container is not a container; its methods still never panic.
func TestZeroContainerDoesNotPanic(t *testing.T) {
	tp := openTPM(t)
	ctx := context.Background()
	var c Container
	assert.Nil(t, c.PublicKey())
	assert.Nil(t, c.Envelope())
	assert.Empty(t, c.Certificates())
	assert.NotNil(t, c.clone())
	_ = c.UserState().String()
	data, err := c.MarshalBinary()
	require.NoError(t, err)
	_, err = Parse(data)
	assert.ErrorIs(t, err, ErrCorrupt)
	_, err = Unlock(ctx, tp, &c, testPIN)
	assert.Error(t, err)
	_, err = ChangePIN(ctx, tp, &c, testPIN, otherPIN)
	assert.Error(t, err)
	r, err := protector.NewKey(nil)
	require.NoError(t, err)
	_, err = ResetPIN(ctx, tp, &c, r, otherPIN, nil)
	assert.ErrorIs(t, err, ErrNoProtector)
	_, err = Unlock(ctx, tp, nil, testPIN)
	assert.Error(t, err)
}
