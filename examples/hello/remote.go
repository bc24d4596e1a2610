package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/container/store"
	tpmdevice "github.com/hellosim/hellosim/device"
	"github.com/hellosim/hellosim/internal/dpop"
	"github.com/hellosim/hellosim/internal/httpclient"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/idp/drs"
	"github.com/hellosim/hellosim/reset/policy"
	"github.com/hellosim/hellosim/reset/service"
	"github.com/hellosim/hellosim/tpm"
)

// remoteFile remembers, at provision, the directory and the PIN reset
// service this device talks to over HTTPS (provision -directory -service
// -ca), and who signed in. Without it every command runs the simulated
// directory and service in process.
const remoteFile = "remote.json"

// remoteConfig is remote.json.
type remoteConfig struct {
	// Directory is the directory's issuer URL (https://HOST/TENANT/v2.0):
	// its OpenID discovery document must name exactly this issuer.
	Directory string `json:"directory"`
	// Service is the PIN reset service's base URL.
	Service string `json:"service"`
	// CA is the PEM of the private CA both servers' certificates chain
	// to, if any (a copy, so the state directory is self-contained).
	CA       string `json:"ca_pem,omitempty"`
	TenantID string `json:"tenant_id"`
	UserID   string `json:"user_id"`
	UPN      string `json:"upn"`
}

// remote is an open connection to the directory and the service: the
// configuration, the endpoints the discovery document names, and the
// HTTPS client trusting the CA.
type remote struct {
	cfg          remoteConfig
	hc           *http.Client
	tokenURL     string
	deviceURL    string
	authorizeURL string // "" when the discovery document names none
	drsBase      string // the directory's origin: DRS and the join endpoint
	clientID     string
	serviceCall  *service.Client
}

// Exit codes of a directory or service that cannot be used (see main.go).
const (
	exitUnreachable  = 9
	exitUntrusted    = 10
	exitWrongIssuer  = 11
	exitNoServiceKey = 12
)

// remoteError is a directory or service that cannot be used; nothing was
// changed on disk. Code is the exit code.
type remoteError struct {
	code int
	msg  string
	err  error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.err }

// readRemote reads remote.json; ok is false when the device was
// provisioned without -directory.
func (s *state) readRemote() (cfg remoteConfig, ok bool, err error) {
	err = readJSON(s.path(remoteFile), &cfg)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, false, nil
	}
	return cfg, err == nil, err
}

// newRemote checks the directory and the service before anything is
// written: both reachable over TLS with the CA, the discovery document
// naming the issuer given, the service publishing a current key.
func newRemote(ctx context.Context, cfg remoteConfig) (*remote, error) {
	r, err := dialDirectory(ctx, cfg)
	if err != nil {
		return nil, err
	}
	r.serviceCall = service.NewClient(cfg.Service, r.hc)
	if _, err := r.serviceCall.ServiceKey(ctx); err != nil {
		if re := classify("the PIN reset service", cfg.Service, err); re != nil {
			return nil, re
		}
		return nil, &remoteError{code: exitNoServiceKey, err: err,
			msg: fmt.Sprintf("the PIN reset service at %s publishes no current key (GET /v1/keys): PIN recovery cannot be enrolled", cfg.Service)}
	}
	return r, nil
}

// dialDirectory checks the directory alone (reachable over TLS with the
// CA, its discovery document naming the issuer given), for the commands
// that do not call the service.
func dialDirectory(ctx context.Context, cfg remoteConfig) (*remote, error) {
	u, refusal := httpclient.ParseBaseURL(cfg.Directory)
	if refusal != nil {
		return nil, fmt.Errorf("%w: -directory: %s", errUsage, refusal.Reason)
	}
	if _, refusal := httpclient.ParseBaseURL(cfg.Service); refusal != nil {
		return nil, fmt.Errorf("%w: -service: %s", errUsage, refusal.Reason)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CA != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(cfg.CA)) {
			return nil, fmt.Errorf("%w: -ca: no PEM certificate in the file", errUsage)
		}
		tc.RootCAs = pool
	}
	hc := httpclient.New(&http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}, 0)
	r := &remote{cfg: cfg, hc: hc, drsBase: u.Scheme + "://" + u.Host, clientID: identity.PINResetClientAppID}

	var meta struct {
		Issuer string `json:"issuer"`
		Token  string `json:"token_endpoint"`
		Device string `json:"device_authorization_endpoint"`
		Auth   string `json:"authorization_endpoint"`
	}
	issuer := strings.TrimSuffix(cfg.Directory, "/")
	if err := r.getJSON(ctx, "the directory", issuer+"/.well-known/openid-configuration", &meta); err != nil {
		return nil, err
	}
	if meta.Issuer != issuer {
		return nil, &remoteError{code: exitWrongIssuer, msg: fmt.Sprintf(
			"the directory's discovery document names the issuer %q, not %q: this is not the directory given (or -directory is not its issuer URL)", meta.Issuer, issuer)}
	}
	if meta.Token == "" || meta.Device == "" {
		return nil, &remoteError{code: exitWrongIssuer, msg: "the directory's discovery document names no token or device authorization endpoint"}
	}
	r.tokenURL, r.deviceURL, r.authorizeURL = meta.Token, meta.Device, meta.Auth
	return r, nil
}

