package identity

import (
	"errors"
	"fmt"
	"io"
)

// GUID is a directory identifier (tenant ID, object ID, application ID) as
// Azure AD writes it: 16 bytes, shown as 8-4-4-4-12 hexadecimal digits.
type GUID [16]byte

// ErrMalformedGUID is ParseGUID's refusal.
var ErrMalformedGUID = errors.New("identity: not a GUID like 72f988bf-86f1-41af-91ab-2d7cd011db47")

// ParseGUID reads the 8-4-4-4-12 hexadecimal form without braces, in either
// case, as directory IDs appear in tokens and in the PassportForWork CSP's
// {TenantId} node. Anything else is ErrMalformedGUID.
func ParseGUID(s string) (GUID, error) {
	var g GUID
	if len(s) != 36 {
		return GUID{}, ErrMalformedGUID
	}
	n := 0
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return GUID{}, ErrMalformedGUID
			}
			continue
		}
		v, ok := hexValue(s[i])
		if !ok {
			return GUID{}, ErrMalformedGUID
		}
		g[n/2] |= v << (4 * (1 - n%2))
		n++
	}
	return g, nil
}

// CanonicalGUID returns s in the one form this module uses, lower case, or
// ErrMalformedGUID.
func CanonicalGUID(s string) (string, error) {
	g, err := ParseGUID(s)
	if err != nil {
		return "", err
	}
	return g.String(), nil
}

// NewGUID returns a random (version 4, RFC 9562) GUID read from r.
func NewGUID(r io.Reader) (GUID, error) {
	var g GUID
	if _, err := io.ReadFull(r, g[:]); err != nil {
		return GUID{}, fmt.Errorf("identity: new guid: %w", err)
	}
	g[6] = g[6]&0x0f | 0x40
	g[8] = g[8]&0x3f | 0x80
	return g, nil
}

// String returns the 8-4-4-4-12 form in lower case.
func (g GUID) String() string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", g[0:4], g[4:6], g[6:8], g[8:10], g[10:16])
}

func hexValue(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
