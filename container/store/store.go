// Package store keeps Hello containers on disk: one file per container in a
// directory, at most one container per user, written atomically and
// durably under a lock shared across processes.
//
// Save refuses to go back in time (a generation not newer than the stored
// one); Replace swaps a user's container as a compare-and-swap on its
// generation, finished by the next writer if a crash cuts it short; reads
// write nothing; Entries lists damaged files, which only Delete removes.
// With rollback protection a container also holds an NV index in the TPM:
// Remove undefines it with the file, and OrphanedIndices and RemoveOrphans
// clean up after a process killed between defining an index and saving its
// container. A store knows a container only through container.Parse,
// MarshalBinary and its accessors.
package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/internal/fsync"
)

// storeExt is the extension of container files in a Store.
const storeExt = ".ngc"

// lockName is the file a Store locks across processes.
const lockName = ".lock"

// journalName is the file a Replace writes before it touches either
// container, so that a Replace cut short by a crash is finished (or undone)
// by the next writer and never leaves two containers for one user.
const journalName = ".replace"

// maxFileSize bounds what Load reads: far above any container Parse accepts.
const maxFileSize = 1 << 20

// Store keeps containers in a directory, one file per container named by its
// ID, and at most one container per user (tenant and directory object ID),
// as Windows keeps one Hello container per user on a device.
//
// Writes are atomic and durable: a temporary file in the same directory,
// fsync, rename, fsync of the directory, so that neither a crash nor a power
// cut leaves a torn file or brings back an older container. Writers are
// serialised across processes by an exclusive lock on the directory's lock
// file; two writers cannot lose each other's update unnoticed: Save refuses
// to replace a container with one of the same or an older generation, and
// Replace compares the generation it replaces with the stored one.
//
// Reads (Load, Lookup, List, Entries) take the lock shared, through a
// read-only descriptor, and write nothing: they work on a read-only
// directory and never create a file.
//
// A Store never deletes or overwrites a file it cannot parse; Load reports it
// as a *FileError naming the file (errors.Is ErrCorrupt), Entries lists it
// with its error, and Delete removes it only when asked.
type Store struct {
	dir string
	ops diskOps
}

// diskOps are the calls that make a write durable. They are a seam for
// tests, which record them to prove that every write syncs its file before
// the rename and the directory after it.
type diskOps struct {
	syncFile func(f *os.File) error
	syncDir  func(dir string) error
	rename   func(from, to string) error
	remove   func(name string) error
}

func realDiskOps() diskOps {
	return diskOps{syncFile: (*os.File).Sync, syncDir: fsync.Dir, rename: os.Rename, remove: os.Remove}
}

// Open opens the store in dir, creating the directory (mode 0700) if needed.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, fmt.Errorf("container store: empty directory name")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("container store: %w", err)
	}
	return OpenExisting(dir)
}

