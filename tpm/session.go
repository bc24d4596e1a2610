package tpm

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/hellosim/hellosim/internal/wipe"
)

// session is the one salted HMAC session a TPM connection keeps open
// (continueSession) and uses to authorize every command that proves
// knowledge of an authValue, and to encrypt the secret parameter of that
// command (TPM 2.0 Part 1 §19.6 and §21).
//
// go-tpm's own HMACSession fixes the authValue and the encryption direction
// when the session starts, and (in v0.9.8) cuts the authValue at its first
// zero byte. This type instead takes both per command: before each command
// the caller sets the authorized entity's authValue and whether the first
// command parameter (decrypt attribute) or the first response parameter
// (encrypt attribute) travels encrypted. Parameter encryption is AES-128-CFB
// with keys from KDFa(SHA-256) (Part 1 §21.3); the session key comes from a
// salt encrypted to the storage root key (Part 1 §19.6.11), so only that TPM
// can compute it.
//
// A session is used only with TPM.mu held.
type session struct {
	handle      tpm2.TPMHandle // TPMRHNull when not started
	key         []byte         // sessionKey
	nonceCaller []byte
	nonceTPM    []byte

	// Set for each command.
	auth []byte          // the authorized entity's authValue, trailing zeros trimmed
	enc  paramEncryption // which parameter travels encrypted

	// last clears continueSession: the TPM ends the session after the
	// command succeeds (a policy session used once).
	last bool

	// mac is HMAC-SHA256 keyed with sessionKey || auth, built at most once
	// per command and Reset for each of the command HMAC, the response
	// HMAC and the parameter-encryption KDFa, which share that key.
	mac hash.Hash

	rand io.Reader // nonces; nil means crypto/rand (tests make it repeatable)
}

// paramEncryption says which parameter of a command travels encrypted under
// the session (TPM 2.0 Part 1 §21): none, the first command parameter (the
// session's decrypt attribute: the TPM decrypts it) or the first response
// parameter (the encrypt attribute: the TPM encrypts it). No command the
// library sends needs both.
type paramEncryption int

const (
	encryptNone     paramEncryption = iota
	encryptCommand                  // TPMA_SESSION decrypt
	encryptResponse                 // TPMA_SESSION encrypt
)

// encryptsCommand and encryptsResponse are the two session attributes.
func (e paramEncryption) encryptsCommand() bool  { return e == encryptCommand }
func (e paramEncryption) encryptsResponse() bool { return e == encryptResponse }

// sessionNonceSize is the size of both nonces: the digest size of the
// session hash, as Part 1 §19.6.3 recommends.
const sessionNonceSize = sha256.Size

var _ tpm2.Session = (*session)(nil)

func newSession() *session { return &session{handle: tpm2.TPMRHNull} }

// started reports whether the TPM holds the session.
func (s *session) started() bool { return s.handle != tpm2.TPMRHNull }

// use sets the authValue and parameter encryption for the next command.
// The authValue is trimmed of trailing zeros as the TPM trims it (Part 1
// §19.6.8: "the authValue ... with trailing octets of zero removed"); inner
// zero bytes are kept.
func (s *session) use(auth []byte, enc paramEncryption) {
	s.auth = trimAuth(auth)
	s.enc = enc
	s.mac = nil
}

// done forgets the per-command settings.
func (s *session) done() {
	s.auth = nil
	s.enc = encryptNone
	s.mac = nil
}

// forget drops the session state without telling the TPM (the TPM has
// already dropped it, or the connection is gone).
func (s *session) forget() {
	wipe.Bytes(s.key)
	s.handle = tpm2.TPMRHNull
	s.key, s.nonceCaller, s.nonceTPM = nil, nil, nil
	s.done()
}

// start begins a salted HMAC session (TPM2_StartAuthSession, Part 3 §11.1)
// with the salt encrypted to srk.
func (s *session) start(tr transport.TPM, srk tpm2.TPMHandle, kem tpm2.LabeledEncapsulationKey) error {
	return s.startType(tr, srk, kem, tpm2.TPMSEHMAC)
}

