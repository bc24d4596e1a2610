//go:build !unix

package main

import "golang.org/x/term"

// readSecret reads a line from the terminal fd without echo.
func readSecret(fd int) ([]byte, error) { return term.ReadPassword(fd) }
