//go:build !unix

package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// lockTimeout bounds how long lockDir waits for another holder.
const lockTimeout = 30 * time.Second

// lockDir takes the store's lock where flock(2) is missing: the lock file is
// created exclusively (O_EXCL) and removed on unlock. Only writers take it:
// creating the file is a write, and reads write nothing. Readers rely on
// every write being a whole rename and on the replace journal. A holder
// that crashes leaves the file behind; it must then be removed by hand, and
// lockDir says so after lockTimeout.
func lockDir(dir string, exclusive bool) (unlock func(), err error) {
	if !exclusive {
		return func() {}, nil
	}
	path := filepath.Join(dir, lockName)
	deadline := time.Now().Add(lockTimeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("lock held for more than %s (remove %s if no process holds it)", lockTimeout, path)
		}
		time.Sleep(delay)
	}
}
