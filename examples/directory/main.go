// Command directory serves the simulated directory (package reset/idp) on
// the web, in Entra's URL layout (package reset/idp/web): sign-in pages,
// the consent page, the device login page, the Enterprise applications
// page, and the OAuth 2.0 / OpenID Connect endpoints standard clients use.
// It holds a demonstration tenant in memory: a Global Administrator and a
// user, each with a password and a TOTP authenticator. The tenant starts
// NOT onboarded to the PIN reset applications: the administrator onboards
// it by opening the two admin-consent links of the PIN reset
// documentation, unchanged.
//
//	go run ./examples/directory -demo demo.json            # HTTPS on 127.0.0.1:8443
//	go run ./examples/directory totp <base32-secret>        # the authenticator's code
//
// It always serves HTTPS (token issuers are https URLs). Without -cert and
// -key it makes a throwaway certificate authority and a certificate for
// 127.0.0.1, localhost, login.windows.net, login.microsoftonline.com,
// cred.microsoft.com, the federation host and login.microsoftonline.us;
// -demo writes the tenants, their accounts, the authority's certificate,
// and the Chromium flags that map those host names to this server and
// trust the certificate by its SPKI hash, as JSON (file mode 0600: it
// holds passwords). Requests for
// cred.microsoft.com (the PIN Reset Service's redirect URI) get a page
// showing the code and state received.
//
// A second tenant, fabrikam.test, is federated: its users sign in at its
// federation service (package reset/idp/federation), which this program
// serves under a second host name, -federation-host (default
// adfs.fabrikam.test), on the same port; the certificate covers that name
// too, and -demo's Chromium flags map it here. A user name in
// fabrikam.test on the sign-in pages goes there (home realm discovery),
// and the sign-in comes back to the directory for the TOTP code. The
// federation service checks passwords against the directory's accounts, as
// AD FS checks them against an Active Directory synchronised with the
// cloud.
//
// A third tenant, agency.test, lives in Azure Government: the
// certificate covers login.microsoftonline.us, the Government cloud's
// sign-in host, and -demo's Chromium flags map it here too, so the PIN
// reset documentation's known issue (the lock-screen web host opens that
// host only when ConfigureWebSignInAllowedUrls lists it) can be tried.
//
// -dump FILE writes the directory's objects (consents, service
// principals, users, their registered Hello keys) and how many requests
// each host name received, as JSON on SIGUSR1 and at exit. It listens on loopback addresses only, and stops gracefully on
// SIGINT or SIGTERM. It also serves the device registration service's Hello key
// endpoint, POST /EnrollmentServer/key/?api-version=1.0, and its device
// join endpoint, POST /EnrollmentServer/device/, and GET /v1.0/me: a
// Graph-like read of the signed-in user's own objects (the values of its
// msDS-KeyCredentialLink, the devices its keys were registered from) for
// the bearer of a token for the device registration service, such as a
// sign-in with the Hello key yields. With -app-key FILE it
// serves the lookup API (GET /v1.0/tenants/...) the PIN reset service
// asks at every recovery when it runs in its own process (pinreset-service
// -issuer URL -app-key FILE), accepting the app credential in FILE.
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hellosim/hellosim/internal/devcert"
	"github.com/hellosim/hellosim/internal/examplecmd"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/idp/drs"
	"github.com/hellosim/hellosim/reset/idp/federation"
	"github.com/hellosim/hellosim/reset/idp/web"
	"github.com/hellosim/hellosim/reset/lookup"
	"github.com/hellosim/hellosim/reset/policy"
)

