package container

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"

	"github.com/hellosim/hellosim/container/event"
)

// lifecycle runs every operation with events captured by a handler and by a
// JSON slog logger, and returns what it saw, every error it got, and the
// secrets it used.
type lifecycle struct {
	events  []event.Event
	log     bytes.Buffer
	errs    []error
	secrets [][]byte
}

func runLifecycle(t *testing.T, tp *tpm.TPM) *lifecycle {
	ctx := context.Background()
	lc := &lifecycle{}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	opts := []Option{
		WithEventHandler(func(e event.Event) { lc.events = append(lc.events, e) }),
		WithLogger(slog.New(slog.NewJSONHandler(&lc.log, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		WithClock(func() time.Time { return now }),
	}
	pins := []string{"864209", "975310", "208642", "319758", "420865"}
	for _, p := range pins {
		lc.secrets = append(lc.secrets, []byte(p))
	}
	keep := func(err error) {
		if err != nil {
			lc.errs = append(lc.errs, err)
		}
	}
	svc := newServiceKey(t, protector.HPKEX25519)
	cfg := testConfig()
	cfg.PINPolicy.History = 2
	c, err := Provision(ctx, tp, cfg, pins[0], opts...)
	require.NoError(t, err)
	_, err = Unlock(ctx, tp, c, pins[1], opts...)
	keep(err)
	s, err := Unlock(ctx, tp, c, pins[0], opts...)
	require.NoError(t, err)
	lc.secrets = append(lc.secrets, append([]byte(nil), s.secret...))
	lc.secrets = append(lc.secrets, (&options{}).keyAuth(s.secret, c.id, LoginKeyName), (&options{}).pinAuth(c.salt, enter(pins[0])))
	_, err = s.AddKey(ctx, "vpn", tpm.ECCP256)
	require.NoError(t, err)
	_, err = s.AddCertificate(LoginKeyName, selfSigned(t, s.Signer()))
	require.NoError(t, err)
	e, err := s.EnablePINRecovery(ctx, svc.Public())
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, err = ChangePIN(ctx, tp, e, pins[2], pins[1], opts...)
	keep(err)
	_, err = ChangePIN(ctx, tp, e, pins[0], "1234", opts...)
	keep(err)
	n, err := ChangePIN(ctx, tp, e, pins[0], pins[1], opts...)
	require.NoError(t, err)
	_, err = ChangePIN(ctx, tp, n, pins[1], pins[0], opts...)
	keep(err) // history
	r := recovered(t, svc, n)
	nk := svc.Public()
	m, err := ResetPIN(ctx, tp, n, r, pins[3], &nk, opts...)
	require.NoError(t, err)
	_, err = ResetPIN(ctx, tp, c, r, pins[3], nil, opts...)
	keep(err) // no protector
	_, err = Reprovision(ctx, tp, m, pins[4], opts...)
	require.NoError(t, err)
	return lc
}

func TestLifecycleEvents(t *testing.T) {
	tp := tpmtest.Open(t)
	lc := runLifecycle(t, tp)
	var kinds []event.Kind
	for _, e := range lc.events {
		kinds = append(kinds, e.Kind)
		assert.NotEmpty(t, e.ContainerID)
		assert.NotEmpty(t, e.KeyID)
		assert.Equal(t, testConfig().User, e.User)
		assert.False(t, e.Time.IsZero())
	}
	assert.Equal(t, []event.Kind{
		event.Created, event.WrongPIN, event.Unlocked, event.KeyAdded, event.CertificateAdded, event.RecoveryEnabled,
		event.WrongPIN, event.PINChanged, event.Reset, event.Reset,
	}, kinds)
	assert.Equal(t, event.IDKeyRegistered, lc.events[0].WindowsID)
	assert.Equal(t, 300, lc.events[0].WindowsID)
	assert.Equal(t, uint64(1), lc.events[0].Generation)
	assert.Equal(t, "vpn", lc.events[3].KeyName)
	assert.NotEmpty(t, lc.events[5].ServiceKey)
	assert.False(t, lc.events[8].Destructive)
	assert.True(t, lc.events[9].Destructive)
	assert.NotEqual(t, lc.events[8].KeyID, lc.events[9].KeyID, "a destructive reset makes a new NgcKeyId")

	// The slog output has one JSON record per event.
	lines := strings.Split(strings.TrimSpace(lc.log.String()), "\n")
	require.Len(t, lines, len(lc.events))
	var first struct {
		Level string
		Msg   string
		Hello map[string]any
	}
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
	assert.Equal(t, "created", first.Hello["event"])
	assert.Equal(t, float64(300), first.Hello["event_id"])
	assert.Contains(t, first.Msg, "registered successfully")
	var wrong struct {
		Level string
		Hello map[string]any
	}
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &wrong))
	assert.Equal(t, "WARN", wrong.Level)
	assert.Equal(t, "wrong_pin", wrong.Hello["event"])
	assert.Contains(t, wrong.Hello, "remaining")
}

// No PIN, secret or authValue appears in an event, a log line or an error,
// in any common encoding.
func TestNoSecretInEventsLogsOrErrors(t *testing.T) {
	tp := tpmtest.Open(t)
	lc := runLifecycle(t, tp)
	require.Len(t, lc.errs, 5)
	var texts []string
	texts = append(texts, lc.log.String())
	for _, e := range lc.events {
		texts = append(texts, fmt.Sprintf("%v %+v %#v", e, e, e))
	}
	for _, err := range lc.errs {
		texts = append(texts, err.Error(), fmt.Sprintf("%+v %#v", err, err))
	}
	all := strings.Join(texts, "\n")
	for _, s := range lc.secrets {
		for _, enc := range []string{
			string(s), hex.EncodeToString(s), strings.ToUpper(hex.EncodeToString(s)),
			base64.StdEncoding.EncodeToString(s), base64.RawURLEncoding.EncodeToString(s), fmt.Sprint(s),
		} {
			assert.NotContains(t, all, enc)
		}
	}
}

// The PIN, its authValue, the container secret and the key authValues never
// cross the TPM interface in clear.
func TestNothingSecretOnTheBus(t *testing.T) {
	tp, rec := tpmtest.OpenRecorded(t)
	ctx := context.Background()
	svc := newServiceKey(t, protector.HPKEX25519)
	cfg := testConfig()
	c, err := Provision(ctx, tp, cfg, testPIN)
	require.NoError(t, err)
	s := unlock(t, tp, c, testPIN)
	secret := append([]byte(nil), s.secret...)
	vpnc, err := s.AddKey(ctx, "vpn", tpm.RSA2048)
	require.NoError(t, err)
	signVerify(t, s.Signer(), c.PublicKey())
	e, err := s.EnablePINRecovery(ctx, svc.Public())
	require.NoError(t, err)
	n, err := ChangePIN(ctx, tp, e, testPIN, otherPIN)
	require.NoError(t, err)
	r := recovered(t, svc, n)
	m, err := ResetPIN(ctx, tp, n, r, thirdPIN, nil)
	require.NoError(t, err)
	_, err = Unlock(ctx, tp, m, testPIN)
	require.ErrorIs(t, err, ErrWrongPIN)
	rec.AssertAbsent(t,
		secret,
		[]byte(testPIN), []byte(otherPIN), []byte(thirdPIN),
		(&options{}).pinAuth(c.salt, enter(testPIN)), (&options{}).pinAuth(n.salt, enter(otherPIN)), (&options{}).pinAuth(m.salt, enter(thirdPIN)), (&options{}).pinAuth(m.salt, enter(testPIN)),
		(&options{}).keyAuth(secret, c.id, LoginKeyName), (&options{}).keyAuth(secret, c.id, "vpn"),
	)
	assert.Len(t, vpnc.KeyNames(), 2)
}

// Event handlers run outside the session's lock, so a handler may use the
// session (print it, read its container) without deadlocking it.
func TestEventHandlerMayUseTheSession(t *testing.T) {
	tp := openTPM(t)
	ctx := context.Background()
	c := provision(t, tp, testConfig())
	svc := newServiceKey(t, protector.HPKEX25519).Public()
	var sess *Session
	var seen []string
	h := func(e event.Event) {
		if sess != nil {
			seen = append(seen, fmt.Sprintf("%s: %v, generation %d", e.Kind, sess, sess.Container().Generation()))
		}
	}
	s, err := Unlock(ctx, tp, c, testPIN, WithEventHandler(h))
	require.NoError(t, err)
	sess = s
	cert := selfSigned(t, s.Signer())

	done := make(chan error, 1)
	go func() {
		_, err := s.AddKey(ctx, "extra", tpm.ECCP256)
		if err == nil {
			_, err = s.AddCertificate(LoginKeyName, cert)
		}
		if err == nil {
			_, err = s.EnablePINRecovery(ctx, svc)
		}
		done <- err
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("an event handler that uses the session deadlocked it")
	}
	require.NoError(t, s.Close())
	assert.Len(t, seen, 3)
}
