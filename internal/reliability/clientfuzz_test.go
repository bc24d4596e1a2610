package reliability

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset/service"
)

// FuzzServiceClientResponse answers the real service client with arbitrary
// status, content type, Retry-After and body, for both of its calls. Every
// answer but a well-formed one is a *service.Error; the client never panics
// and never returns a protector it could not open. Seeds: the service's
// response test vectors and the crasher corpus.
func FuzzServiceClientResponse(f *testing.F) {
	for _, name := range []string{"response-valid.json", "response-error.json", "response-trailing.json"} {
		if b, err := os.ReadFile(filepath.Join("../../reset/service/testdata", name)); err == nil {
			f.Add(uint16(200), "application/json", "", b)
			f.Add(uint16(503), "application/json", "30", b)
			f.Add(uint16(429), "application/json; charset=utf-8", "Wed, 21 Oct 2015 07:28:00 GMT", b)
		}
	}
	if b, err := os.ReadFile("../../protector/testdata/keyset.json"); err == nil {
		f.Add(uint16(200), "application/json", "", b)
	}
	for _, b := range corpus(f) {
		f.Add(uint16(200), "application/json", "", b)
	}
	env := hostileEnvelope(f)
	f.Fuzz(func(t *testing.T, status uint16, ctype, retry string, body []byte) {
		if status < 100 || status > 999 {
			status = 200
		}
		h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", ctype)
			w.Header().Set("Retry-After", retry)
			w.WriteHeader(int(status))
			w.Write(body)
		})
		c := service.NewInProcess(h).WithDevice(anyDevice)
		ctx := context.Background()
		k, err := c.Recover(ctx, "eyJhbGciOiJFUzI1NiJ9.e30.c2ln", env)
		if err == nil {
			k.Destroy()
			t.Fatal("a protector from an arbitrary answer")
		}
		var se *service.Error
		if !errors.As(err, &se) {
			t.Fatalf("Recover: untyped error %T: %v", err, err)
		}
		if se.RetryAfter < 0 {
			t.Fatalf("negative Retry-After %v", se.RetryAfter)
		}
		if _, err := c.ServiceKey(ctx); err != nil && !errors.As(err, &se) {
			t.Fatalf("ServiceKey: untyped error %T: %v", err, err)
		}
		if _, err := c.KeySet(ctx); err == nil {
			if _, err := protector.ParseKeySet(body); err != nil {
				t.Fatalf("KeySet accepted what ParseKeySet refuses: %v", err)
			}
		}
	})
}
