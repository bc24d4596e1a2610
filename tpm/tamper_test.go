package tpm_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// tamperer is an attacker on the TPM bus: it lets commands through to the
// real TPM and changes the next response to a command with code cc, after
// the TPM has executed the command. Everything else passes unchanged.
type tamperer struct {
	transport.TPM
	mu    sync.Mutex
	cc    tpm2.TPMCC
	edit  func(rsp []byte) []byte
	fired bool
}

func (m *tamperer) arm(cc tpm2.TPMCC, edit func([]byte) []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cc, m.edit, m.fired = cc, edit, false
}

func (m *tamperer) Send(cmd []byte) ([]byte, error) {
	rsp, err := m.TPM.Send(cmd)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil && m.edit != nil && len(cmd) >= 10 && tpm2.TPMCC(binary.BigEndian.Uint32(cmd[6:10])) == m.cc {
		rsp = m.edit(bytes.Clone(rsp))
		m.edit, m.fired = nil, true
	}
	return rsp, err
}

// Offsets in a successful response with one session and no response
// handles (TPM 2.0 Part 1 §18.8): header (10), parameterSize (4),
// parameters, then TPMS_AUTH_RESPONSE: nonceTPM (2+32), sessionAttributes
// (1), hmac (2+32).
const (
	rspParams  = 14
	authTail   = 2 + 32 + 1 + 2 + 32
	hmacFromE  = 1      // last byte of the HMAC, from the end
	attrFromE  = 2 + 33 // sessionAttributes, from the end
	nonceFromE = 1 + 2 + 33
)

func flipAt(i func(rsp []byte) int, mask byte) func([]byte) []byte {
	return func(rsp []byte) []byte {
		rsp[i(rsp)] ^= mask
		return rsp
	}
}

func fromEnd(n int) func([]byte) int { return func(r []byte) int { return len(r) - n } }
func at(n int) func([]byte) int      { return func([]byte) int { return n } }

// forgeRC replaces a successful response with an error response: error
// responses carry no session area and are not authenticated (Part 1 §18.9).
func forgeRC(rc tpm2.TPMRC) func([]byte) []byte {
	return func([]byte) []byte { return tpmtest.ErrorAnswer(rc) }
}

// A response changed on the bus is refused: the response HMAC (Part 1
// §19.6.5) covers the parameters, the nonceTPM and the session attributes.
// The library returns an error and no secret bytes, leaves nothing loaded
// beyond the SRK and the session, costs no dictionary-attack count, and the
// next operation on the clean bus works.
func TestTamperedResponsesRefused(t *testing.T) {
	ctx := context.Background()
	secret := []byte("the container secret, 32 bytes!!")
	auth := []byte{0x5a, 0x00, 0x17, 0xc3, 0x00}
	cases := []struct {
		name string
		cc   tpm2.TPMCC
		edit func([]byte) []byte
	}{
		{"unseal: response HMAC", tpm2.TPMCCUnseal, flipAt(fromEnd(hmacFromE), 0x01)},
		{"unseal: HMAC size", tpm2.TPMCCUnseal, flipAt(fromEnd(hmacFromE+32+1), 0x01)},
		{"unseal: session attributes (continueSession cleared)", tpm2.TPMCCUnseal, flipAt(fromEnd(attrFromE), 0x01)},
		{"unseal: session attributes (encrypt cleared)", tpm2.TPMCCUnseal, flipAt(fromEnd(attrFromE), 0x40)},
		{"unseal: nonceTPM", tpm2.TPMCCUnseal, flipAt(fromEnd(nonceFromE), 0x80)},
		{"unseal: first nonceTPM byte", tpm2.TPMCCUnseal, flipAt(func(r []byte) int { return len(r) - authTail + 2 }, 0x01)},
		{"unseal: encrypted secret, first byte", tpm2.TPMCCUnseal, flipAt(at(rspParams+2), 0x01)},
		{"unseal: encrypted secret, last byte", tpm2.TPMCCUnseal, flipAt(at(rspParams+2+len(secret)-1), 0x80)},
		{"unseal: parameter size", tpm2.TPMCCUnseal, flipAt(at(rspParams-1), 0x02)},
		// TPM2_Load runs in a password session: its response is not
		// authenticated, but the Name is checked against the blob and
		// the handle must be a new one.
		{"load: object handle replaced by the SRK's", tpm2.TPMCCLoad, func(r []byte) []byte {
			binary.BigEndian.PutUint32(r[10:], 0x80000000)
			return r
		}},
		{"load: Name", tpm2.TPMCCLoad, flipAt(fromEnd(6), 0x01)},
		{"create: response HMAC", tpm2.TPMCCCreate, flipAt(fromEnd(hmacFromE), 0x01)},
		{"create: nonceTPM", tpm2.TPMCCCreate, flipAt(fromEnd(nonceFromE), 0x01)},
		{"create: outPrivate", tpm2.TPMCCCreate, flipAt(at(rspParams+2+10), 0x01)},
		{"create: outPublic", tpm2.TPMCCCreate, flipAt(func(r []byte) int {
			n := int(binary.BigEndian.Uint16(r[rspParams:]))
			return rspParams + 2 + n + 2 + 4 // inside TPMT_PUBLIC: objectAttributes
		}, 0x02)},
		{"create: outPublic size", tpm2.TPMCCCreate, flipAt(func(r []byte) int {
			return rspParams + 2 + int(binary.BigEndian.Uint16(r[rspParams:])) + 1
		}, 0x01)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := tpmtest.OpenTransport(t)
			m := &tamperer{TPM: raw}
			tp := tpmtest.OpenOn(t, m)
			b, err := tp.Seal(ctx, secret, auth)
			require.NoError(t, err)

			m.arm(tc.cc, tc.edit)
			switch tc.cc {
			case tpm2.TPMCCUnseal:
				got, err := tp.Unseal(ctx, b, auth)
				require.Error(t, err)
				assert.Nil(t, got, "no secret bytes with an error")
				assert.NotErrorIs(t, err, tpm.ErrAuthFailed, "tampering is not a wrong PIN")
				assert.NotContains(t, err.Error(), string(secret[:8]))
			case tpm2.TPMCCLoad:
				got, err := tp.Unseal(ctx, b, auth)
				require.Error(t, err)
				assert.Nil(t, got, "no secret bytes with an error")
			case tpm2.TPMCCCreate:
				nb, err := tp.Seal(ctx, []byte("another secret"), auth)
				require.Error(t, err)
				assert.Zero(t, nb, "no blob with an error")
			}
			m.mu.Lock()
			fired := m.fired
			m.mu.Unlock()
			require.True(t, fired, "the response was tampered with")

			// Nothing leaked, on the TPM's own account.
			objs, sess := rawHandles(t, raw)
			assert.Len(t, objs, 1, "only the SRK: %v", objs)
			assert.LessOrEqual(t, len(sess), 1, "at most the shared session: %v", sess)

			// The next operation on the clean bus works.
			got, err := tp.Unseal(ctx, b, auth)
			require.NoError(t, err)
			assert.Equal(t, secret, got)
			nb, err := tp.Seal(ctx, secret, auth)
			require.NoError(t, err)
			got, err = tp.Unseal(ctx, nb, auth)
			require.NoError(t, err)
			assert.Equal(t, secret, got)
			requireOnlyBaseline(t, tp, 0)
			st, err := tp.LockoutStatus(ctx)
			require.NoError(t, err)
			assert.Zero(t, st.Failures, "tampering cost no dictionary-attack count")
		})
	}
}

