package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/hellosim/hellosim/reset/idp"
)

// demoTokenHandler signs a user in with password and TOTP code and answers
// {"access_token": "..."}: the demonstration's stand-in for the Azure AD
// sign-in pages a device shows during a reset. With "resource" set to the
// device registration service's, the token is that service's, bound to the
// demo device deviceID (with ngcmfa): the one a Hello key registration
// needs.
func demoTokenHandler(dir *idp.IdP, deviceID string) http.Handler {
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
			reply(w, signInStatus(err), map[string]string{"error": "sign_in_failed", "message": err.Error()})
			return
		}
		token, err := pending.CompleteMFA(r.Context(), req.Code)
		if err != nil {
			reply(w, signInStatus(err), map[string]string{"error": "mfa_failed", "message": err.Error()})
			return
		}
		if req.Resource == idp.DRSResource {
			if token, err = pending.DeviceToken(r.Context(), deviceID, idp.DRSResource); err != nil {
				reply(w, http.StatusBadRequest, map[string]string{"error": "invalid_resource", "message": err.Error()})
				return
			}
		}
		reply(w, http.StatusOK, map[string]string{"access_token": token, "token_type": "Bearer"})
	})
}

func signInStatus(err error) int {
	if errors.Is(err, idp.ErrLocked) {
		return http.StatusTooManyRequests
	}
	return http.StatusUnauthorized
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
