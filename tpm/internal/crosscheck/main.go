// Command crosscheck writes blobs made by package tpm as files that other TPM
// software reads, to show they are ordinary TPM objects: a sealed-data object
// (seal.pub, seal.priv) and an RSA signing key (key.pub, key.priv), both
// TPM2B_PUBLIC / TPM2B_PRIVATE as tpm2-tools' tpm2_create writes them, plus
// the storage root key's Name (srk.name, hex).
//
// It is a test tool: it opens the TPM named by -tpm (default $HELLOSIM_TPM)
// and uses the secret and authValues given on the command line.
package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hellosim/hellosim/tpm"
)

func main() {
	spec := flag.String("tpm", os.Getenv("HELLOSIM_TPM"), "TPM spec (tpm.Open)")
	out := flag.String("out", ".", "output directory")
	secretHex := flag.String("secret", "", "secret to seal, hex")
	authHex := flag.String("auth", "", "authValue of the sealed object and the key, hex")
	flag.Parse()
	if err := run(*spec, *out, *secretHex, *authHex); err != nil {
		fmt.Fprintln(os.Stderr, "crosscheck:", err)
		os.Exit(1)
	}
}

func run(spec, out, secretHex, authHex string) error {
	secret, err := hex.DecodeString(secretHex)
	if err != nil {
		return fmt.Errorf("-secret: %w", err)
	}
	auth, err := hex.DecodeString(authHex)
	if err != nil {
		return fmt.Errorf("-auth: %w", err)
	}
	t, err := tpm.Open(spec)
	if err != nil {
		return err
	}
	defer t.Close()
	ctx := context.Background()
	sealed, err := t.Seal(ctx, secret, auth)
	if err != nil {
		return err
	}
	key, _, err := t.CreateKey(ctx, tpm.RSA2048, auth)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"seal.pub":  sealed.Public,
		"seal.priv": sealed.Private,
		"key.pub":   key.Public,
		"key.priv":  key.Private,
		"srk.name":  []byte(hex.EncodeToString(t.SRKName()) + "\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(out, name), data, 0o600); err != nil {
			return err
		}
	}
	return t.Close()
}
