//go:build !cgo

package pkcs11

import (
	"context"
	"time"

	"github.com/hellosim/hellosim/protector"
)

// Token is a PKCS #11 token; without cgo it cannot be opened.
type Token struct{}

// Key is a service key in a token.
type Key struct{ protector.Unwrapper }

// Created is the zero time.
func (*Key) Created() time.Time { return time.Time{} }

// Label is "".
func (*Key) Label() string { return "" }

// Open fails with ErrNoCgo: the binding needs cgo.
func Open(Config) (*Token, error) { return nil, ErrNoCgo }

// Generate fails with ErrNoCgo.
func (*Token) Generate(protector.Scheme) (*Key, error) { return nil, ErrNoCgo }

// Keys fails with ErrNoCgo.
func (*Token) Keys() ([]*Key, error) { return nil, ErrNoCgo }

// Unwrappers fails with ErrNoCgo.
func (*Token) Unwrappers() ([]protector.Unwrapper, error) { return nil, ErrNoCgo }

// Destroy fails with ErrNoCgo.
func (*Token) Destroy(string) error { return ErrNoCgo }

// Ping fails with ErrNoCgo.
func (*Token) Ping(context.Context) error { return ErrNoCgo }

// Close does nothing.
func (*Token) Close() error { return nil }
