package examples_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/internal/chromium"
	"github.com/hellosim/hellosim/internal/chromium/chromiumtest"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/webhost"
)

const fedHost = "adfs.fabrikam.test"

type fedAccount struct {
	UPN, Password string
	TOTPSecret    string `json:"totp_secret"`
}

// fedDirectory is the directory program with its federated tenant, and
// the demo file's parts the tests use.
type fedDirectory struct {
	dir      string
	proc     *proc
	base     string
	hostPort string
	client   *http.Client
	demo     struct {
		SPKIHashes []string `json:"spki_sha256"`
		CAPEM      string   `json:"ca_pem"`
		Links      []string `json:"consent_links"`
		Government struct {
			TenantID string     `json:"tenant_id"`
			User     fedAccount `json:"user"`
		} `json:"azure_government"`
		Federated struct {
			TenantID string     `json:"tenant_id"`
			SignIn   string     `json:"federation_sign_in_url"`
			Admin    fedAccount `json:"global_administrator"`
			User     fedAccount `json:"user"`
		} `json:"federated"`
	}
	lastStep map[string]int64 // TOTP steps used, by secret: a code is good once
}

func startFedDirectory(t *testing.T) *fedDirectory {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the directory and Chromium")
	}
	chromiumtest.Require(t)
	d := &fedDirectory{dir: t.TempDir(), lastStep: map[string]int64{}}
	d.proc, d.base = startProc(t, d.dir, regexp.MustCompile(`^directory at (https://\S+)`), "directory",
		"-addr", "127.0.0.1:0", "-demo", "demo.json", "-dump", "dump.json")
	raw, err := os.ReadFile(filepath.Join(d.dir, "demo.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &d.demo))
	require.Equal(t, "https://"+fedHost+"/adfs/ls/", d.demo.Federated.SignIn)
	d.hostPort = strings.TrimPrefix(d.base, "https://")
	d.client = tlsClient(t, []byte(d.demo.CAPEM))
	return d
}

// options map the Microsoft sign-in hosts, cred.microsoft.com and the
// federation host to the directory program, and trust its certificate.
func (d *fedDirectory) options() chromium.Options {
	hosts := map[string]string{fedHost: d.hostPort}
	for _, h := range []string{"login.microsoftonline.com", "login.windows.net", "cred.microsoft.com", reset.GovernmentSignInHost} {
		hosts[h] = d.hostPort
	}
	return chromium.Options{Hosts: hosts, SPKIHashes: d.demo.SPKIHashes}
}

// dump asks the program for its -dump (SIGUSR1) and returns the requests
// each host name received and whether the federated tenant is onboarded.
func (d *fedDirectory) dump(t *testing.T) (requests map[string]int, fedOnboarded bool) {
	t.Helper()
	path := filepath.Join(d.dir, "dump.json")
	_ = os.Remove(path)
	require.NoError(t, syscall.Kill(d.proc.cmd.Process.Pid, syscall.SIGUSR1))
	var out struct {
		Requests  map[string]int `json:"requests_by_host"`
		Federated struct {
			Onboarded bool `json:"onboarded"`
		} `json:"federated"`
	}
	require.Eventually(t, func() bool {
		raw, err := os.ReadFile(path)
		return err == nil && json.Unmarshal(raw, &out) == nil
	}, 10*time.Second, 20*time.Millisecond)
	return out.Requests, out.Federated.Onboarded
}

// totp is the account's code now, never one used before: at a repeat it
// waits for the next step, as a person waits for the authenticator.
func (d *fedDirectory) totp(t *testing.T, secret string) string {
	t.Helper()
	step := time.Now().Unix() / 30
	if d.lastStep[secret] >= step {
		time.Sleep(time.Until(time.Unix((step+1)*30, 100e6)))
		step++
	}
	d.lastStep[secret] = step
	code, err := idp.TOTPCodeAt(secret, time.Unix(step*30+1, 0))
	require.NoError(t, err)
	return code
}

// federatedSignIn types a federated user's name into the directory's page,
// the password into the federation service's page it is sent to, and the
// TOTP code into the directory's page it comes back to.
func (d *fedDirectory) federatedSignIn(t *testing.T, ctx context.Context, a fedAccount) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS("#upn")), chromedp.SendKeys(chromedp.CSS("#upn"), a.UPN), chromedp.Click(chromedp.CSS("#next")),
		chromedp.WaitVisible(chromedp.CSS("#federation-signin"))), "user name page, then the federation page")
	loc, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(loc, "https://"+fedHost+"/adfs/ls/?"), "at %s", loc)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#password"), a.Password), chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS("#code"))), "federation page, then the code page")
	loc, err = chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	require.True(t, strings.Contains(loc, "/login/federation?"), "back at %s", loc)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#code"), d.totp(t, a.TOTPSecret)), chromedp.Click(chromedp.CSS("#verify"))), "code page")
}

