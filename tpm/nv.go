package tpm

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/hellosim/hellosim/internal/wipe"
)

// A secret in NV memory: an ordinary NV index (TPM 2.0 Part 1, NV memory) holding
// a few bytes that only its authValue reads or writes. Unlike a sealed
// blob, of which any number of copies unseal for ever, the TPM holds one
// copy with one authValue: once the authValue is changed or the index
// undefined, no old file and no old authValue reads it again, whoever sends
// the command. That is what makes a changed PIN final.
//
// The index's attributes (Part 2 §13.4):
//
//   - AUTHREAD, AUTHWRITE: its authValue reads and writes it; neither the
//     owner nor the platform can (no OWNERREAD, OWNERWRITE, PPREAD, PPWRITE);
//   - not NO_DA: every wrong authValue counts toward dictionary-attack
//     lockout, as a wrong PIN does with a sealed object;
//   - WRITEALL: it is written whole;
//   - authPolicy = PolicyCommandCode(TPM_CC_NV_ChangeAuth) ∧ PolicyAuthValue:
//     TPM2_NV_ChangeAuth (the ADMIN role, which only a policy session can
//     take) needs the current authValue. No other command is
//     allowed by the policy.
//
// Defining an index needs owner authorization, and so does undefining one
// (TPM2_NV_UndefineSpace): the owner can delete the secret, never read it
// or replace it with one it knows the old holders would accept. The
// library passes an empty owner authorization, which is what the
// simulator, swtpm and most Linux machines have; where the owner has set
// one, DefineSecret fails with ErrOwnerAuth and UndefineSecret too.

// NV handles the library allocates: the top quarter of the owner's range
// (0x01000000–0x013FFFFF, TCG Registry of Reserved TPM 2.0 Handles).
const (
	NVFirst uint32 = 0x013C0000
	NVLast  uint32 = 0x013FFFFF
)

// Attribute bits of TPMA_NV (Part 2 §13.4).
const (
	nvAuthWrite = 1 << 2
	nvWriteAll  = 1 << 12
	nvAuthRead  = 1 << 18
	nvWritten   = 1 << 29

	secretNVAttrs = nvAuthWrite | nvWriteAll | nvAuthRead
)

// ErrOwnerAuth is a TPM that refuses the empty owner authorization: its
// owner has set one, so the library cannot define or undefine NV indices.
var ErrOwnerAuth = errors.New("tpm: owner authorization refused (the owner set one, or the index is not the one named): NV index not defined or undefined")

// ErrNVGone is an NV secret whose index is not defined: it was undefined (a
// reset or a delete revoked it) or never made it to this TPM.
var ErrNVGone = errors.New("tpm: NV secret not defined (revoked, deleted, or another TPM)")

// ErrNVFull is a TPM with no room for another NV index.
var ErrNVFull = errors.New("tpm: no NV space for another index")

// ErrChangeAuthLost is a TPM2_NV_ChangeAuth whose answer was lost (or did
// not verify) and whose outcome the library could not work out afterwards:
// the index holds the old authValue or the new one.
var ErrChangeAuthLost = errors.New("tpm: the answer to NV_ChangeAuth was lost: the index holds the old or the new authValue")

// NVSecret names an NV index holding a secret: its handle and its Name
// (nameAlg ‖ SHA-256 of its public area, once written). The Name is pinned:
// every command on the index puts it in the HMAC, so an index redefined in
// its place, with other attributes or another policy, is refused by the
// TPM.
type NVSecret struct {
	Handle uint32
	Name   []byte
}

// IsZero reports an NVSecret that names nothing.
func (s NVSecret) IsZero() bool { return s.Handle == 0 }

