// Package httpclient is the plumbing every HTTP client of the module
// shares: which base URLs a client may send a token to, an http.Client
// that never follows a redirect, and a transport that serves an
// http.Handler in process.
//
// # The loopback rule
//
// A client sends access tokens, so it speaks https to any host and plain
// http only to a loopback host: "localhost" (in any case) or a literal
// loopback address (127.0.0.0/8, ::1, or 127.0.0.0/8 mapped into IPv6).
// Other names are not resolved: what a name resolves to can change between
// the check and the request.
package httpclient

import (
	"bytes"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Refusal says why ParseBaseURL refused a base URL. It is not an error:
// each client reports it in its own error type. Reason never repeats the
// URL, which could hold credentials.
type Refusal struct {
	Reason string
	// Insecure is set when the URL was refused only for plain http to a
	// host that is not loopback.
	Insecure bool
	Err      error // a parse error, if any
}

// ParseBaseURL checks a client's base URL: http or https, a host, nothing
// else in the authority, no query or fragment, and http only to a loopback
// host. A path prefix is kept.
func ParseBaseURL(raw string) (*url.URL, *Refusal) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, &Refusal{Reason: "does not parse", Err: err}
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, &Refusal{Reason: "scheme must be https (or http to a loopback host)"}
	case u.Host == "" || u.Hostname() == "":
		return nil, &Refusal{Reason: "no host"}
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, &Refusal{Reason: "must not carry credentials, query or fragment"}
	case u.Scheme == "http" && !Loopback(u.Hostname()):
		return nil, &Refusal{Reason: "plain http is allowed only to a loopback host; use https", Insecure: true}
	}
	return u, nil
}

// Loopback reports whether host is "localhost" or a literal loopback
// address (the package's loopback rule).
func Loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return a.Unmap().IsLoopback()
}

// New returns a copy of hc (nil: a client with timeout) that never follows
// a redirect: the 3xx answer comes back to the caller. A redirect could
// carry the token to a host the caller never named (RFC 9110 §15.4: a
// client may re-send the request, Authorization included). The copy shares
// hc's Transport, Jar and Timeout.
func New(hc *http.Client, timeout time.Duration) *http.Client {
	var c http.Client
	if hc != nil {
		c = *hc
	} else {
		c.Timeout = timeout
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// With returns a copy of *c with change applied to it, leaving *c as it
// was: the body of a client's With methods (a copy that signs with a
// device key, one on another clock).
func With[C any](c *C, change func(n *C)) *C {
	n := *c
	change(&n)
	return &n
}

// InProcessHost is the host of the base URL of a client that calls a
// handler in process.
const InProcessHost = "in-process"

// InProcess returns a client that serves every request with h in the
// calling goroutine, without a network: the same requests and answers,
// bytes and all, as over HTTP. Redirects are not followed.
func InProcess(h http.Handler) *http.Client {
	return New(&http.Client{Transport: handlerTransport{h}}, 0)
}

// handlerTransport is an http.RoundTripper that serves requests with an
// http.Handler.
type handlerTransport struct{ h http.Handler }

// RoundTrip serves req with the handler.
func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		defer req.Body.Close()
	}
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	in := req.Clone(req.Context())
	in.RequestURI = req.URL.RequestURI()
	in.RemoteAddr = InProcessHost
	if in.Body == nil {
		in.Body = http.NoBody
	}
	rec := &recorder{header: make(http.Header)}
	t.h.ServeHTTP(rec, in)
	if rec.status == 0 {
		rec.WriteHeader(http.StatusOK)
	}
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	return &http.Response{
		Status:        strconv.Itoa(rec.status) + " " + http.StatusText(rec.status),
		StatusCode:    rec.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        rec.sent,
		Body:          io.NopCloser(bytes.NewReader(rec.body.Bytes())),
		ContentLength: int64(rec.body.Len()),
		Request:       req,
	}, nil
}

// recorder is a minimal http.ResponseWriter. Header changes after
// WriteHeader are not sent, as on the wire.
type recorder struct {
	header http.Header
	sent   http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status != 0 {
		return
	}
	r.status = code
	r.sent = r.header.Clone()
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	return r.body.Write(p)
}
