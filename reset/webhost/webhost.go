// Package webhost is the restricted web host of the lock-screen PIN reset.
//
// Windows runs the PIN reset above the lock screen in a web host that opens
// only Microsoft's sign-in hosts and the domains of the
// ConfigureWebSignInAllowedUrls policy; anything else shows "We can't open
// that page right now." Guard turns a Chromium tab driven through chromedp
// into that host: it intercepts every request of the tab (the Fetch domain,
// one pattern for all URLs at the request stage: documents, subresources,
// and each hop of a redirect) and lets a request leave the browser only when
// Allowlist.Allows says so. A refused document (a navigation, top level or
// frame) is answered by the browser itself with the message page; any other
// refused request fails with BlockedByClient. Nothing is sent to a refused
// host.
//
// The rules (docs/DECISIONS.md, "The lock-screen web host"):
//   - https only; any other scheme over the network is refused;
//   - a host is allowed when it is one of MicrosoftSignInHosts or when
//     reset.Policy.AllowsHost says the policy lists it: exact,
//     case-insensitive, a trailing dot ignored. A listed domain allows that
//     host and no other: "contoso.com" allows neither "login.contoso.com" nor
//     "evilcontoso.com" (the documentation's example lists each host,
//     "signin.contoso.com;portal.contoso.com");
//   - login.microsoftonline.us, the Azure Government sign-in host, is not
//     built in: the documentation's known issue is that PIN reset in Azure
//     Government shows the message until the policy lists it (reset.Check
//     rule 7 refuses the same case before the host is opened).
package webhost

import (
	"context"
	"fmt"
	"html"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/hellosim/hellosim/internal/chromium"
	"github.com/hellosim/hellosim/reset"
)

// Message is the text the host shows instead of a page it does not open.
const Message = "We can't open that page right now."

// MicrosoftSignInHosts are the sign-in hosts the web host always opens: the
// Azure AD sign-in hosts of the worldwide cloud.
var MicrosoftSignInHosts = []string{"login.microsoftonline.com", "login.windows.net"}

// Allowlist decides which URLs the web host opens.
type Allowlist struct {
	policy reset.Policy
}

// NewAllowlist is the allow-list of a device under client policy p (its
// WebSignInAllowedURLs, ConfigureWebSignInAllowedUrls as policy.ParseDomainList
// produced it).
func NewAllowlist(p reset.Policy) Allowlist { return Allowlist{policy: p} }

// AllowsHost reports whether host (no port) may be opened.
func (a Allowlist) AllowsHost(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "" {
		return false
	}
	return slices.Contains(MicrosoftSignInHosts, h) || a.policy.AllowsHost(h)
}

// Allows reports whether the web host may request rawURL: an https URL
// without user information whose host AllowsHost allows. The port does not
// matter (the policy lists domains).
func (a Allowlist) Allows(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "https" || u.User != nil {
		return false
	}
	return a.AllowsHost(u.Hostname())
}

// Blocked is a request the web host refused.
type Blocked struct {
	URL string
	// Document is true for a navigation (the tab or a frame), which was
	// answered with the message page.
	Document bool
}

// Host is a guarded tab.
type Host struct {
	allow Allowlist

	mu      sync.Mutex
	blocked []Blocked
}

// Blocked returns the requests refused so far, in the order they were refused.
func (h *Host) Blocked() []Blocked {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.blocked)
}

// Guard makes the tab of the chromedp context ctx a web host for allow
// (starting the browser if it has not started). From its return, every
// request of the tab waits for the host's answer.
func Guard(ctx context.Context, allow Allowlist) (*Host, error) {
	h := &Host{allow: allow}
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*fetch.EventRequestPaused); ok {
			// A listener must not run commands; answer on another goroutine.
			go h.answer(ctx, e)
		}
	}); err != nil {
		return nil, err
	}
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{
		Patterns: []*fetch.RequestPattern{{URLPattern: "*", RequestStage: fetch.RequestStageRequest}},
	}); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *Host) answer(ctx context.Context, e *fetch.EventRequestPaused) {
	if h.allow.Allows(e.Request.URL) {
		_, _ = chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: e.RequestID})
		return
	}
	doc := e.ResourceType == network.ResourceTypeDocument
	h.mu.Lock()
	h.blocked = append(h.blocked, Blocked{URL: e.Request.URL, Document: doc})
	h.mu.Unlock()
	if !doc {
		_, _ = chromedp.Call(ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: e.RequestID, ErrorReason: network.ErrorReasonBlockedByClient})
		return
	}
	_, _ = chromedp.Call(ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{
		RequestID:    e.RequestID,
		ResponseCode: 200,
		ResponseHeaders: []*fetch.HeaderEntry{
			{Name: "Content-Type", Value: "text/html; charset=utf-8"},
			// The message page itself loads nothing and runs nothing.
			{Name: "Content-Security-Policy", Value: "default-src 'none'; style-src 'unsafe-inline'"},
			{Name: "Cache-Control", Value: "no-store"},
		},
		Body: []byte(messagePage),
	})
}

var messagePage = `<!doctype html><html><head><meta charset="utf-8"><title>` + html.EscapeString(Message) +
	`</title><style>body{font-family:sans-serif;margin:3em}</style></head><body><h1 id="webhost-blocked">` +
	html.EscapeString(Message) + `</h1></body></html>`

// Open guards the tab of ctx for allow and navigates it to startURL.
func Open(ctx context.Context, allow Allowlist, startURL string) (*Host, error) {
	h, err := Guard(ctx, allow)
	if err != nil {
		return nil, err
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(startURL)); err != nil {
		return h, err
	}
	return h, nil
}

// Start starts Chromium as o describes (internal/chromium: loopback host
// mapping, SPKI trust, no network prediction), guards its first tab for
// allow and opens startURL. It returns the tab's chromedp context, the
// host, and stop, which closes the browser; on error the browser is closed.
func Start(ctx context.Context, o chromium.Options, allow Allowlist, startURL string) (tab context.Context, h *Host, stop func(), err error) {
	actx, cancelA, err := chromium.NewAllocator(ctx, o)
	if err != nil {
		return nil, nil, nil, err
	}
	tab, cancelT := chromedp.NewContext(actx)
	stop = func() { cancelT(); cancelA() }
	if h, err = Open(tab, allow, startURL); err != nil {
		stop()
		return nil, nil, nil, fmt.Errorf("web host: %w", err)
	}
	return tab, h, stop, nil
}
