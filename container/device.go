package container

import (
	"context"
	"fmt"

	"github.com/hellosim/hellosim/protector"

	"github.com/hellosim/hellosim/container/event"
)

// DeviceID is the device the container's PIN reset protector is bound to
// ("" when none is enrolled, or it was enrolled before devices were bound).
func (c *Container) DeviceID() string {
	env := c.Envelope()
	if env == nil {
		return ""
	}
	return env.Binding().DeviceID
}

// EnablePINRecoveryOnDevice is EnablePINRecovery with the protector bound
// to the device deviceID (the Device's ID): the service releases it only to
// a request proving possession of that device's key. Later re-enrolments
// (EnablePINRecovery after a key rotation, a non-destructive reset) keep
// the device.
func (s *Session) EnablePINRecoveryOnDevice(ctx context.Context, key protector.ServiceKey, deviceID string) (*Container, error) {
	if !isGUID(deviceID, false) {
		return nil, fmt.Errorf("container: enable PIN recovery: %w: device ID must be a lower-case GUID", ErrInvalidConfig)
	}
	n, err := s.enablePINRecovery(key, deviceID)
	if err != nil {
		return nil, err
	}
	s.o.emit(ctx, n, event.Event{Kind: event.RecoveryEnabled, ServiceKey: key.ID()})
	return n, nil
}
