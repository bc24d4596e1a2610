package container

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/tpm"
)

// These tests prove that every buffer the package makes to hold a secret
// (the container secret S, the PIN's bytes, the PIN authValue, the key
// authValues, the keys derived from S and the PIN history) is all zero once
// the operation that made it returns, whether it succeeded or failed; and
// that a Session holds S, not zero, until Close. withSecretObserver shows
// them every such buffer where it is made.

// secretLog records the secret buffers an operation shows it.
type secretLog struct {
	mu   sync.Mutex
	seen []observedSecret
}

type observedSecret struct {
	kind string
	buf  []byte
}

func (l *secretLog) opt() Option {
	return withSecretObserver(func(kind string, buf []byte) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.seen = append(l.seen, observedSecret{kind, buf})
	})
}

// of returns the buffers of kind seen so far.
func (l *secretLog) of(kind string) [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out [][]byte
	for _, o := range l.seen {
		if o.kind == kind {
			out = append(out, o.buf)
		}
	}
	return out
}

// notWiped lists the buffers seen so far that are not all zero.
func (l *secretLog) notWiped() []observedSecret {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []observedSecret
	for _, o := range l.seen {
		if !allZero(o.buf) {
			out = append(out, o)
		}
	}
	return out
}

// requireWiped checks that a buffer of each kind in made was seen and that
// every buffer seen is all zero, then forgets them.
func (l *secretLog) requireWiped(t *testing.T, what string, made ...string) {
	t.Helper()
	for _, k := range made {
		assert.NotEmpty(t, l.of(k), "%s: no %s buffer was seen", what, k)
	}
	for _, o := range l.notWiped() {
		t.Errorf("%s: a %s buffer of %d bytes is not wiped", what, o.kind, len(o.buf))
	}
	l.forget()
}

func (l *secretLog) forget() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = nil
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// nfdPIN is typed decomposed (e + combining acute), so that normalising it
// makes a second PIN buffer; the policy wipeConfig sets allows it.
const nfdPIN = "24e\u0301681"

// wipeConfig keeps a PIN history, so that every kind of secret buffer is
// made, and uses ECC P-256 keys, which the TPM makes quickly.
func wipeConfig() Config {
	cfg := testConfig()
	cfg.Algorithm = tpm.ECCP256
	cfg.PINPolicy = PINPolicy{LowercaseLetters: CharAllow, History: 5}
	return cfg
}

// allKinds is every kind of secret buffer.
var allKinds = []string{secretS, secretPIN, secretPINAuth, secretKeyAuth, secretDerivedKey, secretHistoryMAC, secretHistory}

// The observer sees the buffers themselves: a buffer left unwiped is caught.
func TestSecretLogCatchesAnUnwipedBuffer(t *testing.T) {
	var l secretLog
	o := newOptions([]Option{l.opt()})
	k := o.keyAuth(make([]byte, secretLen), "1b4e28ba-2fa1-41d2-883f-0016d3cca427", LoginKeyName)
	require.Len(t, l.notWiped(), 1)
	assert.Equal(t, secretKeyAuth, l.notWiped()[0].kind)
	clear(k)
	assert.Empty(t, l.notWiped())
}

