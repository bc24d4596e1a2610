package tpm

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/google/go-tpm/tpm2"
)

// FuzzParseResponse feeds hostile responses (the TPM, or whoever sits on the
// bus, is on the other side) to the response parser and the parameter
// decoders: errors, never panics.
func FuzzParseResponse(f *testing.F) {
	ok := func(tag tpm2.TPMST, body []byte) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(tag))
		b = binary.BigEndian.AppendUint32(b, uint32(10+len(body)))
		b = binary.BigEndian.AppendUint32(b, 0)
		return append(b, body...)
	}
	f.Add(ok(tpm2.TPMSTNoSessions, nil), uint8(0))
	f.Add(ok(tpm2.TPMSTSessions, []byte{0x80, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0, 0}), uint8(1))
	f.Add(ok(tpm2.TPMSTSessions, append([]byte{0, 0, 0, 4, 0, 2, 1, 2, 0, 32}, append(bytes.Repeat([]byte{9}, 32), 1, 0, 32)...)), uint8(2))
	f.Add(ok(tpm2.TPMSTSessions, []byte{0, 0, 0, 6, 0, 0x18, 0, 0x0b, 0, 0, 0, 0, 1, 0, 0}), uint8(3))
	f.Fuzz(func(t *testing.T, rsp []byte, kind uint8) {
		tp := &TPM{sess: newSession()}
		s := tp.sess
		s.handle, s.key, s.nonceTPM = 0x02000000, bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
		s.nonceCaller = bytes.Repeat([]byte{3}, 32)
		s.use([]byte("auth"), paramEncryption(kind>>2)%3)
		c := &command{cc: tpm2.TPMCCUnseal, auth: authKind(kind % 3), rspHandles: int(kind>>4) % 2}
		r, err := tp.parseResponse(c, rsp)
		if err != nil {
			return
		}
		if len(r.handles) != c.rspHandles {
			t.Fatalf("%d handles, want %d", len(r.handles), c.rspHandles)
		}
		_, _, _ = parseCreate(r.params)
		_, _, _, _ = parseSignature(r.params)
		_, _ = first2B(r.params)
		_, _ = encodeSignature(r.params)
	})
}
