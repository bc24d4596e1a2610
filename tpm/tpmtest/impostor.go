package tpmtest

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"sync"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// SRKImpostor is an interposer between the library and a real TPM that
// answers for the storage root key with a key of its own: every
// TPM2_CreatePrimary in the owner hierarchy reaches the TPM, but the
// public area and Name in the response are replaced with those of a P-256
// key the impostor made in software (with the SRK template's attributes).
// A library that believes it salts its sessions to that key, and the
// impostor holds its private part: the attack of an interposer that can
// also edit the container file (it writes Name into it). Everything else
// passes through unchanged.
type SRKImpostor struct {
	next transport.TPM
	key  *ecdh.PrivateKey
	pub  []byte // TPMT_PUBLIC of the impostor key
	name []byte // its Name: nameAlg || SHA-256(pub)

	mu       sync.Mutex
	answered int
}

// NewSRKImpostor wraps next. Each edit, when given, changes the public
// area the impostor answers with (tests of what the library checks in it).
func NewSRKImpostor(next transport.TPM, edits ...func(*tpm2.TPMTPublic)) (*SRKImpostor, error) {
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	point := key.PublicKey().Bytes() // 0x04 || X || Y
	tmpl := tpm2.ECCSRKTemplate
	tmpl.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
		X: tpm2.TPM2BECCParameter{Buffer: point[1:33]},
		Y: tpm2.TPM2BECCParameter{Buffer: point[33:]},
	})
	for _, edit := range edits {
		edit(&tmpl)
	}
	pub := tpm2.Marshal(tmpl)
	sum := sha256.Sum256(pub)
	name := append([]byte{0x00, 0x0B}, sum[:]...)
	return &SRKImpostor{next: next, key: key, pub: pub, name: name}, nil
}

// Name is the Name of the impostor's key, what the attacker writes into
// the container file in place of the real SRK's.
func (s *SRKImpostor) Name() []byte { return append([]byte(nil), s.name...) }

// Answered is how many CreatePrimary responses the impostor replaced.
func (s *SRKImpostor) Answered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.answered
}

// Close closes the wrapped transport when it can be closed.
func (s *SRKImpostor) Close() error {
	if c, ok := s.next.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// Send implements transport.TPM.
func (s *SRKImpostor) Send(cmd []byte) ([]byte, error) {
	ownerPrimary := len(cmd) >= 14 &&
		tpm2.TPMCC(binary.BigEndian.Uint32(cmd[6:10])) == tpm2.TPMCCCreatePrimary &&
		tpm2.TPMHandle(binary.BigEndian.Uint32(cmd[10:14])) == tpm2.TPMRHOwner
	rsp, err := s.next.Send(cmd)
	if err != nil || !ownerPrimary {
		return rsp, err
	}
	if out, ok := s.rewrite(rsp); ok {
		s.mu.Lock()
		s.answered++
		s.mu.Unlock()
		return out, nil
	}
	return rsp, nil
}

// rewrite replaces outPublic and name in a CreatePrimary response (TPM 2.0
// Part 3 §24.1: handle, parameterSize, outPublic, creationData,
// creationHash, creationTicket, name; then the sessions).
func (s *SRKImpostor) rewrite(rsp []byte) ([]byte, bool) {
	if len(rsp) < 18 || binary.BigEndian.Uint32(rsp[6:10]) != 0 {
		return nil, false
	}
	paramSize := int(binary.BigEndian.Uint32(rsp[14:18]))
	if 18+paramSize > len(rsp) {
		return nil, false
	}
	p := rsp[18 : 18+paramSize]
	auth := rsp[18+paramSize:]
	read2B := func() ([]byte, bool) {
		if len(p) < 2 {
			return nil, false
		}
		n := int(binary.BigEndian.Uint16(p))
		if len(p) < 2+n {
			return nil, false
		}
		v := p[2 : 2+n]
		p = p[2+n:]
		return v, true
	}
	if _, ok := read2B(); !ok { // outPublic
		return nil, false
	}
	midStart := 18 + (paramSize - len(p))
	if _, ok := read2B(); !ok { // creationData
		return nil, false
	}
	if _, ok := read2B(); !ok { // creationHash
		return nil, false
	}
	if len(p) < 6 {
		return nil, false
	}
	p = p[6:]                   // creationTicket tag, hierarchy
	if _, ok := read2B(); !ok { // creationTicket digest
		return nil, false
	}
	midEnd := 18 + (paramSize - len(p))
	if _, ok := read2B(); !ok { // name
		return nil, false
	}
	var params []byte
	params = binary.BigEndian.AppendUint16(params, uint16(len(s.pub)))
	params = append(params, s.pub...)
	params = append(params, rsp[midStart:midEnd]...)
	params = binary.BigEndian.AppendUint16(params, uint16(len(s.name)))
	params = append(params, s.name...)

	out := append([]byte(nil), rsp[:14]...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(params)))
	out = append(out, params...)
	out = append(out, auth...)
	binary.BigEndian.PutUint32(out[2:6], uint32(len(out)))
	return out, true
}
