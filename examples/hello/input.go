package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/reset"
)

// maxTries is how often a prompt asks again after a mismatched or refused
// PIN or a wrong code (the IdP accepts as many wrong codes per sign-in).
const maxTries = 3

// input reads PINs, passwords and codes: from the terminal without echo, or,
// when stdin is not a terminal, one line each from stdin (for scripts).
type input struct {
	r      *bufio.Reader
	fd     int
	tty    bool
	prompt io.Writer
}

var (
	errNoInput   = errors.New("no input: expected a line on stdin")
	errCancelled = errors.New("cancelled")
	errMismatch  = errors.New("the PINs do not match")
	// errNoPINEntered is an empty line where the current PIN is asked.
	errNoPINEntered = errors.New("no PIN entered")
	// errNotThePIN is a PIN the container's policy says it cannot hold:
	// refused before the TPM is asked, so not counted.
	errNotThePIN = errors.New("wrong PIN")
	// errLineTooLong is a secret longer than any PIN policy allows.
	errLineTooLong = errors.New("input too long")
)

func newInput(stdin *os.File, prompt io.Writer) *input {
	fd := int(stdin.Fd())
	return &input{r: bufio.NewReader(stdin), fd: fd, tty: term.IsTerminal(fd), prompt: prompt}
}

// eof is what running out of input means: Ctrl-D at a terminal cancels;
// the end of a script's stdin is missing input.
func (in *input) eof() error {
	if in.tty {
		return errCancelled
	}
	return errNoInput
}

// secret reads one value without echo.
func (in *input) secret(prompt string) (string, error) {
	if in.tty {
		b, err := readSecret(in.fd, func() { fmt.Fprint(in.prompt, prompt) })
		fmt.Fprintln(in.prompt)
		if errors.Is(err, io.EOF) {
			return "", in.eof()
		}
		if err != nil {
			return "", err
		}
		s := string(b)
		clear(b)
		return s, nil
	}
	fmt.Fprint(in.prompt, prompt)
	line, err := in.r.ReadString('\n')
	fmt.Fprintln(in.prompt)
	if err != nil && (err != io.EOF || line == "") {
		if err == io.EOF {
			return "", in.eof()
		}
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// line reads one value with echo (a verification code is not secret for long).
func (in *input) line(prompt string) (string, error) {
	fmt.Fprint(in.prompt, prompt)
	line, err := in.r.ReadString('\n')
	if !in.tty {
		fmt.Fprintln(in.prompt)
	}
	if err != nil && (err != io.EOF || line == "") {
		if err == io.EOF {
			return "", in.eof()
		}
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// currentPIN asks for a PIN the TPM will check. An empty answer (Enter
// alone) is no try: the TPM is not asked, and the prompt is asked again,
// up to maxTries times in all.
func (in *input) currentPIN(prompt string) (string, error) {
	for try := 1; ; try++ {
		pin, err := in.secret(prompt)
		if err != nil || pin != "" {
			return pin, err
		}
		if try == maxTries {
			return "", errNoPINEntered
		}
		fmt.Fprintf(in.prompt, "%s. Try again.\n", sentence(errorLine(errNoPINEntered)))
	}
}

// confirm asks a yes/no question; only y or yes is yes.
func (in *input) confirm(question string) (bool, error) {
	answer, err := in.line(question + " [y/N] ")
	if err != nil {
		return false, err
	}
	switch strings.ToLower(answer) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

// newPIN reads a new PIN and its confirmation. check, when set, is asked
// about the PIN before the confirmation is (a PIN the policy refuses need
// not be typed twice). A refused or mismatched PIN is asked again, up to
// maxTries times; the error is then the last refusal.
func (in *input) newPIN(what string, check func(pin string) error) (string, error) {
	var last error
	for try := 1; try <= maxTries; try++ {
		if last != nil {
			fmt.Fprintf(in.prompt, "%s. Try again.\n", sentence(errorLine(last)))
		}
		pin, err := in.secret(what + ": ")
		if err != nil {
			return "", afterTries(last, err)
		}
		if check != nil {
			if err := check(pin); err != nil {
				last = err
				continue
			}
		}
		again, err := in.secret("Confirm " + strings.ToLower(what[:1]) + what[1:] + ": ")
		if err != nil {
			return "", err
		}
		if pin != again {
			last = errMismatch
			continue
		}
		return pin, nil
	}
	return "", last
}

// sentence capitalises the first letter of a message.
func sentence(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// prompter is the reset flow's Prompter on this input.
type prompter struct{ in *input }

var _ reset.Prompter = prompter{}

// ChooseMethod answers Password, the method this simulator supports.
func (p prompter) ChooseMethod(_ context.Context, methods []reset.Method) (reset.Method, error) {
	fmt.Fprintf(p.in.prompt, "Sign-in options: %v; using Password\n", methods)
	return reset.MethodPassword, nil
}

func (p prompter) Password(_ context.Context, upn string) (string, error) {
	return p.in.secret("Password for " + upn + ": ")
}

const codePrompt = "Verification code from your authenticator ('hello totp' shows it): "

func (p prompter) VerificationCode(_ context.Context, _ string) (string, error) {
	return p.in.line(codePrompt)
}

// NewPIN asks for the new PIN, holding it to policy before the
// confirmation; the flow checks it again (and its history).
func (p prompter) NewPIN(_ context.Context, policy container.PINPolicy) (string, error) {
	return p.in.newPIN("New PIN", policy.Check)
}
