package container

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/hellosim/hellosim/tpm"

	"github.com/hellosim/hellosim/container/event"
)

// Rollback protection. The container secret S lives in an NV index of the
// TPM whose authValue is the PIN's (tpm.DefineSecret), not in a sealed blob
// of which every copy of the file would hold a working one. The TPM keeps
// one S under one PIN:
//
//   - ChangePIN changes the index's authValue in place
//     (TPM2_NV_ChangeAuth, which the index's policy allows only with the
//     current authValue): from then on the old PIN is refused by the TPM,
//     through whatever copy of the file it is tried. The container salt
//     stays the same, so the file from before the change unlocks with the
//     new PIN: a process killed after the TPM switched loses nothing.
//   - A reset (ResetPIN, Reprovision) cannot prove the old PIN, so it
//     defines a new index under the new PIN and records the old one as
//     retired. Nothing is revoked until the caller has saved the new
//     container and calls Retire, which undefines the old index: a reset
//     that fails or is killed half-way leaves the old container working.
//
// Where the TPM does not keep NV (a seeded simulator), the owner refuses
// the library an NV index (owner authorization set) or NV is full, S is
// sealed as before and the container says why (RollbackProtection).

// ErrRevoked is a container whose NV index is gone: a newer container (a
// reset) replaced it and Retire revoked this one, or it was deleted.
var ErrRevoked = errors.New("container: this container was revoked (replaced by a reset, or deleted)")

// Rollback says whether a container is protected against rollback, and
// if not, why.
type Rollback struct {
	On     bool
	Reason string // why not, when off
}

// String is what `hello status` prints: "on" or "off (reason)".
func (r Rollback) String() string {
	if r.On {
		return "on"
	}
	return "off (" + r.Reason + ")"
}

// RollbackProtection reports whether old copies of this container stop
// working once the PIN changes or the container is reset: true when its
// secret is in a TPM NV index, false (with the reason) when it is sealed in
// a blob, which every copy of the file holds.
func (c *Container) RollbackProtection() Rollback {
	if c.pin == nil {
		return Rollback{Reason: "no PIN protector"}
	}
	return c.pin.rollback()
}

// NVIndex is the NV index holding the container secret, zero when it is
// sealed instead; Retired the index of the container a reset replaced,
// until Retire undefines it. Tools that look for orphaned indices
// (store.Store.OrphanedIndices, package container/store) compare the
// TPM's list with these.
func (c *Container) NVIndex() tpm.NVSecret { return c.pinIndex() }

// Retired is the NV index a reset replaced, which Retire undefines; zero
// when there is none.
func (c *Container) Retired() tpm.NVSecret { return cloneNV(c.retired) }

// Retire revokes the container c replaced: it undefines the NV index a
// reset recorded as retired, so the container from before the reset, and
// every copy of it, fails with ErrRevoked (a TPM error) from then on. It
// returns c one generation on with the record cleared, for the caller to
// save; c itself when there is nothing to retire (no command is sent).
//
// Call it once c is saved — never before, or a crash in between leaves
// neither container working. It is one TPM2_NV_UndefineSpace with the
// empty owner authorization (tpm.ErrOwnerAuth when the owner has set one).
// An index already gone counts as done, so after a crash before the
// returned container was saved Retire may simply be called again; a later
// reset of c also finishes it.
func Retire(ctx context.Context, t *tpm.TPM, c *Container, opts ...Option) (*Container, error) {
	if c == nil || t == nil {
		return nil, errors.New("container: retire: nil container or TPM")
	}
	if c.retired.IsZero() {
		return c, nil
	}
	if err := t.CheckSRK(c.srkName); err != nil {
		return nil, fmt.Errorf("container: check storage root key: %w", err)
	}
	if err := t.UndefineSecret(ctx, c.retired); err != nil {
		return nil, fmt.Errorf("container: retire the replaced container: %w", err)
	}
	n := c.next()
	n.retired = tpm.NVSecret{}
	o := newOptions(opts)
	o.emit(ctx, n, event.Event{Kind: event.Retired})
	return n, nil
}

// Discard gives back the NV index of a container that will never be saved:
// the result of a reset whose later step failed (the directory refused the
// new key, say). c's retired index is left alone: the container before the
// reset is still the live one. It does nothing for a container without an
// index.
func Discard(ctx context.Context, t *tpm.TPM, c *Container) error {
	if c == nil || t == nil || c.pin == nil {
		return nil
	}
	if err := c.pin.retire(ctx, t); err != nil {
		return fmt.Errorf("container: discard: %w", err)
	}
	return nil
}

// finishRetire completes the retirement c itself records, before a reset
// of c records c's own index as retired in its place: c is the saved
// container (a reset starts from the stored one), so the index it retired
// belongs to no live container. Best effort: a reset is what a user locked
// out of the container needs, so a TPM that refuses (owner authorization
// set since) does not stop it; the index is then an orphan, which
// store.Store.OrphanedIndices lists. Nothing to do costs no command.
func finishRetire(ctx context.Context, t *tpm.TPM, c *Container) {
	if !c.retired.IsZero() {
		_ = t.UndefineSecret(ctx, c.retired)
	}
}

// undefineNew undefines the index protectSecret defined, when the
// operation that made it fails afterwards (best effort: an index left
// behind is an orphan, listed by store.Store.OrphanedIndices).
func (c *Container) undefineNew(t *tpm.TPM) {
	if c.pin != nil {
		_ = c.pin.retire(context.Background(), t)
	}
}

// WithoutRollbackProtection makes Provision, ResetPIN and Reprovision seal
// the container secret in a blob rather than an NV index, with reason as
// what RollbackProtection reports. For TPMs whose NV memory must not be
// used; old copies of such a container keep working with their PINs. The
// reason is recorded in the container, cut to 200 bytes.
func WithoutRollbackProtection(reason string) Option {
	if reason == "" {
		reason = "turned off by the application"
	}
	if len(reason) > maxReasonLen {
		cut := maxReasonLen
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	return func(o *options) { o.noRollback = reason }
}
