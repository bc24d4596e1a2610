package chromium

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hellosim/hellosim/internal/devcert"
)

func TestHostRulesMapListedHostsOnly(t *testing.T) {
	got := HostRules(map[string]string{"login.windows.net": "127.0.0.1:4443", "adfs.fabrikam.test": "127.0.0.1:5443"})
	want := "MAP adfs.fabrikam.test 127.0.0.1:5443, MAP login.windows.net 127.0.0.1:4443, EXCLUDE 127.0.0.1, MAP * ~NOTFOUND"
	if got != want {
		t.Fatalf("HostRules = %q, want %q", got, want)
	}
	if got := HostRules(nil); got != "EXCLUDE 127.0.0.1, MAP * ~NOTFOUND" {
		t.Fatalf("HostRules(nil) = %q", got)
	}
}

func TestProfileTurnsOffNetworkPrediction(t *testing.T) {
	dir := t.TempDir()
	if err := writePrefs(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "Default", "Preferences"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"net":{"network_prediction_options":2}}` {
		t.Fatalf("Preferences = %s", b)
	}
}

func TestSPKIHashesOfPEM(t *testing.T) {
	c, err := devcert.New([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	// c.SPKIHashes are the leaf's and the CA's; CAPEM holds the CA, after
	// a block that is not a certificate.
	got := SPKIHashes(append([]byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"), c.CAPEM...))
	if len(got) != 1 || got[0] != c.SPKIHashes[1] {
		t.Fatalf("SPKIHashes = %v, want [%s]", got, c.SPKIHashes[1])
	}
}
