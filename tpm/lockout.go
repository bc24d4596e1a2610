package tpm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/go-tpm/tpm2"
)

// Windows' dictionary-attack parameters: the TPM locks after 32
// authorization failures and forgets one failure every 10 minutes
// (Windows "TPM fundamentals", anti-hammering). OpenSimulator sets them; on
// a real TPM or swtpm nothing is changed when the TPM is opened.
const (
	WindowsMaxTries        = 32
	WindowsRecovery        = 10 * time.Minute
	WindowsLockoutRecovery = 24 * time.Hour
)

// LockoutStatus is the TPM's dictionary-attack state (TPM2_GetCapability,
// TPM_CAP_TPM_PROPERTIES; TPM 2.0 Part 2 §6.13).
type LockoutStatus struct {
	Failures        uint32        // TPM_PT_LOCKOUT_COUNTER
	MaxTries        uint32        // TPM_PT_MAX_AUTH_FAIL
	Recovery        time.Duration // TPM_PT_LOCKOUT_INTERVAL: one failure forgiven per interval
	LockoutRecovery time.Duration // TPM_PT_LOCKOUT_RECOVERY: wait after a failed lockoutAuth
	Locked          bool          // TPMA_PERMANENT inLockout
}

// Remaining is the number of failures still allowed before lockout.
func (s LockoutStatus) Remaining() int { return int(s.MaxTries) - int(s.Failures) }

// LockoutStatus reads the dictionary-attack state.
func (t *TPM) LockoutStatus(ctx context.Context) (LockoutStatus, error) {
	if err := t.lock(); err != nil {
		return LockoutStatus{}, err
	}
	defer t.mu.Unlock()
	st, err := t.lockoutStatus(ctx)
	if err != nil {
		return LockoutStatus{}, fmt.Errorf("tpm: lockout status: %w", err)
	}
	return st, nil
}

// inLockout is bit 9 of TPMA_PERMANENT (Part 2 §8.6).
const permanentInLockout = 1 << 9

func (t *TPM) lockoutStatus(ctx context.Context) (LockoutStatus, error) {
	var rsp *tpm2.GetCapabilityResponse
	err := t.run(ctx, func() (err error) {
		rsp, err = tpm2.GetCapability{
			Capability:    tpm2.TPMCapTPMProperties,
			Property:      uint32(tpm2.TPMPTPermanent),
			PropertyCount: uint32(tpm2.TPMPTLockoutRecovery-tpm2.TPMPTPermanent) + 1,
		}.Execute(t.tr)
		return err
	})
	if err != nil {
		return LockoutStatus{}, err
	}
	props, err := rsp.CapabilityData.Data.TPMProperties()
	if err != nil {
		return LockoutStatus{}, err
	}
	var st LockoutStatus
	for _, p := range props.TPMProperty {
		switch p.Property {
		case tpm2.TPMPTPermanent:
			st.Locked = p.Value&permanentInLockout != 0
		case tpm2.TPMPTLockoutCounter:
			st.Failures = p.Value
		case tpm2.TPMPTMaxAuthFail:
			st.MaxTries = p.Value
		case tpm2.TPMPTLockoutInterval:
			st.Recovery = time.Duration(p.Value) * time.Second
		case tpm2.TPMPTLockoutRecovery:
			st.LockoutRecovery = time.Duration(p.Value) * time.Second
		}
	}
	return st, nil
}

// SetLockoutParameters is TPM2_DictionaryAttackParameters (Part 3 §25.3):
// maxTries failures lock the TPM, one failure is forgiven every recovery,
// and a wrong lockoutAuth blocks the lockout hierarchy for lockoutRecovery.
// It needs lockout authorization (empty on a fresh TPM), proven with an HMAC
// in the salted session, so lockoutAuth never crosses the bus.
func (t *TPM) SetLockoutParameters(ctx context.Context, maxTries uint32, recovery, lockoutRecovery time.Duration, lockoutAuth []byte) error {
	rec, err := seconds(recovery)
	if err != nil {
		return fmt.Errorf("tpm: set lockout parameters: recovery: %w", err)
	}
	lrec, err := seconds(lockoutRecovery)
	if err != nil {
		return fmt.Errorf("tpm: set lockout parameters: lockout recovery: %w", err)
	}
	params := binary.BigEndian.AppendUint32(nil, maxTries)
	params = binary.BigEndian.AppendUint32(params, rec)
	params = binary.BigEndian.AppendUint32(params, lrec)
	return t.lockout(ctx, "set lockout parameters", tpm2.TPMCCDictionaryAttackParameters, params, lockoutAuth)
}

// ResetLockout is TPM2_DictionaryAttackLockReset (Part 3 §25.2): it sets the
// failure counter to zero and leaves lockout. Tests use it; on a real TPM it
// needs the owner's lockoutAuth.
func (t *TPM) ResetLockout(ctx context.Context, lockoutAuth []byte) error {
	return t.lockout(ctx, "reset lockout", tpm2.TPMCCDictionaryAttackLockReset, nil, lockoutAuth)
}

// lockout is lockoutCommand under t.mu, its error after op.
func (t *TPM) lockout(ctx context.Context, op string, cc tpm2.TPMCC, params, lockoutAuth []byte) error {
	if err := t.lock(); err != nil {
		return err
	}
	defer t.mu.Unlock()
	if err := t.lockoutCommand(ctx, cc, params, lockoutAuth); err != nil {
		return fmt.Errorf("tpm: %s: %w", op, err)
	}
	return nil
}

func seconds(d time.Duration) (uint32, error) {
	if d < 0 || d/time.Second > math.MaxUint32 {
		return 0, fmt.Errorf("%v out of range", d)
	}
	return uint32(d / time.Second), nil
}

// lockoutCommand sends a command whose only handle is TPM_RH_LOCKOUT,
// authorized by the shared session. go-tpm's tpm2 package has no types for
// the dictionary-attack commands; they are framed like the other hot
// commands (wire.go). t.mu must be held.
func (t *TPM) lockoutCommand(ctx context.Context, cc tpm2.TPMCC, params, lockoutAuth []byte) error {
	err := t.withSession(ctx, lockoutAuth, encryptNone, func() error {
		_, err := t.send(&command{
			cc:      cc,
			handles: []tpm2.TPMHandle{tpm2.TPMRHLockout},
			names:   []tpm2.TPM2BName{tpm2.HandleName(tpm2.TPMRHLockout)},
			auth:    sessionAuth,
			params:  params,
		})
		return err
	}, nil)
	if errors.Is(err, tpm2.TPMRCLockout) {
		// The lockout hierarchy itself is blocked after a wrong lockoutAuth,
		// for TPM_PT_LOCKOUT_RECOVERY (Part 1 §19.8.4).
		after := WindowsLockoutRecovery
		if st, serr := t.lockoutStatus(ctx); serr == nil {
			after = st.LockoutRecovery
		}
		return &LockoutError{RetryAfter: after}
	}
	if wrong, _ := isAuthRC(err); wrong {
		// lockoutAuth failures are not counted by TPM_PT_LOCKOUT_COUNTER.
		return &AuthError{Remaining: -1}
	}
	return err
}
