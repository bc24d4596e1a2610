package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/hellosim/hellosim/internal/dpop"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/idp/drs"
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
// endpoint ("dpop", valid for idp.DeviceProofMaxAge).
func demoTokenHandler(dir *idp.IdP, dev *demoDevice) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			UPN      string `json:"upn"`
			Password string `json:"password"`
			Code     string `json:"code"`
			Resource string `json:"resource,omitempty"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 4<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			reply(w, http.StatusBadRequest, map[string]string{"error": "malformed_request"})
			return
		}
		if req.Resource != "" && req.Resource != idp.DRSResource {
			reply(w, http.StatusBadRequest, map[string]string{"error": "invalid_resource", "message": "resource: empty or " + idp.DRSResource})
			return
		}
		pending, err := dir.SignIn(r.Context(), req.UPN, req.Password)
		if err != nil {
			status, msg := http.StatusUnauthorized, errSignIn
			if errors.Is(err, idp.ErrLocked) {
				status, msg = http.StatusTooManyRequests, "too many failed sign-ins: try again later"
			}
			reply(w, status, map[string]string{"error": "sign_in_failed", "message": msg})
			return
		}
		if err := dev.bind(r.Context(), dir, pending); err != nil {
			reply(w, http.StatusInternalServerError, map[string]string{"error": "device_binding_failed"})
			return
		}
		token, err := pending.CompleteMFA(r.Context(), req.Code)
		if err != nil {
			status := http.StatusUnauthorized
			if errors.Is(err, idp.ErrLocked) {
				status = http.StatusTooManyRequests
			}
			reply(w, status, map[string]string{"error": "mfa_failed", "message": "the verification code is incorrect or expired"})
			return
		}
		if req.Resource == idp.DRSResource {
			if token, err = pending.DeviceToken(r.Context(), demoDeviceID, idp.DRSResource); err != nil {
				reply(w, http.StatusBadRequest, map[string]string{"error": "invalid_resource", "message": err.Error()})
				return
			}
			// The token is bound to the demo device's key: the
			// registration needs a DPoP proof of it, which the device
			// (here, this process) signs for the endpoint as the caller
			// names this server.
			scheme := "http"
			if r.TLS != nil {
				scheme = "https"
			}
			proof, err := dev.proof(token, scheme+"://"+r.Host+drs.KeyPath, dir.Now())
			if err != nil {
				reply(w, http.StatusInternalServerError, map[string]string{"error": "device_proof_failed"})
				return
			}
			reply(w, http.StatusOK, map[string]string{"access_token": token, "token_type": "DPoP", "dpop": proof})
			return
		}
		reply(w, http.StatusOK, map[string]string{"access_token": token, "token_type": "DPoP"})
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

// proof is the demo device's DPoP proof (RFC 9449) for POST to htu with
// token, dated now.
func (d *demoDevice) proof(token, htu string, now time.Time) (string, error) {
	return dpop.Fresh(d.key, dpop.Claims{HTM: http.MethodPost, HTU: htu, IAT: now.Unix(), ATH: dpop.Hash([]byte(token))})
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