// changeAuthPolicy is the index's authPolicy: PolicyCommandCode(
// TPM_CC_NV_ChangeAuth) then PolicyAuthValue (Part 3 §23, each command's policyDigest update):
//
//	d1 = SHA-256(0^32 ‖ TPM_CC_PolicyCommandCode ‖ TPM_CC_NV_ChangeAuth)
//	d2 = SHA-256(d1 ‖ TPM_CC_PolicyAuthValue)
var changeAuthPolicy = func() []byte {
	var d [sha256.Size]byte
	h := sha256.New()
	h.Write(d[:])
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(tpm2.TPMCCPolicyCommandCode)))
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(tpm2.TPMCCNVChangeAuth)))
	h.Sum(d[:0])
	h.Reset()
	h.Write(d[:])
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(tpm2.TPMCCPolicyAuthValue)))
	return h.Sum(nil)
}()

// nvPublic is TPMS_NV_PUBLIC (Part 2 §13.5) of a secret index.
func nvPublic(handle uint32, attrs uint32, size int) []byte {
	p := binary.BigEndian.AppendUint32(nil, handle)
	p = binary.BigEndian.AppendUint16(p, uint16(tpm2.TPMAlgSHA256))
	p = binary.BigEndian.AppendUint32(p, attrs)
	p = appendSized(p, changeAuthPolicy)
	return binary.BigEndian.AppendUint16(p, uint16(size))
}

// nvName is the Name of an index (Part 1, Names): nameAlg ‖ H(TPMS_NV_PUBLIC).
func nvName(public []byte) tpm2.TPM2BName {
	sum := sha256.Sum256(public)
	return tpm2.TPM2BName{Buffer: append(binary.BigEndian.AppendUint16(nil, uint16(tpm2.TPMAlgSHA256)), sum[:]...)}
}

// PersistentNV reports whether this TPM keeps NV indices across process
// restarts as it keeps blobs, and when not, why. Rollback protection
// depends on it: a seeded simulator (WithSeed) comes back in every process
// with its blobs loadable but its NV memory empty, so a secret in NV would
// be lost with the process.
func (t *TPM) PersistentNV() (ok bool, why string) {
	if t.volatileNV != "" {
		return false, t.volatileNV
	}
	return true, ""
}

// DefineSecret defines a secret index at a free handle of the library's
// range, authorized by auth (at most MaxAuthSize bytes), and writes secret
// (NVSecretSize bytes) into it: TPM2_NV_DefineSpace and TPM2_NV_Write
// (Part 3 §31.3, §31.7), two commands. auth and secret travel encrypted
// under the salted session. When the write fails the index is undefined
// again.
func (t *TPM) DefineSecret(ctx context.Context, secret, auth []byte) (NVSecret, error) {
	if len(secret) != NVSecretSize {
		return NVSecret{}, fmt.Errorf("tpm: define secret: secret must be %d bytes, not %d", NVSecretSize, len(secret))
	}
	if len(auth) > MaxAuthSize {
		return NVSecret{}, fmt.Errorf("tpm: define secret: auth must be at most %d bytes, not %d", MaxAuthSize, len(auth))
	}
	if err := t.lock(); err != nil {
		return NVSecret{}, err
	}
	defer t.mu.Unlock()
	var (
		handle uint32
		err    error
	)
	for range 8 {
		handle, err = randomNVHandle()
		if err != nil {
			return NVSecret{}, fmt.Errorf("tpm: define secret: %w", err)
		}
		err = t.nvDefine(ctx, handle, auth, len(secret))
		if !errors.Is(err, tpm2.TPMRCNVDefined) {
			break
		}
	}
	unwritten := nvName(nvPublic(handle, secretNVAttrs, len(secret)))
	written := nvName(nvPublic(handle, secretNVAttrs|nvWritten, len(secret)))
	if err != nil {
		if !isTPMRC(err) && !isCtxErr(err) {
			// The answer was lost: the TPM may have defined the index.
			t.undefineEither(ctx, handle, unwritten, written)
		}
		return NVSecret{}, fmt.Errorf("tpm: define secret: %w", err)
	}
	if err := t.nvWrite(ctx, handle, unwritten, secret, auth); err != nil {
		// Leave nothing behind. Had the write happened and only its
		// answer been lost, the index now has its written Name.
		t.undefineEither(ctx, handle, unwritten, written)
		return NVSecret{}, fmt.Errorf("tpm: define secret: write: %w", err)
	}
	return NVSecret{Handle: handle, Name: written.Buffer}, nil
}