// Error responses carry no HMAC (Part 1 §18.9), so an attacker on the bus
// can replace a successful response with any error. That must not leave
// the library's session out of step with the TPM's (the TPM moved on to a
// new nonceTPM the library never saw): every later command would then fail
// its HMAC check, a correct PIN would read as a wrong one, and each try
// would cost a dictionary-attack count until lockout.
func TestForgedErrorResponsesDoNotDesyncTheSession(t *testing.T) {
	ctx := context.Background()
	secret := []byte("secret")
	auth := []byte("pin-derived auth")
	for _, cc := range []tpm2.TPMCC{tpm2.TPMCCUnseal, tpm2.TPMCCCreate, tpm2.TPMCCSign} {
		for _, rc := range []tpm2.TPMRC{tpm2.TPMRCFailure, tpm2.TPMRCAuthFail, tpm2.TPMRCReferenceS0, tpm2.TPMRCReferenceH0} {
			t.Run(fmt.Sprintf("%#x/%#x", uint32(cc), uint32(rc)), func(t *testing.T) {
				raw := tpmtest.OpenTransport(t)
				m := &tamperer{TPM: raw}
				tp := tpmtest.OpenOn(t, m)
				b, err := tp.Seal(ctx, secret, auth)
				require.NoError(t, err)
				kb, _, err := tp.CreateKey(ctx, tpm.ECCP256, []byte("key auth"))
				require.NoError(t, err)
				k, err := tp.LoadKey(ctx, kb, []byte("key auth"))
				require.NoError(t, err)
				defer k.Close()

				m.arm(cc, forgeRC(rc))
				switch cc {
				case tpm2.TPMCCUnseal:
					got, err := tp.Unseal(ctx, b, auth)
					if err == nil {
						// TPM_RC_REFERENCE_S0 makes the library restart the
						// session and send the command once more.
						assert.Equal(t, secret, got)
					}
				case tpm2.TPMCCCreate:
					_, _ = tp.Seal(ctx, secret, auth)
				case tpm2.TPMCCSign:
					_, _ = k.SignContext(ctx, digestOf("m"), crypto.SHA256)
				}
				for range 2 {
					got, err := tp.Unseal(ctx, b, auth)
					require.NoError(t, err, "a correct authValue after a forged %v", rc)
					assert.Equal(t, secret, got)
					d := digestOf("n")
					sig, err := k.SignContext(ctx, d, crypto.SHA256)
					require.NoError(t, err)
					verify(t, k.Public(), d, sig, crypto.SHA256)
				}
				requireOnlyBaseline(t, tp, 1)
				st, err := tp.LockoutStatus(ctx)
				require.NoError(t, err)
				assert.Zero(t, st.Failures, "a forged error cost no dictionary-attack count")
			})
		}
	}
}
