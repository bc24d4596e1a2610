package container

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/tpm"
)

// selfSigned makes a certificate for k's public key, signed by k.
func selfSigned(t testing.TB, k crypto.Signer) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "alice@contoso.com"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	require.NoError(t, cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature))
	return cert
}

func TestCSRFromSignerVerifies(t *testing.T) {
	forEachAlg(t, func(t *testing.T, tp *tpm.TPM, cfg Config, c *Container) {
		s := unlock(t, tp, c, testPIN)
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
			Subject: pkix.Name{CommonName: cfg.User},
		}, s.Signer())
		require.NoError(t, err)
		csr, err := x509.ParseCertificateRequest(der)
		require.NoError(t, err)
		require.NoError(t, csr.CheckSignature())
		assert.True(t, samePublicKey(csr.PublicKey, c.PublicKey()))
	})
}

// The login key authenticates a TLS 1.3 client (RSA-PSS or ECDSA in the TPM).
func TestSignerAsTLSClientCertificate(t *testing.T) {
	forEachAlg(t, func(t *testing.T, tp *tpm.TPM, cfg Config, c *Container) {
		s := unlock(t, tp, c, testPIN)
		clientCert := selfSigned(t, s.Signer())
		c, err := s.AddCertificate(LoginKeyName, clientCert)
		require.NoError(t, err)
		stored, ok := c.Certificate(LoginKeyName)
		require.True(t, ok)

		serverKey, err := tpmFreeKey()
		require.NoError(t, err)
		serverCert := selfSigned(t, serverKey)
		pool := x509.NewCertPool()
		pool.AddCert(stored)
		serverPool := x509.NewCertPool()
		serverPool.AddCert(serverCert)

		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		done := make(chan error, 1)
		var peer *x509.Certificate
		go func() {
			sc, err := ln.Accept()
			if err != nil {
				done <- err
				return
			}
			srv := tls.Server(sc, &tls.Config{
				MinVersion:   tls.VersionTLS13,
				Certificates: []tls.Certificate{{Certificate: [][]byte{serverCert.Raw}, PrivateKey: serverKey}},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    pool,
			})
			err = srv.Handshake()
			if err == nil {
				peer = srv.ConnectionState().PeerCertificates[0]
			}
			srv.Close()
			done <- err
		}()
		cc, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		cli := tls.Client(cc, &tls.Config{
			MinVersion:            tls.VersionTLS13,
			RootCAs:               serverPool,
			ServerName:            "alice@contoso.com",
			Certificates:          []tls.Certificate{{Certificate: [][]byte{stored.Raw}, PrivateKey: s.Signer()}},
			VerifyPeerCertificate: func([][]byte, [][]*x509.Certificate) error { return nil },
			InsecureSkipVerify:    true, // the server certificate has no DNS name; its chain is not the subject here
		})
		require.NoError(t, cli.Handshake())
		cli.Close()
		require.NoError(t, <-done)
		assert.Equal(t, stored.Raw, peer.Raw)
	})
}

// tpmFreeKey is a software key for the TLS server side of the test.
func tpmFreeKey() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }
