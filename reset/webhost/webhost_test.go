package webhost_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hellosim/hellosim/internal/chromium"
	"github.com/hellosim/hellosim/internal/chromium/chromiumtest"
	"github.com/hellosim/hellosim/internal/devcert"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/webhost"
)

func TestAllowsHostRules(t *testing.T) {
	a := webhost.NewAllowlist(reset.Policy{WebSignInAllowedURLs: []string{"adfs.fabrikam.test", "fabrikam.test"}})
	for _, c := range []struct {
		url  string
		want bool
	}{
		{"https://login.microsoftonline.com/common/oauth2/authorize", true},
		{"https://login.windows.net/x", true},
		{"https://LOGIN.WINDOWS.NET./x", true},
		{"https://adfs.fabrikam.test/adfs/ls/", true},
		{"https://adfs.fabrikam.test:8443/adfs/ls/", true},
		{"https://fabrikam.test/", true},
		{"https://sts.fabrikam.test/", false}, // a listed domain allows that host only
		{"https://evilfabrikam.test/", false}, // not a suffix match either
		{"https://adfs.fabrikam.test.evil.test/", false},
		{"http://adfs.fabrikam.test/adfs/ls/", false}, // https only
		{"https://user@adfs.fabrikam.test/", false},
		{"https://login.microsoftonline.us/", false}, // Azure Government: only when listed
		{"https://login.microsoftonline.com.evil.test/", false},
		{"wss://adfs.fabrikam.test/", false},
		{"::not a url", false},
		{"https:///nohost", false},
	} {
		if got := a.Allows(c.url); got != c.want {
			t.Errorf("Allows(%q) = %v, want %v", c.url, got, c.want)
		}
	}
	gov := webhost.NewAllowlist(reset.Policy{WebSignInAllowedURLs: []string{reset.GovernmentSignInHost}})
	if !gov.Allows("https://login.microsoftonline.us/common/oauth2/authorize") {
		t.Error("listing login.microsoftonline.us does not allow it")
	}
}

// site is one loopback HTTPS server standing in for one host name, with its
// own certificate, that records every request and every connection.
type site struct {
	host string
	addr string
	cert *devcert.Cert

	mu       sync.Mutex
	requests []string
	conns    int
}

func (s *site) seen() (requests []string, conns int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...), s.conns
}

func newSite(t *testing.T, host string, h http.Handler) *site {
	t.Helper()
	cert, err := devcert.New([]string{host})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &site{host: host, addr: ln.Addr().String(), cert: cert}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.mu.Lock()
			s.requests = append(s.requests, r.Method+" "+r.Host+r.URL.RequestURI())
			s.mu.Unlock()
			h.ServeHTTP(w, r)
		}),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert.TLS}},
		ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.mu.Lock()
				s.conns++
				s.mu.Unlock()
			}
		},
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

const (
	fedHost  = "adfs.fabrikam.test"
	evilHost = "evilfabrikam.test"
	govHost  = "login.microsoftonline.us"
	loginCom = "login.microsoftonline.com"
)

// world is the Azure AD sign-in host (worldwide and Government), a
// federated tenant's AD FS sign-in page, and a host no policy lists. The
// sign-in: /authorize on the Azure AD host redirects to the federation
// sign-in page; the user submits it; AD FS posts back to the Azure AD host,
// which shows "Signed in". The AD FS page also asks for an image from the
// unlisted host (a subresource the host must block).
type world struct {
	login, gov, fed, evil *site
}

