package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/explain"
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

// errorLine is the one-line message for an error.
func errorLine(err error) string {
	var se *reset.StepError
	var pe *container.PINError
	var le *container.PINLockedError
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

// explainFlow is what the reset flow tells the user: this program's own
// refusals at the prompts, then explain.Message for the service's, the
// directory's and the reset package's.
func explainFlow(err error) string {
	switch {
	case errors.Is(err, errNoInput):
		return "No input."
	case errors.Is(err, errMismatch):
		return "The PINs do not match."
	}
	return explain.Message(err)
}