// ConsentLinks are the two admin-consent links of the PIN reset
// documentation ("Connect Azure Active Directory with the PIN Reset
// Service" and "… Client"), verbatim.
var ConsentLinks = []string{
	"https://login.windows.net/common/oauth2/authorize?response_type=code&client_id=b8456c59-1230-44c7-a4a2-99b085333e84&resource=https%3A%2F%2Fgraph.windows.net&redirect_uri=https%3A%2F%2Fcred.microsoft.com&state=e9191523-6c2f-4f1d-a4f9-c36f26f89df0&prompt=admin_consent",
	"https://login.windows.net/common/oauth2/authorize?response_type=code&client_id=9115dd05-fad5-4f9c-acc7-305d08b1b04e&resource=https%3A%2F%2Fcred.microsoft.com%2F&redirect_uri=ms-appx-web%3A%2F%2FMicrosoft.AAD.BrokerPlugin%2F9115dd05-fad5-4f9c-acc7-305d08b1b04e&state=6765f8c5-f4a7-4029-b667-46a6776ad611&prompt=admin_consent",
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	examplecmd.ServerFlags
	demoFile, dumpFile string
	appKey             string // the PIN reset service's app credential
	fedHost            string // the federated tenant's federation service
}

// defaultFederationHost is where fabrikam.test's federation service lives:
// AD FS's usual name in its organisation's own domain, under .test
// (RFC 2606), which never resolves outside the browser's mapping.
const defaultFederationHost = "adfs.fabrikam.test"

// command is the command line, read into o.
func command(o *options, stderr io.Writer) examplecmd.Server {
	cmd := examplecmd.NewServer("directory", "directory: serves the simulated directory's sign-in pages and OAuth endpoints.\n\n"+
		"usage: directory [-addr HOST:PORT] [-cert FILE -key FILE] [-demo FILE] [-dump FILE] [-app-key FILE] [-federation-host NAME]\n"+
		"       directory totp SECRET     print the current TOTP code for a base32 secret\n\nFlags:\n",
		stderr, &o.ServerFlags, "127.0.0.1:8443", "TLS certificate (PEM); with -key. Default: a throwaway one")
	fs := cmd.Flags
	fs.StringVar(&o.demoFile, "demo", "", "write the demo tenant and accounts as JSON to this file (mode 0600)")
	fs.StringVar(&o.appKey, "app-key", "", "the PIN reset service's app credential (PEM `file`; made, mode 0600, when absent): serve the lookup API it calls (pinreset-service -issuer -app-key FILE)")
	fs.StringVar(&o.fedHost, "federation-host", defaultFederationHost, "the host `name` of the federated tenant's (fabrikam.test) federation sign-in page, served on the same port")
	fs.StringVar(&o.dumpFile, "dump", "", "write the directory's objects (consents, service principals, users, registered keys, devices) as JSON to this file on SIGUSR1 (Unix) and at exit")
	cmd.Check = func() error {
		h, err := policy.ParseDomain(o.fedHost)
		if err != nil || net.ParseIP(h) != nil || slices.Contains(devcert.Names, h) || h == reset.GovernmentSignInHost || !strings.Contains(h, ".") {
			return fmt.Errorf("-federation-host %q: want a DNS name of its own (not an address, not one of the directory's names)", o.fedHost)
		}
		o.fedHost = h
		return nil
	}
	return cmd
}

func realMain(args []string, stdout, stderr io.Writer) int {
	var o options
	return command(&o, stderr).Main(args, stdout, stderr, func() error { return run(o, stdout, stderr) })
}

// Account is a demo account as -demo writes it.
type Account struct {
	UPN        string `json:"upn"`
	Password   string `json:"password"`
	TOTPSecret string `json:"totp_secret"`
	ObjectID   string `json:"object_id"`
}

// Demo is the -demo file.
type Demo struct {
	TenantID            string   `json:"tenant_id"`
	Domain              string   `json:"domain"`
	Issuer              string   `json:"issuer"`
	Authority           string   `json:"authority"`
	TokenEndpoint       string   `json:"token_endpoint"`
	DeviceCodeEndpoint  string   `json:"device_code_endpoint"`
	Admin               Account  `json:"global_administrator"`
	User                Account  `json:"user"`
	ConsentLinks        []string `json:"consent_links"`
	EnterpriseApps      string   `json:"enterprise_applications"`
	CAPEM               string   `json:"ca_pem,omitempty"`
	SPKIHashes          []string `json:"spki_sha256,omitempty"`
	ChromiumFlags       []string `json:"chromium_flags,omitempty"`
	TenantOnboardedNote string   `json:"note"`
	// Federated is the federated tenant, whose users sign in at the
	// federation service.
	Federated FederatedDemo `json:"federated"`
	// Government is the Azure Government tenant.
	Government GovernmentDemo `json:"azure_government"`
}

