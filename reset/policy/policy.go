// Package policy reads the client policies that govern PIN reset on a
// device, from every place Windows takes them: EnablePinRecovery from Group
// Policy ("Use PIN Recovery", and the registry value it writes), from the
// PassportForWork CSP as a custom OMA-URI, or from the Intune settings
// catalog; ConfigureWebSignInAllowedUrls from the Policy CSP. Each Parse
// function reads its form strictly (a refusal is a *SettingError), and
// ResolvePINRecovery applies Windows' precedence (GPO over MDM, user over
// device or computer). Package reset takes the result as reset.Policy.
package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/hellosim/hellosim/internal/enum"
	"github.com/hellosim/hellosim/reset/identity"
)

// Source is the policy store a setting came from. The values are ordered by
// precedence, lowest first, as Windows applies Windows Hello for Business
// policy (GPO over MDM, user over device or computer): device MDM
// (PassportForWork CSP), then user MDM, then computer GPO, then user GPO,
// which wins ("Configure Windows Hello for Business", policy precedence). MDMWinsOverGP does not change this: it covers only the Policy
// CSP, and EnablePinRecovery lives in the PassportForWork CSP.
type Source int

const (
	// NotConfigured: no source sets the policy; EnablePinRecovery defaults to
	// false (PassportForWork CSP).
	NotConfigured Source = iota
	// DeviceMDM is ./Device/Vendor/MSFT/PassportForWork/{TenantId}/... — a
	// custom OMA-URI profile or the Intune settings catalog
	// (device_vendor_msft_passportforwork_…).
	DeviceMDM
	// UserMDM is ./User/Vendor/MSFT/PassportForWork/{TenantId}/...
	UserMDM
	// ComputerGPO is Computer Configuration > Administrative Templates >
	// Windows Components > Windows Hello for Business > Use PIN Recovery
	// (HKLM\SOFTWARE\Policies\Microsoft\PassportForWork\EnablePinRecovery).
	ComputerGPO
	// UserGPO is the same setting under User Configuration (HKCU).
	UserGPO
)

var sourceNames = []string{"not-configured", "device-mdm", "user-mdm", "computer-gpo", "user-gpo"}

// String returns a stable name such as "computer-gpo".
func (s Source) String() string { return enum.Name(sourceNames, int(s), "Source") }

// MarshalText implements encoding.TextMarshaler.
func (s Source) MarshalText() ([]byte, error) {
	return enum.Marshal("policy", sourceNames, int(s), "source")
}

// UnmarshalText accepts the names String returns (case-insensitive).
func (s *Source) UnmarshalText(b []byte) error {
	return enum.Unmarshal("policy", sourceNames, (*int)(s), b, "source")
}

// PINRecoverySetting is one source's value of EnablePinRecovery.
type PINRecoverySetting struct {
	Enabled bool
	Source  Source
	// TenantID is the {TenantId} node of a PassportForWork CSP setting (lower
	// case); empty for Group Policy and the Intune settings catalog, which
	// apply to the device's tenant.
	TenantID string
	// Path says where the value was read: the OMA-URI, the registry value or
	// the settings-catalog definition ID.
	Path string
}

// Errors of the policy parsers and of ResolvePINRecovery.
var (
	// ErrMalformedSetting matches every *SettingError.
	ErrMalformedSetting = errors.New("policy: malformed setting")
	// ErrSettingConflict matches every *SettingConflictError.
	ErrSettingConflict = errors.New("policy: conflicting settings")
)

// SettingError is a policy setting that cannot be read.
type SettingError struct {
	Setting string // which setting: "EnablePinRecovery OMA-URI", "ConfigureWebSignInAllowedUrls", …
	Value   string // the offending input (policy values are not secret), shortened
	Reason  string
}

// Error says which setting, which value and why.
func (e *SettingError) Error() string {
	return fmt.Sprintf("policy: malformed setting %s %q: %s", e.Setting, e.Value, e.Reason)
}

// Is matches ErrMalformedSetting.
func (e *SettingError) Is(target error) bool { return target == ErrMalformedSetting }

func policyErr(setting, value, reason string) error {
	const max = 96
	if len(value) > max {
		value = value[:max] + "…"
	}
	return &SettingError{Setting: setting, Value: value, Reason: reason}
}

// SettingConflictError is two settings of the same precedence with
// different values.
type SettingConflictError struct{ A, B PINRecoverySetting }

// Error names both settings.
func (e *SettingConflictError) Error() string {
	return fmt.Sprintf("policy: conflicting EnablePinRecovery settings in %s: %s=%t and %s=%t",
		e.A.Source, e.A.Path, e.A.Enabled, e.B.Path, e.B.Enabled)
}

