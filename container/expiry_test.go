package container

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/internal/clocktest"
	"github.com/hellosim/hellosim/protector"

	"github.com/hellosim/hellosim/container/event"
)

const day = 24 * time.Hour

func TestExpiredPINStillUnlocksAndSaysSo(t *testing.T) {
	tp := openTPM(t)
	ctx := context.Background()
	clk := clocktest.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	clock := WithClock(clk.Now)
	unlockKinds := func(c *Container, pin string, opts ...Option) (*Session, []event.Kind) {
		t.Helper()
		var kinds []event.Kind
		opts = append(opts, clock, WithEventHandler(func(e event.Event) { kinds = append(kinds, e.Kind) }))
		s, err := Unlock(ctx, tp, c, pin, opts...)
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s, kinds
	}

	cfg := testConfig()
	cfg.PINPolicy.Expiration = 30
	c, err := Provision(ctx, tp, cfg, testPIN, clock)
	require.NoError(t, err)

	clk.Advance(30*day - time.Second)
	s, kinds := unlockKinds(c, testPIN)
	assert.False(t, s.PINExpired(), "a second before expiry")
	assert.Equal(t, []event.Kind{event.Unlocked}, kinds)

	clk.Advance(time.Second)
	s, kinds = unlockKinds(c, testPIN)
	assert.True(t, s.PINExpired(), "at expiry")
	assert.Equal(t, []event.Kind{event.Unlocked, event.PINExpired}, kinds)
	signVerify(t, s.Signer(), c.PublicKey()) // the session works all the same

	// Changing the expired PIN restarts the clock.
	clk.Advance(10 * day)
	n, err := ChangePIN(ctx, tp, c, testPIN, otherPIN, clock)
	require.NoError(t, err)
	assert.Equal(t, clk.Now().AddDate(0, 0, 30), n.PINExpires())
	s, kinds = unlockKinds(n, otherPIN)
	assert.False(t, s.PINExpired())
	assert.Equal(t, []event.Kind{event.Unlocked}, kinds)
	clk.Advance(30 * day)
	s, _ = unlockKinds(n, otherPIN)
	assert.True(t, s.PINExpired())

	// A wrong PIN says nothing about expiry.
	var kinds2 []event.Kind
	_, err = Unlock(ctx, tp, n, thirdPIN, clock, WithEventHandler(func(e event.Event) { kinds2 = append(kinds2, e.Kind) }))
	require.ErrorIs(t, err, ErrWrongPIN)
	assert.Equal(t, []event.Kind{event.WrongPIN}, kinds2)
	require.NoError(t, tp.ResetLockout(ctx, nil))
}

func TestPINWithoutExpirationNeverExpires(t *testing.T) {
	tp := openTPM(t)
	ctx := context.Background()
	clk := clocktest.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	c, err := Provision(ctx, tp, testConfig(), testPIN, WithClock(clk.Now))
	require.NoError(t, err)
	clk.Advance(10 * 365 * day)
	s, err := Unlock(ctx, tp, c, testPIN, WithClock(clk.Now))
	require.NoError(t, err)
	defer s.Close()
	assert.False(t, s.PINExpired())

	// Device management's policy decides when it sets an expiration.
	s2, err := Unlock(ctx, tp, c, testPIN, WithClock(clk.Now), WithPINPolicy(PINPolicy{Expiration: 7}))
	require.NoError(t, err)
	defer s2.Close()
	assert.True(t, s2.PINExpired())
}

func TestResetsRestartPINExpiry(t *testing.T) {
	tp := openTPM(t)
	ctx := context.Background()
	clk := clocktest.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	clock := WithClock(clk.Now)
	svc := newServiceKey(t, protector.HPKEX25519)
	cfg := testConfig()
	cfg.PINPolicy.Expiration = 30
	c, err := Provision(ctx, tp, cfg, testPIN, clock)
	require.NoError(t, err)
	s, err := Unlock(ctx, tp, c, testPIN, clock)
	require.NoError(t, err)
	e, err := s.EnablePINRecovery(ctx, svc.Public())
	require.NoError(t, err)
	require.NoError(t, s.Close())

	clk.Advance(45 * day)
	s, err = Unlock(ctx, tp, e, testPIN, clock)
	require.NoError(t, err)
	assert.True(t, s.PINExpired())
	require.NoError(t, s.Close())

	r := recovered(t, svc, e)
	defer r.Destroy()
	nd, err := ResetPIN(ctx, tp, e, r, otherPIN, nil, clock)
	require.NoError(t, err)
	d, err := Reprovision(ctx, tp, e, thirdPIN, clock)
	require.NoError(t, err)
	for name, x := range map[string]struct {
		c   *Container
		pin string
	}{"non-destructive": {nd, otherPIN}, "destructive": {d, thirdPIN}} {
		assert.Equal(t, clk.Now().AddDate(0, 0, 30), x.c.PINExpires(), name)
		s, err := Unlock(ctx, tp, x.c, x.pin, clock)
		require.NoError(t, err, name)
		assert.False(t, s.PINExpired(), name)
		require.NoError(t, s.Close())
	}
}
