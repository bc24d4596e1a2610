package federation

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// RelyingParty is a directory the service signs users in to: its realm
// (wtrealm, the assertions' audience) and the reply URLs it may be
// answered at (scheme, host and path, exactly).
type RelyingParty struct {
	Realm     string
	ReplyURLs []string
}

// Config configures a Server.
type Config struct {
	// Issuer is the service's identifier, e.g.
	// https://adfs.fabrikam.test/adfs/services/trust.
	Issuer string
	// Key is the token-signing key, ECDSA P-256; nil makes one.
	Key *ecdsa.PrivateKey
	// Authenticate checks a user's password; nil refuses everyone.
	Authenticate func(ctx context.Context, upn, password string) error
	// RelyingParties are the directories it answers.
	RelyingParties []RelyingParty
	// Lifetime of an assertion; 0 means DefaultLifetime.
	Lifetime time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server serves the sign-in page at SignInPath. It is safe for concurrent
// use.
type Server struct {
	cfg Config
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if u, err := url.Parse(cfg.Issuer); err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("federation: the issuer must be an https URL, not %q", cfg.Issuer)
	}
	if cfg.Key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		cfg.Key = k
	}
	if cfg.Key.Curve != elliptic.P256() {
		return nil, errors.New("federation: the signing key must be P-256")
	}
	if cfg.Lifetime == 0 {
		cfg.Lifetime = DefaultLifetime
	}
	if cfg.Lifetime < 0 || cfg.Lifetime > MaxLifetime {
		return nil, fmt.Errorf("federation: lifetime %s: want at most %s", cfg.Lifetime, MaxLifetime)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.RelyingParties = slices.Clone(cfg.RelyingParties)
	return &Server{cfg: cfg}, nil
}

// Trust is what a directory must hold to accept this service's assertions.
func (s *Server) Trust() Trust { return Trust{Issuer: s.cfg.Issuer, Key: &s.cfg.Key.PublicKey} }

// request is a sign-in request's parameters, checked.
type request struct {
	Realm, Reply, Context, UPN, Error string
}

// parse reads and checks the WS-Federation parameters: a known realm, one
// of its reply URLs, a context.
func (s *Server) parse(v url.Values) (request, bool) {
	q := request{Realm: v.Get("wtrealm"), Reply: v.Get("wreply"), Context: v.Get("wctx"), UPN: v.Get("username")}
	if v.Get("wa") != "wsignin1.0" || q.Context == "" || len(q.Context) > 256 || len(q.UPN) > 113 {
		return q, false
	}
	for _, rp := range s.cfg.RelyingParties {
		if rp.Realm == q.Realm && slices.Contains(rp.ReplyURLs, q.Reply) {
			return q, true
		}
	}
	return q, false
}

// ServeHTTP serves the sign-in page (GET) and takes its form (POST).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	if r.URL.Path != SignInPath {
		s.page(w, http.StatusNotFound, "error", "There is no page here.")
		return
	}
	var v url.Values
	switch r.Method {
	case http.MethodGet:
		v = r.URL.Query()
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		if err := r.ParseForm(); err != nil {
			s.page(w, http.StatusBadRequest, "error", "The form could not be read.")
			return
		}
		v = r.PostForm
	default:
		s.page(w, http.StatusMethodNotAllowed, "error", "GET or POST only.")
		return
	}
	q, ok := s.parse(v)
	if !ok {
		// Never an open redirect: an unknown realm or reply URL gets a page.
		s.page(w, http.StatusBadRequest, "error", "This sign-in request does not come from a relying party this service trusts, or asks for an answer at an address it does not know.")
		return
	}
	if r.Method == http.MethodGet {
		s.page(w, http.StatusOK, "signin", q)
		return
	}
	q.UPN = strings.ToLower(strings.TrimSpace(v.Get("username")))
	if s.cfg.Authenticate == nil || s.cfg.Authenticate(r.Context(), q.UPN, v.Get("password")) != nil {
		q.Error = "Incorrect user ID or password. Type the correct user ID and password, and try again."
		s.page(w, http.StatusOK, "signin", q)
		return
	}
	a, err := Issue(s.cfg.Key, s.cfg.Issuer, q.Realm, q.UPN, q.Context, s.cfg.Now(), s.cfg.Lifetime)
	if err != nil {
		s.page(w, http.StatusInternalServerError, "error", "The sign-in could not be completed.")
		return
	}
	reply, _ := url.Parse(q.Reply) // registered, so it parses
	rq := reply.Query()
	rq.Set("wa", "wsignin1.0")
	rq.Set("wresult", a)
	rq.Set("wctx", q.Context)
	reply.RawQuery = rq.Encode()
	http.Redirect(w, r, reply.String(), http.StatusSeeOther)
}

func (s *Server) page(w http.ResponseWriter, status int, name string, data any) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = pages.ExecuteTemplate(w, name, data)
}

var pages = template.Must(template.New("pages").Parse(`
{{define "top"}}<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Sign in – federation service</title>
<style>body{font-family:sans-serif;background:#eef;margin:0}main{max-width:26em;margin:4em auto;background:#fff;padding:2em}
label,input,button{display:block;margin:.5em 0}.error{color:#a00}</style></head><body><main>{{end}}
{{define "signin"}}{{template "top"}}<h1 id="federation-signin">Sign in with your organizational account</h1>
{{if .Error}}<p class="error" id="error">{{.Error}}</p>{{end}}
<form method="post" action="">
<input type="hidden" name="wa" value="wsignin1.0"><input type="hidden" name="wtrealm" value="{{.Realm}}">
<input type="hidden" name="wreply" value="{{.Reply}}"><input type="hidden" name="wctx" value="{{.Context}}">
<label for="username">User name</label><input id="username" name="username" value="{{.UPN}}" autocomplete="username">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password">
<button id="submit" type="submit">Sign in</button></form></main></body></html>{{end}}
{{define "error"}}{{template "top"}}<h1>Sign-in error</h1><p id="message">{{.}}</p></main></body></html>{{end}}
`))
