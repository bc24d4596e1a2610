package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/idp/drs"
	"github.com/hellosim/hellosim/reset/keycred"
)

// The demo serves Hello key registration beside the service: a DRS token
// from /demo/token, then POST /EnrollmentServer/key/ with kngc.
func TestDemoRegistersAHelloKey(t *testing.T) {
	dir, tenant, user, pw, err := demoDirectory("")
	require.NoError(t, err)
	_, err = dir.AddDevice(idp.DeviceConfig{TenantID: tenant.ID, DeviceID: demoDeviceID})
	require.NoError(t, err)
	srv, _ := serveDemo(t, dir, map[string]http.Handler{drs.KeyPath: drs.Handler(dir)})

	token := func(resource string) (int, map[string]string) {
		return demoSignIn(t, srv.URL, dir, user.UPN, pw, resource)
	}
	status, out := token("https://graph.example")
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "invalid_resource", out["error"])

	status, out = token(idp.DRSResource)
	require.Equal(t, http.StatusOK, status, out)

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	blob, err := keycred.MarshalPublicKey(&key.PublicKey)
	require.NoError(t, err)
	assert.Equal(t, "DPoP", out["token_type"], "bound to the demo device's key")
	register := func(auth, proof string) (int, map[string]string) {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/EnrollmentServer/key/?api-version=1.0",
			bytes.NewReader([]byte(`{"kngc":"`+base64.StdEncoding.EncodeToString(blob)+`"}`)))
		require.NoError(t, err)
		req.Header.Set("Authorization", auth)
		if proof != "" {
			req.Header.Set("DPoP", proof)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var reg map[string]string
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&reg))
		return resp.StatusCode, reg
	}
	status, reg := register("Bearer "+out["access_token"], "")
	assert.Equal(t, http.StatusUnauthorized, status, "the bound token as a bearer token: %v", reg)
	status, reg = register("DPoP "+out["access_token"], out["dpop"])
	require.Equal(t, http.StatusOK, status, reg)
	assert.Equal(t, keycred.Identifier(blob), reg["kid"])
	assert.Equal(t, user.UPN, reg["upn"])
}
