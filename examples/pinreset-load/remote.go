package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/lookup"
	"github.com/hellosim/hellosim/reset/service/remote"
)

// remoteDirectory serves dir on ln — discovery, keys and the lookup API —
// and returns what the service needs to trust it over HTTP, as
// pinreset-service -issuer builds it.
func remoteDirectory(dir *idp.IdP, ln net.Listener) (*remote.Verifier, *lookup.Client, *httptest.Server, error) {
	base := "https://" + ln.Addr().String()
	appKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	lh, err := lookup.NewHandler(lookup.HandlerConfig{Source: dir, Audience: base,
		Apps: []lookup.AppCredential{{ClientID: identity.PINResetServiceAppID, PublicKey: &appKey.PublicKey}}})
	if err != nil {
		return nil, nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/", dir.OIDCHandler())
	mux.Handle(lookup.PathPrefix, lh)
	// A TLS server with a certificate for 127.0.0.1 that only its own
	// client trusts (the issuer must be https).
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
	srv.StartTLS()
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.Proxy, tr.MaxIdleConnsPerHost = nil, 16
	hc := &http.Client{Timeout: 5 * time.Second, Transport: tr}
	keys, err := remote.NewKeys(remote.Config{Issuer: base + "/common/v2.0", HTTPClient: hc})
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := keys.Refresh(ctx); err != nil {
		return nil, nil, nil, err
	}
	v, err := remote.NewVerifier(keys, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	lc, err := lookup.NewClient(lookup.ClientConfig{BaseURL: base, HTTPClient: hc, ClientID: identity.PINResetServiceAppID, Key: appKey})
	if err != nil {
		return nil, nil, nil, err
	}
	return v, lc, srv, nil
}
