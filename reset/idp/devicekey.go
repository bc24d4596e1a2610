package idp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"fmt"
	"strings"
	"time"

	"github.com/hellosim/hellosim/internal/dpop"
	"github.com/hellosim/hellosim/reset/identity"
)

// DeviceProofMaxAge bounds the age of the DPoP proof BindDevice accepts.
const DeviceProofMaxAge = time.Minute

// RegisterDevice records a device object: the device joining the tenant
// with its TPM-bound key (P-256, the device key; not the user's Hello key),
// authorised by an access token with MFA for a user of the tenant, as an
// Azure AD join is. The device ID is the device's own (a GUID). A device
// the directory already holds a key for, or that is in another tenant, is
// refused (ErrExists); a device object added without a key (AddDevice) in
// the user's tenant gets this key. Sign-ins on the device are then bound to it with
// Pending.BindDevice.
func (p *IdP) RegisterDevice(ctx context.Context, token, deviceID string, pub crypto.PublicKey) error {
	claims, err := p.verifier.Verify(ctx, token)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("register device: %w", ctx.Err())
		}
		return fmt.Errorf("register device: %w: %w", ErrTokenRefused, err)
	}
	if !claims.HasMFA() {
		return fmt.Errorf("register device: %w", ErrTokenWithoutMFA)
	}
	id, err := checkGUID("device id", deviceID)
	if err != nil {
		return fmt.Errorf("register device: %w", err)
	}
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		return fmt.Errorf("register device: %w: device key must be ECDSA P-256", ErrUnsupportedKey)
	}
	if _, err := k.ECDH(); err != nil {
		return fmt.Errorf("register device: %w: point invalid", ErrUnsupportedKey)
	}
	jkt, err := dpop.Thumbprint(k)
	if err != nil {
		return fmt.Errorf("register device: %w", err)
	}
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	u, ok := p.byObject[objectKey(claims.TenantID, claims.ObjectID)]
	if !ok || u.Disabled {
		return fmt.Errorf("register device: %w", ErrUnknownUser)
	}
	if d, taken := p.devices[id]; taken && (d.jkt != "" || d.TenantID != u.TenantID) {
		return fmt.Errorf("register device %s: %w", id, ErrExists)
	}
	p.keyDeviceLocked(id, u, jkt, now)
	return nil
}

// keyDeviceLocked records jkt as the key of device id, joined by u: on the
// device object when there is one, else on a new one. The caller holds
// p.mu and has checked that the device is u's tenant's and holds no other
// key.
func (p *IdP) keyDeviceLocked(id string, u *user, jkt string, now time.Time) {
	d, ok := p.devices[id]
	if !ok {
		d = &device{Device: Device{DeviceID: id, TenantID: u.TenantID, JoinType: identity.AzureADJoined, RegisteredAt: now.UTC()},
			standing: identity.StandingEnabled}
		p.devices[id] = d
	}
	d.jkt, d.owner = jkt, u.ObjectID
}

// SetDeviceDisabled disables or enables a device object. Tokens already
// bound to a disabled device are refused by the PIN reset service, which
// asks at request time (Device).
func (p *IdP) SetDeviceDisabled(deviceID string, disabled bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	d, ok := p.devices[strings.ToLower(deviceID)]
	if !ok {
		return fmt.Errorf("set device disabled: %w", ErrKeyNotFound)
	}
	d.standing = identity.StandingEnabled
	if disabled {
		d.standing = identity.StandingDisabled
	}
	return nil
}

