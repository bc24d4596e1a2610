package idp

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hellosim/hellosim/reset/service"
)

// TrustType is how a hybrid tenant's devices authenticate to on-premises
// Active Directory with Windows Hello for Business.
type TrustType int

// The trust types of the WHfB deployment guides.
const (
	KeyTrust           TrustType = iota // the public key is synchronised to AD (msDS-KeyCredentialLink)
	CertTrust                           // a certificate is issued for the key
	CloudKerberosTrust                  // Azure AD Kerberos issues partial TGTs
)

// String names the trust type.
func (t TrustType) String() string {
	switch t {
	case KeyTrust:
		return "KeyTrust"
	case CertTrust:
		return "CertTrust"
	case CloudKerberosTrust:
		return "CloudKerberosTrust"
	}
	return fmt.Sprintf("TrustType(%d)", int(t))
}

// TenantConfig describes a tenant to create.
type TenantConfig struct {
	// ID is the tenant (directory) ID; "" makes a random GUID.
	ID string
	// Domain is the verified domain users' UPNs end in, e.g. "contoso.test".
	Domain string
	// Cloud is where the tenant lives.
	Cloud Cloud
	// FederationURL, when set, is the https sign-in page of the tenant's
	// federation service (AD FS or a third-party identity provider): sign-in
	// happens there, and the token's idp claim names it.
	FederationURL string
	// Hybrid: the tenant is synchronised with an on-premises Active Directory.
	Hybrid bool
	// TrustType of a hybrid tenant (ignored otherwise).
	TrustType TrustType
	// SyncDelay for a hybrid key-trust tenant: how long after registration a
	// key becomes usable on premises; 0 means DefaultSyncDelay.
	SyncDelay time.Duration
	// Consents are the application IDs the tenant's administrator consented
	// to; both ServiceAppID and ClientAppID make it onboarded.
	Consents []string
}

// Tenant is a snapshot of a tenant.
type Tenant struct {
	ID            string
	Domain        string
	Cloud         Cloud
	FederationURL string
	Hybrid        bool
	TrustType     TrustType
	SyncDelay     time.Duration
	Consents      []string
}

// Onboarded reports whether the tenant consented to both PIN reset
// applications, as the WHfB documentation requires before non-destructive
// reset: "you must register two applications in your Azure Active Directory
// tenant: PIN Reset Service, PIN Reset Client".
func (t Tenant) Onboarded() bool {
	return slices.Contains(t.Consents, ServiceAppID) && slices.Contains(t.Consents, ClientAppID)
}

// Federated reports whether sign-in happens at a federation service.
func (t Tenant) Federated() bool { return t.FederationURL != "" }

// SignInHost is the host whose pages a PIN reset visits to sign in: the
// federation service's host when federated, else the cloud's Azure AD
// login host (for Azure Government, the documentation names
// login.microsoftonline.us). ConfigureWebSignInAllowedUrls must allow it.
func (t Tenant) SignInHost() string {
	if t.FederationURL != "" {
		if u, err := url.Parse(t.FederationURL); err == nil {
			return u.Hostname()
		}
	}
	if t.Cloud == CloudAzureGovernment {
		return "login.microsoftonline.us"
	}
	return "login.microsoftonline.com"
}

type tenant struct {
	Tenant
}

// AddTenant creates a tenant.
func (p *IdP) AddTenant(cfg TenantConfig) (Tenant, error) {
	id := cfg.ID
	if id == "" {
		g, err := p.newGUID()
		if err != nil {
			return Tenant{}, fmt.Errorf("add tenant: %w", err)
		}
		id = g
	}
	id, err := checkGUID("tenant id", id)
	if err != nil {
		return Tenant{}, fmt.Errorf("add tenant: %w", err)
	}
	domain := strings.ToLower(cfg.Domain)
	if !validDomain(domain) {
		return Tenant{}, fmt.Errorf("add tenant: %w: domain %q", ErrInvalid, cfg.Domain)
	}
	if cfg.Cloud != CloudPublic && cfg.Cloud != CloudAzureGovernment {
		return Tenant{}, fmt.Errorf("add tenant: %w: cloud %v", ErrInvalid, cfg.Cloud)
	}
	if cfg.FederationURL != "" {
		u, err := url.Parse(cfg.FederationURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return Tenant{}, fmt.Errorf("add tenant: %w: federation url must be https", ErrInvalid)
		}
	}
	if cfg.TrustType < KeyTrust || cfg.TrustType > CloudKerberosTrust {
		return Tenant{}, fmt.Errorf("add tenant: %w: trust type %v", ErrInvalid, cfg.TrustType)
	}
	if cfg.SyncDelay < 0 {
		return Tenant{}, fmt.Errorf("add tenant: %w: negative sync delay", ErrInvalid)
	}
	if cfg.SyncDelay == 0 {
		cfg.SyncDelay = DefaultSyncDelay
	}
	var consents []string
	for _, a := range cfg.Consents {
		a, err := checkGUID("application id", a)
		if err != nil {
			return Tenant{}, fmt.Errorf("add tenant: %w", err)
		}
		if !slices.Contains(consents, a) {
			consents = append(consents, a)
		}
	}
	t := &tenant{Tenant{
		ID: id, Domain: domain, Cloud: cfg.Cloud, FederationURL: cfg.FederationURL,
		Hybrid: cfg.Hybrid, TrustType: cfg.TrustType, SyncDelay: cfg.SyncDelay, Consents: consents,
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
	s.Consents = slices.Clone(t.Consents)
	return s
}

// LookupTenant returns a snapshot of the tenant.
func (p *IdP) LookupTenant(tenantID string) (Tenant, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.tenants[strings.ToLower(tenantID)]
	if !ok {
		return Tenant{}, fmt.Errorf("lookup tenant: %w", ErrUnknownTenant)
	}
	return t.snapshot(), nil
}

// Tenant implements service.Tenants: onboarding and cloud of a tenant. An
// unknown tenant's error matches both ErrUnknownTenant and
// service.ErrUnknownTenant.
func (p *IdP) Tenant(ctx context.Context, tenantID string) (service.TenantInfo, error) {
	if err := ctx.Err(); err != nil {
		return service.TenantInfo{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.tenants[strings.ToLower(tenantID)]
	if !ok {
		return service.TenantInfo{}, fmt.Errorf("%w (%w)", ErrUnknownTenant, service.ErrUnknownTenant)
	}
	return service.TenantInfo{Onboarded: t.Onboarded(), Cloud: t.Cloud}, nil
}

var _ service.Tenants = (*IdP)(nil)

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
		return fmt.Errorf("grant consent: %w", ErrUnknownTenant)
	}
	if !slices.Contains(t.Consents, appID) {
		t.Consents = append(t.Consents, appID)
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
		return fmt.Errorf("revoke consent: %w", ErrUnknownTenant)
	}
	t.Consents = slices.DeleteFunc(t.Consents, func(a string) bool { return strings.EqualFold(a, appID) })
	return nil
}

// Onboard grants both PIN reset consents: the two admin-consent steps of
// "Connect Azure Active Directory with the PIN Reset Service / Client".
func (p *IdP) Onboard(tenantID string) error {
	if err := p.GrantConsent(tenantID, ServiceAppID); err != nil {
		return err
	}
	return p.GrantConsent(tenantID, ClientAppID)
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
