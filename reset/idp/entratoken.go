package idp

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/hellosim/hellosim/reset/identity"
)

// Audiences and client applications of the tokens a Windows device asks
// for around Windows Hello for Business, as Entra and the open-source
// clients that speak to it (roadtx, AADInternals) name them.
const (
	// DRSResource is the device registration service's resource: the
	// audience of tokens for key registration.
	DRSResource = "urn:ms-drs:enterpriseregistration.windows.net"
	// DeviceRegistrationClientAppID is the client that asks for DRS tokens
	// (Microsoft Device Registration Client): their azp.
	DeviceRegistrationClientAppID = "dd762716-544d-4aeb-a526-687b73838a22"
	// windowsSignInAppID is the client Windows names when it signs in with
	// the Hello key: the azp of the tokens SignInWithHelloKey issues.
	windowsSignInAppID = "38aa3b87-a06d-4817-b275-7a316988d93b"
)

// NGCMFAWindow is how long after the second factor a token earns "ngcmfa"
// in amr, the claim the registration service wants before it takes a new
// Hello key: the MFA must be fresh, not one remembered from yesterday.
// Entra's window is not published; ten minutes covers provisioning.
const NGCMFAWindow = 10 * time.Minute

// entraClaims adds to tokenClaims what Entra v2 access tokens carry beyond
// the PIN reset service's needs: the device of a device-bound sign-in,
// when the user authenticated, and uti (Entra's name for the token
// identifier, the same value as jti).
type entraClaims struct {
	tokenClaims
	UTI string `json:"uti"`
}

// tokenRequest is one token to issue with entraClaims.
type tokenRequest struct {
	user       User
	federation string
	audience   string
	azp        string
	amr        []string
	deviceID   string
	authTime   time.Time
	jkt        string // the device key's thumbprint: a DPoP-bound token (cnf.jkt)
}

// issueEntra signs a v2 access token with Entra's claims.
func (p *IdP) issueEntra(r tokenRequest) (string, error) {
	var jti [16]byte
	if err := p.readRand(jti[:]); err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	id := base64.RawURLEncoding.EncodeToString(jti[:])
	now := p.now()
	c := entraClaims{
		tokenClaims: tokenClaims{
			Claims: jwt.Claims{
				Issuer:    p.Issuer(r.user.TenantID),
				Subject:   r.user.ObjectID,
				Audience:  jwt.Audience{r.audience},
				IssuedAt:  jwt.NewNumericDate(now),
				NotBefore: jwt.NewNumericDate(now),
				Expiry:    jwt.NewNumericDate(now.Add(p.tokenTTL)),
				ID:        id,
			},
			TenantID: r.user.TenantID, ObjectID: r.user.ObjectID, UPN: r.user.UPN,
			AMR: r.amr, AZP: r.azp, IDP: r.federation, Ver: "2.0",
			DeviceID: r.deviceID,
		},
		UTI: id,
	}
	if !r.authTime.IsZero() {
		c.AuthTime = r.authTime.Unix()
	}
	if r.jkt != "" {
		c.CNF = &tokenCNF{JKT: r.jkt}
	}
	p.mu.Lock()
	// A token bound to a device is issued only while the device stands
	// enabled with that key: a disabled device gets none (Refresh included).
	if err := p.boundDeviceLocked(r.user.TenantID, r.deviceID, r.jkt); err != nil {
		p.mu.Unlock()
		return "", fmt.Errorf("issue token: %w", err)
	}
	if len(p.signers) == 0 {
		p.mu.Unlock()
		return "", fmt.Errorf("issue token: %w", errNoSigner)
	}
	signer := p.signers[0].signer
	p.mu.Unlock()
	tok, err := jwt.Signed(signer).Claims(c).Serialize()
	if err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	return tok, nil
}

// DeviceToken returns an access token for resource, bound to the device
// deviceID, from a sign-in that completed MFA: what Windows asks for from
// the signed-in session before it registers a Hello key (resource
// DRSResource). amr is ["pwd","mfa"], with "ngcmfa" added while the MFA is
// within NGCMFAWindow; deviceid names the device, which must exist in the
// user's tenant (deviceID "" gives a token that is not device-bound, as a
// sign-in on an unregistered device gets); auth_time is when the MFA
// completed. resource is DRSResource or the PIN reset service's
// application ID.
//
// A sign-in bound to a device key (BindDevice) yields tokens for that
// device bound to its key (cnf.jkt, RFC 9449): the device registration
// service then takes them only with a DPoP proof of the key. A bound
// sign-in gives no token for another device (ErrDeviceNotBound).
func (s *Pending) DeviceToken(ctx context.Context, deviceID, resource string) (string, error) {
	ss, err := s.session(ctx, "device token")
	if err != nil {
		return "", err
	}
	p, now, mfaAt, boundDevice, jkt := s.p, ss.now, ss.mfaAt, ss.deviceID, ss.jkt
	azp := map[string]string{DRSResource: DeviceRegistrationClientAppID, identity.PINResetServiceAppID: identity.PINResetClientAppID}[resource]
	if azp == "" {
		return "", fmt.Errorf("device token: %w: resource %q", ErrInvalid, resource)
	}
	p.mu.Lock()
	u, err := p.activeUserLocked(s.upn, now)
	if err != nil {
		p.mu.Unlock()
		return "", fmt.Errorf("device token: %w", err)
	}
	var dev string
	if deviceID != "" {
		d, ok := p.devices[strings.ToLower(deviceID)]
		if !ok || d.TenantID != u.TenantID {
			p.mu.Unlock()
			return "", fmt.Errorf("device token: %w", ErrDeviceNotFound)
		}
		dev = d.DeviceID
	}
	var bind string
	if dev != "" && boundDevice != "" {
		if !strings.EqualFold(dev, boundDevice) {
			p.mu.Unlock()
			return "", fmt.Errorf("device token: %w: the sign-in is bound to device %s", ErrDeviceNotBound, boundDevice)
		}
		bind = jkt
	}
	snap, fed := u.snapshot(), federationHost(u.tenant)
	p.mu.Unlock()
	amr := []string{"pwd", "mfa"}
	if now.Sub(mfaAt) <= NGCMFAWindow {
		amr = append(amr, "ngcmfa")
	}
	tok, err := p.issueEntra(tokenRequest{user: snap, federation: fed, audience: resource, azp: azp, amr: amr, deviceID: dev, authTime: mfaAt, jkt: bind})
	if err != nil {
		return "", fmt.Errorf("device token: %w", err)
	}
	return tok, nil
}

// hasAMR reports whether a verified token's amr holds m.
func hasAMR(amr []string, m string) bool { return slices.Contains(amr, m) }
