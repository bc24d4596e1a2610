package reliability

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/service"
	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// drawingRand is crypto/rand that remembers every buffer it filled: a copy
// of what it put there, and the buffer itself, so the test can look later
// at the very memory the library holds its secrets in.
type drawingRand struct {
	mu    sync.Mutex
	draws []draw
}

type draw struct {
	buf  []byte // the caller's buffer
	orig []byte // what was put in it
}

func (d *drawingRand) Read(p []byte) (int, error) {
	n, err := crand.Read(p)
	d.mu.Lock()
	d.draws = append(d.draws, draw{buf: p[:n], orig: bytes.Clone(p[:n])})
	d.mu.Unlock()
	return n, err
}

func (d *drawingRand) all() []draw {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]draw(nil), d.draws...)
}

// capturingService passes calls to a reset.Service and keeps the
// protectors it returns, so the test can see that the reset destroyed them.
type capturingService struct {
	reset.Service
	mu   sync.Mutex
	keys []*protector.Key
}

func (c *capturingService) Recover(ctx context.Context, token string, env *protector.Envelope) (*protector.Key, error) {
	k, err := c.Service.Recover(ctx, token, env)
	if k != nil {
		c.mu.Lock()
		c.keys = append(c.keys, k)
		c.mu.Unlock()
	}
	return k, err
}

// pinAuthOf and keyAuthOf recompute the container's authValues from their
// definitions (container package documentation): HMAC-SHA256(salt, PIN) for
// the PIN protector, HKDF-SHA256(S, container ID, key name) for a key.
func pinAuthOf(salt []byte, pin string) []byte {
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(pin))
	return m.Sum(nil)
}

func keyAuthOf(s []byte, id, name string) []byte {
	k, err := hkdf.Key(sha256.New, s, []byte(id), "hellosim container v1 key auth: "+name, 32)
	if err != nil {
		panic(err)
	}
	return k
}

// encodings are the ways a secret could show up in text.
func encodings(b []byte) []string {
	return []string{
		hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)),
		base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b),
		fmt.Sprint(b), fmt.Sprintf("%x", b), string(b),
	}
}

