package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"flag"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/internal/examplecmd"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/service"
)

func TestDemoEndToEnd(t *testing.T) {
	dir, tenant, user, pw, err := demoDirectory("")
	require.NoError(t, err)
	assert.Len(t, pw, 16)
	svc, key := demoService(t, dir, nil)
	srv, _ := serveDemo(t, dir, map[string]http.Handler{"/v1/": svc})

	rk, err := protector.NewReturnKey()
	require.NoError(t, err)
	defer rk.Destroy()
	rkText := base64.RawURLEncoding.EncodeToString(rk.PublicKey())
	status, out := demoSignIn(t, srv.URL, dir, user.UPN, "wrong password", "")
	assert.Equal(t, 401, status)
	assert.Equal(t, "sign_in_failed", out["error"])
	wrongPassword := out
	// An unknown user gets the very same answer: no enumeration.
	status, unknown := demoToken(t, srv.URL, map[string]string{"upn": "nobody@contoso.test", "password": "wrong password", "code": "000000"})
	assert.Equal(t, 401, status)
	assert.Equal(t, wrongPassword, unknown, "unknown user and wrong password answer alike")
	// A return key that is not one is refused before the sign-in.
	for _, bad := range []map[string]string{
		{"return_key": "not base64!"},
		{"return_key": rkText[:20]},
		{"return_key": rkText, "resource": idp.DRSResource},
	} {
		bad["upn"], bad["password"], bad["code"] = user.UPN, pw, "000000"
		status, out := demoToken(t, srv.URL, bad)
		assert.Equal(t, http.StatusBadRequest, status, "%v", bad)
		assert.Equal(t, "invalid_return_key", out["error"], "%v", bad)
	}

	// By hand, as the banner shows: /demo/token with return_key answers
	// the device's proof for one POST /v1/recover naming that key, and
	// the request with only curl's headers opens the envelope.
	code, err := dir.TOTPCode(user.UPN)
	require.NoError(t, err)
	status, out = demoToken(t, srv.URL, map[string]string{"upn": user.UPN, "password": pw, "code": code, "return_key": rkText})
	require.Equal(t, 200, status, "%v", out)
	tok := out["access_token"]
	require.NotEmpty(t, tok)
	require.NotEmpty(t, out["dpop"])
	envText, err := demoEnvelope(key.Public(), tenant, user)
	require.NoError(t, err)
	raw, err := base64.RawURLEncoding.DecodeString(envText)
	require.NoError(t, err)
	env, err := protector.ParseEnvelope(raw)
	require.NoError(t, err)
	recoverBody, _ := json.Marshal(map[string]string{"envelope": envText, "return_key": rkText})
	post := func(proof string) *http.Response {
		req, err := http.NewRequest(http.MethodPost, srv.URL+service.PathRecover, bytes.NewReader(recoverBody))
		require.NoError(t, err)
		req.Header.Set("Authorization", "DPoP "+tok)
		req.Header.Set("DPoP", proof)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		return resp
	}
	resp := post(out["dpop"])
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "the banner's curl recovery: %s", answer)
	sealed, err := service.DecodeRecoverResponse(answer)
	require.NoError(t, err)
	opened, err := rk.Open(sealed, env)
	require.NoError(t, err, "the answer is sealed to the return key named")
	opened.Destroy()
	// The token and the proof are for that one request: a replay is
	// refused.
	resp = post(out["dpop"])
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a replayed recovery is refused")

	var banner bytes.Buffer
	printBanner(&banner, srv.URL, "derived from the listener", tenant, user, pw, envText, "rk")
	for _, want := range []string{user.UPN, pw, user.TOTPSecret(), envText, "/demo/token", "/v1/recover"} {
		assert.Contains(t, banner.String(), want)
	}
	assert.False(t, strings.Contains(banner.String(), "\t"))
	first, _, _ := strings.Cut(banner.String(), "\n")
	assert.Equal(t, "PIN reset service (demonstration) at "+srv.URL+" (public URL derived from the listener)", first)
}

