package reset

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Version is a Windows 10 or 11 release, identified by its OS build number
// (the third part of "10.0.19045"). The zero value means unknown.
type Version int

// Windows releases and their build numbers (Windows release information).
// The PIN reset documentation draws its lines at 1709 (Enterprise), 1903
// (Pro) and Windows 11.
const (
	Windows10v1507 Version = 10240
	Windows10v1511 Version = 10586
	Windows10v1607 Version = 14393
	Windows10v1703 Version = 15063
	Windows10v1709 Version = 16299
	Windows10v1803 Version = 17134
	Windows10v1809 Version = 17763
	Windows10v1903 Version = 18362
	Windows10v1909 Version = 18363
	Windows10v2004 Version = 19041
	Windows10v20H2 Version = 19042
	Windows10v21H1 Version = 19043
	Windows10v21H2 Version = 19044
	Windows10v22H2 Version = 19045
	Windows11v21H2 Version = 22000
	Windows11v22H2 Version = 22621
	Windows11v23H2 Version = 22631
	Windows11v24H2 Version = 26100

	// Windows11 is the first Windows 11 build; every build from it on is Windows 11.
	Windows11 = Windows11v21H2
)

var versionNames = []struct {
	v    Version
	name string
}{
	{Windows10v1507, "1507"}, {Windows10v1511, "1511"}, {Windows10v1607, "1607"},
	{Windows10v1703, "1703"}, {Windows10v1709, "1709"}, {Windows10v1803, "1803"},
	{Windows10v1809, "1809"}, {Windows10v1903, "1903"}, {Windows10v1909, "1909"},
	{Windows10v2004, "2004"}, {Windows10v20H2, "20H2"}, {Windows10v21H1, "21H1"},
	{Windows10v21H2, "21H2"}, {Windows10v22H2, "22H2"},
	{Windows11v21H2, "21H2"}, {Windows11v22H2, "22H2"}, {Windows11v23H2, "23H2"},
	{Windows11v24H2, "24H2"},
}

// ErrInvalidVersion is returned by ParseVersion for text it does not understand.
var ErrInvalidVersion = errors.New("reset: invalid windows version")

// IsWindows11 reports whether v is a Windows 11 build.
func (v Version) IsWindows11() bool { return v >= Windows11 }

// String renders "Windows 10, version 1903 (10.0.18362)" for known releases,
// "Windows 11 (10.0.26200)" for other builds, "unknown" for the zero value.
func (v Version) String() string {
	if v <= 0 {
		return "unknown"
	}
	product := "Windows 10"
	if v.IsWindows11() {
		product = "Windows 11"
	} else if v < Windows10v1507 {
		return fmt.Sprintf("Windows build %d", int(v))
	}
	for _, n := range versionNames {
		if n.v == v {
			return fmt.Sprintf("%s, version %s (10.0.%d)", product, n.name, int(v))
		}
	}
	return fmt.Sprintf("%s (10.0.%d)", product, int(v))
}

// ParseVersion reads a Windows version in one of these forms:
//
//	10.0.19045          OS version (an update revision, 10.0.19045.3803, is ignored)
//	19045               build number
//	Windows 10 1903     product and version name (also "Windows 10, version 1903")
//	Windows 11 23H2
//	1903                a Windows 10 version name alone
func ParseVersion(s string) (Version, error) {
	orig := s
	bad := func(why string) (Version, error) {
		return 0, fmt.Errorf("%w %.64q: %s", ErrInvalidVersion, orig, why)
	}
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 64 {
		return bad("want 10.0.BUILD, a build number, or a name like \"Windows 10 1903\"")
	}
	if rest, ok := strings.CutPrefix(s, "10.0."); ok {
		build, _, _ := strings.Cut(rest, ".")
		if _, ubr, has := strings.Cut(rest, "."); has {
			if _, err := parseUint(ubr, 1<<31); err != nil {
				return bad("update revision is not a number")
			}
		}
		n, err := parseUint(build, 1<<31)
		if err != nil || n < int(Windows10v1507) {
			return bad("build is not a Windows 10 or 11 build number")
		}
		return Version(n), nil
	}
	product := 10
	lower := strings.ToLower(s)
	switch {
	case strings.HasPrefix(lower, "windows 10"):
		s = s[len("windows 10"):]
	case strings.HasPrefix(lower, "windows 11"):
		s, product = s[len("windows 11"):], 11
	default:
		if n, err := parseUint(s, 1<<31); err == nil && n >= int(Windows10v1507) {
			return Version(n), nil
		}
	}
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, ",")
	s = strings.TrimSpace(s)
	if l := strings.ToLower(s); strings.HasPrefix(l, "version") {
		s = strings.TrimSpace(s[len("version"):])
	}
	if s == "" {
		if product == 11 {
			return Windows11, nil
		}
		return bad("Windows 10 needs a version such as 1709")
	}
	for _, n := range versionNames {
		if strings.EqualFold(n.name, s) && (n.v.IsWindows11() == (product == 11)) {
			return n.v, nil
		}
	}
	return bad("unknown version name")
}

// parseUint parses a decimal number of at most 10 digits below max.
func parseUint(s string, max int) (int, error) {
	if s == "" || len(s) > 10 {
		return 0, strconv.ErrSyntax
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n >= max {
		return 0, strconv.ErrRange
	}
	return n, nil
}

// MarshalText renders "10.0.BUILD" (the zero value: "").
func (v Version) MarshalText() ([]byte, error) {
	if v == 0 {
		return []byte{}, nil
	}
	return fmt.Appendf(nil, "10.0.%d", int(v)), nil
}

// UnmarshalText accepts what ParseVersion accepts (and "" for unknown).
func (v *Version) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*v = 0
		return nil
	}
	p, err := ParseVersion(string(b))
	if err != nil {
		return err
	}
	*v = p
	return nil
}
