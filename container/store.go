package container

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// storeExt is the extension of container files in a Store.
const storeExt = ".ngc"

// lockName is the file a Store locks across processes.
const lockName = ".lock"

// maxFileSize bounds what Load reads: far above any container Parse accepts.
const maxFileSize = 1 << 20

// Store keeps containers in a directory, one file per container named by its
// ID. Writes are atomic (a temporary file in the same directory, fsync,
// rename, fsync of the directory) and serialised across processes by a lock
// on the directory's lock file, so a crash leaves either the old or the new
// container, and two writers cannot lose each other's update unnoticed: Save
// refuses to replace a container with one of the same or an older generation.
//
// A Store never deletes or overwrites a file it cannot parse; Load reports it
// as a *FileError naming the file (errors.Is ErrCorrupt) and Delete removes it
// only when asked.
type Store struct {
	dir string
}

// OpenStore opens the store in dir, creating the directory (mode 0700) if needed.
func OpenStore(dir string) (*Store, error) {
	if dir == "" {
		return nil, fmt.Errorf("container store: empty directory name")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("container store: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("container store: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("container store: %s is not a directory", dir)
	}
	return &Store{dir: dir}, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// Path is the file that holds the container with the given ID.
func (s *Store) Path(id string) string { return filepath.Join(s.dir, id+storeExt) }

func (s *Store) checkID(id string) error {
	if !ValidID(id) {
		return fmt.Errorf("container store: %q is not a container ID", id)
	}
	return nil
}

// Save writes c atomically. It returns a *ConflictError (errors.Is
// ErrConflict) when the store holds the same or a newer generation of c,
// and a *FileError when the stored file is corrupt (left as it is).
func (s *Store) Save(c *Container) error {
	if c == nil {
		return errors.New("container store: nil container")
	}
	data, err := c.MarshalBinary()
	if err != nil {
		return err
	}
	// Never write what Load could not read back: a zero Container, or one
	// whose fields are out of the format's range, would otherwise replace a
	// good file with an unloadable one.
	if _, err := Parse(data); err != nil {
		return fmt.Errorf("container store: refusing to save a container that would not load: %w", err)
	}
	path := s.Path(c.id)
	unlock, err := lockDir(s.dir, true)
	if err != nil {
		return &FileError{Path: filepath.Join(s.dir, lockName), Err: err}
	}
	defer unlock()
	s.removeStaleTemps()

	old, err := s.read(path)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return err
	case old.generation >= c.generation:
		return &ConflictError{ID: c.id, Stored: old.generation, Saving: c.generation}
	}
	if err := writeAtomic(s.dir, path, data); err != nil {
		return &FileError{Path: path, Err: err}
	}
	return nil
}

// tempPattern names the temporary files of writeAtomic.
const tempPattern = ".tmp-*" + storeExt

// removeStaleTemps removes temporary files left by a Save that died between
// creating its temporary file and renaming it (a crash, SIGKILL, power
// loss). Every Save holds the directory's exclusive lock from before it
// creates its temporary file until after the rename, so while the caller
// holds that lock no temporary file belongs to a live Save. Failures are
// ignored: a leftover file is untidy, never harmful, and the next Save tries
// again.
func (s *Store) removeStaleTemps() {
	stale, _ := filepath.Glob(filepath.Join(s.dir, tempPattern))
	for _, name := range stale {
		os.Remove(name)
	}
}

// writeAtomic writes data to path through a temporary file in dir.
func writeAtomic(dir, path string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, tempPattern)
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename or remove in dir durable (fsync of the directory).
func syncDir(dir string) error {
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

// Load reads the container with the given ID. A missing one is ErrNotFound; a
// corrupt file a *FileError naming it (errors.Is ErrCorrupt).
func (s *Store) Load(id string) (*Container, error) {
	if err := s.checkID(id); err != nil {
		return nil, err
	}
	unlock, err := lockDir(s.dir, false)
	if err != nil {
		return nil, &FileError{Path: filepath.Join(s.dir, lockName), Err: err}
	}
	defer unlock()
	c, err := s.read(s.Path(id))
	if err != nil {
		return nil, err
	}
	if c.id != id {
		return nil, &FileError{Path: s.Path(id), Err: &FormatError{Field: "id", Reason: "file holds container " + c.id}}
	}
	return c, nil
}

func (s *Store) read(path string) (*Container, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &FileError{Path: path, Err: ErrNotFound}
	}
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxFileSize {
		return nil, &FileError{Path: path, Err: &FormatError{Field: "file", Reason: "not a regular file of plausible size"}}
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil && fi.Size() > 0 {
		return nil, &FileError{Path: path, Err: err}
	}
	c, err := Parse(data)
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	return c, nil
}

// List returns the IDs of the containers in the store, sorted. It reads only
// file names: a corrupt file is listed, and Load reports it.
func (s *Store) List() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("container store: %w", err)
	}
	var ids []string
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), storeExt)
		if ok && e.Type().IsRegular() && ValidID(id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Delete removes the container with the given ID, like
// certutil -deleteHelloContainer. A missing one is ErrNotFound. Only the
// file goes: a container with rollback protection also holds an NV index
// in the TPM, which Remove undefines with the file.
func (s *Store) Delete(id string) error {
	if err := s.checkID(id); err != nil {
		return err
	}
	unlock, err := lockDir(s.dir, true)
	if err != nil {
		return &FileError{Path: filepath.Join(s.dir, lockName), Err: err}
	}
	defer unlock()
	path := s.Path(id)
	if err := os.Remove(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &FileError{Path: path, Err: ErrNotFound}
		}
		return &FileError{Path: path, Err: err}
	}
	if err := syncDir(s.dir); err != nil {
		return &FileError{Path: s.dir, Err: err}
	}
	return nil
}
