package container

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"io"
	"log/slog"
	"time"

	"github.com/hellosim/hellosim/container/event"
)

func eventMessage(e event.Event) string {
	switch e.Kind {
	case event.Created:
		return "hello container created: the NGC key was registered successfully"
	case event.Unlocked:
		return "hello container unlocked"
	case event.WrongPIN:
		return "hello container: wrong PIN"
	case event.LockedOut:
		return "hello container: PIN locked by TPM dictionary-attack protection"
	case event.PINChanged:
		return "hello container: PIN changed"
	case event.RecoveryEnabled:
		return "hello container: PIN recovery enabled"
	case event.Reset:
		return "hello container: PIN reset"
	case event.KeyAdded:
		return "hello container: key added"
	case event.CertificateAdded:
		return "hello container: certificate added"
	case event.PINExpired:
		return "hello container: PIN expired, the user must change it"
	case event.Retired:
		return "hello container: the container a reset replaced was revoked"
	}
	return "hello container event"
}

// Option configures an operation: where events go, the randomness and clock
// it uses, and the PIN policy it applies.
type Option func(*options)

type options struct {
	logger  *slog.Logger
	handler func(event.Event)
	rand    io.Reader
	now     func() time.Time
	policy  *PINPolicy // from device management; nil: the container's
	watch   secretObserver
	// noRollback, when set, seals the secret instead of using NV, and is
	// the reason recorded (WithoutRollbackProtection).
	noRollback string

	trustedTPMs *x509.CertPool // WithTrustedTPMs (trust.go)
}

// WithLogger sends lifecycle events to l (Info; wrong PINs and lockouts at Warn).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithEventHandler calls h with each lifecycle event, synchronously.
func WithEventHandler(h func(event.Event)) Option { return func(o *options) { o.handler = h } }

// WithRand sets the source of randomness (default crypto/rand). The TPM makes
// key material itself; this reader makes the container secret, salts, IDs and
// the PIN reset protector.
func WithRand(r io.Reader) Option { return func(o *options) { o.rand = r } }

// WithClock sets the clock (default time.Now), used for creation and PIN
// expiration times and event timestamps.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithPINPolicy sets the PIN policy as device management delivers it (the
// PassportForWork CSP's PINComplexity, or Group Policy). It takes precedence
// over the policy the container records:
//
//   - Provision, ChangePIN, ResetPIN and Reprovision check the new PIN
//     against it (history included, over at most its History PINs) and
//     record it in the container they return;
//   - Unlock applies its Expiration to decide Session.PINExpired.
//
// Other operations ignore it. A policy the CSP would not accept makes those
// operations fail with ErrInvalidConfig before the TPM is asked anything.
//
// Why it matters: the policy in a container file is authenticated only with
// the container secret, which a destructive reset (Reprovision) never has.
// Without this option Reprovision trusts the file, and whoever can edit the
// file can weaken the policy the new PIN is held to.
func WithPINPolicy(p PINPolicy) Option {
	return func(o *options) { o.policy = &p }
}

// pinPolicy is the policy an operation applies: the WithPINPolicy one,
// checked and with its defaults filled in, or else def.
func (o *options) pinPolicy(def PINPolicy) (PINPolicy, error) {
	if o.policy == nil {
		return def, nil
	}
	if err := o.policy.Validate(); err != nil {
		return PINPolicy{}, err
	}
	return o.policy.withDefaults(), nil
}

func newOptions(opts []Option) options {
	o := options{rand: rand.Reader, now: time.Now}
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	if o.rand == nil {
		o.rand = rand.Reader
	}
	if o.now == nil {
		o.now = time.Now
	}
	return o
}

// emit fills in the common fields and delivers e.
func (o *options) emit(ctx context.Context, c *Container, e event.Event) {
	if o.logger == nil && o.handler == nil {
		return
	}
	e.Time = o.now()
	if c != nil {
		e.ContainerID = c.id
		e.KeyID = c.keyID
		e.User = c.cfg.User
		e.Generation = c.generation
	}
	if e.Kind == event.Created {
		e.WindowsID = event.IDKeyRegistered
	}
	if o.handler != nil {
		o.handler(e)
	}
	if o.logger != nil {
		level := slog.LevelInfo
		if e.Kind == event.WrongPIN || e.Kind == event.LockedOut || e.Kind == event.PINExpired {
			level = slog.LevelWarn
		}
		if ctx == nil {
			ctx = context.Background()
		}
		o.logger.LogAttrs(ctx, level, eventMessage(e), slog.Any("hello", e))
	}
}
