package keycred

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// DNBinary is a value of the Object(DN-Binary) syntax (attributeSyntax
// 2.5.5.7), the LDAP form of msDS-KeyCredentialLink:
// "B:<number of hex digits>:<hex>:<DN>".
type DNBinary struct {
	Binary []byte
	DN     string
}

// String renders the value with upper-case hex digits, as Active Directory
// returns it over LDAP.
func (d DNBinary) String() string {
	return "B:" + strconv.Itoa(2*len(d.Binary)) + ":" + strings.ToUpper(hex.EncodeToString(d.Binary)) + ":" + d.DN
}

// maxDNBinaryHex bounds the digit count read, far above any key credential
// (a KEYCREDENTIALLINK_BLOB with an RSA-4096 key is about 700 bytes).
const maxDNBinaryHex = 1 << 20

// ParseDNBinary reads a DN-Binary value. The count must be a decimal
// number without leading zeros that equals the number of hex digits, which
// must be even; digits may be of either case; the DN must be non-empty
// valid UTF-8 without control characters. The DN itself is not parsed
// further.
func ParseDNBinary(s string) (DNBinary, error) {
	fail := func(off int, format string, a ...any) (DNBinary, error) {
		return DNBinary{}, &ParseError{What: "DN-Binary value", Offset: off, Err: fmt.Errorf("%w: "+format, append([]any{ErrDNBinary}, a...)...)}
	}
	rest, ok := strings.CutPrefix(s, "B:")
	if !ok {
		return fail(0, "no B: prefix")
	}
	countStr, rest, ok := strings.Cut(rest, ":")
	if !ok {
		return fail(len(s), "no count")
	}
	if countStr == "" || len(countStr) > 7 || strings.TrimLeft(countStr, "0123456789") != "" || len(countStr) > 1 && countStr[0] == '0' {
		return fail(2, "count %q", countStr)
	}
	count, _ := strconv.Atoi(countStr) // digits only, at most 7 of them
	if count%2 != 0 || count > maxDNBinaryHex {
		return fail(2, "count %d", count)
	}
	hexStart := 2 + len(countStr) + 1
	if len(rest) < count {
		return fail(len(s), "count %d, %d characters follow", count, len(rest))
	}
	digits, dn := rest[:count], rest[count:]
	bin, err := hex.DecodeString(digits)
	if err != nil {
		return fail(hexStart, "hex digits: %v", err)
	}
	dn, ok = strings.CutPrefix(dn, ":")
	if !ok {
		return fail(hexStart+count, "count %d does not end the hex digits", count)
	}
	if dn == "" {
		return fail(len(s), "empty DN")
	}
	if !utf8.ValidString(dn) || strings.ContainsFunc(dn, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fail(hexStart+count+1, "DN is not printable UTF-8")
	}
	return DNBinary{Binary: bin, DN: dn}, nil
}

// AttributeValue renders k as an msDS-KeyCredentialLink value held by the
// object named ownerDN.
func (k *KeyCredential) AttributeValue(ownerDN string) (string, error) {
	if ownerDN == "" {
		return "", fmt.Errorf("key credential attribute value: %w: empty DN", ErrDNBinary)
	}
	b, err := k.MarshalBinary()
	if err != nil {
		return "", err
	}
	return DNBinary{Binary: b, DN: ownerDN}.String(), nil
}

// ParseAttributeValue reads an msDS-KeyCredentialLink value in DN-Binary
// form and returns the key credential and its owner's DN.
func ParseAttributeValue(s string) (k *KeyCredential, ownerDN string, err error) {
	d, err := ParseDNBinary(s)
	if err != nil {
		return nil, "", err
	}
	k, err = Parse(d.Binary)
	if err != nil {
		return nil, "", err
	}
	return k, d.DN, nil
}