// classify names a transport failure: unreachable, or a certificate not
// trusted. nil for other errors.
func classify(what, where string, err error) *remoteError {
	var cve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	switch {
	case errors.As(err, &cve), errors.As(err, &ua), errors.As(err, &he):
		return &remoteError{code: exitUntrusted, err: err,
			msg: fmt.Sprintf("%s at %s has a certificate this device does not trust: give the CA that issued it with -ca FILE", what, where)}
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, new(*net.OpError)), errors.As(err, new(*url.Error)):
		return &remoteError{code: exitUnreachable, err: err,
			msg: fmt.Sprintf("cannot reach %s at %s: is it running, and is the URL right?", what, where)}
	}
	return nil
}

// getJSON GETs u into v.
func (r *remote) getJSON(ctx context.Context, what, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		if re := classify(what, u, err); re != nil {
			return re
		}
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, v) != nil {
		return &remoteError{code: exitWrongIssuer, msg: fmt.Sprintf("%s at %s answered %s, not a discovery document: is -directory its issuer URL?", what, u, resp.Status)}
	}
	return nil
}

// tokens is a token endpoint answer.
type tokens struct {
	Access  string `json:"access_token"`
	Nonce   string `json:"Nonce"` // a Hello sign-in nonce (grant_type=srv_challenge)
	Refresh string `json:"refresh_token"`
	ID      string `json:"id_token"`
	Error   string `json:"error"`
	Desc    string `json:"error_description"`
}

// postToken POSTs form to the token endpoint, with a DPoP proof of key
// when key is not nil (RFC 9449 §5: the token is bound to the key).
func (r *remote) postToken(ctx context.Context, form url.Values, key crypto.Signer) (tokens, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return tokens{}, 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if key != nil {
		proof, err := dpop.Fresh(key, dpop.Claims{HTM: http.MethodPost, HTU: r.tokenURL, IAT: time.Now().Unix()})
		if err != nil {
			return tokens{}, 0, fmt.Errorf("DPoP proof: %w", err)
		}
		req.Header.Set("DPoP", proof)
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		if re := classify("the directory", r.tokenURL, err); re != nil {
			return tokens{}, 0, re
		}
		return tokens{}, 0, err
	}
	defer resp.Body.Close()
	var t tokens
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&t); err != nil {
		return tokens{}, resp.StatusCode, fmt.Errorf("token endpoint: %s, not JSON", resp.Status)
	}
	return t, resp.StatusCode, nil
}

// errSignIn is a sign-in at the directory that did not complete.
var errSignIn = errors.New("sign-in at the directory did not complete")

