package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hellosim/hellosim/internal/syncbuf"
)

// The program starts on an ephemeral loopback port, writes the demo file
// (mode 0600), serves discovery over HTTPS under its own throwaway
// authority, starts with the tenant not onboarded, and stops cleanly on
// SIGINT.
func TestServeDemoAndStop(t *testing.T) {
	demoFile := filepath.Join(t.TempDir(), "demo.json")
	dumpFile := filepath.Join(t.TempDir(), "dump.json")
	var stdout, stderr syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- realMain([]string{"-addr", "127.0.0.1:0", "-demo", demoFile, "-dump", dumpFile}, &stdout, &stderr)
	}()

	var demo Demo
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(demoFile)
		if err == nil && json.Unmarshal(b, &demo) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no demo file: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if fi, err := os.Stat(demoFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("demo file mode: %v %v", fi, err)
	}
	if demo.Admin.Password == "" || demo.Admin.TOTPSecret == "" || demo.User.UPN != "alice@contoso.test" ||
		!strings.HasPrefix(demo.Issuer, demo.Authority+"/"+demo.TenantID) || len(demo.ConsentLinks) != 2 || len(demo.ChromiumFlags) != 2 {
		t.Fatalf("demo: %+v", demo)
	}
	if f := demo.Federated; f.Domain != "fabrikam.test" || f.FederationSignInURL != "https://adfs.fabrikam.test/adfs/ls/" ||
		f.User.UPN != "bob@fabrikam.test" || f.Admin.Password == "" || !strings.HasPrefix(f.Issuer, demo.Authority+"/"+f.TenantID) ||
		!strings.Contains(demo.ChromiumFlags[0], "MAP adfs.fabrikam.test 127.0.0.1:") {
		t.Fatalf("federated demo: %+v, flags %v", f, demo.ChromiumFlags)
	}
	if g := demo.Government; g.Domain != "agency.test" || g.SignInHost != "login.microsoftonline.us" || g.User.UPN != "carol@agency.test" ||
		!strings.Contains(demo.ChromiumFlags[0], "MAP login.microsoftonline.us 127.0.0.1:") {
		t.Fatalf("Government demo: %+v", g)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(demo.CAPEM)) {
		t.Fatal("no CA in the demo file")
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	var resp *http.Response
	var err error
	for {
		resp, err = client.Get(demo.Issuer + "/.well-known/openid-configuration")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Issuer string `json:"issuer"`
		Token  string `json:"token_endpoint"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&meta); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if meta.Issuer != demo.Issuer || meta.Token != demo.TokenEndpoint {
		t.Fatalf("metadata %+v, demo %+v", meta, demo)
	}

	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("did not stop on SIGINT")
	}
	if !bytes.Contains([]byte(stderr.String()), []byte("shutting down")) {
		t.Fatalf("stderr: %s", stderr.String())
	}
	var dump Dump
	b, err := os.ReadFile(dumpFile)
	if err != nil || json.Unmarshal(b, &dump) != nil {
		t.Fatalf("dump at exit: %v %s", err, b)
	}
	if dump.TenantID != demo.TenantID || dump.Onboarded || len(dump.ServicePrincipals) != 0 || len(dump.Users) != 5 || !dump.Users[0].GlobalAdmin ||
		dump.Federated.TenantID != demo.Federated.TenantID || dump.Federated.Onboarded {
		t.Fatalf("dump: %+v", dump)
	}
	// The discovery requests above went to 127.0.0.1; nothing to the
	// federation host.
	if dump.RequestsByHost["127.0.0.1"] == 0 || dump.RequestsByHost["adfs.fabrikam.test"] != 0 {
		t.Fatalf("requests by host: %v", dump.RequestsByHost)
	}
}

func TestRefusesNonLoopback(t *testing.T) {
	var out, errb syncbuf.Buffer
	if code := realMain([]string{"-addr", "0.0.0.0:0"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "loopback") {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}

// -federation-host wants a DNS name of its own.
func TestFederationHostFlag(t *testing.T) {
	for _, bad := range []string{"", "127.0.0.1", "login.windows.net", "login.microsoftonline.us", "adfs", "bad host", "https://adfs.test/"} {
		var out, errb syncbuf.Buffer
		if code := realMain([]string{"-addr", "127.0.0.1:0", "-federation-host", bad}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "-federation-host") {
			t.Errorf("-federation-host %q: exit %d: %s", bad, code, errb.String())
		}
	}
}
