// Command tls-client-auth uses a Windows Hello for Business login key as a
// TLS client certificate: the key never leaves the TPM, and a crypto/tls
// server that requires and verifies client certificates accepts it.
//
//	go run ./examples/tls-client-auth            # RSA-2048 login key (as Windows)
//	go run ./examples/tls-client-auth -alg ecc   # ECC P-256 login key
//
// On the embedded simulator it provisions a container, unlocks it with the
// PIN, and has a local test CA issue a client certificate from a certificate
// request that the TPM signs (as certificate trust deployments enrol one for
// the login key). The certificate is added to the container. Then a TLS 1.3
// server on 127.0.0.1 that requires client certificates from that CA is
// called twice: with the Hello key (accepted; the server prints the verified
// subject) and without it (refused). Nothing is written to disk.
package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/internal/examplecmd"
	"github.com/hellosim/hellosim/tpm"
)

func main() {
	alg := flag.String("alg", "rsa", "login key algorithm: rsa (RSA-2048) or ecc (ECC P-256)")
	verbose := flag.Bool("v", false, "print TPM command counts")
	examplecmd.ParseFlagsOnly("tls-client-auth", "tls-client-auth: signs a TLS 1.3 client handshake with a Windows Hello for Business login key in the TPM.",
		"tls-client-auth [-alg rsa|ecc] [-v]")
	var ka tpm.KeyAlgorithm
	switch *alg {
	case "rsa":
		ka = tpm.RSA2048
	case "ecc":
		ka = tpm.ECCP256
	default:
		fmt.Fprintf(os.Stderr, "tls-client-auth: -alg %q: want rsa or ecc\n", *alg)
		os.Exit(2)
	}
	if err := run(context.Background(), os.Stdout, ka, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "tls-client-auth:", err)
		os.Exit(1)
	}
}

const (
	user = "alice@contoso.test"
	pin  = "135792"
)

func run(ctx context.Context, w io.Writer, alg tpm.KeyAlgorithm, verbose bool) error {
	t, err := tpm.OpenSimulator()
	if err != nil {
		return err
	}
	defer t.Close()

	// The Hello container and its login key.
	cfg := container.Config{
		User: user, UserID: "6b1f5e2a-3c4d-4e5f-8a9b-0c1d2e3f4a5b", TenantID: "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
		Algorithm: alg,
	}
	c, err := container.Provision(ctx, t, cfg, pin)
	if err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	sess, err := container.Unlock(ctx, t, c, pin)
	if err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	defer sess.Close()
	signer := sess.Signer()
	fmt.Fprintf(w, "Hello container for %s: %s login key in the TPM, NgcKeyId %s\n", user, alg, c.KeyID())

	// A local test CA issues the client certificate from a request the TPM signs.
	ca, err := newCA()
	if err != nil {
		return err
	}
	t.ResetStats()
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: user, Organization: []string{"Contoso"}},
	}, signer)
	if err != nil {
		return fmt.Errorf("certificate request: %w", err)
	}
	if verbose {
		fmt.Fprintf(w, "  [certificate request signed in the TPM; TPM commands: %d]\n", t.Stats().Total())
	}
	clientCert, err := ca.issueClient(csrDER, c.KeyID())
	if err != nil {
		return err
	}
	c, err = sess.AddCertificate(container.LoginKeyName, clientCert)
	if err != nil {
		return fmt.Errorf("add certificate: %w", err)
	}
	fmt.Fprintf(w, "Test CA issued %q for the login key; the container now holds %d certificate\n",
		clientCert.Subject.String(), len(c.Certificates()))

	// A TLS server on loopback that requires client certificates from the CA.
	srv, err := ca.server()
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintf(w, "TLS server on %s requires a client certificate from the test CA\n\n", srv.Listener.Addr())

	hello := tls.Certificate{Certificate: [][]byte{clientCert.Raw}, PrivateKey: signer, Leaf: clientCert}
	t.ResetStats()
	body, err := get(ctx, srv.URL, ca.pool, &hello)
	if err != nil {
		return fmt.Errorf("with the Hello key: %w", err)
	}
	fmt.Fprintf(w, "With the Hello key:    %s\n", body)
	if verbose {
		fmt.Fprintf(w, "  [handshake signature made in the TPM; TPM commands: %d]\n", t.Stats().Total())
	}

	if _, err := get(ctx, srv.URL, ca.pool, nil); err == nil {
		return errors.New("the server accepted a client without a certificate")
	} else {
		fmt.Fprintf(w, "Without a certificate: refused (%s)\n", shortTLSError(err))
	}
	return nil
}

// get makes one HTTPS request with a fresh TLS 1.3 connection.
func get(ctx context.Context, u string, roots *x509.CertPool, cert *tls.Certificate) (string, error) {
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}, Timeout: 10 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s: %s", resp.Status, b)
	}
	return strings.TrimSpace(string(b)), nil
}

// shortTLSError is the TLS alert behind a failed request.
func shortTLSError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	return err.Error()
}

// ca is a throwaway certificate authority held in memory.
type ca struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	pool *x509.CertPool
}

func newCA() (*ca, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "hellosim test CA"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &ca{key: key, cert: cert, pool: pool}, nil
}

// issueClient checks the request's signature (proof that the requester holds
// the key) and issues a client authentication certificate for its key.
func (a *ca) issueClient(csrDER []byte, keyID string) (*x509.Certificate, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("parse certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request signature: %w", err)
	}
	ngc, err := url.Parse("urn:ngckeyid:" + strings.Trim(keyID, "{}"))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      csr.Subject,
		URIs:         []*url.URL{ngc},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, csr.PublicKey, a.key)
	if err != nil {
		return nil, fmt.Errorf("issue certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// server starts an HTTPS server on 127.0.0.1 whose certificate the CA issued
// and which requires and verifies client certificates from the CA.
func (a *ca) server() (*httptest.Server, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		return nil, err
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Reached only after crypto/tls verified the chain to the CA and the
		// client's CertificateVerify signature, made by the TPM.
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			http.Error(w, "no verified client certificate", http.StatusUnauthorized)
			return
		}
		leaf := r.TLS.VerifiedChains[0][0]
		fmt.Fprintf(w, "server verified client %q (%s, %s key, %s)\n",
			leaf.Subject.String(), tls.VersionName(r.TLS.Version), keyKind(leaf.PublicKey), leaf.URIs[0])
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    a.pool,
		MinVersion:   tls.VersionTLS13,
	}
	srv.StartTLS()
	return srv, nil
}

func keyKind(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case interface{ Size() int }:
		return fmt.Sprintf("RSA-%d", k.Size()*8)
	}
	return fmt.Sprintf("%T", pub)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}
