package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
)

// A service told to trust a remote directory refuses to start, with a
// message naming what is wrong, when it cannot: no app credential, an
// issuer that is not https, a credential or CA file that is not one.
func TestIssuerModeRefusesBadConfiguration(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "app.pem")
	if err := os.WriteFile(good, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-issuer", "https://127.0.0.1:1/common/v2.0"}, "-issuer needs -app-key"},
		{[]string{"-issuer", "https://127.0.0.1:1/common/v2.0", "-app-key", notPEM}, "no PEM block"},
		{[]string{"-issuer", "https://127.0.0.1:1/common/v2.0", "-app-key", filepath.Join(dir, "missing.pem")}, "-app-key"},
		{[]string{"-issuer", "http://login.example/common/v2.0", "-app-key", good}, "plain http is allowed only to a loopback host"},
		{[]string{"-issuer", "https://127.0.0.1:1/common/v2.0", "-app-key", good, "-ca", notPEM}, "no PEM certificate"},
	}
	for _, c := range cases {
		var stderr bytes.Buffer
		code := realMain(append([]string{"-addr", "127.0.0.1:0"}, c.args...), &bytes.Buffer{}, &stderr)
		assert.Equal(t, 1, code, "%q", c.args)
		assert.Contains(t, stderr.String(), c.want, "%q", c.args)
	}
}
