package tpm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// TPM is an open TPM connection. It is safe for concurrent use: one mutex
// serializes every whole operation (a Load…Unseal…Flush sequence, say), since
// neither the TPM nor go-tpm is safe for interleaved commands and the
// embedded simulator has no resource manager.
//
// Between operations the TPM holds only what this connection keeps loaded:
// the storage root key, the shared session, and the signing keys of open
// Keys. Close flushes them all.
type TPM struct {
	mu      sync.Mutex
	tr      transport.TPM // counts commands, then the caller's transport
	counter *counter
	closer  io.Closer // nil when the transport cannot be closed
	sim     bool
	closed  bool
	// volatileNV, when set, says why NV indices do not outlive the process.
	volatileNV string

	srk     tpm2.TPMHandle
	srkName tpm2.TPM2BName
	srkKEM  tpm2.LabeledEncapsulationKey
	sess    *session
	trust   trustState // endorsement verified, per set of roots (ek.go)

	keys    map[*Key]struct{} // open keys, loaded or not
	tick    uint64            // use clock for least-recently-used eviction
	orphans []tpm2.TPMHandle  // handles whose flush failed, tried again later
}

// New wraps any go-tpm transport (a device, a TCP connection, a test
// recorder). It creates the storage root key and starts the shared session;
// nothing on the TPM is changed. Close closes the transport when it
// implements io.Closer.
func New(tr transport.TPM) (*TPM, error) {
	var c io.Closer
	if tc, ok := tr.(io.Closer); ok {
		c = tc
	}
	return newTPM(tr, c, onDevice)
}

// origin is where a TPM connection comes from, which decides what opening it
// changes on the TPM.
type origin int

const (
	onDevice         origin = iota // a device or any transport: nothing is changed
	onNewSimulator                 // a new simulator: given Windows' DA parameters
	onSavedSimulator               // a simulator restored from its state file
)

func newTPM(tr transport.TPM, closer io.Closer, from origin) (*TPM, error) {
	sim := from != onDevice
	cnt := newCounter(tr)
	t := &TPM{
		tr:      cnt,
		counter: cnt,
		closer:  closer,
		sim:     sim,
		srk:     tpm2.TPMRHNull,
		sess:    newSession(),
		keys:    make(map[*Key]struct{}),
	}
	ctx := context.Background()
	t.mu.Lock()
	err := t.createSRK(ctx)
	if err == nil {
		err = t.startSession(ctx)
	}
	t.mu.Unlock()
	if err == nil && from == onNewSimulator {
		// The embedded simulator starts with 3 tries and a 1000 s recovery;
		// give it Windows' dictionary-attack parameters so tests see what a
		// Windows machine does (32 failures, one forgiven every 10 minutes;
		// tpm-fundamentals, "Anti-hammering").
		err = t.SetLockoutParameters(ctx, WindowsMaxTries, WindowsRecovery, WindowsLockoutRecovery, nil)
	}
	if err != nil {
		err = fmt.Errorf("tpm: open: %w", err)
		return nil, errors.Join(err, t.Close())
	}
	return t, nil
}

// Close flushes everything this connection loaded (open keys, the shared
// session, the storage root key) and closes the transport. Keys of this TPM
// are closed too. Closing a closed TPM does nothing.
func (t *TPM) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	t.flushOrphans()
	var errs []error
	for k := range t.keys {
		if k.handle != 0 {
			errs = append(errs, t.flush(k.handle))
		}
		k.handle = 0
		k.closed = true
		k.wipe()
	}
	clear(t.keys)
	if t.sess.started() {
		errs = append(errs, t.flush(t.sess.handle))
	}
	t.sess.forget()
	if t.srk != tpm2.TPMRHNull {
		errs = append(errs, t.flush(t.srk))
		t.srk = tpm2.TPMRHNull
	}
	if len(t.orphans) > 0 {
		errs = append(errs, fmt.Errorf("%d handle(s) could not be flushed", len(t.orphans)))
		t.orphans = nil
	}
	if t.closer != nil {
		errs = append(errs, t.closer.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tpm: close: %w", err)
	}
	return nil
}

// IsSimulator reports whether this TPM is the embedded simulator.
func (t *TPM) IsSimulator() bool { return t.sim }

// SRKName is the TPM2B_NAME contents (nameAlg || digest) of the storage root
// key. Callers record it and pass it back to CheckSRK to pin the SRK, so an
// interposer cannot substitute its own key for the session salt.
func (t *TPM) SRKName() []byte { return bytes.Clone(t.srkName.Buffer) }

// CheckSRK returns ErrSRKMismatch when name is not this TPM's SRK Name.
func (t *TPM) CheckSRK(name []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	if !bytes.Equal(name, t.srkName.Buffer) {
		return ErrSRKMismatch
	}
	return nil
}

