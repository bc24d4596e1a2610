package tpm_test

import (
	"context"
	"crypto"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// keepOpen hides the transport's Close, so the test can ask the TPM what is
// left after the library closed its connection.
type keepOpen struct{ transport.TPM }

// rawHandles asks the TPM directly which transient objects and sessions
// are loaded.
func rawHandles(t *testing.T, tr transport.TPM) (objects, sessions []tpm2.TPMHandle) {
	t.Helper()
	get := func(first tpm2.TPMHT) []tpm2.TPMHandle {
		rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapHandles, Property: uint32(first) << 24, PropertyCount: 64}.Execute(tr)
		require.NoError(t, err)
		hs, err := rsp.CapabilityData.Data.Handles()
		require.NoError(t, err)
		return hs.Handle
	}
	return get(tpm2.TPMHTTransient), get(tpm2.TPMHTHMACSession)
}

func TestCloseFlushesEverything(t *testing.T) {
	raw := tpmtest.OpenTransport(t)
	tp, err := tpm.New(keepOpen{raw})
	require.NoError(t, err)
	ctx := context.Background()
	b, err := tp.Seal(ctx, []byte("secret"), []byte("auth"))
	require.NoError(t, err)
	_, err = tp.Unseal(ctx, b, []byte("wrong"))
	require.ErrorIs(t, err, tpm.ErrAuthFailed)
	require.NoError(t, tp.ResetLockout(ctx, nil))
	var keys []*tpm.Key
	for _, alg := range algorithms {
		kb, _, err := tp.CreateKey(ctx, alg, nil)
		require.NoError(t, err)
		k, err := tp.LoadKey(ctx, kb, nil)
		require.NoError(t, err)
		keys = append(keys, k)
	}
	objs, sess := rawHandles(t, raw)
	assert.Len(t, objs, 3, "SRK and two keys")
	assert.Len(t, sess, 1, "the shared session")

	require.NoError(t, tp.Close())
	objs, sess = rawHandles(t, raw)
	assert.Empty(t, objs, "transient objects after Close")
	assert.Empty(t, sess, "sessions after Close")
	_, err = keys[0].SignContext(ctx, digestOf("x"), crypto.SHA256)
	assert.ErrorIs(t, err, tpm.ErrClosed)
}

// When the TPM loses the shared session (here: flushed behind the library's
// back) the next command starts a new one and is sent once more.
func TestSessionRestartsWhenLost(t *testing.T) {
	raw := tpmtest.OpenTransport(t)
	tp := tpmtest.OpenOn(t, raw)
	ctx := context.Background()
	b, err := tp.Seal(ctx, []byte("secret"), []byte("auth"))
	require.NoError(t, err)

	for _, op := range []string{"unseal", "seal", "sign"} {
		_, sess := rawHandles(t, raw)
		require.Len(t, sess, 1)
		_, err = tpm2.FlushContext{FlushHandle: sess[0]}.Execute(raw)
		require.NoError(t, err)
		switch op {
		case "unseal":
			got, err := tp.Unseal(ctx, b, []byte("auth"))
			require.NoError(t, err)
			assert.Equal(t, []byte("secret"), got)
		case "seal":
			_, err := tp.Seal(ctx, []byte("again"), []byte("auth"))
			require.NoError(t, err)
		case "sign":
			kb, _, err := tp.CreateKey(ctx, tpm.ECCP256, nil)
			require.NoError(t, err)
			k, err := tp.LoadKey(ctx, kb, nil)
			require.NoError(t, err)
			_, sess := rawHandles(t, raw)
			_, err = tpm2.FlushContext{FlushHandle: sess[0]}.Execute(raw)
			require.NoError(t, err)
			d := digestOf("x")
			sig, err := k.SignContext(ctx, d, crypto.SHA256)
			require.NoError(t, err)
			verify(t, k.Public(), d, sig, crypto.SHA256)
			require.NoError(t, k.Close())
		}
		requireOnlyBaseline(t, tp, 0)
	}
	st, err := tp.LockoutStatus(ctx)
	require.NoError(t, err)
	assert.Zero(t, st.Failures, "a lost session never costs a dictionary-attack count")
}

