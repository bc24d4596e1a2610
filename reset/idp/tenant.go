package idp

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hellosim/hellosim/reset/identity"
)

// TenantConfig describes a tenant to create.
type TenantConfig struct {
	// ID is the tenant (directory) ID; "" makes a random GUID.
	ID string
	// Domain is the verified domain users' UPNs end in, e.g. "contoso.test".
	Domain string
	// Cloud is where the tenant lives.
	Cloud identity.Cloud
	// FederationSignInURL, when set, is the https sign-in page of the tenant's
	// federation service (AD FS or a third-party identity provider): sign-in
	// happens there, and the token's idp claim names it.
	FederationSignInURL string
	// Hybrid: the tenant is synchronised with an on-premises Active Directory.
	Hybrid bool
	// TrustType of a hybrid tenant (ignored otherwise); TrustUnknown means
	// key trust.
	TrustType identity.TrustType
	// SyncDelay for a hybrid key-trust tenant: how long after registration a
	// key becomes usable on premises; 0 means DefaultSyncDelay.
	SyncDelay time.Duration
	// ConsentedApps are the application IDs the tenant's administrator consented
	// to; both identity.PINResetServiceAppID and identity.PINResetClientAppID
	// make it onboarded.
	ConsentedApps []string
}

// Tenant is a snapshot of a tenant: its identity (ID, cloud, consents,
// federation sign-in page: the identity.Tenant the PIN reset service is
// given) and what only the directory holds.
type Tenant struct {
	identity.Tenant
	Domain    string
	Hybrid    bool
	TrustType identity.TrustType
	SyncDelay time.Duration
}

// SignInHost is the host whose pages a PIN reset visits to sign in: the
// federation service's host when federated, else the cloud's Azure AD
// login host (for Azure Government, the documentation names
// login.microsoftonline.us). ConfigureWebSignInAllowedUrls must allow it.
func (t Tenant) SignInHost() string {
	if t.FederationSignInURL != "" {
		if u, err := url.Parse(t.FederationSignInURL); err == nil {
			return u.Hostname()
		}
	}
	return t.Cloud.SignInHost()
}

type tenant struct {
	Tenant
}

// AddTenant creates a tenant.
func (p *IdP) AddTenant(cfg TenantConfig) (Tenant, error) {
	id, err := p.guidOrNew("tenant id", cfg.ID)
	if err != nil {
		return Tenant{}, fmt.Errorf("add tenant: %w", err)
	}
	domain := strings.ToLower(cfg.Domain)
	if !validDomain(domain) {
		return Tenant{}, fmt.Errorf("add tenant: %w: domain %q", ErrInvalid, cfg.Domain)
	}
	if !cfg.Cloud.Known() {
		return Tenant{}, fmt.Errorf("add tenant: %w: cloud %v", ErrInvalid, cfg.Cloud)
	}
	if cfg.FederationSignInURL != "" {
		u, err := url.Parse(cfg.FederationSignInURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return Tenant{}, fmt.Errorf("add tenant: %w: federation url must be https", ErrInvalid)
		}
	}
	if cfg.TrustType == identity.TrustUnknown {
		cfg.TrustType = identity.KeyTrust
	}
	if cfg.TrustType < identity.KeyTrust || cfg.TrustType > identity.CloudKerberosTrust {
		return Tenant{}, fmt.Errorf("add tenant: %w: trust type %v", ErrInvalid, cfg.TrustType)
	}
	if cfg.SyncDelay < 0 {
		return Tenant{}, fmt.Errorf("add tenant: %w: negative sync delay", ErrInvalid)
	}
	if cfg.SyncDelay == 0 {
		cfg.SyncDelay = DefaultSyncDelay
	}
	var consents []string
	for _, a := range cfg.ConsentedApps {
		a, err := checkGUID("application id", a)
		if err != nil {
			return Tenant{}, fmt.Errorf("add tenant: %w", err)
		}
		if !slices.Contains(consents, a) {
			consents = append(consents, a)
		}
	}
	t := &tenant{Tenant{
		Tenant: identity.Tenant{ID: id, Cloud: cfg.Cloud, ConsentedApps: consents, FederationSignInURL: cfg.FederationSignInURL},
		Domain: domain, Hybrid: cfg.Hybrid, TrustType: cfg.TrustType, SyncDelay: cfg.SyncDelay,
	}}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, dup := p.tenants[id]; dup {
		return Tenant{}, fmt.Errorf("add tenant %s: %w", id, ErrExists)
	}
	for _, o := range p.tenants {
		if o.Domain == domain {
			return Tenant{}, fmt.Errorf("add tenant: domain %s: %w", domain, ErrExists)
		}
	}
	p.tenants[id] = t
	return t.snapshot(), nil
}

func (t *tenant) snapshot() Tenant {
	s := t.Tenant
	s.Tenant = t.Tenant.Tenant.Clone()
	return s
}

// LookupTenant returns a snapshot of the tenant.
func (p *IdP) LookupTenant(tenantID string) (Tenant, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.tenants[strings.ToLower(tenantID)]
	if !ok {
		return Tenant{}, fmt.Errorf("lookup tenant: %w", identity.ErrUnknownTenant)
	}
	return t.snapshot(), nil
}

// Tenant returns the tenant's identity (cloud, consents, federation), as
// the PIN reset service looks it up at request time (it implements
// service.Directory). An unknown tenant's error matches
// identity.ErrUnknownTenant.
func (p *IdP) Tenant(ctx context.Context, tenantID string) (identity.Tenant, error) {
	if err := ctx.Err(); err != nil {
		return identity.Tenant{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.tenants[strings.ToLower(tenantID)]
	if !ok {
		return identity.Tenant{}, fmt.Errorf("tenant %s: %w", tenantID, identity.ErrUnknownTenant)
	}
	return t.Tenant.Tenant.Clone(), nil
}

// GrantConsent records an administrator's consent to appID.
func (p *IdP) GrantConsent(tenantID, appID string) error {
	appID, err := checkGUID("application id", appID)
	if err != nil {
		return fmt.Errorf("grant consent: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.tenants[strings.ToLower(tenantID)]
	if !ok {
		return fmt.Errorf("grant consent: %w", identity.ErrUnknownTenant)
	}
	if !slices.Contains(t.ConsentedApps, appID) {
		t.ConsentedApps = append(t.ConsentedApps, appID)
	}
	return nil
}

// RevokeConsent removes the consent to appID (deleting the service
// principal from the tenant).
func (p *IdP) RevokeConsent(tenantID, appID string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.tenants[strings.ToLower(tenantID)]
	if !ok {
		return fmt.Errorf("revoke consent: %w", identity.ErrUnknownTenant)
	}
	t.ConsentedApps = slices.DeleteFunc(t.ConsentedApps, func(a string) bool { return strings.EqualFold(a, appID) })
	return nil
}

// Onboard grants both PIN reset consents: the two admin-consent steps of
// "Connect Azure Active Directory with the PIN Reset Service / Client".
func (p *IdP) Onboard(tenantID string) error {
	if err := p.GrantConsent(tenantID, identity.PINResetServiceAppID); err != nil {
		return err
	}
	return p.GrantConsent(tenantID, identity.PINResetClientAppID)
}

// validDomain accepts lower-case DNS names with at least two labels.
func validDomain(d string) bool {
	if len(d) == 0 || len(d) > 253 || !strings.Contains(d, ".") {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
