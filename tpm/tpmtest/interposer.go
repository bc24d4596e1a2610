package tpmtest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sync"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// ErrInterposed is the transport error an Interposer returns in place of an
// answer it loses or a command it drops.
var ErrInterposed = errors.New("tpmtest: answer lost on the bus")

// Fault is what an Interposer does to one command.
type Fault int

const (
	// DropCommand: the command never reaches the TPM; the library gets
	// ErrInterposed.
	DropCommand Fault = iota + 1
	// LoseAnswer: the TPM executes the command; its answer is lost and the
	// library gets ErrInterposed.
	LoseAnswer
	// LoseAnswerThenDown: as LoseAnswer, and the bus then stays down (every
	// command is dropped) until Up.
	LoseAnswerThenDown
)

// Interposer is the bus between the library and a real TPM, where answers
// get lost and an attacker may rewrite them. Armed for a command code, it
// acts once on the next command with that code; everything else passes
// unchanged. It does not implement Close: the test's raw transport (from
// OpenTransport) stays open, for the test to talk to the TPM behind the
// library's back.
type Interposer struct {
	next transport.TPM

	mu     sync.Mutex
	faults map[tpm2.TPMCC]Fault
	edits  map[tpm2.TPMCC]func(cmd, rsp []byte) []byte
	down   bool
	fired  int
}

var _ transport.TPM = (*Interposer)(nil)

// NewInterposer wraps next.
func NewInterposer(next transport.TPM) *Interposer {
	return &Interposer{next: next, faults: map[tpm2.TPMCC]Fault{}, edits: map[tpm2.TPMCC]func(cmd, rsp []byte) []byte{}}
}

// Arm makes the next command with code cc suffer f.
func (i *Interposer) Arm(cc tpm2.TPMCC, f Fault) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.faults[cc] = f
}

// Rewrite replaces the TPM's answer to the next command with code cc (the
// TPM executes the command) with edit(command, answer): the attacker sees
// the command as it crossed the bus.
func (i *Interposer) Rewrite(cc tpm2.TPMCC, edit func(cmd, rsp []byte) []byte) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.edits[cc] = edit
}

// Up brings the bus back after LoseAnswerThenDown.
func (i *Interposer) Up() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.down = false
}

// Fired is how many armed faults and rewrites have happened.
func (i *Interposer) Fired() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.fired
}

// Send implements transport.TPM.
func (i *Interposer) Send(cmd []byte) ([]byte, error) {
	var cc tpm2.TPMCC
	if len(cmd) >= 10 {
		cc = tpm2.TPMCC(binary.BigEndian.Uint32(cmd[6:10]))
	}
	i.mu.Lock()
	down := i.down
	f, faulted := i.faults[cc]
	edit, edited := i.edits[cc]
	if !down {
		if faulted {
			delete(i.faults, cc)
			i.fired++
			i.down = f == LoseAnswerThenDown
		}
		if edited {
			delete(i.edits, cc)
			i.fired++
		}
	}
	i.mu.Unlock()
	switch {
	case down, faulted && f == DropCommand:
		return nil, ErrInterposed
	case faulted:
		_, _ = i.next.Send(cmd)
		return nil, ErrInterposed
	}
	if !edited {
		return i.next.Send(cmd)
	}
	sent := bytes.Clone(cmd) // the embedded simulator decrypts in place
	rsp, err := i.next.Send(cmd)
	if err == nil {
		rsp = edit(sent, rsp)
	}
	return rsp, err
}

// ErrorAnswer is a bare TPM error answer carrying rc (TPM 2.0 Part 1 §18.4:
// tag TPM_ST_NO_SESSIONS, size 10, the response code). Error answers carry
// no HMAC, so an attacker on the bus can forge one in place of any answer.
func ErrorAnswer(rc tpm2.TPMRC) []byte {
	rsp := make([]byte, 10)
	binary.BigEndian.PutUint16(rsp, uint16(tpm2.TPMSTNoSessions))
	binary.BigEndian.PutUint32(rsp[2:], 10)
	binary.BigEndian.PutUint32(rsp[6:], uint32(rc))
	return rsp
}
