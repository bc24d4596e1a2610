// Package devcert makes a throwaway certificate authority and a server
// certificate it signs, in memory, for loopback servers of tests and
// demonstrations: the directory's pages served under the host names of the
// PIN reset documentation's links (login.windows.net, cred.microsoft.com),
// mapped to 127.0.0.1. A browser trusts it by the SPKI hash (Chromium's
// --ignore-certificate-errors-spki-list), a Go client by Pool; nothing is
// installed anywhere.
package devcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// Names are the host names the demonstration certificate covers by
// default: loopback, and the hosts the PIN reset documentation's consent
// links and redirect URI name.
var Names = []string{"127.0.0.1", "::1", "localhost", "login.windows.net", "login.microsoftonline.com", "cred.microsoft.com"}

// Cert is a server certificate and the authority that signed it.
type Cert struct {
	// TLS is the server's certificate chain and key.
	TLS tls.Certificate
	// CAPEM is the authority's certificate, PEM.
	CAPEM []byte
	// Pool holds the authority, for a client's RootCAs.
	Pool *x509.CertPool
	// SPKIHashes are base64 SHA-256 hashes of the server's and the
	// authority's SubjectPublicKeyInfo, the form Chromium's
	// --ignore-certificate-errors-spki-list takes.
	SPKIHashes []string
}

// New makes an authority and a server certificate for names (IP addresses
// or DNS names), valid for a day.
func New(names []string) (*Cert, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devcert: %w", err)
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hellosim throwaway CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("devcert: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("devcert: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devcert: %w", err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "hellosim directory"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			leaf.IPAddresses = append(leaf.IPAddresses, ip)
		} else {
			leaf.DNSNames = append(leaf.DNSNames, n)
		}
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("devcert: %w", err)
	}
	leafCert, err := x509.ParseCertificate(leafDER)
	if err != nil {
		return nil, fmt.Errorf("devcert: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	spki := func(c *x509.Certificate) string {
		h := sha256.Sum256(c.RawSubjectPublicKeyInfo)
		return base64.StdEncoding.EncodeToString(h[:])
	}
	return &Cert{
		TLS:        tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: key, Leaf: leafCert},
		CAPEM:      pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		Pool:       pool,
		SPKIHashes: []string{spki(leafCert), spki(caCert)},
	}, nil
}
