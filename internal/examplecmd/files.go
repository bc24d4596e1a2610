package examplecmd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
)

// LoopbackOnly refuses a listen address (-addr) other than a loopback one;
// who names the server in the error ("the directory").
func LoopbackOnly(addr, who string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("bad -addr: %w", err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %s: %s listens on loopback addresses only", addr, who)
	}
	return nil
}

// TLSConfig is the configuration for -cert and -key (TLS 1.2 at least),
// nil when they are not given.
func (f *ServerFlags) TLSConfig() (*tls.Config, error) {
	if f.CertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("-cert, -key: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}

// ReadCA reads the PEM certificates of file (-ca) into a pool.
func ReadCA(file string) (*x509.CertPool, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw) {
		return nil, fmt.Errorf("-ca %s: no PEM certificate", file)
	}
	return pool, nil
}

// ReadAppKey reads the PIN reset service's app credential for the
// directory's lookup API (-app-key): a PEM P-256 private key, SEC 1 or
// PKCS #8.
func ReadAppKey(file string) (*ecdsa.PrivateKey, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("-app-key: %w", err)
	}
	b, _ := pem.Decode(raw)
	if b == nil {
		return nil, fmt.Errorf("-app-key %s: no PEM block", file)
	}
	var k any
	switch b.Type {
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("-app-key %s: a %q PEM block, not a private key", file, b.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("-app-key %s: %w", file, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, fmt.Errorf("-app-key %s: not a P-256 key", file)
	}
	return ek, nil
}
