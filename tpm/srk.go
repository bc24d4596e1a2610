package tpm

import (
	"bytes"
	"context"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// createSRK creates the storage root key: the TCG reference ECC P-256 SRK
// template (TCG TPM v2.0 Provisioning Guidance §7.5.1) as a primary key of
// the owner hierarchy. The template and the owner hierarchy's seed make it
// the same key every time on the same TPM, so blobs created under it load
// again after a restart. It is created once per connection and kept loaded;
// its Name is what callers pin. t.mu must be held.
func (t *TPM) createSRK(ctx context.Context) error {
	var rsp *tpm2.CreatePrimaryResponse
	err := t.run(ctx, func() (err error) {
		rsp, err = tpm2.CreatePrimary{
			PrimaryHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
			InPublic:      tpm2.New2B(tpm2.ECCSRKTemplate),
		}.Execute(t.tr)
		return err
	})
	if err != nil {
		return fmt.Errorf("create storage root key: %w", err)
	}
	t.srk = rsp.ObjectHandle
	pubBytes := rsp.OutPublic.Bytes()
	name := objectName(pubBytes)
	if !bytes.Equal(name.Buffer, rsp.Name.Buffer) {
		return fmt.Errorf("create storage root key: the TPM's Name does not match its public area")
	}
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		return fmt.Errorf("create storage root key: %w", err)
	}
	if pub.ObjectAttributes != tpm2.ECCSRKTemplate.ObjectAttributes {
		// VerifyEndorsement proves an object with this Name lives in the
		// TPM; only these attributes (fixedTPM, a restricted decryption
		// key made in the TPM) make that object a key no one else holds.
		return fmt.Errorf("create storage root key: the TPM returned a key with other attributes")
	}
	kem, err := tpm2.ImportEncapsulationKey(pub)
	if err != nil {
		return fmt.Errorf("create storage root key: %w", err)
	}
	t.srkName = name
	t.srkKEM = kem
	return nil
}
