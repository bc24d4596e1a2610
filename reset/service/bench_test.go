package service_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/internal/dpop"
	"github.com/hellosim/hellosim/internal/redistest"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset/service"
	"github.com/hellosim/hellosim/reset/service/state"
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

// BenchmarkRecoverRedisVsMemory is one instance of the service on a Redis
// store against the same instance on the in-memory store, side by side in
// one run: the two sides take turns, a batch of requests each, so that both
// see the same noise of a shared machine. "sequential" serves one request
// at a time (the latency a client sees); "concurrent" serves each batch
// with 8 requests in flight, as an instance behind a load balancer does,
// so that one request's wait for Redis overlaps another's cryptography
// (the instance's throughput). Each side reports its p50 and p99, its
// throughput (requests per second of serving time) and the ratio of the
// throughputs, and the latency and number of the Redis store's calls; ns/op
// is one request on each side plus the minting of their tokens. The rate
// limits are counted but never bind. It needs HELLOSIM_REDIS; Redis runs on the same machine and so
// takes its share of the same cores.
func BenchmarkRecoverRedisVsMemory(b *testing.B) {
	url := redistest.URL(b)
	for _, mode := range []struct {
		name     string
		inFlight int
	}{{"sequential", 1}, {"concurrent", 8}} {
		for _, sc := range benchSchemes {
			b.Run(mode.name+"/"+sc.name, func(b *testing.B) { benchRedisVsMemory(b, url, sc.s, mode.inFlight) })
		}
	}
}

func benchRedisVsMemory(b *testing.B, url string, scheme protector.Scheme, inFlight int) {
	w := newWorld(b)
	var admits []time.Duration
	var admitsMu sync.Mutex
	rs, err := state.NewRedis(url, state.RedisOptions{Prefix: redistest.Prefix(), Clock: w.clk.Now,
		Observe: func(op string, d time.Duration, err error) {
			admitsMu.Lock()
			admits = append(admits, d)
			admitsMu.Unlock()
		}})
	require.NoError(b, err)
	b.Cleanup(func() { rs.Close() })
	counted := service.RateLimit{Requests: 1 << 30, Per: time.Minute}
	mk := func(st state.Store) *service.Service {
		svc, err := service.New(service.Config{
			Verifier: mustVerifier(w.idp), Directory: w.idp, Clock: w.clk.Now, State: st,
			Keys: []protector.Unwrapper{w.keys[protector.HPKEX25519], w.keys[protector.HPKEXWing], w.keys[protector.RSAOAEP3072]},
			// Limits that never bind but are counted: every bucket is
			// drawn from, as in production (two store calls a request).
			RateLimit: counted, AddressLimit: counted, TenantLimit: counted,
			Audit: slog.New(slog.NewJSONHandler(io.Discard, nil)),
		})
		require.NoError(b, err)
		return svc
	}
	type side struct {
		name string
		svc  *service.Service
		lat  []time.Duration
		busy time.Duration // wall time spent serving
	}
	sides := []*side{{name: "memory", svc: mk(nil)}, {name: "redis", svc: mk(rs)}}
	env, r := w.alice.envelope(b, w.keys[scheme].Public())
	r.Destroy()
	const batch = 64
	var failed atomic.Value
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		n := min(batch, b.N-done)
		b.StopTimer()
		reqs, _ := benchRequests(b, w, env, 2*n)
		b.StartTimer()
		for j, sd := range sides {
			todo := reqs[j*n : (j+1)*n]
			lat := make([]time.Duration, n)
			var next atomic.Int64
			var wg sync.WaitGroup
			start := time.Now()
			for range inFlight {
				wg.Go(func() {
					bw := &benchWriter{}
					for k := int(next.Add(1) - 1); k < n; k = int(next.Add(1) - 1) {
						bw.h, bw.status = make(http.Header, 8), 0
						t0 := time.Now()
						sd.svc.ServeHTTP(bw, todo[k])
						lat[k] = time.Since(t0)
						if bw.status != http.StatusOK {
							failed.Store(fmt.Sprintf("%s: status %d", sd.name, bw.status))
						}
					}
				})
			}
			wg.Wait()
			sd.busy += time.Since(start)
			sd.lat = append(sd.lat, lat...)
		}
		if f := failed.Load(); f != nil {
			b.Fatal(f)
		}
	}
	b.StopTimer()
	var rate [2]float64
	for j, sd := range sides {
		rate[j] = float64(len(sd.lat)) / sd.busy.Seconds()
		slices.Sort(sd.lat)
		b.ReportMetric(float64(sd.lat[len(sd.lat)/2].Nanoseconds())/1e3, sd.name+"-p50-µs")
		b.ReportMetric(float64(sd.lat[len(sd.lat)*99/100].Nanoseconds())/1e3, sd.name+"-p99-µs")
		b.ReportMetric(rate[j], sd.name+"-req/s")
	}
	b.ReportMetric(rate[1]/rate[0], "redis/memory-throughput")
	slices.Sort(admits)
	b.ReportMetric(float64(admits[len(admits)/2].Nanoseconds())/1e3, "store-call-p50-µs")
	b.ReportMetric(float64(admits[len(admits)*99/100].Nanoseconds())/1e3, "store-call-p99-µs")
	b.ReportMetric(float64(len(admits))/float64(b.N), "store-calls/req")
}
