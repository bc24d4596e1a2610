// Package idptest holds what the directory's tests and the tests of its
// protocol edges (reset/idp/drs) share: a sign-in with password and TOTP,
// a device-bound DRS token, an RSA key.
package idptest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/internal/clocktest"
	"github.com/hellosim/hellosim/reset/idp"
)

// SignIn signs upn in at dir with password and the current TOTP code. It
// moves clk to the next TOTP step first, so that repeated sign-ins never
// reuse a code. It returns the sign-in and the token of its MFA.
func SignIn(t testing.TB, dir *idp.IdP, clk *clocktest.Clock, upn, password string) (*idp.Pending, string) {
	t.Helper()
	clk.Advance(idp.TOTPPeriod)
	p, err := dir.SignIn(context.Background(), upn, password)
	require.NoError(t, err)
	code, err := dir.TOTPCode(upn)
	require.NoError(t, err)
	tok, err := p.CompleteMFA(context.Background(), code)
	require.NoError(t, err)
	return p, tok
}

// DRSToken is p's token for the device registration service, bound to the
// device deviceID.
func DRSToken(t testing.TB, p *idp.Pending, deviceID string) string {
	t.Helper()
	tok, err := p.DeviceToken(context.Background(), deviceID, idp.DRSResource)
	require.NoError(t, err)
	return tok
}

// RSAKey is a new RSA-2048 key.
func RSAKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	return k
}
