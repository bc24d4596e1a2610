//go:build cgo

package pkcs11

import (
	"context"
	"testing"

	p11 "github.com/miekg/pkcs11"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/protector"
)

var tokenSchemes = []protector.Scheme{protector.RSAOAEP3072, protector.HPKEP256}

var binding = protector.Binding{
	TenantID:    "8f6ba4d2-5bd9-4e0a-9c43-0d1c6f2b7a11",
	UserID:      "3b1e0c9a-7d44-4f2e-a8b5-6c2d9e1f0a37",
	ContainerID: "{FA0DB076-A5D7-4844-82D8-50A2FB42EC7B}",
}

func wrapTo(t testing.TB, k protector.ServiceKey, b protector.Binding) (*protector.Key, *protector.Envelope) {
	t.Helper()
	r, err := protector.NewKey(nil)
	require.NoError(t, err)
	t.Cleanup(r.Destroy)
	env, err := k.Wrap(r, b, nil)
	require.NoError(t, err)
	return r, env
}

func TestPKCS11UnwrapInTheToken(t *testing.T) {
	tok := openToken(t)
	for _, s := range tokenSchemes {
		t.Run(s.String(), func(t *testing.T) {
			k, err := tok.Generate(s)
			require.NoError(t, err)
			assert.Equal(t, s, k.Public().Scheme())
			r, env := wrapTo(t, k.Public(), binding)
			got, err := k.Unwrap(env)
			require.NoError(t, err)
			defer got.Destroy()
			assert.True(t, got.Equal(r))

			// Every byte is authenticated, the binding included, with the
			// private operation in the token.
			raw, err := env.MarshalBinary()
			require.NoError(t, err)
			for i := range raw {
				if i < len(raw)-1 && i%7 != 0 { // every 7th byte and the last: enough to cross every field
					continue
				}
				bad := append([]byte(nil), raw...)
				bad[i] ^= 0x01
				benv, err := protector.ParseEnvelope(bad)
				if err != nil {
					continue
				}
				_, err = k.Unwrap(benv)
				assert.Error(t, err, "byte %d flipped", i)
				if err != nil && benv.KeyID() == k.Public().ID() {
					assert.ErrorIs(t, err, protector.ErrDecrypt, "byte %d flipped", i)
				}
			}
		})
	}
	for _, s := range []protector.Scheme{protector.HPKEX25519, protector.HPKEXWing} {
		_, err := tok.Generate(s)
		assert.ErrorIs(t, err, protector.ErrUnsupported, "%v has no token mechanism", s)
	}
}

// TestPKCS11PrivateKeyNeverReadable: the token refuses to give out the
// private key, in any way the PKCS #11 interface offers a caller holding
// the user PIN.
func TestPKCS11PrivateKeyNeverReadable(t *testing.T) {
	tok := openToken(t)
	for _, s := range tokenSchemes {
		t.Run(s.String(), func(t *testing.T) {
			k, err := tok.Generate(s)
			require.NoError(t, err)
			secret := []uint{p11.CKA_VALUE}
			if s == protector.RSAOAEP3072 {
				secret = []uint{p11.CKA_PRIVATE_EXPONENT, p11.CKA_PRIME_1, p11.CKA_PRIME_2, p11.CKA_EXPONENT_1, p11.CKA_EXPONENT_2, p11.CKA_COEFFICIENT}
			}
			require.NoError(t, tok.do("test", func(sh p11.SessionHandle) error {
				for _, a := range secret {
					_, err := tok.ctx.GetAttributeValue(sh, k.priv.handle(), []*p11.Attribute{p11.NewAttribute(a, nil)})
					assert.True(t, isCode(err, p11.CKR_ATTRIBUTE_SENSITIVE), "attribute 0x%x: %v", a, err)
				}
				flags, err := tok.ctx.GetAttributeValue(sh, k.priv.handle(), []*p11.Attribute{
					p11.NewAttribute(p11.CKA_SENSITIVE, nil), p11.NewAttribute(p11.CKA_EXTRACTABLE, nil),
					p11.NewAttribute(p11.CKA_ALWAYS_SENSITIVE, nil), p11.NewAttribute(p11.CKA_NEVER_EXTRACTABLE, nil),
					p11.NewAttribute(p11.CKA_TOKEN, nil),
				})
				require.NoError(t, err)
				want := []byte{1, 0, 1, 1, 1}
				for i, f := range flags {
					assert.Equal(t, []byte{want[i]}, f.Value, "attribute 0x%x", f.Type)
				}
				// Neither can it be made readable or extractable...
				err = tok.ctx.SetAttributeValue(sh, k.priv.handle(), []*p11.Attribute{p11.NewAttribute(p11.CKA_EXTRACTABLE, true)})
				assert.Error(t, err, "CKA_EXTRACTABLE cannot be set back to true")
				err = tok.ctx.SetAttributeValue(sh, k.priv.handle(), []*p11.Attribute{p11.NewAttribute(p11.CKA_SENSITIVE, false)})
				assert.Error(t, err, "CKA_SENSITIVE cannot be set back to false")
				// ... nor wrapped out under a key the caller knows.
				wk, err := tok.ctx.CreateObject(sh, []*p11.Attribute{
					p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY), p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
					p11.NewAttribute(p11.CKA_TOKEN, false), p11.NewAttribute(p11.CKA_WRAP, true),
					p11.NewAttribute(p11.CKA_VALUE, make([]byte, 32)),
				})
				require.NoError(t, err)
				defer tok.ctx.DestroyObject(sh, wk)
				for _, m := range []uint{p11.CKM_AES_KEY_WRAP_PAD, p11.CKM_AES_KEY_WRAP} {
					out, err := tok.ctx.WrapKey(sh, []*p11.Mechanism{p11.NewMechanism(m, nil)}, wk, k.priv.handle())
					assert.Error(t, err, "mechanism 0x%x wrapped the private key", m)
					assert.Empty(t, out)
				}
				return nil
			}))
		})
	}
}

