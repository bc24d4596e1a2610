package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/hellosim/hellosim/internal/examplecmd"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/lookup"
	"github.com/hellosim/hellosim/reset/service/remote"
)

// remoteConfig is how the service trusts a directory in another process
// (-issuer): its keys by OpenID discovery, its answers about tenants,
// users and devices from its lookup API under an app credential.
type remoteConfig struct {
	issuer    string
	caFile    string
	appKey    string
	lookupTTL time.Duration
	refetch   time.Duration
}

func registerRemoteFlags(fs *flag.FlagSet) *remoteConfig {
	c := new(remoteConfig)
	fs.StringVar(&c.issuer, "issuer", "",
		"trust the directory at this issuer `URL` (https://HOST/common/v2.0, or a tenant's issuer) instead of the built-in demonstration directory")
	fs.StringVar(&c.caFile, "ca", "", "CA certificate `file` (PEM) the directory's TLS certificate chains to (default: the system roots)")
	fs.StringVar(&c.appKey, "app-key", "", "the service's app credential (PEM P-256 private key `file`) for the directory's lookup API; with -issuer, required")
	fs.DurationVar(&c.lookupTTL, "lookup-ttl", lookup.DefaultTTL, "how long an answer of the directory's lookup API is kept")
	fs.DurationVar(&c.refetch, "key-refetch", remote.DefaultMinRefetch, "least time between two fetches of the directory's signing keys")
	return c
}

// remoteDirectory is the open connection to a remote directory.
type remoteDirectory struct {
	keys     *remote.Keys
	verifier *remote.Verifier
	lookup   *lookup.Client
	base     string // the directory's origin
}

func (c *remoteConfig) open(o *ops, stderr io.Writer) (*remoteDirectory, error) {
	if c.appKey == "" {
		return nil, errors.New("-issuer needs -app-key: the service's credential for the directory's lookup API")
	}
	key, err := examplecmd.ReadAppKey(c.appKey)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	if c.caFile != "" {
		pool, err := examplecmd.ReadCA(c.caFile)
		if err != nil {
			return nil, err
		}
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 64, ForceAttemptHTTP2: true}
	}
	keys, err := remote.NewKeys(remote.Config{Issuer: c.issuer, HTTPClient: hc, MinRefetch: c.refetch})
	if err != nil {
		return nil, fmt.Errorf("-issuer: %w", err)
	}
	v, err := remote.NewVerifier(keys, nil)
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(c.issuer) // NewKeys parsed it
	base := u.Scheme + "://" + u.Host
	lc, err := lookup.NewClient(lookup.ClientConfig{BaseURL: base, HTTPClient: hc, ClientID: identity.PINResetServiceAppID,
		Key: key, TTL: c.lookupTTL})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := keys.Refresh(ctx); err != nil {
		// Not fatal: the service starts, refuses with 503 and is not
		// ready until the directory answers.
		fmt.Fprintf(stderr, "pinreset-service: the directory's keys are not available yet (%v); /readyz answers 503 until they are\n", err)
	}
	o.addCheck("directory keys", keys.Refresh)
	o.addCheck("directory lookup", lc.Ping)
	return &remoteDirectory{keys: keys, verifier: v, lookup: lc, base: base}, nil
}

func printRemoteBanner(w io.Writer, base, how, issuer, ca string) {
	caFlag, helloCA := "", ""
	if ca != "" {
		// hello needs the service's CA too when the service is HTTPS
		// under another one: one -ca file with both.
		caFlag, helloCA = " --cacert "+ca, " -ca "+ca
	}
	fmt.Fprintf(w, `PIN reset service at %[1]s (public URL %[5]s), trusting the directory %[2]s

Published keys:
  curl -s%[4]s %[1]s/v1/keys

A reset, as a device makes it (hello signs in at the directory's pages, joins
the device, binds the token to the device's TPM key and sends
POST %[1]s/v1/recover with that key's DPoP proof):
  go run ./examples/hello -state dev provision -directory %[2]s -service %[1]s%[6]s
  go run ./examples/hello -state dev enable-recovery
  go run ./examples/hello -state dev reset --non-destructive

/readyz answers 503 while the directory's keys or lookup API cannot be reached.
Audit records go to standard error. Ctrl-C stops.
`, base, issuer, originOf(issuer), caFlag, how, helloCA)
}

func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Scheme + "://" + u.Host
}