func TestSecretBuffersWipedAfterEachOperation(t *testing.T) {
	tp := openTPM(t)
	ctx := context.Background()
	var l secretLog
	svc, next := newServiceKey(t, protector.HPKEX25519), newServiceKey(t, protector.HPKEX25519)

	c, err := Provision(ctx, tp, wipeConfig(), nfdPIN, l.opt())
	require.NoError(t, err)
	assert.Len(t, l.of(secretPIN), 2, "the PIN is normalised once, where it enters: the typed bytes and one NFC buffer")
	l.requireWiped(t, "Provision", allKinds...)

	// A session holds S until Close, and wipes everything else as it goes.
	s, err := Unlock(ctx, tp, c, nfdPIN, l.opt())
	require.NoError(t, err)
	secrets := l.of(secretS)
	require.Len(t, secrets, 1)
	live := secrets[0]
	assert.Same(t, &s.secret[0], &live[0], "the secret seen is the session's")
	sessionHoldsOnlyS := func(what string) {
		t.Helper()
		left := l.notWiped()
		require.Len(t, left, 1, "%s: only S may be left", what)
		assert.Equal(t, secretS, left[0].kind, what)
		assert.Same(t, &live[0], &left[0].buf[0], what)
	}
	sessionHoldsOnlyS("Unlock")
	signVerify(t, s.Signer(), c.PublicKey())
	_, err = s.AddKey(ctx, "vpn", tpm.ECCP256)
	require.NoError(t, err)
	vpn, err := s.Key("vpn")
	require.NoError(t, err)
	signVerify(t, vpn, vpn.Public())
	e, err := s.EnablePINRecovery(ctx, svc.Public())
	require.NoError(t, err)
	sessionHoldsOnlyS("AddKey, Key and EnablePINRecovery")
	assert.Len(t, l.of(secretKeyAuth), 3, "login key, vpn key created, vpn key loaded")
	require.NoError(t, s.Close())
	l.requireWiped(t, "Unlock, AddKey, EnablePINRecovery, Close", secretS, secretPIN, secretPINAuth, secretKeyAuth, secretDerivedKey)

	n, err := ChangePIN(ctx, tp, e, nfdPIN, otherPIN, l.opt())
	require.NoError(t, err)
	l.requireWiped(t, "ChangePIN", secretS, secretPIN, secretPINAuth, secretDerivedKey, secretHistoryMAC, secretHistory)

	r := recovered(t, svc, n)
	defer r.Destroy()
	nk := next.Public()
	m, err := ResetPIN(ctx, tp, n, r, thirdPIN, &nk, l.opt())
	require.NoError(t, err)
	l.requireWiped(t, "ResetPIN", secretS, secretPIN, secretPINAuth, secretDerivedKey, secretHistoryMAC, secretHistory)

	d, err := Reprovision(ctx, tp, m, testPIN, l.opt())
	require.NoError(t, err)
	l.requireWiped(t, "Reprovision", allKinds...)

	// The containers still work: wiping touched only working copies.
	signVerify(t, unlock(t, tp, m, thirdPIN).Signer(), c.PublicKey())
	signVerify(t, unlock(t, tp, d, testPIN).Signer(), d.PublicKey())
}

