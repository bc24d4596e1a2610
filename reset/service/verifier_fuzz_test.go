package service_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/reset/service"
)

// FuzzJWTVerify feeds the verifier arbitrary tokens around real ones. It must
// never panic; every refusal is a *TokenError; and whatever it accepts can
// only be a token the identity provider signed, so its claims are exactly
// those of the seed it came from.
func FuzzJWTVerify(f *testing.F) {
	w := newWorld(f)
	v := mustVerifier(w.idp)
	tok := w.alice.token(f)
	want, err := v.Verify(context.Background(), tok)
	require.NoError(f, err)
	parts := strings.Split(tok, ".")
	f.Add(tok)
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(parts[0] + ".." + parts[2])
	f.Add(`eyJhbGciOiJub25lIn0.` + parts[1] + ".")
	f.Add(`eyJhbGciOiJIUzI1NiJ9.` + parts[1] + "." + parts[2])
	f.Add(strings.Repeat("A", service.MaxTokenBytes))
	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.Verify(context.Background(), token)
		if err != nil {
			var te *service.TokenError
			if !errors.As(err, &te) || !errors.Is(err, service.ErrInvalidToken) {
				t.Fatalf("untyped refusal: %v", err)
			}
			return
		}
		if c.JTI != want.JTI || c.TenantID != want.TenantID || c.ObjectID != want.ObjectID ||
			c.UPN != want.UPN || !c.Expiry.Equal(want.Expiry) || strings.Join(c.AMR, ",") != strings.Join(want.AMR, ",") {
			t.Fatalf("accepted a token whose claims were not signed: %+v", c)
		}
	})
}
