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

// input reads PINs, passwords and codes: from the terminal without echo, or,
// when stdin is not a terminal, one line each from stdin (for scripts).
type input struct {
	r      *bufio.Reader
	fd     int
	tty    bool
	prompt io.Writer
}

var errNoInput = errors.New("no input: expected a line on stdin")

func newInput(stdin *os.File, prompt io.Writer) *input {
	fd := int(stdin.Fd())
	return &input{r: bufio.NewReader(stdin), fd: fd, tty: term.IsTerminal(fd), prompt: prompt}
}

// secret reads one value without echo.
func (in *input) secret(prompt string) (string, error) {
	fmt.Fprint(in.prompt, prompt)
	if in.tty {
		b, err := term.ReadPassword(in.fd)
		fmt.Fprintln(in.prompt)
		if err != nil {
			return "", err
		}
		s := string(b)
		clear(b)
		return s, nil
	}
	line, err := in.r.ReadString('\n')
	fmt.Fprintln(in.prompt)
	if err != nil && (err != io.EOF || line == "") {
		if err == io.EOF {
			return "", errNoInput
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
			return "", errNoInput
		}
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// newPIN reads a PIN and its confirmation.
func (in *input) newPIN(what string) (string, error) {
	pin, err := in.secret(what + ": ")
	if err != nil {
		return "", err
	}
	again, err := in.secret("Confirm " + strings.ToLower(what[:1]) + what[1:] + ": ")
	if err != nil {
		return "", err
	}
	if pin != again {
		return "", errMismatch
	}
	return pin, nil
}

var errMismatch = errors.New("the PINs do not match")

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

func (p prompter) VerificationCode(_ context.Context, _ string) (string, error) {
	return p.in.line("Verification code from your authenticator ('hello totp' shows it): ")
}

func (p prompter) NewPIN(_ context.Context, _ container.PINPolicy) (string, error) {
	return p.in.newPIN("New PIN")
}
