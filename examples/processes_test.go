package examples_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/internal/devcert"
	"github.com/hellosim/hellosim/internal/dpop"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp/drs"
	"github.com/hellosim/hellosim/reset/service"
)

// proc is an example program running as its own process.
type proc struct {
	cmd    *exec.Cmd
	stdout *bufio.Reader
	stderr *os.File
}

// startProc starts a built example and reads its stdout until a line
// matches re; it returns the first submatch. The process is stopped by
// its PID at cleanup.
func startProc(t *testing.T, dir string, re *regexp.Regexp, name string, args ...string) (*proc, string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, name), args...)
	cmd.Dir = dir
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	errf, err := os.Create(filepath.Join(dir, name+".stderr"))
	require.NoError(t, err)
	cmd.Stderr = errf
	require.NoError(t, cmd.Start())
	p := &proc{cmd: cmd, stdout: bufio.NewReader(out), stderr: errf}
	t.Cleanup(func() { p.stop(t) })
	found := make(chan string, 1)
	go func() {
		for {
			line, err := p.stdout.ReadString('\n')
			if m := re.FindStringSubmatch(line); m != nil {
				found <- m[1]
				break
			}
			if err != nil {
				close(found)
				return
			}
		}
		io.Copy(io.Discard, p.stdout)
	}()
	select {
	case m, ok := <-found:
		if !ok {
			logs, _ := os.ReadFile(errf.Name())
			t.Fatalf("%s exited before it was ready: %s", name, logs)
		}
		return p, m
	case <-time.After(60 * time.Second):
		t.Fatalf("%s not ready in 60 s", name)
	}
	return nil, ""
}

// stop sends SIGTERM to the process (by its PID) and waits for it.
func (p *proc) stop(t *testing.T) {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
		t.Errorf("%s did not stop on SIGTERM", filepath.Base(p.cmd.Path))
	}
	p.stderr.Close()
}

// askDump asks the directory process to write its -dump file (SIGUSR1).
func (p *proc) askDump(t *testing.T) {
	t.Helper()
	require.NoError(t, syscall.Kill(p.cmd.Process.Pid, syscall.SIGUSR1))
}

// demoFile is what the directory's -demo writes (the fields used here).
type demoFile struct {
	TenantID string `json:"tenant_id"`
	Issuer   string `json:"issuer"`
	CAPEM    string `json:"ca_pem"`
	Admin    struct {
		UPN, Password string
		TOTPSecret    string `json:"totp_secret"`
	} `json:"global_administrator"`
	User struct {
		UPN, Password string
		TOTPSecret    string `json:"totp_secret"`
		ObjectID      string `json:"object_id"`
	} `json:"user"`
	ConsentLinks []string `json:"consent_links"`
}

// browser is a person at the directory's pages: a cookie jar, the last
// page, its CSRF token.
type browser struct {
	t    *testing.T
	c    *http.Client
	base string
	last string
}

