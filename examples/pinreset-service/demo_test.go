package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/service"
)

// demoService is the service for the demonstration directory dir, as run
// builds it, with one fresh X25519 key; audit nil keeps no records.
func demoService(t *testing.T, dir *idp.IdP, audit *slog.Logger) (*service.Service, *protector.ServicePrivateKey) {
	t.Helper()
	key, err := protector.GenerateServiceKey(protector.HPKEX25519)
	require.NoError(t, err)
	verifier, err := service.VerifierFor(dir)
	require.NoError(t, err)
	svc, err := service.New(service.Config{Verifier: verifier, Directory: dir, Keys: []protector.Unwrapper{key}, Audit: audit})
	require.NoError(t, err)
	return svc, key
}

// serveDemo serves the demo token endpoint of dir, its tokens bound to a
// new demo device, beside routes (pattern to handler), until the test ends.
func serveDemo(t *testing.T, dir *idp.IdP, routes map[string]http.Handler) (*httptest.Server, *demoDevice) {
	t.Helper()
	dev, err := newDemoDevice()
	require.NoError(t, err)
	mux := http.NewServeMux()
	for pattern, h := range routes {
		mux.Handle(pattern, h)
	}
	mux.Handle("POST /demo/token", demoTokenHandler(dir, dev))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, dev
}

// demoSignIn signs upn in at base's /demo/token with password and the
// current TOTP code, for resource ("": the PIN reset service).
func demoSignIn(t *testing.T, base string, dir *idp.IdP, upn, password, resource string) (int, map[string]string) {
	t.Helper()
	code, err := dir.TOTPCode(upn)
	require.NoError(t, err)
	body := map[string]string{"upn": upn, "password": password, "code": code}
	if resource != "" {
		body["resource"] = resource
	}
	return demoToken(t, base, body)
}

// demoToken posts body to base's /demo/token: the status and the answer.
func demoToken(t *testing.T, base string, body map[string]string) (int, map[string]string) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	resp, err := http.Post(base+"/demo/token", "application/json", bytes.NewReader(b))
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]string
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}
