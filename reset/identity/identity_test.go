package identity_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/hellosim/hellosim/reset/identity"
)

func TestParseGUID(t *testing.T) {
	for _, ok := range []string{"b8456c59-1230-44c7-a4a2-99b085333e84", "B8456C59-1230-44C7-A4A2-99B085333E84"} {
		g, err := identity.ParseGUID(ok)
		if err != nil {
			t.Fatalf("ParseGUID(%q): %v", ok, err)
		}
		if got := g.String(); got != "b8456c59-1230-44c7-a4a2-99b085333e84" {
			t.Errorf("ParseGUID(%q).String() = %q, want the lower-case form", ok, got)
		}
		if c, err := identity.CanonicalGUID(ok); err != nil || c != "b8456c59-1230-44c7-a4a2-99b085333e84" {
			t.Errorf("CanonicalGUID(%q) = %q, %v", ok, c, err)
		}
	}
	for _, bad := range []string{"", "{b8456c59-1230-44c7-a4a2-99b085333e84}", "b8456c59-1230-44c7-a4a2-99b085333e8g",
		"b8456c59x1230-44c7-a4a2-99b085333e84", "b8456c59-1230-44c7-a4a2-99b085333e8", "b8456c59-1230-44c7-a4a2-99b085333e84 "} {
		if _, err := identity.ParseGUID(bad); !errors.Is(err, identity.ErrMalformedGUID) {
			t.Errorf("ParseGUID(%q) = %v, want ErrMalformedGUID", bad, err)
		}
	}
}

func TestNewGUIDIsVersion4(t *testing.T) {
	g, err := identity.NewGUID(bytes.NewReader(bytes.Repeat([]byte{0xff}, 16)))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := g.String(), "ffffffff-ffff-4fff-bfff-ffffffffffff"; got != want {
		t.Errorf("NewGUID = %s, want %s (version 4, RFC 9562 variant)", got, want)
	}
	back, err := identity.ParseGUID(g.String())
	if err != nil || back != g {
		t.Errorf("round trip: %v, %v", back, err)
	}
	if _, err := identity.NewGUID(bytes.NewReader(nil)); err == nil {
		t.Error("NewGUID from an empty reader succeeded")
	}
}

func TestOneStringFormPerValue(t *testing.T) {
	for _, v := range []interface {
		String() string
		MarshalText() ([]byte, error)
	}{identity.PublicCloud, identity.AzureGovernment, identity.AzureADJoined, identity.HybridAzureADJoined,
		identity.AzureADRegistered, identity.OnPremises, identity.KeyTrust, identity.CertificateTrust, identity.CloudKerberosTrust} {
		b, err := v.MarshalText()
		if err != nil || string(b) != v.String() {
			t.Errorf("%v: MarshalText = %q, %v; want String's form", v, b, err)
		}
	}
	var c identity.Cloud
	if err := json.Unmarshal([]byte(`"Azure-Government"`), &c); err != nil || c != identity.AzureGovernment {
		t.Errorf("unmarshal cloud: %v, %v", c, err)
	}
	var tr identity.TrustType
	if err := tr.UnmarshalText([]byte("KeyTrust")); err == nil {
		t.Error("UnmarshalText accepted a second spelling of key trust")
	}
	if _, err := identity.Cloud(7).MarshalText(); err == nil {
		t.Error("MarshalText of an unknown cloud succeeded")
	}
}

func TestTenantOnboarded(t *testing.T) {
	tn := identity.Tenant{ConsentedApps: []string{identity.PINResetServiceAppID}}
	if tn.Onboarded() {
		t.Error("onboarded with the service app only")
	}
	tn.ConsentedApps = append(tn.ConsentedApps, " 9115DD05-FAD5-4F9C-ACC7-305D08B1B04E ")
	if !tn.Onboarded() {
		t.Error("not onboarded with both apps (client app in upper case, with spaces)")
	}
	cl := tn.Clone()
	cl.ConsentedApps[0] = "x"
	if tn.ConsentedApps[0] != identity.PINResetServiceAppID {
		t.Error("Clone shares ConsentedApps")
	}
}
