package drs_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hellosim/hellosim/reset/idp/drs"
	"github.com/hellosim/hellosim/reset/keycred"
)

// FuzzDRSKeyRegistration sends arbitrary bodies, with a valid DRS token, to
// the registration endpoint: every answer is 200 with {kid, upn} or a JSON
// error, never a panic or a 5xx.
func FuzzDRSKeyRegistration(f *testing.F) {
	handler, token := fuzzDRS(f)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	blob, err := keycred.MarshalPublicKey(&key.PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(`{"kngc":"` + base64.StdEncoding.EncodeToString(blob) + `"}`)
	f.Add(`{"kngc":""}`)
	f.Add(`{"kngc":"UlNBMQ=="}`)
	f.Add(`{}`)
	f.Add(`[`)
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, drs.KeyPath+"?api-version=1.0", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q", rec.Code, body)
		}
		var out map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("answer is not JSON: %q", rec.Body.String())
		}
		if rec.Code == http.StatusOK {
			var in struct{ KNGC string }
			if json.Unmarshal([]byte(body), &in) != nil {
				t.Fatalf("accepted a body that is not JSON: %q", body)
			}
			blob, err := base64.StdEncoding.DecodeString(in.KNGC)
			if err != nil || out["kid"] != keycred.Identifier(blob) {
				t.Fatalf("accepted %q with kid %q", body, out["kid"])
			}
		}
	})
}

// fuzzDRS makes a directory with alice and a joined device, and a
// device-bound DRS token with ngcmfa for her.
func fuzzDRS(f *testing.F) (http.Handler, string) {
	f.Helper()
	w := newWorld(f)
	return drs.Handler(w.p), w.token(f)
}
