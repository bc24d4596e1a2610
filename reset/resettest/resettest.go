// Package resettest gives tests a ready PIN reset world in one call, as
// net/http/httptest gives HTTP code a server: a TPM (tpmtest.Open), a
// simulated Azure AD with an onboarded tenant and a user who has a password
// and a TOTP authenticator, the PIN reset service on an httptest server with
// its Go client, and a Hello container provisioned for the user and enrolled
// for PIN recovery.
//
//	w := resettest.New(t)
//	c, err := reset.NonDestructive(ctx, w.Env(), w.Container, reset.Request{Token: w.Token(t), NewPIN: "582046"})
//
// Everything is real: TPM commands on the simulator (or the TPM HELLOSIM_TPM
// names), ES256 access tokens, HPKE or RSA-OAEP envelopes, HTTP on loopback.
// Options change the tenant (cloud, onboarding, federation), the wrapping
// scheme, the PIN and the key algorithm. Everything is closed by t.Cleanup.
package resettest

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/device"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/policy"
	"github.com/hellosim/hellosim/reset/service"
	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// Defaults of a World.
const (
	DefaultPIN      = "135792"
	DefaultPassword = "correct horse battery staple"
	DefaultDomain   = "contoso.test"
	DefaultUser     = "alice"
)

type config struct {
	scheme     protector.Scheme
	cloud      identity.Cloud
	consents   []string
	federation string
	hybrid     bool
	trust      identity.TrustType
	recovery   bool
	alg        tpm.KeyAlgorithm
	pin        string
	policy     *container.PINPolicy // nil: the Windows default, unmanaged
	rate       service.RateLimit
	tp         *tpm.TPM
}

// Option changes the world New builds.
type Option func(*config)

// WithScheme sets the service key's wrapping scheme (default HPKE X25519).
func WithScheme(s protector.Scheme) Option { return func(c *config) { c.scheme = s } }

// WithCloud puts the tenant in another cloud (identity.AzureGovernment: the
// service refuses it, as the documentation says it is not available there).
func WithCloud(cl identity.Cloud) Option { return func(c *config) { c.cloud = cl } }

// WithoutOnboarding leaves the tenant without consent to the PIN reset
// applications.
func WithoutOnboarding() Option { return func(c *config) { c.consents = nil } }

// WithConsents sets the application IDs the tenant consented to (both
// identity.PINResetServiceAppID and identity.PINResetClientAppID by default).
func WithConsents(appIDs ...string) Option {
	return func(c *config) { c.consents = append([]string(nil), appIDs...) }
}

// WithFederation makes the tenant federated, signing in at signInURL.
func WithFederation(signInURL string) Option { return func(c *config) { c.federation = signInURL } }

// WithHybrid makes the tenant hybrid with the given trust type.
func WithHybrid(trust identity.TrustType) Option {
	return func(c *config) { c.hybrid, c.trust = true, trust }
}

// WithoutRecovery provisions the container without a PIN reset protector
// (CanReset DestructiveOnly).
func WithoutRecovery() Option { return func(c *config) { c.recovery = false } }

// WithAlgorithm sets the login key algorithm (default RSA-2048).
func WithAlgorithm(a tpm.KeyAlgorithm) Option { return func(c *config) { c.alg = a } }

// WithPIN sets the user's PIN (default DefaultPIN).
func WithPIN(pin string) Option { return func(c *config) { c.pin = pin } }

// WithPINPolicy makes p the PIN policy device management sets on the
// world's device: New provisions the container under it, and Env passes it
// as reset.Env.PINPolicy, so that both resets hold the new PIN to it.
func WithPINPolicy(p container.PINPolicy) Option { return func(c *config) { c.policy = &p } }

// WithRateLimit sets the service's per-user rate limit (default: the
// service's default, 5 a minute).
func WithRateLimit(rl service.RateLimit) Option { return func(c *config) { c.rate = rl } }

// WithTPM uses tp instead of opening one (the caller closes it).
func WithTPM(tp *tpm.TPM) Option { return func(c *config) { c.tp = tp } }