// deviceCodeSignIn signs the user in by the device authorization grant
// (RFC 8628): it prints the user code and the page to enter it on, then
// polls the token endpoint every interval seconds, five more after
// slow_down, until the user has signed in (with MFA) or the code expires.
func (r *remote) deviceCodeSignIn(ctx context.Context, a *app) (tokens, error) {
	form := url.Values{"client_id": {r.clientID}, "scope": {"openid offline_access https://cred.microsoft.com/.default"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.deviceURL, strings.NewReader(form.Encode()))
	if err != nil {
		return tokens{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := r.hc.Do(req)
	if err != nil {
		if re := classify("the directory", r.deviceURL, err); re != nil {
			return tokens{}, re
		}
		return tokens{}, err
	}
	var da struct {
		DeviceCode string `json:"device_code"`
		UserCode   string `json:"user_code"`
		URI        string `json:"verification_uri"`
		Interval   int    `json:"interval"`
		ExpiresIn  int    `json:"expires_in"`
		Error      string `json:"error_description"`
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&da)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || da.DeviceCode == "" {
		return tokens{}, fmt.Errorf("%w: device code refused (%s) %s", errSignIn, resp.Status, da.Error)
	}
	fmt.Fprintf(a.stdout, "To sign in, open %s and enter the code %s\n", da.URI, da.UserCode)
	var host *webHostSession
	if a.webHost != nil {
		if host, err = a.openWebHost(ctx, r.cfg.CA, da.URI); err != nil {
			return tokens{}, err
		}
		defer host.close()
	}
	interval := time.Duration(max(da.Interval, 1)) * time.Second
	deadline := time.Now().Add(time.Duration(max(da.ExpiresIn, 60)) * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return tokens{}, ctx.Err()
		case <-time.After(interval):
		}
		if host != nil {
			// The user went on to a page the host refused: the
			// sign-in cannot complete there.
			if err := host.refused(); err != nil {
				return tokens{}, err
			}
		}
		t, status, err := r.postToken(ctx, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
			"client_id": {r.clientID}, "device_code": {da.DeviceCode}}, nil)
		switch {
		case err != nil:
			return tokens{}, err
		case status == http.StatusOK && t.Access != "":
			fmt.Fprintln(a.stdout, "Signed in.")
			return t, nil
		case t.Error == "slow_down":
			interval += 5 * time.Second
		case t.Error != "authorization_pending":
			return tokens{}, fmt.Errorf("%w: %s: %s", errSignIn, t.Error, t.Desc)
		}
	}
	return tokens{}, fmt.Errorf("%w: the code expired before the sign-in was completed", errSignIn)
}

// bound refreshes t for scope with a DPoP proof of the device key: the
// directory binds the new access token to the key (cnf.jkt), and names
// the device in it.
func (r *remote) bound(ctx context.Context, t *tokens, scope string, key crypto.Signer) (string, error) {
	out, status, err := r.postToken(ctx, url.Values{"grant_type": {"refresh_token"}, "client_id": {r.clientID},
		"refresh_token": {t.Refresh}, "scope": {"offline_access " + scope}}, key)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK || out.Access == "" {
		return "", fmt.Errorf("%w: token for %s refused: %s: %s", errSignIn, scope, out.Error, out.Desc)
	}
	if out.Refresh != "" {
		t.Refresh = out.Refresh
	}
	return out.Access, nil
}

// scopes of the tokens hello asks for.
const (
	serviceScope = "https://cred.microsoft.com/.default"
	drsScope     = idp.DRSResource + "/.default"
)

// drsClient is the directory's device registration service, sending
// tokens bound to key.
// signInClaims signs the user in (signIn) and returns the tokens and the
// access token's claims: read, not verified, as the token came from the
// directory's token endpoint over TLS and only the directory checks it.
func (r *remote) signInClaims(ctx context.Context, a *app) (tokens, map[string]any, error) {
	tok, err := r.signIn(ctx, a)
	if err != nil {
		return tokens{}, nil, err
	}
	claims, err := unverifiedClaims(tok.Access)
	if err != nil {
		return tokens{}, nil, fmt.Errorf("%w: the access token: %w", errSignIn, err)
	}
	return tok, claims, nil
}

// registerKey registers the login key pub with the directory's DRS, with
// drsTok, a DRS token bound to the device key.
func (r *remote) registerKey(ctx context.Context, drsTok string, key crypto.Signer, pub crypto.PublicKey) (drs.Result, error) {
	dc, err := r.drsClient(key)
	if err != nil {
		return drs.Result{}, err
	}
	return dc.RegisterHelloKey(ctx, drsTok, pub)
}

func (r *remote) drsClient(key crypto.Signer) (*drs.Client, error) {
	c, err := drs.NewClient(r.drsBase, r.hc)
	if err != nil {
		return nil, err
	}
	return c.WithDevice(key), nil
}

// deviceIdentity loads this machine's device identity from the state
// directory, making it (in the TPM) on first use.
func (s *state) deviceIdentity(ctx context.Context, t *tpm.TPM) (*tpmdevice.Device, error) {
	data, err := os.ReadFile(s.path(deviceIdentityFile))
	switch {
	case err == nil:
		dev, err := tpmdevice.Parse(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.path(deviceIdentityFile), err)
		}
		return dev, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	dev, err := tpmdevice.Join(ctx, t, nil)
	if err != nil {
		return nil, err
	}
	raw, err := dev.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return dev, writeFile(s.path(deviceIdentityFile), raw)
}

// joinRemote joins the device to the directory's tenant with the user's
// sign-in token, as an Azure AD join does.
func (r *remote) joinRemote(ctx context.Context, token string, dev *tpmdevice.Device) error {
	pub, ok := dev.PublicKey().(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("join the device: device key is %T, not P-256", dev.PublicKey())
	}
	c, err := drs.NewClient(r.drsBase, r.hc)
	if err != nil {
		return err
	}
	if err := c.JoinDevice(ctx, token, dev.ID(), pub); err != nil {
		return fmt.Errorf("join the device: %w", err)
	}
	return nil
}

// remoteFlags are provision's -directory, -service and -ca.
type remoteFlags struct{ directory, service, caFile string }

func (f *remoteFlags) add(fs interface {
	StringVar(p *string, name, value, usage string)
}) {
	fs.StringVar(&f.directory, "directory", "", "the directory's issuer `URL` (https://HOST/TENANT/v2.0): sign in, join and register the key there over HTTPS, remembered for later commands (with -service)")
	fs.StringVar(&f.service, "service", "", "the PIN reset service's base `URL` (with -directory)")
	fs.StringVar(&f.caFile, "ca", "", "PEM `file` of the private CA the directory's and the service's certificates chain to")
}

// config checks the flags and reads the CA: ok is false when none is given.
func (f *remoteFlags) config() (cfg remoteConfig, ok bool, err error) {
	if f.directory == "" && f.service == "" && f.caFile == "" {
		return cfg, false, nil
	}
	if f.directory == "" || f.service == "" {
		return cfg, false, fmt.Errorf("%w: give both -directory and -service", errUsage)
	}
	cfg.Directory, cfg.Service = strings.TrimSuffix(f.directory, "/"), strings.TrimSuffix(f.service, "/")
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return cfg, false, fmt.Errorf("%w: -ca: %w", errUsage, err)
		}
		cfg.CA = string(pem)
	}
	return cfg, true, nil
}