// undefineEither undefines the index at handle under either Name (best
// effort: what is left is an orphan, which Secrets lists). A wrong Name
// makes the owner's HMAC fail with TPM_RC_BAD_AUTH, which costs no
// dictionary-attack count. t.mu must be held.
func (t *TPM) undefineEither(ctx context.Context, handle uint32, names ...tpm2.TPM2BName) {
	for _, name := range names {
		err := t.nvUndefine(ctx, handle, name)
		if err == nil || handleGoneRC(err) {
			return
		}
	}
}

// randomNVHandle draws a handle of the library's range.
func randomNVHandle() (uint32, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, err
	}
	return NVFirst + binary.BigEndian.Uint32(b[:])%(NVLast-NVFirst+1), nil
}

// ownerName is the Name of TPM_RH_OWNER: its handle.
var ownerName = tpm2.HandleName(tpm2.TPMRHOwner)

// nvDefine is TPM2_NV_DefineSpace with the empty owner authorization in the
// shared session; the index's authValue (the first parameter) travels
// encrypted. t.mu must be held.
func (t *TPM) nvDefine(ctx context.Context, handle uint32, auth []byte, size int) error {
	params := appendSized(nil, trimAuth(auth))
	params = appendSized(params, nvPublic(handle, secretNVAttrs, size))
	defer wipe.Bytes(params)
	err := t.withSession(ctx, nil, encryptCommand, func() error {
		_, err := t.send(&command{
			cc:      tpm2.TPMCCNVDefineSpace,
			handles: []tpm2.TPMHandle{tpm2.TPMRHOwner},
			names:   []tpm2.TPM2BName{ownerName},
			auth:    sessionAuth,
			params:  params,
		})
		return err
	}, nil)
	return nvErr(err)
}

// nvErr maps owner-authorization and NV-space failures.
func nvErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, tpm2.TPMRCBadAuth), errors.Is(err, tpm2.TPMRCAuthFail):
		return fmt.Errorf("%w: %w", ErrOwnerAuth, err)
	case errors.Is(err, tpm2.TPMRCNVSpace), errors.Is(err, tpm2.TPMRCNVRange):
		return fmt.Errorf("%w: %w", ErrNVFull, err)
	}
	return err
}

// nvWrite is TPM2_NV_Write of data at offset 0, authorized by the index's
// authValue; data travels encrypted. t.mu must be held.
func (t *TPM) nvWrite(ctx context.Context, handle uint32, name tpm2.TPM2BName, data, auth []byte) error {
	params := appendSized(nil, data)
	params = append(params, 0, 0) // offset
	defer wipe.Bytes(params)
	_, err := t.nvOwnAuth(ctx, tpm2.TPMCCNVWrite, handle, name, auth, encryptCommand, params)
	return err
}

// nvOwnAuth sends cc on the index (handle, name) authorized by the index's
// own authValue (TPM_RH_NV_INDEX: the index is both authHandle and
// nvIndex), in the session with enc. t.mu must be held.
func (t *TPM) nvOwnAuth(ctx context.Context, cc tpm2.TPMCC, handle uint32, name tpm2.TPM2BName, auth []byte, enc paramEncryption, params []byte) (*response, error) {
	h := tpm2.TPMHandle(handle)
	var rsp *response
	err := t.withSession(ctx, auth, enc, func() (err error) {
		rsp, err = t.send(&command{
			cc:      cc,
			handles: []tpm2.TPMHandle{h, h},
			names:   []tpm2.TPM2BName{name, name},
			auth:    sessionAuth,
			params:  params,
		})
		return err
	}, nil)
	return rsp, err
}

