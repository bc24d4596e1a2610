package keycred

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testAssertion() Assertion {
	now := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	return Assertion{
		Issuer: "jane@contoso.com", Audience: "8d1b1c4c-0000-4000-8000-000000000001",
		Nonce: "AwABAAEAAAACAOz_BAD0_nonce", Scope: "openid aza ugs",
		IssuedAt: now, Expiry: now.Add(5 * time.Minute),
	}
}

func TestAssertionSignedByHelloKeyVerifies(t *testing.T) {
	t.Parallel()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	for name, signer := range map[string]crypto.Signer{"rsa": rk, "p256": ek} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tok, err := SignAssertion(signer, testAssertion())
			require.NoError(t, err)

			// The header names the key as the directory does.
			hdr := decodeSegment(t, tok, 0)
			blob, err := MarshalPublicKey(signer.Public())
			require.NoError(t, err)
			assert.Equal(t, Identifier(blob), hdr["kid"])
			assert.Equal(t, "ngc", hdr["use"])
			assert.Equal(t, "JWT", hdr["typ"])
			want := map[string]string{"rsa": "RS256", "p256": "ES256"}[name]
			assert.Equal(t, want, hdr["alg"])
			kid, err := AssertionKeyID(tok)
			require.NoError(t, err)
			assert.Equal(t, Identifier(blob), kid)

			got, err := VerifyAssertion(tok, signer.Public())
			require.NoError(t, err)
			assert.Equal(t, testAssertion(), *got)
		})
	}
}

func decodeSegment(t *testing.T, tok string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3)
	raw, err := base64.RawURLEncoding.DecodeString(parts[i])
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	return m
}

func TestVerifyAssertionRefusals(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	good, err := SignAssertion(key, testAssertion())
	require.NoError(t, err)
	kid, err := PublicKeyIdentifier(&key.PublicKey)
	require.NoError(t, err)

	// forge signs with signer, whatever kid the header claims.
	forge := func(signer any, alg jose.SignatureAlgorithm, hdr map[jose.HeaderKey]any, payload string) string {
		return signJWS(t, signer, alg, hdr, payload)
	}
	payload := `{"iss":"jane@contoso.com","aud":"t","iat":1,"exp":2,"request_nonce":"n"}`
	hdr := map[jose.HeaderKey]any{"kid": kid, "use": "ngc"}
	parts := strings.Split(good, ".")

	for _, tc := range []struct {
		name  string
		token string
		pub   crypto.PublicKey
		want  error
	}{
		{"wrong key", good, &other.PublicKey, ErrAssertionKey},
		{"kid of the key, signed by another", forge(other, jose.RS256, hdr, payload), &key.PublicKey, ErrAssertionSignature},
		{"payload changed", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + parts[2], &key.PublicKey, ErrAssertionSignature},
		{"signature cut", parts[0] + "." + parts[1] + ".", &key.PublicKey, ErrAssertionSignature},
		{"no use header", forge(key, jose.RS256, map[jose.HeaderKey]any{"kid": kid}, payload), &key.PublicKey, ErrAssertion},
		{"use sig", forge(key, jose.RS256, map[jose.HeaderKey]any{"kid": kid, "use": "sig"}, payload), &key.PublicKey, ErrAssertion},
		{"no kid", forge(key, jose.RS256, map[jose.HeaderKey]any{"use": "ngc"}, payload), &key.PublicKey, ErrAssertion},
		{"PS256 not RS256", forge(key, jose.PS256, hdr, payload), &key.PublicKey, ErrAssertion},
		{"HS256", forge([]byte("0123456789abcdef0123456789abcdef"), jose.HS256, hdr, payload), &key.PublicKey, ErrAssertion},
		{"alg none", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"`+kid+`","use":"ngc"}`)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".", &key.PublicKey, ErrAssertion},
		{"no nonce", forge(key, jose.RS256, hdr, `{"iss":"a","aud":"t","iat":1,"exp":2}`), &key.PublicKey, ErrAssertion},
		{"aud not a string", forge(key, jose.RS256, hdr, `{"iss":"a","aud":["t"],"iat":1,"exp":2,"request_nonce":"n"}`), &key.PublicKey, ErrAssertion},
		{"not JSON", forge(key, jose.RS256, hdr, `not json`), &key.PublicKey, ErrAssertion},
		{"JSON serialization", `{"payload":"e30","signatures":[]}`, &key.PublicKey, ErrAssertion},
		{"empty", "", &key.PublicKey, ErrAssertion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := VerifyAssertion(tc.token, tc.pub)
			assert.ErrorIs(t, err, tc.want)
		})
	}
}

// signJWS signs payload with key under alg, hdr as its extra headers.
func signJWS(t *testing.T, key any, alg jose.SignatureAlgorithm, hdr map[jose.HeaderKey]any, payload string) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, &jose.SignerOptions{ExtraHeaders: hdr})
	require.NoError(t, err)
	jws, err := s.Sign([]byte(payload))
	require.NoError(t, err)
	out, err := jws.CompactSerialize()
	require.NoError(t, err)
	return out
}

func TestSignAssertionRefusesIncompleteClaims(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	a := testAssertion()
	a.Nonce = ""
	_, err = SignAssertion(key, a)
	assert.ErrorIs(t, err, ErrAssertion)
}
