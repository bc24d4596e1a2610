package keycred

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

const (
	// fileTimeUnixEpoch is the FILETIME of 1970-01-01T00:00:00Z: 100 ns
	// intervals since 1601-01-01 (MS-DTYP 2.3.3).
	fileTimeUnixEpoch = 116444736000000000
	// dotNetUnixEpoch is the .NET DateTime.Ticks of 1970-01-01T00:00:00Z:
	// 100 ns ticks since 0001-01-01.
	dotNetUnixEpoch = 621355968000000000
	// dotNetMaxTicks is DateTime.MaxValue.Ticks (9999-12-31T23:59:59.9999999).
	dotNetMaxTicks = 3155378975999999999
	// DateTime.ToBinary keeps the DateTimeKind in the top two bits:
	// 0 Unspecified, 1 Utc, 2 (or 3) Local, where the ticks are UTC.
	dotNetKindShift = 62
	dotNetKindUTC   = 1
	dotNetTicksMask = 1<<dotNetKindShift - 1
)

// Bounds of what each encoding holds. Both are read as signed 64-bit
// counts (DateTime.FromFileTime, DateTime.FromBinary).
var (
	minFile   = time.Date(1601, 1, 1, 0, 0, 0, 0, time.UTC)
	minDotNet = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxDotNet = time.Date(9999, 12, 31, 23, 59, 59, 999_999_900, time.UTC)
)

// maxFileSec is the last Unix second whose FILETIME fits an int64.
const maxFileSec = (math.MaxInt64-fileTimeUnixEpoch)/10_000_000 - 1

// encodeTime writes t in the encoding src uses (see the package
// documentation), truncated to 100 ns.
func encodeTime(t time.Time, src KeySource) ([]byte, error) {
	t = t.UTC()
	// Seconds and nanoseconds apart: UnixNano overflows after 2262.
	sec, nsec := t.Unix(), int64(t.Nanosecond())
	var v uint64
	switch src {
	case KeySourceAzureAD:
		if t.Before(minDotNet) || t.After(maxDotNet) {
			return nil, fmt.Errorf("%w: %v for DateTime", ErrTime, t)
		}
		v = uint64(sec*10_000_000+nsec/100+dotNetUnixEpoch) | dotNetKindUTC<<dotNetKindShift
	default:
		if t.Before(minFile) || sec > maxFileSec {
			return nil, fmt.Errorf("%w: %v for FILETIME", ErrTime, t)
		}
		v = uint64(sec*10_000_000 + nsec/100 + fileTimeUnixEpoch)
	}
	return binary.LittleEndian.AppendUint64(nil, v), nil
}

// decodeTime reads an 8-byte timestamp in the encoding src uses.
func decodeTime(b []byte, src KeySource) (time.Time, error) {
	v := binary.LittleEndian.Uint64(b)
	var since1970 int64 // 100 ns units
	switch src {
	case KeySourceAzureAD:
		ticks := int64(v & dotNetTicksMask)
		if ticks > dotNetMaxTicks {
			// A Local DateTime whose UTC ticks went negative is stored
			// wrapped above the maximum; it is before year 1.
			return time.Time{}, fmt.Errorf("%w: DateTime binary %#016x", ErrTime, v)
		}
		since1970 = ticks - dotNetUnixEpoch
	default:
		if v > math.MaxInt64 {
			return time.Time{}, fmt.Errorf("%w: FILETIME %#016x", ErrTime, v)
		}
		since1970 = int64(v) - fileTimeUnixEpoch
	}
	return time.Unix(since1970/10_000_000, since1970%10_000_000*100).UTC(), nil
}
