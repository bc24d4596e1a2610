package main

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/protector"
)

// TestRound runs a small round end to end: warm-up checks the returned
// protectors, and both measurements produce figures.
func TestRound(t *testing.T) {
	ctx := context.Background()
	w, err := newWorld(ctx, config{n: 24, c: 4, users: 3, rounds: 1, chunk: 7, scheme: protector.HPKEX25519})
	require.NoError(t, err)
	defer w.close()
	assert.True(t, strings.HasPrefix(w.base, "http://127.0.0.1:"), "loopback only")
	res, err := w.round(ctx, 24, 7, "")
	require.NoError(t, err)
	assert.Positive(t, res.served)
	assert.Positive(t, res.ceiling)
	assert.Positive(t, res.p50)
	assert.GreaterOrEqual(t, res.p99, res.p50)
	assert.Positive(t, res.allocs)
	a, err := w.handlerAllocs(ctx, 10)
	require.NoError(t, err)
	assert.Greater(t, a.handler, a.crypto, "the handler does the crypto and more")
}
