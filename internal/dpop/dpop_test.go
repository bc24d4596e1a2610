package dpop

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

// signRaw signs payload with k as an ES256 JWS made with opts.
func signRaw(t *testing.T, k *ecdsa.PrivateKey, opts *jose.SignerOptions, payload string) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, opts)
	require.NoError(t, err)
	jws, err := s.Sign([]byte(payload))
	require.NoError(t, err)
	proof, err := jws.CompactSerialize()
	require.NoError(t, err)
	return proof
}

func TestSignParseCheck(t *testing.T) {
	k := newKey(t)
	now := time.Unix(1_800_000_000, 0)
	c := Claims{HTM: "POST", HTU: "https://svc.test/v1/recover", IAT: now.Unix(), JTI: "j1", ATH: Hash([]byte("tok")), RKH: Hash([]byte("rk"))}
	proof, err := Sign(k, c)
	require.NoError(t, err)
	p, err := Parse(proof)
	require.NoError(t, err)
	jkt, err := Thumbprint(&k.PublicKey)
	require.NoError(t, err)
	assert.Equal(t, jkt, p.JKT)
	assert.Equal(t, c, p.Claims)
	e := Expect{HTM: "POST", HTU: c.HTU, ATH: c.ATH, RKH: c.RKH, JKT: jkt, Now: now, MaxAge: time.Minute, Skew: 5 * time.Second}
	require.NoError(t, p.Check(e))

	for name, mut := range map[string]func(*Expect){
		"htm":    func(e *Expect) { e.HTM = "GET" },
		"htu":    func(e *Expect) { e.HTU = "https://other.test/v1/recover" },
		"ath":    func(e *Expect) { e.ATH = Hash([]byte("other")) },
		"rkh":    func(e *Expect) { e.RKH = Hash([]byte("swapped")) },
		"jkt":    func(e *Expect) { e.JKT = "other" },
		"old":    func(e *Expect) { e.Now = now.Add(2 * time.Minute) },
		"future": func(e *Expect) { e.Now = now.Add(-time.Minute) },
	} {
		e2 := e
		mut(&e2)
		var re *ProofError
		assert.ErrorAs(t, p.Check(e2), &re, name)
	}
}

func TestParseRefusesHostileProofs(t *testing.T) {
	k := newKey(t)
	good, err := Sign(k, Claims{HTM: "POST", HTU: "u", IAT: 1, JTI: "j"})
	require.NoError(t, err)
	parts := strings.Split(good, ".")
	other, err := Sign(newKey(t), Claims{HTM: "POST", HTU: "u", IAT: 1, JTI: "j"})
	require.NoError(t, err)

	hs, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")}, (&jose.SignerOptions{}).WithType(Type))
	require.NoError(t, err)
	hsj, err := hs.Sign([]byte(`{"htm":"POST","htu":"u","iat":1,"jti":"j"}`))
	require.NoError(t, err)
	hsProof, err := hsj.CompactSerialize()
	require.NoError(t, err)

	const claims = `{"htm":"POST","htu":"u","iat":1,"jti":"j"}`
	ntProof := signRaw(t, k, &jose.SignerOptions{EmbedJWK: true}, claims)
	epProof := signRaw(t, k, (&jose.SignerOptions{}).WithType(Type).WithHeader("jwk", jose.JSONWebKey{Key: k}), claims)
	bcProof := signRaw(t, k, (&jose.SignerOptions{EmbedJWK: true}).WithType(Type), `{"htm":5}`)
	critProof := signRaw(t, k, (&jose.SignerOptions{EmbedJWK: true}).WithType(Type).WithHeader("hellosim-ext", true).WithCritical("hellosim-ext"), claims)

	for name, tc := range map[string]struct{ proof, reason string }{
		"empty":             {"", "empty"},
		"swapped signature": {parts[0] + "." + parts[1] + "." + strings.Split(other, ".")[2], "bad signature"},
		"hmac":              {hsProof, "malformed or algorithm not allowed"},
		"no typ":            {ntProof, "typ is not dpop+jwt"},
		"private jwk":       {epProof, ""},
		"malformed claims":  {bcProof, "malformed claims"},
		"unknown crit":      {critProof, "unsupported critical header"},
		"garbage":           {"a.b.c", "malformed or algorithm not allowed"},
		"too large":         {strings.Repeat("a", MaxProofBytes+1), "too large"},
		"four parts":        {good + ".x", "not a compact JWS"},
	} {
		_, err := Parse(tc.proof)
		var re *ProofError
		require.ErrorAs(t, err, &re, name)
		if tc.reason != "" {
			assert.Equal(t, tc.reason, re.Reason, name)
		}
	}
}

func FuzzParse(f *testing.F) {
	k := newKey(f)
	good, err := Sign(k, Claims{HTM: "POST", HTU: "u", IAT: 1, JTI: "j", ATH: "a", RKH: "r"})
	require.NoError(f, err)
	f.Add(good)
	f.Add("e30.e30.e30")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err == nil && (p.JKT == "" || p.JTI == "") {
			t.Fatal("accepted proof without key or jti")
		}
		if p != nil {
			_ = p.Check(Expect{Now: time.Unix(1, 0)})
		}
	})
}