// GovernmentDemo is the Azure Government tenant as -demo writes it.
type GovernmentDemo struct {
	TenantID   string  `json:"tenant_id"`
	Domain     string  `json:"domain"`
	SignInHost string  `json:"sign_in_host"`
	User       Account `json:"user"`
}

// FederatedDemo is the federated tenant as -demo writes it.
type FederatedDemo struct {
	TenantID            string  `json:"tenant_id"`
	Domain              string  `json:"domain"`
	Issuer              string  `json:"issuer"`
	FederationSignInURL string  `json:"federation_sign_in_url"`
	Admin               Account `json:"global_administrator"`
	User                Account `json:"user"`
}

func run(o options, stdout, stderr io.Writer) error {
	if err := examplecmd.LoopbackOnly(o.Addr, "the directory"); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	hostPort := ln.Addr().String()
	base := "https://" + hostPort

	dir, err := idp.New(idp.WithIssuer(base+"/{tid}/v2.0"), idp.WithArgon2(idp.LightArgon2Params()))
	if err != nil {
		return err
	}
	tenant, admin, user, err := demoTenant(dir, idp.TenantConfig{Domain: "contoso.test"}, "admin", "alice")
	if err != nil {
		return err
	}
	fedTenant, fedAdmin, fedUser, err := demoTenant(dir,
		idp.TenantConfig{Domain: "fabrikam.test", FederationSignInURL: "https://" + o.fedHost + federation.SignInPath}, "admin", "bob")
	if err != nil {
		return err
	}
	govTenant, _, govUser, err := demoTenant(dir, idp.TenantConfig{Domain: "agency.test", Cloud: identity.AzureGovernment}, "", "carol")
	if err != nil {
		return err
	}
	// The answer comes back to the name the browser used for the
	// directory: its address, or a name the browser maps to it.
	var replies []string
	for _, origin := range []string{base, "https://login.windows.net", "https://login.microsoftonline.com"} {
		replies = append(replies, origin+"/login/federation")
	}
	fed, err := federation.New(federation.Config{
		Issuer: "https://" + o.fedHost + "/adfs/services/trust",
		Authenticate: func(ctx context.Context, upn, password string) error {
			_, err := dir.SignIn(ctx, upn, password)
			return err
		},
		RelyingParties: []federation.RelyingParty{{Realm: base, ReplyURLs: replies}},
	})
	if err != nil {
		return err
	}
	srv, err := web.New(web.Config{Directory: dir, Federation: map[string]federation.Trust{fedTenant.ID: fed.Trust()}})
	if err != nil {
		return err
	}

	demo := Demo{
		TenantID: tenant.ID, Domain: tenant.Domain, Issuer: dir.Issuer(tenant.ID), Authority: base,
		TokenEndpoint: dir.TokenEndpoint(tenant.ID), DeviceCodeEndpoint: base + "/" + tenant.ID + "/oauth2/v2.0/devicecode",
		Admin: admin, User: user, ConsentLinks: ConsentLinks,
		EnterpriseApps:      "https://login.windows.net/" + tenant.ID + "/enterpriseApplications?search=Microsoft+PIN",
		TenantOnboardedNote: "the tenants start not onboarded: open the two consent links as each tenant's Global Administrator",
		Federated: FederatedDemo{TenantID: fedTenant.ID, Domain: fedTenant.Domain, Issuer: dir.Issuer(fedTenant.ID),
			FederationSignInURL: fedTenant.FederationSignInURL, Admin: fedAdmin, User: fedUser},
		Government: GovernmentDemo{TenantID: govTenant.ID, Domain: govTenant.Domain, SignInHost: reset.GovernmentSignInHost, User: govUser},
	}
	tlsConf, err := o.TLSConfig()
	if err != nil {
		return err
	}
	if tlsConf == nil {
		c, err := devcert.New(slices.Concat(devcert.Names, []string{o.fedHost, reset.GovernmentSignInHost}))
		if err != nil {
			return err
		}
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{c.TLS}}
		demo.CAPEM, demo.SPKIHashes = string(c.CAPEM), c.SPKIHashes
		demo.ChromiumFlags = []string{
			"--host-resolver-rules=MAP login.windows.net " + hostPort + ", MAP cred.microsoft.com " + hostPort + ", MAP " + o.fedHost + " " + hostPort + ", MAP " + reset.GovernmentSignInHost + " " + hostPort,
			"--ignore-certificate-errors-spki-list=" + strings.Join(c.SPKIHashes, ","),
		}
	}
	if o.demoFile != "" {
		b, err := json.MarshalIndent(demo, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.demoFile, append(b, '\n'), 0o600); err != nil {
			return err
		}
	}

	mux := http.NewServeMux()
	mux.Handle(drs.KeyPath, drs.Handler(dir))
	mux.Handle(drs.JoinPath, drs.JoinHandler(dir))
	mux.Handle(mePath, meHandler(dir))
	if o.appKey != "" {
		key, err := serviceAppKey(o.appKey)
		if err != nil {
			return err
		}
		lh, err := lookupHandler(dir, base, key)
		if err != nil {
			return err
		}
		mux.Handle(lookup.PathPrefix, lh)
	}
	mux.Handle("/", srv)
	standIn := srv.RedirectStandIn()
	hosts := &hostCounts{n: map[string]int{}}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := hosts.count(r)
		switch h {
		case "cred.microsoft.com":
			standIn.ServeHTTP(w, r)
		case o.fedHost:
			fed.ServeHTTP(w, r)
		default:
			mux.ServeHTTP(w, r)
		}
	})
	hs := examplecmd.HTTPServer(handler)
	hs.TLSConfig = tlsConf
	fmt.Fprintf(stdout, "directory at %s (tenant %s, not onboarded)\n  issuer %s\n  global administrator %s, user %s\n",
		base, tenant.ID, dir.Issuer(tenant.ID), admin.UPN, user.UPN)
	fmt.Fprintf(stdout, "  Azure Government tenant %s (%s): sign-in host %s, user %s\n", govTenant.ID, govTenant.Domain, reset.GovernmentSignInHost, govUser.UPN)
	fmt.Fprintf(stdout, "  federated tenant %s (%s, not onboarded): sign-in at %s\n  global administrator %s, user %s\n",
		fedTenant.ID, fedTenant.Domain, fedTenant.FederationSignInURL, fedAdmin.UPN, fedUser.UPN)
	if o.demoFile != "" {
		fmt.Fprintf(stdout, "  demo tenant, accounts and Chromium flags written to %s\n", o.demoFile)
	}

	usr1 := make(chan os.Signal, 1)
	notifyDump(usr1)
	defer signal.Stop(usr1)
	dump := func() {
		if o.dumpFile == "" {
			return
		}
		if err := writeDump(o.dumpFile, dir, srv, hosts, tenant.ID, fedTenant.ID); err != nil {
			fmt.Fprintln(stderr, "directory: dump:", err)
		}
	}
	defer dump()
	return examplecmd.ServeUntilSignal(hs, func() error { return hs.ServeTLS(ln, "", "") },
		examplecmd.Stop{Name: "directory", Log: stderr, Wake: usr1, OnWake: dump})
}

