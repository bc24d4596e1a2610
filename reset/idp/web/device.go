package web

import (
	"crypto/rand"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/hellosim/hellosim/internal/httpjson"
	"github.com/hellosim/hellosim/reset/idp"
)

// deviceAuth is a device authorization (RFC 8628): the device polls with
// the device code while the user enters the user code on /devicelogin and
// signs in.
type deviceAuth struct {
	userCode string // normalised: eight letters
	client   *App
	resource *App
	scopes   []string
	v2       bool
	tenant   string
	expires  time.Time
	interval time.Duration
	lastPoll time.Time

	approved, denied, redeemed bool
	pending                    *idp.Pending
	user                       idp.User
}

// userCodeAlphabet: consonants only, no vowels (no words), no look-alikes
// (RFC 8628 §6.1).
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

func newUserCode() string {
	var b strings.Builder
	for i := 0; i < 8; i++ {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(userCodeAlphabet))))
		if err != nil {
			panic(err) // crypto/rand never fails on supported platforms
		}
		b.WriteByte(userCodeAlphabet[n.Int64()])
	}
	return b.String()
}

// normaliseUserCode drops separators and case: "bcdf-ghjk" is BCDFGHJK.
func normaliseUserCode(c string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == ' ':
			return -1
		case 'a' <= r && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, c)
}