// provisionRemote is provision against a directory and a service over
// HTTPS: the user signs in (signIn), the device joins the tenant,
// the container is made, and its login key registered with the
// directory's DRS, device-bound (DPoP).
func (a *app) provisionRemote(ctx context.Context, cfg remoteConfig, ka tpm.KeyAlgorithm) error {
	r, err := newRemote(ctx, cfg) // checked before anything is written
	if err != nil {
		return err
	}
	st, p, err := a.startProvision(ctx)
	if err != nil {
		return err
	}
	defer p.t.Close()
	tok, claims, err := r.signInClaims(ctx, a)
	if err != nil {
		return err
	}
	r.cfg.TenantID, _ = claims["tid"].(string)
	r.cfg.UserID, _ = claims["oid"].(string)
	r.cfg.UPN, _ = claims["upn"].(string)
	if r.cfg.UPN == "" {
		r.cfg.UPN, _ = claims["preferred_username"].(string)
	}
	if r.cfg.TenantID == "" || r.cfg.UserID == "" || r.cfg.UPN == "" {
		return fmt.Errorf("%w: the access token names no tid, oid and upn", errSignIn)
	}
	dev, err := st.deviceIdentity(ctx, p.t)
	if err != nil {
		return err
	}
	if err := r.joinRemote(ctx, tok.Access, dev); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Device %s joined %s.\n", dev.ID(), r.cfg.TenantID)
	if err := writeJSON(st.path(remoteFile), r.cfg); err != nil {
		return err
	}
	ccfg := container.Config{User: r.cfg.UPN, UserID: r.cfg.UserID, TenantID: r.cfg.TenantID, Algorithm: ka}
	c, err := p.provision(ctx, a, st, ccfg)
	if err != nil {
		return err
	}
	key, err := dev.Signer(ctx, p.t)
	if err != nil {
		return err
	}
	defer key.Close()
	drsTok, err := r.bound(ctx, &tok, drsScope, key)
	if err != nil {
		return err
	}
	res, err := r.registerKey(ctx, drsTok, key, c.PublicKey())
	if err != nil {
		return fmt.Errorf("register the login key: %w", err)
	}
	fmt.Fprintf(a.stdout, "Login key registered with the device registration service at %s: kid %s for %s (device %s).\n", r.drsBase, res.KID, res.UPN, dev.ID())
	fmt.Fprintf(a.stdout, "Windows Hello is set up for %s: %s login key on %s.\n", ccfg.User, ka, p.spec)
	a.printState(c)
	return nil
}

