package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"

	"github.com/hellosim/hellosim/internal/examplecmd"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/lookup"
)

// serviceAppKey reads the PIN reset service's app credential from file, or
// makes one there (mode 0600) when the file does not exist: an
// administrator adding a credential to the app registration and handing
// the private half to the service (pinreset-service -app-key FILE).
func serviceAppKey(file string) (*ecdsa.PrivateKey, error) {
	if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, fmt.Errorf("-app-key: %w", err)
		}
		return k, nil
	}
	return examplecmd.ReadAppKey(file)
}

// lookupHandler is the directory's lookup API for the PIN reset service
// (package reset/lookup), accepting the app tokens of key.
func lookupHandler(dir *idp.IdP, base string, key *ecdsa.PrivateKey) (http.Handler, error) {
	return lookup.NewHandler(lookup.HandlerConfig{Source: dir, Audience: base,
		Apps: []lookup.AppCredential{{ClientID: identity.PINResetServiceAppID, PublicKey: &key.PublicKey}}})
}
