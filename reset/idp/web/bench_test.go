package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
)

// latencies collects request times and reports p50, p99 and requests per
// second (over the wall time of the timed part).
type latencies struct {
	mu          sync.Mutex
	d           []time.Duration
	first, last time.Time // the span of the requests timed
}

// since records a request that started at t0 and ended now.
func (l *latencies) since(t0 time.Time) {
	now := time.Now()
	l.mu.Lock()
	l.d = append(l.d, now.Sub(t0))
	if l.first.IsZero() || t0.Before(l.first) {
		l.first = t0
	}
	if now.After(l.last) {
		l.last = now
	}
	l.mu.Unlock()
}

// report reports p50, p99 and requests per second; wall is the time the
// requests took, or 0 for the span from the first to the last.
func (l *latencies) report(b *testing.B, wall time.Duration) {
	if wall == 0 {
		wall = l.last.Sub(l.first)
	}
	slices.Sort(l.d)
	if len(l.d) == 0 {
		return
	}
	q := func(p float64) float64 { return float64(l.d[int(p*float64(len(l.d)-1))]) / 1e6 }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	if wall > 0 {
		b.ReportMetric(float64(len(l.d))/wall.Seconds(), "req/s")
	}
}

// benchWorld is a world for benchmarks: the same TLS server on loopback,
// onboarded, with keep-alive connections.
func benchWorld(b *testing.B) *world {
	w := newWorld(b)
	w.onboard()
	return w
}

// refreshToken signs the user in through the pages and redeems the code:
// a refresh token to start a chain from.
func (w *world) refreshToken(client *http.Client) string {
	verifier := oauth2.GenerateVerifier()
	code := w.codeFor(verifier)
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {identity.PINResetClientAppID},
		"code": {code}, "redirect_uri": {loopback}, "code_verifier": {verifier}}
	_, body := postJSON(client, w.tenantURL("/oauth2/v2.0/token"), form)
	rt, _ := body["refresh_token"].(string)
	return rt
}

func postJSON(c *http.Client, u string, form url.Values) (int, map[string]any) {
	resp, err := c.Post(u, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// BenchmarkTokenRefresh: refresh_token grants on loopback over TLS, each
// rotating the token, from parallel clients (one chain each). "bearer" is
// a plain refresh; "dpop" is the PIN reset client's, bound to the device
// key: each request carries a fresh proof the server verifies.
func BenchmarkTokenRefresh(b *testing.B) {
	for _, mode := range []string{"bearer", "dpop"} {
		b.Run(mode, func(b *testing.B) {
			w := benchWorld(b)
			client := w.client
			if mode == "dpop" {
				client = w.deviceClient()
			}
			var lat latencies
			const par = 4 // more clients than cores: the server is the bottleneck
			b.SetParallelism(par)
			// The sign-ins first, one at a time (each moves the clock a
			// TOTP step), none while proofs are in flight.
			chains := make(chan string, par*runtime.GOMAXPROCS(0))
			for range cap(chains) {
				chains <- w.refreshToken(client)
			}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				rt := <-chains
				for pb.Next() {
					t0 := time.Now()
					status, body := postJSON(client, w.tenantURL("/oauth2/v2.0/token"), url.Values{"grant_type": {"refresh_token"},
						"client_id": {identity.PINResetClientAppID}, "refresh_token": {rt}})
					lat.since(t0)
					next, _ := body["refresh_token"].(string)
					if status != http.StatusOK || next == "" {
						b.Errorf("refresh: %d %v", status, body)
						return
					}
					rt = next
				}
			})
			lat.report(b, 0)
		})
	}
}

// BenchmarkCodeExchange: the authorization_code grant with PKCE on
// loopback over TLS; only the exchange is timed (each code comes from a
// sign-in through the pages, outside the timer).
func BenchmarkCodeExchange(b *testing.B) {
	w := benchWorld(b)
	var lat latencies
	var timed time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		verifier := oauth2.GenerateVerifier()
		code := w.codeFor(verifier)
		b.StartTimer()
		t0 := time.Now()
		status, body := postJSON(w.client, w.tenantURL("/oauth2/v2.0/token"), url.Values{"grant_type": {"authorization_code"},
			"client_id": {identity.PINResetClientAppID}, "code": {code}, "redirect_uri": {loopback}, "code_verifier": {verifier}})
		timed += time.Since(t0)
		lat.since(t0)
		if status != http.StatusOK {
			b.Fatalf("exchange: %d %v", status, body)
		}
	}
	lat.report(b, timed)
}

// BenchmarkSignInPage: the authorize request that answers the sign-in
// page, unloaded (one client at a time).
func BenchmarkSignInPage(b *testing.B) {
	w := benchWorld(b)
	u := w.authURL(url.Values{"code_challenge": {challengeOf(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}})
	var lat latencies
	var timed time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		resp, err := w.client.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		var buf [4096]byte
		for {
			if _, err := resp.Body.Read(buf[:]); err != nil {
				break
			}
		}
		resp.Body.Close()
		timed += time.Since(t0)
		lat.since(t0)
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("sign-in page: %d", resp.StatusCode)
		}
	}
	lat.report(b, timed)
}

// BenchmarkPasswordSignIn: the password check a sign-in page's POST runs,
// with the directory's default Argon2id parameters (RFC 9106's second
// option: t=3, 64 MiB, p=4) and the light ones (OWASP's minimum, which
// examples/directory uses): this, not the HTTP, sets the cost of a
// password sign-in.
func BenchmarkPasswordSignIn(b *testing.B) {
	for name, params := range map[string]idp.Argon2Params{"default": idp.DefaultArgon2Params(), "light": idp.LightArgon2Params()} {
		b.Run(name, func(b *testing.B) {
			dir, err := idp.New(idp.WithArgon2(params))
			if err != nil {
				b.Fatal(err)
			}
			tn, err := dir.AddTenant(idp.TenantConfig{Domain: "contoso.test"})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := dir.AddUser(idp.UserConfig{TenantID: tn.ID, UPN: userUPN, Password: password}); err != nil {
				b.Fatal(err)
			}
			var lat latencies
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				if _, err := dir.SignIn(context.Background(), userUPN, password); err != nil {
					b.Fatal(err)
				}
				lat.since(t0)
			}
			lat.report(b, 0)
		})
	}
}