// Dump is the -dump file: the directory's objects, public parts only.
type Dump struct {
	DumpTenant
	Users []DumpUser `json:"users"`
	// Federated is the federated tenant.
	Federated DumpTenant `json:"federated"`
	// RequestsByHost counts the requests each host name received (the
	// Host header, lower case, no port) since the start.
	RequestsByHost map[string]int `json:"requests_by_host"`
}

// DumpTenant is a tenant's standing.
type DumpTenant struct {
	TenantID          string                 `json:"tenant_id"`
	Onboarded         bool                   `json:"onboarded"`
	ConsentedApps     []string               `json:"consented_apps"`
	ServicePrincipals []web.ServicePrincipal `json:"service_principals"`
}

// hostCounts counts requests by host name.
type hostCounts struct {
	mu sync.Mutex
	n  map[string]int
}

// count records r and returns its host name: lower case, no port.
func (c *hostCounts) count(r *http.Request) string {
	h := strings.ToLower(r.Host)
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(h, ".")
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.n[h]; ok || len(c.n) < 64 { // a client inventing names fills no memory
		c.n[h]++
	}
	return h
}

func (c *hostCounts) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}

// DumpUser is a user and the Hello keys registered for it.
type DumpUser struct {
	UPN         string    `json:"upn"`
	ObjectID    string    `json:"object_id"`
	GlobalAdmin bool      `json:"global_administrator"`
	Keys        []DumpKey `json:"registered_keys"`
}

