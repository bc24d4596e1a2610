package dpop

import (
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"time"
)

// Fresh is Sign with a random 128-bit jti in place of c.JTI: every proof a
// client makes is new.
func Fresh(signer crypto.Signer, c Claims) (string, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("dpop: proof id: %w", err)
	}
	c.JTI = base64.RawURLEncoding.EncodeToString(jti[:])
	return Sign(signer, c)
}

// Authorize sends token on req as a DPoP-bound token (RFC 9449 §7.1):
// Authorization "DPoP <token>" and a DPoP header with a fresh proof signed
// by key, over req's method and URL (without query or fragment, as htu
// is), dated now, with the token's hash (ath).
func Authorize(req *http.Request, key crypto.Signer, token string, now time.Time) error {
	return authorize(req, key, token, now, "")
}

// AuthorizeReturnKey is Authorize whose proof also names the one-time
// return key the answer is to be sealed to (rkh), so that no one between
// the device and the service can swap it.
func AuthorizeReturnKey(req *http.Request, key crypto.Signer, token string, now time.Time, returnKey []byte) error {
	return authorize(req, key, token, now, Hash(returnKey))
}

func authorize(req *http.Request, key crypto.Signer, token string, now time.Time, rkh string) error {
	htu := *req.URL
	htu.RawQuery, htu.ForceQuery, htu.Fragment, htu.RawFragment = "", false, "", ""
	proof, err := Fresh(key, Claims{HTM: req.Method, HTU: htu.String(), IAT: now.Unix(), ATH: Hash([]byte(token)), RKH: rkh})
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "DPoP "+token)
	req.Header.Set("DPoP", proof)
	return nil
}