// deviceCode asks the directory for a device code of the PIN Reset Client.
func (d *fedDirectory) deviceCode(t *testing.T) (da map[string]any, userCode string) {
	t.Helper()
	da = postForm(t, d.client, d.base+"/common/oauth2/v2.0/devicecode", url.Values{"client_id": {identity.PINResetClientAppID},
		"scope": {"openid offline_access https://cred.microsoft.com/.default"}})
	require.NotEmpty(t, da["device_code"], "%v", da)
	return da, da["user_code"].(string)
}

// lockScreen opens the device login page as the lock screen's web host
// does, on the Microsoft sign-in host, under ConfigureWebSignInAllowedUrls
// allowed, and enters the user code.
func (d *fedDirectory) lockScreen(t *testing.T, allowed []string, userCode string) (context.Context, *webhost.Host) {
	t.Helper()
	return d.lockScreenAt(t, "login.microsoftonline.com", allowed, userCode)
}

// lockScreenAt is lockScreen with the device login page on signInHost.
func (d *fedDirectory) lockScreenAt(t *testing.T, signInHost string, allowed []string, userCode string) (context.Context, *webhost.Host) {
	t.Helper()
	ctx := chromiumtest.Start(t, d.options())
	h, err := webhost.Open(ctx, webhost.NewAllowlist(reset.Policy{WebSignInAllowedURLs: allowed}), "https://"+signInHost+"/devicelogin")
	require.NoError(t, err)
	if !slices.Contains(webhost.MicrosoftSignInHosts, signInHost) && !slices.Contains(allowed, signInHost) {
		return ctx, h
	}
	require.NoError(t, chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS("#code")), chromedp.SendKeys(chromedp.CSS("#code"), userCode), chromedp.Click(chromedp.CSS("#next"))))
	return ctx, h
}

// confirmed continues the device login's confirmation page and checks the
// sign-in is done, with no page refused by the web host h.
func confirmed(t *testing.T, ctx context.Context, h *webhost.Host) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#accept")), chromedp.Click(chromedp.CSS("#accept")),
		chromedp.WaitVisible(chromedp.CSS("#message"))))
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#message")))
	require.NoError(t, err)
	assert.Contains(t, msg, "You have signed in")
	for _, b := range h.Blocked() {
		assert.False(t, b.Document, "the web host refused a page: %s", b.URL)
	}
}

