package tpm

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"testing"

	"github.com/google/go-tpm/tpm2"
)

// Parameter encryption with the HMAC the session sets up once per command
// equals AES-128-CFB keyed by go-tpm's KDFa (Part 1 §21.3), in both
// directions, with authValues that have inner and trailing zero bytes, and
// after the same session has computed command and response HMACs.
func TestSessionCFBMatchesKDFa(t *testing.T) {
	s := newSession()
	s.handle = 0x02000000
	s.key = bytes.Repeat([]byte{0x11}, 32)
	s.nonceCaller = bytes.Repeat([]byte{0x33}, 32)
	s.nonceTPM = bytes.Repeat([]byte{0x22}, 32)
	for _, auth := range [][]byte{nil, {0x61, 0x00, 0x62}, {0x61, 0x00, 0x00}, bytes.Repeat([]byte{0xfe}, 64)} {
		for _, encrypt := range []bool{true, false} {
			enc := encryptResponse
			if encrypt {
				enc = encryptCommand
			}
			s.use(auth, enc)
			if _, err := s.commandHMAC(tpm2.TPMCCUnseal, nil, []byte("p")); err != nil {
				t.Fatal(err)
			}
			newer, older := s.nonceCaller, s.nonceTPM
			if !encrypt {
				newer, older = older, newer
			}
			plain := []byte("a parameter of some length, more than one block")
			got := bytes.Clone(plain)
			if err := s.cfb(got, newer, older, encrypt); err != nil {
				t.Fatal(err)
			}
			keyIV := tpm2.KDFa(crypto.SHA256, append(bytes.Clone(s.key), trimAuth(auth)...), "CFB", newer, older, 256)
			block, err := aes.NewCipher(keyIV[:16])
			if err != nil {
				t.Fatal(err)
			}
			want := bytes.Clone(plain)
			if encrypt {
				//lint:ignore SA1019 TPM 2.0 parameter encryption is CFB
				cipher.NewCFBEncrypter(block, keyIV[16:]).XORKeyStream(want, want)
			} else {
				//lint:ignore SA1019 TPM 2.0 parameter encryption is CFB
				cipher.NewCFBDecrypter(block, keyIV[16:]).XORKeyStream(want, want)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("auth %x, encrypt %v: got %x, want %x", auth, encrypt, got, want)
			}
			s.done()
		}
	}
}