func newWorld(t *testing.T) *world {
	w := &world{}
	azure := func(self string) http.Handler {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /authorize", func(rw http.ResponseWriter, r *http.Request) {
			to := r.URL.Query().Get("federation")
			if to == "" {
				to = "https://" + fedHost + "/adfs/ls/"
			}
			http.Redirect(rw, r, to+"?wreply="+url.QueryEscape("https://"+self+"/done"), http.StatusFound)
		})
		mux.HandleFunc("GET /start", func(rw http.ResponseWriter, r *http.Request) {
			rw.Header().Set("Content-Type", "text/html")
			_, _ = rw.Write([]byte(`<!doctype html><title>Sign in</title><p id="start">Sign in to ` + self + `</p>`))
		})
		mux.HandleFunc("GET /done", func(rw http.ResponseWriter, r *http.Request) {
			rw.Header().Set("Content-Type", "text/html")
			_, _ = rw.Write([]byte(`<!doctype html><title>Done</title><p id="done">Signed in as ` + r.URL.Query().Get("user") + `</p>`))
		})
		return mux
	}
	w.login = newSite(t, loginCom, azure(loginCom))
	w.gov = newSite(t, govHost, azure(govHost))
	fed := http.NewServeMux()
	fed.HandleFunc("GET /adfs/ls/", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/html")
		_, _ = rw.Write([]byte(`<!doctype html><title>Fabrikam sign-in</title>
<img id="pixel" src="https://` + evilHost + `/pixel.png">
<iframe id="frame" src="https://` + evilHost + `/frame"></iframe>
<form method="post" action="/adfs/ls/"><input type="hidden" name="wreply" value="` + r.URL.Query().Get("wreply") + `">
<input id="user" name="user"><button id="signin" type="submit">Sign in</button></form>`))
	})
	fed.HandleFunc("POST /adfs/ls/", func(rw http.ResponseWriter, r *http.Request) {
		reply, err := url.Parse(r.FormValue("wreply"))
		if err != nil {
			http.Error(rw, "bad wreply", http.StatusBadRequest)
			return
		}
		reply.RawQuery = url.Values{"user": {r.FormValue("user")}}.Encode()
		http.Redirect(rw, r, reply.String(), http.StatusFound)
	})
	w.fed = newSite(t, fedHost, fed)
	w.evil = newSite(t, evilHost, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/html")
		_, _ = rw.Write([]byte(`<p id="evil">evil</p>`))
	}))
	return w
}

func (w *world) options() chromium.Options {
	hosts := map[string]string{}
	var spki []string
	for _, s := range []*site{w.login, w.gov, w.fed, w.evil} {
		hosts[s.host] = s.addr
		spki = append(spki, s.cert.SPKIHashes...)
	}
	return chromium.Options{Hosts: hosts, SPKIHashes: spki}
}

func (w *world) browser(t *testing.T) context.Context {
	return chromiumtest.Start(t, w.options())
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func assertUntouched(t *testing.T, s *site) {
	t.Helper()
	if reqs, conns := s.seen(); len(reqs) != 0 || conns != 0 {
		t.Errorf("%s saw %d connections and requests %v; want none", s.host, conns, reqs)
	}
}

func assertMessage(t *testing.T, ctx context.Context) {
	t.Helper()
	if got := text(t, ctx, "body"); !strings.Contains(got, webhost.Message) {
		t.Fatalf("page says %q, want %q", got, webhost.Message)
	}
}

// A federated tenant whose AD FS host ConfigureWebSignInAllowedUrls lists:
// the sign-in crosses from Azure AD to AD FS and back and completes; the
// image and the frame AD FS's page asks of an unlisted host are refused in
// the browser.
func TestFederatedSignInCompletesWhenListed(t *testing.T) {
	w := newWorld(t)
	ctx := w.browser(t)
	allow := webhost.NewAllowlist(reset.Policy{WebSignInAllowedURLs: []string{fedHost}})
	h, err := webhost.Open(ctx, allow, "https://"+loginCom+"/authorize")
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS("#user")),
		chromedp.SendKeys(chromedp.CSS("#user"), "alice@fabrikam.test"),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#done")),
	); err != nil {
		t.Fatalf("sign-in pages: %v", err)
	}
	if got := text(t, ctx, "#done"); got != "Signed in as alice@fabrikam.test" {
		t.Fatalf("final page says %q", got)
	}
	if reqs, _ := w.fed.seen(); len(reqs) < 2 {
		t.Errorf("AD FS saw %v, want the page and the post", reqs)
	}
	assertUntouched(t, w.evil)
	var sawPixel, sawFrame bool
	for _, b := range h.Blocked() {
		switch b.URL {
		case "https://" + evilHost + "/pixel.png":
			sawPixel = !b.Document
		case "https://" + evilHost + "/frame":
			sawFrame = b.Document
		}
	}
	if !sawPixel || !sawFrame {
		t.Errorf("blocked %v, want the pixel (a subresource) and the frame (a document) of %s", h.Blocked(), evilHost)
	}
}

