package reset_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/resettest"
	"github.com/hellosim/hellosim/reset/service"
	"github.com/hellosim/hellosim/tpm"
)

const newPIN = "582046"

var schemes = []protector.Scheme{protector.HPKEX25519, protector.HPKEXWing, protector.RSAOAEP3072}

func marshal(t testing.TB, c *container.Container) []byte {
	t.Helper()
	b, err := c.MarshalBinary()
	require.NoError(t, err)
	return b
}

// sign signs a digest with the container's login key unlocked by pin.
func sign(t testing.TB, tp *tpm.TPM, c *container.Container, pin string) ([]byte, []byte) {
	t.Helper()
	ctx := context.Background()
	s, err := container.Unlock(ctx, tp, c, pin)
	require.NoError(t, err)
	defer s.Close()
	digest := sha256.Sum256([]byte("hello for business " + c.KeyID()))
	sig, err := s.Signer().Sign(nil, digest[:], crypto.SHA256)
	require.NoError(t, err)
	return digest[:], sig
}

func verifies(pub crypto.PublicKey, digest, sig []byte) bool {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(p, crypto.SHA256, digest, sig) == nil
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(p, digest, sig)
	}
	return false
}

func samePublic(a, b crypto.PublicKey) bool {
	type eq interface{ Equal(crypto.PublicKey) bool }
	x, ok := a.(eq)
	return ok && x.Equal(b)
}

// assertIntact checks purity: the input's bytes did not change and it still
// unlocks with its PIN.
func assertIntact(t *testing.T, w *resettest.World, c *container.Container, before []byte, pin string) {
	t.Helper()
	assert.Equal(t, before, marshal(t, c), "input container changed")
	digest, sig := sign(t, w.TPM, c, pin)
	assert.True(t, verifies(c.PublicKey(), digest, sig), "input no longer signs with its PIN")
}

func TestNonDestructiveResetKeepsKeys(t *testing.T) {
	for _, scheme := range schemes {
		t.Run(scheme.String(), func(t *testing.T) {
			ctx := context.Background()
			w := resettest.New(t, resettest.WithScheme(scheme))
			old := w.Container
			before := marshal(t, old)
			require.Equal(t, container.DestructiveAndNonDestructive, old.UserState().CanReset)

			n, err := reset.NonDestructive(ctx, w.Env(), old, reset.Request{Token: w.Token(t), NewPIN: newPIN})
			require.NoError(t, err)

			// Same NgcKeyId and public key; the old public key verifies new signatures.
			assert.Equal(t, old.KeyID(), n.KeyID())
			assert.Equal(t, old.ID(), n.ID())
			assert.True(t, samePublic(old.PublicKey(), n.PublicKey()))
			digest, sig := sign(t, w.TPM, n, newPIN)
			assert.True(t, verifies(old.PublicKey(), digest, sig), "old public key does not verify the reset container's signature")

			// The old PIN no longer unlocks the result.
			_, err = container.Unlock(ctx, w.TPM, n, w.PIN)
			assert.ErrorIs(t, err, container.ErrWrongPIN)

			// A fresh protector under the service's current key.
			require.True(t, n.HasProtector())
			assert.Equal(t, container.DestructiveAndNonDestructive, n.UserState().CanReset)
			assert.Equal(t, w.ServiceKey.Public().ID(), n.Envelope().KeyID())
			assert.Equal(t, scheme, n.Envelope().Scheme())
			assert.False(t, n.Envelope().Equal(old.Envelope()), "protector not re-enrolled")
			assert.Greater(t, n.Generation(), old.Generation())

			// Purity.
			assertIntact(t, w, old, before, w.PIN)

			// The fresh protector works: reset again from the result.
			third := "703914"
			n2, err := reset.NonDestructive(ctx, w.Env(), n, reset.Request{Token: w.Token(t), NewPIN: third})
			require.NoError(t, err)
			assert.Equal(t, old.KeyID(), n2.KeyID())
			sign(t, w.TPM, n2, third)
		})
	}
}

