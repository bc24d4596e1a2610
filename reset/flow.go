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

// Saver stores a container; *store.Store (container/store) implements it.
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
//
// The steps are those of the documentation, in its order: may the reset
// start here, choose an authentication method (lock screen, Azure AD
// joined), the password, the second factor, a new PIN that meets the
// policy, the reset itself (and, destructive, the key's registration), and
// storing the result.
func (f *Flow) Run(ctx context.Context, c *container.Container) (*container.Container, error) {
	if err := f.validate(c); err != nil {
		return nil, err
	}
	r := &flowRun{Flow: f, c: c, kind: f.chooseKind(c), upn: f.UPN}
	if r.upn == "" {
		r.upn = c.Config().User
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	if err := r.chooseMethod(ctx); err != nil {
		return nil, err
	}
	pending, err := r.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	token, err := r.completeMFA(ctx, pending)
	if err != nil {
		return nil, err
	}
	pin, err := r.choosePIN(ctx)
	if err != nil {
		return nil, err
	}
	next, err := r.reset(ctx, Request{Token: token, NewPIN: pin})
	if err != nil {
		return nil, err
	}
	if err := r.store(ctx, next); err != nil {
		return nil, err
	}
	f.ok(StepDone, r.kind, "All set. Use your new PIN to sign in.")
	return next, nil
}

// validate refuses a flow that cannot start at all, before any step runs.
func (f *Flow) validate(c *container.Container) error {
	if c == nil || f.Auth == nil || f.Prompt == nil {
		return &StepError{Step: StepCheck, Message: Explain(ErrInvalidEnv), Err: fmt.Errorf("%w: flow needs a container, an authenticator and a prompter", ErrInvalidEnv)}
	}
	if p := f.Env.PINPolicy; p != nil {
		if err := p.Validate(); err != nil {
			return &StepError{Step: StepCheck, Message: Explain(ErrInvalidEnv), Err: fmt.Errorf("%w: PIN policy: %w", ErrInvalidEnv, err)}
		}
	}
	return nil
}

// chooseKind is f.Kind, or for KindUnknown non-destructive when the
// container has a protector, Env a Service and Check allows it.
func (f *Flow) chooseKind(c *container.Container) Kind {
	if f.Kind != KindUnknown {
		return f.Kind
	}
	if c.HasProtector() && f.Env.Service != nil && Check(f.Device, f.Policy, f.Tenant, f.Entry, KindNonDestructive) == nil {
		return KindNonDestructive
	}
	return KindDestructive
}

// flowRun is one run of a Flow: the container, the kind and the account.
type flowRun struct {
	*Flow
	c    *container.Container
	kind Kind
	upn  string
}

// check: may this reset start here? Before the user is asked anything, so
// that what NonDestructive would refuse only after the password and the
// second factor is refused now.
func (r *flowRun) check() error {
	err := Check(r.Device, r.Policy, r.Tenant, r.Entry, r.kind)
	if err == nil && r.kind == KindNonDestructive {
		switch {
		case !r.c.HasProtector():
			err = errNoProtector
		case r.Env.Service == nil:
			err = ErrNoService
		}
	}
	if err != nil {
		return r.fail(StepCheck, r.kind, err)
	}
	r.ok(StepCheck, r.kind, fmt.Sprintf("Reset your PIN (%s).", r.kind))
	return nil
}

// chooseMethod: above the lock screen on an Azure AD joined device the user
// picks one of the tenant's methods; elsewhere the password is implied.
func (r *flowRun) chooseMethod(ctx context.Context) error {
	if r.Entry != EntryLockScreen || r.Device.Join != identity.AzureADJoined {
		return nil
	}
	methods := r.Tenant.Methods
	if len(methods) == 0 {
		methods = []Method{MethodPassword}
	}
	m, err := r.Prompt.ChooseMethod(ctx, slices.Clone(methods))
	switch {
	case err != nil:
		return r.fail(StepChooseMethod, r.kind, err)
	case !slices.Contains(methods, m):
		return r.fail(StepChooseMethod, r.kind, fmt.Errorf("%w: %q is not offered", ErrMethodUnsupported, m))
	case m != MethodPassword:
		return r.fail(StepChooseMethod, r.kind, fmt.Errorf("%w: %s", ErrMethodUnsupported, m))
	}
	r.ok(StepChooseMethod, r.kind, string(m))
	return nil
}

// authenticate asks for the password and signs in.
func (r *flowRun) authenticate(ctx context.Context) (MFA, error) {
	pw, err := r.Prompt.Password(ctx, r.upn)
	if err != nil {
		return nil, r.fail(StepAuthenticate, r.kind, err)
	}
	pending, err := r.Auth.SignIn(ctx, r.upn, pw)
	if err != nil {
		return nil, r.fail(StepAuthenticate, r.kind, err)
	}
	r.ok(StepAuthenticate, r.kind, "Password accepted.")
	return pending, nil
}

// completeMFA asks for the second factor's code and returns the access token.
func (r *flowRun) completeMFA(ctx context.Context, pending MFA) (string, error) {
	code, err := r.Prompt.VerificationCode(ctx, r.upn)
	if err != nil {
		return "", r.fail(StepMFA, r.kind, err)
	}
	token, err := pending.CompleteMFA(ctx, code)
	if err != nil {
		return "", r.fail(StepMFA, r.kind, err)
	}
	r.ok(StepMFA, r.kind, "Verified.")
	return token, nil
}

// choosePIN asks for the new PIN, again while the policy refuses it (at
// most maxPINTries times).
func (r *flowRun) choosePIN(ctx context.Context) (string, error) {
	policy := pinPolicy(r.Env, r.c)
	for try := 1; ; try++ {
		pin, err := r.Prompt.NewPIN(ctx, policy)
		if err == nil {
			err = checkPIN(r.Env, r.c, pin)
		}
		if err == nil {
			r.ok(StepNewPIN, r.kind, "PIN meets the requirements.")
			return pin, nil
		}
		if !errors.Is(err, ErrWeakPIN) || try == maxPINTries {
			return "", r.fail(StepNewPIN, r.kind, err)
		}
		r.emit(Event{Step: StepNewPIN, Kind: r.kind, Err: err, Message: r.explain(err)})
	}
}

// reset runs NonDestructive or Destructive; a destructive reset's key
// registration is its own step.
func (r *flowRun) reset(ctx context.Context, req Request) (*container.Container, error) {
	var next *container.Container
	var err error
	if r.kind == KindNonDestructive {
		next, err = NonDestructive(ctx, r.Env, r.c, req)
	} else {
		next, err = Destructive(ctx, r.Env, r.c, req)
	}
	if err != nil {
		step := StepReset
		if errors.Is(err, ErrRegistration) {
			step = StepRegister
		}
		return nil, r.fail(step, r.kind, err)
	}
	if r.kind == KindNonDestructive {
		r.ok(StepReset, r.kind, "Your PIN was changed; your keys and certificates were kept.")
		return next, nil
	}
	r.ok(StepReset, r.kind, "A new sign-in key and PIN were set up.")
	if r.Env.Directory != nil {
		r.ok(StepRegister, r.kind, "Your new key was registered with your organization.")
	}
	return next, nil
}

// store saves the new container when the flow has a Store, then revokes
// the container it replaced: the TPM undefines the old NV index
// (container.Retire), so the old file and its old PIN fail with a TPM
// error from then on. Only after the save: a crash in between leaves the
// old container working, never neither. A save that fails gives the new
// container's index back (container.Discard) and revokes nothing. A
// Retire that fails (the owner set an owner authorization, say) is not
// the reset's failure: the new container is stored, and a later Retire
// or reset of it finishes the revocation.
func (r *flowRun) store(ctx context.Context, next *container.Container) error {
	if r.Store == nil {
		return nil
	}
	if err := r.Store.Save(next); err != nil {
		if r.Env.TPM != nil {
			_ = container.Discard(context.WithoutCancel(ctx), r.Env.TPM, next)
		}
		return r.fail(StepStore, r.kind, err)
	}
	if r.Env.TPM != nil && !next.Retired().IsZero() {
		// The stored file keeps the retired record; Retire of an index
		// already gone counts as done, so whoever saves next clears it.
		_, _ = container.Retire(context.WithoutCancel(ctx), r.Env.TPM, next, r.Env.Options...)
	}
	r.ok(StepStore, r.kind, "Saved.")
	return nil
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