// Is matches ErrSettingConflict.
func (e *SettingConflictError) Is(target error) bool { return target == ErrSettingConflict }

// ResolvePINRecovery picks the effective EnablePinRecovery for tenantID from
// the settings of every source. Settings for another tenant's {TenantId} node
// are ignored (tenantID "" keeps them all); NotConfigured settings are
// ignored; the setting of highest Source precedence wins. Two settings of the
// same precedence that disagree are a *SettingConflictError, since Windows gives no
// order between them. With no setting the result is NotConfigured and off.
func ResolvePINRecovery(tenantID string, settings ...PINRecoverySetting) (PINRecoverySetting, error) {
	best := PINRecoverySetting{Source: NotConfigured, Path: "default"}
	for _, s := range settings {
		if s.Source <= NotConfigured || s.Source > UserGPO {
			continue
		}
		if s.TenantID != "" && tenantID != "" && !strings.EqualFold(s.TenantID, tenantID) {
			continue
		}
		switch {
		case s.Source > best.Source:
			best = s
		case s.Source == best.Source && s.Enabled != best.Enabled:
			return PINRecoverySetting{}, &SettingConflictError{A: best, B: s}
		}
	}
	return best, nil
}

// ParsePINRecoveryOMA reads the PassportForWork CSP setting as a custom
// OMA-URI profile carries it:
//
//	OMA-URI:   ./Vendor/MSFT/Policy/PassportForWork/{TenantId}/Policies/EnablePinRecovery
//	Data type: Boolean
//	Value:     true | false
//
// The PIN reset documentation writes the path with "/Policy/"; the
// PassportForWork CSP reference writes ./Vendor/MSFT/PassportForWork/… and
// the scoped forms ./Device/… and ./User/…. All are accepted, path segments
// case-insensitively. {TenantId} must be a GUID without braces (the CSP's
// format); the value is "true" or "false" in any case.
func ParsePINRecoveryOMA(uri, value string) (PINRecoverySetting, error) {
	const what = "EnablePinRecovery OMA-URI"
	segs, scope, err := omaSegments(what, uri)
	if err != nil {
		return PINRecoverySetting{}, err
	}
	if scope == "" {
		scope = "device"
	}
	if len(segs) > 0 && strings.EqualFold(segs[0], "Policy") {
		segs = segs[1:]
	}
	if len(segs) != 4 || !strings.EqualFold(segs[0], "PassportForWork") ||
		!strings.EqualFold(segs[2], "Policies") || !strings.EqualFold(segs[3], "EnablePinRecovery") {
		return PINRecoverySetting{}, policyErr(what, uri,
			"want ./Vendor/MSFT/Policy/PassportForWork/{TenantId}/Policies/EnablePinRecovery")
	}
	tid, err := parseTenantID(segs[1])
	if err != nil {
		return PINRecoverySetting{}, policyErr(what, uri, err.Error())
	}
	on, err := parseBool(value)
	if err != nil {
		return PINRecoverySetting{}, policyErr("EnablePinRecovery value", value, err.Error())
	}
	src := DeviceMDM
	if scope == "user" {
		src = UserMDM
	}
	return PINRecoverySetting{Enabled: on, Source: src, TenantID: tid, Path: uri}, nil
}

// WebSignInAllowedURLsOMA is the Policy CSP node of ConfigureWebSignInAllowedUrls.
const WebSignInAllowedURLsOMA = "./Vendor/MSFT/Policy/Config/Authentication/ConfigureWebSignInAllowedUrls"

// ParseWebSignInAllowedURLsOMA reads ConfigureWebSignInAllowedUrls as a
// custom OMA-URI profile carries it (data type String, a semicolon-delimited
// list of domains such as "signin.contoso.com;portal.contoso.com"). The path
// is WebSignInAllowedURLsOMA or its ./Device/ form; the policy has device
// scope only.
func ParseWebSignInAllowedURLsOMA(uri, value string) ([]string, error) {
	const what = "ConfigureWebSignInAllowedUrls OMA-URI"
	segs, scope, err := omaSegments(what, uri)
	if err != nil {
		return nil, err
	}
	if scope == "user" || len(segs) != 4 || !strings.EqualFold(segs[0], "Policy") ||
		!strings.EqualFold(segs[1], "Config") || !strings.EqualFold(segs[2], "Authentication") ||
		!strings.EqualFold(segs[3], "ConfigureWebSignInAllowedUrls") {
		return nil, policyErr(what, uri, "want "+WebSignInAllowedURLsOMA)
	}
	return ParseDomainList(value)
}