// World is a ready PIN reset world. Its fields are the parts, for tests that
// need to reach in; its methods are the common moves.
type World struct {
	TPM        *tpm.TPM
	IdP        *idp.IdP
	Tenant     idp.Tenant
	User       idp.User
	Password   string
	PIN        string // the container's current PIN as New provisioned it
	ServiceKey *protector.ServicePrivateKey
	// Verifier is the service's verifier of the IdP's access tokens.
	Verifier *service.JWTVerifier
	Service  *service.Service
	Server   *httptest.Server
	// Client is the service's client on the world's device: its proofs
	// are signed by DeviceKey.
	Client *service.Client
	// DeviceIdentity is the world's device identity, joined to the tenant by the
	// user (registered with the IdP as the device object); DeviceKey is its
	// TPM key, loaded. Sign-ins of the world's users are bound to it.
	DeviceIdentity *device.Device
	DeviceKey      *tpm.Key
	// Container is the user's provisioned container, enrolled for PIN
	// recovery on Device unless WithoutRecovery.
	Container *container.Container

	policy   *container.PINPolicy // the managed PIN policy (WithPINPolicy); nil: none
	offset   atomic.Int64         // added to the wall clock, in nanoseconds
	mu       sync.Mutex
	sessions map[string]*idp.Pending // per UPN, after MFA, for Refresh
}

// New builds a World or fails the test. Its TPM is tpmtest.Open's, closed
// by t.Cleanup; as only one simulator can be open in a process at a time, a
// test that needs a second world at once passes WithTPM(first.TPM).
func New(t testing.TB, opts ...Option) *World {
	t.Helper()
	cfg := config{
		consents: []string{identity.PINResetServiceAppID, identity.PINResetClientAppID},
		recovery: true,
		pin:      DefaultPIN,
	}
	for _, o := range opts {
		o(&cfg)
	}
	w := &World{Password: DefaultPassword, PIN: cfg.pin, policy: cfg.policy, sessions: map[string]*idp.Pending{}}

	var err error
	w.IdP, err = idp.New(idp.WithClock(w.Now), idp.WithArgon2(CheapArgon2()))
	check(t, "new idp", err)
	w.Tenant, err = w.IdP.AddTenant(idp.TenantConfig{
		Domain: DefaultDomain, Cloud: cfg.cloud, FederationSignInURL: cfg.federation,
		Hybrid: cfg.hybrid, TrustType: cfg.trust, ConsentedApps: cfg.consents,
	})
	check(t, "add tenant", err)
	w.User, err = w.IdP.AddUser(idp.UserConfig{TenantID: w.Tenant.ID, UPN: DefaultUser + "@" + DefaultDomain, Password: w.Password})
	check(t, "add user", err)

	w.ServiceKey, err = protector.GenerateServiceKey(cfg.scheme)
	check(t, "generate service key", err)
	w.Verifier, err = service.VerifierFor(w.IdP)
	check(t, "new token verifier", err)
	w.Service, err = service.New(service.Config{
		Verifier: w.Verifier, Directory: w.IdP,
		Keys: []protector.Unwrapper{w.ServiceKey}, Clock: w.Now, RateLimit: cfg.rate,
	})
	check(t, "new pin reset service", err)
	w.Server = httptest.NewServer(w.Service)
	t.Cleanup(w.Server.Close)

	w.TPM = cfg.tp
	if w.TPM == nil {
		w.TPM = tpmtest.Open(t)
	}
	ctx := context.Background()
	w.DeviceIdentity, err = device.Join(ctx, w.TPM, nil)
	check(t, "join device", err)
	w.DeviceKey, err = w.DeviceIdentity.Signer(ctx, w.TPM)
	check(t, "load device key", err)
	t.Cleanup(func() { w.DeviceKey.Close() })
	w.Client = service.NewClient(w.Server.URL, w.Server.Client()).WithDevice(w.DeviceKey).WithClock(w.Now)
	w.Token(t) // the user's first sign-in joins the device to the tenant
	ccfg := container.Config{Algorithm: cfg.alg}
	if cfg.policy != nil {
		ccfg.PINPolicy = *cfg.policy
	}
	w.Container = w.Provision(t, w.User, cfg.pin, cfg.recovery, ccfg)
	return w
}

