package service

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hellosim/hellosim/internal/dpop"
	"github.com/hellosim/hellosim/internal/httpclient"
	"github.com/hellosim/hellosim/protector"
)

// Client limits.
const (
	// MaxResponseBytes bounds any response body the client reads.
	MaxResponseBytes = 64 << 10
	// DefaultClientTimeout applies when NewClient is given a nil *http.Client.
	DefaultClientTimeout = 30 * time.Second
)

// Client talks to a PIN reset service. It implements the reset.Service
// interface: ServiceKey for enrolment, Recover for a non-destructive reset.
// It is safe for concurrent use.
//
// The client sends the user's access token as a DPoP-bound token with a
// proof signed by the device key (WithDevice). The token is of no use
// without that key, but it still names the user and the envelope goes with
// it, so the client guards where both can go: it speaks https to any host and plain http only
// to a loopback host (a service on the same machine, or a test server), and
// it never follows a redirect. A redirect could carry the token, and the
// envelope with it, to a host the caller never named (RFC 6750 §5.3: "Always
// use TLS"; RFC 9110 §15.4: a client may re-send the request, Authorization
// included, to the new location).
type Client struct {
	base   *url.URL
	hc     *http.Client
	berr   error // from parsing the base URL; returned by every call
	keys   string
	recovr string
	device crypto.Signer    // the device key that signs DPoP proofs; nil: none
	now    func() time.Time // for proofs' iat
}

// WithDevice returns a copy of the client that proves possession of the
// device key with every recovery: a DPoP proof (RFC 9449) signed by key,
// the device's TPM-bound P-256 key (device.Device.Signer), over the
// request, the token's hash and the one-time return key's hash. The service
// releases a protector only with such a proof, by the key the token is
// bound to.
func (c *Client) WithDevice(key crypto.Signer) *Client {
	return httpclient.With(c, func(n *Client) { n.device = key })
}

// WithClock returns a copy of the client that dates its proofs by now
// (default time.Now): for tests whose service runs on a test clock.
func (c *Client) WithClock(now func() time.Time) *Client {
	return httpclient.With(c, func(n *Client) { n.now = now })
}

// ErrBadBaseURL matches the *BaseURLError a Client reports when its base URL
// was refused.
var ErrBadBaseURL = errors.New("pin reset service: base url refused")

// BaseURLError is a base URL NewClient refused: one that does not parse,
// has no host, carries credentials, a query or a fragment, uses a scheme
// other than http and https, or uses plain http for a host that is not
// loopback (the access token would cross the network in the clear). Reason
// says which; the URL itself is not repeated, since it could hold
// credentials.
type BaseURLError struct {
	Reason string
	// Insecure is set when the URL was refused only for plain http to a
	// host that is not loopback.
	Insecure bool
	Err      error // a parse error, if any
}

// Error says why the base URL was refused.
func (e *BaseURLError) Error() string {
	if e.Err != nil {
		return "pin reset service: bad base url: " + e.Reason + ": " + e.Err.Error()
	}
	return "pin reset service: bad base url: " + e.Reason
}

// Is makes errors.Is(err, ErrBadBaseURL) true.
func (e *BaseURLError) Is(target error) bool { return target == ErrBadBaseURL }

// Unwrap returns the parse error, if any.
func (e *BaseURLError) Unwrap() error { return e.Err }

// NewClient returns a client for the service at baseURL: "https://host", or
// "http://127.0.0.1:8080" for a service on a loopback address (127.0.0.0/8,
// ::1 or localhost); a path prefix is kept. Plain http to any other host is
// refused, as is any redirect the service answers with.
//
// A nil httpClient means a client with DefaultClientTimeout. A caller's
// client is copied, not changed: the copy shares its Transport, Jar and
// Timeout, and gets a CheckRedirect that refuses every redirect.
//
// A refused baseURL is a *BaseURLError (errors.Is ErrBadBaseURL), reported by
// Err and by every call.
func NewClient(baseURL string, httpClient *http.Client) *Client {
	u, err := parseBaseURL(baseURL)
	if err != nil {
		return &Client{berr: err}
	}
	return newClient(u, httpClient)
}

// newClient builds a client for a checked base URL.
func newClient(u *url.URL, httpClient *http.Client) *Client {
	prefix := strings.TrimSuffix(u.String(), "/")
	return &Client{base: u, hc: httpclient.New(httpClient, DefaultClientTimeout), keys: prefix + PathKeys, recovr: prefix + PathRecover, now: time.Now}
}

// parseBaseURL checks a base URL (httpclient.ParseBaseURL: http only to a
// loopback host).
func parseBaseURL(baseURL string) (*url.URL, error) {
	u, r := httpclient.ParseBaseURL(baseURL)
	if r != nil {
		var err error
		if r.Err != nil {
			err = stripURL(r.Err)
		}
		return nil, &BaseURLError{Reason: r.Reason, Insecure: r.Insecure, Err: err}
	}
	return u, nil
}

// Err reports whether the client's base URL was refused: nil, or the
// *BaseURLError every call returns.
func (c *Client) Err() error { return c.berr }

