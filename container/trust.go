package container

import (
	"context"
	"crypto/x509"
	"fmt"

	"github.com/hellosim/hellosim/tpm"
)

// WithTrustedTPMs makes an operation first show that the TPM is genuine:
// its endorsement key certified by a chain to roots (the TPM vendors'
// EK root CAs), and the storage root key that salts every session proven
// to live with that EK (tpm.TPM.VerifyEndorsement). Provision, Unlock,
// ChangePIN, ResetPIN and Reprovision check it before the TPM is sent
// anything that depends on the PIN, the container secret or a new
// authValue; a TPM that fails is tpm.ErrUntrustedTPM (a
// *tpm.UntrustedError) and has cost no dictionary-attack try. The check
// runs once per TPM connection and roots; later operations reuse it.
//
// Why it matters: the SRK Name a container pins is part of the file, which
// is authenticated only after unlock. Someone who can write the file and
// answer for the TPM (an interposer, or malware as the user) could
// otherwise write the Name of a key they hold, learn the session salt, and
// test PIN guesses offline, with no dictionary-attack counter in the way.
func WithTrustedTPMs(roots *x509.CertPool) Option {
	return func(o *options) { o.trustedTPMs = roots }
}

// checkTPM verifies the TPM when WithTrustedTPMs was given.
func (o *options) checkTPM(ctx context.Context, t *tpm.TPM) error {
	if o.trustedTPMs == nil {
		return nil
	}
	if _, err := t.VerifyEndorsement(ctx, o.trustedTPMs); err != nil {
		return fmt.Errorf("check TPM: %w", err)
	}
	return nil
}

// CertifyKey answers a directory's key attestation challenge for the key
// called name (LoginKeyName for the login key): the TPM activates the
// credential for its attestation key with the certified EK and has that
// AK certify the key (tpm.TPM.Certify). The TPM must have been verified on
// this connection (WithTrustedTPMs on the operation that opened the
// session, or tpm.TPM.VerifyEndorsement), else tpm.ErrNotVerified.
func (s *Session) CertifyKey(ctx context.Context, name string, credentialBlob, encryptedSecret, nonce []byte) (*tpm.KeyCertification, error) {
	k, err := s.load(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("container: certify key: %w", err)
	}
	c, err := s.t.Certify(ctx, k, credentialBlob, encryptedSecret, nonce)
	if err != nil {
		return nil, fmt.Errorf("container: certify key: %w", err)
	}
	return c, nil
}
