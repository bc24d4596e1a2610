//go:build !unix

package tpm

import (
	"errors"
	"os"
)

// lockSimState is implemented with flock, on Unix only.
func lockSimState(path string) (*os.File, error) {
	return nil, &SimStateError{Path: path, Op: "lock", Err: errors.New("simulator state files need Unix file locking")}
}
