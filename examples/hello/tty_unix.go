//go:build unix

package main

import (
	"io"
	"unicode/utf8"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// Control characters readSecret understands.
const (
	ctrlC     = 0x03
	ctrlD     = 0x04
	ctrlU     = 0x15
	backspace = 0x08
	del       = 0x7f
)

// readSecret reads a line from the terminal fd without echo. It puts the
// terminal in raw mode rather than only clearing ECHO, as x/term's
// ReadPassword does, because there a Ctrl-D reads as nothing and the prompt
// waits on: here Ctrl-D and Ctrl-C end the read with io.EOF (cancel),
// Backspace removes a character and Ctrl-U the line. prompt is shown once
// echo is off, so that what is typed as soon as it appears is not echoed.
func readSecret(fd int, prompt func()) ([]byte, error) {
	old, err := term.MakeRaw(fd)
	if err != nil {
		prompt()
		return nil, err
	}
	defer term.Restore(fd, old)
	prompt()
	line := make([]byte, 0, 1024) // room for any PIN or password: no copies left behind by growing
	fail := func(err error) ([]byte, error) {
		clear(line[:cap(line)])
		return nil, err
	}
	var b [1]byte
	for {
		n, err := unix.Read(fd, b[:])
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return fail(err)
		case n == 0:
			return fail(io.EOF)
		}
		switch c := b[0]; c {
		case '\r', '\n':
			return line, nil
		case ctrlC, ctrlD:
			return fail(io.EOF)
		case ctrlU:
			clear(line)
			line = line[:0]
		case backspace, del:
			if len(line) > 0 {
				_, size := utf8.DecodeLastRune(line)
				clear(line[len(line)-size:])
				line = line[:len(line)-size]
			}
		default:
			if len(line) == cap(line) {
				return fail(errLineTooLong)
			}
			line = append(line, c)
		}
	}
}
