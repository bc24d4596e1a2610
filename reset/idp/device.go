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

// directoryObjects are the directory's objects beyond tenants, users and
// keys: devices, and the nonces handed out for Hello sign-in. The caller of
// every method holds p.mu.
type directoryObjects struct {
	devices   map[string]*Device   // by lower-case device ID
	nonces    map[string]time.Time // sign-in nonce → when it was issued
	nextSweep int                  // size of nonces at which expired ones are swept
}

func (o *directoryObjects) init() {
	if o.devices == nil {
		o.devices = make(map[string]*Device)
		o.nonces = make(map[string]time.Time)
	}
}

// AddDevice creates a device object in a tenant, as a device join does.
// The simulation does not model the join protocol (device certificate,
// transport key); a token is device-bound when the sign-in names a device
// that exists in the user's tenant.
func (p *IdP) AddDevice(cfg DeviceConfig) (Device, error) {
	id := cfg.DeviceID
	if id == "" {
		g, err := p.newGUID()
		if err != nil {
			return Device{}, fmt.Errorf("add device: %w", err)
		}
		id = g
	}
	id, err := checkGUID("device id", id)
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
	d := &Device{DeviceID: id, TenantID: tid, DisplayName: cfg.DisplayName, JoinType: join, RegisteredAt: at.UTC()}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.tenants[tid]; !ok {
		return Device{}, fmt.Errorf("add device: %w", identity.ErrUnknownTenant)
	}
	p.objects.init()
	if _, dup := p.objects.devices[id]; dup {
		return Device{}, fmt.Errorf("add device %s: %w", id, ErrExists)
	}
	p.objects.devices[id] = d
	return *d, nil
}

// LookupDevice returns the device object with that ID.
func (p *IdP) LookupDevice(deviceID string) (Device, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d, ok := p.objects.devices[strings.ToLower(deviceID)]
	if !ok {
		return Device{}, fmt.Errorf("lookup device: %w", ErrDeviceNotFound)
	}
	return *d, nil
}

// Devices returns a tenant's device objects, oldest first.
func (p *IdP) Devices(tenantID string) []Device {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Device
	for _, d := range p.objects.devices {
		if d.TenantID == strings.ToLower(tenantID) {
			out = append(out, *d)
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
