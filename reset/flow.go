package reset

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/reset/identity"
)

// Step is one step of the documented "I forgot my PIN" flow.
type Step int

const (
	// StepCheck: may this reset start here (Check, and a protector for the
	// non-destructive form)?
	StepCheck Step = iota + 1
	// StepChooseMethod: above the lock screen on an Azure AD joined device,
	// "Select an authentication option from the list of presented options.
	// This list will be based on the different authentication methods enabled
	// in your tenant".
	StepChooseMethod
	// StepAuthenticate: the password (hybrid lock screen: "Enter your
	// password and press enter").
	StepAuthenticate
	// StepMFA: the second factor ("Users are required to authenticate and
	// complete multi-factor authentication to reset their PIN").
	StepMFA
	// StepNewPIN: the user chooses a PIN that meets the policy.
	StepNewPIN
	// StepReset: NonDestructive or Destructive.
	StepReset
	// StepRegister: a destructive reset registers the new key with the directory.
	StepRegister
	// StepStore: the new container is saved.
	StepStore
	// StepDone: "When finished, unlock your desktop using your newly created PIN."
	StepDone
)

var stepNames = []string{"", "check", "choose-method", "authenticate", "mfa", "new-pin", "reset", "register", "store", "done"}

// String returns a stable name such as "mfa".
func (s Step) String() string {
	if s > 0 && int(s) < len(stepNames) {
		return stepNames[s]
	}
	return fmt.Sprintf("Step(%d)", int(s))
}

// Event reports a step's outcome. It never holds a PIN, password, code or token.
type Event struct {
	Step Step
	Kind Kind
	// Err is nil when the step completed.
	Err error
	// Message is what the user would see: a confirmation, or the refusal.
	Message string
}

// Prompter asks the user. A terminal, a GUI or a test script implements it.
type Prompter interface {
	// ChooseMethod picks one of the tenant's enabled authentication methods.
	ChooseMethod(ctx context.Context, methods []Method) (Method, error)
	// Password asks for the account's password.
	Password(ctx context.Context, upn string) (string, error)
	// VerificationCode asks for the code of the second factor.
	VerificationCode(ctx context.Context, upn string) (string, error)
	// NewPIN asks for the new PIN; policy says what it must meet.
	NewPIN(ctx context.Context, policy container.PINPolicy) (string, error)
}

// Authenticator signs a user in: a password first, then a second factor.
type Authenticator interface {
	SignIn(ctx context.Context, upn, password string) (MFA, error)
}

