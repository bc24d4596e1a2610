package container

import (
	"context"
	"errors"
	"fmt"

	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/tpm"

	"github.com/hellosim/hellosim/container/event"
)

// ChangePIN sets a new PIN, knowing the old one. The new PIN is checked
// against the policy (ErrPINPolicy) before the TPM is asked anything, then
// against the PIN history; the container secret is unsealed with the old PIN
// and sealed under the new one. Keys, certificates, the NgcKeyId and the PIN
// reset protector enrolment are unchanged (the secret they hang on is the
// same). A wrong old PIN is ErrWrongPIN and counts toward the TPM lockout.
// The new PIN's expiration clock starts now; with WithPINPolicy the new PIN
// is held to, and the new container records, the policy given.
//
// With rollback protection (RollbackProtection) the TPM changes the NV
// index's authValue in place, last of all: the old PIN is refused from then
// on, through this container and every copy of it. The container salt does
// not change, so should the process die before the caller saves the new
// container, the old file unlocks with the new PIN. Should the TPM's answer
// to the change be lost, ChangePIN asks the TPM which PIN it holds without
// spending a dictionary-attack try (tpm.TPM.ChangeSecretAuth): it succeeds
// when the new one, and fails when the old one. When the TPM cannot be
// asked, the error is ErrPINMayHaveChanged: the TPM holds one of the two
// PINs and the file from before opens with it. Five TPM commands.
func ChangePIN(ctx context.Context, t *tpm.TPM, c *Container, oldPIN, newPIN string, opts ...Option) (*Container, error) {
	o := newOptions(opts)
	if c == nil || t == nil {
		return nil, errors.New("container: change PIN: nil container or TPM")
	}
	policy, newP, err := o.newPIN(c, newPIN)
	if err != nil {
		return nil, err
	}
	defer clear(newP)
	oldP := o.enterPIN(oldPIN)
	defer clear(oldP)
	s, err := unsealSecret(ctx, t, c, oldP, o)
	if err != nil {
		return nil, err
	}
	defer clear(s)
	history, err := o.openHistory(s, c.id, c.history)
	if err != nil {
		return nil, fmt.Errorf("container: change PIN: %w", err)
	}
	defer func() {
		for _, h := range history {
			clear(h)
		}
	}()
	// The history holds at most the recorded policy's History PINs; a
	// policy from device management with a shorter one looks at fewer.
	recent := history[:min(len(history), policy.History)]
	mac := o.historyMAC(s, c.id, newP)
	defer clear(mac)
	if inHistory(recent, mac) {
		return nil, &PolicyError{Rule: RuleHistory, Detail: fmt.Sprintf("the PIN is one of the last %d PINs", policy.History)}
	}
	n := c.next()
	n.cfg.PINPolicy = policy
	if err := c.pin.rekey(ctx, t, n, s, newP, &o); err != nil {
		return nil, fmt.Errorf("container: change PIN: %w", err)
	}
	if err := n.setPIN(s, newP, recent, &o); err != nil {
		return nil, fmt.Errorf("container: change PIN: %w", err)
	}
	if err := n.authenticate(s, &o); err != nil {
		return nil, fmt.Errorf("container: change PIN: %w", err)
	}
	// The one step that may change the TPM, once nothing else can fail.
	if err := c.pin.commitChange(ctx, t, c.salt, oldP, newP, &o); err != nil {
		if errors.Is(err, tpm.ErrChangeAuthLost) {
			return nil, fmt.Errorf("container: change PIN: %w: %w", ErrPINMayHaveChanged, err)
		}
		if errors.Is(err, tpm.ErrAuthFailed) || errors.Is(err, tpm.ErrLockedOut) {
			return nil, o.pinError(ctx, c, err)
		}
		return nil, fmt.Errorf("container: change PIN: %w", err)
	}
	o.emit(ctx, n, event.Event{Kind: event.PINChanged})
	return n, nil
}

// ResetPIN is the core of a non-destructive PIN reset: with the PIN reset
// protector r the service returned, it decrypts the container secret, checks
// the new PIN against the policy, seals the secret under the new PIN and
// clears the PIN history ("History is not preserved through PIN reset",
// PassportForWork CSP). Keys, certificates and the NgcKeyId are kept.
//
// When next is not nil a fresh protector R' is enrolled, wrapped to *next, so
// the protector the service has seen is not used again; otherwise the
// enrolment stays as it was. r stays the caller's to Destroy. It emits
// event.Reset. The new PIN's expiration clock starts now; with WithPINPolicy
// the new PIN is held to, and the new container records, the policy given.
//
// With rollback protection the secret goes into a new NV index under the
// new PIN and c's index is recorded as retired: once the caller has saved
// the new container, Retire undefines it and c, with every copy of it, is
// refused by the TPM. Until then c works with its PIN, so a reset that
// fails or is killed half-way loses nothing. Two TPM commands, and one
// for Retire.
func ResetPIN(ctx context.Context, t *tpm.TPM, c *Container, r *protector.Key, newPIN string, next *protector.ServiceKey, opts ...Option) (*Container, error) {
	o := newOptions(opts)
	if c == nil || t == nil || r == nil {
		return nil, errors.New("container: reset PIN: nil container, TPM or protector")
	}
	if !c.HasProtector() {
		return nil, ErrNoProtector
	}
	policy, newP, err := o.newPIN(c, newPIN)
	if err != nil {
		return nil, err
	}
	defer clear(newP)
	if err := o.checkTPM(ctx, t); err != nil {
		return nil, fmt.Errorf("container: reset PIN: %w", err)
	}
	if err := t.CheckSRK(c.srkName); err != nil {
		return nil, fmt.Errorf("container: check storage root key: %w", err)
	}
	s, err := r.Open(c.encS, c.id)
	if err != nil {
		return nil, fmt.Errorf("container: reset PIN: open secret with protector: %w", err)
	}
	defer clear(s)
	o.see(secretS, s)
	if len(s) != secretLen {
		return nil, &FormatError{Field: "protector.encS", Reason: "secret has the wrong length"}
	}
	if err := c.verify(s, &o); err != nil {
		return nil, fmt.Errorf("container: reset PIN: %w", err)
	}
	n := c.next()
	n.cfg.PINPolicy = policy
	if next != nil {
		if err := n.enrol(s, *next, c.DeviceID(), o); err != nil {
			return nil, fmt.Errorf("container: reset PIN: re-enrol protector: %w", err)
		}
	}
	if err := n.setPIN(s, newP, nil, &o); err != nil {
		return nil, fmt.Errorf("container: reset PIN: %w", err)
	}
	finishRetire(ctx, t, c)
	if err := n.protectSecret(ctx, t, s, newP, &o); err != nil {
		return nil, fmt.Errorf("container: reset PIN: %w", err)
	}
	n.retired = c.pinIndex()
	if err := n.authenticate(s, &o); err != nil {
		n.undefineNew(t)
		return nil, fmt.Errorf("container: reset PIN: %w", err)
	}
	o.emit(ctx, n, event.Event{Kind: event.Reset})
	return n, nil
}
