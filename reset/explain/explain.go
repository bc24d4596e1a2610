// Package explain gives the messages a user sees at each refusal of the PIN
// reset flows.
//
// A PIN reset can stop in many places: the device may not be allowed to
// reset (a reset.Reason), the user may mistype a password or a verification
// code at the directory's sign-in, the PIN reset service may refuse the
// request, or the new PIN may not meet the PIN policy. Each layer has its
// own errors, and a program driving reset.Flow wants one sentence for the
// person at the keyboard, not the error chain. Message is that sentence.
//
// The PIN reset documentation gives little of Windows' own wording: the
// Azure Government known issue's "We can't open that page right now." is
// carried by reset.Reason, and Message reuses the Reason texts wherever the
// service refuses for the same cause (a tenant not onboarded, a cloud where
// the service is "not currently available"), so a refusal reads the same
// whether the device's check or the service found it. Elsewhere the messages
// keep to the short, plain sentences of the Windows and Azure AD sign-in
// screens: what went wrong, then what to do next.
//
// Message knows the errors of reset, reset/service and reset/idp; anything
// else gets reset.Explain's generic message. It lives outside package reset
// because reset does not import the service or the directory: it wraps what
// they return with %w, and reset.Explain, the default of reset.Flow, knows
// only the reset package's and the container's errors. Apart from the rule a refused
// PIN failed, no message repeats an error's text: what the service or the
// directory said stays in the error, for logs, and never reaches the screen.
package explain

import (
	"errors"
	"fmt"
	"time"

	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/service"
)

// Message returns the message a user would see for err, "" for nil. It is
// meant for reset.Flow's Explain field: the service's and the directory's
// refusals in words, then reset.Explain for the errors of the reset package
// and the container (a refusal's Reason, the PIN rule that failed, a wrong
// or locked PIN, a cancelled reset).
func Message(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, service.ErrMFARequired):
		// "Users are required to authenticate and complete multi-factor
		// authentication to reset their PIN" (pin-reset.md).
		return "You need to verify your identity with a second method to reset your PIN."
	case errors.Is(err, service.ErrBindingMismatch):
		return "This device's PIN recovery belongs to another account. Sign in with the account that set up Windows Hello."
	case errors.Is(err, service.ErrNotOnboarded):
		return reset.ReasonNotOnboarded.Message()
	case errors.Is(err, service.ErrUnavailableInCloud):
		return reset.ReasonGovernmentCloud.Message()
	case errors.Is(err, service.ErrRateLimited):
		if d := retryAfter(err); d > 0 {
			return fmt.Sprintf("Too many PIN reset attempts. Try again in %s.", d)
		}
		return "Too many PIN reset attempts. Try again later."
	case errors.Is(err, protector.ErrUnknownKey):
		// The protector is wrapped to a key the service no longer holds:
		// only a destructive reset remains until recovery is enrolled again.
		return "Your PIN recovery information is out of date, so your PIN can only be reset by creating a new one."
	case errors.Is(err, service.ErrUnauthorized):
		return "Your sign-in has expired. Sign in again."
	case errors.Is(err, service.ErrUnavailable), errors.Is(err, service.ErrBadResponse):
		return "We can't reach the PIN reset service right now. Check your connection and try again."
	case errors.Is(err, idp.ErrWrongPassword), errors.Is(err, idp.ErrUnknownUser):
		// One message for both, so the screen does not tell who has an account.
		return "Your account or password is incorrect."
	case errors.Is(err, idp.ErrWrongCode):
		return "That code didn't work. Check the code and try again."
	case errors.Is(err, idp.ErrLocked):
		return "Your account is temporarily locked to prevent unauthorized use. Try again later."
	case errors.Is(err, idp.ErrDisabled):
		return "Your account has been disabled. Contact your administrator."
	case errors.Is(err, idp.ErrSignInExpired):
		return "Your sign-in timed out. Start again."
	}
	return reset.Explain(err)
}

// retryAfter is the service's Retry-After, rounded to the second, or 0.
func retryAfter(err error) time.Duration {
	var se *service.Error
	if !errors.As(err, &se) {
		return 0
	}
	return se.RetryAfter.Round(time.Second)
}