// The URL DPoP proofs must name is given, or derived from the listener and
// the TLS certificate's name; never guessed for a listener clients could
// not name.
func TestPublicURL(t *testing.T) {
	loop := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8443}
	wide := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 8443} // never dialled
	named, bare := selfSigned(t, "pinreset.test"), selfSigned(t, "")
	for _, tc := range []struct {
		name, given string
		la          net.Addr
		tls         *tls.Config
		url, how    string
	}{
		{"given", "https://pinreset.example/", wide, nil, "https://pinreset.example", "given by -public-url"},
		{"loopback", "", loop, nil, "http://127.0.0.1:8443", "derived from the listener"},
		{"loopback over TLS, no name", "", loop, bare, "https://127.0.0.1:8443", "derived from the listener"},
		{"TLS name", "", wide, named, "https://pinreset.test:8443", "derived from the listener and the TLS certificate's name"},
	} {
		url, how, err := publicURL(tc.given, tc.la, tc.tls)
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.url, url, tc.name)
		assert.Equal(t, tc.how, how, tc.name)
	}
	_, _, err := publicURL("", wide, nil)
	assert.ErrorContains(t, err, "give -public-url", "a listener off loopback with no name is refused")
	_, _, err = publicURL("", wide, bare)
	assert.ErrorContains(t, err, "give -public-url")
}

// selfSigned is a TLS configuration with a fresh self-signed certificate
// for dnsName ("" for none).
func selfSigned(t *testing.T, dnsName string) *tls.Config {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	if dnsName != "" {
		tmpl.DNSNames = []string{dnsName}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: k}}}
}

func TestParseScheme(t *testing.T) {
	for name, want := range map[string]protector.Scheme{"x25519": protector.HPKEX25519, "wing": protector.HPKEXWing, "rsa": protector.RSAOAEP3072} {
		got, err := parseScheme(name)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err := parseScheme("dsa")
	assert.Error(t, err)
}

// The command line is read strictly: only "totp SECRET" and flags; a
// missing secret, a stray word or an unknown command is a usage error and
// starts no server.
func TestParseArgsIsStrict(t *testing.T) {
	for _, args := range [][]string{
		{"totp"},
		{"totp", "JBSWY3DPEHPK3PXP", "extra"},
		{"totp", "-addr"},
		{"serve"},
		{"tot"},
		{"-addr", "127.0.0.1:0", "extra"},
		{"-cert", "c.pem"},
		{"-nosuchflag"},
	} {
		var stderr bytes.Buffer
		inv, err := parseArgs(args, &stderr)
		assert.ErrorIs(t, err, examplecmd.ErrUsage, "%q", args)
		assert.Nil(t, inv.serve, "%q would start a server", args)
		assert.NotEmpty(t, stderr.String(), "%q: no message", args)
		assert.Equal(t, 2, realMain(args, &bytes.Buffer{}, &bytes.Buffer{}), "%q", args)
	}

	inv, err := parseArgs([]string{"totp", "JBSWY3DPEHPK3PXP"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, "JBSWY3DPEHPK3PXP", inv.totpSecret)
	assert.Nil(t, inv.serve)
	var out bytes.Buffer
	assert.Equal(t, 0, realMain([]string{"totp", "JBSWY3DPEHPK3PXP"}, &out, &bytes.Buffer{}))
	assert.Regexp(t, `^\d{6}\n$`, out.String())

	inv, err = parseArgs([]string{"-addr", "127.0.0.1:0", "-schemes", "rsa"}, &bytes.Buffer{})
	require.NoError(t, err)
	require.NotNil(t, inv.serve)
	assert.Equal(t, "127.0.0.1:0", inv.serve.Addr)
	assert.Equal(t, "rsa", inv.serve.schemes)
}

// -h says what the program does first, under a fixed name.
func TestHelpSaysWhatItDoes(t *testing.T) {
	var stderr bytes.Buffer
	_, err := parseArgs([]string{"-h"}, &stderr)
	assert.ErrorIs(t, err, flag.ErrHelp)
	assert.True(t, strings.HasPrefix(stderr.String(), "pinreset-service: runs the reference PIN reset service"), stderr.String())
	assert.Contains(t, stderr.String(), "pinreset-service totp SECRET")
	assert.Equal(t, 0, realMain([]string{"-h"}, &bytes.Buffer{}, &bytes.Buffer{}))
}