func TestSecretBuffersWipedWhenOperationsFail(t *testing.T) {
	tp, svc := openWithService(t)
	ctx := context.Background()
	c := provision(t, tp, wipeConfig())
	s := unlock(t, tp, c, testPIN)
	secret := append([]byte(nil), s.secret...)
	e, err := s.EnablePINRecovery(ctx, svc.Public())
	require.NoError(t, err)
	require.NoError(t, s.Close())
	r := recovered(t, svc, e)
	defer r.Destroy()
	var l secretLog

	t.Run("wrong PIN", func(t *testing.T) {
		_, err := Unlock(ctx, tp, e, otherPIN, l.opt())
		require.ErrorIs(t, err, ErrWrongPIN)
		_, err = ChangePIN(ctx, tp, e, otherPIN, thirdPIN, l.opt())
		require.ErrorIs(t, err, ErrWrongPIN)
		assert.Empty(t, l.of(secretS))
		l.requireWiped(t, "wrong PIN", secretPIN, secretPINAuth)
	})

	t.Run("weak new PIN", func(t *testing.T) {
		const weak = "1234" // a constant delta
		_, err := Provision(ctx, tp, wipeConfig(), weak, l.opt())
		require.ErrorIs(t, err, ErrPINPolicy)
		_, err = ChangePIN(ctx, tp, e, testPIN, weak, l.opt())
		require.ErrorIs(t, err, ErrPINPolicy)
		_, err = ResetPIN(ctx, tp, e, r, weak, nil, l.opt())
		require.ErrorIs(t, err, ErrPINPolicy)
		_, err = Reprovision(ctx, tp, e, weak, l.opt())
		require.ErrorIs(t, err, ErrPINPolicy)
		assert.Len(t, l.of(secretPIN), 4)
		assert.Empty(t, l.of(secretS), "a weak PIN is refused before the secret is made or opened")
		l.requireWiped(t, "weak new PIN", secretPIN)
	})

	t.Run("PIN in history", func(t *testing.T) {
		_, err := ChangePIN(ctx, tp, e, testPIN, testPIN, l.opt())
		var pe *PolicyError
		require.ErrorAs(t, err, &pe)
		require.Equal(t, RuleHistory, pe.Rule)
		l.requireWiped(t, "PIN in history", secretS, secretPIN, secretPINAuth, secretDerivedKey, secretHistoryMAC, secretHistory)
	})

	t.Run("tampered container", func(t *testing.T) {
		x := e.clone()
		x.keyID = "{00000000-0000-4000-8000-000000000000}"
		_, err := Unlock(ctx, tp, x, testPIN, l.opt())
		require.Error(t, err)
		_, err = ChangePIN(ctx, tp, x, testPIN, otherPIN, l.opt())
		require.Error(t, err)
		_, err = ResetPIN(ctx, tp, x, r, otherPIN, nil, l.opt())
		var fe *FormatError
		require.ErrorAs(t, err, &fe)
		assert.Len(t, l.of(secretS), 3, "each opened the secret, then found the tag wrong")
		l.requireWiped(t, "tampered container", secretS, secretPIN, secretPINAuth, secretDerivedKey)
	})

	t.Run("TPM refuses the PIN protector", func(t *testing.T) {
		x := e.clone()
		switch p := x.pin.(type) {
		case sealedProtector:
			p.blob.Private[len(p.blob.Private)-1] ^= 1
		case nvProtector:
			p.nv.Handle ^= 1 // no index there
			x.pin = p
		}
		_, err := Unlock(ctx, tp, x, testPIN, l.opt())
		require.Error(t, err)
		assert.NotErrorIs(t, err, ErrWrongPIN)
		l.requireWiped(t, "corrupt PIN protector", secretPIN, secretPINAuth)
	})

	t.Run("TPM refuses the login key", func(t *testing.T) {
		// The file is altered and re-tagged with the secret, so that only
		// the TPM can tell: Unlock holds S when loading the key fails.
		x := e.clone()
		x.keys[0].blob.Private[len(x.keys[0].blob.Private)-1] ^= 1
		require.NoError(t, x.authenticate(secret, nil))
		_, err := Unlock(ctx, tp, x, testPIN, l.opt())
		require.Error(t, err)
		l.requireWiped(t, "login key does not load", secretS, secretKeyAuth)
	})

	t.Run("randomness fails", func(t *testing.T) {
		// Fail the k-th read of randomness for every k until the operation
		// no longer reads that often: every exit path is taken once.
		ops := []struct {
			name string
			run  func(rnd io.Reader) error
		}{
			{"Provision", func(rnd io.Reader) error {
				_, err := Provision(ctx, tp, wipeConfig(), testPIN, l.opt(), WithRand(rnd))
				return err
			}},
			{"EnablePINRecovery", func(rnd io.Reader) error {
				s, err := Unlock(ctx, tp, e, testPIN, l.opt(), WithRand(rnd))
				if err != nil {
					return err
				}
				defer s.Close()
				_, err = s.EnablePINRecovery(ctx, svc.Public())
				return err
			}},
			{"ChangePIN", func(rnd io.Reader) error {
				_, err := ChangePIN(ctx, tp, e, testPIN, otherPIN, l.opt(), WithRand(rnd))
				return err
			}},
			{"ResetPIN", func(rnd io.Reader) error {
				nk := svc.Public()
				_, err := ResetPIN(ctx, tp, e, r, otherPIN, &nk, l.opt(), WithRand(rnd))
				return err
			}},
			{"Reprovision", func(rnd io.Reader) error {
				_, err := Reprovision(ctx, tp, e, otherPIN, l.opt(), WithRand(rnd))
				return err
			}},
		}
		for _, op := range ops {
			failed := 0
			for k := 0; ; k++ {
				require.Less(t, k, 50, "%s reads randomness more than 50 times", op.name)
				err := op.run(&failingRand{failAt: k})
				what := fmt.Sprintf("%s, read %d fails", op.name, k)
				l.requireWiped(t, what)
				if err == nil {
					break
				}
				require.ErrorIs(t, err, errNoRandomness, what)
				failed++
			}
			assert.Positive(t, failed, op.name)
		}
	})
}

