package reset_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/container/store"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/resettest"
	"github.com/hellosim/hellosim/reset/service"
)

type recorder struct{ events []reset.Event }

func (r *recorder) on(e reset.Event) { r.events = append(r.events, e) }

func (r *recorder) steps() []string {
	var s []string
	for _, e := range r.events {
		name := e.Step.String()
		if e.Err != nil {
			name += "!"
		}
		s = append(s, name)
	}
	return s
}

func run(t *testing.T, f *reset.Flow, c *container.Container) (*container.Container, *recorder, error) {
	t.Helper()
	rec := &recorder{}
	f.OnEvent = rec.on
	n, err := f.Run(context.Background(), c)
	for _, e := range rec.events {
		assert.NotEmpty(t, e.Message, "step %s has no message", e.Step)
	}
	return n, rec, err
}

// "Reset PIN from Settings": signed in with an alternate credential,
// password, MFA, new PIN; non-destructive because a protector is enrolled.
func TestFlowSettingsNonDestructive(t *testing.T) {
	w := resettest.New(t)
	f := w.Flow(t, reset.EntrySettings, newPIN)
	n, rec, err := run(t, f, w.Container)
	require.NoError(t, err)
	assert.Equal(t, []string{"check", "authenticate", "mfa", "new-pin", "reset", "done"}, rec.steps())
	assert.Equal(t, reset.KindNonDestructive, rec.events[0].Kind)
	assert.Equal(t, w.Container.KeyID(), n.KeyID())
	assert.Equal(t, []string{"password", "code", "pin"}, f.Prompt.(*resettest.Script).Asked())
	sign(t, w.TPM, n, newPIN)
}

// "Reset PIN above the Lock Screen", Azure AD joined: choose among the
// tenant's methods first.
func TestFlowLockScreenAzureADJoinedChoosesMethod(t *testing.T) {
	w := resettest.New(t)
	f := w.Flow(t, reset.EntryLockScreen, newPIN)
	f.Device.SignedIn = false
	f.Tenant.Methods = []reset.Method{reset.MethodPassword, reset.MethodSecurityKey}
	_, rec, err := run(t, f, w.Container)
	require.NoError(t, err)
	assert.Equal(t, []string{"check", "choose-method", "authenticate", "mfa", "new-pin", "reset", "done"}, rec.steps())
	assert.Equal(t, []string{"method", "password", "code", "pin"}, f.Prompt.(*resettest.Script).Asked())
}

func TestFlowLockScreenUnsupportedMethod(t *testing.T) {
	w := resettest.New(t)
	f := w.Flow(t, reset.EntryLockScreen, newPIN)
	f.Tenant.Methods = []reset.Method{reset.MethodPassword, reset.MethodSecurityKey}
	f.Prompt.(*resettest.Script).Method = reset.MethodSecurityKey
	_, rec, err := run(t, f, w.Container)
	var se *reset.StepError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, reset.StepChooseMethod, se.Step)
	assert.ErrorIs(t, err, reset.ErrMethodUnsupported)
	assert.Equal(t, []string{"check", "choose-method!"}, rec.steps())
}

// Hybrid joined above the lock screen: "Enter your password", no method list.
func TestFlowLockScreenHybridAsksPassword(t *testing.T) {
	w := resettest.New(t, resettest.WithHybrid(identity.CertificateTrust))
	f := w.Flow(t, reset.EntryLockScreen, newPIN)
	f.Device.Network.DomainController = false // non-destructive needs no DC
	_, rec, err := run(t, f, w.Container)
	require.NoError(t, err)
	assert.Equal(t, []string{"check", "authenticate", "mfa", "new-pin", "reset", "done"}, rec.steps())
}