// TestPKCS11Rotation: a new key is made in the token and becomes current;
// the old one opens its envelopes until destroyed; the keys outlive the
// Token (they are token objects).
func TestPKCS11Rotation(t *testing.T) {
	tok := openToken(t)
	old, err := tok.Generate(protector.RSAOAEP3072)
	require.NoError(t, err)
	rOld, envOld := wrapTo(t, old.Public(), binding)
	cur, err := tok.Generate(protector.HPKEP256)
	require.NoError(t, err)
	rCur, envCur := wrapTo(t, cur.Public(), binding)

	keys, err := tok.Unwrappers()
	require.NoError(t, err)
	require.Len(t, keys, 2)
	assert.True(t, keys[0].Public().Equal(cur.Public()), "the newest key is current")
	assert.True(t, keys[1].Public().Equal(old.Public()))
	for _, c := range []struct {
		k   protector.Unwrapper
		env *protector.Envelope
		r   *protector.Key
	}{{keys[1], envOld, rOld}, {keys[0], envCur, rCur}} {
		got, err := c.k.Unwrap(c.env)
		require.NoError(t, err)
		assert.True(t, got.Equal(c.r))
		got.Destroy()
	}

	require.NoError(t, tok.Destroy(old.Public().ID()))
	assert.ErrorIs(t, tok.Destroy(old.Public().ID()), ErrNoSuchKey)
	after, err := tok.Keys()
	require.NoError(t, err)
	require.Len(t, after, 1)
	assert.True(t, after[0].Public().Equal(cur.Public()))
	_, err = after[0].Unwrap(envOld)
	assert.ErrorIs(t, err, protector.ErrUnknownKey)
}

func TestPKCS11Ping(t *testing.T) {
	tok := openToken(t)
	require.NoError(t, tok.Ping(context.Background()))
	require.NoError(t, tok.Close())
	assert.ErrorIs(t, tok.Ping(context.Background()), ErrTokenClosed)
	_, err := tok.Keys()
	assert.ErrorIs(t, err, ErrTokenClosed)
}

func TestPKCS11OpenRefusesUnknownToken(t *testing.T) {
	tokenOnce.Do(setupToken)
	if tokenSkip != "" {
		t.Skip(tokenSkip)
	}
	cfg := tokenCfg
	cfg.TokenLabel = "no-such-token"
	_, err := Open(cfg)
	assert.ErrorIs(t, err, ErrTokenNotFound)
	cfg = tokenCfg
	cfg.PIN = "wrong-pin"
	_, err = Open(cfg)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "wrong-pin", "the PIN is never in an error")
}

// TestPKCS11RecoversFromLostSessionsAndLogin: the token logs the
// application out, then every session is closed behind the Token's back
// (as when an HSM restarts); the next operations open new sessions, log in
// again and find the key's objects again, with no new Token.
func TestPKCS11RecoversFromLostSessionsAndLogin(t *testing.T) {
	tok := openToken(t)
	for _, s := range tokenSchemes {
		t.Run(s.String(), func(t *testing.T) {
			k, err := tok.Generate(s)
			require.NoError(t, err)
			r, env := wrapTo(t, k.Public(), binding)
			unwrap := func(what string) {
				t.Helper()
				got, err := k.Unwrap(env)
				require.NoError(t, err, what)
				assert.True(t, got.Equal(r), what)
				got.Destroy()
			}
			unwrap("before")

			require.NoError(t, tok.do("test", func(sh p11.SessionHandle) error { return tok.ctx.Logout(sh) }))
			unwrap("after a logout")

			for range tok.size {
				sh := <-tok.pool
				require.NoError(t, tok.ctx.CloseSession(sh))
				tok.pool <- sh
			}
			unwrap("after every session was closed")
			require.NoError(t, tok.Ping(context.Background()))
			keys, err := tok.Keys()
			require.NoError(t, err)
			assert.NotEmpty(t, keys)
		})
	}
}

// TestPKCS11TokenGoneIsUnavailableNotADecryptionFailure: when the token
// cannot be used, Unwrap says ErrKeyUnavailable, not ErrDecrypt, so the
// service answers 503 and counts no failure against the user.
func TestPKCS11TokenGoneIsUnavailableNotADecryptionFailure(t *testing.T) {
	tok := openToken(t)
	cfg := tokenCfg
	cfg.Label = tok.label
	var envs []*protector.Envelope
	var keys []*Key
	for _, s := range tokenSchemes {
		k, err := tok.Generate(s)
		require.NoError(t, err)
		_, env := wrapTo(t, k.Public(), binding)
		keys, envs = append(keys, k), append(envs, env)
	}
	require.NoError(t, tok.Close())
	for i, k := range keys {
		_, err := k.Unwrap(envs[i])
		assert.ErrorIs(t, err, protector.ErrKeyUnavailable, "%v", k.Public().Scheme())
		assert.NotErrorIs(t, err, protector.ErrDecrypt, "%v", k.Public().Scheme())
	}
	// Tidy the token the test used.
	again, err := Open(cfg)
	require.NoError(t, err)
	defer again.Close()
	for _, k := range keys {
		assert.NoError(t, again.Destroy(k.Public().ID()))
	}
}
