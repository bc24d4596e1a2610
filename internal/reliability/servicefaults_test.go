package reliability

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/service"
	"github.com/hellosim/hellosim/tpm"
)

// badService is a PIN reset service that holds the right private key and
// answers with real cryptography, but misbehaves in one way per test case.
type badService struct {
	priv  *protector.ServicePrivateKey
	keys  func(w http.ResponseWriter)                                                       // nil: a good key set
	reply func(w http.ResponseWriter, r *protector.Key, env *protector.Envelope, rk []byte) // nil: a good answer
	// hangKeys and hangRecover make the endpoint answer nothing until the
	// client gives up.
	hangKeys, hangRecover bool
}

func (b *badService) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	switch req.URL.Path {
	case service.PathKeys:
		if b.hangKeys {
			<-req.Context().Done()
			return
		}
		if b.keys != nil {
			b.keys(w)
			return
		}
		ks, err := protector.KeySet{Keys: []protector.ServiceKey{b.priv.Public()}}.MarshalJSON()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(ks)
	case service.PathRecover:
		body, _ := io.ReadAll(req.Body)
		env, rk, err := service.DecodeRecoverRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r, err := b.priv.Unwrap(env)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		defer r.Destroy()
		if b.hangRecover {
			<-req.Context().Done()
			return
		}
		if b.reply != nil {
			b.reply(w, r, env, rk)
			return
		}
		writeSealed(w, r, env, rk)
	default:
		http.NotFound(w, req)
	}
}

// sealedBody is the good answer: R sealed to the client's one-time key.
func sealedBody(r *protector.Key, env *protector.Envelope, rk []byte) []byte {
	sealed, err := protector.SealToReturnKey(rk, r, env)
	if err != nil {
		panic(err)
	}
	b, _ := json.Marshal(map[string]string{"sealed_key": base64.RawURLEncoding.EncodeToString(sealed)})
	return b
}

