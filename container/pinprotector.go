package container

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/hellosim/hellosim/tpm"
)

// pinProtector is where the container secret S waits under the PIN's
// authValue, HMAC-SHA256(salt, NFC(PIN)). It has two forms: an NV index of
// the TPM (rollback protection: one S under one PIN, so old copies of the
// file are refused) and, where the TPM keeps no NV, a sealed-data object
// every copy of the file holds. Which one a container has is decided once,
// when it is made (definePINProtector) or parsed (pinProtectorFromFormat);
// nothing else asks.
type pinProtector interface {
	// read opens S with the PIN's authValue.
	read(ctx context.Context, t *tpm.TPM, auth []byte) ([]byte, error)
	// rekey readies n, the container a PIN change makes, for newPIN,
	// before n is authenticated: the sealed form draws a fresh salt and
	// seals S under it; the NV form changes nothing yet (see commitChange).
	rekey(ctx context.Context, t *tpm.TPM, n *Container, s []byte, newPIN nfcPIN, o *options) error
	// commitChange is the last step of a PIN change, once nothing else can
	// fail: the NV form changes the index's authValue in the TPM from the
	// old PIN's to the new one's (same salt); the sealed form has nothing
	// left to do.
	commitChange(ctx context.Context, t *tpm.TPM, salt []byte, oldPIN, newPIN nfcPIN, o *options) error
	// retire gives the TPM back what the protector holds there: the NV
	// form undefines its index; the sealed form holds nothing.
	retire(ctx context.Context, t *tpm.TPM) error
	// index is the NV index, zero for the sealed form.
	index() tpm.NVSecret
	// rollback reports the protection the form gives.
	rollback() Rollback
	// encode is what the format records of it (see format.go).
	encode() protectorFields
	clone() pinProtector
}

// protectorFields are the format's fields of a PIN protector: a sealed
// blob, an NV index, and why rollback protection is off. Exactly one of
// blob and nv is set.
type protectorFields struct {
	blob tpm.Blob
	nv   tpm.NVSecret
	why  string
}

// nvProtector holds S in an NV index whose authValue is the PIN's.
type nvProtector struct{ nv tpm.NVSecret }

// sealedProtector holds S in a sealed-data object under the PIN's
// authValue; why says why it is not in NV ("" for a container made before
// rollback protection).
type sealedProtector struct {
	blob tpm.Blob
	why  string
}

var (
	_ pinProtector = nvProtector{}
	_ pinProtector = sealedProtector{}
)

// definePINProtector puts s under auth: in a new NV index when the TPM
// keeps NV and the caller did not turn rollback protection off, else sealed
// in a blob, with the reason.
func definePINProtector(ctx context.Context, t *tpm.TPM, s, auth []byte, o *options) (pinProtector, error) {
	why := o.noRollback
	if why == "" {
		if ok, reason := t.PersistentNV(); !ok {
			why = reason
		}
	}
	if why == "" {
		nv, err := t.DefineSecret(ctx, s, auth)
		switch {
		case err == nil:
			return nvProtector{nv: nv}, nil
		case errors.Is(err, tpm.ErrOwnerAuth):
			why = "the TPM's owner authorization is set, so no NV index could be defined"
		case errors.Is(err, tpm.ErrNVFull):
			why = "the TPM has no NV space left for an index"
		default:
			return nil, fmt.Errorf("define NV secret: %w", err)
		}
	}
	blob, err := t.Seal(ctx, s, auth)
	if err != nil {
		return nil, fmt.Errorf("seal PIN protector: %w", err)
	}
	return sealedProtector{blob: blob, why: why}, nil
}

// pinProtectorFromFormat is the protector the format's fields describe,
// or the *FormatError that says why they describe none.
func pinProtectorFromFormat(f protectorFields, retired tpm.NVSecret) (pinProtector, error) {
	bad := func(field, reason string) error { return &FormatError{Field: field, Reason: reason} }
	sealed := len(f.blob.Public) > 0 || len(f.blob.Private) > 0
	switch {
	case !f.nv.IsZero() && (sealed || f.why != ""):
		return nil, bad("nv", "the secret is in NV and also sealed, or said to be unprotected")
	case f.nv.IsZero() && (len(f.blob.Public) == 0 || len(f.blob.Private) == 0):
		return nil, bad("pinProtector", "no sealed secret and no NV index")
	case !f.nv.IsZero() && f.nv.Handle == retired.Handle:
		return nil, bad("retired", "the index in use is the one retired")
	case !f.nv.IsZero():
		return nvProtector{nv: f.nv}, nil
	}
	return sealedProtector{blob: f.blob, why: f.why}, nil
}