// DumpKey is a registered Hello key.
type DumpKey struct {
	KeyID        string    `json:"key_id"`
	KID          string    `json:"kid"`
	DeviceID     string    `json:"device_id,omitempty"`
	RegisteredAt time.Time `json:"registered_at"`
}

func dumpTenant(dir *idp.IdP, srv *web.Server, tenantID string) (DumpTenant, error) {
	t, err := dir.LookupTenant(tenantID)
	if err != nil {
		return DumpTenant{}, err
	}
	sps, err := srv.ServicePrincipals(tenantID, "")
	if err != nil {
		return DumpTenant{}, err
	}
	return DumpTenant{TenantID: t.ID, Onboarded: t.Onboarded(), ConsentedApps: t.ConsentedApps, ServicePrincipals: sps}, nil
}

func writeDump(path string, dir *idp.IdP, srv *web.Server, hosts *hostCounts, tenantID, fedTenantID string) error {
	var d Dump
	var err error
	if d.DumpTenant, err = dumpTenant(dir, srv, tenantID); err != nil {
		return err
	}
	if d.Federated, err = dumpTenant(dir, srv, fedTenantID); err != nil {
		return err
	}
	d.RequestsByHost = hosts.snapshot()
	for _, upn := range []string{"admin@contoso.test", "alice@contoso.test", "admin@fabrikam.test", "bob@fabrikam.test", "carol@agency.test"} {
		u, err := dir.LookupUser(upn)
		if err != nil {
			return err
		}
		du := DumpUser{UPN: u.UPN, ObjectID: u.ObjectID, GlobalAdmin: u.GlobalAdmin, Keys: []DumpKey{}}
		keys, err := dir.RegisteredKeys(upn)
		if err != nil {
			return err
		}
		for _, k := range keys {
			du.Keys = append(du.Keys, DumpKey{KeyID: k.KeyID, KID: k.KID, DeviceID: k.DeviceID, RegisteredAt: k.RegisteredAt})
		}
		d.Users = append(d.Users, du)
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// demoTenant adds a tenant with a Global Administrator (none when admin is
// "") and a user, named by the part of the UPN before the tenant's domain.
func demoTenant(dir *idp.IdP, cfg idp.TenantConfig, admin, user string) (t idp.Tenant, a, u Account, err error) {
	if t, err = dir.AddTenant(cfg); err != nil {
		return t, a, u, err
	}
	if admin != "" {
		if a, err = demoAccount(dir, t.ID, admin+"@"+t.Domain, true); err != nil {
			return t, a, u, err
		}
	}
	u, err = demoAccount(dir, t.ID, user+"@"+t.Domain, false)
	return t, a, u, err
}

func demoAccount(dir *idp.IdP, tenantID, upn string, admin bool) (Account, error) {
	b := make([]byte, 12)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		return Account{}, err
	}
	pw := base64.RawURLEncoding.EncodeToString(b)
	u, err := dir.AddUser(idp.UserConfig{TenantID: tenantID, UPN: upn, Password: pw, GlobalAdmin: admin})
	if err != nil {
		return Account{}, err
	}
	return Account{UPN: u.UPN, Password: pw, TOTPSecret: u.TOTPSecret(), ObjectID: u.ObjectID}, nil
}
