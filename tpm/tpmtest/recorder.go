package tpmtest

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/google/go-tpm/tpm2/transport"

	"github.com/hellosim/hellosim/tpm"
)

// Exchange is one command and its response as they crossed the transport.
type Exchange struct {
	Command, Response []byte
}

// Recorder is a transport that records every command and response, to prove
// what did and did not cross the bus. It copies each command before passing
// it on: the embedded simulator decrypts encrypted parameters in place, in
// the very buffer it is handed, and a recorder that kept that buffer would
// see plaintext that never crossed the bus.
type Recorder struct {
	next transport.TPM

	mu  sync.Mutex
	log []Exchange
}

// NewRecorder wraps next.
func NewRecorder(next transport.TPM) *Recorder { return &Recorder{next: next} }

// Send implements transport.TPM.
func (r *Recorder) Send(cmd []byte) ([]byte, error) {
	c := bytes.Clone(cmd)
	rsp, err := r.next.Send(cmd)
	r.mu.Lock()
	r.log = append(r.log, Exchange{Command: c, Response: bytes.Clone(rsp)})
	r.mu.Unlock()
	return rsp, err
}

// Close closes the wrapped transport when it can be closed.
func (r *Recorder) Close() error {
	if c, ok := r.next.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// Exchanges returns a copy of everything recorded so far.
func (r *Recorder) Exchanges() []Exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Exchange(nil), r.log...)
}

// Reset forgets everything recorded.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = nil
}

// Find reports the first exchange in which secret appears, as "command N"
// or "response N", or "" when it appears nowhere. Secrets shorter than 4
// bytes are refused (they would match by chance).
func (r *Recorder) Find(secret []byte) (string, error) {
	if len(secret) < 4 {
		return "", fmt.Errorf("tpmtest: secret of %d bytes is too short to search for", len(secret))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, e := range r.log {
		if bytes.Contains(e.Command, secret) {
			return fmt.Sprintf("command %d", i), nil
		}
		if bytes.Contains(e.Response, secret) {
			return fmt.Sprintf("response %d", i), nil
		}
	}
	return "", nil
}

// AssertAbsent fails the test when any of the secrets appears in any
// recorded command or response.
func (r *Recorder) AssertAbsent(t testing.TB, secrets ...[]byte) {
	t.Helper()
	for i, s := range secrets {
		where, err := r.Find(s)
		if err != nil {
			t.Errorf("secret %d: %v", i, err)
			continue
		}
		if where != "" {
			t.Errorf("secret %d crossed the TPM interface in clear (%s)", i, where)
		}
	}
}

// OpenRecorded is Open with a Recorder between the library and the TPM.
// Only the simulator and tcp:// specs can be recorded (a device path is
// opened by the tpm package itself).
func OpenRecorded(t testing.TB) (*tpm.TPM, *Recorder) {
	t.Helper()
	next, err := openTransport(Spec())
	if err != nil {
		t.Skipf("tpmtest: cannot record %s: %v", Spec(), err)
	}
	rec := NewRecorder(next)
	tp, err := tpm.New(rec)
	if err != nil {
		_ = rec.Close()
		t.Fatalf("tpmtest: open %s: %v", Spec(), err)
	}
	prepare(t, tp)
	return tp, rec
}

// OpenTransport opens the raw transport of the test TPM (the simulator, or a
// tcp:// HELLOSIM_TPM), closed by t.Cleanup. Tests wrap it (a Recorder, a
// fault injector) and hand it to tpm.New, or talk to the TPM behind the
// library's back. It skips the test for specs that cannot be wrapped.
func OpenTransport(t testing.TB) transport.TPMCloser {
	t.Helper()
	tr, err := openTransport(Spec())
	if err != nil {
		t.Skipf("tpmtest: cannot wrap the transport of %s: %v", Spec(), err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// OpenOn opens the library on tr, a transport from OpenTransport or a
// wrapper of one (an Interposer), and readies it as Open does. The
// library's Close leaves tr open: OpenTransport's cleanup closes it, and
// until then the test can talk to the TPM behind the library's back.
func OpenOn(t testing.TB, tr transport.TPM) *tpm.TPM {
	t.Helper()
	tp, err := tpm.New(struct{ transport.TPM }{tr})
	return ready(t, tp, err)
}

// Prepare readies a TPM opened on a transport from OpenTransport as Open
// does: lockout reset, Windows lockout parameters, statistics zeroed, and
// Close at cleanup.
func Prepare(t testing.TB, tp *tpm.TPM) {
	t.Helper()
	prepare(t, tp)
}