// Provision provisions a container for user u with pin (Config's User,
// UserID and TenantID are filled from u), enrolled for PIN recovery under the
// service's current key when recovery is true.
func (w *World) Provision(t testing.TB, u idp.User, pin string, recovery bool, cfg container.Config) *container.Container {
	t.Helper()
	ctx := context.Background()
	cfg.User, cfg.UserID, cfg.TenantID = u.UPN, u.ObjectID, u.TenantID
	c, err := container.Provision(ctx, w.TPM, cfg, pin)
	check(t, "provision container", err)
	if !recovery {
		return c
	}
	key, err := w.Client.ServiceKey(ctx)
	check(t, "fetch service key", err)
	s, err := container.Unlock(ctx, w.TPM, c, pin)
	check(t, "unlock container", err)
	defer s.Close()
	c, err = s.EnablePINRecoveryOnDevice(ctx, key, w.DeviceIdentity.ID())
	check(t, "enable pin recovery", err)
	return c
}

// AddUser adds another user to the world's tenant (password DefaultPassword).
func (w *World) AddUser(t testing.TB, name string) idp.User {
	t.Helper()
	u, err := w.IdP.AddUser(idp.UserConfig{TenantID: w.Tenant.ID, UPN: name + "@" + w.Tenant.Domain, Password: w.Password})
	check(t, "add user", err)
	return u
}

// Now is the world's clock: the wall clock plus what Advance added. The IdP,
// its token verifier and the service all read it.
func (w *World) Now() time.Time { return time.Now().Add(time.Duration(w.offset.Load())) }

// Advance moves the world's clock forward.
func (w *World) Advance(d time.Duration) { w.offset.Add(int64(d)) }

// TOTPCode moves the clock to the next TOTP step and returns the user's
// code there, what their authenticator shows. A step's code is accepted
// once, so each call yields a code the IdP has not seen.
func (w *World) TOTPCode(t testing.TB, upn string) string {
	t.Helper()
	w.Advance(idp.TOTPPeriod)
	code, err := w.IdP.TOTPCode(upn)
	check(t, "totp code", err)
	return code
}

// Token returns a fresh access token for the world's user with MFA (amr
// ["pwd","mfa"]); each call gives a new token ID, so each can be spent on
// one recovery.
func (w *World) Token(t testing.TB) string {
	t.Helper()
	return w.TokenFor(t, w.User.UPN)
}

// TokenFor is Token for another user of the world (password DefaultPassword).
// The first call signs in with password and TOTP on the world's device
// (registering the device with the directory the first time), and binds
// the sign-in to the device, so the token is DPoP-bound to its key; later
// calls refresh the session, as a device's token broker does, until its
// MFA is too old for the service (half of service.DefaultMFAMaxAge), when
// the user signs in again.
func (w *World) TokenFor(t testing.TB, upn string) string {
	t.Helper()
	ctx := context.Background()
	key := strings.ToLower(upn)
	w.mu.Lock()
	p := w.sessions[key]
	w.mu.Unlock()
	if p != nil && w.Now().Sub(p.AuthTime()) < service.DefaultMFAMaxAge/2 {
		if tok, err := p.Refresh(ctx); err == nil {
			return tok
		}
	}
	p, err := w.IdP.SignIn(ctx, upn, w.Password)
	check(t, "sign in", err)
	tok, err := p.CompleteMFA(ctx, w.TOTPCode(t, upn))
	check(t, "complete mfa", err)
	if d, err := w.IdP.Device(ctx, w.Tenant.ID, w.DeviceIdentity.ID()); err == nil && d.Standing == identity.StandingDeleted {
		check(t, "register device", w.IdP.RegisterDevice(ctx, tok, w.DeviceIdentity.ID(), w.DeviceIdentity.PublicKey()))
	}
	check(t, "bind the sign-in to the device", w.BindDevice(ctx, p))
	tok, err = p.Refresh(ctx)
	check(t, "refresh", err)
	w.mu.Lock()
	w.sessions[key] = p
	w.mu.Unlock()
	return tok
}

