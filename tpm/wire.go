package tpm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/hellosim/hellosim/internal/wipe"
)

// The hot commands (TPM2_Create, TPM2_Load, TPM2_Unseal, TPM2_Sign,
// TPM2_FlushContext) are framed here by hand rather than through go-tpm's
// reflection-driven encoder, which costs several times more than the
// simulator's own work on them. The framing follows TPM 2.0 Part 1 §18
// (command and response structure) and Part 3 (each command's parameters);
// wire_test.go proves it byte-for-byte equal to go-tpm's for the same
// inputs. Everything else (and every session HMAC and parameter encryption)
// goes through the same session type.

// authKind says how a command's one authorized handle is authorized.
type authKind int

const (
	noAuth       authKind = iota // no authorization area
	passwordAuth                 // TPM_RS_PW with an empty password
	sessionAuth                  // the shared session, as set by session.use
)

// command is one hand-framed command.
type command struct {
	cc      tpm2.TPMCC
	handles []tpm2.TPMHandle
	names   []tpm2.TPM2BName // of the handles, for cpHash (sessionAuth)
	auth    authKind
	// sess is the session of sessionAuth; nil means the shared one.
	sess   *session
	params []byte // plaintext; the first parameter is encrypted when the session says so
	// newAuth, when set, is the authValue the command gives its entity
	// in place (TPM2_NV_ChangeAuth): the TPM computes the response HMAC
	// with the new value (TPM 2.0 Part 1, session HMAC; with the old one
	// the response does not verify, as TestNVSecretLifecycle found).
	newAuth []byte
	// rspHandles is the number of handles in the response.
	rspHandles int
}

// response is the parsed part of a response we use.
type response struct {
	handles []tpm2.TPMHandle
	params  []byte // decrypted when the session says so
}

// errMalformed is a response that does not parse.
var errMalformed = errors.New("malformed TPM response")

// passwordArea is an authorization area with one password session and an
// empty password (Part 1 §19.8.4): TPM_RS_PW, empty nonce, no attributes,
// empty HMAC.
var passwordArea = []byte{0, 0, 0, 9, 0x40, 0, 0, 9, 0, 0, 0, 0, 0}

// send frames c, sends it and parses the response. It sends exactly one
// command; retries belong to the caller (run). t.mu must be held.
func (t *TPM) send(c *command) (*response, error) {
	buf := make([]byte, 10, 64+len(c.params))
	for _, h := range c.handles {
		buf = binary.BigEndian.AppendUint32(buf, uint32(h))
	}
	tag := tpm2.TPMSTSessions
	switch c.auth {
	case noAuth:
		tag = tpm2.TPMSTNoSessions
		buf = append(buf, c.params...)
	case passwordAuth:
		buf = append(buf, passwordArea...)
		buf = append(buf, c.params...)
	case sessionAuth:
		s := t.sessionOf(c)
		if err := s.NewNonceCaller(); err != nil {
			return nil, err
		}
		p := bytes.Clone(c.params)
		if s.enc.encryptsCommand() {
			first, err := first2B(p)
			if err != nil {
				return nil, err
			}
			if err := s.Encrypt(first); err != nil {
				return nil, err
			}
		}
		mac, err := s.commandHMAC(c.cc, c.names, p)
		if err != nil {
			return nil, err
		}
		// TPMS_AUTH_COMMAND (Part 2 §10.13.2).
		areaLen := 4 + 2 + len(s.nonceCaller) + 1 + 2 + len(mac)
		buf = binary.BigEndian.AppendUint32(buf, uint32(areaLen))
		buf = binary.BigEndian.AppendUint32(buf, uint32(s.handle))
		buf = appendSized(buf, s.nonceCaller)
		buf = append(buf, attrByte(s.attrs()))
		buf = appendSized(buf, mac)
		buf = append(buf, p...)
	}
	binary.BigEndian.PutUint16(buf, uint16(tag))
	binary.BigEndian.PutUint32(buf[2:], uint32(len(buf)))
	binary.BigEndian.PutUint32(buf[6:], uint32(c.cc))

	if c.auth == sessionAuth && t.sessionOf(c).enc.encryptsCommand() {
		// The embedded simulator decrypts the parameter in place, in
		// this very buffer: what it leaves there is the secret in clear.
		defer wipe.Bytes(buf)
	}
	rsp, err := t.tr.Send(buf)
	if err != nil {
		return nil, err
	}
	return t.parseResponse(c, rsp)
}

