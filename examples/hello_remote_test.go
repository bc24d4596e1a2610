package examples_test

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/internal/chromium/chromiumtest"
	"github.com/hellosim/hellosim/internal/devcert"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/keycred"
	"github.com/hellosim/hellosim/reset/webhost"
)

var (
	userCodeRE   = regexp.MustCompile(`open (https://\S+) and enter the code (\S+)`)
	signInPageRE = regexp.MustCompile(`open this address in a browser: (https://\S+)`)
)

// helloSignedIn runs hello, and when it prints a device code or a sign-in
// address the test, as the user, signs in at the directory's pages (and
// follows the redirect back to hello).
func (p *threeProcs) helloSignedIn(t *testing.T, home, stdin string, args ...string) result {
	t.Helper()
	return p.helloWith(t, home, stdin, p.signInAtPages, args...)
}

// signInAtPages is the user at the directory's pages, for the line hello
// printed: a device code is entered and confirmed; a sign-in address is
// opened, and its redirect followed back to hello.
func (p *threeProcs) signInAtPages(t *testing.T, line string) {
	t.Helper()
	if m := userCodeRE.FindStringSubmatch(line); m != nil {
		p.signInDeviceCode(t, m[1], m[2])
	}
	if m := signInPageRE.FindStringSubmatch(line); m != nil {
		user := newBrowser(t, p.dirBase, p.dirClient)
		user.get(m[1])
		resp := user.signIn(p.demo.User.UPN, p.demo.User.Password, p.demo.User.TOTPSecret)
		require.Equal(t, http.StatusFound, resp.StatusCode, user.last)
		back := resp.Header.Get("Location")
		require.True(t, strings.HasPrefix(back, "http://127.0.0.1:"), back)
		user.get(back)
		require.Contains(t, user.last, "You can close this tab")
	}
}

// helloWith runs hello with stdin, and hands each line it prints to
// onLine while it runs.
func (p *threeProcs) helloWith(t *testing.T, home, stdin string, onLine func(*testing.T, string), args ...string) result {
	t.Helper()
	cmd := exampleCmd(home, home, "hello", args...)
	cmd.Stdin = strings.NewReader(stdin)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var stdout strings.Builder
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		stdout.WriteString(line + "\n")
		onLine(t, line)
	}
	err = cmd.Wait()
	return result{stdout: stdout.String(), stderr: errb.String(), code: exitCode(t, err, "hello")}
}

// enterCode is a person at the directory's device login page: they enter
// the code and sign in as upn.
func (p *threeProcs) enterCode(t *testing.T, page, code, upn, password, totpSecret string) {
	t.Helper()
	user := newBrowser(t, p.dirBase, p.dirClient)
	user.get(page)
	user.post("/devicelogin", url.Values{"code": {code}})
	user.signIn(upn, password, totpSecret)
	user.post("/login/confirm", url.Values{"action": {"accept"}})
	require.Contains(t, user.last, "You have signed in")
}

