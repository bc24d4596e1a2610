//go:build cgo

package tpm

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/google/go-tpm-tools/simulator"
	"github.com/google/go-tpm/tpm2"

	"github.com/hellosim/hellosim/internal/wipe"
	"github.com/hellosim/hellosim/tpm/internal/simnv"
	"github.com/hellosim/hellosim/tpm/internal/simtransport"
)

// OpenSimulator opens the embedded TPM 2.0 reference simulator (through
// go-tpm-tools) and sets Windows' dictionary-attack parameters on it. Only
// one simulator exists per process: a second OpenSimulator waits until the
// first is closed. Without WithSeed or WithState every call starts a freshly
// manufactured TPM with new random seeds.
func OpenSimulator(opts ...SimulatorOption) (*TPM, error) {
	var c simConfig
	for _, o := range opts {
		o(&c)
	}
	if c.state != "" {
		if c.seeded {
			return nil, errors.New("tpm: open simulator: WithSeed and WithState exclude each other (the state file holds the seeds)")
		}
		return openSimState(c.state)
	}
	var (
		s   *simulator.Simulator
		err error
	)
	if c.seeded {
		s, err = simulator.GetWithFixedSeedInsecure(c.seed)
	} else {
		s, err = simulator.Get()
	}
	if err != nil {
		return nil, fmt.Errorf("tpm: open simulator: %w", err)
	}
	tr := simtransport.New(s)
	t, err := newTPM(tr, tr, onNewSimulator)
	if err == nil && c.seeded {
		t.volatileNV = "the seeded embedded simulator keeps its keys across processes but not its NV memory"
	}
	return t, err
}

// simState keeps the simulator's NV in its state file: after every command
// whose effect changed NV, before the command's answer is returned, the
// whole image is written (atomically) to the file. So a process killed at
// any moment leaves the file as the TPM was after the last command whose
// answer anyone saw. A process that ends without Close is, to the TPM, a
// power loss without TPM2_Shutdown: the next TPM2_Startup counts one
// dictionary-attack failure, as a real TPM does (TPM 2.0 Part 1 §19.8.6).
type simState struct {
	path  string
	lock  *os.File
	sim   *simulator.Simulator
	tr    simtransport.Transport
	saved [simnv.Size]byte // the image in the file
	cur   [simnv.Size]byte
	err   error // the first save that failed; every later command fails too
	saves int   // files written, for the benchmarks
}

// openSimState opens the simulator with its NV from the state file at path,
// or a new TPM (saved to path at once) when there is no file. A damaged file
// is an error, never a new TPM.
func openSimState(path string) (*TPM, error) {
	lock, err := lockSimState(path)
	if err != nil {
		return nil, err
	}
	img, savedAt, exists, err := readSimState(path, simnv.Size)
	if err != nil {
		_ = lock.Close()
		return nil, err
	}
	s, err := simulator.Get()
	if err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("tpm: open simulator: %w", err)
	}
	st := &simState{path: path, lock: lock, sim: s}
	st.tr = simtransport.NewHooked(s, st.save)
	if exists {
		err = st.restore(img, time.Since(savedAt))
	} else {
		err = st.save()
	}
	if err != nil {
		// Nothing of this failed start may reach the file: it may be the
		// fresh TPM that the saved one was to replace.
		err = fmt.Errorf("tpm: open simulator: %w", err)
		st.err = err
		return nil, errors.Join(err, st.Close())
	}
	// A new TPM gets Windows' dictionary-attack parameters once; a restored
	// one keeps its own, and its counter.
	if exists {
		return newTPM(st.tr, st, onSavedSimulator)
	}
	return newTPM(st.tr, st, onNewSimulator)
}

// restore replaces the freshly manufactured TPM's NV with img and powers it
// up on it, as if it had been off for off.
func (st *simState) restore(img []byte, off time.Duration) error {
	raw := simtransport.New(st.sim)
	if _, err := (tpm2.Shutdown{ShutdownType: tpm2.TPMSUClear}).Execute(raw); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	copy(st.saved[:], img)
	simnv.Load(&st.saved)
	simnv.PowerCycle(off)
	if _, err := (tpm2.Startup{StartupType: tpm2.TPMSUClear}).Execute(raw); err != nil {
		return fmt.Errorf("startup on the saved state: %w", err)
	}
	// Startup itself writes NV (the TPM now runs, not shut down orderly).
	return st.save()
}

// save writes the NV image to the state file if it changed.
func (st *simState) save() error {
	if st.err != nil {
		return st.err
	}
	simnv.Read(&st.cur)
	if st.cur == st.saved {
		return nil
	}
	if err := writeSimState(st.path, st.cur[:], time.Now()); err != nil {
		st.err = &SimStateError{Path: st.path, Op: "save", Err: err}
		return st.err
	}
	st.saved = st.cur
	st.saves++
	return nil
}

// Close shuts the TPM down in order (TPM2_Shutdown, saved like any command),
// closes the simulator and releases the state file.
func (st *simState) Close() error {
	_, err := (tpm2.Shutdown{ShutdownType: tpm2.TPMSUClear}).Execute(st.tr)
	if err != nil {
		err = fmt.Errorf("shutdown: %w", err)
	}
	err = errors.Join(err, st.sim.Close(), st.lock.Close())
	wipe.Bytes(st.saved[:])
	wipe.Bytes(st.cur[:])
	return err
}