// LoadedHandles asks the TPM (TPM2_GetCapability, TPM_CAP_HANDLES) which
// transient objects and sessions are loaded. Tests use it to check that
// nothing leaks.
func (t *TPM) LoadedHandles(ctx context.Context) (objects, sessions []tpm2.TPMHandle, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, nil, ErrClosed
	}
	objects, err = t.handles(ctx, uint32(tpm2.TPMHTTransient)<<24)
	if err != nil {
		return nil, nil, err
	}
	// TPM_HT_LOADED_SESSION (Part 2 §7.2): HMAC and policy sessions.
	sessions, err = t.handles(ctx, uint32(tpm2.TPMHTHMACSession)<<24)
	return objects, sessions, err
}

func (t *TPM) handles(ctx context.Context, first uint32) ([]tpm2.TPMHandle, error) {
	var out []tpm2.TPMHandle
	prop := first
	for {
		var rsp *tpm2.GetCapabilityResponse
		err := t.run(ctx, func() (err error) {
			rsp, err = tpm2.GetCapability{Capability: tpm2.TPMCapHandles, Property: prop, PropertyCount: 64}.Execute(t.tr)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("tpm: get handles: %w", err)
		}
		hs, err := rsp.CapabilityData.Data.Handles()
		if err != nil {
			return nil, fmt.Errorf("tpm: get handles: %w", err)
		}
		for _, h := range hs.Handle {
			if uint32(h)>>24 != first>>24 && !(first>>24 == uint32(tpm2.TPMHTHMACSession) && uint32(h)>>24 == uint32(tpm2.TPMHTPolicySession)) {
				return out, nil
			}
			out = append(out, h)
			prop = uint32(h) + 1
		}
		if !rsp.MoreData || len(hs.Handle) == 0 {
			return out, nil
		}
	}
}

// maxRetries bounds the resends of a command the TPM answered with
// TPM_RC_RETRY, TPM_RC_YIELDED or TPM_RC_TESTING.
const maxRetries = 30

// run sends one command (f), honouring ctx before it and resending it after
// the warnings that ask for that. t.mu must be held.
func (t *TPM) run(ctx context.Context, f func() error) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := f()
		if err == nil || !retryableRC(err) || attempt >= maxRetries {
			return err
		}
		if attempt > 0 {
			d := time.Millisecond << min(attempt-1, 7)
			timer := time.NewTimer(d)
			select {
			case <-ctx.Done():
				timer.Stop()
				return ctx.Err()
			case <-timer.C:
			}
		}
	}
}

// withSession runs a command authorized by the shared session with the
// given entity authValue and parameter encryption. If the TPM lost the
// session (TPM_RC_REFERENCE_S0) it starts a new one and sends the command
// once more; after TPM_RC_AUTH_FAIL it never retries, since every try costs
// a dictionary-attack count. again, when not nil, is asked about any other
// TPM error: when it returns true (it has made room, or reloaded a key) the
// command is sent again on the same session. t.mu must be held.
func (t *TPM) withSession(ctx context.Context, auth []byte, enc paramEncryption, f func() error, again func(error) bool) error {
	restarted := false
	for {
		if !t.sess.started() {
			if err := t.startSession(ctx); err != nil {
				return err
			}
		}
		t.sess.use(auth, enc)
		err := t.run(ctx, f)
		t.sess.done()
		switch {
		case err == nil:
			return nil
		case isCtxErr(err):
			// Nothing was sent, or only a command the TPM answered with
			// a warning: the session is as it was.
			return err
		case !isTPMRC(err):
			// Not a TPM response code: the response was lost or did not
			// verify. The session's nonces may be out of step; drop it.
			t.dropSession()
			return err
		case sessionGoneRC(err) && !restarted:
			// Flush it all the same (best effort): error responses carry
			// no HMAC, and a forged TPM_RC_REFERENCE_S0 must not leave a
			// session loaded that the library has forgotten.
			restarted = true
			t.dropSession()
			continue
		case again != nil && again(err):
			// Were the error forged over a command the TPM executed, the
			// command sent again fails its HMAC check on a noDA entity
			// (the SRK, a signing key) and ends up below.
			continue
		}
		// Error responses are not authenticated (TPM 2.0 Part 1 §18.9):
		// one forged over a command the TPM executed leaves the TPM on a
		// nonceTPM the library never saw, and every later command would
		// fail its HMAC check — a correct PIN read as a wrong one, at a
		// dictionary-attack count each. A new session costs no count; the
		// failed command is not sent again. It is started now, so that
		// between operations the TPM holds the session as usual; if that
		// fails, the next command starts it.
		t.dropSession()
		_ = t.startSession(ctx)
		return err
	}
}

