package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"flag"
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
	"github.com/hellosim/hellosim/reset/service"
)

func TestDemoEndToEnd(t *testing.T) {
	dir, tenant, user, pw, err := demoDirectory("")
	require.NoError(t, err)
	assert.Len(t, pw, 16)
	svc, key := demoService(t, dir, nil)
	srv, dev := serveDemo(t, dir, map[string]http.Handler{"/v1/": svc})

	status, out := demoSignIn(t, srv.URL, dir, user.UPN, "wrong password", "")
	assert.Equal(t, 401, status)
	assert.Equal(t, "sign_in_failed", out["error"])
	wrongPassword := out
	// An unknown user gets the very same answer: no enumeration.
	status, unknown := demoToken(t, srv.URL, map[string]string{"upn": "nobody@contoso.test", "password": "wrong password", "code": "000000"})
	assert.Equal(t, 401, status)
	assert.Equal(t, wrongPassword, unknown, "unknown user and wrong password answer alike")
	status, out = demoSignIn(t, srv.URL, dir, user.UPN, pw, "")
	require.Equal(t, 200, status)
	tok := out["access_token"]
	require.NotEmpty(t, tok)

	envText, err := demoEnvelope(key.Public(), tenant, user)
	require.NoError(t, err)
	raw, err := base64.RawURLEncoding.DecodeString(envText)
	require.NoError(t, err)
	env, err := protector.ParseEnvelope(raw)
	require.NoError(t, err)
	c := service.NewClient(srv.URL, srv.Client()).WithDevice(dev.key)
	r, err := c.Recover(context.Background(), tok, env)
	require.NoError(t, err, "the printed envelope opens with a demo token")
	r.Destroy()

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
