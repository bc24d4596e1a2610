//go:build unix

package main

import (
	"os"
	"os/signal"
	"syscall"
)

// notifyDump delivers SIGUSR1, the signal that asks for a dump, on c.
func notifyDump(c chan<- os.Signal) { signal.Notify(c, syscall.SIGUSR1) }
