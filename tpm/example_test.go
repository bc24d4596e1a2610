//go:build cgo

package tpm_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"log"

	"github.com/hellosim/hellosim/tpm"
)

// Seal a secret under an authValue, and unseal it; a wrong authValue
// counts toward the TPM's dictionary-attack lockout.
func Example_sealUnseal() {
	t, err := tpm.OpenSimulator()
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	ctx := context.Background()

	blob, err := t.Seal(ctx, []byte("container secret"), []byte("authValue from the PIN"))
	if err != nil {
		log.Fatal(err)
	}
	secret, err := t.Unseal(ctx, blob, []byte("authValue from the PIN"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", secret)

	_, err = t.Unseal(ctx, blob, []byte("a wrong guess"))
	var ae *tpm.AuthError
	if errors.As(err, &ae) {
		fmt.Println("wrong auth; tries left:", ae.Remaining)
	}
	// Output:
	// container secret
	// wrong auth; tries left: 31
}

// Create a signing key, load it, and use it as a crypto.Signer.
func ExampleKey_Sign() {
	t, err := tpm.OpenSimulator()
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	ctx := context.Background()

	blob, pub, err := t.CreateKey(ctx, tpm.ECCP256, []byte("key auth"))
	if err != nil {
		log.Fatal(err)
	}
	key, err := t.LoadKey(ctx, blob, []byte("key auth"))
	if err != nil {
		log.Fatal(err)
	}
	defer key.Close()

	digest := sha256.Sum256([]byte("sign me"))
	sig, err := key.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("verifies:", ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest[:], sig))
	// Output: verifies: true
}