// dumpKIDs asks the directory for its -dump and returns the kids of the
// user's registered keys.
func (p *threeProcs) dumpKIDs(t *testing.T) []string {
	t.Helper()
	path := filepath.Join(p.dir, "dump.json")
	before, _ := os.Stat(path)
	p.dirProc.askDump(t)
	require.Eventually(t, func() bool {
		fi, err := os.Stat(path)
		return err == nil && (before == nil || !fi.ModTime().Equal(before.ModTime()) || fi.Size() != before.Size())
	}, 10*time.Second, 20*time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var d struct {
		Users []struct {
			UPN  string `json:"upn"`
			Keys []struct {
				KID string `json:"kid"`
			} `json:"registered_keys"`
		} `json:"users"`
	}
	require.NoError(t, json.Unmarshal(raw, &d))
	var kids []string
	for _, u := range d.Users {
		if u.UPN == p.demo.User.UPN {
			for _, k := range u.Keys {
				kids = append(kids, k.KID)
			}
		}
	}
	return kids
}

// loginKID is the kid of hello's current login key (export-key).
func loginKID(t *testing.T, home, state string) string {
	t.Helper()
	r := runIn(t, home, home, "", "hello", "-state", state, "export-key")
	require.Zero(t, r.code, r.stderr)
	b, _ := pem.Decode([]byte(r.stdout))
	require.NotNil(t, b, r.stdout)
	pub, err := x509.ParsePKIXPublicKey(b.Bytes)
	require.NoError(t, err)
	kid, err := keycred.PublicKeyIdentifier(pub)
	require.NoError(t, err)
	return kid
}

// TestHelloAgainstDirectoryAndService runs three processes over TLS on
// loopback: the directory, the PIN reset service trusting it (-issuer),
// and hello pointed at both. hello provisions (browser sign-in, the user
// at the pages and the redirect back to hello; join, key registered over
// DRS with DPoP), enrols recovery with the service's published key, resets its PIN without losing the keys (device code,
// token bound at the token endpoint, POST /v1/recover with a proof),
// unlocks with the new PIN, then resets destructively: the directory's
// dump holds the new key and not the old; and resets destructively once
// more after the container file is damaged.
func TestHelloAgainstDirectoryAndService(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers and signs in four times")
	}
	start := time.Now()
	p, home, state := provisionedRemote(t)
	oldKID := loginKID(t, home, state)
	assert.Equal(t, []string{oldKID}, p.dumpKIDs(t), "provision registered the login key at the directory")

	r := runIn(t, home, home, "582046\n", "hello", "-state", state, "enable-recovery")
	require.Zero(t, r.code, "enable-recovery: %s%s", r.stdout, r.stderr)

	r = p.helloSignedIn(t, home, "739164\n739164\n", "-state", state, "reset", "--non-destructive", "-device-code")
	require.Zero(t, r.code, "reset: %s%s", r.stdout, r.stderr)
	assert.Contains(t, r.stdout, "keys and certificates kept")

	r = runIn(t, home, home, "739164\n", "hello", "-state", state, "sign", "-m", "after the reset")
	require.Zero(t, r.code, "the new PIN unlocks: %s%s", r.stdout, r.stderr)
	r = runIn(t, home, home, "582046\n", "hello", "-state", state, "sign")
	assert.Equal(t, 3, r.code, "the old PIN no longer does: %s", r.stderr)

	r = p.helloSignedIn(t, home, "850273\n850273\n", "-state", state, "reset", "--destructive", "-y", "-device-code")
	require.Zero(t, r.code, "destructive reset: %s%s", r.stdout, r.stderr)
	newKID := loginKID(t, home, state)
	require.NotEqual(t, oldKID, newKID)
	kids := p.dumpKIDs(t)
	assert.Contains(t, kids, newKID, "the directory holds the new key")
	assert.NotContains(t, kids, oldKID, "and not the old")

	// A damaged container file: the destructive reset signs in at the
	// directory, puts a new container in its place and registers the new
	// key over DRS in place of the one the damaged file held.
	damaged := damageContainerIn(t, state)
	r = p.helloSignedIn(t, home, "461938\n461938\n", "-state", state, "reset", "--destructive", "-y", "-device-code")
	require.Zero(t, r.code, "destructive reset of a damaged container: %s%s", r.stdout, r.stderr)
	assert.Contains(t, r.stdout, "in place of the damaged container, registered with the directory")
	assert.NoFileExists(t, damaged)
	afterDamage := loginKID(t, home, state)
	kids = p.dumpKIDs(t)
	assert.Contains(t, kids, afterDamage, "the directory holds the key that replaced the damaged container's")
	assert.NotContains(t, kids, newKID, "and not the damaged container's")
	r = runIn(t, home, home, "461938\n", "hello", "-state", state, "sign", "-m", "after the damaged reset")
	require.Zero(t, r.code, "the new PIN unlocks: %s%s", r.stdout, r.stderr)
	t.Logf("three processes: provision, enable-recovery, reset by device code, unlock, destructive resets (one of a damaged container): %s", time.Since(start).Round(time.Millisecond))
}