var errNoRandomness = errors.New("randomness unavailable")

// failingRand is crypto/rand until its failAt-th read, which fails.
type failingRand struct{ reads, failAt int }

func (f *failingRand) Read(p []byte) (int, error) {
	f.reads++
	if f.reads-1 == f.failAt {
		return 0, errNoRandomness
	}
	return rand.Read(p)
}

// The TPM stops answering (closed) at every point where an operation reads
// randomness, so that each TPM command it sends after holding a secret fails
// once.
func TestSecretBuffersWipedWhenTheTPMFails(t *testing.T) {
	ctx := context.Background()
	ops := []struct {
		name string
		run  func(t *testing.T, tp *tpm.TPM, opts ...Option) error
	}{
		{"Provision", func(t *testing.T, tp *tpm.TPM, opts ...Option) error {
			_, err := Provision(ctx, tp, wipeConfig(), testPIN, opts...)
			return err
		}},
		{"ChangePIN", func(t *testing.T, tp *tpm.TPM, opts ...Option) error {
			c := provision(t, tp, wipeConfig())
			_, err := ChangePIN(ctx, tp, c, testPIN, otherPIN, opts...)
			return err
		}},
		{"ResetPIN", func(t *testing.T, tp *tpm.TPM, opts ...Option) error {
			svc := newServiceKey(t, protector.HPKEX25519)
			s := unlock(t, tp, provision(t, tp, wipeConfig()), testPIN)
			e, err := s.EnablePINRecovery(ctx, svc.Public())
			require.NoError(t, err)
			require.NoError(t, s.Close())
			r := recovered(t, svc, e)
			defer r.Destroy()
			nk := svc.Public()
			_, err = ResetPIN(ctx, tp, e, r, otherPIN, &nk, opts...)
			return err
		}},
		{"Reprovision", func(t *testing.T, tp *tpm.TPM, opts ...Option) error {
			c := provision(t, tp, wipeConfig())
			_, err := Reprovision(ctx, tp, c, otherPIN, opts...)
			return err
		}},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			tpmFailed := 0
			for k := 0; ; k++ {
				require.Less(t, k, 50)
				done := false
				t.Run(fmt.Sprint("close at read ", k), func(t *testing.T) {
					tp := openTPM(t)
					var l secretLog
					rnd := &closingRand{tp: tp, closeAt: k}
					err := op.run(t, tp, l.opt(), WithRand(rnd))
					heldS := len(l.of(secretS)) > 0
					l.requireWiped(t, op.name)
					if err == nil {
						done = true
						return
					}
					require.ErrorIs(t, err, tpm.ErrClosed)
					if heldS {
						tpmFailed++
					}
				})
				if done || t.Failed() {
					break
				}
			}
			assert.Positive(t, tpmFailed, "the TPM never failed while %s held the secret", op.name)
		})
	}
}

// closingRand is crypto/rand that closes the TPM at its closeAt-th read.
type closingRand struct {
	tp             *tpm.TPM
	reads, closeAt int
}

func (c *closingRand) Read(p []byte) (int, error) {
	if c.reads == c.closeAt {
		c.tp.Close()
	}
	c.reads++
	return rand.Read(p)
}