// OpenExisting opens the store in dir without creating anything: a
// missing directory is an error matching fs.ErrNotExist. Programs that only
// read use it, so that a mistyped directory name creates nothing.
func OpenExisting(dir string) (*Store, error) {
	if dir == "" {
		return nil, fmt.Errorf("container store: empty directory name")
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("container store: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("container store: %s is not a directory", dir)
	}
	return &Store{dir: dir, ops: realDiskOps()}, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// Path is the file that holds the container with the given ID.
func (s *Store) Path(id string) string { return filepath.Join(s.dir, id+storeExt) }

func (s *Store) checkID(id string) error {
	if !container.ValidID(id) {
		return fmt.Errorf("container store: %q is not a container ID", id)
	}
	return nil
}

// sameUser reports whether a and b belong to the same user: the same
// tenant and directory object ID (the UPN may change; they do not).
func sameUser(a, b container.Config) bool {
	return strings.EqualFold(a.TenantID, b.TenantID) && strings.EqualFold(a.UserID, b.UserID)
}

// encodeForStore marshals c and checks that Load could read it back: a zero
// Container, or one whose fields are out of the format's range, would
// otherwise replace a good file with an unloadable one.
func encodeForStore(c *container.Container) ([]byte, error) {
	if c == nil {
		return nil, errors.New("container store: nil container")
	}
	data, err := c.MarshalBinary()
	if err != nil {
		return nil, err
	}
	if _, err := container.Parse(data); err != nil {
		return nil, fmt.Errorf("container store: refusing to save a container that would not load: %w", err)
	}
	return data, nil
}

// writeLock takes the exclusive lock and finishes whatever a crashed writer
// left: an interrupted Replace, temporary files.
func (s *Store) writeLock() (unlock func(), err error) {
	unlock, err = lockDir(s.dir, true)
	if err != nil {
		return nil, &FileError{Path: filepath.Join(s.dir, lockName), Err: err}
	}
	if err := s.recoverLocked(); err != nil {
		unlock()
		return nil, err
	}
	s.removeStaleTemps()
	return unlock, nil
}

// readLocked runs fn under the store's read lock.
func readLocked[T any](s *Store, fn func() (T, error)) (T, error) {
	unlock, err := s.readLock()
	if err != nil {
		var zero T
		return zero, err
	}
	defer unlock()
	return fn()
}

// readLock takes the lock shared, writing nothing.
func (s *Store) readLock() (unlock func(), err error) {
	unlock, err = lockDir(s.dir, false)
	if err != nil {
		return nil, &FileError{Path: filepath.Join(s.dir, lockName), Err: err}
	}
	return unlock, nil
}

// Save writes c atomically. It returns a *ConflictError (errors.Is
// ErrConflict) when the store holds the same or a newer generation of c, a
// *UserHasContainerError (errors.Is ErrUserHasContainer) when c is new and
// its user already has another container (Replace replaces it), and a
// *FileError when the stored file, or any file whose user cannot be told
// because it is damaged, is corrupt (left as it is).
func (s *Store) Save(c *container.Container) error {
	data, err := encodeForStore(c)
	if err != nil {
		return err
	}
	unlock, err := s.writeLock()
	if err != nil {
		return err
	}
	defer unlock()

	path := s.Path(c.ID())
	old, err := s.read(path)
	switch {
	case errors.Is(err, ErrNotFound):
		// A new container: its user must have none.
		if err := s.checkNoOtherContainer(c, ""); err != nil {
			return err
		}
	case err != nil:
		return err
	case old.Generation() >= c.Generation():
		return &ConflictError{ID: c.ID(), Stored: old.Generation(), Saving: c.Generation()}
	}
	if err := s.writeAtomic(path, data); err != nil {
		return &FileError{Path: path, Err: err}
	}
	return nil
}

// checkNoOtherContainer returns a *UserHasContainerError when another
// container than c (and than except) belongs to c's user, and a *FileError
// for a damaged file, whose user cannot be told. The caller holds the write
// lock.
func (s *Store) checkNoOtherContainer(c *container.Container, except string) error {
	entries, err := s.entries()
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.ID == c.ID() || e.ID == except {
			continue
		}
		if e.Err != nil {
			return e.Err
		}
		if cfg := c.Config(); sameUser(e.config, cfg) {
			return &UserHasContainerError{User: cfg.User, TenantID: cfg.TenantID, UserID: cfg.UserID, ID: e.ID, Generation: e.Generation}
		}
	}
	return nil
}

// Replace replaces old, the container the caller read from the store, with
// n, a container of the same user: a destructive reset, or provisioning
// again. It is a compare-and-swap under the store's lock: a *ConflictError
// (errors.Is ErrConflict) when the stored generation of old is no longer
// old's, or old is no longer in the store, so that of two writers that both read old only one replaces it.
// n may have old's ID (then its generation must be newer) or a new one;
// in both cases the store never holds two containers of the user, even if
// the process dies half-way: a journal written first lets the next writer
// finish the replacement, and readers already see only n.
func (s *Store) Replace(old, n *container.Container) error {
	if old == nil {
		return errors.New("container store: replace: nil old container")
	}
	data, err := encodeForStore(n)
	if err != nil {
		return err
	}
	if !sameUser(old.Config(), n.Config()) {
		return fmt.Errorf("container store: replace: container %s belongs to another user than %s", n.ID(), old.ID())
	}
	unlock, err := s.writeLock()
	if err != nil {
		return err
	}
	defer unlock()

	oldPath, newPath := s.Path(old.ID()), s.Path(n.ID())
	stored, err := s.read(oldPath)
	if errors.Is(err, ErrNotFound) {
		// Deleted or replaced since the caller read it.
		return &ConflictError{ID: old.ID(), Saving: old.Generation(), Replace: true}
	}
	if err != nil {
		return err
	}
	if stored.Generation() != old.Generation() {
		return &ConflictError{ID: old.ID(), Stored: stored.Generation(), Saving: old.Generation(), Replace: true}
	}
	if n.ID() == old.ID() {
		if n.Generation() <= stored.Generation() {
			return &ConflictError{ID: n.ID(), Stored: stored.Generation(), Saving: n.Generation()}
		}
		if err := s.writeAtomic(newPath, data); err != nil {
			return &FileError{Path: newPath, Err: err}
		}
		return nil
	}
	if _, err := os.Lstat(newPath); !errors.Is(err, fs.ErrNotExist) {
		return &FileError{Path: newPath, Err: fs.ErrExist}
	}
	if err := s.checkNoOtherContainer(n, old.ID()); err != nil {
		return err
	}
	// The journal first: from the moment the new file exists, the journal
	// says the old one is gone.
	journal := filepath.Join(s.dir, journalName)
	if err := s.writeAtomic(journal, encodeJournal(old.ID(), n.ID())); err != nil {
		return &FileError{Path: journal, Err: err}
	}
	if err := s.writeAtomic(newPath, data); err != nil {
		s.ops.remove(journal)
		s.ops.syncDir(s.dir)
		return &FileError{Path: newPath, Err: err}
	}
	return s.finishReplace(old.ID())
}

// finishReplace removes the replaced container and then the journal, each
// removal made durable. The caller holds the write lock.
func (s *Store) finishReplace(oldID string) error {
	if err := s.removeDurably(s.Path(oldID)); err != nil {
		return err
	}
	return s.removeDurably(filepath.Join(s.dir, journalName))
}

// removeDurably removes path (one already gone is fine) and syncs the
// directory. The caller holds the write lock.
func (s *Store) removeDurably(path string) error {
	if err := s.ops.remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return &FileError{Path: path, Err: err}
	}
	if err := s.ops.syncDir(s.dir); err != nil {
		return &FileError{Path: s.dir, Err: err}
	}
	return nil
}