// Device returns the device object as it stands now (the PIN reset
// service's Directory method). A device the directory does not hold stands
// deleted; a device of another tenant is not this tenant's to answer for
// (ErrDeviceNotFound).
func (p *IdP) Device(ctx context.Context, tenantID, deviceID string) (identity.Device, error) {
	if err := ctx.Err(); err != nil {
		return identity.Device{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	d, ok := p.devices[strings.ToLower(deviceID)]
	switch {
	case !ok:
		return identity.Device{TenantID: strings.ToLower(tenantID), DeviceID: strings.ToLower(deviceID), Standing: identity.StandingDeleted}, nil
	case d.TenantID != strings.ToLower(tenantID):
		return identity.Device{}, fmt.Errorf("device %s: %w (%w)", deviceID, ErrDeviceNotFound, identity.ErrDeviceElsewhere)
	}
	return d.standingOf(), nil
}

// Account returns the user as they stand now (the PIN reset service's
// Directory method): enabled, disabled or deleted, and when their sessions
// were last revoked.
func (p *IdP) Account(ctx context.Context, tenantID, objectID string) (identity.Account, error) {
	if err := ctx.Err(); err != nil {
		return identity.Account{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	a := identity.Account{TenantID: strings.ToLower(tenantID), ObjectID: strings.ToLower(objectID), Standing: identity.StandingDeleted}
	u, ok := p.byObject[objectKey(tenantID, objectID)]
	if !ok {
		return a, nil
	}
	a.Standing = identity.StandingEnabled
	if u.Disabled {
		a.Standing = identity.StandingDisabled
	}
	a.SessionsRevokedAt = u.revokedAt
	return a, nil
}

// DeleteUser removes a user from the directory. Its registered keys and
// devices stay (as orphaned objects do); the PIN reset service refuses the
// user's tokens from then on.
func (p *IdP) DeleteUser(upn string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := strings.ToLower(upn)
	u, ok := p.users[key]
	if !ok {
		return fmt.Errorf("delete user: %w", ErrUnknownUser)
	}
	delete(p.users, key)
	delete(p.byObject, objectKey(u.TenantID, u.ObjectID))
	return nil
}

// RevokeSessions revokes a user's sessions now, as an administrator's
// "revoke sessions" does: pending sign-ins can no longer Refresh, and relying
// parties that ask (Account) refuse tokens issued before now.
func (p *IdP) RevokeSessions(upn string) error {
	now := p.now()
	return p.updateUser(upn, "revoke sessions", func(u *user) { u.revokedAt = now })
}

// TokenEndpoint is the URL a device's DPoP proof names (htu) when it binds
// a sign-in in tenantID to itself.
func (p *IdP) TokenEndpoint(tenantID string) string {
	return strings.TrimSuffix(p.Issuer(tenantID), "/v2.0") + "/oauth2/v2.0/token"
}

// BindDevice binds the sign-in to a registered device of the user's
// tenant: proof is a DPoP proof (RFC 9449 §5) signed by the device key,
// htm POST, htu TokenEndpoint, made within DeviceProofMaxAge. Tokens issued
// from then on (CompleteMFA, Refresh) carry deviceid and cnf.jkt, the
// thumbprint of the device key, so they are usable only with that key's
// proofs. A sign-in is bound once; binding it to another device fails.
func (s *Pending) BindDevice(ctx context.Context, deviceID, proof string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p := s.p
	pr, err := dpop.Parse(proof)
	if err != nil {
		return fmt.Errorf("bind device: %w: %w", ErrTokenRefused, err)
	}
	now := p.now()
	p.mu.Lock()
	u, uok := p.users[s.upn]
	d, dok := p.devices[strings.ToLower(deviceID)]
	var dev identity.Device
	if dok {
		dev = d.standingOf()
	}
	p.mu.Unlock()
	switch {
	case !uok:
		return fmt.Errorf("bind device: %w", ErrUnknownUser)
	case !dok || dev.TenantID != u.TenantID || dev.Standing != identity.StandingEnabled || dev.KeyThumbprint == "":
		// A device without a key has nothing to prove possession of.
		return fmt.Errorf("bind device: %w", ErrKeyNotFound)
	}
	if err := pr.Check(dpop.Expect{HTM: "POST", HTU: p.TokenEndpoint(u.TenantID), JKT: dev.KeyThumbprint,
		Now: now, MaxAge: DeviceProofMaxAge, Skew: p.verifier.Skew}); err != nil {
		return fmt.Errorf("bind device: %w: %w", ErrTokenRefused, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deviceID != "" && s.deviceID != dev.DeviceID {
		return fmt.Errorf("bind device: %w: sign-in bound to another device", ErrInvalid)
	}
	// A proof binds one sign-in: its jti is remembered for as long as the
	// proof could still be accepted.
	use := "dpop\x00" + pr.JKT + "\x00" + pr.JTI
	p.mu.Lock()
	if prev, used := p.tokenUses[use]; used && now.Before(prev.until) {
		p.mu.Unlock()
		return fmt.Errorf("bind device: %w: device proof already used", ErrTokenRefused)
	}
	p.recordTokenUse(use, "", time.Unix(pr.IAT, 0).Add(DeviceProofMaxAge+p.verifier.Skew), now)
	p.mu.Unlock()
	s.deviceID, s.jkt = dev.DeviceID, dev.KeyThumbprint
	return nil
}

// objectKey indexes users by tenant and object ID.
func objectKey(tenantID, objectID string) string {
	return strings.ToLower(tenantID) + "/" + strings.ToLower(objectID)
}

// DeviceProof is the device's side of BindDevice: a DPoP proof signed by
// the device key (a crypto.Signer: the TPM key of device.Device), for
// POST to the tenant's TokenEndpoint, dated now, with a random jti.
func (p *IdP) DeviceProof(key crypto.Signer, tenantID string, now time.Time) (string, error) {
	return dpop.Fresh(key, dpop.Claims{HTM: "POST", HTU: p.TokenEndpoint(tenantID), IAT: now.Unix()})
}

// AddDeviceKey records a device's key, without a sign-in, as a directory
// import or an administrator does: the device of a user of tenantID, with
// its P-256 key, on the device object of that ID (AddDevice) or a new one.
// A device already recorded with the same key is a no-op; with another key,
// or in another tenant, it is refused (ErrExists).
func (p *IdP) AddDeviceKey(tenantID, ownerObjectID, deviceID string, pub crypto.PublicKey) error {
	id, err := checkGUID("device id", deviceID)
	if err != nil {
		return fmt.Errorf("add device: %w", err)
	}
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		return fmt.Errorf("add device: %w: device key must be ECDSA P-256", ErrUnsupportedKey)
	}
	jkt, err := dpop.Thumbprint(k)
	if err != nil {
		return fmt.Errorf("add device: %w", err)
	}
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	u, ok := p.byObject[objectKey(tenantID, ownerObjectID)]
	if !ok {
		return fmt.Errorf("add device: %w", ErrUnknownUser)
	}
	if d, taken := p.devices[id]; taken {
		switch {
		case d.TenantID != u.TenantID || d.jkt != "" && d.jkt != jkt:
			return fmt.Errorf("add device %s: %w", id, ErrExists)
		case d.jkt == jkt:
			return nil
		}
	}
	p.keyDeviceLocked(id, u, jkt, now)
	return nil
}
