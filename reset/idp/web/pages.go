package web

import (
	"bytes"
	"html/template"
	"net/http"
)

// pageData is what a page shows.
type pageData struct {
	CSRF        string
	AppName     string
	AppID       string
	UPN         string
	Error       string
	Message     string
	Permissions []string
	Admin       bool
	UserCode    string
	TenantID    string
	Search      string
	Apps        []ServicePrincipal
	Code        int    // error page: the AADSTS code
	Status      int    // error page: the HTTP status
	Trace       string // error page: a trace ID to quote
}

// contentSecurityPolicy: no scripts at all, no framing (clickjacking of
// the consent page), styles only from the page itself.
const contentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"

// render writes a page with the pages' security headers.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, d pageData) {
	var buf bytes.Buffer
	if err := s.pages.ExecuteTemplate(&buf, name, d); err != nil {
		http.Error(w, "page error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// errorPage shows an error where no redirect URI can be trusted.
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, status, aadsts int, msg string) {
	s.render(w, r, status, "error", pageData{Message: msg, Code: aadsts, Status: status, Trace: newGUID()})
}

var pageTemplates = template.Must(template.New("pages").Parse(`
{{define "top"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}} – hellosim directory</title>
<style>
body{font-family:"Segoe UI",system-ui,sans-serif;background:#f2f2f2;margin:0}
main{background:#fff;max-width:440px;margin:48px auto;padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}
h1{font-size:24px;font-weight:600;margin:0 0 16px}
.brand{color:#737373;font-size:15px;margin-bottom:16px}
.error{color:#e81123;margin:8px 0}
input[type=text],input[type=email],input[type=password],input[type=search]{width:100%;box-sizing:border-box;border:0;border-bottom:1px solid #666;padding:6px 0;font-size:15px;margin:8px 0 16px}
button{background:#0067b8;color:#fff;border:0;padding:6px 20px;min-width:108px;font-size:15px;cursor:pointer}
button.secondary{background:#ccc;color:#000}
ul{padding-left:20px} table{border-collapse:collapse;width:100%} td,th{text-align:left;padding:6px;border-bottom:1px solid #ddd}
.small{font-size:13px;color:#555}
</style></head><body><main><div class="brand">hellosim directory</div>{{end}}
{{define "bottom"}}</main></body></html>{{end}}

{{define "upn"}}{{template "top" "Sign in"}}
<h1>Sign in</h1>{{if .AppName}}<p class="small">to continue to {{.AppName}}</p>{{end}}
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="/login/upn">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<input type="email" name="upn" id="upn" placeholder="someone@example.com" value="{{.UPN}}" autocomplete="username" required autofocus>
<button type="submit" id="next">Next</button>
</form>{{template "bottom"}}{{end}}

{{define "password"}}{{template "top" "Enter password"}}
<p>{{.UPN}}</p><h1>Enter password</h1>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="/login/password">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<input type="password" name="password" id="password" placeholder="Password" autocomplete="current-password" required autofocus>
<button type="submit" id="signin">Sign in</button>
</form>{{template "bottom"}}{{end}}

{{define "mfa"}}{{template "top" "Enter code"}}
<p>{{.UPN}}</p><h1>Enter code</h1>
<p>Enter the code displayed in the authenticator app on your mobile device.</p>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="/login/mfa">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<input type="text" name="code" id="code" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" placeholder="Code" autocomplete="one-time-code" required autofocus>
<button type="submit" id="verify">Verify</button>
</form>{{template "bottom"}}{{end}}

{{define "consent"}}{{template "top" "Permissions requested"}}
<p>{{.UPN}}</p><h1>Permissions requested</h1>
<p><strong id="app-name">{{.AppName}}</strong><br><span class="small">App ID {{.AppID}}</span></p>
<p>This application would like to:</p>
<ul id="permissions">{{range .Permissions}}<li>{{.}}</li>{{end}}</ul>
{{if .Admin}}<p class="small">Consent on behalf of your organization: accepting these permissions means that you allow this app to use your organization's data, and creates the app's service principal in your tenant.</p>{{end}}
<form method="post" action="/login/consent">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<button type="submit" name="action" value="cancel" class="secondary" id="cancel">Cancel</button>
<button type="submit" name="action" value="accept" id="accept">Accept</button>
</form>{{template "bottom"}}{{end}}

{{define "usercode"}}{{template "top" "Enter code"}}
<h1>Enter code</h1><p>Enter the code displayed on your app or device.</p>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="/devicelogin">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<input type="text" name="code" id="code" placeholder="Code" value="{{.UserCode}}" autocomplete="off" required autofocus>
<button type="submit" id="next">Next</button>
</form>{{template "bottom"}}{{end}}

{{define "confirm"}}{{template "top" "Are you trying to sign in?"}}
<p>{{.UPN}}</p><h1>Are you trying to sign in to {{.AppName}}?</h1>
<p>Only continue if you downloaded the app from a store or website that you trust, and you started this sign-in on your device.</p>
<form method="post" action="/login/confirm">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<button type="submit" name="action" value="cancel" class="secondary" id="cancel">Cancel</button>
<button type="submit" name="action" value="accept" id="accept">Continue</button>
</form>{{template "bottom"}}{{end}}

{{define "done"}}{{template "top" .AppName}}
<h1>{{.AppName}}</h1><p id="message">{{.Message}}</p>{{template "bottom"}}{{end}}

{{define "apps"}}{{template "top" "Enterprise applications"}}
<h1>Enterprise applications</h1>
<p class="small">Signed in as {{.UPN}} · tenant {{.TenantID}}</p>
<form method="get">
<input type="search" name="search" id="search" placeholder="Search by application name" value="{{.Search}}">
<button type="submit" id="go">Search</button>
</form>
<table id="apps"><thead><tr><th>Name</th><th>Application ID</th></tr></thead><tbody>
{{range .Apps}}<tr><td class="sp-name">{{.DisplayName}}</td><td>{{.AppID}}</td></tr>{{else}}<tr><td colspan="2">No applications found.</td></tr>{{end}}
</tbody></table>
<p class="small"><a href="?search={{.Search}}&amp;format=json">JSON</a></p>{{template "bottom"}}{{end}}

{{define "landing"}}{{template "top" "Redirect received"}}
<h1>Redirect received</h1>
<p class="small">This page stands in for the application's redirect URI.</p>
<table><tr><th>state</th><td id="state">{{.UserCode}}</td></tr>
<tr><th>code</th><td id="code">{{.Message}}</td></tr>
<tr><th>error</th><td id="error">{{.Error}}</td></tr></table>{{template "bottom"}}{{end}}

{{define "error"}}{{template "top" "Sorry, but we're having trouble signing you in"}}
<h1>Sorry, but we’re having trouble signing you in.</h1>
<p id="error-text">{{if .Code}}AADSTS{{.Code}}: {{end}}{{.Message}}</p>
<p class="small">Trace ID: {{.Trace}}</p>{{template "bottom"}}{{end}}
`))

// RedirectStandIn is a page standing in for an application's redirect URI
// (https://cred.microsoft.com, the PIN Reset Service's) when a browser's
// host names are mapped to the directory: it shows the state, code or
// error it received, so an administrator sees where the consent landed.
func (s *Server) RedirectStandIn() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		s.render(w, r, http.StatusOK, "landing", pageData{UserCode: clip(q.Get("state"), 200), Message: clip(q.Get("code"), 200),
			Error: clip(q.Get("error")+" "+q.Get("error_description"), 500)})
	})
}