// startType begins a salted session of the given type (HMAC or policy).
func (s *session) startType(tr transport.TPM, srk tpm2.TPMHandle, kem tpm2.LabeledEncapsulationKey, typ tpm2.TPMSE) error {
	nonce := make([]byte, sessionNonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	salt, encSalt, err := tpm2.CreateEncryptedSalt(rand.Reader, kem)
	if err != nil {
		return fmt.Errorf("encrypt session salt: %w", err)
	}
	defer wipe.Bytes(salt)
	rsp, err := tpm2.StartAuthSession{
		TPMKey:        srk,
		Bind:          tpm2.TPMRHNull,
		NonceCaller:   tpm2.TPM2BNonce{Buffer: nonce},
		EncryptedSalt: tpm2.TPM2BEncryptedSecret{Buffer: encSalt},
		SessionType:   typ,
		Symmetric: tpm2.TPMTSymDef{
			Algorithm: tpm2.TPMAlgAES,
			KeyBits:   tpm2.NewTPMUSymKeyBits(tpm2.TPMAlgAES, tpm2.TPMKeyBits(128)),
			Mode:      tpm2.NewTPMUSymMode(tpm2.TPMAlgAES, tpm2.TPMAlgCFB),
		},
		AuthHash: tpm2.TPMAlgSHA256,
	}.Execute(tr)
	if err != nil {
		return err
	}
	s.handle = rsp.SessionHandle
	s.nonceCaller = nonce
	s.nonceTPM = append([]byte(nil), rsp.NonceTPM.Buffer...)
	// Part 1 §19.6.8: sessionKey = KDFa(sessionAlg, bind.authValue || salt,
	// "ATH", nonceTPM, nonceCaller, bits); the session is unbound.
	s.key = tpm2.KDFa(crypto.SHA256, salt, "ATH", s.nonceTPM, s.nonceCaller, 8*sha256.Size)
	s.mac = nil
	return nil
}

// Init implements tpm2.Session. The session is started by the TPM before
// any command uses it.
func (s *session) Init(transport.TPM) error {
	if !s.started() {
		return errors.New("session not started")
	}
	return nil
}

// CleanupFailure implements tpm2.Session. A failed command leaves the
// session (and its nonceTPM) as it was (Part 1 §19.6.6), so nothing is done.
func (s *session) CleanupFailure(transport.TPM) error { return nil }

// NonceTPM implements tpm2.Session.
func (s *session) NonceTPM() tpm2.TPM2BNonce { return tpm2.TPM2BNonce{Buffer: s.nonceTPM} }

// NewNonceCaller implements tpm2.Session.
func (s *session) NewNonceCaller() error {
	if len(s.nonceCaller) != sessionNonceSize {
		s.nonceCaller = make([]byte, sessionNonceSize)
	}
	r := s.rand
	if r == nil {
		r = rand.Reader
	}
	_, err := io.ReadFull(r, s.nonceCaller)
	return err
}

func (s *session) attrs() tpm2.TPMASession {
	return tpm2.TPMASession{ContinueSession: !s.last, Decrypt: s.enc.encryptsCommand(), Encrypt: s.enc.encryptsResponse()}
}

// hmacKey is sessionKey || authValue (Part 1 §19.6.8).
func (s *session) hmacKey() []byte {
	k := make([]byte, 0, len(s.key)+len(s.auth))
	return append(append(k, s.key...), s.auth...)
}

// keyed returns HMAC-SHA256 keyed with sessionKey || authValue, reset. The
// key is the same for every HMAC of one command, so it is set up once.
func (s *session) keyed() hash.Hash {
	if s.mac == nil {
		key := s.hmacKey()
		s.mac = hmac.New(sha256.New, key)
		wipe.Bytes(key)
	}
	s.mac.Reset()
	return s.mac
}

// Authorize implements tpm2.Session.
func (s *session) Authorize(cc tpm2.TPMCC, parms, addNonces []byte, names []tpm2.TPM2BName, _ int) (*tpm2.TPMSAuthCommand, error) {
	if len(addNonces) != 0 {
		return nil, errors.New("session: other sessions' nonces are not supported")
	}
	mac, err := s.commandHMAC(cc, names, parms)
	if err != nil {
		return nil, err
	}
	return &tpm2.TPMSAuthCommand{
		Handle:        s.handle,
		Nonce:         tpm2.TPM2BNonce{Buffer: s.nonceCaller},
		Attributes:    s.attrs(),
		Authorization: tpm2.TPM2BData{Buffer: mac},
	}, nil
}

// commandHMAC is the command HMAC of Part 1 §19.6.5:
// HMAC(sessionKey || authValue, cpHash || nonceCaller || nonceTPM ||
// sessionAttributes), cpHash = H(commandCode || names || parameters).
func (s *session) commandHMAC(cc tpm2.TPMCC, names []tpm2.TPM2BName, parms []byte) ([]byte, error) {
	if !s.started() {
		return nil, errors.New("session not started")
	}
	h := sha256.New()
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(cc))
	h.Write(b[:])
	for _, n := range names {
		h.Write(n.Buffer)
	}
	h.Write(parms)
	var cpHash [sha256.Size]byte
	h.Sum(cpHash[:0])

	mac := s.keyed()
	mac.Write(cpHash[:])
	mac.Write(s.nonceCaller)
	mac.Write(s.nonceTPM)
	mac.Write([]byte{attrByte(s.attrs())})
	return mac.Sum(nil), nil
}

// Validate implements tpm2.Session.
func (s *session) Validate(rc tpm2.TPMRC, cc tpm2.TPMCC, parms []byte, _ []tpm2.TPM2BName, _ int, auth *tpm2.TPMSAuthResponse) error {
	return s.validate(rc, cc, parms, auth.Nonce.Buffer, attrByte(auth.Attributes), auth.Authorization.Buffer)
}

