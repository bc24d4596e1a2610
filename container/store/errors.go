package store

import (
	"errors"
	"fmt"
)

// Sentinel errors of a Store. Callers branch on them with errors.Is; the
// typed errors below carry the details (errors.As). A file that does not
// parse is a *FileError matching container.ErrCorrupt.
var (
	// ErrConflict is a Store.Save that would overwrite a container of the same
	// or a newer generation. The error is a *ConflictError.
	ErrConflict = errors.New("container: store holds the same or a newer generation")

	// ErrUserHasContainer is a Store.Save of a new container for a user who
	// already has one in the store (one container per user, as on Windows);
	// Store.Replace replaces it. The error is a *UserHasContainerError.
	ErrUserHasContainer = errors.New("container: the user already has a container in the store")

	// ErrNotFound is a Store.Load or Store.Delete of a container that is not
	// in the store.
	ErrNotFound = errors.New("container: not found")
)

// FileError is a store file that could not be read, parsed or written. Path
// names the file; Err says why (errors.Is(err, container.ErrCorrupt) for a corrupt file,
// which the store leaves in place).
type FileError struct {
	Path string
	Err  error
}

// Error names the file and the cause.
func (e *FileError) Error() string { return fmt.Sprintf("container store: %s: %v", e.Path, e.Err) }

// Unwrap returns the cause.
func (e *FileError) Unwrap() error { return e.Err }

// ConflictError is a Save refused because the store already holds generation
// Stored of the container and the caller saves generation Saving (not newer),
// or, with Replace set, a Store.Replace refused because the stored
// generation is no longer Saving, the one the caller read and meant to
// replace: another writer changed the container in between.
type ConflictError struct {
	ID             string
	Stored, Saving uint64
	Replace        bool
}

// Error names the container and both generations.
func (e *ConflictError) Error() string {
	if e.Replace && e.Stored == 0 {
		return fmt.Sprintf("container store: container %s: generation %d being replaced is no longer in the store (deleted or replaced meanwhile)",
			e.ID, e.Saving)
	}
	if e.Replace {
		return fmt.Sprintf("container store: container %s: stored generation %d is not generation %d being replaced (changed meanwhile)",
			e.ID, e.Stored, e.Saving)
	}
	return fmt.Sprintf("container store: container %s: stored generation %d is not older than generation %d being saved",
		e.ID, e.Stored, e.Saving)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// UserHasContainerError is a new container refused because its user
// already has container ID (of generation Generation) in the store.
type UserHasContainerError struct {
	User, TenantID, UserID string
	ID                     string
	Generation             uint64
}

// Error names the user and the container they have.
func (e *UserHasContainerError) Error() string {
	return fmt.Sprintf("container store: user %s (object %s in tenant %s) already has container %s",
		e.User, e.UserID, e.TenantID, e.ID)
}

// Is makes errors.Is(err, ErrUserHasContainer) true.
func (e *UserHasContainerError) Is(target error) bool { return target == ErrUserHasContainer }