// remotePrompter is the terminal's prompter for a reset whose sign-in is
// at the directory's pages (browser or device code): the password and the
// second factor are entered there, not here.
type remotePrompter struct{ prompter }

func (remotePrompter) Password(context.Context, string) (string, error) {
	return "at-the-directory", nil
}
func (remotePrompter) VerificationCode(context.Context, string) (string, error) {
	return "at-the-directory", nil
}

// signedInMFA is a sign-in at the directory that completed; CompleteMFA
// binds its token to the device key for the PIN reset service.
type signedInMFA struct {
	r   *remote
	tok *tokens
	key crypto.Signer
}

func (m signedInMFA) CompleteMFA(ctx context.Context, _ string) (string, error) {
	return m.r.bound(ctx, m.tok, serviceScope, m.key)
}

// resetRemote is a reset against the directory and the service over
// HTTPS: the user signs in (signIn), the token is bound to the
// device key, the protector comes back from POST /v1/recover with a DPoP
// proof, and a destructive reset registers the new key over DRS.
func (a *app) resetRemote(ctx context.Context, st *state, rc remoteConfig, cs *store.Store, c *container.Container, kind reset.Kind, ep reset.EntryPoint, yes bool) error {
	question := ""
	if kind == reset.KindDestructive {
		question = fmt.Sprintf("A destructive reset deletes the keys and certificates of NgcKeyId %s. Continue?", c.KeyID())
	}
	rr, err := a.openRemoteReset(ctx, st, rc, yes, question)
	if err != nil {
		return err
	}
	defer rr.close()
	r, managed, t, key := rr.r, rr.managed, rr.t, rr.key
	var tok tokens
	dc, err := r.drsClient(key)
	if err != nil {
		return err
	}
	dc.Token = func(ctx context.Context) (string, error) { return r.bound(ctx, &tok, drsScope, key) }
	clientPolicy := reset.Policy{}
	if st.dev.EnablePINRecovery {
		clientPolicy = reset.Policy{EnablePINRecovery: true, Source: policy.DeviceMDM}
	}
	flow := &reset.Flow{
		Env: reset.Env{TPM: t, Service: r.serviceCall.WithDevice(key), Directory: dc, PINPolicy: managed},
		Device: reset.Device{
			Join: identity.AzureADJoined, Trust: identity.CloudKerberosTrust, Edition: reset.Enterprise,
			Version: reset.Windows11v23H2, Account: reset.EnterpriseAccount, SignedIn: true,
			Network: reset.Network{DomainController: true, FederationService: true},
		},
		Policy: clientPolicy,
		Tenant: reset.Tenant{Tenant: identity.Tenant{ID: rc.TenantID, ConsentedApps: []string{identity.PINResetServiceAppID, identity.PINResetClientAppID}}},
		Entry:  ep,
		Kind:   kind,
		Auth: reset.AuthenticatorFunc(func(ctx context.Context, _, _ string) (reset.MFA, error) {
			t, err := r.signIn(ctx, a)
			if err != nil {
				return nil, err
			}
			tok = t
			return signedInMFA{r: r, tok: &tok, key: key}, nil
		}),
		Prompt:  remotePrompter{prompter{a.in}},
		Store:   replacer{store: cs, old: c},
		Explain: explainFlow,
		OnEvent: a.printEvent(map[reset.Step]string{
			reset.StepAuthenticate: signedInAtDirectory,
			reset.StepMFA:          "Token bound to this device's key.",
		}),
	}
	n, err := flow.Run(ctx, c)
	if err != nil {
		return err
	}
	return a.finishReset(ctx, st, t, cs, c.KeyID(), n, ", registered with the directory")
}

// signedInAtDirectory is what a reset says after the sign-in at the
// directory's pages.
const signedInAtDirectory = "Signed in at the directory."

