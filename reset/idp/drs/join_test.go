package drs_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/internal/dpop"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/idp/drs"
)

func TestJoinDeviceOverHTTP(t *testing.T) {
	w := newWorld(t)
	srv := httptest.NewServer(drs.JoinHandler(w.p))
	t.Cleanup(srv.Close)
	c, err := drs.NewClient(srv.URL, srv.Client())
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ctx := context.Background()
	const id = "3f2c1b0a-9e8d-4c7b-8a69-5f4e3d2c1b0a"

	p, err := w.p.SignIn(ctx, w.alice.UPN, alicePW)
	require.NoError(t, err)
	withoutMFA, err := p.TokenWithoutMFA(ctx)
	require.NoError(t, err)
	err = c.JoinDevice(ctx, withoutMFA, id, &key.PublicKey)
	require.ErrorIs(t, err, idp.ErrTokenWithoutMFA, "a join needs MFA")
	require.ErrorIs(t, c.JoinDevice(ctx, "not a token", id, &key.PublicKey), idp.ErrTokenRefused)

	_, tok := w.signIn(t)
	require.NoError(t, c.JoinDevice(ctx, tok, id, &key.PublicKey))
	d, err := w.p.Device(ctx, w.alice.TenantID, id)
	require.NoError(t, err)
	jkt, err := dpop.Thumbprint(&key.PublicKey)
	require.NoError(t, err)
	assert.Equal(t, jkt, d.KeyThumbprint, "the device object holds the key it joined with")
	_, again := w.signIn(t)
	require.ErrorIs(t, c.JoinDevice(ctx, again, id, &key.PublicKey), idp.ErrExists, "a taken ID is refused")

	resp, err := http.Post(srv.URL+drs.JoinPath, "application/json", strings.NewReader(`{"device_id":"`+id+`","device_key":{"kty":"EC"}}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "no token, no join")
}