// recoverLocked finishes a Replace that a crash interrupted: when the new
// container was written, the old one goes; when it was not, the old one
// stays. Either way the journal goes. The caller holds the write lock.
func (s *Store) recoverLocked() error {
	oldID, newID, ok, err := s.readJournal()
	if err != nil || !ok {
		return err
	}
	if _, err := os.Lstat(s.Path(newID)); err == nil {
		return s.finishReplace(oldID)
	}
	return s.removeDurably(filepath.Join(s.dir, journalName))
}

// journalMagic starts a replace journal: "hellosim replace v1 OLD NEW\n".
const journalMagic = "hellosim replace v1"

func encodeJournal(oldID, newID string) []byte {
	return []byte(journalMagic + " " + oldID + " " + newID + "\n")
}

// readJournal reads the journal of an interrupted Replace; ok is false when
// there is none.
func (s *Store) readJournal() (oldID, newID string, ok bool, err error) {
	path := filepath.Join(s.dir, journalName)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, &FileError{Path: path, Err: err}
	}
	f := strings.Fields(string(data))
	if len(f) != 5 || strings.Join(f[:3], " ") != journalMagic || !bytes.HasSuffix(data, []byte("\n")) ||
		!container.ValidID(f[3]) || !container.ValidID(f[4]) || f[3] == f[4] {
		return "", "", false, &FileError{Path: path, Err: &container.FormatError{Field: "replace journal", Reason: "not a journal this store writes"}}
	}
	return f[3], f[4], true, nil
}

// replaced is the ID a reader must not see: the old container of an
// interrupted Replace whose new container was written; "" for none.
func (s *Store) replaced() (string, error) {
	oldID, newID, ok, err := s.readJournal()
	if err != nil || !ok {
		return "", err
	}
	if _, err := os.Lstat(s.Path(newID)); err == nil {
		return oldID, nil
	}
	return "", nil
}

// tempPattern names the temporary files of writeAtomic.
const tempPattern = ".tmp-*" + storeExt

// removeStaleTemps removes temporary files left by a write that died between
// creating its temporary file and renaming it (a crash, SIGKILL, power
// loss). Every write holds the directory's exclusive lock from before it
// creates its temporary file until after the rename, so while the caller
// holds that lock no temporary file belongs to a live write. Failures are
// ignored: a leftover file is untidy, never harmful, and the next write tries
// again.
func (s *Store) removeStaleTemps() {
	stale, _ := filepath.Glob(filepath.Join(s.dir, tempPattern))
	for _, name := range stale {
		os.Remove(name)
	}
}

// writeAtomic writes data to path through a temporary file in the store's
// directory: write, fsync the file, rename, fsync the directory. Without
// the first sync a power cut can leave the new name on an empty or partial
// file; without the second the rename itself may be lost and an older
// container come back.
func (s *Store) writeAtomic(path string, data []byte) (err error) {
	f, err := os.CreateTemp(s.dir, tempPattern)
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
	if err = s.ops.syncFile(f); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = s.ops.rename(tmp, path); err != nil {
		return err
	}
	return s.ops.syncDir(s.dir)
}

