package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/hellosim/hellosim/reset/idp"
)

// mePath is the directory's Graph-like read of the signed-in user's own
// objects (examples/directory serves it).
const mePath = "/v1.0/me"

// remoteDirectoryView is 'hello directory' against the directory over
// HTTPS: it signs in with the Hello key (the PIN unlocks the login key)
// for a token, and reads GET /v1.0/me with it: the user's
// msDS-KeyCredentialLink values and the devices its keys came from.
func (a *app) remoteDirectoryView(ctx context.Context, st *state, rc remoteConfig) (view, error) {
	_, c, err := st.load()
	if err != nil {
		return view{}, err
	}
	r, err := dialDirectory(ctx, rc) // checked before the PIN is asked
	if err != nil {
		return view{}, err
	}
	_, tok, err := a.helloToken(ctx, st, c, r)
	if err != nil {
		return view{}, err
	}
	u, err := r.me(ctx, tok)
	if err != nil {
		return view{}, err
	}
	return viewOf(u, u.Devices)
}

// me reads GET /v1.0/me with the bearer token tok: the directory's
// idp.DirectoryUser for the token's user.
func (r *remote) me(ctx context.Context, tok string) (idp.DirectoryUser, error) {
	u := r.drsBase + mePath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return idp.DirectoryUser{}, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := r.hc.Do(req)
	if err != nil {
		if re := classify("the directory", u, err); re != nil {
			return idp.DirectoryUser{}, re
		}
		return idp.DirectoryUser{}, err
	}
	defer resp.Body.Close()
	var o idp.DirectoryUser
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return o, fmt.Errorf("%w: the directory refused the sign-in's token for %s (%s)", errSignIn, u, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return o, fmt.Errorf("the directory answered %s at %s: it serves no Graph-like read of the user's objects", resp.Status, u)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&o); err != nil {
		return o, fmt.Errorf("the directory's answer at %s is not the user's objects: %w", u, err)
	}
	return o, nil
}