func TestNonDestructiveResetKeepsCertificatesAndExtraKeys(t *testing.T) {
	ctx := context.Background()
	w := resettest.New(t, resettest.WithAlgorithm(tpm.ECCP256))
	s, err := container.Unlock(ctx, w.TPM, w.Container, w.PIN)
	require.NoError(t, err)
	c, err := s.AddKey(ctx, "extra", tpm.ECCP256)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	n, err := reset.NonDestructive(ctx, w.Env(), c, reset.Request{Token: w.Token(t), NewPIN: newPIN})
	require.NoError(t, err)
	assert.Equal(t, c.KeyNames(), n.KeyNames())
	s2, err := container.Unlock(ctx, w.TPM, n, newPIN)
	require.NoError(t, err)
	defer s2.Close()
	k, err := s2.Key("extra")
	require.NoError(t, err)
	pub, err := c.PublicKeyOf("extra")
	require.NoError(t, err)
	assert.True(t, samePublic(pub, k.Public()))
}

func TestDestructiveResetMakesANewKey(t *testing.T) {
	for _, alg := range []tpm.KeyAlgorithm{tpm.RSA2048, tpm.ECCP256} {
		t.Run(fmt.Sprint(alg), func(t *testing.T) {
			ctx := context.Background()
			w := resettest.New(t, resettest.WithAlgorithm(alg))
			s, err := container.Unlock(ctx, w.TPM, w.Container, w.PIN)
			require.NoError(t, err)
			old, err := s.AddKey(ctx, "extra", tpm.ECCP256)
			require.NoError(t, err)
			require.NoError(t, s.Close())
			before := marshal(t, old)

			n, err := reset.Destructive(ctx, w.Env(), old, reset.Request{Token: w.Token(t), NewPIN: newPIN})
			require.NoError(t, err)

			assert.NotEqual(t, old.KeyID(), n.KeyID(), "destructive reset keeps the NgcKeyId")
			assert.False(t, samePublic(old.PublicKey(), n.PublicKey()))
			assert.False(t, n.HasProtector())
			assert.Nil(t, n.Envelope())
			assert.Equal(t, container.DestructiveOnly, n.UserState().CanReset)
			assert.Equal(t, []string{container.LoginKeyName}, n.KeyNames(), "extra keys survived")
			assert.Empty(t, n.Certificates())
			assert.Equal(t, old.Config().User, n.Config().User)

			// The directory got the new key.
			reg, err := w.IdP.LookupKey(n.KeyID())
			require.NoError(t, err)
			assert.True(t, samePublic(n.PublicKey(), reg.Public))
			assert.Equal(t, w.User.ObjectID, reg.ObjectID)

			// New PIN unlocks and signs with the new key; the old PIN does not.
			digest, sig := sign(t, w.TPM, n, newPIN)
			assert.True(t, verifies(n.PublicKey(), digest, sig))
			assert.False(t, verifies(old.PublicKey(), digest, sig))
			_, err = container.Unlock(ctx, w.TPM, n, w.PIN)
			assert.ErrorIs(t, err, container.ErrWrongPIN)

			assertIntact(t, w, old, before, w.PIN)
		})
	}
}

func TestDestructiveResetWithoutDirectory(t *testing.T) {
	w := resettest.New(t, resettest.WithoutRecovery())
	env := w.Env()
	env.Directory = nil
	n, err := reset.Destructive(context.Background(), env, w.Container, reset.Request{NewPIN: newPIN})
	require.NoError(t, err)
	assert.NotEqual(t, w.Container.KeyID(), n.KeyID())
	_, err = w.IdP.LookupKey(n.KeyID())
	assert.ErrorIs(t, err, idp.ErrKeyNotFound)
}

