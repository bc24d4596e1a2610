package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParsePINRecoveryOMA(t *testing.T) {
	const tid = "72F988BF-86F1-41AF-91AB-2D7CD011DB47"
	good := []struct {
		uri, value string
		want       PINRecoverySetting
	}{
		// pin-reset.md line 163: the seed's spelling.
		{"./Vendor/MSFT/Policy/PassportForWork/" + tid + "/Policies/EnablePinRecovery", "True",
			PINRecoverySetting{Enabled: true, Source: DeviceMDM, TenantID: strings.ToLower(tid)}},
		// PassportForWork CSP reference spellings.
		{"./Vendor/MSFT/PassportForWork/" + tid + "/Policies/EnablePinRecovery", "false",
			PINRecoverySetting{Enabled: false, Source: DeviceMDM, TenantID: strings.ToLower(tid)}},
		{"./Device/Vendor/MSFT/PassPortForWork/" + tid + "/Policies/EnablePinRecovery", "TRUE",
			PINRecoverySetting{Enabled: true, Source: DeviceMDM, TenantID: strings.ToLower(tid)}},
		{"./User/Vendor/MSFT/PassportForWork/" + tid + "/Policies/EnablePinRecovery", "true",
			PINRecoverySetting{Enabled: true, Source: UserMDM, TenantID: strings.ToLower(tid)}},
	}
	for _, g := range good {
		s, err := ParsePINRecoveryOMA(g.uri, g.value)
		require.NoError(t, err, g.uri)
		g.want.Path = g.uri
		assert.Equal(t, g.want, s)
	}
	bad := []struct{ uri, value, says string }{
		{"./Vendor/MSFT/Policy/PassportForWork/{" + tid + "}/Policies/EnablePinRecovery", "true", "curly braces"},
		{"./Vendor/MSFT/Policy/PassportForWork/TenantId/Policies/EnablePinRecovery", "true", "GUID"},
		{"./Vendor/MSFT/Policy/PassportForWork/72f988bf-86f1-41af-91ab-2d7cd011db4g/Policies/EnablePinRecovery", "true", "hexadecimal"},
		{"./Vendor/MSFT/Policy/PassportForWork/" + tid + "/Policies/EnablePinRecovery", "1", `"true" or "false"`},
		{"./Vendor/MSFT/Policy/PassportForWork/" + tid + "/Policies/EnablePinRecovery", " true", `"true" or "false"`},
		{"./Vendor/MSFT/Policy/PassportForWork/" + tid + "/Policies/UsePassportForWork", "true", "EnablePinRecovery"},
		{"./Vendor/MSFT/Policy/PassportForWork/" + tid + "/Policies/EnablePinRecovery/", "true", "empty path segment"},
		{"Vendor/MSFT/Policy/PassportForWork/" + tid + "/Policies/EnablePinRecovery", "true", `starts with "./"`},
		{"./Vendor/Contoso/PassportForWork/" + tid + "/Policies/EnablePinRecovery", "true", "./Vendor/MSFT"},
		{"", "true", `starts with "./"`},
	}
	for _, b := range bad {
		_, err := ParsePINRecoveryOMA(b.uri, b.value)
		require.Error(t, err, b.uri)
		assert.ErrorIs(t, err, ErrMalformedSetting)
		var pe *SettingError
		require.ErrorAs(t, err, &pe)
		assert.Contains(t, err.Error(), b.says, b.uri)
	}
}

func TestParseWebSignInAllowedURLs(t *testing.T) {
	// pin-reset.md line 243: the example value.
	got, err := ParseWebSignInAllowedURLsOMA(WebSignInAllowedURLsOMA, "signin.contoso.com;portal.contoso.com")
	require.NoError(t, err)
	assert.Equal(t, []string{"signin.contoso.com", "portal.contoso.com"}, got)

	got, err = ParseWebSignInAllowedURLsOMA("./Device/Vendor/MSFT/Policy/Config/Authentication/ConfigureWebSignInAllowedUrls",
		" Login.MicrosoftOnline.US. ; ;login.microsoftonline.us;")
	require.NoError(t, err)
	// pin-reset.md line 252: the Azure Government workaround.
	assert.Equal(t, []string{"login.microsoftonline.us"}, got)

	got, err = ParseDomainList("")
	require.NoError(t, err)
	assert.Empty(t, got)

	_, err = ParseWebSignInAllowedURLsOMA("./User/Vendor/MSFT/Policy/Config/Authentication/ConfigureWebSignInAllowedUrls", "a.com")
	assert.ErrorIs(t, err, ErrMalformedSetting)
	_, err = ParseWebSignInAllowedURLsOMA("./Vendor/MSFT/Policy/Config/Authentication/ConfigureWebSignInAllowedURLs/x", "a.com")
	assert.ErrorIs(t, err, ErrMalformedSetting)

	for value, says := range map[string]string{
		"https://signin.contoso.com":     "drop the scheme",
		"signin.contoso.com/adfs":        "drop the path",
		"*.contoso.com":                  "wildcards",
		"signin.contoso.com:443":         "port",
		"sïgnin.contoso.com":             "punycode",
		"-bad.contoso.com":               "hyphen",
		"a..b":                           "1 to 63",
		"under_score.com":                "not allowed",
		strings.Repeat("a", 64) + ".com": "1 to 63",
		strings.Repeat("a;", 9000):       "longer than",
	} {
		_, err := ParseDomainList(value)
		require.Error(t, err, value)
		assert.ErrorIs(t, err, ErrMalformedSetting)
		assert.Contains(t, err.Error(), says, value)
	}
	many := make([]string, maxDomains+1)
	for i := range many {
		many[i] = fmt.Sprintf("d%d.example", i)
	}
	_, err = ParseDomainList(strings.Join(many[:maxDomains], ";"))
	require.NoError(t, err)
	_, err = ParseDomainList(strings.Join(many, ";"))
	assert.ErrorIs(t, err, ErrMalformedSetting)
	assert.Contains(t, err.Error(), "more than")
}