// Limits on ConfigureWebSignInAllowedUrls, generous for any real tenant and
// small enough that hostile input costs nothing.
const (
	maxDomainListLen = 16 << 10
	maxDomains       = 512
)

// ParseDomainList reads a semicolon-delimited list of domains (the value of
// ConfigureWebSignInAllowedUrls). Spaces around entries and empty entries
// (a trailing ";") are ignored; names are lower-cased, a trailing dot
// dropped, duplicates removed. URLs, ports, paths, wildcards and non-ASCII
// names (give them in punycode, xn--…) are refused with a *SettingError.
func ParseDomainList(value string) ([]string, error) {
	const what = "ConfigureWebSignInAllowedUrls"
	if len(value) > maxDomainListLen {
		return nil, policyErr(what, value, fmt.Sprintf("longer than %d bytes", maxDomainListLen))
	}
	var out []string
	for entry := range strings.SplitSeq(value, ";") {
		e := strings.TrimSpace(entry)
		if e == "" {
			continue
		}
		switch {
		case strings.Contains(e, "://"):
			return nil, policyErr(what, e, "a domain, not a URL: drop the scheme")
		case strings.ContainsAny(e, "/?#"):
			return nil, policyErr(what, e, "a domain, not a URL: drop the path")
		case strings.Contains(e, "*"):
			return nil, policyErr(what, e, "wildcards are not supported: list each domain")
		case strings.Contains(e, ":"):
			return nil, policyErr(what, e, "a domain without a port")
		}
		h := normalizeHost(e)
		if err := validHost(h); err != nil {
			return nil, policyErr(what, e, err.Error())
		}
		if !slices.Contains(out, h) {
			if len(out) == maxDomains {
				return nil, policyErr(what, value, fmt.Sprintf("more than %d domains", maxDomains))
			}
			out = append(out, h)
		}
	}
	return out, nil
}

// GPOState is a Group Policy setting's state in the editor.
type GPOState int

const (
	// GPONotConfigured leaves the decision to other sources.
	GPONotConfigured GPOState = iota
	// GPOEnabled turns the policy on.
	GPOEnabled
	// GPODisabled turns it off (and, being configured, wins over MDM).
	GPODisabled
)

var gpoNames = []string{"Not Configured", "Enabled", "Disabled"}

// String returns "Enabled", "Disabled" or "Not Configured", as the editor shows it.
func (s GPOState) String() string { return enum.Name(gpoNames, int(s), "GPOState") }

// ParseGPOState reads "Enabled", "Disabled" or "Not Configured" (case and
// the space in "Not Configured" do not matter).
func ParseGPOState(s string) (GPOState, error) {
	switch strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), " ", "")) {
	case "enabled":
		return GPOEnabled, nil
	case "disabled":
		return GPODisabled, nil
	case "notconfigured":
		return GPONotConfigured, nil
	}
	return 0, policyErr("Use PIN Recovery", s, "want Enabled, Disabled or Not Configured")
}

// GPO registry location of "Use PIN Recovery" (its ADMX value).
const (
	GPORegistryKey   = `SOFTWARE\Policies\Microsoft\PassportForWork`
	GPORegistryValue = "EnablePinRecovery"
)

