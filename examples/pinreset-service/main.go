// Command pinreset-service runs the reference PIN reset service with a
// built-in demonstration directory: one tenant, onboarded to both PIN reset
// applications, and one user with a password and a TOTP authenticator.
//
//	go run ./examples/pinreset-service -addr 127.0.0.1:8080
//	go run ./examples/pinreset-service -cert cert.pem -key key.pem   # HTTPS
//	go run ./examples/pinreset-service totp <base32-secret>          # print a TOTP code
//
// It serves GET /v1/keys and POST /v1/recover (see package reset/service),
// the directory's Hello key registration endpoint POST
// /EnrollmentServer/key/?api-version=1.0 (see package reset/idp), and, for
// the demonstration only, POST /demo/token, which signs the demo
// user in with password and TOTP code and returns an access token:
//
//	curl -s -X POST http://127.0.0.1:8080/demo/token \
//	  -H 'Content-Type: application/json' \
//	  -d '{"upn":"alice@contoso.test","password":"...","code":"123456"}'
//
// The token is bound to the demo device's key, which this process holds as
// a device's TPM would; with "return_key" (the public half of the caller's
// one-time X25519 key) the answer also carries that device's DPoP proof for
// one POST /v1/recover naming the key, so a recovery can be made with curl.
//
// DPoP proofs must name the service's URL. That is -public-url when given
// (behind a proxy, or under a DNS name), else it is derived from the
// listener, with the TLS certificate's first DNS name as the host when
// there is one; the start-up line says which. It is never taken from a
// request's Host header, which a proxy relaying another server's requests
// would set.
//
// At start it prints the user's credentials and a protector envelope bound
// to the user, so the whole exchange can be tried with curl. The service
// keys and the directory live in memory and vanish on exit. It listens on
// loopback addresses only, and stops gracefully on SIGINT or SIGTERM:
// /readyz turns 503 and the requests in flight finish.
//
// For operators it serves GET /healthz (alive), GET /readyz (ready: every
// backend answers) and GET /metrics (Prometheus: decisions by code, request
// latency, Redis and PKCS #11 latency). -pkcs11-module and -pkcs11-token
// keep the service keys in a PKCS #11 token (the user PIN comes from
// PINRESET_PKCS11_PIN); -redis connects the Redis its instances share
// (see backends.go; flags default to PINRESET_* environment variables).
//
// With -issuer URL -app-key FILE (and -ca FILE for a private CA) it runs
// without the demonstration directory and trusts the directory at URL
// instead (see remote.go and package reset/service/remote): its signing
// keys by OpenID discovery, its answers about tenants, users and devices
// from its lookup API (package reset/lookup).
package main

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/hellosim/hellosim/internal/examplecmd"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/idp/drs"
	"github.com/hellosim/hellosim/reset/service"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the server's flags.
type options struct {
	examplecmd.ServerFlags
	schemes, password string
	publicURL         string         // "": the listener's
	be                *backendConfig // -redis, -pkcs11-*
	remote            *remoteConfig  // -issuer, -ca, -app-key
}

// invocation is what the command line asks for: a TOTP code, or the server.
type invocation struct {
	totpSecret string // set: print the code for this secret
	serve      *options
}

// command is the command line, read into o.
func command(o *options, stderr io.Writer) examplecmd.Server {
	cmd := examplecmd.NewServer("pinreset-service", "pinreset-service: runs the reference PIN reset service with a demonstration directory (one tenant, one user).\n\n"+
		"usage: pinreset-service [-addr HOST:PORT] [-cert FILE -key FILE] [-public-url URL] [-schemes LIST] [-password PW]\n"+
		"       pinreset-service -issuer URL -app-key FILE [-ca FILE] [-addr HOST:PORT] [-cert FILE -key FILE] [-public-url URL]\n"+
		"       pinreset-service totp SECRET     print the current TOTP code for a base32 secret\n\nFlags:\n",
		stderr, &o.ServerFlags, "127.0.0.1:8080", "TLS certificate (PEM); with -key, serve HTTPS")
	fs := cmd.Flags
	fs.StringVar(&o.schemes, "schemes", "x25519,wing", "service key schemes, current first: x25519, wing, rsa")
	fs.StringVar(&o.password, "password", "", "demo user's password (default: random)")
	fs.StringVar(&o.publicURL, "public-url", "", "the URL clients name the service by, which DPoP proofs must name (default: the listener's, with the TLS certificate's name)")
	o.be = registerBackendFlags(fs)
	o.remote = registerRemoteFlags(fs)
	return cmd
}

