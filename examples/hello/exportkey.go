package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
)

func cmdExportKey() *command {
	var csr bool
	var out string
	return &command{
		name: "export-key", args: "[-csr] [-o FILE]",
		summary: "Write the login public key as PEM, or with -csr a certificate request signed by the TPM key (asks for the PIN).",
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&csr, "csr", false, "write a PKCS #10 certificate request for the user, signed with the login key")
			fs.StringVar(&out, "o", "", "write to this file instead of standard output")
		},
		run: func(ctx context.Context, a *app, _ *flag.FlagSet) error {
			st, _, c, err := a.loadContainer()
			if err != nil {
				return err
			}
			var block *pem.Block
			if !csr {
				der, err := x509.MarshalPKIXPublicKey(c.PublicKey())
				if err != nil {
					return err
				}
				block = &pem.Block{Type: "PUBLIC KEY", Bytes: der}
			} else {
				s, done, err := a.openSession(ctx, st, c)
				if err != nil {
					return err
				}
				defer done()
				der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
					Subject: pkix.Name{CommonName: c.Config().User},
				}, s.Signer())
				if err != nil {
					return fmt.Errorf("certificate request: %w", err)
				}
				block = &pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}
			}
			data := pem.EncodeToMemory(block)
			if out == "" {
				_, err := a.stdout.Write(data)
				return err
			}
			if err := writeFile(out, data); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "Wrote %s.\n", out)
			return nil
		},
	}
}
