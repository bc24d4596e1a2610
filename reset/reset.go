package reset

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/tpm"
)

// Env is what a reset talks to. Everything is passed in; a reset keeps no
// state of its own.
type Env struct {
	TPM       *tpm.TPM
	Service   Service   // the PIN reset service (non-destructive)
	Directory Directory // where a destructive reset registers the new key; may be nil
	Rand      io.Reader // nil: crypto/rand
	// PINPolicy is the PIN policy device management sets (the
	// PassportForWork CSP's PINComplexity, or Group Policy); nil means the
	// policy the container records. When set it takes precedence: the new
	// PIN of either reset is checked against it and the new container
	// records it. Set it whenever it is known: before the container is
	// unlocked its recorded policy is not authenticated, and a destructive
	// reset never unlocks it, so an edited file could otherwise lower the
	// bar for the new PIN.
	PINPolicy *container.PINPolicy
	// Options are passed to the container operations (logger, event
	// handler, clock). Env.Rand and Env.PINPolicy, when set, are added
	// after them.
	Options []container.Option
}

// Request is what the user brings to a reset.
type Request struct {
	// Token is the access token from authentication and multi-factor
	// authentication ("Users are required to authenticate and complete
	// multi-factor authentication to reset their PIN").
	Token string
	// NewPIN is the PIN the user chose.
	NewPIN string
}

// String redacts both fields: a token and a PIN are secrets.
func (Request) String() string { return "reset.Request{Token: REDACTED, NewPIN: REDACTED}" }

// GoString redacts both fields.
func (r Request) GoString() string { return r.String() }

// Format redacts both fields for every verb.
func (r Request) Format(f fmt.State, _ rune) { io.WriteString(f, r.String()) }

// Directory is where a destructive reset registers the new login key (the
// Azure AD device registration service, which writes it to the user's
// msDS-KeyCredentialLink in key trust).
type Directory interface {
	RegisterKey(ctx context.Context, token, keyID string, pub crypto.PublicKey) error
}

// Service is the PIN reset service as the client sees it. The reset/service
// package's Client implements it over HTTP.
type Service interface {
	// ServiceKey is the key new protectors are wrapped to.
	ServiceKey(ctx context.Context) (protector.ServiceKey, error)
	// Recover sends the envelope with the user's token and returns the PIN
	// reset protector R. Refusals come back as errors the caller can match
	// (no MFA, wrong tenant or user, not onboarded, cloud, rate limit, …).
	Recover(ctx context.Context, token string, envelope *protector.Envelope) (*protector.Key, error)
}

// Errors of the resets. Errors from the service, the directory, the TPM and
// the container are wrapped, so errors.Is and errors.As see through them.
//
// A container without a PIN reset protector, where only a destructive reset
// is possible (CanReset is DestructiveOnly), gives container.ErrNoProtector.
var (
	// ErrNoService: a non-destructive reset needs Env.Service.
	ErrNoService = errors.New("reset: no PIN reset service configured")
	// ErrWeakPIN: the new PIN fails the PIN policy (Env.PINPolicy, or the
	// container's). Errors
	// matching it also match container.ErrPINPolicy, and errors.As finds the
	// *container.PolicyError naming the rule.
	ErrWeakPIN = errors.New("reset: the new PIN does not meet the PIN policy")
	// ErrInvalidEnv: a nil TPM or container, or an Env.PINPolicy outside
	// what the PassportForWork CSP allows (also container.ErrInvalidConfig).
	ErrInvalidEnv = errors.New("reset: invalid environment")
	// ErrRegistration: a destructive reset made the new container but the
	// directory refused its key; the directory's error is wrapped too.
	ErrRegistration = errors.New("reset: the directory did not register the new key")
)

// errNoProtector is container.ErrNoProtector, saying what remains possible.
var errNoProtector = fmt.Errorf("reset: only destructive reset is possible: %w", container.ErrNoProtector)

// NonDestructive is the non-destructive PIN reset: the container, its keys,
// certificates and NgcKeyId are kept, only the PIN changes.
//
//  1. The container must hold a PIN reset protector (container.ErrNoProtector) and the
//     new PIN must meet the policy, Env.PINPolicy or else the container's
//     (ErrWeakPIN), checked before anything is sent so a weak PIN does not
//     spend the user's token.
//  2. The service's current key is fetched; the envelope and the token go to
//     the service, which returns R ("the encrypted PIN reset protector is
//     sent to the Microsoft PIN reset service, decrypted, and returned to
//     the client"). Its refusals are returned wrapped.
//  3. container.ResetPIN opens S with R, seals S under the new PIN, clears
//     the PIN history and enrols a fresh protector R' wrapped to the
//     current key, so the R the service has seen is never used again.
//  4. R is destroyed on every path ("it's then cleared from memory").
//
// The input container is never modified; on any failure it is returned
// untouched in the caller's hands and still unlocks with the old PIN.
func NonDestructive(ctx context.Context, env Env, c *container.Container, req Request) (*container.Container, error) {
	if err := checkEnv(env, c); err != nil {
		return nil, err
	}
	if !c.HasProtector() {
		return nil, errNoProtector
	}
	envelope := c.Envelope()
	if envelope == nil {
		return nil, fmt.Errorf("reset: the container's protector envelope does not parse: %w", container.ErrCorrupt)
	}
	if env.Service == nil {
		return nil, ErrNoService
	}
	if err := checkPIN(env, c, req.NewPIN); err != nil {
		return nil, err
	}
	currentKey, err := env.Service.ServiceKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("reset: fetch the service key: %w", err)
	}
	resetProtector, err := env.Service.Recover(ctx, req.Token, envelope)
	if resetProtector != nil {
		// R is ours from here, even when a service hands it back along
		// with an error.
		defer resetProtector.Destroy()
	}
	if err != nil {
		return nil, fmt.Errorf("reset: recover the PIN reset protector: %w", err)
	}
	if resetProtector == nil {
		return nil, errors.New("reset: the PIN reset service returned no protector")
	}
	next, err := container.ResetPIN(ctx, env.TPM, c, resetProtector, req.NewPIN, &currentKey, options(env)...)
	if err != nil {
		return nil, wrap("non-destructive reset", err)
	}
	return next, nil
}