// MFA is a sign-in that awaits its second factor; CompleteMFA returns the
// access token.
type MFA interface {
	CompleteMFA(ctx context.Context, code string) (string, error)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(ctx context.Context, upn, password string) (MFA, error)

// SignIn calls f.
func (f AuthenticatorFunc) SignIn(ctx context.Context, upn, password string) (MFA, error) {
	return f(ctx, upn, password)
}

// Saver stores a container; *container.Store implements it.
type Saver interface {
	Save(c *container.Container) error
}

// ErrMethodUnsupported: the user chose an authentication method the
// Authenticator cannot perform (this flow signs in with a password).
var ErrMethodUnsupported = errors.New("reset: authentication method not supported")

// StepError is a flow that stopped: the step, what the user was told, and why.
type StepError struct {
	Step    Step
	Message string
	Err     error
}

// Error names the step and the cause.
func (e *StepError) Error() string { return fmt.Sprintf("reset: %s: %v", e.Step, e.Err) }

// Unwrap returns the cause, so errors.Is sees service and policy errors.
func (e *StepError) Unwrap() error { return e.Err }

// maxPINTries is how often the flow asks again for a PIN the policy refuses.
const maxPINTries = 3

// Flow walks the documented steps of a PIN reset for one entry point:
// check, choose a method (Azure AD joined, lock screen), password, MFA, new
// PIN, reset, register (destructive), store. It is a small driver around
// Check, NonDestructive and Destructive for programs and tests; every
// decision stays in those functions.
type Flow struct {
	Env    Env
	Device Device
	Policy Policy
	Tenant Tenant
	Entry  EntryPoint
	// Kind to run; KindUnknown picks non-destructive when the container has a
	// protector, Env has a Service and Check allows it, destructive
	// otherwise.
	Kind Kind
	// UPN of the account; "" means the container's user.
	UPN    string
	Auth   Authenticator
	Prompt Prompter
	// Store, when set, saves the new container.
	Store Saver
	// OnEvent, when set, receives each step's outcome.
	OnEvent func(Event)
	// Explain turns an error into the message the user sees; nil is Explain.
	// Programs that know their service's and directory's errors wrap it.
	Explain func(error) string
}

// Run performs the flow on c and returns the new container. c itself is
// never modified; on failure the *StepError says which step stopped.
func (f *Flow) Run(ctx context.Context, c *container.Container) (*container.Container, error) {
	if c == nil || f.Auth == nil || f.Prompt == nil {
		return nil, &StepError{Step: StepCheck, Message: Explain(ErrInvalidEnv), Err: fmt.Errorf("%w: flow needs a container, an authenticator and a prompter", ErrInvalidEnv)}
	}
	if p := f.Env.PINPolicy; p != nil {
		if err := p.Validate(); err != nil {
			return nil, &StepError{Step: StepCheck, Message: Explain(ErrInvalidEnv), Err: fmt.Errorf("%w: PIN policy: %w", ErrInvalidEnv, err)}
		}
	}
	upn := f.UPN
	if upn == "" {
		upn = c.Config().User
	}
	kind := f.Kind
	if kind == KindUnknown {
		kind = KindDestructive
		if c.HasProtector() && f.Env.Service != nil && Check(f.Device, f.Policy, f.Tenant, f.Entry, KindNonDestructive) == nil {
			kind = KindNonDestructive
		}
	}

	// Check, before the user is asked anything: what NonDestructive would
	// refuse only after the password and the second factor is refused here.
	err := Check(f.Device, f.Policy, f.Tenant, f.Entry, kind)
	if err == nil && kind == KindNonDestructive {
		switch {
		case !c.HasProtector():
			err = errNoProtector
		case f.Env.Service == nil:
			err = ErrNoService
		}
	}
	if err != nil {
		return nil, f.fail(StepCheck, kind, err)
	}
	f.ok(StepCheck, kind, fmt.Sprintf("Reset your PIN (%s).", kind))

	// Choose a method: the tenant's list, above the lock screen on Azure AD
	// joined devices; the password otherwise.
	if f.Entry == EntryLockScreen && f.Device.Join == identity.AzureADJoined {
		methods := f.Tenant.Methods
		if len(methods) == 0 {
			methods = []Method{MethodPassword}
		}
		m, err := f.Prompt.ChooseMethod(ctx, slices.Clone(methods))
		switch {
		case err != nil:
			return nil, f.fail(StepChooseMethod, kind, err)
		case !slices.Contains(methods, m):
			return nil, f.fail(StepChooseMethod, kind, fmt.Errorf("%w: %q is not offered", ErrMethodUnsupported, m))
		case m != MethodPassword:
			return nil, f.fail(StepChooseMethod, kind, fmt.Errorf("%w: %s", ErrMethodUnsupported, m))
		}
		f.ok(StepChooseMethod, kind, string(m))
	}

	// Authenticate.
	pw, err := f.Prompt.Password(ctx, upn)
	if err != nil {
		return nil, f.fail(StepAuthenticate, kind, err)
	}
	pending, err := f.Auth.SignIn(ctx, upn, pw)
	if err != nil {
		return nil, f.fail(StepAuthenticate, kind, err)
	}
	f.ok(StepAuthenticate, kind, "Password accepted.")

	// MFA.
	code, err := f.Prompt.VerificationCode(ctx, upn)
	if err != nil {
		return nil, f.fail(StepMFA, kind, err)
	}
	token, err := pending.CompleteMFA(ctx, code)
	if err != nil {
		return nil, f.fail(StepMFA, kind, err)
	}
	f.ok(StepMFA, kind, "Verified.")

	// New PIN, asked again while the policy refuses it.
	policy := c.Config().PINPolicy
	if f.Env.PINPolicy != nil {
		policy = *f.Env.PINPolicy
	}
	var pin string
	for try := 1; ; try++ {
		pin, err = f.Prompt.NewPIN(ctx, policy)
		if err == nil {
			err = checkPIN(f.Env, c, pin)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, ErrWeakPIN) || try == maxPINTries {
			return nil, f.fail(StepNewPIN, kind, err)
		}
		f.emit(Event{Step: StepNewPIN, Kind: kind, Err: err, Message: f.explain(err)})
	}
	f.ok(StepNewPIN, kind, "PIN meets the requirements.")

	// Reset (and, destructive, register).
	req := Request{Token: token, NewPIN: pin}
	var n *container.Container
	if kind == KindNonDestructive {
		n, err = NonDestructive(ctx, f.Env, c, req)
	} else {
		n, err = Destructive(ctx, f.Env, c, req)
	}
	if err != nil {
		step := StepReset
		if errors.Is(err, ErrRegistration) {
			step = StepRegister
		}
		return nil, f.fail(step, kind, err)
	}
	if kind == KindNonDestructive {
		f.ok(StepReset, kind, "Your PIN was changed; your keys and certificates were kept.")
	} else {
		f.ok(StepReset, kind, "A new sign-in key and PIN were set up.")
		if f.Env.Directory != nil {
			f.ok(StepRegister, kind, "Your new key was registered with your organization.")
		}
	}

	// Store.
	if f.Store != nil {
		if err := f.Store.Save(n); err != nil {
			return nil, f.fail(StepStore, kind, err)
		}
		f.ok(StepStore, kind, "Saved.")
	}
	f.ok(StepDone, kind, "All set. Use your new PIN to sign in.")
	return n, nil
}

func (f *Flow) emit(e Event) {
	if f.OnEvent != nil {
		f.OnEvent(e)
	}
}

func (f *Flow) ok(s Step, k Kind, msg string) { f.emit(Event{Step: s, Kind: k, Message: msg}) }

func (f *Flow) fail(s Step, k Kind, err error) error {
	msg := f.explain(err)
	f.emit(Event{Step: s, Kind: k, Err: err, Message: msg})
	return &StepError{Step: s, Message: msg, Err: err}
}

func (f *Flow) explain(err error) string {
	if f.Explain != nil {
		if m := f.Explain(err); m != "" {
			return m
		}
	}
	return Explain(err)
}

// Explain returns the message a user would see for an error of this
// package or of the container: a refusal's Reason message, the PIN rule
// that failed, a wrong or locked PIN. Other errors get a generic message;
// programs add their service's and directory's errors around it.
func Explain(err error) string {
	var na *NotAllowedError
	var pe *container.PolicyError
	var pinErr *container.PINError
	var lock *container.PINLockedError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &na):
		return na.Reason.Message()
	case errors.As(err, &pe):
		if pe.Detail != "" {
			return "That PIN doesn't meet the requirements: " + pe.Detail + "."
		}
		return "That PIN doesn't meet the requirements."
	case errors.Is(err, container.ErrNoProtector):
		return "PIN recovery isn't set up for your account on this device, so your PIN can only be reset by creating a new one."
	case errors.Is(err, ErrNoService):
		return "The PIN reset service isn't configured on this device."
	case errors.Is(err, ErrMethodUnsupported):
		return "That sign-in option isn't available here. Choose Password."
	case errors.Is(err, ErrRegistration):
		return "Your organization couldn't register your new PIN. Try again later."
	case errors.As(err, &pinErr):
		return "That PIN is incorrect."
	case errors.As(err, &lock):
		return "Your PIN is locked for now. Try again later."
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "PIN reset was cancelled."
	}
	return "Something went wrong and your PIN wasn't reset. Try again later."
}
