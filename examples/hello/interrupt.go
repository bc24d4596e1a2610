package main

import (
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/hellosim/hellosim/tpm"
)

// exitInterrupted is the exit status of a command stopped by Ctrl-C or
// SIGTERM (128 + SIGINT, as shells report it).
const exitInterrupted = 130

// interrupts closes the TPM a command has open when the command is
// interrupted, then exits. Without it a Ctrl-C at a PIN prompt would end
// the process without TPM2_Shutdown, which the simulated TPM, like a real
// one that loses power, counts as a wrong PIN at its next start.
type interrupts struct {
	mu   sync.Mutex
	open []*tpm.TPM
}

var onInterrupt interrupts

// watch starts closing on SIGINT and SIGTERM; main calls it once.
func (in *interrupts) watch() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ch
		in.mu.Lock() // held: no TPM is registered after this
		for _, t := range in.open {
			_ = t.Close() // waits for a command in progress, then shuts down
		}
		os.Exit(exitInterrupted)
	}()
}

// add registers an open TPM; Close of a closed TPM does nothing, so the
// command's own Close and this one may both run.
func (in *interrupts) add(t *tpm.TPM) {
	in.mu.Lock()
	in.open = append(in.open, t)
	in.mu.Unlock()
}