// The lock-screen web host against the directory program, for a user of
// its federated tenant (fabrikam.test, federation service at
// adfs.fabrikam.test, served by the same program under that name):
//
//   - ConfigureWebSignInAllowedUrls without the federation host: the host
//     shows "We can't open that page right now." when the directory sends
//     the browser there, and the federation host receives no request at all
//     (the program's count by Host header);
//   - the tenant's Global Administrator onboards it with the documentation's
//     two consent links, signing in at the federation service;
//   - the federation host listed: the user signs in through it, the device
//     code completes, and the token names the federation service (idp).
func TestLockScreenFederatedAgainstDirectory(t *testing.T) {
	start := time.Now()
	d := startFedDirectory(t)
	fed := d.demo.Federated

	// Not listed: the message, and nothing reaches the federation host.
	_, userCode := d.deviceCode(t)
	ctx, h := d.lockScreen(t, nil, userCode)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS("#upn")), chromedp.SendKeys(chromedp.CSS("#upn"), fed.User.UPN), chromedp.Click(chromedp.CSS("#next")),
		chromedp.WaitVisible(chromedp.CSS("#webhost-blocked"))))
	var blockedDoc bool
	for _, b := range h.Blocked() {
		blockedDoc = blockedDoc || (b.Document && strings.HasPrefix(b.URL, "https://"+fedHost+"/adfs/ls/"))
	}
	assert.True(t, blockedDoc, "blocked %v", h.Blocked())
	requests, onboarded := d.dump(t)
	assert.Zero(t, requests[fedHost], "requests by host: %v", requests)
	assert.NotZero(t, requests["login.microsoftonline.com"], "requests by host: %v", requests)
	assert.False(t, onboarded)
	t.Logf("not listed: %s", time.Since(start).Round(time.Millisecond))

	// The Global Administrator onboards the federated tenant, in a browser
	// that is not the lock screen's.
	lap := time.Now()
	admin := chromiumtest.Start(t, d.options())
	for i, link := range d.demo.Links {
		require.NoError(t, chromedp.Do(admin, chromedp.Navigate(link)))
		d.federatedSignIn(t, admin, fed.Admin)
		require.NoError(t, chromedp.Do(admin, chromedp.WaitVisible(chromedp.CSS("#accept")), chromedp.Click(chromedp.CSS("#accept"))), "consent %d", i+1)
		if i == 0 { // the PIN Reset Service's redirect URI, cred.microsoft.com
			require.NoError(t, chromedp.Do(admin, chromedp.WaitVisible(chromedp.CSS("#state"))))
		}
	}
	// The second redirect URI (ms-appx-web:) is not for a browser: the
	// consent is seen in the directory's dump.
	for deadline := time.Now().Add(15 * time.Second); !onboarded && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		_, onboarded = d.dump(t)
	}
	require.True(t, onboarded, "the federated tenant is onboarded")
	t.Logf("onboarding through the federation service: %s", time.Since(lap).Round(time.Millisecond))

	// Listed: the sign-in goes through the federation host and completes.
	lap = time.Now()
	deviceCode, userCode := d.deviceCode(t)
	ctx, h = d.lockScreen(t, []string{fedHost}, userCode)
	d.federatedSignIn(t, ctx, fed.User)
	confirmed(t, ctx, h)
	// The token, polled as a device does (the interval, and slow_down).
	out := pollDeviceCode(t, d.client, d.base+"/common/oauth2/v2.0/token", deviceCode)
	access, _ := out["access_token"].(string)
	require.NotEmpty(t, access, "%v", out)
	parts := strings.Split(access, ".")
	require.Len(t, parts, 3)
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var claims map[string]any
	require.NoError(t, json.Unmarshal(payload, &claims))
	assert.Equal(t, "https://"+fedHost+"/adfs/ls", claims["idp"])
	assert.Equal(t, fed.User.UPN, claims["upn"])
	assert.Equal(t, fed.TenantID, claims["tid"])
	requests, _ = d.dump(t)
	assert.NotZero(t, requests[fedHost], "requests by host: %v", requests)
	t.Logf("listed, signed in through the federation service: %s; whole test %s", time.Since(lap).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// The documentation's Azure Government known issue against the directory
// program, which answers under login.microsoftonline.us for its Government
// tenant (agency.test): without that host in
// ConfigureWebSignInAllowedUrls the lock-screen web host shows "We can't
// open that page right now." and the host receives nothing; listed, the
// device login page opens and the user signs in.
func TestLockScreenGovernmentAgainstDirectory(t *testing.T) {
	start := time.Now()
	d := startFedDirectory(t)
	gov := d.demo.Government

	_, userCode := d.deviceCode(t)
	ctx, h := d.lockScreenAt(t, reset.GovernmentSignInHost, nil, userCode)
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#webhost-blocked"))))
	require.NotEmpty(t, h.Blocked())
	assert.True(t, h.Blocked()[0].Document && strings.HasPrefix(h.Blocked()[0].URL, "https://"+reset.GovernmentSignInHost+"/"), "blocked %v", h.Blocked())
	requests, _ := d.dump(t)
	assert.Zero(t, requests[reset.GovernmentSignInHost], "requests by host: %v", requests)

	ctx, h = d.lockScreenAt(t, reset.GovernmentSignInHost, []string{reset.GovernmentSignInHost}, userCode)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS("#upn")), chromedp.SendKeys(chromedp.CSS("#upn"), gov.User.UPN), chromedp.Click(chromedp.CSS("#next")),
		chromedp.WaitVisible(chromedp.CSS("#password")), chromedp.SendKeys(chromedp.CSS("#password"), gov.User.Password), chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#code")), chromedp.SendKeys(chromedp.CSS("#code"), d.totp(t, gov.User.TOTPSecret)), chromedp.Click(chromedp.CSS("#verify"))))
	confirmed(t, ctx, h)
	requests, _ = d.dump(t)
	assert.NotZero(t, requests[reset.GovernmentSignInHost], "requests by host: %v", requests)
	t.Logf("Azure Government, not listed then listed: %s", time.Since(start).Round(time.Millisecond))
}