// TestSecretsStayInside runs a whole life — provision, unlock and sign,
// enrol for PIN recovery, change the PIN, a wrong PIN, a weak PIN, a
// non-destructive reset through the real service client, a destructive
// reset — with every TPM command and response recorded, and then proves:
//
//   - no PIN, no PIN authValue, no container secret S, no key authValue and
//     no protector R crossed the TPM interface in clear;
//   - none of them, nor the reset token, is in any error message, log line,
//     event, or %v / %+v / %#v of the library's public values;
//   - the buffers S and R were drawn into are zero afterwards, and the
//     protector the service returned was destroyed.
func TestSecretsStayInside(t *testing.T) {
	ctx := context.Background()
	raw := tpmtest.OpenTransport(t)
	rec := tpmtest.NewRecorder(raw)
	tp := tpmtest.OpenOn(t, rec)

	rr := &drawingRand{}
	var logBuf bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &logBuf, mu: &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var events eventLog
	opts := []container.Option{container.WithRand(rr), container.WithLogger(logger), container.WithEventHandler(events.handle)}

	priv, err := protector.GenerateServiceKey(protector.HPKEX25519)
	require.NoError(t, err)
	srv := httptest.NewServer(&badService{priv: priv})
	defer srv.Close()
	svc := &capturingService{Service: service.NewClient(srv.URL, nil).WithDevice(anyDevice)}
	const token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2VjcmV0LXRva2VuLXNpZ25hdHVyZQ"
	const wrongPIN, weakPIN, destructivePIN = "999999", "123456", "370415"
	pins := []string{pin1, pin2, pin3, wrongPIN, weakPIN, destructivePIN}

	var containers []*container.Container
	var errs []error
	var printed []string
	show := func(vs ...any) {
		for _, v := range vs {
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
				printed = append(printed, fmt.Sprintf(verb, v))
			}
		}
	}

	// Provision, unlock, sign, enrol.
	c1, err := container.Provision(ctx, tp, testConfig(tpm.ECCP256), pin1, opts...)
	require.NoError(t, err)
	s, err := container.Unlock(ctx, tp, c1, pin1, opts...)
	require.NoError(t, err)
	require.NoError(t, signAndVerify(ctx, s.Signer(), c1.PublicKey(), "hello"))
	sk, err := svc.ServiceKey(ctx)
	require.NoError(t, err)
	c2, err := s.EnablePINRecovery(ctx, sk)
	require.NoError(t, err)
	show(s, s.Signer(), c1, c2, c2.Config(), c2.UserState(), c2.Envelope(), sk)
	require.NoError(t, s.Close())
	show(s)

	// Change the PIN; a wrong PIN; a weak PIN.
	c3, err := container.ChangePIN(ctx, tp, c2, pin1, pin2, opts...)
	require.NoError(t, err)
	_, err = container.Unlock(ctx, tp, c3, wrongPIN, opts...)
	require.ErrorIs(t, err, container.ErrWrongPIN)
	errs = append(errs, err)
	_, err = container.ChangePIN(ctx, tp, c3, pin2, weakPIN, opts...)
	require.ErrorIs(t, err, container.ErrPINPolicy)
	errs = append(errs, err)
	_, err = container.ChangePIN(ctx, tp, c3, wrongPIN, pin3, opts...)
	require.ErrorIs(t, err, container.ErrWrongPIN)
	errs = append(errs, err)
	require.NoError(t, tp.ResetLockout(ctx, nil))

	// Resets.
	env := reset.Env{TPM: tp, Service: svc, Rand: rr, Options: opts[1:]}
	_, err = reset.NonDestructive(ctx, env, c3, reset.Request{Token: token, NewPIN: weakPIN})
	require.Error(t, err)
	errs = append(errs, err)
	c4, err := reset.NonDestructive(ctx, env, c3, reset.Request{Token: token, NewPIN: pin3})
	require.NoError(t, err)
	require.NoError(t, unlockAndSign(ctx, tp, c4, pin3))
	c5, err := reset.Destructive(ctx, env, c4, reset.Request{Token: token, NewPIN: destructivePIN})
	require.NoError(t, err)
	require.NoError(t, unlockAndSign(ctx, tp, c5, destructivePIN))
	_, err = reset.Destructive(ctx, env, c4, reset.Request{Token: token, NewPIN: weakPIN})
	require.Error(t, err)
	errs = append(errs, err)
	containers = append(containers, c1, c2, c3, c4, c5)
	show(c3, c4, c5, reset.Request{Token: token, NewPIN: pin3}, &reset.Request{Token: token, NewPIN: pin3})
	for _, k := range svc.keys {
		show(k, *k)
	}
	for _, e := range events.events {
		show(e)
	}
	for _, e := range errs {
		show(e)
		printed = append(printed, e.Error())
	}

	// Which draws were secrets? A 32-byte draw that no container carries
	// is S, R or R' (the salts and IDs are in the containers).
	var public [][]byte
	for _, c := range containers {
		b, err := c.MarshalBinary()
		require.NoError(t, err)
		public = append(public, b)
	}
	inPublic := func(b []byte) bool {
		for _, p := range public {
			if bytes.Contains(p, b) {
				return true
			}
		}
		return false
	}
	var secrets [][]byte
	var salts [][]byte
	draws := rr.all()
	nSecret := 0
	for _, d := range draws {
		if len(d.orig) != 32 {
			continue
		}
		if inPublic(d.orig) {
			salts = append(salts, d.orig)
			continue
		}
		nSecret++
		secrets = append(secrets, d.orig)
		assert.Equal(t, make([]byte, 32), d.buf, "a buffer that held a secret (S, R or R') is not zero after use")
	}
	// Two secrets S (Provision, the destructive reset) and two protectors
	// (enrolment, the re-enrolment of the non-destructive reset).
	assert.GreaterOrEqual(t, nSecret, 4, "fewer secret draws than expected: the test lost track")
	for _, k := range svc.keys {
		assert.False(t, k.Equal(k), "the protector the service returned was not destroyed")
	}
	require.NotEmpty(t, svc.keys)

	// The bus.
	var bus [][]byte
	for _, p := range pins {
		bus = append(bus, []byte(p))
		for _, salt := range salts {
			bus = append(bus, pinAuthOf(salt, p))
		}
	}
	for _, sec := range secrets {
		bus = append(bus, sec)
		for _, c := range containers {
			bus = append(bus, keyAuthOf(sec, c.ID(), container.LoginKeyName))
		}
	}
	rec.AssertAbsent(t, bus...)
	// The scan can find things: the login key's public area is on the bus
	// (TPM2_Load), and the commands that carry secrets were made: Create
	// (a key's authValue), NV_DefineSpace, NV_Write and NV_ChangeAuth (the
	// PIN's authValue, S) and NV_Read (S back).
	exch := rec.Exchanges()
	require.NotEmpty(t, exch)
	seen := map[tpm2.TPMCC]int{}
	for _, e := range exch {
		seen[commandCode(e.Command)]++
	}
	for _, cc := range []tpm2.TPMCC{tpm2.TPMCCCreate, tpm2.TPMCCNVDefineSpace, tpm2.TPMCCNVWrite, tpm2.TPMCCNVChangeAuth, tpm2.TPMCCNVRead} {
		assert.Positive(t, seen[cc], "no %s on the bus", ccName(cc))
	}
	c1Bytes := public[0]
	found := false
	for _, e := range exch {
		if len(e.Command) > 64 && bytes.Contains(c1Bytes, e.Command[len(e.Command)-48:]) {
			found = true
			break
		}
	}
	assert.True(t, found, "the recorder sees none of the container's public blobs: the scan is blind")

	// Text: errors, logs, events and printed values.
	logMu.Lock()
	logs := logBuf.String()
	logMu.Unlock()
	require.NotEmpty(t, logs)
	require.Positive(t, len(events.events))
	texts := append([]string{logs}, printed...)
	needles := append([]string{token, strings.Split(token, ".")[2]}, pins...)
	for _, sec := range append(secrets, bus...) {
		needles = append(needles, encodings(sec)...)
	}
	leaks := 0
	for _, txt := range texts {
		for _, n := range needles {
			if len(n) >= 6 && strings.Contains(txt, n) {
				leaks++
				if leaks <= 10 {
					t.Errorf("secret %.12q… found in %.200q", n, txt)
				}
			}
		}
	}
	t.Logf("secrets: %d TPM exchanges, %d bus secrets, %d texts, %d needles; %d secret buffers checked zero, %d protectors destroyed",
		len(exch), len(bus), len(texts), len(needles), nSecret, len(svc.keys))
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestSignerPrintsNoSecret prints a session's signers with every fmt verb.
// The container secret S must not appear: fmt renders a struct it cannot
// format with a verb (%s, %q of a struct holding a pointer) by walking
// its fields, and a signer that points to its session would show the
// session's fields, S among them.
func TestSignerPrintsNoSecret(t *testing.T) {
	ctx := context.Background()
	tp := tpmtest.Open(t)
	rr := &drawingRand{}
	c, err := container.Provision(ctx, tp, testConfig(tpm.ECCP256), pin1, container.WithRand(rr))
	require.NoError(t, err)
	enc, err := c.MarshalBinary()
	require.NoError(t, err)
	var secret []byte
	for _, d := range rr.all() {
		if len(d.orig) == 32 && !bytes.Contains(enc, d.orig) {
			secret = d.orig
		}
	}
	require.NotNil(t, secret, "S not found among the draws")
	s, err := container.Unlock(ctx, tp, c, pin1)
	require.NoError(t, err)
	defer s.Close()
	login, err := s.Key(container.LoginKeyName)
	require.NoError(t, err)
	for _, v := range []any{s, s.Signer(), login} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
			out := fmt.Sprintf(verb, v)
			for _, e := range encodings(secret) {
				if strings.Contains(out, e) {
					t.Errorf("fmt.Sprintf(%q, %T) shows the container secret: %.160s…", verb, v, out)
					break
				}
			}
		}
	}
}

// TestTPMKeyPrintsNoAuth prints a loaded tpm.Key with every fmt verb: its
// authValue must not appear.
func TestTPMKeyPrintsNoAuth(t *testing.T) {
	ctx := context.Background()
	tp := tpmtest.Open(t)
	auth := []byte("key-auth-value-0123456789abcdef!")
	b, _, err := tp.CreateKey(ctx, tpm.ECCP256, auth)
	require.NoError(t, err)
	k, err := tp.LoadKey(ctx, b, auth)
	require.NoError(t, err)
	defer k.Close()
	for _, v := range []any{k, *k, tp} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
			out := fmt.Sprintf(verb, v)
			for _, e := range encodings(auth) {
				if strings.Contains(out, e) {
					t.Errorf("fmt.Sprintf(%q, %T) shows the key's authValue: %.160s…", verb, v, out)
					break
				}
			}
		}
	}
}
