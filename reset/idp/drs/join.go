package drs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/hellosim/hellosim/internal/httpjson"
)

// JoinPath is the device registration service's device endpoint: a device
// joins the tenant with its TPM-bound key, authorised by a user's token
// with MFA, as an Azure AD join does. Entra's endpoint takes a certificate
// request and answers a device certificate; the simulated directory keeps
// the device key itself (a JWK) and answers the device ID, which is the
// device's own.
const JoinPath = "/EnrollmentServer/device/"

// Joiner is what the join endpoint needs of a directory; *idp.IdP
// satisfies it (idp.IdP.RegisterDevice says what it refuses).
type Joiner interface {
	RegisterDevice(ctx context.Context, token, deviceID string, pub crypto.PublicKey) error
}

// joinRequest is the body of a join.
type joinRequest struct {
	DeviceID  string          `json:"device_id"`
	DeviceKey jose.JSONWebKey `json:"device_key"`
}

// JoinHandler serves JoinPath for dir: POST, Authorization: Bearer, a JSON
// body {"device_id": GUID, "device_key": P-256 public JWK}; 201 and
// {"device_id"} when the device joined.
func JoinHandler(dir Joiner) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !postTo(w, r, JoinPath) {
			return
		}
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || token == "" || len(token) > maxBearerToken {
			writeError(w, &RefusalError{Status: http.StatusUnauthorized, Code: "invalid_token", Message: "a bearer token is required"})
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			writeError(w, errorFor(fmt.Errorf("%w: want application/json", errRequest)))
			return
		}
		var req joinRequest
		dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || !req.DeviceKey.Valid() || !req.DeviceKey.IsPublic() {
			writeError(w, errorFor(fmt.Errorf("%w: want {device_id, device_key (public JWK)}", errRequest)))
			return
		}
		if err := dir.RegisterDevice(r.Context(), token, req.DeviceID, req.DeviceKey.Key); err != nil {
			writeError(w, errorFor(err))
			return
		}
		httpjson.Write(w, http.StatusCreated, map[string]string{"device_id": strings.ToLower(req.DeviceID)})
	})
}

// JoinDevice joins the device deviceID with its key pub, authorised by
// token (a user's token with MFA). A refusal is a *RefusalError.
func (c *Client) JoinDevice(ctx context.Context, token, deviceID string, pub *ecdsa.PublicKey) error {
	body, err := json.Marshal(joinRequest{DeviceID: deviceID, DeviceKey: jose.JSONWebKey{Key: pub}})
	if err != nil {
		return fmt.Errorf("join device: %w", err)
	}
	base, _, _ := strings.Cut(c.endpoint, KeyPath)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+JoinPath, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("join device: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("join device: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("join device: %w", err)
	}
	if resp.StatusCode != http.StatusCreated {
		e := &RefusalError{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Code == "" {
			e.Code, e.Message = "bad_response", http.StatusText(resp.StatusCode)
		}
		return fmt.Errorf("join device: %w", e)
	}
	return nil
}
