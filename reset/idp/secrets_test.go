package idp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/service"
)

// No fmt verb, on a User or on a struct holding one, and no JSON encoding
// prints the TOTP secret: %d and %o are not routed through String.
func TestUserPrintsNoSecretWithAnyVerb(t *testing.T) {
	f := newFixture(t, idp.TenantConfig{})
	secret := f.alice.TOTPSecret()
	require.NotEmpty(t, secret)
	holder := struct{ U idp.User }{f.alice}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d", "%o", "%b", "%t"} {
		assert.NotContains(t, fmt.Sprintf(verb, f.alice), secret, verb)
		assert.NotContains(t, fmt.Sprintf(verb, &f.alice), secret, verb)
		assert.NotContains(t, fmt.Sprintf(verb, holder), secret, verb)
	}
	out, err := json.Marshal(f.alice)
	require.NoError(t, err)
	assert.NotContains(t, string(out), secret)
}

// JWKS hands out a copy: a caller that swaps a key in the returned set
// cannot make the IdP's verifier accept a token it signed itself.
func TestJWKSCopyCannotChangeWhatVerifies(t *testing.T) {
	f := newFixture(t, idp.TenantConfig{})
	ctx := context.Background()
	_, tok := f.signIn(t)
	attacker := newP256(t)

	set := f.p.JWKS()
	require.NotEmpty(t, set.Keys)
	kid := set.Keys[0].KeyID
	set.Keys[0].Key = &attacker.PublicKey

	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: attacker, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	require.NoError(t, err)
	claims := payload(t, tok)
	claims["jti"] = "forged"
	forged, err := jwt.Signed(signer).Claims(claims).Serialize()
	require.NoError(t, err)

	_, err = mustVerifier(f.p).Verify(ctx, forged)
	assert.ErrorIs(t, err, service.ErrInvalidToken, "a forged token verified")
	_, err = mustVerifier(f.p).Verify(ctx, tok)
	assert.NoError(t, err, "the IdP's own token still verifies")
	assert.NotSame(t, set.Keys[0].Key, f.p.JWKS().Keys[0].Key)
}
