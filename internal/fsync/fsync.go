// Package fsync makes changes to a directory durable: after a file in it
// is created, renamed or removed, an fsync of the directory itself commits
// the change to its entries.
package fsync

import (
	"errors"
	"os"
)

// Dir fsyncs the directory dir, so that a create, rename or remove in it
// survives a crash. Where directories cannot be synced (Windows, some file
// systems: os.ErrInvalid, errors.ErrUnsupported) it does nothing.
func Dir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) && !errors.Is(err, errors.ErrUnsupported) {
		return err
	}
	return nil
}