// ReadSecret reads the secret with its authValue: one TPM2_NV_Read (Part 3
// §31.13), the secret encrypted in the response under the salted session.
// A wrong auth gives an *AuthError (errors.Is ErrAuthFailed) with the tries
// left, and counts toward lockout; a TPM in lockout a *LockoutError; an
// index that is gone ErrNVGone.
func (t *TPM) ReadSecret(ctx context.Context, s NVSecret, auth []byte) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("tpm: read secret: %w", err)
	}
	if len(auth) > MaxAuthSize {
		return nil, fmt.Errorf("tpm: read secret: auth must be at most %d bytes, not %d", MaxAuthSize, len(auth))
	}
	if err := t.lock(); err != nil {
		return nil, err
	}
	defer t.mu.Unlock()
	return t.readSecret(ctx, s, auth)
}

// readSecret is ReadSecret with t.mu held.
func (t *TPM) readSecret(ctx context.Context, s NVSecret, auth []byte) ([]byte, error) {
	params := []byte{0, NVSecretSize, 0, 0} // size, offset 0
	rsp, err := t.nvOwnAuth(ctx, tpm2.TPMCCNVRead, s.Handle, tpm2.TPM2BName{Buffer: s.Name}, auth, encryptResponse, params)
	if err != nil {
		return nil, fmt.Errorf("tpm: read secret: %w", t.nvUseErr(ctx, err))
	}
	defer wipe.Bytes(rsp.params)
	data, err := first2B(rsp.params)
	if err != nil {
		return nil, fmt.Errorf("tpm: read secret: %w", err)
	}
	return bytes.Clone(data), nil
}

// NVSecretSize is the size of every secret index: 32 bytes, a container
// secret or an AES-256 key.
const NVSecretSize = 32

// nvUseErr maps the failure of a command on a secret index. t.mu must be
// held.
func (t *TPM) nvUseErr(ctx context.Context, err error) error {
	if aerr := t.authErr(ctx, err); aerr != nil {
		return aerr
	}
	if handleGoneRC(err) {
		return fmt.Errorf("%w: %w", ErrNVGone, err)
	}
	return err
}

func (s NVSecret) check() error {
	if s.Handle < NVFirst || s.Handle > NVLast {
		return fmt.Errorf("%w: NV handle %#x outside the library's range", ErrCorruptBlob, s.Handle)
	}
	if len(s.Name) != 2+sha256.Size || binary.BigEndian.Uint16(s.Name) != uint16(tpm2.TPMAlgSHA256) {
		return fmt.Errorf("%w: NV name is not a SHA-256 name", ErrCorruptBlob)
	}
	return nil
}

// ChangeSecretAuth changes the secret index's authValue from oldAuth to
// newAuth with TPM2_NV_ChangeAuth (Part 3 §31.15) in a policy session that
// satisfies the index's policy: TPM2_StartAuthSession (salted, so newAuth
// travels encrypted), TPM2_PolicyCommandCode, TPM2_PolicyAuthValue and
// TPM2_NV_ChangeAuth, four commands; the session ends with the last. The
// old authValue stops working at once. A wrong oldAuth is an *AuthError and
// counts toward lockout.
//
// When the answer to TPM2_NV_ChangeAuth is lost, the TPM holds oldAuth or
// newAuth and ChangeSecretAuth works out which (see settleChangeAuth): nil
// when the index now holds newAuth, an error when it still holds oldAuth,
// ErrChangeAuthLost when it cannot tell. Only ErrChangeAuthLost leaves the
// outcome open; every other error means the authValue did not change.
func (t *TPM) ChangeSecretAuth(ctx context.Context, s NVSecret, oldAuth, newAuth []byte) error {
	if err := s.check(); err != nil {
		return fmt.Errorf("tpm: change secret auth: %w", err)
	}
	if len(oldAuth) > MaxAuthSize || len(newAuth) > MaxAuthSize {
		return fmt.Errorf("tpm: change secret auth: auth must be at most %d bytes", MaxAuthSize)
	}
	if err := t.lock(); err != nil {
		return err
	}
	defer t.mu.Unlock()
	if err := t.nvChangeAuth(ctx, s, oldAuth, newAuth); err != nil {
		return fmt.Errorf("tpm: change secret auth: %w", err)
	}
	return nil
}

