package tpm

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// load is TPM2_Load of o under the SRK (Part 3 §12.2). The SRK's authValue
// is empty, so a password session is enough and nothing secret is sent.
// When the TPM has no free object slot (TPM_RC_OBJECT_MEMORY; the simulator
// has three and no resource manager) the least recently used open Key other
// than except is flushed and the load tried again. t.mu must be held.
func (t *TPM) load(ctx context.Context, o *object, except *Key) (tpm2.TPMHandle, error) {
	for {
		var rsp *response
		err := t.run(ctx, func() (err error) {
			rsp, err = t.send(&command{
				cc:         tpm2.TPMCCLoad,
				handles:    []tpm2.TPMHandle{t.srk},
				auth:       passwordAuth,
				params:     loadParams(o),
				rspHandles: 1,
			})
			return err
		})
		if errors.Is(err, tpm2.TPMRCObjectMemory) && t.evictLRU(except) {
			continue
		}
		if err != nil {
			if !isTPMRC(err) && !isCtxErr(err) {
				// The TPM may have loaded the object and the handle is lost
				// with the response: find it and flush it.
				t.reclaim()
			}
			return 0, loadErr(err)
		}
		h := rsp.handles[0]
		if !t.freshHandle(h) {
			// The response handle is not authenticated (a password
			// session, and no rpHash covers handles: TPM 2.0 Part 1
			// §18.7). One that names the SRK or an open key would make
			// the library use and then flush that object; flush instead
			// what the TPM did load, which this connection does not know.
			t.reclaim()
			return 0, fmt.Errorf("load: %w: handle %#x", errMalformed, uint32(h))
		}
		if name, err := first2B(rsp.params); err != nil || !bytes.Equal(name, o.name.Buffer) {
			// The TPM computed another Name from the same public area:
			// someone is between us and the TPM, or our parse is wrong.
			_ = t.flush(h)
			return 0, fmt.Errorf("load: %w: the TPM reports another Name", ErrCorruptBlob)
		}
		return h, nil
	}
}

// freshHandle reports whether h can be the handle of an object just
// loaded: a transient handle that is neither the SRK nor an open key's.
// t.mu must be held.
func (t *TPM) freshHandle(h tpm2.TPMHandle) bool {
	if uint32(h)>>24 != uint32(tpm2.TPMHTTransient) || h == t.srk {
		return false
	}
	for k := range t.keys {
		if k.handle == h {
			return false
		}
	}
	return true
}

// loadErr maps a TPM2_Load failure to the package's errors.
func loadErr(err error) error {
	switch {
	case errors.Is(err, tpm2.TPMRCIntegrity):
		// The private part's HMAC, keyed from the parent's seed, does not
		// verify: another SRK (another TPM or seed), or altered bytes.
		return fmt.Errorf("load: %w: %w", ErrWrongTPM, err)
	case isCorruptRC(err):
		return fmt.Errorf("load: %w: %w", ErrCorruptBlob, err)
	}
	return fmt.Errorf("load: %w", err)
}

// evictLRU flushes the least recently used loaded Key other than except and
// reports whether there was one. The Key reloads itself when next used.
func (t *TPM) evictLRU(except *Key) bool {
	var victim *Key
	for k := range t.keys {
		if k == except || k.handle == 0 {
			continue
		}
		if victim == nil || k.lastUse < victim.lastUse {
			victim = k
		}
	}
	if victim == nil {
		return false
	}
	_ = t.flush(victim.handle)
	victim.handle = 0
	return true
}

// authErr maps a failed authorization to *AuthError or *LockoutError,
// reading the TPM's dictionary-attack state to say how many tries remain.
// It returns nil for other errors. t.mu must be held.
func (t *TPM) authErr(ctx context.Context, err error) error {
	if wrong, counted := isAuthRC(err); wrong {
		remaining := -1
		if counted {
			if st, serr := t.lockoutStatus(ctx); serr == nil {
				remaining = max(st.Remaining(), 0)
			}
		}
		return &AuthError{Remaining: remaining}
	}
	if errors.Is(err, tpm2.TPMRCLockout) {
		var after = WindowsRecovery
		if st, serr := t.lockoutStatus(ctx); serr == nil {
			after = st.Recovery
		}
		return &LockoutError{RetryAfter: after}
	}
	return nil
}
