//go:build unix

package container

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// lockDir takes the store's lock: flock(2) on its lock file, exclusive for
// writers, shared for readers. flock locks belong to the open file
// description, so they also exclude other goroutines of this process.
func lockDir(dir string, exclusive bool) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
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