// Hybrid key trust without a protector above the lock screen: destructive,
// which the documentation does not support there.
func TestFlowHybridKeyTrustLockScreenDestructiveRefused(t *testing.T) {
	w := resettest.New(t, resettest.WithHybrid(identity.KeyTrust), resettest.WithoutRecovery())
	f := w.Flow(t, reset.EntryLockScreen, newPIN)
	_, rec, err := run(t, f, w.Container)
	var se *reset.StepError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, reset.StepCheck, se.Step)
	assert.ErrorIs(t, err, reset.ReasonHybridKeyTrustLockScreen)
	assert.Equal(t, reset.ReasonHybridKeyTrustLockScreen.Message(), se.Message)
	assert.Equal(t, []string{"check!"}, rec.steps())
	assert.Empty(t, f.Prompt.(*resettest.Script).Asked(), "the user was asked something before the refusal")

	// From Settings, with a domain controller, it works and registers the key.
	f = w.Flow(t, reset.EntrySettings, newPIN)
	n, rec, err := run(t, f, w.Container)
	require.NoError(t, err)
	assert.Equal(t, []string{"check", "authenticate", "mfa", "new-pin", "reset", "register", "done"}, rec.steps())
	assert.Equal(t, reset.KindDestructive, rec.events[0].Kind)
	_, err = w.IdP.LookupKey(n.KeyID())
	assert.NoError(t, err)
}

func TestFlowSettingsNeedsSignedInUser(t *testing.T) {
	w := resettest.New(t)
	f := w.Flow(t, reset.EntrySettings, newPIN)
	f.Device.SignedIn = false
	_, _, err := run(t, f, w.Container)
	assert.ErrorIs(t, err, reset.ReasonNotSignedIn)
}

func TestFlowAsksAgainForAWeakPIN(t *testing.T) {
	w := resettest.New(t)
	f := w.Flow(t, reset.EntrySettings, "1234", "12", newPIN)
	n, rec, err := run(t, f, w.Container)
	require.NoError(t, err)
	assert.Equal(t, []string{"check", "authenticate", "mfa", "new-pin!", "new-pin!", "new-pin", "reset", "done"}, rec.steps())
	assert.Contains(t, rec.events[3].Message, "requirements")
	for _, e := range rec.events {
		assert.NotContains(t, e.Message, "1234")
	}
	sign(t, w.TPM, n, newPIN)

	// Three weak PINs end the flow.
	f = w.Flow(t, reset.EntrySettings, "1111")
	_, _, err = run(t, f, w.Container)
	var se *reset.StepError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, reset.StepNewPIN, se.Step)
	assert.ErrorIs(t, err, container.ErrPINPolicy)
}

func TestFlowRefusals(t *testing.T) {
	cases := []struct {
		name string
		opts []resettest.Option
		edit func(w *resettest.World, f *reset.Flow)
		step reset.Step
		want error
		msg  string
	}{
		{"wrong password", nil, func(w *resettest.World, f *reset.Flow) {
			f.Prompt.(*resettest.Script).TypedPassword = "hunter2hunter2"
		}, reset.StepAuthenticate, idp.ErrWrongPassword, "password is incorrect"},
		{"wrong code", nil, func(w *resettest.World, f *reset.Flow) {
			f.Prompt.(*resettest.Script).Code = func() string { return "000000" }
		}, reset.StepMFA, idp.ErrWrongCode, "code didn't work"},
		// The device believes the tenant onboarded; the service knows better.
		{"service: not onboarded", []resettest.Option{resettest.WithoutOnboarding()}, func(w *resettest.World, f *reset.Flow) {
			f.Tenant.ConsentedApps = []string{identity.PINResetServiceAppID, identity.PINResetClientAppID}
			f.Kind = reset.KindNonDestructive
		}, reset.StepReset, service.ErrNotOnboarded, "hasn't set up the PIN reset service"},
		{"service: down", nil, func(w *resettest.World, f *reset.Flow) {
			w.Server.Close()
		}, reset.StepReset, service.ErrUnavailable, "can't reach the PIN reset service"},
		{"government cloud", []resettest.Option{resettest.WithCloud(identity.AzureGovernment)}, func(w *resettest.World, f *reset.Flow) {
			f.Kind = reset.KindNonDestructive
		}, reset.StepCheck, reset.ReasonGovernmentCloud, "Azure Government"},
		{"no protector", []resettest.Option{resettest.WithoutRecovery()}, func(w *resettest.World, f *reset.Flow) {
			f.Kind = reset.KindNonDestructive
			f.Policy.EnablePINRecovery = true
		}, reset.StepCheck, container.ErrNoProtector, "PIN recovery isn't set up"},
		{"policy off", nil, func(w *resettest.World, f *reset.Flow) {
			f.Kind = reset.KindNonDestructive
			f.Policy.EnablePINRecovery = false
		}, reset.StepCheck, reset.ReasonPolicyDisabled, "PIN recovery isn't turned on"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := resettest.New(t, c.opts...)
			before := marshal(t, w.Container)
			f := w.Flow(t, reset.EntrySettings, newPIN)
			c.edit(w, f)
			n, rec, err := run(t, f, w.Container)
			assert.Nil(t, n)
			var se *reset.StepError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, c.step, se.Step)
			assert.ErrorIs(t, err, c.want)
			assert.Contains(t, se.Message, c.msg)
			last := rec.events[len(rec.events)-1]
			assert.Equal(t, c.step, last.Step)
			assert.Equal(t, se.Message, last.Message)
			assertIntact(t, w, w.Container, before, w.PIN)
		})
	}
}

