package service_test

import (
	"crypto/rand"
	"encoding/hex"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset/service"
	"github.com/hellosim/hellosim/reset/service/state"
)

// Two instances of the service sharing one Redis: a request admitted at
// one is a replay at the other. Runs with HELLOSIM_REDIS set.
func TestInstancesShareReplayRecordsInRedis(t *testing.T) {
	url := os.Getenv("HELLOSIM_REDIS")
	if url == "" {
		t.Skip("HELLOSIM_REDIS is not set; skipping the Redis test")
	}
	var b [6]byte
	rand.Read(b[:])
	prefix := "hellosim-service-test:" + hex.EncodeToString(b[:]) + ":"
	var stores []*state.Redis
	mk := func(c *service.Config) {
		s, err := state.NewRedis(url, state.RedisOptions{Prefix: prefix, Clock: c.Clock})
		require.NoError(t, err)
		stores = append(stores, s)
		c.State = s
	}
	w := newWorld(t, mk)
	t.Cleanup(func() {
		for _, s := range stores {
			s.Close()
		}
	})
	// A second instance: same keys, same directory, same Redis.
	cfg := service.Config{Verifier: mustVerifier(w.idp), Directory: w.idp, Clock: w.clk.Now,
		Keys: []protector.Unwrapper{w.counters[0], w.counters[1], w.counters[2]}}
	mk(&cfg)
	svc2, err := service.New(cfg)
	require.NoError(t, err)
	srv2 := httptest.NewServer(svc2)
	t.Cleanup(srv2.Close)

	env, _ := w.alice.envelope(t, w.keys[protector.HPKEX25519].Public())
	a := attackRequest{token: w.alice.token(t), env: env, signer: w.alice.device}
	resp, _ := w.send(t, a)
	require.Equal(t, 200, resp.StatusCode)
	u := w.unwraps()
	srv1 := w.srv
	w.srv = srv2
	resp, code := w.send(t, a)
	w.srv = srv1
	assert.Equal(t, 401, resp.StatusCode)
	assert.Equal(t, service.CodeTokenReplayed, code, "the other instance knows the token")
	assert.Equal(t, u, w.unwraps())
}
