// Package device is a device's identity on a TPM 2.0: the key and device
// ID an Azure AD join makes, which belong to the device, not to a user.
//
// A Device has no PIN and no authValue: the key cannot leave the TPM, so
// possession of the TPM is what it proves. That is what lets it sign a PIN
// reset's proof of possession when the user has forgotten the PIN; a PIN
// reset protector enrolled on the device names it
// (container.Session.EnablePINRecoveryOnDevice, protector.Binding.DeviceID).
package device

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/cryptobyte"

	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/tpm"
)

// Device is the device identity a join makes: a TPM-bound P-256 signing key
// (fixedTPM, fixedParent, sensitiveDataOrigin, noDA) and the device ID the
// directory knows it by. It is the device's, not a user's: it has no PIN
// and no authValue (an empty one; the key cannot leave the TPM, so
// possession of the TPM is what it proves), which is what lets it sign a
// PIN reset's proof of possession when the user has forgotten the PIN. As
// an Azure AD join's device key, it is registered with the directory as the
// device object; sign-ins on the device are bound to it, and a PIN reset
// protector enrolled on the device names it (protector.Binding.DeviceID).
type Device struct {
	id   string
	blob tpm.Blob
	pub  crypto.PublicKey
}

// Device file format, version 1: magic "HSDV", version 0x01, device ID
// (uint8 length), TPM2B_PUBLIC and TPM2B_PRIVATE (uint16 length each).
const (
	deviceMagic   = "HSDV"
	deviceVersion = 1
)

// ErrBadIdentity matches errors of Parse and of a Device that is not usable.
var ErrBadIdentity = errors.New("device: bad device identity")

// Join makes a device identity on t: a new device ID (a random GUID,
// lower case, or from rand when it is not nil) and a device key.
func Join(ctx context.Context, t *tpm.TPM, r io.Reader) (*Device, error) {
	if r == nil {
		r = rand.Reader
	}
	g, err := identity.NewGUID(r)
	if err != nil {
		return nil, fmt.Errorf("device: join: %w", err)
	}
	blob, pub, err := t.CreateKey(ctx, tpm.ECCP256, nil)
	if err != nil {
		return nil, fmt.Errorf("device: join: %w", err)
	}
	return &Device{id: g.String(), blob: blob, pub: pub}, nil
}

// ID is the device ID: the directory's device object ID.
func (d *Device) ID() string { return d.id }

// PublicKey is the device key's *ecdsa.PublicKey, to register with the
// directory.
func (d *Device) PublicKey() crypto.PublicKey { return d.pub }

// Signer loads the device key into t and returns it as a crypto.Signer
// (ECDSA P-256, ASN.1 signatures). Close it when done.
func (d *Device) Signer(ctx context.Context, t *tpm.TPM) (*tpm.Key, error) {
	k, err := t.LoadKey(ctx, d.blob, nil)
	if err != nil {
		return nil, fmt.Errorf("device: key: %w", err)
	}
	return k, nil
}

// MarshalBinary encodes the device file. It holds no secret: the key's
// private part is sealed to the TPM.
func (d *Device) MarshalBinary() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddBytes([]byte(deviceMagic))
	b.AddUint8(deviceVersion)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(d.id)) })
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(d.blob.Public) })
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(d.blob.Private) })
	return b.Bytes()
}

// Parse decodes a device file strictly: magic, version, a GUID device
// ID, a P-256 signing key's public area and a private blob, and nothing
// after. Errors match ErrBadIdentity.
func Parse(data []byte) (*Device, error) {
	s := cryptobyte.String(data)
	var magic, id, pub, priv []byte
	var v uint8
	if !s.ReadBytes(&magic, len(deviceMagic)) || string(magic) != deviceMagic {
		return nil, fmt.Errorf("%w: not a device file", ErrBadIdentity)
	}
	if !s.ReadUint8(&v) || v != deviceVersion {
		return nil, fmt.Errorf("%w: unknown version", ErrBadIdentity)
	}
	if !s.ReadUint8LengthPrefixed((*cryptobyte.String)(&id)) || !isLowerGUID(string(id)) {
		return nil, fmt.Errorf("%w: device id", ErrBadIdentity)
	}
	if !s.ReadUint16LengthPrefixed((*cryptobyte.String)(&pub)) || !s.ReadUint16LengthPrefixed((*cryptobyte.String)(&priv)) || !s.Empty() {
		return nil, fmt.Errorf("%w: truncated or trailing bytes", ErrBadIdentity)
	}
	blob := tpm.Blob{Public: bytes.Clone(pub), Private: bytes.Clone(priv)}
	pk, err := tpm.PublicKey(blob)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadIdentity, err)
	}
	return &Device{id: string(id), blob: blob, pub: pk}, nil
}

// isLowerGUID reports whether s is a GUID in the lower-case form Join writes.
func isLowerGUID(s string) bool {
	g, err := identity.ParseGUID(s)
	return err == nil && g.String() == s
}
