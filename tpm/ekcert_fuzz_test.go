package tpm

import (
	"crypto/x509"
	"testing"
	"time"
)

// FuzzEKCertificate feeds hostile bytes to the EK certificate parser, the
// TCG subject alternative name parser and the chain splitter: none may
// panic.
func FuzzEKCertificate(f *testing.F) {
	f.Add([]byte{0x30, 0x03, 0xa4, 0x01, 0x00})
	f.Add([]byte{0x30, 0x82, 0x01, 0x00})
	f.Add([]byte{0x30, 0x0c, 0xa4, 0x0a, 0x30, 0x08, 0x31, 0x06, 0x30, 0x04, 0x06, 0x00, 0x0c, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = parseEKCertificate(b)
		_, _ = parseTCGSAN(b)
		for rest := b; len(rest) > 0; {
			_, r, ok := splitCert(rest)
			if !ok {
				break
			}
			rest = r
		}
		_, _, _ = VerifyEKCertificate(b, [][]byte{b}, x509.NewCertPool(), time.Now())
	})
}