// Destructive is the destructive PIN reset: "the user's existing PIN and
// underlying credentials, including any keys or certificates added to their
// Windows Hello container, are deleted from the client and a new login key
// and PIN are provisioned". The result has a new container secret, a new
// login key and NgcKeyId, the same user and tenant, the PIN policy of
// Env.PINPolicy (else the container's), and no certificates, extra keys or
// PIN reset protector (enrol one again when policy says so). When
// Env.Directory is set, the new public key is registered there with the
// token; if that fails the reset fails.
//
// Who may reset is the caller's to decide. With Env.Directory nil the library
// checks no token at all (Request.Token is unused): the caller must have
// authenticated the user, with MFA, before calling, as Windows does before it
// offers the reset. Destructive never holds the old container secret, so
// nothing of c is authenticated either: its user, tenant and recorded policy
// are taken as the file says. Pass the managed policy in Env.PINPolicy so an
// edited file cannot weaken the new PIN's.
//
// The input container is never modified; the old blobs are simply dropped
// by the caller once the result is stored.
func Destructive(ctx context.Context, env Env, c *container.Container, req Request) (*container.Container, error) {
	if err := checkEnv(env, c); err != nil {
		return nil, err
	}
	if err := checkPIN(env, c, req.NewPIN); err != nil {
		return nil, err
	}
	next, err := container.Reprovision(ctx, env.TPM, c, req.NewPIN, options(env)...)
	if err != nil {
		return nil, wrap("destructive reset", err)
	}
	if env.Directory != nil {
		if err := registerKey(ctx, env, next, req); err != nil { // attested when it can be (attest.go)
			// next is never returned: give its NV index back.
			_ = container.Discard(context.WithoutCancel(ctx), env.TPM, next)
			return nil, fmt.Errorf("%w %s: %w", ErrRegistration, next.KeyID(), err)
		}
	}
	return next, nil
}

// ContainerCanReset is dsregcmd's CanReset for container c on a device: the
// configuration's answer (CanReset) limited by what the container holds —
// without a PIN reset protector only destructive reset is possible.
func ContainerCanReset(c *container.Container, d Device, p Policy, t Tenant) container.CanReset {
	offered := CanReset(d, p, t)
	if c != nil && !c.HasProtector() {
		switch offered {
		case container.DestructiveAndNonDestructive:
			return container.DestructiveOnly
		case container.NonDestructiveOnly:
			return container.Unknown
		}
	}
	return offered
}

func checkEnv(env Env, c *container.Container) error {
	switch {
	case env.TPM == nil:
		return fmt.Errorf("%w: no TPM", ErrInvalidEnv)
	case c == nil:
		return fmt.Errorf("%w: no container", ErrInvalidEnv)
	}
	if env.PINPolicy != nil {
		if err := env.PINPolicy.Validate(); err != nil {
			return fmt.Errorf("%w: PIN policy: %w", ErrInvalidEnv, err)
		}
	}
	return nil
}

// checkPIN checks the new PIN against the policy the reset applies, before
// the service or the TPM is asked anything.
func checkPIN(env Env, c *container.Container, pin string) error {
	if err := pinPolicy(env, c).Check(pin); err != nil {
		return fmt.Errorf("%w: %w", ErrWeakPIN, err)
	}
	return nil
}

// pinPolicy is the PIN policy a reset of c under env applies: the managed
// one when env has it, else the one c records.
func pinPolicy(env Env, c *container.Container) container.PINPolicy {
	if env.PINPolicy != nil {
		return *env.PINPolicy
	}
	return c.Config().PINPolicy
}

func wrap(op string, err error) error {
	switch {
	case errors.Is(err, container.ErrPINPolicy):
		return fmt.Errorf("%w: %w", ErrWeakPIN, err)
	case errors.Is(err, container.ErrNoProtector):
		return errNoProtector
	}
	return fmt.Errorf("reset: %s: %w", op, err)
}

func options(env Env) []container.Option {
	opts := append([]container.Option(nil), env.Options...)
	if env.Rand != nil {
		opts = append(opts, container.WithRand(env.Rand))
	}
	if env.PINPolicy != nil {
		opts = append(opts, container.WithPINPolicy(*env.PINPolicy))
	}
	return opts
}
