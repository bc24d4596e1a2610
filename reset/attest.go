package reset

import (
	"context"
	"crypto"
	"errors"
	"fmt"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/attest"
)

// AttestingDirectory is a Directory that takes TPM key attestations, as
// Entra records the Attestation flag of a Hello key: a destructive reset
// whose TPM was verified (container.WithTrustedTPMs in Env.Options)
// registers its new login key attested through it.
type AttestingDirectory interface {
	Directory
	// AttestationChallenge checks the TPM's EK certificate against the
	// tenant's roots and returns the credential and nonce to answer.
	AttestationChallenge(ctx context.Context, token, keyID string, id tpm.AttestationIdentity) (*attest.Challenge, error)
	// RegisterAttestedKey registers pub with the answer.
	RegisterAttestedKey(ctx context.Context, token, keyID string, pub crypto.PublicKey, c *tpm.KeyCertification) error
}

// registerKey registers the new container's login key with the directory:
// attested when the directory takes attestations and the TPM has been
// verified on this connection, else plainly (and a directory that
// requires attestation then refuses it).
func registerKey(ctx context.Context, env Env, n *container.Container, req Request) error {
	ad, ok := env.Directory.(AttestingDirectory)
	if !ok {
		return env.Directory.RegisterKey(ctx, req.Token, n.KeyID(), n.PublicKey())
	}
	id, err := env.TPM.AttestationIdentity(ctx)
	if errors.Is(err, tpm.ErrNotVerified) {
		return env.Directory.RegisterKey(ctx, req.Token, n.KeyID(), n.PublicKey())
	}
	if err != nil {
		return err
	}
	ch, err := ad.AttestationChallenge(ctx, req.Token, n.KeyID(), *id)
	if err != nil {
		return err
	}
	// Certifying the key needs its authValue, which the new PIN opens.
	s, err := container.Unlock(ctx, env.TPM, n, req.NewPIN, options(env)...)
	if err != nil {
		return fmt.Errorf("unlock the new container: %w", err)
	}
	defer s.Close()
	c, err := s.CertifyKey(ctx, container.LoginKeyName, ch.CredentialBlob, ch.EncryptedSecret, ch.Nonce)
	if err != nil {
		return err
	}
	return ad.RegisterAttestedKey(ctx, req.Token, n.KeyID(), n.PublicKey(), c)
}

// Register registers the login key of a freshly provisioned container with
// env.Directory, the registration step of Hello provisioning: attested,
// as a destructive reset does, when the directory takes attestations and
// the TPM was verified on the connection (pass container.WithTrustedTPMs
// to Provision or in env.Options); pin unlocks c to authorize the
// certification. Errors wrap ErrRegistration.
func Register(ctx context.Context, env Env, c *container.Container, token, pin string) error {
	if err := checkEnv(env, c); err != nil {
		return err
	}
	if env.Directory == nil {
		return fmt.Errorf("%w: no directory", ErrInvalidEnv)
	}
	if err := registerKey(ctx, env, c, Request{Token: token, NewPIN: pin}); err != nil {
		return fmt.Errorf("%w %s: %w", ErrRegistration, c.KeyID(), err)
	}
	return nil
}