func (t *TPM) nvChangeAuth(ctx context.Context, s NVSecret, oldAuth, newAuth []byte) error {
	ps := newSession()
	err := t.run(ctx, func() error { return ps.startType(t.tr, t.srk, t.srkKEM, tpm2.TPMSEPolicy) })
	if err != nil {
		if !isTPMRC(err) && !isCtxErr(err) {
			t.reclaim()
		}
		return fmt.Errorf("start policy session: %w", err)
	}
	defer func() {
		if ps.started() {
			// Not ended by a successful NV_ChangeAuth: flush it.
			_ = t.flush(ps.handle)
		}
		ps.forget()
	}()
	policy := func(cc tpm2.TPMCC, params []byte) error {
		return t.run(ctx, func() error {
			_, err := t.send(&command{cc: cc, handles: []tpm2.TPMHandle{ps.handle}, params: params})
			return err
		})
	}
	if err := policy(tpm2.TPMCCPolicyCommandCode, binary.BigEndian.AppendUint32(nil, uint32(tpm2.TPMCCNVChangeAuth))); err != nil {
		return fmt.Errorf("policy command code: %w", err)
	}
	if err := policy(tpm2.TPMCCPolicyAuthValue, nil); err != nil {
		return fmt.Errorf("policy auth value: %w", err)
	}
	params := appendSized(nil, trimAuth(newAuth))
	defer wipe.Bytes(params)
	// Non-nil even when empty: the response HMAC is keyed with it.
	rspAuth := append(make([]byte, 0, len(newAuth)+1), newAuth...)
	defer wipe.Bytes(rspAuth)
	ps.use(oldAuth, encryptCommand)
	ps.last = true
	err = t.run(ctx, func() error {
		_, err := t.send(&command{
			cc:      tpm2.TPMCCNVChangeAuth,
			handles: []tpm2.TPMHandle{tpm2.TPMHandle(s.Handle)},
			names:   []tpm2.TPM2BName{{Buffer: s.Name}},
			auth:    sessionAuth,
			sess:    ps,
			params:  params,
			newAuth: rspAuth,
		})
		return err
	})
	ps.done()
	switch {
	case err == nil:
		return nil
	case isTPMRC(err) || isCtxErr(err):
		// The TPM refused the command, or it was not sent.
		return t.nvUseErr(ctx, err)
	}
	return t.settleChangeAuth(ctx, ps, s, oldAuth, newAuth, err)
}

// settleChangeAuth works out which authValue the index holds after the
// answer to TPM2_NV_ChangeAuth was lost (lost is the transport's error, or
// a response whose HMAC did not verify). t.mu must be held.
//
// First a hint that costs no dictionary-attack count: the policy session
// was sent with continueSession clear, so the TPM ended it if, and only
// if, the change succeeded. TPM2_FlushContext of its handle succeeds while
// the session lives (no change) and answers TPM_RC_HANDLE once it is gone
// (changed). Error responses are not authenticated, so the hint is then
// proven: the secret is read (TPM2_NV_Read, its response HMAC keyed with
// the authValue the TPM holds) with the authValue the hint names. In the
// ordinary case that read succeeds and costs nothing. Only when the hint
// was wrong (a TPM restarted between the command and the probe, or an
// error forged on the bus) does the read fail, at one dictionary-attack
// count, and the other authValue is read instead: at most one count. When
// the TPM does not answer, is locked out, or refuses both, the outcome is
// left open: ErrChangeAuthLost.
func (t *TPM) settleChangeAuth(ctx context.Context, ps *session, s NVSecret, oldAuth, newAuth []byte, lost error) error {
	ctx = context.WithoutCancel(ctx)
	unknown := fmt.Errorf("%w: %w", ErrChangeAuthLost, lost)
	ferr := t.flushOnce(ps.handle)
	h := ps.handle
	ps.forget()
	type probe struct {
		auth    []byte
		changed bool
	}
	probes := []probe{{oldAuth, false}, {newAuth, true}}
	switch {
	case ferr == nil:
	case handleGoneRC(ferr):
		probes[0], probes[1] = probes[1], probes[0]
	default:
		if !isTPMRC(ferr) {
			t.orphans = append(t.orphans, h)
		}
		return unknown
	}
	for _, p := range probes {
		data, err := t.readSecret(ctx, s, p.auth)
		wipe.Bytes(data)
		switch {
		case err == nil && p.changed:
			return nil
		case err == nil:
			return fmt.Errorf("the answer was lost; the index keeps the old authValue: %w", lost)
		case !errors.Is(err, ErrAuthFailed):
			return unknown
		}
	}
	return unknown
}

