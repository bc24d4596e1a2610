//go:build !unix

package main

import "golang.org/x/term"

// readSecret reads a line from the terminal fd without echo, after showing
// prompt.
func readSecret(fd int, prompt func()) ([]byte, error) {
	prompt()
	return term.ReadPassword(fd)
}