// provisionedWithRecovery is provisionedRemote with PIN recovery enrolled.
func provisionedWithRecovery(t *testing.T) (p *threeProcs, home, state string) {
	t.Helper()
	p, home, state = provisionedRemote(t)
	r := runIn(t, home, home, "582046\n", "hello", "-state", state, "enable-recovery")
	require.Zero(t, r.code, "enable-recovery: %s%s", r.stdout, r.stderr)
	return p, home, state
}

// hello reset -entry lock-screen -web-host chromium opens the directory's
// device-code page in the lock-screen web host. The directory here is not
// a Microsoft sign-in host: without ConfigureWebSignInAllowedUrls listing
// it, the host shows "We can't open that page right now.", the reset stops
// and the old PIN still works; listed, the page opens and the reset
// completes.
func TestHelloLockScreenWebHost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers and Chromium")
	}
	chromiumtest.Require(t)
	p, home, state := provisionedWithRecovery(t)
	r := runIn(t, home, home, "739164\n739164\n", "hello", "-state", state, "reset", "--non-destructive",
		"-entry", "lock-screen", "-web-host", "chromium")
	assert.NotZero(t, r.code, "%s%s", r.stdout, r.stderr)
	assert.Contains(t, r.stderr, webhost.Message)
	r = runIn(t, home, home, "582046\n", "hello", "-state", state, "sign")
	require.Zero(t, r.code, "the old PIN still works: %s%s", r.stdout, r.stderr)

	u, err := url.Parse(p.demo.Issuer)
	require.NoError(t, err)
	r = p.helloSignedIn(t, home, "739164\n739164\n", "-state", state, "reset", "--non-destructive",
		"-entry", "lock-screen", "-web-host", "chromium", "-web-signin-allowed-urls", u.Hostname())
	require.Zero(t, r.code, "reset: %s%s", r.stdout, r.stderr)
	assert.Contains(t, r.stdout, "open in the lock-screen web host")
	assert.Contains(t, r.stdout, "keys and certificates kept")
	r = runIn(t, home, home, "739164\n", "hello", "-state", state, "sign")
	require.Zero(t, r.code, "the new PIN unlocks: %s%s", r.stdout, r.stderr)
}

// -web-host is the lock-screen web host: other entries, other browsers, and
// a bad allowed-URL list are usage errors, before anything is opened.
func TestHelloWebHostFlags(t *testing.T) {
	home := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-web-host", "chromium"}, "give -entry lock-screen"},
		{[]string{"-entry", "lock-screen", "-web-host", "firefox"}, `want chromium`},
		{[]string{"-entry", "lock-screen", "-web-signin-allowed-urls", "a.test"}, "needs -web-host chromium"},
		{[]string{"-entry", "lock-screen", "-web-host", "chromium", "-web-signin-allowed-urls", "bad host"}, "-web-signin-allowed-urls"},
	} {
		r := runIn(t, home, home, "", "hello", append([]string{"-state", filepath.Join(home, "state"), "reset", "--non-destructive"}, c.args...)...)
		assert.Equal(t, 2, r.code, "%v: %s", c.args, r.stderr)
		assert.Contains(t, r.stderr, c.want, "%v", c.args)
	}
	_, err := os.Stat(filepath.Join(home, "state"))
	assert.True(t, os.IsNotExist(err), "a usage error creates no state")
}

// stateFiles is every file under dir with its bytes ("" when dir is absent).
func stateFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && p == dir {
				return filepath.SkipDir
			}
			return err
		}
		if d.IsDir() {
			m[p] = "dir"
			return nil
		}
		b, err := os.ReadFile(p)
		m[p] = string(b)
		return err
	})
	require.NoError(t, err)
	return m
}