// UndefineSecret undefines the secret index (TPM2_NV_UndefineSpace, Part 3
// §31.4) with the empty owner authorization, proven in the shared session
// whose HMAC covers the index's Name: an index redefined in its place with
// another Name is not touched. One command. An index that is already gone
// is not an error.
func (t *TPM) UndefineSecret(ctx context.Context, s NVSecret) error {
	if err := s.check(); err != nil {
		return fmt.Errorf("tpm: undefine secret: %w", err)
	}
	if err := t.lock(); err != nil {
		return err
	}
	defer t.mu.Unlock()
	err := t.nvUndefine(ctx, s.Handle, tpm2.TPM2BName{Buffer: s.Name})
	if handleGoneRC(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tpm: undefine secret: %w", nvErr(err))
	}
	return nil
}

// nvUndefine is TPM2_NV_UndefineSpace. t.mu must be held.
func (t *TPM) nvUndefine(ctx context.Context, handle uint32, name tpm2.TPM2BName) error {
	return t.withSession(ctx, nil, encryptNone, func() error {
		_, err := t.send(&command{
			cc:      tpm2.TPMCCNVUndefineSpace,
			handles: []tpm2.TPMHandle{tpm2.TPMRHOwner, tpm2.TPMHandle(handle)},
			names:   []tpm2.TPM2BName{ownerName, name},
			auth:    sessionAuth,
		})
		return err
	}, nil)
}

// Secrets lists the secret indices defined on the TPM in the library's
// range, whoever defined them: TPM2_GetCapability (TPM_CAP_HANDLES), then
// TPM2_NV_ReadPublic of each to keep those with the attributes and policy
// of a secret index. A caller that knows which are alive (the containers
// it stores) finds the orphans left by a crash and undefines them with
// UndefineSecret.
func (t *TPM) Secrets(ctx context.Context) ([]NVSecret, error) {
	if err := t.lock(); err != nil {
		return nil, err
	}
	defer t.mu.Unlock()
	hs, err := t.handles(ctx, NVFirst)
	if err != nil {
		return nil, fmt.Errorf("tpm: list secrets: %w", err)
	}
	var out []NVSecret
	for _, h := range hs {
		if uint32(h) > NVLast {
			break
		}
		var rsp *response
		err := t.run(ctx, func() (err error) {
			rsp, err = t.send(&command{cc: tpm2.TPMCCNVReadPublic, handles: []tpm2.TPMHandle{h}})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("tpm: list secrets: read public %#x: %w", uint32(h), err)
		}
		pub, rest, ok := cut2B(rsp.params)
		if !ok {
			return nil, fmt.Errorf("tpm: list secrets: %w", errMalformed)
		}
		name, _, ok := cut2B(rest)
		if !ok {
			return nil, fmt.Errorf("tpm: list secrets: %w", errMalformed)
		}
		if len(pub) != 4+2+4+2+sha256.Size+2 {
			continue
		}
		size := int(binary.BigEndian.Uint16(pub[len(pub)-2:]))
		attrs := binary.BigEndian.Uint32(pub[6:])
		if !bytes.Equal(pub, nvPublic(uint32(h), attrs, size)) || attrs&^nvWritten != secretNVAttrs {
			continue
		}
		if !bytes.Equal(nvName(pub).Buffer, name) {
			return nil, fmt.Errorf("tpm: list secrets: %w: the TPM reports another Name for %#x", errMalformed, uint32(h))
		}
		out = append(out, NVSecret{Handle: uint32(h), Name: bytes.Clone(name)})
	}
	return out, nil
}
