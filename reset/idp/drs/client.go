package drs

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hellosim/hellosim/internal/dpop"
	"github.com/hellosim/hellosim/internal/httpclient"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/keycred"
)

// Client registers Hello keys with a device registration service over
// HTTP: Entra's endpoint, or Handler. It implements reset.Directory, so
// container provisioning and destructive resets register their new login
// key through it.
type Client struct {
	endpoint string // with the api-version query
	hc       *http.Client
	device   crypto.Signer    // signs DPoP proofs; nil sends bearer tokens
	now      func() time.Time // dates the proofs
	// Token, when set, gives the bearer token for RegisterKey in place of
	// the one a reset passes, which is the PIN reset service's: Windows
	// asks the signed-in session for a separate device-bound DRS token
	// (Pending.DeviceToken with DRSResource).
	Token func(ctx context.Context) (string, error)
}

// DefaultTimeout bounds one registration when no *http.Client is given.
const DefaultTimeout = 30 * time.Second

// NewClient returns a client for the service at baseURL (for Entra,
// "https://enterpriseregistration.windows.net"). baseURL must be https, or
// http to a loopback host ("localhost" or a literal loopback address: the
// rule of every client of the module). hc nil means a client with
// DefaultTimeout; redirects are never followed. A refused baseURL matches
// idp.ErrInvalid.
func NewClient(baseURL string, hc *http.Client) (*Client, error) {
	u, r := httpclient.ParseBaseURL(baseURL)
	if r != nil {
		return nil, fmt.Errorf("drs client: %w: base url: %s", idp.ErrInvalid, r.Reason)
	}
	return newClient(strings.TrimSuffix(u.String(), "/"), httpclient.New(hc, DefaultTimeout)), nil
}

// NewInProcess returns a client that calls h (a Handler) directly,
// with the same requests and answers as over HTTP.
func NewInProcess(h http.Handler) *Client {
	return newClient("http://"+httpclient.InProcessHost, httpclient.InProcess(h))
}

func newClient(base string, hc *http.Client) *Client {
	return &Client{endpoint: base + KeyPath + "?api-version=" + APIVersion, hc: hc, now: time.Now}
}

// WithDevice returns a copy of c that sends its tokens as DPoP-bound ones
// (RFC 9449), each request with a fresh proof signed by key: the device
// key (device.Device's Signer) that the sign-in was bound to. The
// service takes a token bound to a device key only so.
func (c *Client) WithDevice(key crypto.Signer) *Client {
	return httpclient.With(c, func(n *Client) { n.device = key })
}

// WithClock returns a copy of c that dates its DPoP proofs with now (for
// a directory on a simulated clock).
func (c *Client) WithClock(now func() time.Time) *Client {
	return httpclient.With(c, func(n *Client) { n.now = now })
}

// RegisterHelloKey sends pub as kngc with token and returns the service's
// answer. A refusal is an *RefusalError matching the idp sentinel of its code.
// The answer's kid must be the key's identifier.
func (c *Client) RegisterHelloKey(ctx context.Context, token string, pub crypto.PublicKey) (Result, error) {
	blob, err := keycred.MarshalPublicKey(pub)
	if err != nil {
		return Result{}, fmt.Errorf("register hello key: %w: %w", idp.ErrUnsupportedKey, err)
	}
	body, err := json.Marshal(map[string]string{"kngc": base64.StdEncoding.EncodeToString(blob)})
	if err != nil {
		return Result{}, fmt.Errorf("register hello key: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return Result{}, fmt.Errorf("register hello key: %w", err)
	}
	if c.device != nil {
		if err := dpop.Authorize(req, c.device, token, c.now()); err != nil {
			return Result{}, fmt.Errorf("register hello key: DPoP proof: %w", err)
		}
	} else {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return Result{}, fmt.Errorf("register hello key: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return Result{}, fmt.Errorf("register hello key: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		e := &RefusalError{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Code == "" {
			e.Code, e.Message = "bad_response", http.StatusText(resp.StatusCode)
		}
		return Result{}, fmt.Errorf("register hello key: %w", e)
	}
	var res Result
	if err := json.Unmarshal(data, &res); err != nil || res.KID == "" || res.UPN == "" {
		return Result{}, fmt.Errorf("register hello key: %w", &RefusalError{Status: resp.StatusCode, Code: "bad_response", Message: "answer is not {kid, upn}"})
	}
	if res.KID != keycred.Identifier(blob) {
		return Result{}, fmt.Errorf("register hello key: %w", &RefusalError{Status: resp.StatusCode, Code: "bad_response", Message: "kid names another key"})
	}
	return res, nil
}

// RegisterKey registers pub (reset.Directory): with c.Token's token when
// set, else with token. keyID, the container's NgcKeyId, is not part of
// the protocol: the service names the key by its kid.
func (c *Client) RegisterKey(ctx context.Context, token, keyID string, pub crypto.PublicKey) error {
	if c.Token != nil {
		t, err := c.Token(ctx)
		if err != nil {
			return fmt.Errorf("register key %s: device registration token: %w", keyID, err)
		}
		token = t
	}
	if _, err := c.RegisterHelloKey(ctx, token, pub); err != nil {
		return fmt.Errorf("register key %s: %w", keyID, err)
	}
	return nil
}
