package protector

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/cryptobyte"
)

func TestWrapUnwrapRoundTrip(t *testing.T) {
	for _, s := range allSchemes {
		t.Run(s.String(), func(t *testing.T) {
			t.Parallel()
			r := newKey(t)
			env, raw := wrap(t, s, r, testBinding)
			assert.Equal(t, s, env.Scheme())
			assert.Equal(t, testKey(t, s).Public().ID(), env.KeyID())
			assert.Equal(t, testBinding, env.Binding())
			assert.Equal(t, 1, env.Version())
			assert.Equal(t, raw[:4], []byte("HSPR"))

			parsed, err := ParseEnvelope(raw)
			require.NoError(t, err)
			assert.True(t, parsed.Equal(env))
			got, err := testKey(t, s).Unwrap(parsed)
			require.NoError(t, err)
			defer got.Destroy()
			assert.True(t, got.Equal(r), "unwrapped protector differs")

			// Two wraps of one protector differ: fresh randomness each time.
			_, raw2 := wrap(t, s, r, testBinding)
			assert.NotEqual(t, raw, raw2)
		})
	}
}

func TestEnvelopeSizes(t *testing.T) {
	want := map[Scheme]int{HPKEX25519: 32, HPKEXWing: 1120, RSAOAEP3072: 0, HPKEP256: 65}
	for _, s := range allSchemes {
		env, raw := wrap(t, s, newKey(t), testBinding)
		assert.Len(t, env.enc, want[s], "%v enc", s)
		header := 4 + 1 + 1 + 16 + 3 + len(testBinding.TenantID) + len(testBinding.UserID) + len(testBinding.ContainerID)
		assert.Len(t, raw, header+2+want[s]+2+s.ctSize(), "%v envelope", s)
		assert.LessOrEqual(t, len(raw), MaxEnvelopeSize)
	}
}

// An attacker who relabels an envelope (another tenant, user or container)
// or rewrites its header gets nothing: the binding is authenticated.
func TestUnwrapRefusesChangedBinding(t *testing.T) {
	changes := map[string]func(e *Envelope){
		"other tenant":    func(e *Envelope) { e.binding.TenantID = "00000000-0000-0000-0000-000000000000" },
		"other user":      func(e *Envelope) { e.binding.UserID = "00000000-0000-0000-0000-000000000000" },
		"other container": func(e *Envelope) { e.binding.ContainerID = "{00000000-0000-0000-0000-000000000000}" },
		"tenant case":     func(e *Envelope) { e.binding.TenantID = strings.ToUpper(e.binding.TenantID) },
		"fields swapped": func(e *Envelope) {
			e.binding.TenantID, e.binding.UserID = e.binding.UserID, e.binding.TenantID
		},
	}
	for _, s := range allSchemes {
		env, _ := wrap(t, s, newKey(t), testBinding)
		for name, change := range changes {
			t.Run(s.String()+"/"+name, func(t *testing.T) {
				forged := *env
				change(&forged)
				_, err := testKey(t, s).Unwrap(&forged)
				assert.ErrorIs(t, err, ErrDecrypt)
			})
		}
	}
}

func TestUnwrapRefusesOtherKey(t *testing.T) {
	for _, s := range allSchemes {
		t.Run(s.String(), func(t *testing.T) {
			other, err := GenerateServiceKey(s)
			require.NoError(t, err)
			env, _ := wrap(t, s, newKey(t), testBinding)

			_, err = other.Unwrap(env)
			assert.ErrorIs(t, err, ErrUnknownKey, "an envelope naming another key")

			// Relabelled to name the other key, it still does not open.
			forged := *env
			forged.keyID = other.pub.id
			_, err = other.Unwrap(&forged)
			assert.ErrorIs(t, err, ErrDecrypt)

			// A key of another scheme refuses on the scheme.
			for _, s2 := range allSchemes {
				if s2 != s {
					_, err = testKey(t, s2).Unwrap(env)
					assert.ErrorIs(t, err, ErrUnknownKey)
				}
			}
		})
	}
}