// parseArgs reads the command line strictly (examplecmd.Server.Parse), so
// that no mistyped command starts a server.
func parseArgs(args []string, stderr io.Writer) (invocation, error) {
	var o options
	secret, err := command(&o, stderr).Parse(args)
	if err != nil || secret != "" {
		return invocation{totpSecret: secret}, err
	}
	return invocation{serve: &o}, nil
}

func realMain(args []string, stdout, stderr io.Writer) int {
	var o options
	return command(&o, stderr).Main(args, stdout, stderr, func() error { return run(o) })
}

func run(opt options) error {
	addr, schemes, password := &opt.Addr, &opt.schemes, &opt.password
	be := opt.be
	// The demo token endpoint must not be reachable from elsewhere.
	if err := examplecmd.LoopbackOnly(*addr, "the demo service"); err != nil {
		return err
	}

	o := newOps()
	audit := slog.New(o.auditCounter(slog.NewJSONHandler(os.Stderr, nil)))
	var keys []protector.Unwrapper
	for _, name := range strings.Split(*schemes, ",") {
		s, err := parseScheme(strings.TrimSpace(name))
		if err != nil {
			return err
		}
		k, err := protector.GenerateServiceKey(s)
		if err != nil {
			return fmt.Errorf("generate %s key: %w", name, err)
		}
		keys = append(keys, k)
	}
	keys, closeBackends, err := be.open(o, keys, os.Stderr) // a token's keys replace the generated ones
	if err != nil {
		return err
	}
	defer closeBackends.Close()
	if opt.remote.issuer != "" {
		return serveRemote(opt, o, audit, keys, closeBackends)
	}
	dir, tenant, user, pw, err := demoDirectory(*password)
	if err != nil {
		return err
	}
	verifier, err := service.VerifierFor(dir)
	if err != nil {
		return err
	}
	ep, svc, err := listenService(opt, service.Config{Verifier: verifier, Directory: dir, Keys: keys, Audit: audit,
		State: closeBackends.store}) // nil: in process memory
	if err != nil {
		return err
	}
	defer ep.ln.Close()

	// The directory's device registration endpoint for Hello keys sits
	// beside the service, with a joined demo device for its tokens.
	_, err = dir.AddDevice(idp.DeviceConfig{TenantID: tenant.ID, DeviceID: demoDeviceID, DisplayName: "DEMO-PC"})
	if err != nil {
		return err
	}
	dev, err := newDemoDevice() // its key signs the DPoP proofs
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", svc)
	mux.Handle(drs.KeyPath, drs.Handler(dir))
	mux.Handle("POST /demo/token", demoTokenHandler(dir, dev))
	o.routes(mux)

	srv := newServer(o, svc, mux, ep)
	env, err := demoEnvelope(keys[0].Public(), tenant, user)
	if err != nil {
		return err
	}
	rk, err := protector.NewReturnKey() // only its public half is shown
	if err != nil {
		return err
	}
	printBanner(os.Stdout, ep.base, ep.how, tenant, user, pw, env, base64.RawURLEncoding.EncodeToString(rk.PublicKey()))
	rk.Destroy()
	return serve(o, srv, ep.ln, svc)
}

// serveRemote runs the service against a directory in another process
// (-issuer): no demonstration directory, token endpoint or DRS here.
func serveRemote(opt options, o *ops, audit *slog.Logger, keys []protector.Unwrapper, be *backends) error {
	rd, err := opt.remote.open(o, os.Stderr)
	if err != nil {
		return err
	}
	ep, svc, err := listenService(opt, service.Config{Verifier: rd.verifier, Directory: rd.lookup, Keys: keys, Audit: audit,
		State: be.store})
	if err != nil {
		return err
	}
	defer ep.ln.Close()
	mux := http.NewServeMux()
	mux.Handle("/v1/", svc)
	o.routes(mux)
	srv := newServer(o, svc, mux, ep)
	printRemoteBanner(os.Stdout, ep.base, ep.how, opt.remote.issuer, opt.remote.caFile)
	return serve(o, srv, ep.ln, svc)
}

// endpoint is where the service listens and the URL DPoP proofs must name.
type endpoint struct {
	ln        net.Listener
	tls       *tls.Config // nil: plain HTTP
	base, how string      // the public URL, and how it was chosen (publicURL)
}

