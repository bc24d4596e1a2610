package idp

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hellosim/hellosim/reset/identity"
)

// ErrDeviceNotFound: no device object with that ID.
var ErrDeviceNotFound = errors.New("idp: device not found")

// Device is a device object: what Entra creates when a device joins or
// registers, and what a device-bound token's "deviceid" claim names.
type Device struct {
	DeviceID     string // the device's GUID (Entra's deviceId), lower case
	TenantID     string
	DisplayName  string
	JoinType     identity.JoinType
	RegisteredAt time.Time
}

// DeviceConfig describes a device to add.
type DeviceConfig struct {
	TenantID    string
	DeviceID    string // "" makes a random GUID
	DisplayName string
	JoinType    identity.JoinType // JoinUnknown means AzureADJoined
	// RegisteredAt is when the device joined; zero means now. Set it when
	// restoring a directory that was saved.
	RegisteredAt time.Time
}

// device is the directory's one record of a device, however it came in
// (AddDevice, RegisterDevice, AddDeviceKey, in any order, under one ID):
// the device object, its standing and, when the directory holds it, its
// key.
type device struct {
	Device
	standing identity.Standing
	jkt      string // the device key's RFC 7638 thumbprint; "" when the directory holds no key
	owner    string // object ID of the user who joined it with its key
	// described: AddDevice has recorded the object's name and join type;
	// a second AddDevice under the ID is refused.
	described bool
}

// standingOf is the device as the PIN reset service sees it.
func (d *device) standingOf() identity.Device {
	return identity.Device{TenantID: d.TenantID, DeviceID: d.DeviceID, Standing: d.standing, KeyThumbprint: d.jkt}
}

// boundDeviceLocked refuses to issue a token bound to the key jkt for a
// device that no longer stands enabled with that key in tenantID. The
// caller holds p.mu.
func (p *IdP) boundDeviceLocked(tenantID, deviceID, jkt string) error {
	if jkt == "" {
		return nil
	}
	d, ok := p.devices[strings.ToLower(deviceID)]
	switch {
	case !ok || d.TenantID != strings.ToLower(tenantID):
		return fmt.Errorf("%w: device %s not found", ErrDeviceNotBound, deviceID)
	case d.standing != identity.StandingEnabled:
		return fmt.Errorf("%w: device %s is %s", ErrDeviceNotBound, d.DeviceID, d.standing)
	case d.jkt != jkt:
		return fmt.Errorf("%w: device %s holds another key", ErrDeviceNotBound, d.DeviceID)
	}
	return nil
}

// directoryObjects are the directory's objects beyond tenants, users, keys
// and devices: the nonces handed out for Hello sign-in. The caller of every
// method holds p.mu.
type directoryObjects struct {
	nonces    map[string]time.Time // sign-in nonce → when it was issued
	nextSweep int                  // size of nonces at which expired ones are swept
}

func (o *directoryObjects) init() {
	if o.nonces == nil {
		o.nonces = make(map[string]time.Time)
	}
}

// AddDevice creates a device object in a tenant, as a device join does.
// The simulation does not model the join protocol (device certificate,
// transport key); a token is device-bound when the sign-in names a device
// that exists in the user's tenant. A device whose key was recorded first
// (RegisterDevice, AddDeviceKey) under the same ID in the same tenant is
// the same device: AddDevice gives it its name and join type. A device
// already added is refused (ErrExists).
func (p *IdP) AddDevice(cfg DeviceConfig) (Device, error) {
	id, err := p.guidOrNew("device id", cfg.DeviceID)
	if err != nil {
		return Device{}, fmt.Errorf("add device: %w", err)
	}
	tid, err := checkGUID("tenant id", cfg.TenantID)
	if err != nil {
		return Device{}, fmt.Errorf("add device: %w", err)
	}
	if len(cfg.DisplayName) > 256 || strings.ContainsFunc(cfg.DisplayName, func(r rune) bool { return r < 0x20 }) {
		return Device{}, fmt.Errorf("add device: %w: display name", ErrInvalid)
	}
	join := cfg.JoinType
	if join == identity.JoinUnknown {
		join = identity.AzureADJoined
	}
	at := cfg.RegisteredAt
	if at.IsZero() {
		at = p.now()
	}
	obj := Device{DeviceID: id, TenantID: tid, DisplayName: cfg.DisplayName, JoinType: join, RegisteredAt: at.UTC()}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.tenants[tid]; !ok {
		return Device{}, fmt.Errorf("add device: %w", identity.ErrUnknownTenant)
	}
	d, ok := p.devices[id]
	switch {
	case !ok:
		d = &device{standing: identity.StandingEnabled}
		p.devices[id] = d
	case d.described || d.TenantID != tid:
		return Device{}, fmt.Errorf("add device %s: %w", id, ErrExists)
	}
	d.Device, d.described = obj, true
	return obj, nil
}

// Devices returns a tenant's device objects, oldest first.
func (p *IdP) Devices(tenantID string) []Device {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Device
	for _, d := range p.devices {
		if d.TenantID == strings.ToLower(tenantID) {
			out = append(out, d.Device)
		}
	}
	slices.SortFunc(out, func(a, b Device) int {
		if c := a.RegisteredAt.Compare(b.RegisteredAt); c != 0 {
			return c
		}
		return strings.Compare(a.DeviceID, b.DeviceID)
	})
	return out
}