func TestFlowStoresTheResult(t *testing.T) {
	w := resettest.New(t, resettest.WithoutRecovery())
	st, err := store.Open(t.TempDir())
	require.NoError(t, err)
	require.NoError(t, st.Save(w.Container))
	f := w.Flow(t, reset.EntrySettings, newPIN)
	f.Store = st
	n, rec, err := run(t, f, w.Container)
	require.NoError(t, err)
	assert.Equal(t, []string{"check", "authenticate", "mfa", "new-pin", "reset", "register", "store", "done"}, rec.steps())
	got, err := st.Load(w.Container.ID())
	require.NoError(t, err)
	assert.Equal(t, n.KeyID(), got.KeyID())
	assert.NotEqual(t, w.Container.KeyID(), got.KeyID())
}

func TestExplainCoversRefusals(t *testing.T) {
	for _, err := range []error{reset.ErrNoService, reset.ErrMethodUnsupported, reset.ErrRegistration, context.Canceled,
		&container.PINError{Remaining: 3}, &container.PINLockedError{}} {
		m := reset.Explain(err)
		assert.NotEqual(t, reset.Explain(assertUnknown{}), m, "%v", err)
	}
	assert.Empty(t, reset.Explain(nil))
	assert.Contains(t, resettest.Explain(&service.Error{Status: 429, Code: service.CodeRateLimited, RetryAfter: 90e9}), "1m30s")
}

type assertUnknown struct{}

func (assertUnknown) Error() string { return "unknown" }

// A flow that stores its result revokes the container it replaced: the
// old value (the same bytes as an old file) with its old PIN is refused
// by the TPM once the new one is saved, after either kind of reset.
func TestFlowRevokesTheReplacedContainer(t *testing.T) {
	for _, kind := range []reset.Kind{reset.KindNonDestructive, reset.KindDestructive} {
		t.Run(kind.String(), func(t *testing.T) {
			w := resettest.New(t)
			require.True(t, w.Container.RollbackProtection().On, "the test TPM keeps NV")
			st, err := store.Open(t.TempDir())
			require.NoError(t, err)
			require.NoError(t, st.Save(w.Container))
			f := w.Flow(t, reset.EntrySettings, newPIN)
			f.Kind = kind
			f.Store = st
			n, _, err := run(t, f, w.Container)
			require.NoError(t, err)
			_, err = container.Unlock(context.Background(), w.TPM, w.Container, w.PIN)
			require.ErrorIs(t, err, container.ErrRevoked, "the old container with its old PIN")
			s, err := container.Unlock(context.Background(), w.TPM, n, newPIN)
			require.NoError(t, err)
			require.NoError(t, s.Close())
		})
	}
}