// listen opens the listener, loads the TLS certificate, and works out the
// public URL from them (or takes -public-url).
func listen(opt options) (*endpoint, error) {
	tlsCfg, err := opt.TLSConfig()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", opt.Addr)
	if err != nil {
		return nil, err
	}
	base, how, err := publicURL(opt.publicURL, ln.Addr(), tlsCfg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &endpoint{ln: ln, tls: tlsCfg, base: base, how: how}, nil
}

// listenService opens the listener (listen) and builds the service of cfg
// for the public URL found.
func listenService(opt options, cfg service.Config) (*endpoint, *service.Service, error) {
	ep, err := listen(opt)
	if err != nil {
		return nil, nil, err
	}
	cfg.PublicURL = ep.base
	svc, err := service.New(cfg)
	if err != nil {
		ep.ln.Close()
		return nil, nil, err
	}
	return ep, svc, nil
}

// newServer builds the server around mux.
func newServer(o *ops, svc *service.Service, mux *http.ServeMux, ep *endpoint) *http.Server {
	srv := examplecmd.HTTPServer(o.instrument(svc.AuditHandler(mux))) // with AuditListener: net/http's own refusals are audited
	srv.ErrorLog = svc.ErrorLog()
	srv.ConnContext = svc.ConnContext
	srv.TLSConfig = ep.tls
	return srv
}

// serve runs srv until SIGINT or SIGTERM, then drains and stops it.
func serve(o *ops, srv *http.Server, ln net.Listener, svc *service.Service) error {
	return examplecmd.ServeUntilSignal(srv, func() error {
		if srv.TLSConfig != nil {
			return srv.ServeTLS(ln, "", "") // the certificate is in srv.TLSConfig
		}
		return srv.Serve(svc.AuditListener(ln))
	}, examplecmd.Stop{Name: "pinreset-service", Log: os.Stderr,
		Drain: o.drain}) // /readyz answers 503 while requests in flight finish
}

func parseScheme(name string) (protector.Scheme, error) {
	switch name {
	case "x25519":
		return protector.HPKEX25519, nil
	case "wing":
		return protector.HPKEXWing, nil
	case "rsa":
		return protector.RSAOAEP3072, nil
	}
	return 0, fmt.Errorf("unknown scheme %q (x25519, wing, rsa)", name)
}

// demoDirectory builds the demonstration tenant and user.
func demoDirectory(pw string) (*idp.IdP, idp.Tenant, idp.User, string, error) {
	fail := func(err error) (*idp.IdP, idp.Tenant, idp.User, string, error) {
		return nil, idp.Tenant{}, idp.User{}, "", fmt.Errorf("demo directory: %w", err)
	}
	dir, err := idp.New()
	if err != nil {
		return fail(err)
	}
	tenant, err := dir.AddTenant(idp.TenantConfig{
		Domain:        "contoso.test",
		ConsentedApps: []string{identity.PINResetServiceAppID, identity.PINResetClientAppID},
	})
	if err != nil {
		return fail(err)
	}
	if pw == "" {
		b := make([]byte, 12)
		if _, err := io.ReadFull(rand.Reader, b); err != nil {
			return fail(err)
		}
		pw = base64.RawURLEncoding.EncodeToString(b)
	}
	user, err := dir.AddUser(idp.UserConfig{TenantID: tenant.ID, UPN: "alice@contoso.test", Password: pw})
	if err != nil {
		return fail(err)
	}
	return dir, tenant, user, pw, nil
}

// demoEnvelope wraps a throwaway protector for the demo user, as a device
// would at enrolment, so that /v1/recover can be tried by hand.
func demoEnvelope(key protector.ServiceKey, t idp.Tenant, u idp.User) (string, error) {
	r, err := protector.NewKey(nil)
	if err != nil {
		return "", err
	}
	defer r.Destroy()
	env, err := key.Wrap(r, protector.Binding{TenantID: t.ID, UserID: u.ObjectID, ContainerID: "{FA0DB076-A5D7-4844-82D8-50A2FB42EC7B}", DeviceID: demoDeviceID}, nil)
	if err != nil {
		return "", fmt.Errorf("demo envelope: %w", err)
	}
	raw, err := env.MarshalBinary()
	if err != nil {
		return "", fmt.Errorf("demo envelope: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(raw), nil
}

func printBanner(w io.Writer, base, how string, t idp.Tenant, u idp.User, pw, env, returnKey string) {
	fmt.Fprintf(w, `PIN reset service (demonstration) at %[1]s (public URL %[9]s)

  tenant     %[2]s (%[3]s), onboarded to the PIN Reset Service and Client
  user       %[4]s
  password   %[5]s
  TOTP       secret %[6]s
             (any authenticator app, or: go run ./examples/pinreset-service totp %[6]s)

Get an access token (password + TOTP code):
  curl -s -X POST %[1]s/demo/token -H 'Content-Type: application/json' \
    -d '{"upn":"%[4]s","password":"%[5]s","code":"'$(go run ./examples/pinreset-service totp %[6]s)'"}'

Published keys:
  curl -s %[1]s/v1/keys

Register a Windows Hello key (a DRS token for the demo device: add
"resource":"urn:ms-drs:enterpriseregistration.windows.net" above; the token
is bound to the demo device's key and the answer's "dpop" is that key's
proof for this endpoint, good for one registration within a minute; kngc is
base64 of the key's BCRYPT RSA1 blob):
  curl -s -X POST '%[1]s/EnrollmentServer/key/?api-version=1.0' -H "Authorization: DPoP $DRS_TOKEN" \
    -H "DPoP: $DRS_PROOF" -H 'Content-Type: application/json' -d '{"kngc":"..."}'

Recover the sample envelope of %[4]s by hand. The token is bound to the demo
device's key (this process holds it, as a device's TPM would), so each request
needs that key's DPoP proof: ask /demo/token for one, naming the return key
(the public half of a one-time X25519 key the answer is sealed to; here one
whose private half this process has forgotten), and use it within a minute:
  eval "$(curl -s -X POST %[1]s/demo/token -H 'Content-Type: application/json' \
    -d '{"upn":"%[4]s","password":"%[5]s","code":"'$(go run ./examples/pinreset-service totp %[6]s)'","return_key":"%[8]s"}' \
    | jq -r '"TOKEN=\(.access_token) PROOF=\(.dpop)"')"
  curl -s -X POST %[1]s/v1/recover -H "Authorization: DPoP $TOKEN" -H "DPoP: $PROOF" -H 'Content-Type: application/json' \
    -d '{"envelope":"%[7]s","return_key":"%[8]s"}'

A device's whole reset, PIN and all: run examples/directory, start this service
with -issuer against it, and point hello at both (README, "Three terminals"):
  go run ./examples/hello -state dev provision -directory ISSUER -service URL -ca CA.pem
  go run ./examples/hello -state dev enable-recovery
  go run ./examples/hello -state dev reset --non-destructive

Audit records go to standard error. Ctrl-C stops.
`, base, t.Domain, t.ID, u.UPN, pw, u.TOTPSecret(), env, returnKey, how)
}

// publicURL is the URL DPoP proofs must name (service.Config.PublicURL) and
// how it was chosen: the one given, or derived from the listener, with the
// first DNS name of the TLS certificate as the host when there is one
// (clients name a TLS service by its certificate's name). A listener on an
// address other than loopback has no name clients could use: without a
// URL given, or a certificate's name, it is refused rather than guessed.
func publicURL(given string, la net.Addr, tlsCfg *tls.Config) (string, string, error) {
	if given != "" {
		return strings.TrimSuffix(given, "/"), "given by -public-url", nil
	}
	host, port, err := net.SplitHostPort(la.String())
	if err != nil {
		return "", "", fmt.Errorf("listener address %s: %w", la, err)
	}
	scheme, how := "http", "derived from the listener"
	if tlsCfg != nil {
		scheme = "https"
		if len(tlsCfg.Certificates) > 0 && len(tlsCfg.Certificates[0].Certificate) > 0 {
			leaf, err := x509.ParseCertificate(tlsCfg.Certificates[0].Certificate[0])
			if err != nil {
				return "", "", fmt.Errorf("-cert: %w", err)
			}
			if len(leaf.DNSNames) > 0 {
				return scheme + "://" + net.JoinHostPort(leaf.DNSNames[0], port), "derived from the listener and the TLS certificate's name", nil
			}
		}
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return "", "", fmt.Errorf("listening on %s, which is not loopback, with no -public-url and no TLS certificate name: give -public-url, the URL clients name the service by", la)
	}
	return scheme + "://" + la.String(), how, nil
}
