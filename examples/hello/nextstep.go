package main

import (
	"errors"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/idp"
)

// nextStep is the command that can help after err, said after the error
// line of a command that failed, or "" when running the command again is
// all there is to do. Every refusal a user can act on names its way out.
func nextStep(err error) string {
	var de *damagedError
	switch {
	case errors.As(err, &de):
		return "run 'hello reset --destructive' (a new key and PIN for the same user, registered with the directory), " +
			"or 'hello delete' and then 'hello provision'"
	case isKeyNotRegistered(err):
		return "run 'hello reset --destructive' (a new login key and PIN, registered with the directory)"
	case errors.Is(err, errNotConfirmed):
		return "answer y to confirm, or add -y"
	case errors.Is(err, container.ErrPINMayHaveChanged):
		return "run 'hello sign' with the new PIN"
	case errors.Is(err, container.ErrPINLocked):
		return "wait, then try again; 'hello status' shows when the next try is possible"
	case errors.Is(err, reset.ReasonPolicyDisabled), errors.Is(err, container.ErrNoProtector):
		return "run 'hello reset --destructive' (a new key and PIN); or, while you still know your PIN, " +
			"'hello enable-recovery' first, after which 'hello reset --non-destructive' keeps your keys"
	case errors.Is(err, errNotThePIN), errors.Is(err, container.ErrWrongPIN):
		return "forgot your PIN? run 'hello reset --destructive', or 'hello reset --non-destructive' if PIN recovery is enrolled ('hello status' says)"
	case errors.Is(err, errCodeUsed), errors.Is(err, idp.ErrWrongCode):
		return "run the reset again with the code 'hello totp' shows"
	case errors.Is(err, idp.ErrWrongPassword), errors.Is(err, idp.ErrUnknownUser):
		return "'hello demo-user' shows the demo user's name and password"
	case errors.Is(err, container.ErrPINPolicy), errors.Is(err, errMismatch), errors.Is(err, errSamePIN):
		return "run the command again with a PIN that meets the policy ('hello status' shows it)"
	}
	return ""
}
