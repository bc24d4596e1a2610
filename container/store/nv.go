package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/tpm"
)

// The TPM side of a Store: with rollback protection each container holds
// its secret in one NV index of the TPM, which outlives the file unless it
// is undefined. Remove deletes both; OrphanedIndices finds indices no
// stored container uses (left by a process killed between defining an
// index and saving the container, or by a file deleted with Delete) so
// that RemoveOrphans can undefine them.

// Remove deletes the container with the given ID from the store and
// undefines its NV indices (the one in use, and one a reset retired), as
// certutil -deleteHelloContainer removes the TPM keys with the container.
// The file goes last: if the TPM refuses (tpm.ErrOwnerAuth when the owner
// has set an authorization), nothing is deleted. A file that does not
// parse is deleted all the same (its indices, if any, become orphans).
func (s *Store) Remove(ctx context.Context, t *tpm.TPM, id string) error {
	c, err := s.Load(id)
	var fe *FileError
	switch {
	case err == nil:
		for _, nv := range []tpm.NVSecret{c.NVIndex(), c.Retired()} {
			if nv.IsZero() {
				continue
			}
			if err := t.UndefineSecret(ctx, nv); err != nil {
				return fmt.Errorf("container store: remove %s: %w", id, err)
			}
		}
	case errors.Is(err, container.ErrCorrupt) && errors.As(err, &fe):
	default:
		return err
	}
	return s.Delete(id)
}

// OrphanedIndices lists the library's NV indices on t that no container in
// the store uses. It is only meaningful when the store holds every
// container made on that TPM (one store per TPM and user set): indices of
// containers kept elsewhere are listed too. A file that does not parse
// makes it fail, since the indices that file names cannot be known.
func (s *Store) OrphanedIndices(ctx context.Context, t *tpm.TPM) ([]tpm.NVSecret, error) {
	ids, err := s.List()
	if err != nil {
		return nil, err
	}
	used := map[uint32]bool{}
	for _, id := range ids {
		c, err := s.Load(id)
		if err != nil {
			return nil, fmt.Errorf("container store: orphaned indices: %w", err)
		}
		used[c.NVIndex().Handle], used[c.Retired().Handle] = true, true
	}
	all, err := t.Secrets(ctx)
	if err != nil {
		return nil, fmt.Errorf("container store: orphaned indices: %w", err)
	}
	var out []tpm.NVSecret
	for _, nv := range all {
		if !used[nv.Handle] {
			out = append(out, nv)
		}
	}
	return out, nil
}

// RemoveOrphans undefines the indices OrphanedIndices lists and returns how
// many it removed.
func (s *Store) RemoveOrphans(ctx context.Context, t *tpm.TPM) (int, error) {
	orphans, err := s.OrphanedIndices(ctx, t)
	if err != nil {
		return 0, err
	}
	for i, nv := range orphans {
		if err := t.UndefineSecret(ctx, nv); err != nil {
			return i, fmt.Errorf("container store: remove orphaned index %#x: %w", nv.Handle, err)
		}
	}
	return len(orphans), nil
}
