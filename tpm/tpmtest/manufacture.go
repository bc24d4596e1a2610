package tpmtest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"os"
	"testing"
	"time"

	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/internal/platform"
)

// ManufactureOptions make the broken manufacturers of negative tests.
type ManufactureOptions struct {
	// RSA certifies the RSA-2048 EK (NV 0x01C00002) instead of the ECC
	// P-256 one (0x01C0000A).
	RSA bool
	// Index, when set, is the EK certificate index to certify the EK of
	// (its template's EK), e.g. tpm.NVECCP384EKCert; it overrides RSA.
	Index uint32
	// Key, when set, is certified in place of the TPM's EK: a certificate
	// for another key.
	Key crypto.PublicKey
	// ExpiredIntermediate makes the intermediate CA certificate expired.
	ExpiredIntermediate bool
}

// ManufacturerChainIndex is the NV index where Manufacture stores the
// intermediate CA certificate (in the range of the EK Credential
// Profile's certificate chain, away from where swtpm setups put theirs).
const ManufacturerChainIndex uint32 = 0x01C00180

// Manufacture acts as a TPM manufacturer for tp: it makes a manufacturer
// root CA and an intermediate, certifies the TPM's ECC P-256 endorsement
// key with the intermediate, writes the EK certificate (NV 0x01C0000A) and
// the intermediate (ManufacturerChainIndex) into the TPM's NV, and returns
// a pool holding the root alone. The NV indices are removed again at
// cleanup and what they held before is written back, so a TPM shared by
// tests (swtpm) keeps its own certificates.
func Manufacture(t testing.TB, tp *tpm.TPM) *x509.CertPool {
	t.Helper()
	return ManufactureWith(t, tp, ManufactureOptions{})
}

// ManufactureWith is Manufacture with options.
func ManufactureWith(t testing.TB, tp *tpm.TPM, o ManufactureOptions) *x509.CertPool {
	t.Helper()
	ctx := context.Background()
	index := tpm.NVECCP256EKCert
	if o.RSA {
		index = tpm.NVRSA2048EKCert
	}
	if o.Index != 0 {
		index = o.Index
	}
	ekPub := o.Key
	if ekPub == nil {
		var err error
		ekPub, err = tp.EndorsementKeyAt(ctx, index)
		if err != nil {
			t.Fatalf("tpmtest: manufacture: %v", err)
		}
	}
	root, rootKey := NewCA(t, "hellosim test TPM manufacturer root", nil, nil, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	notAfter := time.Now().Add(24 * time.Hour)
	if o.ExpiredIntermediate {
		notAfter = time.Now().Add(-time.Minute)
	}
	inter, interKey := NewCA(t, "hellosim test TPM manufacturer EK CA", root, rootKey, time.Now().Add(-time.Hour), notAfter)
	ekCert := NewEKCertificate(t, ekPub, inter, interKey)

	for _, w := range []struct {
		index uint32
		der   []byte
	}{{index, ekCert.Raw}, {ManufacturerChainIndex, inter.Raw}} {
		prev, err := tp.ReadEndorsementNV(ctx, w.index)
		if err != nil {
			t.Fatalf("tpmtest: manufacture: %v", err)
		}
		if err := platform.WriteEndorsementNV(ctx, tp, w.index, w.der); err != nil {
			t.Fatalf("tpmtest: manufacture: %v", err)
		}
		t.Cleanup(func() {
			// Put back what the TPM held (swtpm's own certificate, say).
			ctx := context.Background()
			err := platform.DeleteEndorsementNV(ctx, tp, w.index)
			if err == nil && prev != nil {
				err = platform.WriteEndorsementNV(ctx, tp, w.index, prev)
			}
			if err != nil && !isClosed(err) {
				t.Errorf("tpmtest: manufacture cleanup: %v", err)
			}
		})
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return pool
}

// NewCA makes a CA certificate and its key, self-signed when parent is nil.
func NewCA(t testing.TB, name string, parent *x509.Certificate, parentKey crypto.Signer, notBefore, notAfter time.Time) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"hellosim tests"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// NewEKCertificate makes an EK certificate for pub as the TCG EK
// Credential Profile describes one (§3.2): empty subject, a critical
// subject alternative name with the TPM manufacturer, model and version,
// extended key usage tcg-kp-EKCertificate, not a CA.
func NewEKCertificate(t testing.TB, pub crypto.PublicKey, issuer *x509.Certificate, issuerKey crypto.Signer) *x509.Certificate {
	t.Helper()
	type atv struct {
		OID   asn1.ObjectIdentifier
		Value string `asn1:"utf8"`
	}
	rdns, err := asn1.Marshal([]atv{
		{asn1.ObjectIdentifier{2, 23, 133, 2, 1}, "id:48534D00"}, // "HSM\0", a test vendor
		{asn1.ObjectIdentifier{2, 23, 133, 2, 2}, "hellosim"},
		{asn1.ObjectIdentifier{2, 23, 133, 2, 3}, "id:00010000"},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Name ::= SEQUENCE OF SET OF AttributeTypeAndValue: the three in one
	// RDN each.
	var sets []asn1.RawValue
	rest := rdns[2:] // inside the outer SEQUENCE (short form: < 128 bytes)
	for len(rest) > 0 {
		var one asn1.RawValue
		r, err := asn1.Unmarshal(rest, &one)
		if err != nil {
			t.Fatal(err)
		}
		sets = append(sets, asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: one.FullBytes})
		rest = r
	}
	name, err := asn1.Marshal(sets)
	if err != nil {
		t.Fatal(err)
	}
	san, err := asn1.Marshal([]asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: name}})
	if err != nil {
		t.Fatal(err)
	}
	usage := x509.KeyUsageKeyAgreement
	if _, ok := pub.(*ecdsa.PublicKey); !ok {
		usage = x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              usage,
		UnknownExtKeyUsage:    []asn1.ObjectIdentifier{{2, 23, 133, 8, 1}},
		BasicConstraintsValid: true,
		ExtraExtensions:       []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Critical: true, Value: san}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, pub, issuerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func isClosed(err error) bool { return err == tpm.ErrClosed }

// RootsEnvVar names the environment variable holding a PEM file of the
// root certificates that the test TPM's EK certificate chains to (swtpm's
// local CA in CI): the genuine-TPM tests run against them.
const RootsEnvVar = "HELLOSIM_TPM_ROOTS"

// Roots returns the pool of $HELLOSIM_TPM_ROOTS, and skips the test with a
// message when it is unset.
func Roots(t testing.TB) *x509.CertPool {
	t.Helper()
	path := os.Getenv(RootsEnvVar)
	if path == "" {
		t.Skipf("tpmtest: %s is not set: no roots for the test TPM's EK certificate", RootsEnvVar)
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("tpmtest: %s: %v", RootsEnvVar, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("tpmtest: %s: no certificates in %s", RootsEnvVar, path)
	}
	return pool
}