// BindDevice binds a sign-in to the world's device, as the device's token
// broker does: a DPoP proof by the device key to the IdP's token endpoint.
// The device must be registered (New does it).
func (w *World) BindDevice(ctx context.Context, p *idp.Pending) error {
	u, err := p.User()
	if err != nil {
		return err
	}
	if u.TenantID != w.Tenant.ID {
		// The device is joined to the world's tenant; a user of another
		// tenant signs in unbound.
		return nil
	}
	proof, err := w.IdP.DeviceProof(w.DeviceKey, w.Tenant.ID, w.Now())
	if err != nil {
		return err
	}
	return p.BindDevice(ctx, w.DeviceIdentity.ID(), proof)
}

// TokenWithoutMFA returns an access token for the world's user that shows
// only the password (amr ["pwd"]): the service must refuse it.
func (w *World) TokenWithoutMFA(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	p, err := w.IdP.SignIn(ctx, w.User.UPN, w.Password)
	check(t, "sign in", err)
	tok, err := p.TokenWithoutMFA(ctx)
	check(t, "token without mfa", err)
	return tok
}

// Env is the reset environment of the world: its TPM, the service client,
// the IdP as the directory that registers new keys, and the managed PIN
// policy when New was given WithPINPolicy (a fresh copy each call, so a
// test may change it).
func (w *World) Env() reset.Env {
	env := reset.Env{TPM: w.TPM, Service: w.Client, Directory: w.IdP}
	if w.policy != nil {
		p := *w.policy
		env.PINPolicy = &p
	}
	return env
}

// ResetTenant describes the world's tenant for reset.Check: the directory's
// tenant as it is now, the password method, and AD FS for a federated hybrid
// certificate trust tenant.
func (w *World) ResetTenant() reset.Tenant {
	tn, err := w.IdP.LookupTenant(w.Tenant.ID)
	if err != nil {
		tn = w.Tenant
	}
	return reset.Tenant{
		Tenant:  tn.Tenant,
		Methods: []reset.Method{reset.MethodPassword},
		ADFS:    tn.Federated() && tn.Hybrid && tn.TrustType == identity.CertificateTrust,
	}
}

// Device describes a device of the world's user for reset.Check: Azure AD
// joined (hybrid joined for a hybrid tenant, with its trust type),
// Enterprise on Windows 11, signed in, every network reachable.
func (w *World) Device() reset.Device {
	d := reset.Device{
		Join: identity.AzureADJoined, Trust: identity.KeyTrust, Edition: reset.Enterprise,
		Version: reset.Windows11v23H2, Account: reset.EnterpriseAccount, SignedIn: true,
		Network: reset.Network{DomainController: true, FederationService: true},
	}
	if w.Tenant.Hybrid {
		d.Join, d.Trust = identity.HybridAzureADJoined, w.Tenant.TrustType
	}
	return d
}

// Policy is the client policy of the world's device: EnablePinRecovery on
// (from device MDM) when the container holds a protector, and the tenant's
// sign-in host allowed for web sign-in.
func (w *World) Policy() reset.Policy {
	p := reset.Policy{WebSignInAllowedURLs: []string{w.Tenant.SignInHost()}}
	if w.Container != nil && w.Container.HasProtector() {
		p.EnablePINRecovery, p.Source = true, policy.DeviceMDM
	}
	return p
}

func check(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("resettest: %s: %v", what, err)
	}
}

// CheapArgon2 are password hashing parameters for tests (one pass over 64
// KiB): still Argon2id, but offering no resistance to offline guessing.
// Never use them for real passwords.
func CheapArgon2() idp.Argon2Params { return idp.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1} }