// A key flushed behind the library's back reloads itself and signs.
func TestKeyReloadsWhenFlushedElsewhere(t *testing.T) {
	raw := tpmtest.OpenTransport(t)
	tp := tpmtest.OpenOn(t, raw)
	ctx := context.Background()
	before, _ := rawHandles(t, raw)
	require.Len(t, before, 1, "the SRK")
	kb, _, err := tp.CreateKey(ctx, tpm.RSA2048, []byte("k"))
	require.NoError(t, err)
	k, err := tp.LoadKey(ctx, kb, []byte("k"))
	require.NoError(t, err)
	defer k.Close()
	after, _ := rawHandles(t, raw)
	require.Len(t, after, 2)
	for _, h := range after {
		if h != before[0] {
			_, err = tpm2.FlushContext{FlushHandle: h}.Execute(raw)
			require.NoError(t, err)
		}
	}
	d := digestOf("x")
	sig, err := k.SignContext(ctx, d, crypto.SHA256)
	require.NoError(t, err)
	verify(t, k.Public(), d, sig, crypto.SHA256)
	requireOnlyBaseline(t, tp, 1)
}

// faulty answers the first n commands with code cc with a TPM warning,
// as swtpm answers TPM_RC_RETRY to the first DA-protected command after it
// starts. Everything else goes to the real TPM.
// With lose set it instead sends the command and loses the response, or
// (drop) loses the command.
type faulty struct {
	transport.TPM
	mu         sync.Mutex
	cc         tpm2.TPMCC
	rc         tpm2.TPMRC
	n          int
	lose, drop bool
}

var errInjected = errors.New("injected transport failure")

func (f *faulty) Send(cmd []byte) ([]byte, error) {
	f.mu.Lock()
	inject := len(cmd) >= 10 && tpm2.TPMCC(binary.BigEndian.Uint32(cmd[6:10])) == f.cc && f.n > 0
	if inject {
		f.n--
	}
	lose, drop := f.lose, f.drop
	f.mu.Unlock()
	if inject && drop {
		return nil, errInjected
	}
	if inject && lose {
		_, _ = f.TPM.Send(cmd)
		return nil, errInjected
	}
	if inject {
		rsp := make([]byte, 10)
		binary.BigEndian.PutUint16(rsp, uint16(tpm2.TPMSTNoSessions))
		binary.BigEndian.PutUint32(rsp[2:], 10)
		binary.BigEndian.PutUint32(rsp[6:], uint32(f.rc))
		return rsp, nil
	}
	return f.TPM.Send(cmd)
}

func TestRetriesTPMWarnings(t *testing.T) {
	for _, rc := range []tpm2.TPMRC{tpm2.TPMRCRetry, tpm2.TPMRCYielded, tpm2.TPMRCTesting} {
		t.Run(rc.Error()[:12], func(t *testing.T) {
			raw := tpmtest.OpenTransport(t)
			f := &faulty{TPM: raw}
			tp, err := tpm.New(f)
			require.NoError(t, err)
			tpmtest.Prepare(t, tp)
			ctx := context.Background()
			b, err := tp.Seal(ctx, []byte("secret"), []byte("auth"))
			require.NoError(t, err)

			f.mu.Lock()
			f.cc, f.rc, f.n = tpm2.TPMCCUnseal, rc, 2
			f.mu.Unlock()
			tp.ResetStats()
			got, err := tp.Unseal(ctx, b, []byte("auth"))
			require.NoError(t, err)
			assert.Equal(t, []byte("secret"), got)
			assert.Equal(t, uint64(3), tp.Stats().Commands[tpm2.TPMCCUnseal], "sent three times")

			f.mu.Lock()
			f.cc, f.rc, f.n = tpm2.TPMCCCreate, rc, 1
			f.mu.Unlock()
			_, err = tp.Seal(ctx, []byte("secret"), []byte("auth"))
			require.NoError(t, err)
			requireOnlyBaseline(t, tp, 0)
		})
	}
}

// A cancelled context stops the retries.
func TestRetryHonoursContext(t *testing.T) {
	raw := tpmtest.OpenTransport(t)
	f := &faulty{TPM: raw}
	tp, err := tpm.New(f)
	require.NoError(t, err)
	tpmtest.Prepare(t, tp)
	f.mu.Lock()
	f.cc, f.rc, f.n = tpm2.TPMCCCreate, tpm2.TPMRCRetry, 1<<30
	f.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for tp.Stats().Commands[tpm2.TPMCCCreate] < 3 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err = tp.Seal(ctx, []byte("secret"), []byte("auth"))
	require.ErrorIs(t, err, context.Canceled)
}