// remoteReset is what a reset against the directory works with: the
// connection, the managed PIN policy (nil for none), a TPM that is not in
// lockout (spec says which), and the device key that signs the proofs.
type remoteReset struct {
	r       *remote
	managed *container.PINPolicy
	t       *tpm.TPM
	spec    string
	key     *tpm.Key
}

// openRemoteReset opens a remoteReset for rc in the order that finds
// mistakes before anyone is asked anything: the servers, the policy, the
// TPM; then question, when not empty, is asked (yes answers it), and the
// device key is loaded last. The caller closes it.
func (a *app) openRemoteReset(ctx context.Context, st *state, rc remoteConfig, yes bool, question string) (*remoteReset, error) {
	r, err := newRemote(ctx, rc)
	if err != nil {
		return nil, err
	}
	managed, err := st.pinPolicy()
	if err != nil {
		return nil, err
	}
	t, spec, err := a.openUnlockedTPM(ctx, st)
	if err != nil {
		return nil, err
	}
	key, err := a.confirmAndLoadDeviceKey(ctx, st, t, yes, question)
	if err != nil {
		t.Close()
		return nil, err
	}
	return &remoteReset{r: r, managed: managed, t: t, spec: spec, key: key}, nil
}

// confirmAndLoadDeviceKey asks question (when not empty; yes answers it)
// and then loads the device key in t.
func (a *app) confirmAndLoadDeviceKey(ctx context.Context, st *state, t *tpm.TPM, yes bool, question string) (*tpm.Key, error) {
	if question != "" {
		if err := a.confirm(yes, question); err != nil {
			return nil, err
		}
	}
	dev, err := st.deviceIdentity(ctx, t)
	if err != nil {
		return nil, err
	}
	return dev.Signer(ctx, t)
}

func (rr *remoteReset) close() {
	rr.key.Close()
	rr.t.Close()
}

// resetDamagedRemote is resetDamaged against the directory over HTTPS:
// the user signs in at the directory's pages, and must be the user
// remote.json names (the damaged file cannot say whose it was; the
// device's state can); a new container takes the damaged file's place and
// its login key is registered over DRS with a token bound to the device
// key, replacing the device's old key at the directory.
func (a *app) resetDamagedRemote(ctx context.Context, st *state, cs *store.Store, rc remoteConfig, de *damagedError, yes bool) error {
	opts, err := st.pinOptions()
	if err != nil {
		return err
	}
	rr, err := a.openRemoteReset(ctx, st, rc, yes, fmt.Sprintf(
		"The container file %s is damaged. A destructive reset replaces it with a new login key, NgcKeyId and PIN for %s. Continue?", de.path, rc.UPN))
	if err != nil {
		return err
	}
	defer rr.close()
	r, managed, t, key := rr.r, rr.managed, rr.t, rr.key
	tok, claims, err := r.signInClaims(ctx, a)
	if err != nil {
		return err
	}
	if oid, _ := claims["oid"].(string); oid != rc.UserID {
		return &reset.StepError{Step: reset.StepAuthenticate, Message: fmt.Sprintf(
			"You signed in as another user. Sign in as %s, whose container this device holds.", rc.UPN)}
	}
	a.printStep(reset.StepAuthenticate, signedInAtDirectory)
	drsTok, err := r.bound(ctx, &tok, drsScope, key)
	if err != nil {
		return err
	}
	pin, err := a.in.newPIN("New PIN", pinPolicyFor(managed, nil).Check)
	if err != nil {
		return err
	}
	cfg := container.Config{User: rc.UPN, UserID: rc.UserID, TenantID: rc.TenantID, Algorithm: tpm.RSA2048}
	n, err := container.Provision(ctx, t, cfg, pin, opts...)
	if err != nil {
		return err
	}
	if err := replaceDamaged(ctx, st, cs, t, rr.spec, n); err != nil {
		return err
	}
	res, err := r.registerKey(ctx, drsTok, key, n.PublicKey())
	if err != nil {
		return fmt.Errorf("the new container is saved but its login key is not registered with the directory: %w", err)
	}
	fmt.Fprintf(a.stdout, "Your PIN was reset. New NgcKeyId %s in place of the damaged container, registered with the directory (kid %s). Use your new PIN to sign in.\n", n.KeyID(), res.KID)
	if st.dev.EnablePINRecovery {
		fmt.Fprintln(a.stdout, "The new container has no PIN reset protector: run 'hello enable-recovery' to enrol one.")
	}
	a.printState(n)
	return nil
}
