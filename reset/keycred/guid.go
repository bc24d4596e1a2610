package keycred

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// encodeGUID writes a GUID given in its string form ("xxxxxxxx-xxxx-xxxx-
// xxxx-xxxxxxxxxxxx", either case, optionally in braces) in the Windows
// binary layout (MS-DTYP 2.3.4.2): Data1, Data2 and Data3 little-endian,
// Data4 as written.
func encodeGUID(s string) ([]byte, error) {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return nil, fmt.Errorf("%w: %q is not a GUID", ErrInvalidValue, s)
	}
	raw, err := hex.DecodeString(s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36])
	if err != nil {
		return nil, fmt.Errorf("%w: %q is not a GUID", ErrInvalidValue, s)
	}
	b := make([]byte, 16)
	binary.LittleEndian.PutUint32(b[0:], binary.BigEndian.Uint32(raw[0:]))
	binary.LittleEndian.PutUint16(b[4:], binary.BigEndian.Uint16(raw[4:]))
	binary.LittleEndian.PutUint16(b[6:], binary.BigEndian.Uint16(raw[6:]))
	copy(b[8:], raw[8:])
	return b, nil
}

// decodeGUID reads 16 bytes in the Windows GUID layout and returns the
// lower-case string form.
func decodeGUID(b []byte) string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(b[0:]), binary.LittleEndian.Uint16(b[4:]),
		binary.LittleEndian.Uint16(b[6:]), b[8:10], b[10:16])
}

// normaliseGUID returns a valid GUID string in lower case without braces;
// "" stays "".
func normaliseGUID(s string) string {
	if s == "" {
		return ""
	}
	b, err := encodeGUID(s)
	if err != nil {
		return s
	}
	return decodeGUID(b)
}