func writeSealed(w http.ResponseWriter, r *protector.Key, env *protector.Envelope, rk []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(sealedBody(r, env, rk))
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// failingDirectory is a directory that refuses, or hangs until the
// caller gives up.
type failingDirectory struct {
	err  error
	hang bool
}

func (d failingDirectory) RegisterKey(ctx context.Context, _, _ string, _ crypto.PublicKey) error {
	if d.hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return d.err
}

// TestServiceFaults puts a misbehaving PIN reset service in front of the
// real client (timeouts, server errors, truncated, malformed and oversize
// answers, a protector sealed to another key or for another envelope) and
// a failing directory behind the destructive reset. Each gives a typed
// error; the input container is unchanged, still unlocks with its PIN, and
// the TPM holds nothing more than before.
func TestServiceFaults(t *testing.T) {
	r := openFaulty(t)
	ctx := context.Background()
	priv, err := protector.GenerateServiceKey(protector.HPKEX25519)
	require.NoError(t, err)
	base := enrolled(t, r.tp, tpm.ECCP256, pin1, priv.Public())
	baseBytes, err := base.MarshalBinary()
	require.NoError(t, err)
	other, err := protector.NewReturnKey()
	require.NoError(t, err)
	defer other.Destroy()
	otherPriv, err := protector.GenerateServiceKey(protector.HPKEX25519)
	require.NoError(t, err)
	// A second container of the same user, so an answer can be sealed for
	// another envelope.
	sibling := enrolled(t, r.tp, tpm.ECCP256, pin1, priv.Public())

	type tc struct {
		name    string
		svc     *badService
		timeout time.Duration // http.Client timeout
		ctxWait time.Duration // context deadline
		want    []error       // the error matches all of these
		typed   bool          // and is a *service.Error
	}
	cases := []tc{
		{name: "client timeout", timeout: 150 * time.Millisecond, svc: &badService{hangRecover: true}, want: []error{service.ErrUnavailable}, typed: true},
		{name: "context deadline", ctxWait: 150 * time.Millisecond, svc: &badService{hangRecover: true}, want: []error{context.DeadlineExceeded}},
		{name: "key set times out", timeout: 150 * time.Millisecond, svc: &badService{hangKeys: true},
			want: []error{service.ErrUnavailable}, typed: true},
		{name: "500 without body", svc: &badService{reply: func(w http.ResponseWriter, _ *protector.Key, _ *protector.Envelope, _ []byte) {
			w.WriteHeader(http.StatusInternalServerError)
		}}, want: []error{service.ErrUnavailable}, typed: true},
		{name: "502 html", svc: &badService{reply: func(w http.ResponseWriter, _ *protector.Key, _ *protector.Envelope, _ []byte) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "<html><body>Bad gateway</body></html>")
		}}, want: []error{service.ErrUnavailable}, typed: true},
		{name: "503 retry after", svc: &badService{reply: func(w http.ResponseWriter, _ *protector.Key, _ *protector.Envelope, _ []byte) {
			w.Header().Set("Retry-After", "120")
			writeJSON(w, http.StatusServiceUnavailable, `{"error":"unavailable","message":"maintenance"}`)
		}}, want: []error{service.ErrUnavailable}, typed: true},
		{name: "key set 500", svc: &badService{keys: func(w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) }},
			want: []error{service.ErrUnavailable}, typed: true},
		{name: "truncated answer", svc: &badService{reply: func(w http.ResponseWriter, r *protector.Key, env *protector.Envelope, rk []byte) {
			b := sealedBody(r, env, rk)
			w.Header().Set("Content-Type", "application/json")
			w.Write(b[:len(b)/2])
		}}, want: []error{service.ErrBadResponse}, typed: true},
		{name: "connection cut mid-body", svc: &badService{reply: func(w http.ResponseWriter, r *protector.Key, env *protector.Envelope, rk []byte) {
			b := sealedBody(r, env, rk)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "4096")
			w.Write(b[:len(b)/2])
			panic(http.ErrAbortHandler)
		}}, want: []error{service.ErrUnavailable}, typed: true},
		{name: "truncated key set", svc: &badService{keys: func(w http.ResponseWriter) {
			ks, _ := protector.KeySet{Keys: []protector.ServiceKey{priv.Public()}}.MarshalJSON()
			w.Header().Set("Content-Type", "application/json")
			w.Write(ks[:len(ks)-7])
		}}, want: []error{service.ErrBadResponse}, typed: true},
		{name: "malformed json", svc: &badService{reply: func(w http.ResponseWriter, _ *protector.Key, _ *protector.Envelope, _ []byte) {
			writeJSON(w, http.StatusOK, `{"sealed_key": 12, "sealed_key": "x"`)
		}}, want: []error{service.ErrBadResponse}, typed: true},
		{name: "not base64", svc: &badService{reply: func(w http.ResponseWriter, _ *protector.Key, _ *protector.Envelope, _ []byte) {
			writeJSON(w, http.StatusOK, `{"sealed_key":"!!!not base64!!!"}`)
		}}, want: []error{service.ErrBadResponse}, typed: true},
		{name: "extra member", svc: &badService{reply: func(w http.ResponseWriter, r *protector.Key, env *protector.Envelope, rk []byte) {
			b := sealedBody(r, env, rk)
			writeJSON(w, http.StatusOK, strings.TrimSuffix(string(b), "}")+`,"protector":"AAAA"}`)
		}}, want: []error{service.ErrBadResponse}, typed: true},
		{name: "wrong content type", svc: &badService{reply: func(w http.ResponseWriter, r *protector.Key, env *protector.Envelope, rk []byte) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write(sealedBody(r, env, rk))
		}}, want: []error{service.ErrBadResponse}, typed: true},
		{name: "oversize answer", svc: &badService{reply: func(w http.ResponseWriter, _ *protector.Key, _ *protector.Envelope, _ []byte) {
			writeJSON(w, http.StatusOK, `{"sealed_key":"`+strings.Repeat("A", service.MaxResponseBytes)+`"}`)
		}}, want: []error{service.ErrBadResponse}, typed: true},
		{name: "empty 200", svc: &badService{reply: func(w http.ResponseWriter, _ *protector.Key, _ *protector.Envelope, _ []byte) {
			writeJSON(w, http.StatusOK, "")
		}}, want: []error{service.ErrBadResponse}, typed: true},
		{name: "sealed to another key", svc: &badService{reply: func(w http.ResponseWriter, r *protector.Key, env *protector.Envelope, _ []byte) {
			writeSealed(w, r, env, other.PublicKey())
		}}, want: []error{service.ErrBadResponse}, typed: true},
		{name: "sealed for another envelope", svc: &badService{reply: func(w http.ResponseWriter, r *protector.Key, _ *protector.Envelope, rk []byte) {
			writeSealed(w, r, sibling.Envelope(), rk)
		}}, want: []error{service.ErrBadResponse}, typed: true},
		{name: "another protector", svc: &badService{reply: func(w http.ResponseWriter, _ *protector.Key, env *protector.Envelope, rk []byte) {
			wrong, _ := protector.NewKey(nil)
			defer wrong.Destroy()
			writeSealed(w, wrong, env, rk)
		}}, want: []error{protector.ErrDecrypt}},
		{name: "key set with another key", svc: &badService{keys: func(w http.ResponseWriter) {
			ks, _ := protector.KeySet{Keys: []protector.ServiceKey{otherPriv.Public()}}.MarshalJSON()
			w.Header().Set("Content-Type", "application/json")
			w.Write(ks)
		}}, want: nil}, // not an error by itself: R' is wrapped to the key the service names
		{name: "empty key set", svc: &badService{keys: func(w http.ResponseWriter) {
			writeJSON(w, http.StatusOK, `{"keys":[]}`)
		}}, want: []error{service.ErrBadResponse}, typed: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.svc.priv = priv
			srv := httptest.NewServer(c.svc)
			defer srv.Close()
			hc := &http.Client{Timeout: c.timeout}
			client := service.NewClient(srv.URL, hc).WithDevice(anyDevice)
			rctx := ctx
			if c.ctxWait > 0 {
				var cancel context.CancelFunc
				rctx, cancel = context.WithTimeout(ctx, c.ctxWait)
				defer cancel()
			}
			out, err := reset.NonDestructive(rctx, reset.Env{TPM: r.tp, Service: client}, base, reset.Request{Token: "eyJhbGciOiJFUzI1NiJ9.e30.c2ln", NewPIN: pin3})
			if c.want == nil {
				require.NoError(t, err)
				require.NoError(t, unlockAndSign(ctx, r.tp, out, pin3))
			} else {
				require.Error(t, err)
				assert.Nil(t, out)
				for _, w := range c.want {
					assert.ErrorIs(t, err, w)
				}
				var se *service.Error
				if c.typed {
					assert.ErrorAs(t, err, &se, "a *service.Error")
				}
				assert.False(t, errors.Is(err, container.ErrWrongPIN), "a service fault is not a wrong PIN")
				assert.NotContains(t, err.Error(), pin3)
				t.Logf("%v", err)
			}
			after, err := base.MarshalBinary()
			require.NoError(t, err)
			assert.True(t, bytes.Equal(baseBytes, after), "the input container changed")
			require.NoError(t, unlockAndSign(ctx, r.tp, base, pin1), "the input container no longer unlocks")
			objs, _ := r.handles(t)
			assert.Equal(t, 1, len(objs), "objects left loaded: %s", hexHandles(objs))
			assert.Zero(t, rawLockoutCounter(t, r.raw))
		})
	}

	nvBefore, err := r.tp.Secrets(ctx)
	require.NoError(t, err)
	dirCases := []struct {
		name string
		dir  failingDirectory
		wait time.Duration
		want error
	}{
		{"directory refuses", failingDirectory{err: errors.New("directory: 503 service unavailable")}, 0, reset.ErrRegistration},
		{"directory hangs", failingDirectory{hang: true}, 150 * time.Millisecond, context.DeadlineExceeded},
	}
	for _, c := range dirCases {
		t.Run(c.name, func(t *testing.T) {
			rctx := ctx
			if c.wait > 0 {
				var cancel context.CancelFunc
				rctx, cancel = context.WithTimeout(ctx, c.wait)
				defer cancel()
			}
			out, err := reset.Destructive(rctx, reset.Env{TPM: r.tp, Directory: c.dir}, base, reset.Request{Token: "t", NewPIN: pin3})
			require.Error(t, err)
			assert.Nil(t, out, "a reset whose key was not registered returns no container")
			assert.ErrorIs(t, err, c.want)
			assert.ErrorIs(t, err, reset.ErrRegistration)
			after, err := base.MarshalBinary()
			require.NoError(t, err)
			assert.True(t, bytes.Equal(baseBytes, after), "the input container changed")
			require.NoError(t, unlockAndSign(ctx, r.tp, base, pin1))
			objs, _ := r.handles(t)
			assert.Equal(t, 1, len(objs), "objects left loaded: %s", hexHandles(objs))
			nv, err := r.tp.Secrets(ctx)
			require.NoError(t, err)
			assert.ElementsMatch(t, nvBefore, nv, "the refused reset left an NV index behind")
		})
	}
}