// Load reads the container with the given ID. A missing one is ErrNotFound; a
// corrupt file a *FileError naming it (errors.Is ErrCorrupt).
func (s *Store) Load(id string) (*container.Container, error) {
	if err := s.checkID(id); err != nil {
		return nil, err
	}
	unlock, err := s.readLock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	gone, err := s.replaced()
	if err != nil {
		return nil, err
	}
	if id == gone {
		return nil, &FileError{Path: s.Path(id), Err: ErrNotFound}
	}
	return s.load(id)
}

func (s *Store) load(id string) (*container.Container, error) {
	c, err := s.read(s.Path(id))
	if err != nil {
		return nil, err
	}
	if c.ID() != id {
		return nil, &FileError{Path: s.Path(id), Err: &container.FormatError{Field: "id", Reason: "file holds container " + c.ID()}}
	}
	return c, nil
}

func (s *Store) read(path string) (*container.Container, error) {
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
		return nil, &FileError{Path: path, Err: &container.FormatError{Field: "file", Reason: "not a regular file of plausible size"}}
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil && fi.Size() > 0 {
		return nil, &FileError{Path: path, Err: err}
	}
	c, err := container.Parse(data)
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	return c, nil
}

// Lookup returns the container of the user with the given tenant and
// directory object ID. None is ErrNotFound, unless the store holds a damaged
// file, which might be the user's: then the error is that file's *FileError
// (errors.Is ErrCorrupt), and Entries lists it.
func (s *Store) Lookup(tenantID, userID string) (*container.Container, error) {
	unlock, err := s.readLock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	entries, err := s.entries()
	if err != nil {
		return nil, err
	}
	var damaged error
	for _, e := range entries {
		switch {
		case e.Err != nil:
			damaged = cmpOr(damaged, e.Err)
		case sameUser(e.config, container.Config{TenantID: tenantID, UserID: userID}):
			return e.container, nil
		}
	}
	if damaged != nil {
		return nil, damaged
	}
	return nil, &FileError{Path: s.dir, Err: ErrNotFound}
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// Entry is one container file of a store, as Entries reports it.
type Entry struct {
	ID   string // container ID, from the file name
	Path string
	// Err is nil for a container that loads, else the *FileError Load
	// returns (errors.Is ErrCorrupt for a damaged file).
	Err error
	// The container's user and generation; zero when Err is set.
	User, TenantID, UserID string
	Generation             uint64

	config    container.Config
	container *container.Container
}

// Entries lists every container file, sorted by ID, with the user it
// belongs to, or the error that keeps it from loading: this is how a
// damaged file is found, to be removed with Delete.
func (s *Store) Entries() ([]Entry, error) {
	return readLocked(s, s.entries)
}

func (s *Store) entries() ([]Entry, error) {
	ids, err := s.list()
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(ids))
	for _, id := range ids {
		e := Entry{ID: id, Path: s.Path(id)}
		c, err := s.load(id)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				continue // removed since the directory was read
			}
			e.Err = err
		} else {
			e.container, e.config = c, c.Config()
			e.User, e.TenantID, e.UserID, e.Generation = e.config.User, e.config.TenantID, e.config.UserID, c.Generation()
		}
		out = append(out, e)
	}
	return out, nil
}

// List returns the IDs of the containers in the store, sorted. It reads only
// file names: a corrupt file is listed, and Load reports it.
func (s *Store) List() ([]string, error) {
	return readLocked(s, s.list)
}

func (s *Store) list() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("container store: %w", err)
	}
	gone, err := s.replaced()
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), storeExt)
		if ok && e.Type().IsRegular() && container.ValidID(id) && id != gone {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Delete removes the container with the given ID, like
// certutil -deleteHelloContainer, whether it loads or is damaged. A missing
// one is ErrNotFound. Only the file goes: a container with rollback
// protection also holds an NV index in the TPM, which Remove undefines
// with the file.
func (s *Store) Delete(id string) error {
	if err := s.checkID(id); err != nil {
		return err
	}
	unlock, err := s.writeLock()
	if err != nil {
		return err
	}
	defer unlock()
	path := s.Path(id)
	if err := s.ops.remove(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &FileError{Path: path, Err: ErrNotFound}
		}
		return &FileError{Path: path, Err: err}
	}
	if err := s.ops.syncDir(s.dir); err != nil {
		return &FileError{Path: s.dir, Err: err}
	}
	return nil
}
