package idp

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/keycred"
)

// keyCredential returns the key's msDS-KeyCredentialLink value as Entra
// holds it (MS-ADTS 2.2.20): usage NGC, KeySource Azure AD, the device it
// was registered from, the Attestation and MFANotUsed flags as the
// registration earned them, created at registration, last logon at the
// last Hello sign-in (at registration before any).
func (k RegisteredKey) keyCredential() (*keycred.KeyCredential, error) {
	var flags keycred.KeyFlags
	if k.Attested {
		flags |= keycred.KeyFlagAttestation
	}
	if k.WithoutMFA {
		flags |= keycred.KeyFlagMFANotUsed
	}
	kc, err := keycred.NewNGC(k.Public, keycred.KeySourceAzureAD, k.DeviceID, flags, k.RegisteredAt)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", k.KeyID, err)
	}
	if !k.LastSignIn.IsZero() {
		kc.LastLogon = k.LastSignIn.UTC().Truncate(100 * time.Nanosecond)
	}
	return kc, nil
}

// DirectoryUser is what the directory holds for a user: the user object
// with its Hello keys as msDS-KeyCredentialLink values, and the devices
// they were registered from.
type DirectoryUser struct {
	TenantID string
	ObjectID string
	UPN      string
	// DistinguishedName is the user's DN in the tenant's on-premises
	// Active Directory (hybrid tenants; synthesised from the UPN, as
	// CN=<name>,CN=Users,DC=<domain labels>). Empty for cloud-only tenants.
	DistinguishedName string
	Keys              []DirectoryKey
	Devices           []Device
}

// DirectoryKey is one registered key as the directory shows it.
type DirectoryKey struct {
	KeyID        string // the directory's key ID (NgcKeyId, or the kid for DRS registrations)
	KID          string // keycred.Identifier of the key's BCRYPT blob
	DeviceID     string
	RegisteredAt time.Time
	LastSignIn   time.Time
	Attested     bool
	// KeyCredentialLink is Entra's value, in DN-Binary form with the UPN
	// as the owner (as DSInternals shows Entra keys).
	KeyCredentialLink string
	// OnPremisesKeyCredentialLink is the value written back to the user's
	// msDS-KeyCredentialLink in AD for hybrid key trust, owner the user's
	// DN, once the tenant's SyncDelay has passed (WrittenBackAt); "" before
	// then, and always for cloud-only tenants and other trust types.
	OnPremisesKeyCredentialLink string
	WrittenBackAt               time.Time
}

// DirectoryUser returns the directory's view of the user upn at the IdP's
// current time.
func (p *IdP) DirectoryUser(upn string) (DirectoryUser, error) {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	u, err := p.userLocked(upn, "directory user")
	if err != nil {
		return DirectoryUser{}, err
	}
	t := u.tenant
	out := DirectoryUser{TenantID: u.TenantID, ObjectID: u.ObjectID, UPN: u.UPN}
	if t.Hybrid {
		out.DistinguishedName = userDN(u.UPN)
	}
	var keys []*RegisteredKey
	for _, k := range p.regKeys {
		if k.ObjectID == u.ObjectID && k.TenantID == u.TenantID {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b *RegisteredKey) int {
		if c := a.RegisteredAt.Compare(b.RegisteredAt); c != 0 {
			return c
		}
		return strings.Compare(a.KeyID, b.KeyID)
	})
	seen := map[string]bool{}
	for _, k := range keys {
		kc, err := k.keyCredential()
		if err != nil {
			return DirectoryUser{}, fmt.Errorf("directory user: %w", err)
		}
		cloud, err := kc.AttributeValue(u.UPN)
		if err != nil {
			return DirectoryUser{}, fmt.Errorf("directory user: %w", err)
		}
		dk := DirectoryKey{
			KeyID: k.KeyID, KID: k.KID, DeviceID: k.DeviceID, RegisteredAt: k.RegisteredAt,
			LastSignIn: k.LastSignIn, Attested: k.Attested, KeyCredentialLink: cloud,
		}
		if t.Hybrid && t.TrustType == identity.KeyTrust {
			if at := k.RegisteredAt.Add(t.SyncDelay); !now.Before(at) {
				onPrem, err := kc.AttributeValue(out.DistinguishedName)
				if err != nil {
					return DirectoryUser{}, fmt.Errorf("directory user: %w", err)
				}
				dk.OnPremisesKeyCredentialLink, dk.WrittenBackAt = onPrem, at
			}
		}
		out.Keys = append(out.Keys, dk)
		if d, ok := p.devices[k.DeviceID]; ok && !seen[d.DeviceID] {
			seen[d.DeviceID] = true
			out.Devices = append(out.Devices, d.Device)
		}
	}
	return out, nil
}

// userDN is the DN the simulated on-premises AD gives a user:
// alice@contoso.test is CN=alice,CN=Users,DC=contoso,DC=test. Characters
// RFC 4514 reserves are escaped.
func userDN(upn string) string {
	name, domain, _ := strings.Cut(upn, "@")
	var b strings.Builder
	b.WriteString("CN=")
	b.WriteString(escapeDN(name))
	b.WriteString(",CN=Users")
	for _, label := range strings.Split(domain, ".") {
		b.WriteString(",DC=")
		b.WriteString(escapeDN(label))
	}
	return b.String()
}

func escapeDN(s string) string {
	var b strings.Builder
	for i, r := range s {
		if strings.ContainsRune(`,+"\<>;=`, r) || (i == 0 && (r == '#' || r == ' ')) || (i == len(s)-1 && r == ' ') {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// RestoreKey puts back a key an earlier run of the directory registered,
// for a directory reloaded from storage (the hello example keeps its
// directory in files). It takes no token: it is the directory's own
// restore, not a registration. The key must be a Hello key of an existing
// user, its KID its identifier, its device (if any) an existing device of
// the user's tenant, and its KeyID free.
func (p *IdP) RestoreKey(k RegisteredKey) error {
	if err := checkHelloKey(k.Public); err != nil {
		return fmt.Errorf("restore key: %w", err)
	}
	kid, err := keycred.PublicKeyIdentifier(k.Public)
	if err != nil || kid != k.KID {
		return fmt.Errorf("restore key: %w: kid does not name the key", ErrInvalid)
	}
	if k.KeyID == "" || k.RegisteredAt.IsZero() {
		return fmt.Errorf("restore key: %w: key id and registration time are required", ErrInvalid)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var owner *user
	for _, u := range p.users {
		if u.ObjectID == strings.ToLower(k.ObjectID) && u.TenantID == strings.ToLower(k.TenantID) {
			owner = u
		}
	}
	if owner == nil {
		return fmt.Errorf("restore key: %w", ErrUnknownUser)
	}
	if k.DeviceID != "" {
		d, ok := p.devices[strings.ToLower(k.DeviceID)]
		if !ok || d.TenantID != owner.TenantID {
			return fmt.Errorf("restore key: %w", ErrDeviceNotFound)
		}
		k.DeviceID = d.DeviceID
	}
	if _, taken := p.regKeys[k.KeyID]; taken {
		return fmt.Errorf("restore key %s: %w", k.KeyID, ErrExists)
	}
	k.TenantID, k.ObjectID = owner.TenantID, owner.ObjectID
	p.regKeys[k.KeyID] = &k
	return nil
}