// TestNonDestructiveRefusals covers each refusal of a non-destructive reset;
// each leaves the input intact.
func TestNonDestructiveRefusals(t *testing.T) {
	cases := []struct {
		name  string
		opts  []resettest.Option
		setup func(t *testing.T, w *resettest.World, env *reset.Env, req *reset.Request)
		want  []error
	}{
		{"no MFA", nil, func(t *testing.T, w *resettest.World, _ *reset.Env, req *reset.Request) {
			req.Token = w.TokenWithoutMFA(t)
		}, []error{service.ErrMFARequired}},
		{"other tenant", nil, func(t *testing.T, w *resettest.World, _ *reset.Env, req *reset.Request) {
			tn, err := w.IdP.AddTenant(idp.TenantConfig{Domain: "fabrikam.test", ConsentedApps: []string{identity.PINResetServiceAppID, identity.PINResetClientAppID}})
			require.NoError(t, err)
			_, err = w.IdP.AddUser(idp.UserConfig{TenantID: tn.ID, UPN: "mallory@fabrikam.test", Password: w.Password})
			require.NoError(t, err)
			req.Token = w.TokenFor(t, "mallory@fabrikam.test")
		}, []error{service.ErrDeviceNotAllowed}}, // her sign-in is not bound to this tenant's device
		{"other user's envelope", nil, func(t *testing.T, w *resettest.World, _ *reset.Env, req *reset.Request) {
			bob := w.AddUser(t, "bob")
			req.Token = w.TokenFor(t, bob.UPN)
		}, []error{service.ErrBindingMismatch}},
		{"not onboarded", []resettest.Option{resettest.WithoutOnboarding()}, nil, []error{service.ErrNotOnboarded}},
		{"only the client app consented", []resettest.Option{resettest.WithConsents(identity.PINResetClientAppID)}, nil, []error{service.ErrNotOnboarded}},
		{"government cloud", []resettest.Option{resettest.WithCloud(identity.AzureGovernment)}, nil, []error{service.ErrUnavailableInCloud}},
		{"rate limited", []resettest.Option{resettest.WithRateLimit(service.RateLimit{Requests: 1, Per: time.Hour})},
			func(t *testing.T, w *resettest.World, env *reset.Env, req *reset.Request) {
				_, err := reset.NonDestructive(context.Background(), *env, w.Container, reset.Request{Token: w.Token(t), NewPIN: newPIN})
				require.NoError(t, err)
			}, []error{service.ErrRateLimited}},
		{"replayed token", nil, func(t *testing.T, w *resettest.World, env *reset.Env, req *reset.Request) {
			_, err := reset.NonDestructive(context.Background(), *env, w.Container, *req)
			require.NoError(t, err)
		}, []error{service.ErrReplay, service.ErrUnauthorized}},
		{"forged token", nil, func(t *testing.T, w *resettest.World, _ *reset.Env, req *reset.Request) {
			req.Token = req.Token[:len(req.Token)-4] + "AAAA"
		}, []error{service.ErrUnauthorized}},
		{"service down", nil, func(t *testing.T, w *resettest.World, _ *reset.Env, _ *reset.Request) {
			w.Server.Close()
		}, []error{service.ErrUnavailable}},
		{"no service", nil, func(t *testing.T, w *resettest.World, env *reset.Env, _ *reset.Request) {
			env.Service = nil
		}, []error{reset.ErrNoService}},
		{"weak PIN", nil, func(t *testing.T, w *resettest.World, _ *reset.Env, req *reset.Request) {
			req.NewPIN = "123456"
		}, []error{reset.ErrWeakPIN, container.ErrPINPolicy}},
		{"no protector", []resettest.Option{resettest.WithoutRecovery()}, nil, []error{container.ErrNoProtector, container.ErrNoProtector}},
		{"no TPM", nil, func(t *testing.T, w *resettest.World, env *reset.Env, _ *reset.Request) {
			env.TPM = nil
		}, []error{reset.ErrInvalidEnv}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := resettest.New(t, c.opts...)
			env := w.Env()
			req := reset.Request{Token: w.Token(t), NewPIN: newPIN}
			before := marshal(t, w.Container)
			if c.setup != nil {
				c.setup(t, w, &env, &req)
			}
			n, err := reset.NonDestructive(context.Background(), env, w.Container, req)
			require.Error(t, err)
			assert.Nil(t, n)
			for _, want := range c.want {
				assert.ErrorIs(t, err, want)
			}
			assert.NotContains(t, err.Error(), req.NewPIN, "error shows the PIN")
			assertIntact(t, w, w.Container, before, w.PIN)
		})
	}
}

