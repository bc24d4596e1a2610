package reliability

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/container/event"
	"github.com/hellosim/hellosim/tpm"
)

// eventLog collects container events.
type eventLog struct {
	mu     sync.Mutex
	events []event.Event
}

func (l *eventLog) handle(e event.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) last() event.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.events) == 0 {
		return event.Event{}
	}
	return l.events[len(l.events)-1]
}

// TestLockoutCounterMatchesTPM makes 32 wrong PINs, Windows' threshold
// (tpm-fundamentals, anti-hammering), and checks at every step that the
// tries left in the error, in the event and in LockoutStatus are what the
// TPM itself counts (TPM_PT_LOCKOUT_COUNTER read through the raw
// transport); that the TPM then locks, that the lockout error says how long
// to wait, that even the right PIN is refused while locked and costs
// nothing, and that resetting the lockout restores service.
func TestLockoutCounterMatchesTPM(t *testing.T) {
	r := openFaulty(t)
	ctx := context.Background()
	var log eventLog
	opt := container.WithEventHandler(log.handle)
	c, err := container.Provision(ctx, r.tp, testConfig(tpm.ECCP256), pin1)
	require.NoError(t, err)

	st, err := r.tp.LockoutStatus(ctx)
	require.NoError(t, err)
	require.Equal(t, uint32(tpm.WindowsMaxTries), st.MaxTries)
	require.Equal(t, tpm.WindowsRecovery, st.Recovery)
	require.Zero(t, rawLockoutCounter(t, r.raw))

	const wrong = "999999"
	for i := 1; i <= tpm.WindowsMaxTries; i++ {
		_, err := container.Unlock(ctx, r.tp, c, wrong, opt)
		raw := rawLockoutCounter(t, r.raw)
		st, serr := r.tp.LockoutStatus(ctx)
		require.NoError(t, serr)
		require.Equal(t, uint32(i), raw, "try %d: TPM_PT_LOCKOUT_COUNTER", i)
		require.Equal(t, raw, st.Failures, "try %d: LockoutStatus.Failures vs the TPM", i)
		require.Equal(t, tpm.WindowsMaxTries-i, st.Remaining(), "try %d: LockoutStatus.Remaining", i)
		var pe *container.PINError
		var le *container.PINLockedError
		switch {
		case errors.As(err, &pe):
			assert.Equal(t, tpm.WindowsMaxTries-int(raw), pe.Remaining, "try %d: PINError.Remaining vs the TPM", i)
			ev := log.last()
			assert.Equal(t, event.WrongPIN, ev.Kind, "try %d", i)
			assert.Equal(t, pe.Remaining, ev.Remaining, "try %d: event vs error", i)
		case i == tpm.WindowsMaxTries && errors.As(err, &le):
			// The TPM may report the failure that locks it as lockout.
		default:
			t.Fatalf("try %d: want a wrong-PIN error, got %v", i, err)
		}
		// A correct PIN does not reset the TPM's counter (Part 1 §19.8.4).
		if i == 3 {
			require.NoError(t, unlockAndSign(ctx, r.tp, c, pin1))
			require.Equal(t, uint32(3), rawLockoutCounter(t, r.raw), "a correct PIN changed the counter")
		}
	}
	require.True(t, rawInLockout(t, r.raw), "the TPM is not in lockout after %d failures", tpm.WindowsMaxTries)
	st, err = r.tp.LockoutStatus(ctx)
	require.NoError(t, err)
	assert.True(t, st.Locked, "LockoutStatus.Locked")

	// Locked: the right PIN is refused too, says how long to wait, and costs
	// nothing.
	for _, p := range []string{pin1, wrong} {
		_, err = container.Unlock(ctx, r.tp, c, p, opt)
		var le *container.PINLockedError
		require.ErrorAs(t, err, &le, "PIN %s while locked", p)
		require.ErrorIs(t, err, container.ErrPINLocked)
		assert.Equal(t, tpm.WindowsRecovery, le.RetryAfter, "the wait is one recovery interval")
		assert.Contains(t, err.Error(), "10m0s", "the message says when to try again")
		ev := log.last()
		assert.Equal(t, event.LockedOut, ev.Kind)
		assert.Equal(t, le.RetryAfter, ev.RetryAfter)
		assert.Equal(t, uint32(tpm.WindowsMaxTries), rawLockoutCounter(t, r.raw), "a try while locked changed the counter")
	}
	// ChangePIN is refused the same way.
	_, err = container.ChangePIN(ctx, r.tp, c, pin1, pin2)
	require.ErrorIs(t, err, container.ErrPINLocked)

	// The lockout reset (TPM2_DictionaryAttackLockReset) restores service.
	require.NoError(t, r.tp.ResetLockout(ctx, nil))
	require.Zero(t, rawLockoutCounter(t, r.raw))
	require.False(t, rawInLockout(t, r.raw))
	st, err = r.tp.LockoutStatus(ctx)
	require.NoError(t, err)
	assert.Zero(t, st.Failures)
	assert.False(t, st.Locked)
	require.NoError(t, unlockAndSign(ctx, r.tp, c, pin1))
	_, err = container.Unlock(ctx, r.tp, c, wrong)
	var pe *container.PINError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, tpm.WindowsMaxTries-1, pe.Remaining)
	require.Equal(t, uint32(1), rawLockoutCounter(t, r.raw))
}