func TestGPO(t *testing.T) {
	for in, want := range map[string]GPOState{"Enabled": GPOEnabled, "disabled": GPODisabled, "Not Configured": GPONotConfigured, "NotConfigured": GPONotConfigured} {
		s, err := ParseGPOState(in)
		require.NoError(t, err)
		assert.Equal(t, want, s)
	}
	_, err := ParseGPOState("On")
	assert.ErrorIs(t, err, ErrMalformedSetting)

	// pin-reset.md line 156: Computer Configuration > ... > Use PIN Recovery.
	s := PINRecoveryFromGPO(GPOEnabled, false)
	assert.Equal(t, PINRecoverySetting{Enabled: true, Source: ComputerGPO, Path: `HKLM\SOFTWARE\Policies\Microsoft\PassportForWork\EnablePinRecovery`}, s)
	assert.Equal(t, UserGPO, PINRecoveryFromGPO(GPODisabled, true).Source)
	assert.Equal(t, NotConfigured, PINRecoveryFromGPO(GPONotConfigured, false).Source)
	assert.Equal(t, "Not Configured", GPONotConfigured.String())
}

func TestParsePINRecoveryRegistry(t *testing.T) {
	for _, c := range []struct {
		key, name, data string
		enabled         bool
		src             Source
	}{
		{`HKLM\SOFTWARE\Policies\Microsoft\PassportForWork`, "EnablePinRecovery", "dword:00000001", true, ComputerGPO},
		{`HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Microsoft\PassportForWork\`, "enablepinrecovery", "0", false, ComputerGPO},
		{`HKCU\Software\Policies\Microsoft\PassportForWork`, "EnablePinRecovery", "0x1", true, UserGPO},
		{`HKEY_CURRENT_USER\SOFTWARE\Policies\Microsoft\PassportForWork`, "EnablePinRecovery", "1", true, UserGPO},
	} {
		s, err := ParsePINRecoveryRegistry(c.key, c.name, c.data)
		require.NoError(t, err, c)
		assert.Equal(t, c.enabled, s.Enabled)
		assert.Equal(t, c.src, s.Source)
	}
	for _, c := range [][3]string{
		{`HKLM\SOFTWARE\Policies\Microsoft\Passport`, "EnablePinRecovery", "1"},
		{`HKU\SOFTWARE\Policies\Microsoft\PassportForWork`, "EnablePinRecovery", "1"},
		{`HKLM`, "EnablePinRecovery", "1"},
		{`HKLM\SOFTWARE\Policies\Microsoft\PassportForWork`, "UsePinRecovery", "1"},
		{`HKLM\SOFTWARE\Policies\Microsoft\PassportForWork`, "EnablePinRecovery", "2"},
		{`HKLM\SOFTWARE\Policies\Microsoft\PassportForWork`, "EnablePinRecovery", "dword:1"},
		{`HKLM\SOFTWARE\Policies\Microsoft\PassportForWork`, "EnablePinRecovery", "dword:0000000g"},
		{`HKLM\SOFTWARE\Policies\Microsoft\PassportForWork`, "EnablePinRecovery", ""},
		{`HKLM\SOFTWARE\Policies\Microsoft\PassportForWork`, "EnablePinRecovery", "-1"},
	} {
		_, err := ParsePINRecoveryRegistry(c[0], c[1], c[2])
		assert.ErrorIs(t, err, ErrMalformedSetting, c)
	}
}

func TestParsePINRecoveryIntune(t *testing.T) {
	// pin-reset.md lines 136-137: Windows Hello For Business > Enable Pin Recovery = true.
	s, err := ParsePINRecoveryIntune(IntuneDefinitionID, "true")
	require.NoError(t, err)
	assert.True(t, s.Enabled)
	assert.Equal(t, DeviceMDM, s.Source)

	s, err = ParsePINRecoveryIntune(IntuneDefinitionID, IntuneDefinitionID+"_false")
	require.NoError(t, err)
	assert.False(t, s.Enabled)

	s, err = ParsePINRecoveryIntune("user_vendor_msft_passportforwork_{tenantid}_policies_enablepinrecovery", "True")
	require.NoError(t, err)
	assert.Equal(t, UserMDM, s.Source)

	_, err = ParsePINRecoveryIntune("device_vendor_msft_passportforwork_{tenantid}_policies_usepassportforwork", "true")
	assert.ErrorIs(t, err, ErrMalformedSetting)
	_, err = ParsePINRecoveryIntune(IntuneDefinitionID, "yes")
	assert.ErrorIs(t, err, ErrMalformedSetting)
	_, err = ParsePINRecoveryIntune(IntuneDefinitionID, "device_vendor_msft_passportforwork_{tenantid}_policies_usepassportforwork_true")
	assert.ErrorIs(t, err, ErrMalformedSetting)
}

func TestParseIntuneSettingTestdata(t *testing.T) {
	for name, want := range map[string]bool{"intune-enablepinrecovery-true.json": true, "intune-enablepinrecovery-instance-false.json": false} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(t, err)
		s, err := ParseIntuneSetting(data)
		require.NoError(t, err, name)
		assert.Equal(t, want, s.Enabled, name)
	}
	for _, bad := range []string{
		``, `[]`, `{}`, `null`, `{"settingInstance":{}}`,
		`{"settingDefinitionId":"` + IntuneDefinitionID + `"}`,
		`{"settingDefinitionId":"` + IntuneDefinitionID + `","choiceSettingValue":{"value":"true"}} {}`,
		`{"@odata.type":"#microsoft.graph.deviceManagementConfigurationSimpleSettingInstance","settingDefinitionId":"` + IntuneDefinitionID + `","choiceSettingValue":{"value":"true"}}`,
		`{"settingDefinitionId":"` + IntuneDefinitionID + `","choiceSettingValue":{"value":"maybe"}}`,
		`{"settingDefinitionId":` + strings.Repeat(" ", maxIntuneJSON) + `"x"}`,
	} {
		_, err := ParseIntuneSetting([]byte(bad))
		assert.ErrorIs(t, err, ErrMalformedSetting, bad[:min(len(bad), 80)])
	}
}

func TestResolvePINRecoveryPrecedence(t *testing.T) {
	const tid = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	deviceOn := PINRecoverySetting{Enabled: true, Source: DeviceMDM, TenantID: tid, Path: "csp"}
	deviceOff := PINRecoverySetting{Enabled: false, Source: DeviceMDM, Path: "intune"}
	userOn := PINRecoverySetting{Enabled: true, Source: UserMDM, TenantID: tid, Path: "user csp"}
	gpoOff := PINRecoveryFromGPO(GPODisabled, false)
	gpoOn := PINRecoveryFromGPO(GPOEnabled, false)
	userGPOOn := PINRecoveryFromGPO(GPOEnabled, true)
	other := PINRecoverySetting{Enabled: true, Source: UserMDM, TenantID: "00000000-0000-0000-0000-000000000001", Path: "other tenant"}

	s, err := ResolvePINRecovery(tid)
	require.NoError(t, err)
	assert.Equal(t, NotConfigured, s.Source)
	assert.False(t, s.Enabled, "EnablePinRecovery defaults to false")

	s, err = ResolvePINRecovery(tid, deviceOn)
	require.NoError(t, err)
	assert.True(t, s.Enabled)

	// Computer GPO beats device and user MDM, whatever the order.
	s, err = ResolvePINRecovery(tid, deviceOn, gpoOff, userOn)
	require.NoError(t, err)
	assert.Equal(t, ComputerGPO, s.Source)
	assert.False(t, s.Enabled)

	// User GPO beats computer GPO.
	s, err = ResolvePINRecovery(tid, userGPOOn, gpoOff)
	require.NoError(t, err)
	assert.Equal(t, UserGPO, s.Source)
	assert.True(t, s.Enabled)

	// User MDM beats device MDM.
	s, err = ResolvePINRecovery(tid, deviceOff, userOn)
	require.NoError(t, err)
	assert.Equal(t, UserMDM, s.Source)

	// Another tenant's node is ignored.
	s, err = ResolvePINRecovery(tid, other, deviceOff)
	require.NoError(t, err)
	assert.False(t, s.Enabled)

	// Not Configured GPO leaves MDM in charge.
	s, err = ResolvePINRecovery(tid, PINRecoveryFromGPO(GPONotConfigured, false), deviceOn)
	require.NoError(t, err)
	assert.True(t, s.Enabled)

	// Same precedence, different values: a conflict.
	_, err = ResolvePINRecovery(tid, deviceOn, deviceOff)
	assert.ErrorIs(t, err, ErrSettingConflict)
	var ce *SettingConflictError
	require.ErrorAs(t, err, &ce)
	assert.Contains(t, err.Error(), "device-mdm")
	_, err = ResolvePINRecovery(tid, gpoOn, gpoOn)
	assert.NoError(t, err)

}

func checkPolicyErr(t *testing.T, err error) {
	t.Helper()
	if err != nil && !errors.Is(err, ErrMalformedSetting) {
		t.Fatalf("untyped error: %v", err)
	}
}

func FuzzParsePINRecoveryOMA(f *testing.F) {
	f.Add("./Vendor/MSFT/Policy/PassportForWork/72f988bf-86f1-41af-91ab-2d7cd011db47/Policies/EnablePinRecovery", "true")
	f.Add("./User/Vendor/MSFT/PassportForWork/72f988bf-86f1-41af-91ab-2d7cd011db47/Policies/EnablePinRecovery", "False")
	f.Add("./Vendor/MSFT/Policy/Config/Authentication/ConfigureWebSignInAllowedUrls", "signin.contoso.com;portal.contoso.com")
	f.Fuzz(func(t *testing.T, uri, value string) {
		s, err := ParsePINRecoveryOMA(uri, value)
		checkPolicyErr(t, err)
		if err == nil {
			if _, err := parseTenantID(s.TenantID); err != nil || s.TenantID != strings.ToLower(s.TenantID) {
				t.Fatalf("accepted tenant %q", s.TenantID)
			}
			if s.Source != DeviceMDM && s.Source != UserMDM {
				t.Fatalf("source %v", s.Source)
			}
		}
		_, err = ParseWebSignInAllowedURLsOMA(uri, value)
		checkPolicyErr(t, err)
	})
}

func FuzzParseDomainList(f *testing.F) {
	f.Add("signin.contoso.com;portal.contoso.com")
	f.Add("login.microsoftonline.us")
	f.Add(" a.b ; ;")
	f.Fuzz(func(t *testing.T, value string) {
		got, err := ParseDomainList(value)
		checkPolicyErr(t, err)
		if err != nil {
			return
		}
		// Every accepted domain is valid, and the list is a fixed point.
		for _, d := range got {
			if validHost(d) != nil || strings.ContainsAny(d, "; ") {
				t.Fatalf("accepted %q", d)
			}
		}
		again, err := ParseDomainList(strings.Join(got, ";"))
		if err != nil || len(again) != len(got) {
			t.Fatalf("not a fixed point: %v %v", again, err)
		}
	})
}

func FuzzParsePINRecoveryRegistry(f *testing.F) {
	f.Add(`HKLM\SOFTWARE\Policies\Microsoft\PassportForWork`, "EnablePinRecovery", "dword:00000001")
	f.Add(`HKCU\SOFTWARE\Policies\Microsoft\PassportForWork`, "EnablePinRecovery", "0x0")
	f.Fuzz(func(t *testing.T, key, name, data string) {
		s, err := ParsePINRecoveryRegistry(key, name, data)
		checkPolicyErr(t, err)
		if err == nil && s.Source != ComputerGPO && s.Source != UserGPO {
			t.Fatalf("source %v", s.Source)
		}
		_, err = ParseGPOState(data)
		checkPolicyErr(t, err)
	})
}

func FuzzParseIntuneSetting(f *testing.F) {
	for _, name := range []string{"intune-enablepinrecovery-true.json", "intune-enablepinrecovery-instance-false.json"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"settingDefinitionId":"x","choiceSettingValue":{"value":"true"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseIntuneSetting(data)
		checkPolicyErr(t, err)
		if err == nil && s.Source != DeviceMDM && s.Source != UserMDM {
			t.Fatalf("source %v", s.Source)
		}
	})
}

func TestParseDomain(t *testing.T) {
	h, err := ParseDomain(" SignIn.Contoso.COM. ")
	require.NoError(t, err)
	assert.Equal(t, "signin.contoso.com", h)
	for _, bad := range []string{"", "-a.com", "a..com", "bücher.example", "a_b.com", strings.Repeat("a", 64) + ".com"} {
		_, err := ParseDomain(bad)
		var se *SettingError
		assert.ErrorAs(t, err, &se, "%q", bad)
		assert.ErrorIs(t, err, ErrMalformedSetting, "%q", bad)
	}
}
