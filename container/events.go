package container

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"io"
	"log/slog"
	"time"
)

// EventKind is a lifecycle event of a container.
type EventKind int

const (
	EventCreated          EventKind = iota + 1 // a container was provisioned (WHfB event 300)
	EventUnlocked                              // the PIN opened the container
	EventWrongPIN                              // the TPM refused a PIN
	EventLockedOut                             // the TPM is in dictionary-attack lockout
	EventPINChanged                            // ChangePIN set a new PIN
	EventRecoveryEnabled                       // the PIN reset protector was enrolled (or re-wrapped)
	EventReset                                 // a destructive or non-destructive PIN reset
	EventKeyAdded                              // a key was added to the container
	EventCertificateAdded                      // a certificate was added to the container
	EventPINExpired                            // Unlock found the PIN past the policy's Expiration: the user must change it
	EventRetired                               // Retire revoked the container a reset replaced
)

// String is the event's name in logs: created, unlocked, wrong_pin, ….
func (k EventKind) String() string {
	switch k {
	case EventCreated:
		return "created"
	case EventUnlocked:
		return "unlocked"
	case EventWrongPIN:
		return "wrong_pin"
	case EventLockedOut:
		return "locked_out"
	case EventPINChanged:
		return "pin_changed"
	case EventRecoveryEnabled:
		return "recovery_enabled"
	case EventReset:
		return "reset"
	case EventKeyAdded:
		return "key_added"
	case EventCertificateAdded:
		return "certificate_added"
	case EventPINExpired:
		return "pin_expired"
	case EventRetired:
		return "retired"
	}
	return "unknown"
}

// WHfB event IDs (Microsoft-Windows-HelloForBusiness/Operational; hello-event-300).
const (
	EventIDKeyRegistered = 300 // "The NGC key was registered successfully"
)

// Event is a structured lifecycle event. It carries identifiers and counters,
// never a PIN, a secret or key material.
type Event struct {
	Kind        EventKind
	WindowsID   int // the WHfB event ID where Windows logs one (300 for EventCreated), else 0
	Time        time.Time
	ContainerID string
	KeyID       string // NgcKeyId
	User        string
	Generation  uint64 // generation of the container the event produced or used

	Remaining   int           // EventWrongPIN: tries left before lockout (-1 unknown)
	RetryAfter  time.Duration // EventLockedOut: time until the next try
	Destructive bool          // EventReset: destructive (new keys) or not
	KeyName     string        // EventKeyAdded, EventCertificateAdded
	ServiceKey  string        // EventRecoveryEnabled: the service key ID wrapped to
}

// LogValue renders the event for log/slog.
func (e Event) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("event", e.Kind.String()),
		slog.String("container_id", e.ContainerID),
		slog.String("ngc_key_id", e.KeyID),
		slog.Uint64("generation", e.Generation),
	}
	if e.WindowsID != 0 {
		attrs = append(attrs, slog.Int("event_id", e.WindowsID))
	}
	if e.User != "" {
		attrs = append(attrs, slog.String("user", e.User))
	}
	switch e.Kind {
	case EventWrongPIN:
		attrs = append(attrs, slog.Int("remaining", e.Remaining))
	case EventLockedOut:
		attrs = append(attrs, slog.Duration("retry_after", e.RetryAfter))
	case EventReset:
		attrs = append(attrs, slog.Bool("destructive", e.Destructive))
	case EventKeyAdded, EventCertificateAdded:
		attrs = append(attrs, slog.String("key", e.KeyName))
	case EventRecoveryEnabled:
		attrs = append(attrs, slog.String("service_key", e.ServiceKey))
	}
	return slog.GroupValue(attrs...)
}

func (e Event) message() string {
	switch e.Kind {
	case EventCreated:
		return "hello container created: the NGC key was registered successfully"
	case EventUnlocked:
		return "hello container unlocked"
	case EventWrongPIN:
		return "hello container: wrong PIN"
	case EventLockedOut:
		return "hello container: PIN locked by TPM dictionary-attack protection"
	case EventPINChanged:
		return "hello container: PIN changed"
	case EventRecoveryEnabled:
		return "hello container: PIN recovery enabled"
	case EventReset:
		return "hello container: PIN reset"
	case EventKeyAdded:
		return "hello container: key added"
	case EventCertificateAdded:
		return "hello container: certificate added"
	case EventPINExpired:
		return "hello container: PIN expired, the user must change it"
	case EventRetired:
		return "hello container: the container a reset replaced was revoked"
	}
	return "hello container event"
}

// Option configures an operation: where events go, the randomness and clock
// it uses, and the PIN policy it applies.
type Option func(*options)

type options struct {
	logger  *slog.Logger
	handler func(Event)
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
func WithEventHandler(h func(Event)) Option { return func(o *options) { o.handler = h } }

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
func (o *options) emit(ctx context.Context, c *Container, e Event) {
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
	if e.Kind == EventCreated {
		e.WindowsID = EventIDKeyRegistered
	}
	if o.handler != nil {
		o.handler(e)
	}
	if o.logger != nil {
		level := slog.LevelInfo
		if e.Kind == EventWrongPIN || e.Kind == EventLockedOut || e.Kind == EventPINExpired {
			level = slog.LevelWarn
		}
		if ctx == nil {
			ctx = context.Background()
		}
		o.logger.LogAttrs(ctx, level, e.message(), slog.Any("hello", e))
	}
}
