//go:build unix

package store

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// lockDir takes the store's lock: flock(2) on its lock file, exclusive for
// writers, shared for readers. flock locks belong to the open file
// description, so they also exclude other goroutines of this process.
//
// Readers open the lock file read-only and never create it, so a read
// writes nothing and works on a read-only directory. With no lock file no
// writer ever ran here (every writer creates it first and it is never
// removed), and what a reader sees is a whole rename anyway.
func lockDir(dir string, exclusive bool) (unlock func(), err error) {
	var f *os.File
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
		f, err = os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	} else {
		f, err = os.Open(filepath.Join(dir, lockName))
		if errors.Is(err, fs.ErrNotExist) {
			return func() {}, nil
		}
	}
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}