// serveDeviceCode is the device authorization endpoint (RFC 8628 §3.1).
func (s *Server) serveDeviceCode(w http.ResponseWriter, r *http.Request, tenantSeg string, v2 bool) {
	tenant, ok := s.postForm(w, r, tenantSeg)
	if !ok {
		return
	}
	client, oe := s.publicClient(r)
	if oe != nil {
		s.writeError(w, oe)
		return
	}
	if !client.DeviceCode {
		s.writeError(w, &oauthError{status: http.StatusBadRequest, code: "unauthorized_client", aadsts: 700021, desc: "The application is not allowed the device code flow."})
		return
	}
	var res *App
	var scopes []string
	if v2 {
		res, scopes, oe = s.parseScope(r.PostForm.Get("scope"), true)
	} else {
		res, scopes, oe = s.parseResource(r.PostForm.Get("resource"), r.PostForm.Get("scope"))
	}
	if oe != nil {
		s.writeError(w, oe)
		return
	}
	now := s.dir.Now()
	code, user := randomToken(32), newUserCode()
	d := &deviceAuth{userCode: user, client: client, resource: res, scopes: scopes, v2: v2, tenant: tenant,
		expires: now.Add(DeviceCodeLifetime), interval: s.interval, lastPoll: now}
	s.mu.Lock()
	err := s.roomLocked(func() int { return len(s.devices) }, now)
	if _, taken := s.userCodes[user]; taken && err == nil {
		err = errTableFull // 20^8 codes: a collision means something is wrong; refuse
	}
	if err == nil {
		s.devices[hashKey(code)] = d
		s.userCodes[user] = d
	}
	s.mu.Unlock()
	if err != nil {
		s.writeError(w, &oauthError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable", aadsts: 90033, desc: "The directory is busy; try again shortly."})
		return
	}
	verify := s.origin + "/devicelogin"
	shown := user[:4] + "-" + user[4:]
	resp := map[string]any{
		"device_code": code, "user_code": shown, "verification_uri": verify,
		"expires_in": int(DeviceCodeLifetime / time.Second), "interval": int(s.interval / time.Second),
		"message": "To sign in, use a web browser to open the page " + verify + " and enter the code " + shown + " to authenticate.",
	}
	if !v2 {
		resp["verification_url"] = verify // v1's name for it
	}
	httpjson.Write(w, http.StatusOK, resp)
}

// grantDevice answers a poll with the device code (RFC 8628 §3.4, §3.5).
func (s *Server) grantDevice(r *http.Request, tenant string) (map[string]any, error) {
	client, oe := s.publicClient(r)
	if oe != nil {
		return nil, oe
	}
	code := r.PostForm.Get("device_code")
	now := s.dir.Now()
	s.mu.Lock()
	d := s.devices[hashKey(code)]
	if d == nil || d.client != client {
		s.mu.Unlock()
		return nil, badRequest("invalid_grant", 70000, "bad_verification_code: the device code is unknown or was issued to another client.")
	}
	since := now.Sub(d.lastPoll)
	d.lastPoll = now
	switch {
	case now.After(d.expires):
		s.mu.Unlock()
		return nil, badRequest("expired_token", 70019, "Verification code expired.")
	case d.redeemed:
		s.mu.Unlock()
		return nil, badRequest("invalid_grant", 54005, "The device code was already redeemed.")
	case d.denied:
		s.mu.Unlock()
		return nil, badRequest("access_denied", 70018, "The user declined the sign-in on the device login page.")
	case since < d.interval:
		d.interval += 5 * time.Second // RFC 8628 §3.5
		s.mu.Unlock()
		return nil, badRequest("slow_down", 70016, "Polling too fast: wait the interval between requests (now "+d.interval.String()+").")
	case !d.approved:
		s.mu.Unlock()
		return nil, badRequest("authorization_pending", 70016, "OAuth 2.0 device flow error. Authorization is pending. Continue polling.")
	}
	d.redeemed = true
	fam := &family{client: client, resource: d.resource, scopes: d.scopes, v2: d.v2, pending: d.pending, user: d.user}
	s.mu.Unlock()
	if tenant != "" && tenant != d.user.TenantID {
		return nil, badRequest("invalid_grant", 9002313, "The device code belongs to another tenant.")
	}
	return s.issue(r, fam, "", true)
}

// serveDeviceLogin is the page where the user enters the user code; then
// the sign-in pages follow, and a confirmation.
func (s *Server) serveDeviceLogin(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		f := &flow{kind: kindDevice, step: stepUserCode}
		if err := s.newFlow(w, r, f); err != nil {
			s.errorPage(w, r, http.StatusServiceUnavailable, 90033, "The directory is busy; try again shortly.")
			return
		}
		s.render(w, r, http.StatusOK, "usercode", pageData{CSRF: f.csrf, UserCode: clip(r.URL.Query().Get("otc"), 12)})
		return
	case http.MethodPost:
	default:
		s.errorPage(w, r, http.StatusMethodNotAllowed, 900561, "GET or POST only.")
		return
	}
	f := s.formFlow(w, r, "Open the device login page again.", func(f *flow) bool { return f.kind == kindDevice && f.step == stepUserCode })
	if f == nil {
		return
	}
	defer f.mu.Unlock()
	uc := normaliseUserCode(r.PostForm.Get("code"))
	now := s.dir.Now()
	s.mu.Lock()
	d := s.userCodes[uc]
	ok := d != nil && !now.After(d.expires) && !d.approved && !d.denied
	s.mu.Unlock()
	if !ok {
		f.codeTries++
		if f.codeTries >= maxUserCodeTries {
			s.endFlow(w, r, f)
			s.errorPage(w, r, http.StatusOK, 70019, "Too many wrong codes. Open the device login page again.")
			return
		}
		s.render(w, r, http.StatusOK, "usercode", pageData{CSRF: f.csrf, Error: "That code didn't work. Check the code shown on your device and try again."})
		return
	}
	f.device, f.tenant, f.step = d, d.tenant, stepUPN
	s.render(w, r, http.StatusOK, "upn", pageData{CSRF: f.csrf, AppName: d.client.Name})
}

// stepConfirm: "Are you trying to sign in to …?" Continue approves the
// device's request with this sign-in; Cancel denies it.
func (s *Server) stepConfirm(w http.ResponseWriter, r *http.Request, f *flow) {
	d := f.device
	accept := r.PostForm.Get("action") == "accept"
	now := s.dir.Now()
	s.mu.Lock()
	live := !now.After(d.expires) && !d.approved && !d.denied
	if live {
		if accept {
			d.approved, d.pending, d.user = true, f.pending, f.user
		} else {
			d.denied = true
		}
	}
	s.mu.Unlock()
	s.endFlow(w, r, f)
	switch {
	case !live:
		s.errorPage(w, r, http.StatusOK, 70019, "The code has expired or was already used. Start again on your device.")
	case accept:
		s.render(w, r, http.StatusOK, "done", pageData{AppName: d.client.Name, UPN: f.upn,
			Message: "You have signed in to " + d.client.Name + " on your device. You may now close this window."})
	default:
		s.render(w, r, http.StatusOK, "done", pageData{AppName: d.client.Name,
			Message: "You cancelled the sign-in. The device will not be signed in."})
	}
}
