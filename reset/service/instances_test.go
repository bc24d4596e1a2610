package service_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/internal/dpop"
	"github.com/hellosim/hellosim/internal/redistest"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset/service"
	"github.com/hellosim/hellosim/reset/service/state"
)

// instances builds a world whose service shares one Redis-backed store
// (the run's shared Redis, under a prefix of the test's own) with n-1
// further instances, each on its own loopback server, and returns all n
// servers. It skips when HELLOSIM_REDIS is unset.
func instances(t *testing.T, n int, opts ...worldOption) (*world, []*httptest.Server) {
	t.Helper()
	return instancesOn(t, redistest.URL(t), state.RedisOptions{}, n, opts...)
}

// instancesOn is instances on the Redis at url, with the store options o
// (Prefix and Clock are set here; Timeout, when unset, is
// redistest.Timeout).
func instancesOn(t *testing.T, url string, o state.RedisOptions, n int, opts ...worldOption) (*world, []*httptest.Server) {
	t.Helper()
	o.Prefix = redistest.Prefix()
	if o.Timeout == 0 {
		o.Timeout = redistest.Timeout
	}
	mk := func(c *service.Config) {
		o.Clock = c.Clock
		s, err := state.NewRedis(url, o)
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		c.State = s
		for _, opt := range opts {
			opt(c)
		}
	}
	w := newWorld(t, mk)
	srvs := []*httptest.Server{w.srv}
	for len(srvs) < n {
		cfg := service.Config{Verifier: mustVerifier(w.idp), Directory: w.idp, Clock: w.clk.Now,
			Keys: []protector.Unwrapper{w.counters[0], w.counters[1], w.counters[2]}}
		mk(&cfg)
		svc, err := service.New(cfg)
		require.NoError(t, err)
		srv := httptest.NewServer(svc)
		t.Cleanup(srv.Close)
		srvs = append(srvs, srv)
	}
	return w, srvs
}

// recoverRequest builds a recover request for srv, with a fresh return key
// and a fresh DPoP proof whose htu names srv, so that it can be sent from
// any goroutine.
func (w *world) recoverRequest(t *testing.T, srv *httptest.Server, a attackRequest) *http.Request {
	t.Helper()
	k, err := protector.NewReturnKey()
	require.NoError(t, err)
	t.Cleanup(k.Destroy)
	rk := k.PublicKey()
	raw, err := a.env.MarshalBinary()
	require.NoError(t, err)
	body, _ := json.Marshal(map[string]string{"envelope": base64.RawURLEncoding.EncodeToString(raw), "return_key": base64.RawURLEncoding.EncodeToString(rk)})
	req, err := http.NewRequest(http.MethodPost, srv.URL+service.PathRecover, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "DPoP "+a.token)
	p, err := dpop.Sign(a.signer, dpop.Claims{HTM: "POST", HTU: srv.URL + service.PathRecover, IAT: w.clk.Now().Unix(),
		JTI: randString(12), ATH: dpop.Hash([]byte(a.token)), RKH: dpop.Hash(rk)})
	require.NoError(t, err)
	req.Header.Set("DPoP", p)
	return req
}

// N concurrent requests carrying one token, spread across two and three
// instances on one Redis: exactly one is admitted and decrypted. The
// user's limit, which comes before the replay check, is lifted: this is
// about the replay records.
func TestInstancesConcurrentTokenExactlyOneAdmitted(t *testing.T) {
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d instances", n), func(t *testing.T) {
			w, srvs := instances(t, n, func(c *service.Config) { c.RateLimit = service.RateLimit{Unlimited: true} })
			env, _ := w.alice.envelope(t, w.keys[protector.HPKEX25519].Public())
			a := attackRequest{token: w.alice.token(t), env: env, signer: w.alice.device}
			const requests = 16
			reqs := make([]*http.Request, requests)
			for i := range reqs {
				reqs[i] = w.recoverRequest(t, srvs[i%n], a)
			}
			u := w.unwraps()
			codes := make([]int, requests)
			errs := make([]error, requests)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i, req := range reqs {
				wg.Go(func() {
					<-start
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						errs[i] = err
						return
					}
					resp.Body.Close()
					codes[i] = resp.StatusCode
				})
			}
			close(start)
			wg.Wait()
			ok := 0
			for i := range codes {
				require.NoError(t, errs[i])
				if codes[i] == 200 {
					ok++
				} else {
					assert.Equal(t, 401, codes[i], "request %d", i)
				}
			}
			assert.Equal(t, 1, ok, "exactly one request with the token is admitted: %v", codes)
			assert.Equal(t, u+1, w.unwraps(), "exactly one envelope opened")
		})
	}
}

// Failures at two instances add up to one lockout, which a third instance
// enforces: the user's good envelope is not opened there.
func TestInstancesCountFailuresTowardsOneLockout(t *testing.T) {
	w, srvs := instances(t, 3, func(c *service.Config) {
		c.RateLimit = service.RateLimit{Unlimited: true}
		c.Lockout = state.Lockout{Failures: 4, Window: time.Hour, Base: time.Hour, Max: 2 * time.Hour}
	})
	bad := func() *protector.Envelope { return w.spoiledEnvelope(t, w.alice) }
	do := func(srv *httptest.Server, env *protector.Envelope) int {
		resp, err := http.DefaultClient.Do(w.recoverRequest(t, srv, attackRequest{token: w.alice.token(t), env: env, signer: w.alice.device}))
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 4 {
		require.Equal(t, 400, do(srvs[i%2], bad()), "failure %d", i+1)
	}
	u := w.unwraps()
	env, _ := w.alice.envelope(t, w.keys[protector.HPKEX25519].Public())
	assert.Equal(t, 429, do(srvs[2], env), "locked out at the third instance")
	assert.Equal(t, u, w.unwraps(), "a locked-out user's good envelope is not opened")
}