// Every single-bit change anywhere in an envelope is refused, by the parser
// or by Unwrap. With -short, bits past the header are sampled (every 7th).
func TestEveryBitFlipFails(t *testing.T) {
	for _, s := range allSchemes {
		t.Run(s.String(), func(t *testing.T) {
			t.Parallel()
			priv := testKey(t, s)
			_, raw := wrap(t, s, newKey(t), testBinding)
			var parseRefused, unknownKey, decrypt int
			flipped := make([]byte, len(raw))
			header := 4 + 1 + 1 + keyIDSize + 3 + len(testBinding.TenantID) + len(testBinding.UserID) + len(testBinding.ContainerID) + 2
			tested := 0
			for bit := range len(raw) * 8 {
				if testing.Short() && bit/8 >= header && bit%7 != 0 {
					continue
				}
				tested++
				copy(flipped, raw)
				flipped[bit/8] ^= 1 << (bit % 8)
				env, err := ParseEnvelope(flipped)
				if err != nil {
					parseRefused++
					continue
				}
				r, err := priv.Unwrap(env)
				switch {
				case err == nil:
					r.Destroy()
					t.Fatalf("bit %d (byte %d) flipped, and Unwrap still succeeded", bit, bit/8)
				case errors.Is(err, ErrUnknownKey):
					unknownKey++
				case errors.Is(err, ErrDecrypt):
					decrypt++
				default:
					t.Fatalf("bit %d: unexpected error %v", bit, err)
				}
			}
			t.Logf("%d of %d bits: %d refused by the parser, %d unknown key, %d failed to decrypt",
				tested, len(raw)*8, parseRefused, unknownKey, decrypt)
			assert.Equal(t, 16*8, unknownKey, "exactly the key ID bits give ErrUnknownKey")
			assert.Equal(t, tested, parseRefused+unknownKey+decrypt)
			assert.Positive(t, decrypt)
		})
	}
}

func TestParseEnvelopeRefusesTruncation(t *testing.T) {
	for _, s := range allSchemes {
		_, raw := wrap(t, s, newKey(t), testBinding)
		for n := range len(raw) {
			_, err := ParseEnvelope(raw[:n])
			require.ErrorIs(t, err, ErrMalformed, "%v truncated to %d bytes", s, n)
			var ee *EnvelopeError
			require.ErrorAs(t, err, &ee)
		}
	}
}

func TestParseEnvelopeRefusesTrailingBytes(t *testing.T) {
	for _, s := range allSchemes {
		_, raw := wrap(t, s, newKey(t), testBinding)
		for _, extra := range [][]byte{{0}, {0xff}, raw} {
			_, err := ParseEnvelope(append(bytes.Clone(raw), extra...))
			assert.ErrorIs(t, err, ErrMalformed, "%v + %d bytes", s, len(extra))
		}
	}
}

// rawEnvelope builds envelope bytes field by field, valid or not.
func rawEnvelope(magic string, version, scheme uint8, kid []byte, b [3]string, enc, ct []byte) []byte {
	var bb cryptobyte.Builder
	bb.AddBytes([]byte(magic))
	bb.AddUint8(version)
	bb.AddUint8(scheme)
	bb.AddBytes(kid)
	for _, v := range b {
		bb.AddUint8LengthPrefixed(func(bb *cryptobyte.Builder) { bb.AddBytes([]byte(v)) })
	}
	bb.AddUint16LengthPrefixed(func(bb *cryptobyte.Builder) { bb.AddBytes(enc) })
	bb.AddUint16LengthPrefixed(func(bb *cryptobyte.Builder) { bb.AddBytes(ct) })
	return bb.BytesOrPanic()
}

