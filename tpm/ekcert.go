package tpm

import (
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Object identifiers of the TCG EK Credential Profile (§3.2) and RFC 5280.
var (
	oidSubjectAltName   = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidTCGManufacturer  = asn1.ObjectIdentifier{2, 23, 133, 2, 1}
	oidTCGModel         = asn1.ObjectIdentifier{2, 23, 133, 2, 2}
	oidTCGVersion       = asn1.ObjectIdentifier{2, 23, 133, 2, 3}
	oidTCGEKCertificate = asn1.ObjectIdentifier{2, 23, 133, 8, 1} // tcg-kp-EKCertificate
)

// TPMIdentity is what an EK certificate's subject alternative name says of
// the TPM (TCG EK Credential Profile §3.2.9: a directoryName with
// tcg-at-tpmManufacturer, tcg-at-tpmModel and tcg-at-tpmVersion).
type TPMIdentity struct {
	Manufacturer, Model, Version string
}

// parseEKCertificate parses an EK certificate as it is stored in NV and
// deals with what crypto/x509 leaves to the caller:
//
//   - the subject alternative name, which the profile makes critical
//     whenever the subject is empty and which holds only a directoryName
//     that crypto/x509 does not interpret (so it lists the extension as
//     unhandled). It is parsed here; when it holds exactly the TCG TPM
//     attributes the extension counts as handled and is removed from
//     UnhandledCriticalExtensions. Any other unhandled critical extension
//     stays, and Verify refuses the certificate, as it should.
//   - the extended key usage: when present it must include
//     tcg-kp-EKCertificate (§3.2.16), so a TLS or code-signing certificate
//     for the same key is not taken for an EK certificate.
//
// Some manufacturers pad the DER with trailing bytes up to the NV index
// size; the certificate is cut at the end of its outer SEQUENCE.
func parseEKCertificate(der []byte) (*x509.Certificate, TPMIdentity, error) {
	s := cryptobyte.String(der)
	var whole cryptobyte.String
	if !s.ReadASN1Element(&whole, cbasn1.SEQUENCE) {
		return nil, TPMIdentity{}, errors.New("not a DER certificate")
	}
	cert, err := x509.ParseCertificate(whole)
	if err != nil {
		return nil, TPMIdentity{}, err
	}
	var id TPMIdentity
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		got, ok := parseTCGSAN(ext.Value)
		if !ok {
			continue // not the TCG form: left to crypto/x509
		}
		id = got
		if ext.Critical {
			cert.UnhandledCriticalExtensions = slices.DeleteFunc(cert.UnhandledCriticalExtensions,
				func(o asn1.ObjectIdentifier) bool { return o.Equal(oidSubjectAltName) })
		}
	}
	if len(cert.ExtKeyUsage) > 0 || len(cert.UnknownExtKeyUsage) > 0 {
		if !slices.ContainsFunc(cert.UnknownExtKeyUsage, func(o asn1.ObjectIdentifier) bool { return o.Equal(oidTCGEKCertificate) }) {
			return nil, TPMIdentity{}, errors.New("extended key usage does not include tcg-kp-EKCertificate")
		}
	}
	if cert.IsCA {
		return nil, TPMIdentity{}, errors.New("a CA certificate is not an EK certificate")
	}
	return cert, id, nil
}

// parseTCGSAN reads a GeneralNames value that is exactly one directoryName
// made of TCG TPM attributes (manufacturer, model, version, each at most
// once and at least the manufacturer). Anything else is not ok.
func parseTCGSAN(v []byte) (TPMIdentity, bool) {
	var id TPMIdentity
	s := cryptobyte.String(v)
	var names, dirName, rdns cryptobyte.String
	if !s.ReadASN1(&names, cbasn1.SEQUENCE) || !s.Empty() {
		return id, false
	}
	// directoryName [4] EXPLICIT Name
	if !names.ReadASN1(&dirName, cbasn1.Tag(4).Constructed().ContextSpecific()) || !names.Empty() {
		return id, false
	}
	if !dirName.ReadASN1(&rdns, cbasn1.SEQUENCE) || !dirName.Empty() {
		return id, false
	}
	seen := map[string]bool{}
	for !rdns.Empty() {
		var set cryptobyte.String
		if !rdns.ReadASN1(&set, cbasn1.SET) {
			return id, false
		}
		for !set.Empty() {
			var atv cryptobyte.String
			var oid asn1.ObjectIdentifier
			if !set.ReadASN1(&atv, cbasn1.SEQUENCE) || !atv.ReadASN1ObjectIdentifier(&oid) {
				return id, false
			}
			var tag cbasn1.Tag
			var val cryptobyte.String
			if !atv.ReadAnyASN1(&val, &tag) || !atv.Empty() {
				return id, false
			}
			if tag != cbasn1.UTF8String && tag != cbasn1.PrintableString && tag != cbasn1.IA5String {
				return id, false
			}
			if len(val) == 0 || len(val) > 64 {
				return id, false
			}
			str := string(val)
			var field *string
			switch {
			case oid.Equal(oidTCGManufacturer):
				field = &id.Manufacturer
			case oid.Equal(oidTCGModel):
				field = &id.Model
			case oid.Equal(oidTCGVersion):
				field = &id.Version
			default:
				return id, false
			}
			if seen[oid.String()] {
				return id, false
			}
			seen[oid.String()] = true
			*field = str
		}
	}
	return id, id.Manufacturer != ""
}

// verifyEKChain verifies cert up to one of roots, with the intermediates
// the TPM holds. EK certificates carry no key usage crypto/x509 knows for
// leaf checks, so any extended key usage is accepted here (parseEKCertificate
// has checked tcg-kp-EKCertificate).
func verifyEKChain(cert *x509.Certificate, roots *x509.CertPool, intermediates []*x509.Certificate, now time.Time) ([]*x509.Certificate, error) {
	pool := x509.NewCertPool()
	for _, c := range intermediates {
		pool.AddCert(c)
	}
	chains, err := cert.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: pool,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, err
	}
	return chains[0], nil
}

// samePublicKey reports whether a and b are the same public key.
func samePublicKey(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}

// VerifyEKCertificate parses an EK certificate (DER, trailing padding
// allowed) and verifies it up to roots with the given DER intermediates, at
// time now, as VerifyEndorsement does: the TCG subject alternative name is
// handled and nothing else is switched off. Verifiers of attestations (a
// directory) use it on the certificate a client sends. Failures are
// *UntrustedError.
func VerifyEKCertificate(der []byte, intermediates [][]byte, roots *x509.CertPool, now time.Time) (*x509.Certificate, TPMIdentity, error) {
	cert, id, err := parseEKCertificate(der)
	if err != nil {
		return nil, TPMIdentity{}, &UntrustedError{Failure: BadEKCertificate, Err: err}
	}
	if roots == nil {
		return nil, TPMIdentity{}, &UntrustedError{Failure: EKChainInvalid, Err: errors.New("no trusted roots given")}
	}
	var inter []*x509.Certificate
	for _, b := range intermediates {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return nil, TPMIdentity{}, &UntrustedError{Failure: BadEKCertificate, Err: fmt.Errorf("intermediate: %w", err)}
		}
		inter = append(inter, c)
	}
	if _, err := verifyEKChain(cert, roots, inter, now); err != nil {
		return nil, TPMIdentity{}, &UntrustedError{Failure: EKChainInvalid, Err: err}
	}
	return cert, id, nil
}