func (p nvProtector) read(ctx context.Context, t *tpm.TPM, auth []byte) ([]byte, error) {
	s, err := t.ReadSecret(ctx, p.nv, auth)
	if errors.Is(err, tpm.ErrNVGone) {
		return nil, fmt.Errorf("%w: %w", ErrRevoked, err)
	}
	return s, err
}

func (p sealedProtector) read(ctx context.Context, t *tpm.TPM, auth []byte) ([]byte, error) {
	return t.Unseal(ctx, p.blob, auth)
}

// rekey of the NV form keeps the salt: the index's authValue changes in
// place, last of all, so the file from before the change unlocks with the
// new PIN should the process die before the caller saves the new one.
func (nvProtector) rekey(context.Context, *tpm.TPM, *Container, []byte, nfcPIN, *options) error {
	return nil
}

func (p sealedProtector) rekey(ctx context.Context, t *tpm.TPM, n *Container, s []byte, newPIN nfcPIN, o *options) error {
	if err := o.timestampOK(); err != nil {
		return err
	}
	salt, err := newSalt(o)
	if err != nil {
		return err
	}
	auth := o.pinAuth(salt, newPIN)
	defer clear(auth)
	blob, err := t.Seal(ctx, s, auth)
	if err != nil {
		return fmt.Errorf("seal PIN protector: %w", err)
	}
	n.salt, n.pin = salt, sealedProtector{blob: blob, why: p.why}
	return nil
}

func (p nvProtector) commitChange(ctx context.Context, t *tpm.TPM, salt []byte, oldPIN, newPIN nfcPIN, o *options) error {
	oldAuth, newAuth := o.pinAuth(salt, oldPIN), o.pinAuth(salt, newPIN)
	defer clear(oldAuth)
	defer clear(newAuth)
	return t.ChangeSecretAuth(ctx, p.nv, oldAuth, newAuth)
}

func (sealedProtector) commitChange(context.Context, *tpm.TPM, []byte, nfcPIN, nfcPIN, *options) error {
	return nil
}

func (p nvProtector) retire(ctx context.Context, t *tpm.TPM) error {
	return t.UndefineSecret(ctx, p.nv)
}
func (sealedProtector) retire(context.Context, *tpm.TPM) error { return nil }

func (p nvProtector) index() tpm.NVSecret   { return cloneNV(p.nv) }
func (sealedProtector) index() tpm.NVSecret { return tpm.NVSecret{} }

func (nvProtector) rollback() Rollback { return Rollback{On: true} }

func (p sealedProtector) rollback() Rollback {
	if p.why == "" {
		return Rollback{Reason: "made before rollback protection (format version 1)"}
	}
	return Rollback{Reason: p.why}
}

func (p nvProtector) encode() protectorFields     { return protectorFields{nv: p.nv} }
func (p sealedProtector) encode() protectorFields { return protectorFields{blob: p.blob, why: p.why} }

func (p nvProtector) clone() pinProtector { return nvProtector{nv: cloneNV(p.nv)} }
func (p sealedProtector) clone() pinProtector {
	return sealedProtector{blob: cloneBlob(p.blob), why: p.why}
}

// protectSecret draws a fresh salt and puts s under pin (definePINProtector).
// It sets the salt and the protector.
func (c *Container) protectSecret(ctx context.Context, t *tpm.TPM, s []byte, pin nfcPIN, o *options) error {
	salt, err := newSalt(o)
	if err != nil {
		return err
	}
	auth := o.pinAuth(salt, pin)
	defer clear(auth)
	c.salt, c.pin = salt, nil
	p, err := definePINProtector(ctx, t, s, auth, o)
	if err != nil {
		return err
	}
	c.pin = p
	return nil
}

// newSalt draws a container salt.
func newSalt(o *options) ([]byte, error) {
	salt := make([]byte, saltLen)
	if _, err := io.ReadFull(o.rand, salt); err != nil {
		return nil, fmt.Errorf("read random: %w", err)
	}
	return salt, nil
}

// protectorFields is what c records of its PIN protector; zero for a
// Container that has none (the zero Container, which the format refuses).
func (c *Container) protectorFields() protectorFields {
	if c.pin == nil {
		return protectorFields{}
	}
	return c.pin.encode()
}

// pinIndex is c's NV index, zero when S is sealed or c has no protector.
func (c *Container) pinIndex() tpm.NVSecret {
	if c.pin == nil {
		return tpm.NVSecret{}
	}
	return c.pin.index()
}

func cloneNV(s tpm.NVSecret) tpm.NVSecret {
	return tpm.NVSecret{Handle: s.Handle, Name: bytes.Clone(s.Name)}
}
