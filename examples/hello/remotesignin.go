package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/keycred"
)

// helloSignIn is the directory's side of a sign-in with the Hello key:
// where the nonce comes from and where the signed assertion is exchanged
// for an access token (for the device registration service, as Windows
// asks at sign-in). The simulated directory answers in process
// (inProcessSignIn); a directory over HTTPS at its v2 token endpoint
// (*remote).
type helloSignIn interface {
	nonce(ctx context.Context) (string, error)
	exchange(ctx context.Context, assertion string) (string, error)
	now() time.Time
}

// inProcessSignIn is the simulated directory of the state directory.
type inProcessSignIn struct{ idp *idp.IdP }

func (s inProcessSignIn) nonce(context.Context) (string, error) { return s.idp.HelloNonce() }
func (s inProcessSignIn) now() time.Time                        { return s.idp.Now() }
func (s inProcessSignIn) exchange(ctx context.Context, assertion string) (string, error) {
	return s.idp.SignInWithHelloKey(ctx, assertion, idp.DRSResource)
}

// errKeyNotRegistered is a sign-in whose key the directory does not hold:
// a destructive reset on another copy of this device registered a new
// one in its place, or the key was deleted there.
var errKeyNotRegistered = fmt.Errorf("%w: the directory holds no registered key for this container's login key "+
	"(a destructive reset elsewhere replaced it, or it was deleted)", errSignIn)

// nonce asks the directory's token endpoint for a Hello sign-in nonce
// (grant_type=srv_challenge), as Windows does once the PIN has unlocked
// the key.
func (r *remote) nonce(ctx context.Context) (string, error) {
	t, status, err := r.postToken(ctx, url.Values{"grant_type": {"srv_challenge"}}, nil)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK || t.Nonce == "" {
		return "", fmt.Errorf("%w: no sign-in nonce from %s (%d): %s: %s", errSignIn, r.tokenURL, status, t.Error, t.Desc)
	}
	return t.Nonce, nil
}

// exchange sends the signed assertion (the jwt-bearer grant) and returns
// the access token for the device registration service.
func (r *remote) exchange(ctx context.Context, assertion string) (string, error) {
	t, status, err := r.postToken(ctx, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
		"assertion": {assertion}, "resource": {idp.DRSResource}}, nil)
	switch {
	case err != nil:
		return "", err
	case status == http.StatusOK && t.Access != "":
		return t.Access, nil
	case t.Error == "invalid_grant" && strings.Contains(t.Desc, idp.ErrKeyNotFound.Error()):
		return "", errKeyNotRegistered
	}
	return "", fmt.Errorf("%w: the directory refused the Hello key's assertion: %s: %s", errSignIn, t.Error, t.Desc)
}

func (r *remote) now() time.Time { return time.Now() }

// signInWithKey is a sign-in with the Hello key, as Windows does it
// (helloToken), printing the access token's claims.
func (a *app) signInWithKey(ctx context.Context, st *state, c *container.Container, via helloSignIn) error {
	kid, tok, err := a.helloToken(ctx, st, c, via)
	if err != nil {
		return err
	}
	claims, err := unverifiedClaims(tok)
	if err != nil {
		return fmt.Errorf("%w: the access token: %w", errSignIn, err)
	}
	fmt.Fprintf(a.stdout, "Signed the directory's nonce with the login key (kid %s).\n", kid)
	fmt.Fprintf(a.stdout, "Access token for %v: amr %v, deviceid %v, upn %v.\n", claims["aud"], claims["amr"], claims["deviceid"], claims["upn"])
	return nil
}

// helloToken signs in with the Hello key: the PIN unlocks the login key
// (the TPM checks it, asked again when wrong), the key signs an assertion
// over the directory's nonce, and the directory exchanges it for an
// access token. It returns the key's identifier (kid) and the token.
func (a *app) helloToken(ctx context.Context, st *state, c *container.Container, via helloSignIn) (kid, tok string, err error) {
	s, done, err := a.openSession(ctx, st, c)
	if err != nil {
		return "", "", err
	}
	defer done()
	nonce, err := via.nonce(ctx)
	if err != nil {
		return "", "", err
	}
	now := via.now()
	cfg := c.Config()
	assertion, err := keycred.SignAssertion(s.Signer(), keycred.Assertion{
		Issuer: cfg.User, Audience: cfg.TenantID, Nonce: nonce, Scope: "openid aza ugs",
		IssuedAt: now, Expiry: now.Add(5 * time.Minute),
	})
	if err == nil {
		kid, err = keycred.AssertionKeyID(assertion)
	}
	if err == nil {
		tok, err = via.exchange(ctx, assertion)
	}
	return kid, tok, err
}

// isKeyNotRegistered reports a sign-in refused for a key the directory
// does not hold.
func isKeyNotRegistered(err error) bool {
	return errors.Is(err, errKeyNotRegistered) || errors.Is(err, idp.ErrKeyNotFound)
}