func (t *TPM) parseResponse(c *command, rsp []byte) (*response, error) {
	if len(rsp) < 10 || int(binary.BigEndian.Uint32(rsp[2:])) != len(rsp) {
		return nil, errMalformed
	}
	if rc := tpm2.TPMRC(binary.BigEndian.Uint32(rsp[6:])); rc != tpm2.TPMRCSuccess {
		return nil, rc
	}
	tag := tpm2.TPMST(binary.BigEndian.Uint16(rsp))
	r := &response{}
	rest := rsp[10:]
	for range c.rspHandles {
		if len(rest) < 4 {
			return nil, errMalformed
		}
		r.handles = append(r.handles, tpm2.TPMHandle(binary.BigEndian.Uint32(rest)))
		rest = rest[4:]
	}
	if tag == tpm2.TPMSTNoSessions {
		if c.auth != noAuth {
			return nil, errMalformed
		}
		r.params = rest
		return r, nil
	}
	if tag != tpm2.TPMSTSessions || c.auth == noAuth || len(rest) < 4 {
		return nil, errMalformed
	}
	n := int(binary.BigEndian.Uint32(rest))
	rest = rest[4:]
	if n > len(rest) {
		return nil, errMalformed
	}
	r.params, rest = rest[:n], rest[n:]
	// TPMS_AUTH_RESPONSE (Part 2 §10.13.3).
	nonce, rest, ok := cut2B(rest)
	if !ok || len(rest) < 1 {
		return nil, errMalformed
	}
	attrs, rest := rest[0], rest[1:]
	mac, rest, ok := cut2B(rest)
	if !ok || len(rest) != 0 {
		return nil, errMalformed
	}
	if c.auth == passwordAuth {
		if len(nonce) != 0 || len(mac) != 0 {
			return nil, errMalformed
		}
		return r, nil
	}
	s := t.sessionOf(c)
	if c.newAuth != nil {
		s.auth = trimAuth(c.newAuth)
		s.mac = nil
	}
	if err := s.validate(tpm2.TPMRCSuccess, c.cc, r.params, nonce, attrs, mac); err != nil {
		return nil, err
	}
	if s.enc.encryptsResponse() {
		first, err := first2B(r.params)
		if err != nil {
			return nil, err
		}
		if err := s.Decrypt(first); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// sessionOf is the session that authorizes c: its own, or the shared one.
func (t *TPM) sessionOf(c *command) *session {
	if c.sess != nil {
		return c.sess
	}
	return t.sess
}

// first2B returns the contents of the TPM2B at the start of p.
func first2B(p []byte) ([]byte, error) {
	b, _, ok := cut2B(p)
	if !ok {
		return nil, errMalformed
	}
	return b, nil
}

// cut2B splits a TPM2B off the front of p.
func cut2B(p []byte) (contents, rest []byte, ok bool) {
	if len(p) < 2 {
		return nil, nil, false
	}
	n := int(binary.BigEndian.Uint16(p))
	if n > len(p)-2 {
		return nil, nil, false
	}
	return p[2 : 2+n], p[2+n:], true
}

// appendSized appends b as a TPM2B.
func appendSized(buf, b []byte) []byte {
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(b)))
	return append(buf, b...)
}

// Command encoders (Part 3).

// createParams is TPM2_Create's parameters (Part 3 §12.1.2): inSensitive,
// inPublic, outsideInfo (empty) and creationPCR (empty list).
func createParams(template, data, auth []byte) []byte {
	p := make([]byte, 0, 2+4+len(auth)+len(data)+2+len(template)+2+4)
	p = binary.BigEndian.AppendUint16(p, uint16(4+len(auth)+len(data)))
	p = appendSized(p, auth)
	p = appendSized(p, data)
	p = appendSized(p, template)
	p = append(p, 0, 0)       // outsideInfo
	p = append(p, 0, 0, 0, 0) // creationPCR: count 0
	return p
}

// parseCreate returns outPrivate and outPublic from TPM2_Create's response
// parameters, each as the TPM marshalled it (size included).
func parseCreate(params []byte) (public, private []byte, err error) {
	_, rest, ok := cut2B(params)
	if !ok {
		return nil, nil, errMalformed
	}
	private = bytes.Clone(params[:len(params)-len(rest)])
	pub, _, ok := cut2B(rest)
	if !ok {
		return nil, nil, errMalformed
	}
	public = bytes.Clone(rest[:2+len(pub)])
	return public, private, nil
}

// loadParams is TPM2_Load's parameters (Part 3 §12.2.2).
func loadParams(o *object) []byte {
	p := make([]byte, 0, 4+len(o.priv)+len(o.public))
	p = appendSized(p, o.priv)
	return appendSized(p, o.public)
}

// signParams is TPM2_Sign's parameters (Part 3 §20.2.2): digest, inScheme
// (scheme and hash) and a NULL hash-check ticket (TPM_ST_HASHCHECK,
// TPM_RH_NULL, empty digest), allowed since our keys are unrestricted.
func signParams(digest []byte, scheme, hash tpm2.TPMAlgID) []byte {
	p := make([]byte, 0, 2+len(digest)+4+8)
	p = appendSized(p, digest)
	p = binary.BigEndian.AppendUint16(p, uint16(scheme))
	p = binary.BigEndian.AppendUint16(p, uint16(hash))
	p = binary.BigEndian.AppendUint16(p, uint16(tpm2.TPMSTHashCheck))
	p = binary.BigEndian.AppendUint32(p, uint32(tpm2.TPMRHNull))
	return append(p, 0, 0)
}

// parseSignature decodes the TPMT_SIGNATURE of TPM2_Sign's response (Part 2
// §11.3.4) into R and S (ECDSA) or the signature (RSA).
func parseSignature(params []byte) (alg tpm2.TPMAlgID, a, b []byte, err error) {
	if len(params) < 4 {
		return 0, nil, nil, errMalformed
	}
	alg = tpm2.TPMAlgID(binary.BigEndian.Uint16(params))
	rest := params[4:] // sigAlg, hash
	switch alg {
	case tpm2.TPMAlgRSASSA, tpm2.TPMAlgRSAPSS:
		sig, rest, ok := cut2B(rest)
		if !ok || len(rest) != 0 {
			return 0, nil, nil, errMalformed
		}
		return alg, sig, nil, nil
	case tpm2.TPMAlgECDSA:
		r, rest, ok := cut2B(rest)
		if !ok {
			return 0, nil, nil, errMalformed
		}
		s, rest, ok := cut2B(rest)
		if !ok || len(rest) != 0 {
			return 0, nil, nil, errMalformed
		}
		return alg, r, s, nil
	}
	return 0, nil, nil, fmt.Errorf("unexpected signature algorithm %v", alg)
}
