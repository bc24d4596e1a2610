package resettest

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/explain"
)

// Authenticator is the world's IdP as a reset.Authenticator.
func (w *World) Authenticator() reset.Authenticator {
	return reset.AuthenticatorFunc(func(ctx context.Context, upn, password string) (reset.MFA, error) {
		p, err := w.IdP.SignIn(ctx, upn, password)
		if err != nil {
			return nil, err
		}
		if err := w.BindDevice(ctx, p); err != nil {
			return nil, err
		}
		return p, nil
	})
}

// Script is a reset.Prompter that answers from fields, as a user would type.
type Script struct {
	// Method chosen above the lock screen (default Password).
	Method reset.Method
	// TypedPassword is typed at the password prompt.
	TypedPassword string
	// Code returns the verification code; nil types nothing.
	Code func() string
	// PINs typed at the new PIN prompt, in order; the last repeats.
	PINs []string

	mu     sync.Mutex
	asked  []string
	pinIdx int
}

var _ reset.Prompter = (*Script)(nil)

// Prompter returns a Script with the world's password, a fresh TOTP code
// of the user's authenticator, and pins for the new PIN prompt.
func (w *World) Prompter(t testing.TB, pins ...string) *Script {
	return &Script{
		Method:        reset.MethodPassword,
		TypedPassword: w.Password,
		Code:          func() string { return w.TOTPCode(t, w.User.UPN) },
		PINs:          pins,
	}
}

// Asked lists the prompts shown, in order ("method", "password", "code", "pin").
func (s *Script) Asked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.asked...)
}

func (s *Script) note(p string) {
	s.mu.Lock()
	s.asked = append(s.asked, p)
	s.mu.Unlock()
}

// ChooseMethod answers s.Method.
func (s *Script) ChooseMethod(ctx context.Context, methods []reset.Method) (reset.Method, error) {
	s.note("method")
	if s.Method == "" {
		return reset.MethodPassword, nil
	}
	return s.Method, nil
}

// Password answers s.TypedPassword.
func (s *Script) Password(ctx context.Context, upn string) (string, error) {
	s.note("password")
	return s.TypedPassword, nil
}

// VerificationCode answers s.Code().
func (s *Script) VerificationCode(ctx context.Context, upn string) (string, error) {
	s.note("code")
	if s.Code == nil {
		return "", nil
	}
	return s.Code(), nil
}

// NewPIN answers the next of s.PINs.
func (s *Script) NewPIN(ctx context.Context, _ container.PINPolicy) (string, error) {
	s.note("pin")
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.PINs) == 0 {
		return "", errors.New("resettest: script has no PIN")
	}
	p := s.PINs[min(s.pinIdx, len(s.PINs)-1)]
	s.pinIdx++
	return p, nil
}

// Flow returns a reset.Flow for the world's user from entry point e:
// the world's device, policy, tenant, IdP and service, a Script typing the
// world's password, a fresh code and pins, and explain.Message for messages.
func (w *World) Flow(t testing.TB, e reset.EntryPoint, pins ...string) *reset.Flow {
	return &reset.Flow{
		Env: w.Env(), Device: w.Device(), Policy: w.Policy(), Tenant: w.ResetTenant(),
		Entry: e, Auth: w.Authenticator(), Prompt: w.Prompter(t, pins...), Explain: explain.Message,
	}
}

// Explain is explain.Message: reset.Explain extended with the messages a
// user sees for the errors of the simulated IdP and the PIN reset service
// client. New code can call explain.Message directly.
func Explain(err error) string { return explain.Message(err) }