// Lost responses and lost commands leave nothing loaded: a TPM2_Load or
// TPM2_StartAuthSession whose answer is lost is found and flushed, a lost
// TPM2_FlushContext is sent again.
func TestLostResponsesLeakNothing(t *testing.T) {
	raw := tpmtest.OpenTransport(t)
	f := &faulty{TPM: raw}
	tp := tpmtest.OpenOn(t, f)
	ctx := context.Background()
	b, err := tp.Seal(ctx, []byte("secret"), []byte("auth"))
	require.NoError(t, err)
	arm := func(cc tpm2.TPMCC, lose, drop bool) {
		f.mu.Lock()
		f.cc, f.n, f.lose, f.drop = cc, 1, lose, drop
		f.mu.Unlock()
	}
	for _, tc := range []struct {
		cc         tpm2.TPMCC
		lose, drop bool
		wantErr    bool
	}{
		{tpm2.TPMCCLoad, true, false, true},
		{tpm2.TPMCCLoad, false, true, true},
		{tpm2.TPMCCUnseal, true, false, true},
		{tpm2.TPMCCFlushContext, true, false, false},
		{tpm2.TPMCCFlushContext, false, true, false},
		{tpm2.TPMCCStartAuthSession, true, false, true},
	} {
		if tc.cc == tpm2.TPMCCStartAuthSession {
			_, sess := rawHandles(t, raw)
			_, err := tpm2.FlushContext{FlushHandle: sess[0]}.Execute(raw)
			require.NoError(t, err)
		}
		arm(tc.cc, tc.lose, tc.drop)
		got, err := tp.Unseal(ctx, b, []byte("auth"))
		if tc.wantErr {
			require.ErrorIs(t, err, errInjected, "%v", tc.cc)
		} else {
			require.NoError(t, err, "%v", tc.cc)
			assert.Equal(t, []byte("secret"), got)
		}
		objs, sess := rawHandles(t, raw)
		assert.Len(t, objs, 1, "%v: only the SRK", tc.cc)
		assert.LessOrEqual(t, len(sess), 1, "%v: at most the shared session", tc.cc)
		got, err = tp.Unseal(ctx, b, []byte("auth"))
		require.NoError(t, err, "%v: the next unseal", tc.cc)
		assert.Equal(t, []byte("secret"), got)
		requireOnlyBaseline(t, tp, 0)
	}
	st, err := tp.LockoutStatus(ctx)
	require.NoError(t, err)
	assert.Zero(t, st.Failures)
}

// onCommand calls f after a command with code cc went to the TPM.
type onCommand struct {
	transport.TPM
	cc tpm2.TPMCC
	f  func()
}

func (o *onCommand) Send(cmd []byte) ([]byte, error) {
	rsp, err := o.TPM.Send(cmd)
	if len(cmd) >= 10 && tpm2.TPMCC(binary.BigEndian.Uint32(cmd[6:10])) == o.cc {
		o.f()
	}
	return rsp, err
}

// Cancellation between TPM2_Load and TPM2_Unseal stops the unseal, and the
// loaded object is still flushed.
func TestCancelBetweenCommandsStillFlushes(t *testing.T) {
	raw := tpmtest.OpenTransport(t)
	ctx, cancel := context.WithCancel(context.Background())
	tp := tpmtest.OpenOn(t, &onCommand{TPM: raw, cc: tpm2.TPMCCLoad, f: cancel})
	b, err := tp.Seal(context.Background(), []byte("secret"), []byte("auth"))
	require.NoError(t, err)
	tp.ResetStats()
	_, err = tp.Unseal(ctx, b, []byte("auth"))
	require.ErrorIs(t, err, context.Canceled)
	s := tp.Stats()
	assert.Zero(t, s.Commands[tpm2.TPMCCUnseal], "no command after the cancellation")
	assert.Equal(t, uint64(1), s.Commands[tpm2.TPMCCFlushContext])
	requireOnlyBaseline(t, tp, 0)
}
