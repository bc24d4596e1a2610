package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	tpmdevice "github.com/hellosim/hellosim/device"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/service"
	"github.com/hellosim/hellosim/tpm"
)

// deviceIdentityFile holds the device identity: the TPM-bound device key
// (a blob under the SRK) and the device ID.
const deviceIdentityFile = "device.id"

// joined is this machine's device identity, loaded in the TPM, and the
// service client that proves possession of it.
type joined struct {
	dev    *tpmdevice.Device
	key    *tpm.Key
	client *service.Client
}

// join loads the device identity, making it on first use, records it in
// the (in-memory) directory as the user's device, and returns a client of
// the service on this device. Close the key when done.
func (s *state) join(ctx context.Context, t *tpm.TPM, cl *cloud) (*joined, error) {
	var dev *tpmdevice.Device
	data, err := os.ReadFile(s.path(deviceIdentityFile))
	switch {
	case err == nil:
		dev, err = tpmdevice.Parse(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.path(deviceIdentityFile), err)
		}
	case errors.Is(err, fs.ErrNotExist):
		dev, err = tpmdevice.Join(ctx, t, nil)
		if err != nil {
			return nil, err
		}
		raw, err := dev.MarshalBinary()
		if err != nil {
			return nil, err
		}
		if err := writeFile(s.path(deviceIdentityFile), raw); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	if err := cl.idp.AddDeviceKey(cl.user.TenantID, cl.user.ObjectID, dev.ID(), dev.PublicKey()); err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	// The directory's device object carries the device identity's ID,
	// so that its tokens and its key registrations name one device.
	if !strings.EqualFold(cl.device.DeviceID, dev.ID()) {
		d, err := cl.idp.AddDevice(idp.DeviceConfig{TenantID: cl.info.TenantID, DeviceID: dev.ID(), DisplayName: "HELLOSIM-PC", JoinType: identity.AzureADJoined})
		if err != nil {
			return nil, fmt.Errorf("directory: join the device: %w", err)
		}
		cl.device = d
		if err := s.saveObjects(cl); err != nil {
			return nil, err
		}
	}
	key, err := dev.Signer(ctx, t)
	if err != nil {
		return nil, err
	}
	return &joined{dev: dev, key: key, client: cl.client.WithDevice(key)}, nil
}

// bind binds a sign-in to the device, as its token broker does.
func (j *joined) bind(ctx context.Context, cl *cloud, p *idp.Pending) error {
	proof, err := cl.idp.DeviceProof(j.key, cl.user.TenantID, cl.idp.Now())
	if err != nil {
		return err
	}
	return p.BindDevice(ctx, j.dev.ID(), proof)
}