func TestParseEnvelopeRefusesBadFields(t *testing.T) {
	kid := make([]byte, 16)
	good := [3]string{"t", "u", "c"}
	enc, ct := make([]byte, 32), make([]byte, 48)
	valid := rawEnvelope("HSPR", 1, 1, kid, good, enc, ct)
	_, err := ParseEnvelope(valid)
	require.NoError(t, err, "the baseline must parse")

	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"wrong magic", rawEnvelope("HSPQ", 1, 1, kid, good, enc, ct), ErrMalformed},
		{"version 0", rawEnvelope("HSPR", 0, 1, kid, good, enc, ct), ErrUnsupported},
		{"version 2 without a device ID", rawEnvelope("HSPR", 2, 1, kid, good, enc, ct), ErrMalformed},
		{"version 3", rawEnvelope("HSPR", 3, 1, kid, good, enc, ct), ErrUnsupported},
		{"version 255", rawEnvelope("HSPR", 255, 1, kid, good, enc, ct), ErrUnsupported},
		{"scheme 0", rawEnvelope("HSPR", 1, 0, kid, good, enc, ct), ErrUnsupported},
		{"scheme 5", rawEnvelope("HSPR", 1, 5, kid, good, enc, ct), ErrUnsupported},
		{"P-256 with X25519 enc", rawEnvelope("HSPR", 1, 4, kid, good, enc, ct), ErrMalformed},
		{"empty tenant", rawEnvelope("HSPR", 1, 1, kid, [3]string{"", "u", "c"}, enc, ct), ErrMalformed},
		{"empty user", rawEnvelope("HSPR", 1, 1, kid, [3]string{"t", "", "c"}, enc, ct), ErrMalformed},
		{"empty container", rawEnvelope("HSPR", 1, 1, kid, [3]string{"t", "u", ""}, enc, ct), ErrMalformed},
		{"tenant not UTF-8", rawEnvelope("HSPR", 1, 1, kid, [3]string{"t\xff", "u", "c"}, enc, ct), ErrMalformed},
		{"enc too short", rawEnvelope("HSPR", 1, 1, kid, good, enc[:31], ct), ErrMalformed},
		{"enc too long", rawEnvelope("HSPR", 1, 1, kid, good, make([]byte, 33), ct), ErrMalformed},
		{"ct too short", rawEnvelope("HSPR", 1, 1, kid, good, enc, ct[:47]), ErrMalformed},
		{"ct too long", rawEnvelope("HSPR", 1, 1, kid, good, enc, make([]byte, 49)), ErrMalformed},
		{"X-Wing with X25519 enc", rawEnvelope("HSPR", 1, 2, kid, good, enc, ct), ErrMalformed},
		{"RSA with an enc", rawEnvelope("HSPR", 1, 3, kid, good, enc, make([]byte, 384)), ErrMalformed},
		{"RSA with HPKE ct", rawEnvelope("HSPR", 1, 3, kid, good, nil, ct), ErrMalformed},
		{"oversize", make([]byte, MaxEnvelopeSize+1), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := ParseEnvelope(tt.data)
			assert.Nil(t, env)
			assert.ErrorIs(t, err, tt.want)
			var ee *EnvelopeError
			if assert.ErrorAs(t, err, &ee) {
				assert.NotEmpty(t, ee.Field)
				assert.NotEmpty(t, ee.Reason)
			}
		})
	}
}

func TestParseEnvelopeDoesNotAliasInput(t *testing.T) {
	_, raw := wrap(t, HPKEX25519, newKey(t), testBinding)
	env, err := ParseEnvelope(raw)
	require.NoError(t, err)
	clear(raw)
	_, err = env.MarshalBinary()
	require.NoError(t, err)
	r, err := testKey(t, HPKEX25519).Unwrap(env)
	require.NoError(t, err, "the envelope must own its bytes")
	r.Destroy()
}

func TestMarshalBinaryRefusesZeroEnvelope(t *testing.T) {
	_, err := (&Envelope{}).MarshalBinary()
	assert.Error(t, err)
	_, err = testKey(t, HPKEX25519).Unwrap(&Envelope{})
	assert.Error(t, err)
	_, err = testKey(t, HPKEX25519).Unwrap(nil)
	assert.ErrorIs(t, err, ErrMalformed)
}