func TestRateLimitSaysWhenToRetry(t *testing.T) {
	w := resettest.New(t, resettest.WithRateLimit(service.RateLimit{Requests: 1, Per: time.Hour}))
	ctx := context.Background()
	_, err := reset.NonDestructive(ctx, w.Env(), w.Container, reset.Request{Token: w.Token(t), NewPIN: newPIN})
	require.NoError(t, err)
	_, err = reset.NonDestructive(ctx, w.Env(), w.Container, reset.Request{Token: w.Token(t), NewPIN: newPIN})
	var se *service.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 429, se.Status)
	assert.Greater(t, se.RetryAfter, time.Duration(0))
}

func TestWeakPINSpendsNoToken(t *testing.T) {
	w := resettest.New(t)
	ctx := context.Background()
	tok := w.Token(t)
	_, err := reset.NonDestructive(ctx, w.Env(), w.Container, reset.Request{Token: tok, NewPIN: "1111"})
	var pe *container.PolicyError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, container.RuleConstantDelta, pe.Rule)
	// The token was never sent, so it still works.
	_, err = reset.NonDestructive(ctx, w.Env(), w.Container, reset.Request{Token: tok, NewPIN: newPIN})
	assert.NoError(t, err)
}

func TestDestructiveRefusals(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, w *resettest.World, env *reset.Env, req *reset.Request)
		want  []error
	}{
		{"directory refuses a token without MFA", func(t *testing.T, w *resettest.World, _ *reset.Env, req *reset.Request) {
			req.Token = w.TokenWithoutMFA(t)
		}, []error{idp.ErrTokenWithoutMFA, reset.ErrRegistration}},
		{"directory refuses a bad token", func(t *testing.T, w *resettest.World, _ *reset.Env, req *reset.Request) {
			req.Token = "not.a.token"
		}, []error{idp.ErrTokenRefused}},
		{"weak PIN", func(t *testing.T, w *resettest.World, _ *reset.Env, req *reset.Request) {
			req.NewPIN = "12"
		}, []error{reset.ErrWeakPIN, container.ErrPINPolicy}},
		{"no TPM", func(t *testing.T, w *resettest.World, env *reset.Env, _ *reset.Request) {
			env.TPM = nil
		}, []error{reset.ErrInvalidEnv}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := resettest.New(t)
			env := w.Env()
			req := reset.Request{Token: w.Token(t), NewPIN: newPIN}
			before := marshal(t, w.Container)
			c.setup(t, w, &env, &req)
			n, err := reset.Destructive(context.Background(), env, w.Container, req)
			require.Error(t, err)
			assert.Nil(t, n)
			for _, want := range c.want {
				assert.ErrorIs(t, err, want)
			}
			assertIntact(t, w, w.Container, before, w.PIN)
			keys, err := w.IdP.RegisteredKeys(w.User.UPN)
			require.NoError(t, err)
			assert.Empty(t, keys, "a failed reset registered a key")
		})
	}
}

// brokenService returns a protector that does not open the container's
// secret: ResetPIN fails after the service answered, and R is destroyed.
type brokenService struct {
	reset.Service
	got *protector.Key
}

func (b *brokenService) Recover(ctx context.Context, token string, env *protector.Envelope) (*protector.Key, error) {
	k, err := protector.NewKey(nil)
	b.got = k
	return k, err
}

