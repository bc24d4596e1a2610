package explain_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/explain"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/resettest"
	"github.com/hellosim/hellosim/reset/service"
)

// generic is reset.Explain's message for an error nobody knows.
const generic = "Something went wrong and your PIN wasn't reset. Try again later."

// recoverErr wraps a service refusal as reset.NonDestructive returns it.
func recoverErr(e *service.Error) error { return fmt.Errorf("reset: recover: %w", e) }

func TestMessageOfEveryRefusal(t *testing.T) {
	t.Parallel()
	const (
		mfa         = "You need to verify your identity with a second method to reset your PIN."
		binding     = "This device's PIN recovery belongs to another account. Sign in with the account that set up Windows Hello."
		rateLater   = "Too many PIN reset attempts. Try again later."
		outOfDate   = "Your PIN recovery information is out of date, so your PIN can only be reset by creating a new one."
		expired     = "Your sign-in has expired. Sign in again."
		unreachable = "We can't reach the PIN reset service right now. Check your connection and try again."
		badPassword = "Your account or password is incorrect."
		badCode     = "That code didn't work. Check the code and try again."
		locked      = "Your account is temporarily locked to prevent unauthorized use. Try again later."
		disabled    = "Your account has been disabled. Contact your administrator."
		timedOut    = "Your sign-in timed out. Start again."
	)
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},

		// The PIN reset service, as its client returns refusals.
		{"mfa required", recoverErr(&service.Error{Status: 403, Code: service.CodeMFARequired}), mfa},
		{"binding mismatch", recoverErr(&service.Error{Status: 403, Code: service.CodeBindingMismatch}), binding},
		{"not onboarded", recoverErr(&service.Error{Status: 403, Code: service.CodeNotOnboarded}),
			"Your organization hasn't set up the PIN reset service."},
		{"unavailable in cloud", recoverErr(&service.Error{Status: 403, Code: service.CodeUnavailableInCloud}),
			"The PIN reset service isn't available in Azure Government."},
		{"rate limited with retry-after", recoverErr(&service.Error{Status: 429, Code: service.CodeRateLimited, RetryAfter: 90 * time.Second}),
			"Too many PIN reset attempts. Try again in 1m30s."},
		{"rate limited, retry-after rounded", recoverErr(&service.Error{Status: 429, Code: service.CodeRateLimited, RetryAfter: 1500 * time.Millisecond}),
			"Too many PIN reset attempts. Try again in 2s."},
		{"rate limited without retry-after", recoverErr(&service.Error{Status: 429, Code: service.CodeRateLimited}), rateLater},
		{"rate limited, unknown code", recoverErr(&service.Error{Status: 429, Code: "slow_down", RetryAfter: time.Minute}),
			"Too many PIN reset attempts. Try again in 1m0s."},
		{"rate limited sentinel", fmt.Errorf("reset: recover: %w", service.ErrRateLimited), rateLater},
		{"unknown key", recoverErr(&service.Error{Status: 400, Code: service.CodeUnknownKey}), outOfDate},
		{"retired key", recoverErr(&service.Error{Status: 410, Code: service.CodeKeyRetired}), outOfDate},
		{"invalid token", recoverErr(&service.Error{Status: 401, Code: service.CodeInvalidToken}), expired},
		{"replayed token", recoverErr(&service.Error{Status: 401, Code: service.CodeTokenReplayed}), expired},
		{"service unavailable", recoverErr(&service.Error{Status: 503, Code: service.CodeUnavailable, RetryAfter: time.Minute}), unreachable},
		{"service internal error", recoverErr(&service.Error{Status: 500, Code: service.CodeInternal}), unreachable},
		{"network error", recoverErr(&service.Error{Code: service.CodeUnavailable, Err: io.ErrUnexpectedEOF}), unreachable},
		{"bad response", recoverErr(&service.Error{Code: service.CodeBadResponse, Err: io.ErrUnexpectedEOF}), unreachable},
		{"malformed request", recoverErr(&service.Error{Status: 400, Code: service.CodeMalformedRequest}), generic},

		// The directory's sign-in.
		{"wrong password", fmt.Errorf("sign in: %w", idp.ErrWrongPassword), badPassword},
		{"unknown user", fmt.Errorf("sign in: %w", idp.ErrUnknownUser), badPassword},
		{"wrong code", fmt.Errorf("complete mfa: %w", idp.ErrWrongCode), badCode},
		{"account locked", fmt.Errorf("sign in: %w", &idp.LockedError{RetryAfter: time.Minute}), locked},
		{"account disabled", fmt.Errorf("sign in: %w", idp.ErrDisabled), disabled},
		{"sign-in expired", fmt.Errorf("complete mfa: %w", idp.ErrSignInExpired), timedOut},

		// The reset package and the container, through reset.Explain.
		{"not allowed", &reset.NotAllowedError{Kind: reset.KindNonDestructive, Entry: reset.EntrySettings, Reason: reset.ReasonPolicyDisabled},
			"PIN recovery isn't turned on for this device."},
		{"weak PIN", fmt.Errorf("%w: %w", reset.ErrWeakPIN, &container.PolicyError{Rule: container.RuleMinimumLength, Detail: "at least 6 characters"}),
			"That PIN doesn't meet the requirements: at least 6 characters."},
		{"weak PIN without detail", fmt.Errorf("%w: %w", reset.ErrWeakPIN, &container.PolicyError{Rule: container.RuleMinimumLength}),
			"That PIN doesn't meet the requirements."},
		{"no protector", container.ErrNoProtector,
			"PIN recovery isn't set up for your account on this device, so your PIN can only be reset by creating a new one."},
		{"no service", reset.ErrNoService, "The PIN reset service isn't configured on this device."},
		{"method unsupported", fmt.Errorf("%w: fido", reset.ErrMethodUnsupported), "That sign-in option isn't available here. Choose Password."},
		{"registration refused", fmt.Errorf("%w K1: register key: %w", reset.ErrRegistration, idp.ErrTokenRefused),
			"Your organization couldn't register your new PIN. Try again later."},
		// The directory's own refusal is more precise than "couldn't register".
		{"registration of a disabled account", fmt.Errorf("%w K1: register key: %w", reset.ErrRegistration, idp.ErrDisabled), disabled},
		{"wrong PIN", fmt.Errorf("unlock: %w", &container.PINError{Remaining: 2}), "That PIN is incorrect."},
		{"PIN locked", fmt.Errorf("unlock: %w", &container.PINLockedError{RetryAfter: time.Minute}), "Your PIN is locked for now. Try again later."},
		{"cancelled", fmt.Errorf("reset: %w", context.Canceled), "PIN reset was cancelled."},
		{"unknown", errors.New("something else"), generic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, explain.Message(tc.err), "%v", tc.err)
		})
	}
}