func TestEnvelopeText(t *testing.T) {
	env, raw := wrap(t, HPKEXWing, newKey(t), testBinding)
	text, err := env.MarshalText()
	require.NoError(t, err)
	assert.NotContains(t, string(text), "=")

	var got Envelope
	require.NoError(t, got.UnmarshalText(text))
	again, err := got.MarshalBinary()
	require.NoError(t, err)
	assert.Equal(t, raw, again)

	// In JSON, as the service's request body carries it.
	type request struct {
		Envelope *Envelope `json:"envelope"`
	}
	js, err := json.Marshal(request{env})
	require.NoError(t, err)
	var req request
	require.NoError(t, json.Unmarshal(js, &req))
	assert.True(t, req.Envelope.Equal(env))

	for _, bad := range []string{
		string(text) + "=",                         // padding
		strings.ReplaceAll(string(text), "-", "+"), // standard alphabet
		string(text[:len(text)-1]),                 // truncated
		"!!!!",
		strings.Repeat("A", 2*MaxEnvelopeSize), // too long
	} {
		var e Envelope
		assert.ErrorIs(t, e.UnmarshalText([]byte(bad)), ErrMalformed, "%.20q", bad)
	}
}

func TestWrapRefusesBadBinding(t *testing.T) {
	pub := testKey(t, HPKEX25519).Public()
	long := strings.Repeat("a", MaxBindingLength+1)
	for name, b := range map[string]Binding{
		"zero":           {},
		"no tenant":      {UserID: "u", ContainerID: "c"},
		"no user":        {TenantID: "t", ContainerID: "c"},
		"no container":   {TenantID: "t", UserID: "u"},
		"long tenant":    {TenantID: long, UserID: "u", ContainerID: "c"},
		"invalid UTF-8":  {TenantID: "t", UserID: "\xc3", ContainerID: "c"},
		"long container": {TenantID: "t", UserID: "u", ContainerID: long},
	} {
		_, err := pub.Wrap(newKey(t), b, nil)
		assert.ErrorIs(t, err, ErrInvalidBinding, name)
		var be *BindingError
		assert.ErrorAs(t, err, &be, name)
	}
	// The longest allowed binding fits in MaxEnvelopeSize under every scheme.
	max := strings.Repeat("é", MaxBindingLength/2) + "x"
	for _, s := range allSchemes {
		_, raw := wrap(t, s, newKey(t), Binding{max, max, max, max})
		assert.LessOrEqual(t, len(raw), MaxEnvelopeSize)
	}
}

func TestWrapRefusesZeroServiceKeyAndDestroyedKey(t *testing.T) {
	_, err := ServiceKey{}.Wrap(newKey(t), testBinding, nil)
	assert.ErrorIs(t, err, ErrInvalidKey)

	r := newKey(t)
	r.Destroy()
	_, err = testKey(t, HPKEX25519).Public().Wrap(r, testBinding, nil)
	assert.ErrorIs(t, err, ErrDestroyed)
}

func TestEnvelopeStringHasNoSecret(t *testing.T) {
	r := fixedKey(t)
	env, _ := wrap(t, HPKEX25519, r, testBinding)
	s := env.String()
	assert.Contains(t, s, env.KeyID())
	assert.Contains(t, s, testBinding.TenantID)
	assert.NotContains(t, s, "000102030405")
}

func TestSizeConstants(t *testing.T) {
	assert.Equal(t, 2554, MaxEnvelopeSize)
	assert.Equal(t, 4+1+1+keyIDSize+4*(1+MaxBindingLength)+2+xwingEncSize+2+rsaCtSize, MaxEnvelopeSize)
	assert.Equal(t, x25519EncSize+hpkeCtSize, ReturnSealedSize)
}
