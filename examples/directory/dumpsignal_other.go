//go:build !unix

package main

import "os"

// notifyDump does nothing where there is no SIGUSR1 (Windows): the dump is
// written at exit only.
func notifyDump(chan<- os.Signal) {}
