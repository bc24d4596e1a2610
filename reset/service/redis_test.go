package service_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/internal/redistest"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset/service"
	"github.com/hellosim/hellosim/reset/service/state"
)

// Two instances of the service sharing one Redis: a request admitted at
// one is a replay at the other. Runs with HELLOSIM_REDIS set.
func TestInstancesShareReplayRecordsInRedis(t *testing.T) {
	w, srvs := instances(t, 2)
	env, _ := w.alice.envelope(t, w.keys[protector.HPKEX25519].Public())
	a := attackRequest{token: w.alice.token(t), env: env, signer: w.alice.device}
	status, _ := roundTrip(w.recoverRequest(t, srvs[0], a))
	require.Equal(t, 200, status)
	u := w.unwraps()
	status, code := roundTrip(w.recoverRequest(t, srvs[1], a))
	assert.Equal(t, 401, status)
	assert.Equal(t, service.CodeTokenReplayed, code, "the other instance knows the token")
	assert.Equal(t, u, w.unwraps())
}

// roundTrip sends req and returns the status and the error code of the
// body; a transport error is status 0. It is safe to call from any
// goroutine.
func roundTrip(req *http.Request) (int, string) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var e struct{ Error string }
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e.Error
}

// TestInstancesRedisKilledMidRun: two instances on a Redis of the test's
// own, with recover requests in flight, each with a token of its own. The
// Redis is killed (no persistence) and restarted empty while the load runs:
//
//   - while it is down, every request is 503 and no envelope is opened;
//   - the instances recover by themselves, with no restart of their own;
//   - nothing is released twice: every 200 is one token's first and only
//     one, the envelopes opened are exactly the 200s, and a token admitted
//     before the crash, whose one-time record the crash lost, is refused
//     after it (the store's new epoch is later than its iat) at either
//     instance.
func TestInstancesRedisKilledMidRun(t *testing.T) {
	p := redistest.Start(t)
	w, srvs := instancesOn(t, p.URL(), state.RedisOptions{Timeout: 500 * time.Millisecond}, 2, func(c *service.Config) {
		c.RateLimit = service.RateLimit{Unlimited: true}
		c.AddressLimit = service.RateLimit{Unlimited: true}
		c.TenantLimit = service.RateLimit{Unlimited: true}
	})
	env, _ := w.alice.envelope(t, w.keys[protector.HPKEX25519].Public())

	type job struct {
		phase int
		tok   string
		req   *http.Request
	}
	type result struct {
		phase, status int
		tok, code     string
	}
	const (
		before = iota
		down
		after
	)
	jobs := make(chan job)
	var (
		mu      sync.Mutex
		results []result
		wg      sync.WaitGroup
	)
	for range 2 {
		wg.Go(func() {
			for j := range jobs {
				status, code := roundTrip(j.req)
				mu.Lock()
				results = append(results, result{phase: j.phase, status: status, tok: j.tok, code: code})
				mu.Unlock()
			}
		})
	}
	sent := 0
	push := func(phase int) string {
		tok := w.alice.token(t)
		jobs <- job{phase: phase, tok: tok, req: w.recoverRequest(t, srvs[sent%len(srvs)], attackRequest{token: tok, env: env, signer: w.alice.device})}
		sent++
		return tok
	}
	// count counts the answers of a phase with the status (any: -1).
	count := func(phase, status int) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, r := range results {
			if r.phase == phase && (status < 0 || r.status == status) {
				n++
			}
		}
		return n
	}
	u0 := w.unwraps()

	for range 10 {
		push(before)
	}
	// The last requests pushed may be in flight as Redis dies.
	p.Kill()
	for range 10 {
		push(down)
	}
	// Every request of the outage is answered before Redis comes back: one
	// still waiting for a connection when it does would be decided after
	// the restart (and be refused there as issued before the new epoch).
	require.Eventually(t, func() bool { return count(down, -1) == 10 }, 10*time.Second, 5*time.Millisecond)
	unwrapsDown := w.unwraps()
	// Time passes during the outage; Redis comes back empty.
	w.clk.Advance(2 * time.Second)
	p.Restart()
	for count(after, 200) < 5 {
		require.Less(t, sent, 300, "the instances did not recover by themselves")
		push(after)
		if count(after, 503) > 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	close(jobs)
	wg.Wait()

	admitted := map[string]int{}
	var admittedBefore []string
	for _, r := range results {
		switch r.phase {
		case before:
			assert.Contains(t, []int{200, 503}, r.status, "before the crash: %+v", r)
		case down:
			assert.Equal(t, 503, r.status, "while Redis is down, fail closed")
			assert.Equal(t, service.CodeUnavailable, r.code)
		case after:
			assert.Contains(t, []int{200, 503}, r.status, "after the restart, a token issued after it: %+v", r)
		}
		if r.status == 200 {
			admitted[r.tok]++
			if r.phase == before {
				admittedBefore = append(admittedBefore, r.tok)
			}
		}
	}
	assert.GreaterOrEqual(t, count(before, 200), 5, "before the crash the requests are served (those in flight at the kill may not be)")
	assert.Equal(t, u0+count(before, 200), unwrapsDown, "no envelope opened while Redis is down")
	total := 0
	for tok, n := range admitted {
		assert.Equal(t, 1, n, "token %.12s… released once", tok)
		total += n
	}
	assert.Equal(t, u0+total, w.unwraps(), "every envelope opened is a 200")

	// The crash lost the one-time records; the epoch keeps the tokens
	// admitted before it from being admitted again, at either instance.
	require.NotEmpty(t, admittedBefore)
	u := w.unwraps()
	for i, tok := range admittedBefore {
		status, code := roundTrip(w.recoverRequest(t, srvs[i%2], attackRequest{token: tok, env: env, signer: w.alice.device}))
		assert.Equal(t, 401, status, "a token used before the crash, replayed after it")
		assert.Equal(t, service.CodeInvalidToken, code)
	}
	// And the records made after the restart hold as before.
	for tok, n := range admitted {
		if n == 1 && !slices.Contains(admittedBefore, tok) {
			status, code := roundTrip(w.recoverRequest(t, srvs[1], attackRequest{token: tok, env: env, signer: w.alice.device}))
			assert.Equal(t, 401, status)
			assert.Equal(t, service.CodeTokenReplayed, code)
			break
		}
	}
	assert.Equal(t, u, w.unwraps(), "no replay opened an envelope")
}
