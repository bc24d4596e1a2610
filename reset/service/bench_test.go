package service_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/internal/dpop"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset/service"
)

// benchWriter is the cheapest http.ResponseWriter that still keeps the
// status, so the handler's own costs are what is measured.
type benchWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) WriteHeader(code int)        { w.status = code }
func (w *benchWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// benchRequests prepares n recover requests for alice, each with its own
// token (a replayed jti would be refused).
func benchRequests(b *testing.B, w *world, env *protector.Envelope, n int) ([]*http.Request, []string) {
	body, rk := requestBody(b, env)
	rk.Destroy()
	reqs := make([]*http.Request, n)
	toks := make([]string, n)
	for i := range reqs {
		toks[i] = w.alice.token(b)
		r, err := http.NewRequest(http.MethodPost, w.srv.URL+service.PathRecover, bytes.NewReader(body))
		require.NoError(b, err)
		r.RemoteAddr = "127.0.0.1:1"
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "DPoP "+toks[i])
		r.Header.Set("DPoP", w.proofFor(b, http.MethodPost, service.PathRecover, toks[i], body))
		reqs[i] = r
	}
	return reqs, toks
}

var benchSchemes = []struct {
	name string
	s    protector.Scheme
}{{"x25519", protector.HPKEX25519}, {"wing", protector.HPKEXWing}, {"rsa3072", protector.RSAOAEP3072}}

// BenchmarkRecoverHandler measures POST /v1/recover through ServeHTTP, with
// a JSON audit log to io.Discard and no rate limit: every check, the
// unwrap, the seal to the client's key and the response.
func BenchmarkRecoverHandler(b *testing.B) {
	for _, sc := range benchSchemes {
		b.Run(sc.name, func(b *testing.B) {
			w := newWorld(b, func(c *service.Config) {
				c.RateLimit = service.RateLimit{Unlimited: true}
				c.AddressLimit = service.RateLimit{Unlimited: true}
				c.TenantLimit = service.RateLimit{Unlimited: true}
				c.Audit = slog.New(slog.NewJSONHandler(io.Discard, nil))
			})
			env, r := w.alice.envelope(b, w.keys[sc.s].Public())
			r.Destroy()
			const batch = 256
			var reqs []*http.Request
			bw := &benchWriter{}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if len(reqs) == 0 {
					b.StopTimer()
					reqs, _ = benchRequests(b, w, env, batch)
					b.StartTimer()
				}
				req := reqs[0]
				reqs = reqs[1:]
				bw.h, bw.status = make(http.Header, 8), 0
				w.svc.ServeHTTP(bw, req)
				if bw.status != http.StatusOK {
					b.Fatalf("status %d", bw.status)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

// BenchmarkRecoverCrypto is the ceiling: only the cryptography a recover
// request needs — verify the token's ES256 signature and claims, verify the
// DPoP proof (ES256 under its JWK, thumbprint, htm, htu, iat, ath, rkh),
// unwrap the envelope, seal the protector to the client's one-time key.
func BenchmarkRecoverCrypto(b *testing.B) {
	for _, sc := range benchSchemes {
		b.Run(sc.name, func(b *testing.B) {
			w := newWorld(b)
			sk := w.keys[sc.s]
			env, r := w.alice.envelope(b, sk.Public())
			r.Destroy()
			rk, err := protector.NewReturnKey()
			require.NoError(b, err)
			defer rk.Destroy()
			pub := rk.PublicKey()
			tok := w.alice.token(b)
			htu := w.srv.URL + service.PathRecover
			proof, err := dpop.Sign(w.alice.device, dpop.Claims{HTM: "POST", HTU: htu, IAT: w.clk.Now().Unix(), JTI: "bench",
				ATH: dpop.Hash([]byte(tok)), RKH: dpop.Hash(pub)})
			require.NoError(b, err)
			v := mustVerifier(w.idp)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c, err := v.Verify(ctx, tok)
				if err != nil {
					b.Fatal(err)
				}
				pr, err := dpop.Parse(proof)
				if err != nil {
					b.Fatal(err)
				}
				if err := pr.Check(dpop.Expect{HTM: "POST", HTU: htu, ATH: dpop.Hash([]byte(tok)), RKH: dpop.Hash(pub), JKT: c.JKT,
					Now: w.clk.Now(), MaxAge: service.DefaultProofMaxAge, Skew: service.DefaultSkew}); err != nil {
					b.Fatal(err)
				}
				k, err := sk.Unwrap(env)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := protector.SealToReturnKey(pub, k, env); err != nil {
					b.Fatal(err)
				}
				k.Destroy()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}
