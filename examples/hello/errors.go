package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/container/store"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/explain"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/tpm"
)

var (
	// errCodeUsed is a TOTP code of a time step already used: a code is
	// good once (RFC 6238 §5.2), in the demo directory as in the service.
	errCodeUsed = fmt.Errorf("%w: the code was already used", idp.ErrWrongCode)
	// errSamePIN is a new PIN equal to the current one.
	errSamePIN = errors.New("the new PIN is the current PIN; choose a different one")
	// errNotConfirmed is a destructive command the user did not confirm.
	errNotConfirmed = errors.New("not confirmed; nothing was changed")
)

// alreadyProvisionedError is a provision for a user who has a container.
type alreadyProvisionedError struct {
	user, keyID string
}

func (e *alreadyProvisionedError) Error() string {
	if e.keyID == "" {
		return fmt.Sprintf("already provisioned: %s has a Hello container; run 'hello delete' first", e.user)
	}
	return fmt.Sprintf("already provisioned: %s has a Hello container (NgcKeyId %s); run 'hello delete' first", e.user, e.keyID)
}

// exitCode maps an error to the documented exit codes.
func exitCode(err error) int {
	var se *reset.StepError
	var re *remoteError
	switch {
	case errors.Is(err, errUsage):
		return exitUsage
	case errors.As(err, &re):
		return re.code
	case errors.Is(err, errNoPINEntered), errors.Is(err, errNotThePIN):
		return exitWrongPIN
	case errors.Is(err, errNoContainer):
		return exitNoContainer
	case errors.Is(err, container.ErrPINMayHaveChanged):
		return exitPINUnsure
	case errors.Is(err, container.ErrWrongPIN):
		return exitWrongPIN
	case errors.Is(err, container.ErrPINLocked):
		return exitLocked
	case errors.Is(err, container.ErrPINPolicy), errors.Is(err, errMismatch), errors.Is(err, errSamePIN):
		return exitPINRefused
	case errors.As(err, &se):
		return exitReset
	case errors.Is(err, idp.ErrAssertionRefused), errors.Is(err, idp.ErrNonceExpired), errors.Is(err, idp.ErrNonceUnknown):
		return exitReset // hello sign-in refused
	case errors.Is(err, errSignIn):
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
	var ce *store.ConflictError
	switch {
	case errors.Is(err, errUsage):
		return strings.TrimPrefix(err.Error(), errUsage.Error()+": ")
	case errors.Is(err, container.ErrPINMayHaveChanged):
		return "the PIN may have changed: try the new PIN. The TPM's answer to the change was lost and the TPM could not be asked again; " +
			"it holds the new PIN or the old one, and your container opens with the PIN it holds (should the new PIN be refused, that try counts toward the TPM lockout, and the old PIN works)"
	case errors.As(err, &se):
		return fmt.Sprintf("reset stopped at step %q: %s", se.Step, se.Message)
	case errors.Is(err, errNoPINEntered):
		return "no PIN entered; type your PIN, or press Ctrl-D to cancel"
	case errors.Is(err, errNotThePIN) && errors.As(err, &pol):
		return "wrong PIN: " + pol.Detail + ", so it is not your PIN (not counted by the TPM)"
	case errors.As(err, &pe):
		switch {
		case pe.Remaining < 0:
			return "wrong PIN"
		case pe.Remaining == 0:
			return "wrong PIN, and that was the last try: " + lockedLine(lockoutRecovery)
		case pe.Remaining == 1:
			return "wrong PIN: 1 try remains before the TPM locks"
		}
		return fmt.Sprintf("wrong PIN: %d tries remain before the TPM locks", pe.Remaining)
	case errors.As(err, &le):
		return lockedLine(le.RetryAfter)
	case errors.As(err, &pol):
		return "the PIN does not meet the PIN policy: " + pol.Detail + " (rule " + pol.Rule.String() + ")"
	case errors.Is(err, tpm.ErrSimStateLocked):
		return "the simulated TPM is in use by another hello command (one at a time): let it finish, then run this command again"
	case errors.Is(err, tpm.ErrSimStateCorrupt):
		path, why := "", ""
		if se := (*tpm.SimStateError)(nil); errors.As(err, &se) {
			path, why = se.Path+" ", " ("+strings.TrimPrefix(se.Err.Error(), tpm.ErrSimStateCorrupt.Error()+": ")+")"
		}
		return fmt.Sprintf("the simulated TPM's state file %sis damaged%s and was left as it is: restore it from a copy; "+
			"or move it away to start a new simulated TPM, then run 'hello delete' and 'hello provision' (the container needs the old TPM)", path, why)
	case errors.Is(err, tpm.ErrSRKMismatch), errors.Is(err, tpm.ErrWrongTPM):
		return "this container was made on another TPM (its storage root key is pinned in the container); use --tpm with the TPM it was made on"
	case errors.As(err, &ce):
		return "the container changed while this command ran (another command saved it first); nothing was stored, run the command again"
	case errors.Is(err, errCodeUsed):
		return "that code was already used; wait for the next one in your authenticator"
	case errors.Is(err, idp.ErrWrongCode):
		return "the verification code is wrong"
	}
	return err.Error()
}

// lockoutRecovery is the recovery interval a message names when the TPM
// did not say (a wrong PIN that locked it): Windows' (tpm.WindowsRecovery),
// which the simulated TPM has.
const lockoutRecovery = tpm.WindowsRecovery

// lockedLine says that the TPM has locked every PIN, when a PIN can be
// tried again, and what does not help until then: both resets need the TPM
// (a new PIN would be locked too).
func lockedLine(retryAfter time.Duration) string {
	when := "later"
	if retryAfter > 0 {
		when = "in at most " + retryAfter.Round(time.Second).String()
	}
	return "the TPM has locked the PIN (dictionary-attack protection); it forgives one wrong PIN at a time, so a PIN can be tried again " + when +
		". A PIN reset cannot help before then: it needs the TPM too ('hello status' shows when)"
}

// explainFlow is what the reset flow tells the user: this program's own
// refusals at the prompts and the store's, then explain.Message for the
// service's, the directory's and the reset package's.
func explainFlow(err error) string {
	switch {
	case errors.Is(err, errNoInput):
		return "No input."
	case errors.Is(err, errCancelled):
		return "Cancelled."
	case errors.Is(err, errMismatch):
		return "The PINs do not match."
	case errors.Is(err, errCodeUsed):
		return "That code was already used. Wait for the next one in your authenticator."
	case errors.Is(err, idp.ErrWrongCode):
		return "That code didn't work; 'hello totp' shows the current one."
	case errors.Is(err, store.ErrConflict):
		return "Your PIN wasn't reset: the container changed while the reset ran (another command saved it first), so the new one was not stored. Run the reset again."
	case errors.Is(err, container.ErrCorrupt):
		return "Your PIN wasn't reset: the container file is damaged. Run 'hello delete' to remove it."
	case errors.Is(err, container.ErrPINLocked):
		var le *container.PINLockedError
		if errors.As(err, &le) {
			return sentence(lockedLine(le.RetryAfter)) + "."
		}
	}
	return explain.Message(err)
}
