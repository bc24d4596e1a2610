package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/hellosim/hellosim/internal/dpop"
	"github.com/hellosim/hellosim/internal/httpjson"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/idp/drs"
	"github.com/hellosim/hellosim/reset/service"
)

// demoDeviceID names the demonstration's device object: the device the
// demo envelope is bound to and demo sign-ins are bound to.
const demoDeviceID = "d3b07384-d9a0-4c9b-8f1e-5e6a7b8c9d0e"

// demoDevice stands in for the device of a real reset: its key (a P-256
// key in this process; a TPM key on a device) signs the DPoP proofs the
// service asks for. Demo sign-ins are bound to it.
type demoDevice struct {
	key *ecdsa.PrivateKey
}

func newDemoDevice() (*demoDevice, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &demoDevice{key: k}, nil
}

// errSignIn is the one answer to a sign-in that failed on the user name or
// the password: an unknown user, a wrong password and a disabled account
// are told apart by neither message nor status (the directory runs the
// password hash against a dummy for unknown users, so not by time either).
const errSignIn = "the user name or password is incorrect"

// demoTokenHandler signs a user in with password and TOTP code on the demo
// device and answers {"access_token": "..."}, a token bound to the device:
// the demonstration's stand-in for the Azure AD sign-in pages a device
// shows during a reset. With "resource" set to the device registration
// service's, the token is that service's, for the same device (with
// ngcmfa): the one a Hello key registration needs, bound to the demo
// device's key, with a DPoP proof of that key for the registration
// endpoint ("dpop", valid for idp.DeviceProofMaxAge). With "return_key"
// (base64url, the public half of the caller's one-time X25519 key) the
// answer carries the device's proof for one POST /v1/recover that names
// that key ("dpop"), so a recovery can be made by hand with curl: the
// device signs what a device signs, and nothing else.
func demoTokenHandler(dir *idp.IdP, dev *demoDevice) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			UPN      string `json:"upn"`
			Password string `json:"password"`
			Code     string `json:"code"`
			Resource string `json:"resource,omitempty"`
			// ReturnKey asks for a recovery proof naming this key.
			ReturnKey string `json:"return_key,omitempty"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 4<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			httpjson.Write(w, http.StatusBadRequest, map[string]string{"error": "malformed_request"})
			return
		}
		if req.Resource != "" && req.Resource != idp.DRSResource {
			httpjson.Write(w, http.StatusBadRequest, map[string]string{"error": "invalid_resource", "message": "resource: empty or " + idp.DRSResource})
			return
		}
		var returnKey []byte
		if req.ReturnKey != "" {
			var err error
			if returnKey, err = base64.RawURLEncoding.DecodeString(req.ReturnKey); err != nil || len(returnKey) != 32 || req.Resource != "" {
				httpjson.Write(w, http.StatusBadRequest, map[string]string{"error": "invalid_return_key",
					"message": "return_key: base64url of a 32-byte X25519 public key, without resource"})
				return
			}
		}
		pending, err := dir.SignIn(r.Context(), req.UPN, req.Password)
		if err != nil {
			status, msg := http.StatusUnauthorized, errSignIn
			if errors.Is(err, idp.ErrLocked) {
				status, msg = http.StatusTooManyRequests, "too many failed sign-ins: try again later"
			}
			httpjson.Write(w, status, map[string]string{"error": "sign_in_failed", "message": msg})
			return
		}
		if err := dev.bind(r.Context(), dir, pending); err != nil {
			httpjson.Write(w, http.StatusInternalServerError, map[string]string{"error": "device_binding_failed"})
			return
		}
		token, err := pending.CompleteMFA(r.Context(), req.Code)
		if err != nil {
			status := http.StatusUnauthorized
			if errors.Is(err, idp.ErrLocked) {
				status = http.StatusTooManyRequests
			}
			httpjson.Write(w, status, map[string]string{"error": "mfa_failed", "message": "the verification code is incorrect or expired"})
			return
		}
		if req.Resource == idp.DRSResource {
			if token, err = pending.DeviceToken(r.Context(), demoDeviceID, idp.DRSResource); err != nil {
				httpjson.Write(w, http.StatusBadRequest, map[string]string{"error": "invalid_resource", "message": err.Error()})
				return
			}
			// The token is bound to the demo device's key: the
			// registration needs a DPoP proof of it, which the device
			// (here, this process) signs for the endpoint as the caller
			// names this server.
			replyWithProof(w, r, dev, token, drs.KeyPath, nil, dir.Now())
			return
		}
		if returnKey != nil {
			replyWithProof(w, r, dev, token, service.PathRecover, returnKey, dir.Now())
			return
		}
		httpjson.Write(w, http.StatusOK, map[string]string{"access_token": token, "token_type": "DPoP"})
	})
}

// bind records the demo device for the signing-in user (once) and binds the
// sign-in to it.
func (d *demoDevice) bind(ctx context.Context, dir *idp.IdP, p *idp.Pending) error {
	u, err := p.User()
	if err != nil {
		return err
	}
	if err := dir.AddDeviceKey(u.TenantID, u.ObjectID, demoDeviceID, &d.key.PublicKey); err != nil {
		return err
	}
	proof, err := dir.DeviceProof(d.key, u.TenantID, dir.Now())
	if err != nil {
		return err
	}
	return p.BindDevice(ctx, demoDeviceID, proof)
}

// replyWithProof answers token with the demo device's proof for one POST to
// path on this server, as the caller names it, naming returnKey when it is
// not nil.
func replyWithProof(w http.ResponseWriter, r *http.Request, dev *demoDevice, token, path string, returnKey []byte, now time.Time) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	c := dpop.Claims{HTM: http.MethodPost, HTU: scheme + "://" + r.Host + path, IAT: now.Unix(), ATH: dpop.Hash([]byte(token))}
	if returnKey != nil {
		c.RKH = dpop.Hash(returnKey)
	}
	proof, err := dpop.Fresh(dev.key, c)
	if err != nil {
		httpjson.Write(w, http.StatusInternalServerError, map[string]string{"error": "device_proof_failed"})
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]string{"access_token": token, "token_type": "DPoP", "dpop": proof})
}
