// Package event is the vocabulary of a Hello container's lifecycle events —
// created (WHfB event 300), unlocked, wrong PIN, locked out, PIN changed,
// recovery enabled, reset, key and certificate added, PIN expired, retired —
// as package container reports them to a *slog.Logger or a callback
// (container.WithLogger, container.WithEventHandler). An Event carries
// identifiers and counters, never a PIN, a secret or key material.
package event

import (
	"log/slog"
	"time"
)

// Kind is a lifecycle event of a container.
type Kind int

const (
	Created          Kind = iota + 1 // a container was provisioned (WHfB event 300)
	Unlocked                         // the PIN opened the container
	WrongPIN                         // the TPM refused a PIN
	LockedOut                        // the TPM is in dictionary-attack lockout
	PINChanged                       // ChangePIN set a new PIN
	RecoveryEnabled                  // the PIN reset protector was enrolled (or re-wrapped)
	Reset                            // a destructive or non-destructive PIN reset
	KeyAdded                         // a key was added to the container
	CertificateAdded                 // a certificate was added to the container
	PINExpired                       // Unlock found the PIN past the policy's Expiration: the user must change it
	Retired                          // Retire revoked the container a reset replaced
)

// String is the event's name in logs: created, unlocked, wrong_pin, ….
func (k Kind) String() string {
	switch k {
	case Created:
		return "created"
	case Unlocked:
		return "unlocked"
	case WrongPIN:
		return "wrong_pin"
	case LockedOut:
		return "locked_out"
	case PINChanged:
		return "pin_changed"
	case RecoveryEnabled:
		return "recovery_enabled"
	case Reset:
		return "reset"
	case KeyAdded:
		return "key_added"
	case CertificateAdded:
		return "certificate_added"
	case PINExpired:
		return "pin_expired"
	case Retired:
		return "retired"
	}
	return "unknown"
}

// WHfB event IDs (Microsoft-Windows-HelloForBusiness/Operational; hello-event-300).
const (
	IDKeyRegistered = 300 // "The NGC key was registered successfully"
)

// Event is a structured lifecycle event. It carries identifiers and counters,
// never a PIN, a secret or key material.
type Event struct {
	Kind        Kind
	WindowsID   int // the WHfB event ID where Windows logs one (300 for Created), else 0
	Time        time.Time
	ContainerID string
	KeyID       string // NgcKeyId
	User        string
	Generation  uint64 // generation of the container the event produced or used

	Remaining   int           // WrongPIN: tries left before lockout (-1 unknown)
	RetryAfter  time.Duration // LockedOut: time until the next try
	Destructive bool          // Reset: destructive (new keys) or not
	KeyName     string        // KeyAdded, CertificateAdded
	ServiceKey  string        // RecoveryEnabled: the service key ID wrapped to
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
	case WrongPIN:
		attrs = append(attrs, slog.Int("remaining", e.Remaining))
	case LockedOut:
		attrs = append(attrs, slog.Duration("retry_after", e.RetryAfter))
	case Reset:
		attrs = append(attrs, slog.Bool("destructive", e.Destructive))
	case KeyAdded, CertificateAdded:
		attrs = append(attrs, slog.String("key", e.KeyName))
	case RecoveryEnabled:
		attrs = append(attrs, slog.String("service_key", e.ServiceKey))
	}
	return slog.GroupValue(attrs...)
}
