package container

import (
	"context"
	"crypto"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// maxFileBytes is the size budget of a container file with an RSA-2048
// login key, the PIN reset protector and a full PIN history.
const maxFileBytes = 4 << 10

// perfSizeSchemes are the protector schemes whose envelopes go into a file.
var perfSizeSchemes = []struct {
	name string
	s    protector.Scheme
}{{"x25519", protector.HPKEX25519}, {"wing", protector.HPKEXWing}, {"rsa3072", protector.RSAOAEP3072}}

// perfPIN is the i-th PIN of a sequence with no repeats among the first
// MaxPINHistory+1 values.
func perfPIN(i int) string { return fmt.Sprintf("%08d", 73910417+i*7919) }

// fullContainer provisions a container with the largest history policy,
// enrols the PIN reset protector under a key of scheme s and changes the
// PIN until the history is full. It returns the container, the sizes of
// the file at each stage, and the PIN it ends with.
func fullContainer(tb testing.TB, tp *tpm.TPM, alg tpm.KeyAlgorithm, s protector.Scheme) (c *Container, fresh, withProtector, full int) {
	tb.Helper()
	ctx := context.Background()
	cfg := testConfig()
	cfg.Algorithm = alg
	cfg.PINPolicy.History = MaxPINHistory
	pin := perfPIN(0)
	c, err := Provision(ctx, tp, cfg, pin)
	require.NoError(tb, err)
	fresh = len(marshal(tb, c))

	sk, err := protector.GenerateServiceKey(s)
	require.NoError(tb, err)
	sess := unlock(tb, tp, c, pin)
	c, err = sess.EnablePINRecovery(ctx, sk.Public())
	require.NoError(tb, err)
	require.NoError(tb, sess.Close())
	require.NotNil(tb, c.Envelope())
	withProtector = len(marshal(tb, c))

	// One change more than the history holds, so it is full.
	for i := 1; i <= MaxPINHistory+1; i++ {
		next := perfPIN(i)
		c, err = ChangePIN(ctx, tp, c, pin, next)
		require.NoError(tb, err)
		pin = next
	}
	require.NotNil(tb, c.Envelope(), "changing the PIN dropped the protector")
	// The history is full: an early PIN of the sequence is refused.
	_, err = ChangePIN(ctx, tp, c, pin, perfPIN(2))
	require.ErrorIs(tb, err, ErrPINPolicy)
	full = len(marshal(tb, c))

	// The file parses back to the same bytes.
	p, err := Parse(marshal(tb, c))
	require.NoError(tb, err)
	require.Equal(tb, marshal(tb, c), marshal(tb, p))
	return c, fresh, withProtector, full
}

// TestPerfFileSizeBudget checks the memory goal: a container file
// with an RSA-2048 login key stays under 4 KiB with the PIN reset
// protector (every scheme) and a full PIN history.
func TestPerfFileSizeBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("provisions six containers and changes their PINs 52 times each")
	}
	tp := openTPM(t)
	for _, alg := range []tpm.KeyAlgorithm{tpm.RSA2048, tpm.ECCP256} {
		for _, sc := range perfSizeSchemes {
			t.Run(alg.String()+"/"+sc.name, func(t *testing.T) {
				_, fresh, prot, full := fullContainer(t, tp, alg, sc.s)
				t.Logf("file bytes: fresh %d, with protector %d, with protector and full history %d", fresh, prot, full)
				require.Less(t, fresh, prot)
				require.Less(t, prot, full)
				require.Less(t, full, maxFileBytes)
			})
		}
	}
}

// BenchmarkContainerFile measures MarshalBinary and Parse of a container
// with the protector and a full PIN history, and reports its size at each
// stage (fresh-bytes, protector-bytes, file-bytes).
func BenchmarkContainerFile(b *testing.B) {
	tp := openTPM(b)
	for _, alg := range []tpm.KeyAlgorithm{tpm.RSA2048, tpm.ECCP256} {
		for _, sc := range perfSizeSchemes {
			b.Run(alg.String()+"/"+sc.name, func(b *testing.B) {
				c, fresh, prot, full := fullContainer(b, tp, alg, sc.s)
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					data, err := c.MarshalBinary()
					if err != nil {
						b.Fatal(err)
					}
					if _, err := Parse(data); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(fresh), "fresh-bytes")
				b.ReportMetric(float64(prot), "protector-bytes")
				b.ReportMetric(float64(full), "file-bytes")
			})
		}
	}
}

// TestPerfCommandBudget checks the TPM command budgets with the SRK
// and the shared session already open, and logs which commands each
// operation sends. The limits are the budgets: provisioning at
// most 4, unlock and the first signature at most 5 (goal 3), each further
// signature 1, change PIN 5, a non-destructive reset with its Retire 3, a
// destructive one 4. With rollback protection provisioning and unlock are
// 3 each, which the embedded simulator is held to; swtpm answers the first
// DA-protected command after it starts with TPM_RC_RETRY, and the resent
// command counts too.
func TestPerfCommandBudget(t *testing.T) {
	tp := openTPM(t)
	ctx := context.Background()
	digest := make([]byte, 32)
	step := func(name string, limit uint64, f func()) {
		t.Helper()
		tp.ResetStats()
		f()
		st := tp.Stats()
		t.Logf("%s: %d commands %v", name, st.Total(), st.Commands)
		require.LessOrEqual(t, st.Total(), limit, name)
	}
	var c *Container
	exact := func(sim, budget uint64) uint64 {
		if tpmtest.Spec() == "sim" {
			return sim
		}
		return budget
	}
	step("provision", exact(3, 4), func() { c = provision(t, tp, testConfig()) })
	require.True(t, c.RollbackProtection().On)
	var s *Session
	step("unlock + first signature", exact(3, 5), func() {
		s = unlock(t, tp, c, testPIN)
		_, err := s.Signer().Sign(nil, digest, crypto.SHA256)
		require.NoError(t, err)
	})
	step("next signature", 1, func() {
		_, err := s.Signer().Sign(nil, digest, crypto.SHA256)
		require.NoError(t, err)
	})
	require.NoError(t, s.Close())
	step("change PIN", 5, func() {
		var err error
		c, err = ChangePIN(ctx, tp, c, testPIN, otherPIN)
		require.NoError(t, err)
	})
	svc := newServiceKey(t, protector.HPKEX25519)
	s = unlock(t, tp, c, otherPIN)
	c, err := s.EnablePINRecovery(ctx, svc.Public())
	require.NoError(t, err)
	require.NoError(t, s.Close())
	r := recovered(t, svc, c)
	defer r.Destroy()
	next := svc.Public()
	step("non-destructive reset + retire", 3, func() {
		c, err = ResetPIN(ctx, tp, c, r, thirdPIN, &next)
		require.NoError(t, err)
		c, err = Retire(ctx, tp, c)
		require.NoError(t, err)
	})
	step("destructive reset + retire", 4, func() {
		c, err = Reprovision(ctx, tp, c, testPIN)
		require.NoError(t, err)
		c, err = Retire(ctx, tp, c)
		require.NoError(t, err)
	})
}
