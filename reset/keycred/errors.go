package keycred

import (
	"errors"
	"fmt"
)

// Conditions a caller can test with errors.Is. Every error from a parser in
// this package matches one of them; *ParseError adds where it was found.
var (
	// ErrTruncated: the data ends inside a header or a value.
	ErrTruncated = errors.New("keycred: truncated")
	// ErrTrailingData: bytes follow the last complete structure.
	ErrTrailingData = errors.New("keycred: trailing data")
	// ErrVersion: a version field this package does not read.
	ErrVersion = errors.New("keycred: unsupported version")
	// ErrEntryOrder: a KEYCREDENTIALLINK_ENTRY whose identifier is not
	// greater than the previous one (MS-ADTS 2.2.20.2: sorted, increasing),
	// so also a repeated entry.
	ErrEntryOrder = errors.New("keycred: entries out of order")
	// ErrUnknownEntry: an entry identifier MS-ADTS 2.2.20.6 does not define.
	ErrUnknownEntry = errors.New("keycred: unknown entry")
	// ErrEntryLength: a value whose length is wrong for its identifier.
	ErrEntryLength = errors.New("keycred: wrong entry length")
	// ErrMissingEntry: KeyID, KeyMaterial or KeyUsage is absent (MS-ADTS
	// 2.2.20.6: all keys MUST contain them).
	ErrMissingEntry = errors.New("keycred: required entry missing")
	// ErrKeyID: the KeyID entry is not SHA-256 of the KeyMaterial value.
	ErrKeyID = errors.New("keycred: key id does not match key material")
	// ErrKeyHash: the KeyHash entry is not SHA-256 of the entries after it.
	ErrKeyHash = errors.New("keycred: key hash does not match entries")
	// ErrInvalidValue: a value of the right length that its field does not
	// allow (a CUSTOM_KEY_INFORMATION version other than 1, say).
	ErrInvalidValue = errors.New("keycred: invalid value")
	// ErrTime: a timestamp outside what its encoding can hold.
	ErrTime = errors.New("keycred: timestamp out of range")
	// ErrKeyBlob: a BCRYPT public key blob that is malformed.
	ErrKeyBlob = errors.New("keycred: malformed key blob")
	// ErrKeyType: a key type or size this package does not encode
	// or decode (private blobs among them: they are never accepted).
	ErrKeyType = errors.New("keycred: unsupported key type")
	// ErrDNBinary: a string that is not in DN-Binary form.
	ErrDNBinary = errors.New("keycred: malformed DN-Binary value")
)

// ParseError says where in its input a parser stopped. Err is one of the
// sentinels above (possibly wrapped with more detail).
type ParseError struct {
	What   string // the structure being read: "KEYCREDENTIALLINK_BLOB", "RSA1 blob", …
	Offset int    // byte offset (in the string, for DN-Binary) where the problem is
	Entry  Entry  // the KEYCREDENTIALLINK entry concerned; 0 when none
	Err    error
}

func (e *ParseError) Error() string {
	if e.Entry != 0 {
		return fmt.Sprintf("parse %s: %v entry at offset %d: %v", e.What, e.Entry, e.Offset, e.Err)
	}
	return fmt.Sprintf("parse %s at offset %d: %v", e.What, e.Offset, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }
