package service_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/service"
)

func TestVerifierReturnsIdPClaims(t *testing.T) {
	w := newWorld(t)
	tok := w.alice.token(t)
	c, err := mustVerifier(w.idp).Verify(context.Background(), tok)
	require.NoError(t, err)
	now := w.clk.Now()
	assert.Equal(t, w.idp.Issuer(w.tenant.ID), c.Issuer)
	assert.Equal(t, []string{identity.PINResetServiceAppID}, c.Audience)
	assert.Equal(t, w.tenant.ID, c.TenantID)
	assert.Equal(t, w.alice.user.ObjectID, c.ObjectID)
	assert.Equal(t, "alice@contoso.test", c.UPN)
	assert.Equal(t, []string{"pwd", "mfa"}, c.AMR)
	assert.True(t, c.HasMFA())
	assert.Equal(t, now, c.IssuedAt)
	assert.Equal(t, now, c.NotBefore)
	assert.Equal(t, now.Add(idp.DefaultTokenLifetime), c.Expiry)
	assert.Len(t, c.JTI, 22)
	c2, err := mustVerifier(w.idp).Verify(context.Background(), w.alice.token(t))
	require.NoError(t, err)
	assert.NotEqual(t, c.JTI, c2.JTI, "every token has its own jti")
}

func TestVerifierSkewBoundaries(t *testing.T) {
	w := newWorld(t)
	v := mustVerifier(w.idp)
	tok := w.alice.token(t)
	w.clk.Advance(idp.DefaultTokenLifetime + service.DefaultSkew - time.Second)
	_, err := v.Verify(context.Background(), tok)
	assert.NoError(t, err, "within the skew after exp")
	w.clk.Advance(time.Second)
	_, err = v.Verify(context.Background(), tok)
	assert.ErrorIs(t, err, service.ErrInvalidToken, "at exp+skew")

	c := w.claims(w.alice)
	c["nbf"] = w.clk.Now().Add(service.DefaultSkew - time.Second).Unix()
	vm := minterVerifier(t, w)
	_, err = vm.Verify(context.Background(), w.minter.sign(t, c))
	assert.NoError(t, err, "nbf within the skew")
}

func minterVerifier(t *testing.T, w *world) *service.JWTVerifier {
	v, err := service.NewJWTVerifier(service.VerifierConfig{
		Keys:   func() *jose.JSONWebKeySet { return &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{w.minter.jwk()}} },
		Issuer: w.idp.IssuerTemplate(), Audience: identity.PINResetServiceAppID, Clock: w.clk.Now,
	})
	require.NoError(t, err)
	return v
}

func TestVerifierRefusesKeyMisuse(t *testing.T) {
	w := newWorld(t)
	tok := w.minter.sign(t, w.claims(w.alice))
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	pub := w.minter.jwk()
	for name, keys := range map[string][]jose.JSONWebKey{
		"key for encryption":   {{Key: pub.Key, KeyID: pub.KeyID, Use: "enc"}},
		"key for RS256":        {{Key: pub.Key, KeyID: pub.KeyID, Algorithm: "RS256"}},
		"rsa key under kid":    {{Key: &rsaKey.PublicKey, KeyID: pub.KeyID}},
		"p384 key under kid":   {{Key: &p384.PublicKey, KeyID: pub.KeyID}},
		"two keys, same kid":   {pub, pub},
		"empty set":            {},
		"symmetric key as jwk": {{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: pub.KeyID}},
	} {
		v, err := service.NewJWTVerifier(service.VerifierConfig{
			Keys:   func() *jose.JSONWebKeySet { return &jose.JSONWebKeySet{Keys: keys} },
			Issuer: w.idp.IssuerTemplate(), Audience: identity.PINResetServiceAppID, Clock: w.clk.Now,
		})
		require.NoError(t, err)
		_, err = v.Verify(context.Background(), tok)
		assert.ErrorIs(t, err, service.ErrInvalidToken, name)
	}
	_, err = minterVerifier(t, w).Verify(context.Background(), tok)
	assert.NoError(t, err, "control: the right key verifies")
}

func TestVerifierRefusesEmbeddedKey(t *testing.T) {
	w := newWorld(t)
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k},
		(&jose.SignerOptions{EmbedJWK: true}).WithHeader("kid", w.minter.kid))
	require.NoError(t, err)
	tok, err := jwt.Signed(s).Claims(w.claims(w.alice)).Serialize()
	require.NoError(t, err)
	_, err = minterVerifier(t, w).Verify(context.Background(), tok)
	assert.ErrorIs(t, err, service.ErrInvalidToken)

	// The trusted key itself, embedded: the signature verifies under kid, so
	// only the refusal of header keys can stop it.
	s, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: w.minter.priv},
		(&jose.SignerOptions{EmbedJWK: true}).WithHeader("kid", w.minter.kid))
	require.NoError(t, err)
	tok, err = jwt.Signed(s).Claims(w.claims(w.alice)).Serialize()
	require.NoError(t, err)
	_, err = minterVerifier(t, w).Verify(context.Background(), tok)
	require.ErrorIs(t, err, service.ErrInvalidToken)
	assert.Contains(t, err.Error(), "embedded key")
}

func TestVerifierRefusesMalformed(t *testing.T) {
	w := newWorld(t)
	v := mustVerifier(w.idp)
	tok := w.alice.token(t)
	for _, bad := range []string{"", "a", "a.b", "a.b.c", "..", tok + ".", tok[:len(tok)-10],
		strings.Repeat("A", service.MaxTokenBytes+1), tok + tok} {
		_, err := v.Verify(context.Background(), bad)
		assert.ErrorIs(t, err, service.ErrInvalidToken, "%.30q", bad)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := v.Verify(ctx, tok)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestVerifierFollowsIdPKeyRotation(t *testing.T) {
	w := newWorld(t)
	v := mustVerifier(w.idp)
	oldKid := w.idp.SigningKeyID()
	oldTok := w.alice.token(t)
	newKid, err := w.idp.RotateSigningKey()
	require.NoError(t, err)
	assert.NotEqual(t, oldKid, newKid)
	newTok := w.alice.token(t)
	for _, tok := range []string{oldTok, newTok} {
		_, err := v.Verify(context.Background(), tok)
		assert.NoError(t, err)
	}
	require.NoError(t, w.idp.RetireSigningKey(oldKid))
	_, err = v.Verify(context.Background(), oldTok)
	assert.ErrorIs(t, err, service.ErrInvalidToken, "tokens of a retired key stop verifying")
	_, err = v.Verify(context.Background(), newTok)
	assert.NoError(t, err)
	assert.Error(t, w.idp.RetireSigningKey(newKid), "the current key cannot be retired")
}

func TestNewJWTVerifierRefusesBadConfig(t *testing.T) {
	keys := func() *jose.JSONWebKeySet { return nil }
	for _, cfg := range []service.VerifierConfig{
		{Issuer: "https://x", Audience: "a"},
		{Keys: keys, Audience: "a"},
		{Keys: keys, Issuer: "https://x"},
	} {
		_, err := service.NewJWTVerifier(cfg)
		assert.Error(t, err)
	}
}