// PINRecoveryFromGPO is the setting of "Use PIN Recovery" in state s, under
// Computer Configuration (user false) or User Configuration (user true).
func PINRecoveryFromGPO(s GPOState, user bool) PINRecoverySetting {
	src, hive := ComputerGPO, "HKLM"
	if user {
		src, hive = UserGPO, "HKCU"
	}
	switch s {
	case GPOEnabled, GPODisabled:
		return PINRecoverySetting{Enabled: s == GPOEnabled, Source: src, Path: hive + `\` + GPORegistryKey + `\` + GPORegistryValue}
	}
	return PINRecoverySetting{Source: NotConfigured, Path: "Use PIN Recovery: Not Configured"}
}

// ParsePINRecoveryRegistry reads the registry value Group Policy writes for
// "Use PIN Recovery": key HKLM\SOFTWARE\Policies\Microsoft\PassportForWork
// (or HKCU\…, or the long hive names HKEY_LOCAL_MACHINE / HKEY_CURRENT_USER),
// value EnablePinRecovery, REG_DWORD 1 (enabled) or 0 (disabled). data is the
// value as .reg files write it ("dword:00000001") or a decimal or 0x-hex
// number. An absent value is GPONotConfigured and needs no parsing.
func ParsePINRecoveryRegistry(key, name, data string) (PINRecoverySetting, error) {
	const what = "EnablePinRecovery registry value"
	hive, path, ok := strings.Cut(strings.Trim(key, `\`), `\`)
	var user bool
	switch strings.ToUpper(hive) {
	case "HKLM", "HKEY_LOCAL_MACHINE":
	case "HKCU", "HKEY_CURRENT_USER":
		user = true
	default:
		ok = false
	}
	if !ok || !strings.EqualFold(path, GPORegistryKey) {
		return PINRecoverySetting{}, policyErr(what, key, `want HKLM\`+GPORegistryKey)
	}
	if !strings.EqualFold(name, GPORegistryValue) {
		return PINRecoverySetting{}, policyErr(what, name, "want value name "+GPORegistryValue)
	}
	d := strings.TrimSpace(data)
	var n uint64
	var err error
	switch l := strings.ToLower(d); {
	case strings.HasPrefix(l, "dword:"):
		hex := l[len("dword:"):]
		if len(hex) != 8 {
			return PINRecoverySetting{}, policyErr(what, data, "dword: needs 8 hex digits")
		}
		n, err = strconv.ParseUint(hex, 16, 32)
	case strings.HasPrefix(l, "0x"):
		n, err = strconv.ParseUint(l[2:], 16, 32)
	default:
		n, err = strconv.ParseUint(l, 10, 32)
	}
	if err != nil || d == "" {
		return PINRecoverySetting{}, policyErr(what, data, "want a REG_DWORD such as dword:00000001")
	}
	if n > 1 {
		return PINRecoverySetting{}, policyErr(what, data, "want 1 (enabled) or 0 (disabled)")
	}
	s := GPODisabled
	if n == 1 {
		s = GPOEnabled
	}
	return PINRecoveryFromGPO(s, user), nil
}

// IntuneDefinitionID is the Intune settings-catalog definition of "Windows
// Hello For Business > Enable Pin Recovery" (device scope; the user-scope
// definition starts with "user_" instead of "device_"). Its choice options
// are the definition ID followed by "_true" and "_false".
const IntuneDefinitionID = "device_vendor_msft_passportforwork_{tenantid}_policies_enablepinrecovery"

// ParsePINRecoveryIntune reads a settings-catalog value of Enable Pin
// Recovery: definitionID is IntuneDefinitionID (or its user_ form), value is
// "true"/"false" or the chosen option's item ID.
func ParsePINRecoveryIntune(definitionID, value string) (PINRecoverySetting, error) {
	const what = "Intune Enable Pin Recovery"
	id := strings.ToLower(strings.TrimSpace(definitionID))
	src := DeviceMDM
	switch {
	case id == IntuneDefinitionID:
	case id == "user_"+strings.TrimPrefix(IntuneDefinitionID, "device_"):
		src = UserMDM
	default:
		return PINRecoverySetting{}, policyErr(what, definitionID, "want settingDefinitionId "+IntuneDefinitionID)
	}
	v := strings.ToLower(strings.TrimSpace(value))
	if opt, ok := strings.CutPrefix(v, id+"_"); ok {
		v = opt
	}
	on, err := parseBool(v)
	if err != nil {
		return PINRecoverySetting{}, policyErr(what, value, "want true, false, or the option "+id+"_true")
	}
	return PINRecoverySetting{Enabled: on, Source: src, Path: "Intune " + id}, nil
}

// maxIntuneJSON bounds ParseIntuneSetting's input.
const maxIntuneJSON = 64 << 10

// ParseIntuneSetting reads a settings-catalog setting instance as Microsoft
// Graph returns it (a deviceManagementConfigurationSetting with a
// "settingInstance", or the instance itself):
//
//	{"settingInstance": {
//	  "@odata.type": "#microsoft.graph.deviceManagementConfigurationChoiceSettingInstance",
//	  "settingDefinitionId": "device_vendor_msft_passportforwork_{tenantid}_policies_enablepinrecovery",
//	  "choiceSettingValue": {"value": "device_vendor_msft_passportforwork_{tenantid}_policies_enablepinrecovery_true"}}}
//
// Unknown fields are ignored; a missing definition or value, trailing data,
// or input over 64 KiB is a *SettingError.
func ParseIntuneSetting(data []byte) (PINRecoverySetting, error) {
	const what = "Intune setting JSON"
	short := string(data[:min(len(data), 64)])
	if len(data) > maxIntuneJSON {
		return PINRecoverySetting{}, policyErr(what, short, fmt.Sprintf("larger than %d bytes", maxIntuneJSON))
	}
	type instance struct {
		OdataType           string `json:"@odata.type"`
		SettingDefinitionID string `json:"settingDefinitionId"`
		ChoiceSettingValue  *struct {
			Value string `json:"value"`
		} `json:"choiceSettingValue"`
	}
	var doc struct {
		instance
		SettingInstance *instance `json:"settingInstance"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return PINRecoverySetting{}, policyErr(what, short, "not a JSON object: "+err.Error())
	}
	// Only the end of the input may follow: a further token, and equally
	// bytes that are no JSON at all (for which Token fails), are refused.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return PINRecoverySetting{}, policyErr(what, short, "trailing data after the JSON object")
	}
	in := doc.instance
	if doc.SettingInstance != nil {
		in = *doc.SettingInstance
	}
	if in.OdataType != "" && !strings.EqualFold(in.OdataType, "#microsoft.graph.deviceManagementConfigurationChoiceSettingInstance") {
		return PINRecoverySetting{}, policyErr(what, in.OdataType, "want a choice setting instance")
	}
	if in.SettingDefinitionID == "" || in.ChoiceSettingValue == nil {
		return PINRecoverySetting{}, policyErr(what, short, "needs settingDefinitionId and choiceSettingValue.value")
	}
	return ParsePINRecoveryIntune(in.SettingDefinitionID, in.ChoiceSettingValue.Value)
}