// startSession starts the shared salted session. t.mu must be held.
func (t *TPM) startSession(ctx context.Context) error {
	err := t.run(ctx, func() error { return t.sess.start(t.tr, t.srk, t.srkKEM) })
	if err != nil {
		if !isTPMRC(err) && !isCtxErr(err) {
			// The TPM may have started a session whose handle we never saw.
			t.reclaim()
		}
		return fmt.Errorf("start session: %w", err)
	}
	return nil
}

// dropSession flushes the shared session (best effort) and forgets it.
func (t *TPM) dropSession() {
	if t.sess.started() {
		_ = t.flush(t.sess.handle)
	}
	t.sess.forget()
}

// flush is TPM2_FlushContext. It ignores cancellation: what was loaded must
// be flushed on every path. A flush that fails (the command lost, or the
// TPM failing) is tried again; if an earlier try did flush the handle and
// only its answer was lost, the TPM now reports the handle unknown, which
// counts as done. A handle that still cannot be flushed is remembered and
// flushed before the next operation. t.mu must be held.
func (t *TPM) flush(h tpm2.TPMHandle) error {
	var err error
	for attempt := range 3 {
		err = t.flushOnce(h)
		if err == nil || (attempt > 0 && handleGoneRC(err)) {
			return nil
		}
	}
	t.orphans = append(t.orphans, h)
	return err
}

// flushOnce sends TPM2_FlushContext (Part 3 §28.4) for h, resent only after
// the warnings run resends, and never cancelled. t.mu must be held.
func (t *TPM) flushOnce(h tpm2.TPMHandle) error {
	return t.run(context.Background(), func() error {
		_, err := t.send(&command{
			cc:     tpm2.TPMCCFlushContext,
			params: binary.BigEndian.AppendUint32(nil, uint32(h)),
		})
		return err
	})
}

// handleGoneRC reports that a handle is not loaded (any more).
func handleGoneRC(err error) bool {
	return errors.Is(err, tpm2.TPMRCHandle) || errors.Is(err, tpm2.TPMRCReferenceH0) ||
		errors.Is(err, tpm2.TPMRCValue)
}

// flushOrphans retries the flushes that failed before. t.mu must be held.
func (t *TPM) flushOrphans() {
	orphans := t.orphans
	t.orphans = nil
	for _, h := range orphans {
		if err := t.flushOnce(h); err != nil && !handleGoneRC(err) {
			t.orphans = append(t.orphans, h)
		}
	}
}

// isTPMRC reports whether err is a response code from the TPM (as opposed
// to a transport failure or a response that could not be parsed, after
// which the library does not know what the TPM did).
func isTPMRC(err error) bool {
	var rc tpm2.TPMRC
	return errors.As(err, &rc)
}

// reclaim flushes the transient objects and sessions the TPM holds that
// this connection does not know of: what a command left loaded when its
// response was lost (a TPM2_Load or TPM2_StartAuthSession that succeeded
// unseen). Without a resource manager the TPM's handles are all ours; with
// one (Linux /dev/tpmrm0, Windows TBS) they are virtualized per connection.
// Best effort. t.mu must be held.
func (t *TPM) reclaim() {
	known := map[tpm2.TPMHandle]bool{t.srk: true}
	if t.sess.started() {
		known[t.sess.handle] = true
	}
	for k := range t.keys {
		if k.handle != 0 {
			known[k.handle] = true
		}
	}
	ctx := context.Background()
	for _, first := range []tpm2.TPMHT{tpm2.TPMHTTransient, tpm2.TPMHTHMACSession} {
		hs, err := t.handles(ctx, uint32(first)<<24)
		if err != nil {
			continue
		}
		for _, h := range hs {
			if !known[h] {
				_ = t.flush(h)
			}
		}
	}
}

// lockWithAuth is lock for a command authorized by auth: an auth longer
// than MaxAuthSize is refused first, with an error naming op.
func (t *TPM) lockWithAuth(op string, auth []byte) error {
	if len(auth) > MaxAuthSize {
		return fmt.Errorf("tpm: %s: auth must be at most %d bytes, not %d", op, MaxAuthSize, len(auth))
	}
	return t.lock()
}

// lock takes t.mu and fails with ErrClosed on a closed TPM. It first
// retries any flush that failed before.
func (t *TPM) lock() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	if len(t.orphans) > 0 {
		t.flushOrphans()
	}
	return nil
}

// String describes the connection without session secrets.
func (t *TPM) String() string {
	if t.sim {
		return "tpm.TPM(simulator)"
	}
	return "tpm.TPM"
}

// GoString is String, so %#v does not print session keys either.
func (t *TPM) GoString() string { return t.String() }

// Format prints String for every verb, so no verb dumps the connection's
// fields (session keys among them).
func (t *TPM) Format(f fmt.State, _ rune) { io.WriteString(f, t.String()) }