// newBrowser is a browser at base over hc's transport; it follows no
// redirect, so each page's answer can be read.
func newBrowser(t *testing.T, base string, hc *http.Client) *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browser{t: t, base: base, c: &http.Client{Jar: jar, Transport: hc.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) do(req *http.Request) *http.Response {
	b.t.Helper()
	resp, err := b.c.Do(req)
	require.NoError(b.t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	b.last = string(body)
	return resp
}

func (b *browser) get(u string) *http.Response {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(b.t, err)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) *http.Response {
	b.t.Helper()
	if m := csrfRE.FindStringSubmatch(b.last); m != nil {
		form.Set("csrf", m[1])
	}
	req, err := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// signIn fills the user name, password and verification code pages.
func (b *browser) signIn(upn, password, totpSecret string) *http.Response {
	b.t.Helper()
	b.post("/login/upn", url.Values{"upn": {upn}})
	require.Contains(b.t, b.last, `name="password"`)
	b.post("/login/password", url.Values{"password": {password}})
	require.Contains(b.t, b.last, `name="code"`)
	for try := 0; ; try++ {
		code := runIn(b.t, b.t.TempDir(), b.t.TempDir(), "", "directory", "totp", totpSecret)
		require.Zero(b.t, code.code, code.stderr)
		resp := b.post("/login/mfa", url.Values{"code": {strings.TrimSpace(code.stdout)}})
		if try > 0 || !strings.Contains(b.last, "code didn&#39;t work") {
			return resp
		}
		// A code is accepted once: this one was spent by an earlier
		// sign-in, so wait for the authenticator's next one, as a person
		// would.
		time.Sleep(time.Until(time.Now().Truncate(30 * time.Second).Add(30*time.Second + 100*time.Millisecond)))
	}
}

// tlsClient trusts only the CA in caPEM.
func tlsClient(t *testing.T, caPEM []byte) *http.Client {
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

// writeServerCert makes a certificate for 127.0.0.1 under a new test CA
// and writes cert, key and CA as PEM files in dir.
func writeServerCert(t *testing.T, dir string) (certFile, keyFile, caFile string) {
	t.Helper()
	c, err := devcert.New([]string{"127.0.0.1"})
	require.NoError(t, err)
	var chain []byte
	for _, der := range c.TLS.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.TLS.PrivateKey)
	require.NoError(t, err)
	certFile, keyFile, caFile = filepath.Join(dir, "svc.pem"), filepath.Join(dir, "svc.key"), filepath.Join(dir, "svc-ca.pem")
	require.NoError(t, os.WriteFile(certFile, chain, 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	require.NoError(t, os.WriteFile(caFile, c.CAPEM, 0o600))
	return certFile, keyFile, caFile
}

// threeProcs is the directory and the PIN reset service (-issuer) as
// processes over TLS, the tenant onboarded.
type threeProcs struct {
	dir       string
	dirProc   *proc
	dirBase   string
	demo      demoFile
	dirClient *http.Client
	svcBase   string
	svcClient *http.Client // trusts the service's CA
	caFile    string       // one file with both CAs, for hello -ca
}

// startDirectoryAndService starts both, the directory writing its objects
// to dump.json on askDump, and onboards the tenant as its administrator
// would: the documentation's two consent links, their host mapped to the
// directory.
func startDirectoryAndService(t *testing.T) *threeProcs {
	t.Helper()
	p := &threeProcs{dir: t.TempDir()}
	p.dirProc, p.dirBase = startProc(t, p.dir, regexp.MustCompile(`^directory at (https://\S+)`), "directory",
		"-addr", "127.0.0.1:0", "-demo", "demo.json", "-app-key", "app.pem", "-dump", "dump.json")
	raw, err := os.ReadFile(filepath.Join(p.dir, "demo.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &p.demo))
	require.NoError(t, os.WriteFile(filepath.Join(p.dir, "dir-ca.pem"), []byte(p.demo.CAPEM), 0o600))
	p.dirClient = tlsClient(t, []byte(p.demo.CAPEM))
	certFile, keyFile, svcCA := writeServerCert(t, p.dir)
	_, p.svcBase = startProc(t, p.dir, regexp.MustCompile(`^PIN reset service at (https://[^\s,]+)`), "pinreset-service",
		"-addr", "127.0.0.1:0", "-cert", certFile, "-key", keyFile,
		"-issuer", p.demo.Issuer, "-ca", "dir-ca.pem", "-app-key", "app.pem", "-lookup-ttl", "1ms")
	svcPEM, err := os.ReadFile(svcCA)
	require.NoError(t, err)
	p.svcClient = tlsClient(t, svcPEM)
	p.caFile = filepath.Join(p.dir, "cas.pem")
	require.NoError(t, os.WriteFile(p.caFile, append([]byte(p.demo.CAPEM), svcPEM...), 0o600))

	admin := newBrowser(t, p.dirBase, p.dirClient)
	for _, link := range p.demo.ConsentLinks {
		resp := admin.get(strings.Replace(link, "https://login.windows.net", p.dirBase, 1))
		if strings.Contains(admin.last, `action="/login/upn"`) { // once: the session carries the second
			resp = admin.signIn(p.demo.Admin.UPN, p.demo.Admin.Password, p.demo.Admin.TOTPSecret)
		}
		if resp.StatusCode == http.StatusOK && strings.Contains(admin.last, `action="/login/consent"`) {
			resp = admin.post("/login/consent", url.Values{"action": {"accept"}})
		}
		require.Equal(t, http.StatusFound, resp.StatusCode, admin.last)
	}
	return p
}

// signInDeviceCode is the user at the directory's pages entering the
// device code userCode shown with the page uri, signing in and confirming.
func (p *threeProcs) signInDeviceCode(t *testing.T, uri, userCode string) {
	t.Helper()
	user := newBrowser(t, p.dirBase, p.dirClient)
	user.get(uri)
	user.post("/devicelogin", url.Values{"code": {userCode}})
	user.signIn(p.demo.User.UPN, p.demo.User.Password, p.demo.User.TOTPSecret)
	user.post("/login/confirm", url.Values{"action": {"accept"}})
	require.Contains(t, user.last, "You have signed in")
}

// dpopAtToken adds a DPoP proof of the device key to POSTs to the token
// endpoint, as a device's token broker does (RFC 9449 §5).
type dpopAtToken struct {
	base http.RoundTripper
	key  *ecdsa.PrivateKey
}

func (d dpopAtToken) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") {
		p, err := dpop.Sign(d.key, dpop.Claims{HTM: http.MethodPost, HTU: r.URL.Scheme + "://" + r.URL.Host + r.URL.Path,
			IAT: time.Now().Unix(), JTI: fmt.Sprint(time.Now().UnixNano())})
		if err != nil {
			return nil, err
		}
		r = r.Clone(r.Context())
		r.Header.Set("DPoP", p)
	}
	return d.base.RoundTrip(r)
}

// pollDeviceCode polls the token endpoint as RFC 8628 §3.4 says: every
// interval seconds, five more after slow_down.
func pollDeviceCode(t *testing.T, hc *http.Client, tokenURL string, da map[string]any) map[string]any {
	t.Helper()
	interval := time.Duration(da["interval"].(float64)) * time.Second
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); {
		time.Sleep(interval)
		resp, err := hc.PostForm(tokenURL, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
			"client_id": {identity.PINResetClientAppID}, "device_code": {da["device_code"].(string)}})
		require.NoError(t, err)
		var out map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK:
			return out
		case out["error"] == "slow_down":
			interval += 5 * time.Second
		case out["error"] != "authorization_pending":
			t.Fatalf("device code: %v", out)
		}
	}
	t.Fatal("device code: no token in two minutes")
	return nil
}

func postForm(t *testing.T, hc *http.Client, u string, form url.Values) map[string]any {
	t.Helper()
	resp, err := hc.PostForm(u, form)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %v", u, out)
	return out
}

// TestDirectoryAndServiceProcesses runs the directory and the PIN reset
// service as two processes over TLS, the service trusting the directory
// by discovery (-issuer) and asking its lookup API, and a device (this
// test) signing in by device code through the pages, joining, getting a
// token bound to its key and recovering a protector. Then the directory
// stops: the service fails closed (503) and is not ready.
func TestDirectoryAndServiceProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers")
	}
	start := time.Now()
	ctx := context.Background()

	p := startDirectoryAndService(t)
	demo, dirBase, dirClient := p.demo, p.dirBase, p.dirClient

	// The device: a P-256 key (a TPM key on a real device). The user
	// signs in by device code; the device joins with that token, then
	// refreshes with a DPoP proof, which binds the sign-in to its key.
	devKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	deviceID := "5b0e6f4c-3a2d-4e1f-8c7b-9a8d7e6f5a4b"
	tenantURL := dirBase + "/" + demo.TenantID
	da := postForm(t, dirClient, tenantURL+"/oauth2/v2.0/devicecode", url.Values{
		"client_id": {identity.PINResetClientAppID}, "scope": {"openid offline_access https://cred.microsoft.com/.default"}})
	userCode, _ := da["user_code"].(string)
	p.signInDeviceCode(t, da["verification_uri"].(string), userCode)
	tok := pollDeviceCode(t, dirClient, tenantURL+"/oauth2/v2.0/token", da)
	join, err := drs.NewClient(dirBase, dirClient)
	require.NoError(t, err)
	require.NoError(t, join.JoinDevice(ctx, tok["access_token"].(string), deviceID, &devKey.PublicKey))
	device := &http.Client{Timeout: 30 * time.Second, Transport: dpopAtToken{base: dirClient.Transport, key: devKey}}
	refresh := func() string {
		out := postForm(t, device, tenantURL+"/oauth2/v2.0/token", url.Values{
			"grant_type": {"refresh_token"}, "client_id": {identity.PINResetClientAppID},
			"refresh_token": {tok["refresh_token"].(string)}, "scope": {"offline_access https://cred.microsoft.com/.default"}})
		tok = out
		return out["access_token"].(string)
	}
	bound := refresh()

	// The recovery, over TLS, with the device's proof.
	client := service.NewClient(p.svcBase, p.svcClient).WithDevice(devKey)
	pub, err := client.ServiceKey(ctx)
	require.NoError(t, err)
	r, err := protector.NewKey(nil)
	require.NoError(t, err)
	defer r.Destroy()
	env, err := pub.Wrap(r, protector.Binding{TenantID: demo.TenantID, UserID: demo.User.ObjectID, ContainerID: "c1", DeviceID: deviceID}, nil)
	require.NoError(t, err)
	got, err := client.Recover(ctx, bound, env)
	require.NoError(t, err, "the service trusts the directory in the other process")
	assert.True(t, got.Equal(r))
	got.Destroy()
	ready := func() int {
		resp, err := p.svcClient.Get(p.svcBase + "/readyz")
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusOK, ready())

	// The directory stops: fail closed.
	spare := refresh()
	p.dirProc.stop(t)
	_, err = client.Recover(ctx, spare, env)
	require.ErrorIs(t, err, service.ErrUnavailable, "nothing is released while the directory cannot be asked")
	assert.Equal(t, http.StatusServiceUnavailable, ready())
	t.Logf("two processes, onboarding, device code, join, recovery, directory down: %s", time.Since(start).Round(time.Millisecond))
}