// omaSegments checks the "./" prefix, strips the optional scope and the
// "Vendor/MSFT" node, and returns the remaining segments.
func omaSegments(what, uri string) (segs []string, scope string, err error) {
	if len(uri) > 1024 {
		return nil, "", policyErr(what, uri, "too long")
	}
	rest, ok := strings.CutPrefix(uri, "./")
	if !ok {
		return nil, "", policyErr(what, uri, `an OMA-URI starts with "./"`)
	}
	segs = strings.Split(rest, "/")
	if slices.Contains(segs, "") {
		return nil, "", policyErr(what, uri, "empty path segment")
	}
	if strings.EqualFold(segs[0], "Device") || strings.EqualFold(segs[0], "User") {
		scope, segs = strings.ToLower(segs[0]), segs[1:]
	}
	if len(segs) < 2 || !strings.EqualFold(segs[0], "Vendor") || !strings.EqualFold(segs[1], "MSFT") {
		return nil, "", policyErr(what, uri, "want ./Vendor/MSFT/…")
	}
	return segs[2:], scope, nil
}

// parseTenantID checks the 8-4-4-4-12 hexadecimal GUID form without braces
// and returns it in lower case.
func parseTenantID(s string) (string, error) {
	if strings.HasPrefix(s, "{") {
		return "", errors.New("tenant ID must be a GUID without curly braces")
	}
	id, err := identity.CanonicalGUID(s)
	switch {
	case err == nil:
		return id, nil
	case len(s) == 36 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-':
		return "", errors.New("tenant ID must be hexadecimal")
	}
	return "", errors.New("tenant ID must be a GUID like 72f988bf-86f1-41af-91ab-2d7cd011db47")
}

func parseBool(s string) (bool, error) {
	switch {
	case strings.EqualFold(s, "true"):
		return true, nil
	case strings.EqualFold(s, "false"):
		return false, nil
	}
	return false, errors.New(`want "true" or "false"`)
}

// ParseDomain reads one domain as ConfigureWebSignInAllowedUrls lists it
// (and as a sign-in page's host appears): surrounding spaces and a trailing
// dot dropped, lower-cased, then checked as a DNS name of ASCII labels. A
// refusal is a *SettingError.
func ParseDomain(s string) (string, error) {
	h := normalizeHost(s)
	if err := validHost(h); err != nil {
		return "", policyErr("domain", s, err.Error())
	}
	return h, nil
}

func normalizeHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
}

// validHost checks a lower-case DNS name: labels of letters, digits and
// hyphens, 1–63 bytes, no hyphen at either end, at most 253 bytes in all.
func validHost(h string) error {
	if h == "" {
		return errors.New("empty domain")
	}
	if len(h) > 253 {
		return errors.New("domain longer than 253 bytes")
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 {
			return errors.New("each label of a domain has 1 to 63 characters")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New("a label may not start or end with a hyphen")
		}
		for _, c := range []byte(label) {
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-':
			case c >= 0x80:
				return errors.New("non-ASCII domain: give it in punycode (xn--…)")
			default:
				return fmt.Errorf("character %q is not allowed in a domain", c)
			}
		}
	}
	return nil
}
