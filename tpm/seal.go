package tpm

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/hellosim/hellosim/internal/wipe"
)

// sealTemplate is the public area of a sealed-data object (TPM 2.0 Part 1
// §27.7.1, Part 3 §12.1): TPM_ALG_KEYEDHASH with a NULL scheme, bound to
// this TPM and this parent, usable with its authValue in an HMAC session —
// and, unlike signing keys, NOT noDA, so every wrong authValue counts toward
// dictionary-attack lockout (Part 1 §19.8). It is marshalled once.
var sealTemplate = tpm2.Marshal(tpm2.TPMTPublic{
	Type:    tpm2.TPMAlgKeyedHash,
	NameAlg: tpm2.TPMAlgSHA256,
	ObjectAttributes: tpm2.TPMAObject{
		FixedTPM:     true,
		FixedParent:  true,
		UserWithAuth: true,
	},
	Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgKeyedHash, &tpm2.TPMSKeyedHashParms{
		Scheme: tpm2.TPMTKeyedHashScheme{Scheme: tpm2.TPMAlgNull},
	}),
	Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgKeyedHash, &tpm2.TPM2BDigest{}),
})

// Seal creates a DA-protected sealed-data object under the SRK holding
// secret (1 to MaxSecretSize bytes), authorized by auth (at most MaxAuthSize
// bytes; any bytes, zeros included, though trailing zeros do not count, as
// the TPM ignores them). It is one TPM2_Create command; the secret and auth
// travel encrypted under the salted session.
func (t *TPM) Seal(ctx context.Context, secret, auth []byte) (Blob, error) {
	if len(secret) == 0 || len(secret) > MaxSecretSize {
		return Blob{}, fmt.Errorf("tpm: seal: secret must be 1 to %d bytes, not %d", MaxSecretSize, len(secret))
	}
	if err := t.lockWithAuth("seal", auth); err != nil {
		return Blob{}, err
	}
	defer t.mu.Unlock()
	pub, priv, err := t.create(ctx, sealTemplate, secret, auth)
	if err != nil {
		return Blob{}, fmt.Errorf("tpm: seal: %w", err)
	}
	return Blob{Public: pub, Private: priv}, nil
}

// create is TPM2_Create under the SRK (Part 3 §12.1) with the sensitive
// part (auth, data) encrypted in the command (decrypt session). t.mu must be
// held.
func (t *TPM) create(ctx context.Context, template, data, auth []byte) (public, private []byte, err error) {
	params := createParams(template, data, trimAuth(auth))
	defer wipe.Bytes(params)
	var rsp *response
	err = t.withSession(ctx, nil, encryptCommand, func() (err error) {
		rsp, err = t.send(&command{
			cc:      tpm2.TPMCCCreate,
			handles: []tpm2.TPMHandle{t.srk},
			names:   []tpm2.TPM2BName{t.srkName},
			auth:    sessionAuth,
			params:  params,
		})
		return err
	}, func(err error) bool {
		// The TPM builds the new object in a free object slot.
		return errors.Is(err, tpm2.TPMRCObjectMemory) && t.evictLRU(nil)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("create: %w", err)
	}
	public, private, err = parseCreate(rsp.params)
	if err != nil {
		return nil, nil, fmt.Errorf("create: %w", err)
	}
	return public, private, nil
}

// Unseal loads b, unseals it with auth and flushes it: three commands
// (TPM2_Load, TPM2_Unseal, TPM2_FlushContext), the object flushed on every
// path. The secret comes back encrypted under the salted session. A wrong
// auth gives an *AuthError (errors.Is ErrAuthFailed) with the tries left; a
// TPM in lockout a *LockoutError.
func (t *TPM) Unseal(ctx context.Context, b Blob, auth []byte) ([]byte, error) {
	o, err := parseBlob(b)
	if err != nil {
		return nil, fmt.Errorf("tpm: unseal: %w", err)
	}
	if err := o.checkSealed(); err != nil {
		return nil, fmt.Errorf("tpm: unseal: %w", err)
	}
	if err := t.lockWithAuth("unseal", auth); err != nil {
		return nil, err
	}
	defer t.mu.Unlock()
	h, err := t.load(ctx, o, nil)
	if err != nil {
		return nil, fmt.Errorf("tpm: unseal: %w", err)
	}
	var rsp *response
	err = t.withSession(ctx, auth, encryptResponse, func() (err error) {
		rsp, err = t.send(&command{
			cc:      tpm2.TPMCCUnseal,
			handles: []tpm2.TPMHandle{h},
			names:   []tpm2.TPM2BName{o.name},
			auth:    sessionAuth,
		})
		return err
	}, nil)
	ferr := t.flush(h)
	if err != nil {
		if aerr := t.authErr(ctx, err); aerr != nil {
			err = aerr
		}
		return nil, fmt.Errorf("tpm: unseal: %w", err)
	}
	defer wipe.Bytes(rsp.params)
	data, err := first2B(rsp.params)
	if err != nil {
		return nil, fmt.Errorf("tpm: unseal: %w", err)
	}
	if ferr != nil {
		return nil, fmt.Errorf("tpm: unseal: flush: %w", ferr)
	}
	out := bytes.Clone(data)
	return out, nil
}
