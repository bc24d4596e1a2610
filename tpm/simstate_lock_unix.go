//go:build unix

package tpm

import (
	"errors"
	"os"
	"syscall"
)

// lockSimState takes the state file's lock without waiting: a second
// process (or a second open in this one) gets ErrSimStateLocked at once.
// The lock is the kernel's (flock), so it dies with the process.
func lockSimState(path string) (*os.File, error) {
	lp := simStateLockPath(path)
	f, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, &SimStateError{Path: path, Op: "lock", Err: err}
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			err = ErrSimStateLocked
		}
		return nil, &SimStateError{Path: path, Op: "lock", Err: err}
	}
	return f, nil
}
