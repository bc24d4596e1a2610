package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/service"
	"github.com/hellosim/hellosim/tpm"
)

// exitCode maps an error to the documented exit codes.
func exitCode(err error) int {
	var se *reset.StepError
	switch {
	case errors.Is(err, errUsage):
		return exitUsage
	case errors.Is(err, errNoContainer):
		return exitNoContainer
	case errors.Is(err, container.ErrWrongPIN):
		return exitWrongPIN
	case errors.Is(err, container.ErrPINLocked):
		return exitLocked
	case errors.Is(err, container.ErrPINPolicy), errors.Is(err, errMismatch):
		return exitPINRefused
	case errors.As(err, &se):
		return exitReset
	}
	return exitFailure
}

// explain is the one-line message for an error.
func explain(err error) string {
	var se *reset.StepError
	var pe *container.PINError
	var le *container.LockoutError
	var pol *container.PolicyError
	switch {
	case errors.Is(err, errUsage):
		return strings.TrimPrefix(err.Error(), errUsage.Error()+": ")
	case errors.As(err, &se):
		return fmt.Sprintf("reset stopped at step %q: %s", se.Step, se.Message)
	case errors.As(err, &pe):
		if pe.Remaining < 0 {
			return "wrong PIN"
		}
		return fmt.Sprintf("wrong PIN: %d tries remain before the TPM locks", pe.Remaining)
	case errors.As(err, &le):
		if le.RetryAfter > 0 {
			return fmt.Sprintf("the TPM has locked the PIN (dictionary-attack protection): try again in %s", le.RetryAfter.Round(time.Second))
		}
		return "the TPM has locked the PIN (dictionary-attack protection)"
	case errors.As(err, &pol):
		return "the PIN does not meet the PIN policy: " + pol.Detail + " (rule " + pol.Rule.String() + ")"
	case errors.Is(err, tpm.ErrSRKMismatch), errors.Is(err, tpm.ErrWrongTPM):
		return "this container was made on another TPM (its storage root key is pinned in the container); use --tpm with the TPM it was made on"
	}
	return err.Error()
}

// explainFlow is what the reset flow tells the user: the service's and the
// directory's refusals in words, then reset.Explain for the rest.
func explainFlow(err error) string {
	var se *service.Error
	var locked *idp.LockedError
	switch {
	case errors.Is(err, service.ErrMFARequired):
		return "You need to verify your identity with a second method to reset your PIN."
	case errors.Is(err, service.ErrBindingMismatch):
		return "This device's PIN recovery belongs to another account."
	case errors.Is(err, service.ErrNotOnboarded):
		return reset.ReasonNotOnboarded.Message()
	case errors.Is(err, service.ErrUnavailableInCloud):
		return reset.ReasonGovernmentCloud.Message()
	case errors.As(err, &se) && errors.Is(err, service.ErrRateLimited):
		return fmt.Sprintf("Too many PIN reset attempts. Try again in %s.", se.RetryAfter.Round(time.Second))
	case errors.Is(err, service.ErrUnknownKey):
		return "Your PIN recovery information is out of date; reset destructively or enable recovery again."
	case errors.Is(err, service.ErrUnauthorized):
		return "Your sign-in has expired. Sign in again."
	case errors.Is(err, service.ErrUnavailable), errors.Is(err, service.ErrBadResponse):
		return "We can't reach the PIN reset service right now."
	case errors.Is(err, idp.ErrWrongPassword), errors.Is(err, idp.ErrUnknownUser):
		return "Your account or password is incorrect."
	case errors.Is(err, idp.ErrWrongCode):
		return "That code didn't work. Check the code and try again."
	case errors.As(err, &locked):
		return "Your account is temporarily locked to prevent unauthorized use. Try again later."
	case errors.Is(err, errNoInput):
		return "No input."
	case errors.Is(err, errMismatch):
		return "The PINs do not match."
	}
	return reset.Explain(err)
}