func TestNonDestructiveDestroysProtectorOnFailure(t *testing.T) {
	w := resettest.New(t)
	bs := &brokenService{Service: w.Client}
	before := marshal(t, w.Container)
	_, err := resetThrough(t, w, bs)
	require.Error(t, err)
	assertDestroyed(t, bs.got, "R not destroyed after a failed reset")
	assertIntact(t, w, w.Container, before, w.PIN)
}

func TestNonDestructiveDestroysProtectorOnSuccess(t *testing.T) {
	w := resettest.New(t)
	spy := &spyService{Service: w.Client}
	_, err := resetThrough(t, w, spy)
	require.NoError(t, err)
	assertDestroyed(t, spy.got, "R not destroyed after the reset")
}

// resetThrough runs a non-destructive reset of w's container to newPIN
// with svc as the PIN reset service.
func resetThrough(t *testing.T, w *resettest.World, svc reset.Service) (*container.Container, error) {
	t.Helper()
	env := w.Env()
	env.Service = svc
	return reset.NonDestructive(context.Background(), env, w.Container, reset.Request{Token: w.Token(t), NewPIN: newPIN})
}

// assertDestroyed asserts the protector k was handed out and destroyed.
func assertDestroyed(t *testing.T, k *protector.Key, msg string) {
	t.Helper()
	require.NotNil(t, k)
	_, err := k.Seal([]byte("x"), "c")
	assert.ErrorIs(t, err, protector.ErrDestroyed, msg)
}

type spyService struct {
	reset.Service
	got *protector.Key
}

func (s *spyService) Recover(ctx context.Context, token string, env *protector.Envelope) (*protector.Key, error) {
	k, err := s.Service.Recover(ctx, token, env)
	s.got = k
	return k, err
}

func TestResultSharesNoMemoryWithInput(t *testing.T) {
	w := resettest.New(t)
	ctx := context.Background()
	in := w.Container
	before := marshal(t, in)
	n, err := reset.NonDestructive(ctx, w.Env(), in, reset.Request{Token: w.Token(t), NewPIN: newPIN})
	require.NoError(t, err)
	d, err := reset.Destructive(ctx, w.Env(), n, reset.Request{Token: w.Token(t), NewPIN: "918273"})
	require.NoError(t, err)
	// Working with the results leaves the input as it was.
	_, err = container.ChangePIN(ctx, w.TPM, d, "918273", "406182")
	require.NoError(t, err)
	assert.Equal(t, before, marshal(t, in))
}

func TestRequestRedactsSecrets(t *testing.T) {
	r := reset.Request{Token: "eyJsecret", NewPIN: "582046"}
	for _, s := range []string{fmt.Sprint(r), fmt.Sprintf("%v %+v %#v %s %q", r, r, r, r, r), r.String()} {
		assert.NotContains(t, s, "eyJsecret")
		assert.NotContains(t, s, "582046")
	}
}

func TestContainerCanReset(t *testing.T) {
	w := resettest.New(t)
	d, p, tn := w.Device(), w.Policy(), w.ResetTenant()
	assert.Equal(t, container.DestructiveAndNonDestructive, reset.ContainerCanReset(w.Container, d, p, tn))
	assert.Equal(t, w.Container.UserState().CanReset, reset.ContainerCanReset(w.Container, d, p, tn))

	n, err := reset.Destructive(context.Background(), w.Env(), w.Container, reset.Request{Token: w.Token(t), NewPIN: newPIN})
	require.NoError(t, err)
	assert.Equal(t, container.DestructiveOnly, reset.ContainerCanReset(n, d, p, tn))
	assert.Equal(t, n.UserState().CanReset, reset.ContainerCanReset(n, d, p, tn))

	d.Edition = reset.EditionOther
	assert.Equal(t, container.Unknown, reset.ContainerCanReset(w.Container, d, p, tn))
	assert.True(t, errors.Is(reset.Check(d, p, tn, reset.EntrySettings, reset.KindDestructive), reset.ReasonEdition))
}