// A federated tenant whose AD FS host the policy does not list (the parent
// domain is listed, which allows that host only): the redirect to AD FS is
// refused in the browser and the documented message shows; AD FS sees no
// connection at all.
func TestFederationHostNotListedShowsMessage(t *testing.T) {
	w := newWorld(t)
	ctx := w.browser(t)
	allow := webhost.NewAllowlist(reset.Policy{WebSignInAllowedURLs: []string{"fabrikam.test"}})
	h, err := webhost.Open(ctx, allow, "https://"+loginCom+"/authorize")
	if err != nil {
		t.Fatal(err)
	}
	assertMessage(t, ctx)
	assertUntouched(t, w.fed)
	if b := h.Blocked(); len(b) == 0 || !strings.HasPrefix(b[0].URL, "https://"+fedHost+"/adfs/ls/") || !b[0].Document {
		t.Errorf("blocked %v, want the AD FS page as a document", b)
	}
	if reqs, _ := w.login.seen(); len(reqs) == 0 || reqs[0] != "GET "+loginCom+"/authorize" {
		t.Errorf("Azure AD saw %v, want /authorize first", reqs)
	}
}

// A host whose name ends with a listed domain but is another host, opened
// directly and from a link: the message, and no connection to it.
func TestLookalikeHostShowsMessage(t *testing.T) {
	w := newWorld(t)
	ctx := w.browser(t)
	allow := webhost.NewAllowlist(reset.Policy{WebSignInAllowedURLs: []string{fedHost, "fabrikam.test"}})
	if _, err := webhost.Open(ctx, allow, "https://"+evilHost+"/"); err != nil {
		t.Fatal(err)
	}
	assertMessage(t, ctx)
	// The same over plain http, and a redirect through an allowed host.
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+evilHost+"/")); err != nil {
		t.Fatal(err)
	}
	assertMessage(t, ctx)
	if err := chromedp.Do(ctx, chromedp.Navigate("https://"+loginCom+"/authorize?federation="+url.QueryEscape("https://"+evilHost+"/"))); err != nil {
		t.Fatal(err)
	}
	assertMessage(t, ctx)
	assertUntouched(t, w.evil)
}

// Azure Government, the documentation's known issue: without
// login.microsoftonline.us in ConfigureWebSignInAllowedUrls the PIN reset
// shows "We can't open that page right now."; listing it is the workaround.
func TestAzureGovernment(t *testing.T) {
	w := newWorld(t)
	t.Run("not listed", func(t *testing.T) {
		ctx := w.browser(t)
		if _, err := webhost.Open(ctx, webhost.NewAllowlist(reset.Policy{}), "https://"+govHost+"/start"); err != nil {
			t.Fatal(err)
		}
		assertMessage(t, ctx)
		assertUntouched(t, w.gov)
	})
	t.Run("listed", func(t *testing.T) {
		// Through Start, the way a program opens the host.
		o := w.options()
		o.ExecPath = chromiumtest.Require(t)
		allow := webhost.NewAllowlist(reset.Policy{WebSignInAllowedURLs: []string{reset.GovernmentSignInHost}})
		ctx, _, stop, err := webhost.Start(context.Background(), o, allow, "https://"+govHost+"/start")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#start"))); err != nil {
			t.Fatal(err)
		}
		if got := text(t, ctx, "#start"); got != "Sign in to "+govHost {
			t.Fatalf("page says %q", got)
		}
		if reqs, _ := w.gov.seen(); len(reqs) == 0 || reqs[0] != "GET "+govHost+"/start" {
			t.Errorf("Government sign-in host saw %v, want one request", reqs)
		}
	})
}