// TestHelloRemoteBadInput points provision at servers it must not use:
// each case is named on one line with its own exit code, and the state
// directory is byte for byte as before (an existing one) or not made.
func TestHelloRemoteBadInput(t *testing.T) {
	// A directory whose discovery document names its own issuer, and a
	// service publishing no key.
	var good, other *httptest.Server
	mux := http.NewServeMux()
	mux.HandleFunc("/t/v2.0/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		iss := "https://" + r.Host + "/t/v2.0"
		if r.Host == strings.TrimPrefix(other.URL, "https://") {
			iss = "https://login.microsoftonline.com/t/v2.0"
		}
		json.NewEncoder(w).Encode(map[string]string{"issuer": iss,
			"token_endpoint": "https://" + r.Host + "/t/oauth2/v2.0/token", "device_authorization_endpoint": "https://" + r.Host + "/t/oauth2/v2.0/devicecode"})
	})
	mux.HandleFunc("/v1/keys", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"keys":[]}`))
	})
	good, other = httptest.NewTLSServer(mux), httptest.NewTLSServer(mux)
	defer good.Close()
	defer other.Close()
	home := t.TempDir()
	caFile := filepath.Join(home, "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: good.Certificate().Raw}), 0o600))
	// A CA that issued neither server's certificate.
	unrelated, err := devcert.New([]string{"127.0.0.1"})
	require.NoError(t, err)
	otherCA := filepath.Join(home, "other-ca.pem")
	require.NoError(t, os.WriteFile(otherCA, unrelated.CAPEM, 0o600))
	// An existing state directory, to see that nothing in it changes.
	existing := filepath.Join(home, "existing")
	require.NoError(t, os.MkdirAll(existing, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(existing, "device.json"), []byte("{\"enable_pin_recovery\": false}\n"), 0o600))

	for _, tc := range []struct {
		name      string
		directory string
		service   string
		ca        string
		code      int
		says      string
	}{
		// Port 1 on loopback: nothing listens there (it needs root).
		{"unreachable directory", "https://127.0.0.1:1/t/v2.0", good.URL, caFile, 9, "cannot reach the directory"},
		{"unreachable service", good.URL + "/t/v2.0", "https://127.0.0.1:1", caFile, 9, "cannot reach the PIN reset service"},
		{"wrong CA", good.URL + "/t/v2.0", good.URL, otherCA, 10, "does not trust"},
		{"another issuer", other.URL + "/t/v2.0", good.URL, caFile, 11, "names the issuer \"https://login.microsoftonline.com/t/v2.0\""},
		{"service without keys", good.URL + "/t/v2.0", good.URL, caFile, 12, "publishes no current key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, state := range []string{filepath.Join(home, "fresh"), existing} {
				before := stateFiles(t, state)
				r := runIn(t, home, home, "", "hello", "-state", state, "provision",
					"-directory", tc.directory, "-service", tc.service, "-ca", tc.ca)
				assert.Equal(t, tc.code, r.code, r.stderr)
				assert.Contains(t, r.stderr, tc.says)
				assert.Equal(t, 1, strings.Count(strings.TrimSpace(r.stderr), "\n")+1, "one line: %q", r.stderr)
				assert.Equal(t, before, stateFiles(t, state), "nothing changed on disk")
			}
		})
	}
}

// copyDir copies the files under src to dst: a second copy of a device,
// its container and its simulated TPM included.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	require.NoError(t, err)
}

// provisionedRemote starts the directory and the service and provisions
// a device against them (PIN 582046): its home and state directories.
func provisionedRemote(t *testing.T) (p *threeProcs, home, state string) {
	t.Helper()
	p = startDirectoryAndService(t)
	home = t.TempDir()
	state = filepath.Join(home, "state")
	r := p.helloSignedIn(t, home, "582046\n582046\n", "-state", state, "provision",
		"-directory", p.demo.Issuer, "-service", p.svcBase, "-ca", p.caFile)
	require.Zero(t, r.code, "provision: %s%s", r.stdout, r.stderr)
	require.Contains(t, r.stdout, "registered with the device registration service")
	return p, home, state
}

// hello sign-in against the directory over HTTPS: the PIN unlocks the
// login key, which signs the nonce of the directory's v2 token endpoint;
// the jwt-bearer grant answers with a token for the device registration
// service. A wrong PIN is the TPM's refusal (exit 3); a copy of the device
// whose key a destructive reset replaced is refused by the directory
// (exit 7, naming the way out); a directory that is gone is exit 9.
func TestHelloRemoteSignIn(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers and signs in three times")
	}
	start := time.Now()
	p, home, state := provisionedRemote(t)

	r := runIn(t, home, home, "582046\n", "hello", "-state", state, "sign-in")
	require.Zero(t, r.code, "sign-in: %s%s", r.stdout, r.stderr)
	kid := loginKID(t, home, state)
	assert.Contains(t, r.stdout, "Signed the directory's nonce with the login key (kid "+kid+").")
	assert.Contains(t, r.stdout, "Access token for urn:ms-drs:enterpriseregistration.windows.net: amr [rsa mfa ngcmfa]")
	assert.Contains(t, r.stdout, "upn "+p.demo.User.UPN)
	assert.Equal(t, 1, strings.Count(r.stderr, "PIN: "), "the PIN is asked once: %s", r.stderr)

	r = runIn(t, home, home, "000000\n", "hello", "-state", state, "sign-in")
	assert.Equal(t, 3, r.code, "%s%s", r.stdout, r.stderr)
	assert.Contains(t, r.stderr, "wrong PIN")
	assert.NotContains(t, r.stdout, "Signed")

	// A copy of the device, then a destructive reset of the original: the
	// directory holds the new key in place of the copy's.
	old := filepath.Join(home, "old-copy")
	copyDir(t, state, old)
	r = p.helloSignedIn(t, home, "850273\n850273\n", "-state", state, "reset", "--destructive", "-y", "-device-code")
	require.Zero(t, r.code, "destructive reset: %s%s", r.stdout, r.stderr)
	r = runIn(t, home, home, "850273\n", "hello", "-state", state, "sign-in")
	require.Zero(t, r.code, "the new key signs in: %s%s", r.stdout, r.stderr)
	assert.Contains(t, r.stdout, "(kid "+loginKID(t, home, state)+")")

	r = runIn(t, home, home, "582046\n", "hello", "-state", old, "sign-in")
	assert.Equal(t, 7, r.code, "%s%s", r.stdout, r.stderr)
	assert.Contains(t, r.stderr, "the directory holds no registered key for this container's login key")
	assert.Contains(t, r.stderr, "Next: run 'hello reset --destructive'")

	p.dirProc.stop(t)
	r = runIn(t, home, home, "850273\n", "hello", "-state", state, "sign-in")
	assert.Equal(t, 9, r.code, "%s%s", r.stdout, r.stderr)
	assert.Contains(t, r.stderr, "cannot reach the directory")
	assert.NotContains(t, r.stderr, "PIN:", "the directory is checked before the PIN is asked")
	t.Logf("remote sign-in: provision, three sign-ins, destructive reset, refusals: %s", time.Since(start).Round(time.Millisecond))
}

// tokenPost POSTs form to the directory's v2 endpoint (token or
// devicecode) and decodes the JSON answer.
func (p *threeProcs) tokenPost(t *testing.T, endpoint string, form url.Values) map[string]any {
	t.Helper()
	resp, err := p.dirClient.PostForm(p.dirBase+"/"+p.demo.TenantID+"/oauth2/v2.0/"+endpoint, form)
	require.NoError(t, err)
	defer resp.Body.Close()
	var m map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
	return m
}

// deviceCodeTokens signs upn in by device code for scope (the test enters
// the code at the pages) and returns the access and refresh tokens.
func (p *threeProcs) deviceCodeTokens(t *testing.T, upn, password, totpSecret, scope string) (access, refresh string) {
	t.Helper()
	client := identity.PINResetClientAppID // public, with the device code grant
	da := p.tokenPost(t, "devicecode", url.Values{"client_id": {client}, "scope": {scope}})
	require.NotEmpty(t, da["device_code"], "%v", da)
	p.enterCode(t, da["verification_uri"].(string), da["user_code"].(string), upn, password, totpSecret)
	// Polled as a device does: the interval, and slow_down.
	tok := pollDeviceCode(t, p.dirClient, p.dirBase+"/"+p.demo.TenantID+"/oauth2/v2.0/token", da)
	require.NotEmpty(t, tok["access_token"], "%v", tok)
	rt, _ := tok["refresh_token"].(string)
	return tok["access_token"].(string), rt
}

// getMe is GET /v1.0/me at the directory with authorization auth ("" for
// none): the status and the body.
func (p *threeProcs) getMe(t *testing.T, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.dirBase+"/v1.0/me", nil)
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	b := &browser{t: t, c: p.dirClient, base: p.dirBase}
	return b.do(req).StatusCode, b.last
}

// hello directory against the directory over HTTPS: hello signs in with
// the Hello key and reads GET /v1.0/me with the token; the directory holds
// the login key (one msDS-KeyCredentialLink value) and the joined device.
// GET /v1.0/me answers only a token of this directory for the device
// registration service, and only with its own user's objects.
func TestHelloRemoteDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers and signs in twice")
	}
	p, home, state := provisionedRemote(t)
	r := runIn(t, home, home, "582046\n", "hello", "-state", state, "directory", "-json")
	require.Zero(t, r.code, "directory: %s%s", r.stdout, r.stderr)
	var d directoryJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &d), r.stdout)
	assert.Equal(t, p.demo.User.UPN, d.User.UPN)
	require.Len(t, d.User.KeyCredentials, 1, r.stdout)
	require.Len(t, d.User.Links, 1)
	assert.Equal(t, loginKID(t, home, state), d.User.KeyCredentials[0].KeyID, "the login key")
	require.Len(t, d.Devices, 1, r.stdout)
	assert.Equal(t, d.Devices[0].DeviceID, d.User.KeyCredentials[0].DeviceID, "registered from the joined device")

	r = runIn(t, home, home, "000000\n", "hello", "-state", state, "directory")
	assert.Equal(t, 3, r.code, "a wrong PIN reads nothing: %s%s", r.stdout, r.stderr)
	assert.Empty(t, r.stdout)

	// The endpoint: no token, not a token, a token for another resource,
	// and another user's token, which reads that user's objects only.
	for _, auth := range []string{"", "Bearer", "Bearer not-a-token", "Basic YWxpY2U6cHc="} {
		status, body := p.getMe(t, auth)
		assert.Equal(t, http.StatusUnauthorized, status, "%q: %s", auth, body)
		assert.NotContains(t, body, p.demo.User.UPN)
	}
	a := p.demo.Admin
	svcTok, rt := p.deviceCodeTokens(t, a.UPN, a.Password, a.TOTPSecret, "openid offline_access https://cred.microsoft.com/.default")
	status, body := p.getMe(t, "Bearer "+svcTok)
	assert.Equal(t, http.StatusUnauthorized, status, "a token for the PIN reset service: %s", body)
	tok := p.tokenPost(t, "token", url.Values{"grant_type": {"refresh_token"}, "client_id": {identity.PINResetClientAppID},
		"refresh_token": {rt}, "scope": {"urn:ms-drs:enterpriseregistration.windows.net/.default"}})
	require.NotEmpty(t, tok["access_token"], "%v", tok)
	status, body = p.getMe(t, "Bearer "+tok["access_token"].(string))
	require.Equal(t, http.StatusOK, status, body)
	var admin idp.DirectoryUser
	require.NoError(t, json.Unmarshal([]byte(body), &admin), body)
	assert.Equal(t, a.UPN, admin.UPN)
	assert.Empty(t, admin.Keys, "no Hello key of the administrator's")
	assert.NotContains(t, body, p.demo.User.UPN, "the administrator's token reads the administrator's objects, not the user's")
}
