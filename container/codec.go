package container

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/hellosim/hellosim/tpm"
)

// codec is one direction of the walk Container.fields makes over the
// format: encoding into b, decoding from r (which keeps the first error),
// or, with neither, deep-copying every field in place (clone).
type codec struct {
	b *cryptobyte.Builder
	r *reader
}

// ok reports whether the walk goes on: always when writing or copying,
// until the first error when reading.
func (k *codec) ok() bool { return k.r == nil || k.r.err == nil }

func (k *codec) u64(field string, v *uint64) {
	switch {
	case k.b != nil:
		k.b.AddUint64(*v)
	case k.r != nil:
		*v = k.r.u64(field)
	}
}

func (k *codec) u16(field string, v *int) {
	switch {
	case k.b != nil:
		k.b.AddUint16(uint16(*v))
	case k.r != nil:
		*v = int(k.r.u16(field))
	}
}

// codecU8 is a one-byte number of any integer type.
func codecU8[T ~int](k *codec, field string, v *T) {
	switch {
	case k.b != nil:
		k.b.AddUint8(uint8(*v))
	case k.r != nil:
		*v = T(k.r.u8(field))
	}
}

func (k *codec) boolean(field string, v *bool) {
	switch {
	case k.b != nil:
		k.b.AddUint8(boolByte(*v))
	case k.r != nil:
		*v = k.r.boolean(field)
	}
}

func (k *codec) charRule(field string, v *CharRule) {
	switch {
	case k.b != nil:
		k.b.AddUint8(uint8(*v))
	case k.r != nil:
		*v = k.r.charRule(field)
	}
}

func (k *codec) unix(field string, v *time.Time) {
	switch {
	case k.b != nil:
		k.b.AddUint64(uint64(v.Unix()))
	case k.r != nil:
		*v = k.r.unix(field)
	}
}

// bytes8 and bytes16 are a field of minLen..maxLen bytes with a one- or
// two-byte length.
func (k *codec) bytes8(field string, v *[]byte, minLen, maxLen int) {
	switch {
	case k.b != nil:
		addU8(k.b, *v)
	case k.r != nil:
		*v = k.r.bytes8(field, minLen, maxLen)
	default:
		*v = bytes.Clone(*v)
	}
}

func (k *codec) bytes16(field string, v *[]byte, minLen, maxLen int) {
	switch {
	case k.b != nil:
		addU16(k.b, *v)
	case k.r != nil:
		*v = k.r.bytes16(field, minLen, maxLen)
	default:
		*v = bytes.Clone(*v)
	}
}

// str8 and str16 are text fields; a string needs no copy.
func (k *codec) str8(field string, v *string, minLen, maxLen int) {
	switch {
	case k.b != nil:
		addU8(k.b, []byte(*v))
	case k.r != nil:
		*v = string(k.r.bytes8(field, minLen, maxLen))
	}
}

func (k *codec) str16(field string, v *string, minLen, maxLen int) {
	switch {
	case k.b != nil:
		addU16(k.b, []byte(*v))
	case k.r != nil:
		*v = string(k.r.bytes16(field, minLen, maxLen))
	}
}

// nv is an NV index: its handle and Name (see reader.nvSecret).
func (k *codec) nv(field string, v *tpm.NVSecret) {
	switch {
	case k.b != nil:
		k.b.AddUint32(v.Handle)
		addU8(k.b, v.Name)
	case k.r != nil:
		*v = k.r.nvSecret(field)
	default:
		*v = cloneNV(*v)
	}
}

// count is the one-byte length of a list of minLen..maxLen entries: n when
// writing or copying, what was read when reading (0 after an error).
func (k *codec) count(field string, n, minLen, maxLen int) int {
	switch {
	case k.b != nil:
		k.b.AddUint8(uint8(n))
	case k.r != nil:
		n = int(k.r.u8(field))
		if k.r.err == nil && (n < minLen || n > maxLen) {
			if minLen == 0 {
				k.r.fail(field, fmt.Sprintf("%d above %d", n, maxLen))
			} else {
				k.r.fail(field, fmt.Sprintf("%d outside %d..%d", n, minLen, maxLen))
			}
		}
		if k.r.err != nil {
			return 0
		}
	}
	return n
}

// list sets the list the walk fills: n fresh entries when reading, a copy
// when copying; when writing, the container is only read.
func list[T any](k *codec, l *[]T, n int) {
	switch {
	case k.b != nil:
	case k.r != nil && n == 0:
		*l = nil
	case k.r != nil:
		*l = make([]T, n)
	default:
		*l = slices.Clone(*l)
	}
}