// NewInProcess returns a client that calls h (usually a *Service) directly,
// without a network: the same requests and responses, bytes and all, as over
// HTTP. For tests and single-process tools.
func NewInProcess(h http.Handler) *Client {
	// Nothing leaves the process, so the plain-http rule has nothing to
	// protect here.
	return newClient(&url.URL{Scheme: "http", Host: httpclient.InProcessHost}, httpclient.InProcess(h))
}

// KeySet fetches the service's published key set.
func (c *Client) KeySet(ctx context.Context) (protector.KeySet, error) {
	if c.berr != nil {
		return protector.KeySet{}, c.berr
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.keys, nil)
	if err != nil {
		return protector.KeySet{}, fmt.Errorf("pin reset service: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	body, err := c.do(ctx, req)
	if err != nil {
		return protector.KeySet{}, err
	}
	ks, err := protector.ParseKeySet(body)
	if err != nil {
		return protector.KeySet{}, &Error{Code: CodeBadResponse, Message: "key set does not parse", Err: err}
	}
	return ks, nil
}

// ServiceKey returns the service's current key: the one to wrap new
// protectors to.
func (c *Client) ServiceKey(ctx context.Context) (protector.ServiceKey, error) {
	ks, err := c.KeySet(ctx)
	if err != nil {
		return protector.ServiceKey{}, err
	}
	k, err := ks.Current()
	if err != nil {
		return protector.ServiceKey{}, &Error{Code: CodeBadResponse, Message: "key set has no current key", Err: err}
	}
	return k, nil
}

// Recover sends env with the access token, as a DPoP-bound token with a
// proof signed by the device key (WithDevice), and returns the PIN reset
// protector, which the service seals to a one-time key made for this call
// (and destroyed before Recover returns). The caller destroys the result.
// Without a device key nothing is sent (ErrNoDevice).
func (c *Client) Recover(ctx context.Context, token string, env *protector.Envelope) (*protector.Key, error) {
	if c.berr != nil {
		return nil, c.berr
	}
	if env == nil {
		return nil, errors.New("pin reset service: nil envelope")
	}
	if c.device == nil {
		return nil, ErrNoDevice
	}
	if !tokenChars(token) {
		// Refuse locally what could not be a compact JWT; it could also
		// break the header.
		return nil, &Error{Code: CodeInvalidToken, Message: "access token is not a compact JWT"}
	}
	rk, err := protector.NewReturnKey()
	if err != nil {
		return nil, fmt.Errorf("pin reset service: one-time key: %w", err)
	}
	defer rk.Destroy()
	body, err := encodeRecoverRequest(env, rk.PublicKey())
	if err != nil {
		return nil, fmt.Errorf("pin reset service: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.recovr, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("pin reset service: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if err := dpop.AuthorizeReturnKey(req, c.device, token, c.now(), rk.PublicKey()); err != nil {
		return nil, fmt.Errorf("pin reset service: sign the device proof: %w", err)
	}
	resp, err := c.do(ctx, req)
	if err != nil {
		return nil, err
	}
	sealed, err := DecodeRecoverResponse(resp)
	if err != nil {
		return nil, &Error{Code: CodeBadResponse, Message: "recover response does not parse", Err: err}
	}
	key, err := rk.Open(sealed, env)
	if err != nil {
		return nil, &Error{Code: CodeBadResponse, Message: "sealed protector does not open", Err: err}
	}
	return key, nil
}

// do sends req and returns the body of a 200 JSON response, or an *Error.
func (c *Client) do(ctx context.Context, req *http.Request) ([]byte, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("pin reset service: %w", ctx.Err())
		}
		return nil, &Error{Code: CodeUnavailable, Message: "request failed", Err: stripURL(err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		// Not followed (httpclient.New); and its body is not read, since
		// whatever answers with a redirect is not the service to believe.
		return nil, &Error{Status: resp.StatusCode, Code: CodeBadResponse, Message: "redirect refused"}
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if resp.StatusCode != http.StatusOK {
		e := &Error{Status: resp.StatusCode, Code: CodeUnavailable}
		if resp.StatusCode < 500 {
			e.Code = ""
		}
		if code, msg, ok := decodeErrorBody(body); ok && rerr == nil && len(body) <= MaxResponseBytes {
			e.Code, e.Message = sanitize(code, 64), sanitize(msg, 200)
		}
		if e.Code == "" {
			e.Code = "http_" + strconv.Itoa(resp.StatusCode)
		}
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
		return nil, e
	}
	switch {
	case rerr != nil:
		if ctx.Err() != nil {
			return nil, fmt.Errorf("pin reset service: %w", ctx.Err())
		}
		return nil, &Error{Status: resp.StatusCode, Code: CodeBadResponse, Message: "truncated response", Err: stripURL(rerr)}
	case len(body) > MaxResponseBytes:
		return nil, &Error{Status: resp.StatusCode, Code: CodeBadResponse, Message: "response too large"}
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, &Error{Status: resp.StatusCode, Code: CodeBadResponse, Message: "response is not application/json"}
	}
	return body, nil
}

// parseRetryAfter reads delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now).Round(time.Second)
	}
	return 0
}

// tokenChars reports whether t has only the characters of a compact JWS.
func tokenChars(t string) bool {
	if t == "" || len(t) > MaxTokenBytes {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// stripURL drops the request URL from a *url.Error: the URL is known to the
// caller, and keeping errors short keeps them readable.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