// Every reason reset.Check can refuse with reads as its Reason message.
func TestMessageOfEveryReason(t *testing.T) {
	t.Parallel()
	for r := reset.ReasonIncomplete; r <= reset.ReasonGovernmentWebSignIn; r++ {
		err := &reset.NotAllowedError{Kind: reset.KindDestructive, Entry: reset.EntryLockScreen, Reason: r, Detail: "admin detail"}
		got := explain.Message(err)
		assert.Equal(t, r.Message(), got, "%s", r)
		assert.NotEqual(t, generic, got, "%s", r)
		assert.NotContains(t, got, "admin detail", "%s: the detail is for logs", r)
	}
}

// The refusals of a real directory sign-in, as reset.Flow meets them.
func TestMessageOfDirectorySignIn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, err := idp.New(idp.WithArgon2(resettest.CheapArgon2()), idp.WithLockout(2, time.Minute))
	require.NoError(t, err)
	tenant, err := p.AddTenant(idp.TenantConfig{Domain: "contoso.test", ConsentedApps: []string{identity.PINResetServiceAppID, identity.PINResetClientAppID}})
	require.NoError(t, err)
	const password = "correct horse battery"
	alice, err := p.AddUser(idp.UserConfig{TenantID: tenant.ID, UPN: "alice@contoso.test", Password: password})
	require.NoError(t, err)
	bob, err := p.AddUser(idp.UserConfig{TenantID: tenant.ID, UPN: "bob@contoso.test", Password: password, Disabled: true})
	require.NoError(t, err)
	carol, err := p.AddUser(idp.UserConfig{TenantID: tenant.ID, UPN: "carol@contoso.test", Password: password})
	require.NoError(t, err)

	_, err = p.SignIn(ctx, "nobody@contoso.test", password)
	assert.Equal(t, "Your account or password is incorrect.", explain.Message(err), "%v", err)
	_, err = p.SignIn(ctx, alice.UPN, "wrong password")
	assert.Equal(t, "Your account or password is incorrect.", explain.Message(err), "%v", err)
	_, err = p.SignIn(ctx, alice.UPN, "wrong password") // the second failure locks
	assert.Equal(t, "Your account is temporarily locked to prevent unauthorized use. Try again later.", explain.Message(err), "%v", err)
	_, err = p.SignIn(ctx, bob.UPN, password)
	assert.Equal(t, "Your account has been disabled. Contact your administrator.", explain.Message(err), "%v", err)

	pending, err := p.SignIn(ctx, carol.UPN, password)
	require.NoError(t, err)
	code, err := p.TOTPCode(carol.UPN)
	require.NoError(t, err)
	_, err = pending.CompleteMFA(ctx, otherCode(code))
	assert.Equal(t, "That code didn't work. Check the code and try again.", explain.Message(err), "%v", err)
	_, err = pending.CompleteMFA(ctx, code)
	require.NoError(t, err)
	_, err = pending.CompleteMFA(ctx, code) // a completed sign-in is spent
	assert.Equal(t, "Your sign-in timed out. Start again.", explain.Message(err), "%v", err)
}

// otherCode is a six-digit code that differs from code in its last digit.
func otherCode(code string) string {
	b := []byte(code)
	b[len(b)-1] = '0' + (b[len(b)-1]-'0'+1)%10
	return string(b)
}