// validate records the new nonceTPM and checks the response HMAC,
// HMAC(sessionKey || authValue, rpHash || nonceTPM || nonceCaller ||
// sessionAttributes) with rpHash = H(responseCode || commandCode ||
// parameters) (Part 1 §19.6.5).
//
// Nothing in the response is believed before its HMAC verifies: neither
// the new nonceTPM nor a cleared continueSession attribute, with which an
// attacker on the bus could otherwise make the library forget a session
// the TPM still holds. The caller drops the session after a failure.
func (s *session) validate(rc tpm2.TPMRC, cc tpm2.TPMCC, parms, nonce []byte, attrs byte, got []byte) error {
	h := sha256.New()
	var b [8]byte
	binary.BigEndian.PutUint32(b[:4], uint32(rc))
	binary.BigEndian.PutUint32(b[4:], uint32(cc))
	h.Write(b[:])
	h.Write(parms)
	var rpHash [sha256.Size]byte
	h.Sum(rpHash[:0])

	mac := s.keyed()
	mac.Write(rpHash[:])
	mac.Write(nonce)
	mac.Write(s.nonceCaller)
	mac.Write([]byte{attrs})
	if !hmac.Equal(mac.Sum(nil), got) {
		return errResponseHMAC
	}
	s.nonceTPM = append(s.nonceTPM[:0], nonce...)
	if attrs&1 == 0 {
		// continueSession clear: the TPM ended the session; the next
		// command starts a new one.
		s.handle = tpm2.TPMRHNull
	}
	return nil
}

// errResponseHMAC is a response whose HMAC does not verify: it was changed
// on its way from the TPM, or the session is out of step.
var errResponseHMAC = errors.New("response HMAC does not verify")

// IsEncryption implements tpm2.Session (the TPM encrypts the response).
func (s *session) IsEncryption() bool { return s.enc.encryptsResponse() }

// IsDecryption implements tpm2.Session (the TPM decrypts the command).
func (s *session) IsDecryption() bool { return s.enc.encryptsCommand() }

// Encrypt implements tpm2.Session: it encrypts the first command parameter
// in place (Part 1 §21.3, CFB mode; the IV is from nonceCaller, nonceTPM).
func (s *session) Encrypt(p []byte) error {
	if !s.enc.encryptsCommand() {
		return nil
	}
	return s.cfb(p, s.nonceCaller, s.nonceTPM, true)
}

// Decrypt implements tpm2.Session: it decrypts the first response parameter
// in place (nonceTPM, nonceCaller order for responses).
func (s *session) Decrypt(p []byte) error {
	if !s.enc.encryptsResponse() {
		return nil
	}
	return s.cfb(p, s.nonceTPM, s.nonceCaller, false)
}

func (s *session) cfb(p, nonceNewer, nonceOlder []byte, encrypt bool) error {
	const keyBytes = 16
	// KDFa (Part 1 §11.4.10.2) keyed with sessionValue = sessionKey ||
	// authValue (Part 1 §21.1): K(1) = HMAC(key, [1] || "CFB" || 0x00 ||
	// nonceNewer || nonceOlder || [256]), exactly the 16-byte AES key and
	// the 16-byte IV, so one HMAC block.
	var keyIV [sha256.Size]byte
	mac := s.keyed()
	mac.Write([]byte{0, 0, 0, 1, 'C', 'F', 'B', 0})
	mac.Write(nonceNewer)
	mac.Write(nonceOlder)
	mac.Write([]byte{0, 0, 1, 0}) // 8 * (keyBytes + aes.BlockSize) bits
	mac.Sum(keyIV[:0])
	defer wipe.Bytes(keyIV[:])
	block, err := aes.NewCipher(keyIV[:keyBytes])
	if err != nil {
		return err
	}
	if encrypt {
		//lint:ignore SA1019 CFB is what TPM 2.0 specifies for parameter encryption
		cipher.NewCFBEncrypter(block, keyIV[keyBytes:]).XORKeyStream(p, p)
	} else {
		//lint:ignore SA1019 CFB is what TPM 2.0 specifies for parameter encryption
		cipher.NewCFBDecrypter(block, keyIV[keyBytes:]).XORKeyStream(p, p)
	}
	return nil
}

// Handle implements tpm2.Session.
func (s *session) Handle() tpm2.TPMHandle { return s.handle }

// attrByte is TPMA_SESSION as one byte (Part 2 §8.4).
func attrByte(a tpm2.TPMASession) byte {
	var b byte
	for bit, set := range [8]bool{a.ContinueSession, a.AuditExclusive, a.AuditReset, 3: false, 4: false, a.Decrypt, a.Encrypt, a.Audit} {
		if set {
			b |= 1 << bit
		}
	}
	return b
}

// trimAuth removes trailing zero bytes only, as the TPM does with an
// authValue (Part 1 §19.6.8); zero bytes inside the value are kept.
func trimAuth(auth []byte) []byte {
	n := len(auth)
	for n > 0 && auth[n-1] == 0 {
		n--
	}
	return auth[:n]
}
