package container

import (
	"context"
	"crypto"
	"crypto/sha256"
	"testing"

	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// reportTPM reports the TPM commands per operation since the last ResetStats.
func reportTPM(b *testing.B, tp *tpm.TPM) {
	b.ReportMetric(float64(tp.Stats().Total())/float64(b.N), "tpm-cmds/op")
}

func benchAlg(b *testing.B, f func(b *testing.B, alg tpm.KeyAlgorithm)) {
	b.Run("RSA2048", func(b *testing.B) { f(b, tpm.RSA2048) })
	b.Run("ECCP256", func(b *testing.B) { f(b, tpm.ECCP256) })
}

func BenchmarkProvision(b *testing.B) {
	benchAlg(b, func(b *testing.B, alg tpm.KeyAlgorithm) {
		tp := tpmtest.Open(b)
		cfg := testConfig()
		cfg.Algorithm = alg
		ctx := context.Background()
		var c *Container
		var cmds uint64
		tp.ResetStats()
		b.ResetTimer()
		for b.Loop() {
			var err error
			c, err = Provision(ctx, tp, cfg, testPIN)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			cmds += tp.Stats().Total()
			// Each container takes an NV index: give it back, or NV fills.
			if err := Discard(ctx, tp, c); err != nil {
				b.Fatal(err)
			}
			tp.ResetStats()
			b.StartTimer()
		}
		b.StopTimer()
		b.ReportMetric(float64(cmds)/float64(b.N), "tpm-cmds/op")
		data, _ := c.MarshalBinary()
		b.ReportMetric(float64(len(data)), "file-bytes")
	})
}

// Unlock, first signature, Close: what a sign-in costs.
func BenchmarkUnlockSign(b *testing.B) {
	benchAlg(b, func(b *testing.B, alg tpm.KeyAlgorithm) {
		tp := tpmtest.Open(b)
		cfg := testConfig()
		cfg.Algorithm = alg
		benchUnlockSign(b, tp, provision(b, tp, cfg))
	})
}

// Signatures after the first in an open session.
func BenchmarkSignInSession(b *testing.B) {
	benchAlg(b, func(b *testing.B, alg tpm.KeyAlgorithm) {
		tp := tpmtest.Open(b)
		cfg := testConfig()
		cfg.Algorithm = alg
		c := provision(b, tp, cfg)
		s := unlock(b, tp, c, testPIN)
		signer := s.Signer()
		digest := sha256.Sum256([]byte("challenge"))
		if _, err := signer.Sign(nil, digest[:], crypto.SHA256); err != nil {
			b.Fatal(err)
		}
		tp.ResetStats()
		b.ResetTimer()
		for b.Loop() {
			if _, err := signer.Sign(nil, digest[:], crypto.SHA256); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		reportTPM(b, tp)
	})
}

func BenchmarkChangePIN(b *testing.B) {
	tp := tpmtest.Open(b)
	ctx := context.Background()
	c := provision(b, tp, testConfig())
	pins := [2]string{testPIN, otherPIN}
	tp.ResetStats()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		n, err := ChangePIN(ctx, tp, c, pins[i%2], pins[(i+1)%2])
		if err != nil {
			b.Fatal(err)
		}
		c = n
		i++
	}
	b.StopTimer()
	reportTPM(b, tp)
}

// BenchmarkUnlockSignSealed is BenchmarkUnlockSign (ECC P-256) for a
// container without rollback protection, its secret sealed in a blob: the
// cost rollback protection replaced (Load, Unseal, FlushContext before the
// key's Load and Sign).
func BenchmarkUnlockSignSealed(b *testing.B) {
	tp := tpmtest.Open(b)
	cfg := testConfig()
	cfg.Algorithm = tpm.ECCP256
	benchUnlockSign(b, tp, provision(b, tp, cfg, WithoutRollbackProtection("benchmark")))
}

// benchUnlockSign times Unlock, a first signature and Close of c, and
// reports the TPM commands each costs.
func benchUnlockSign(b *testing.B, tp *tpm.TPM, c *Container) {
	ctx := context.Background()
	digest := sha256.Sum256([]byte("challenge"))
	var cmds uint64
	tp.ResetStats()
	b.ResetTimer()
	for b.Loop() {
		s, err := Unlock(ctx, tp, c, testPIN)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Signer().Sign(nil, digest[:], crypto.SHA256); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cmds += tp.Stats().Total()
		s.Close() // flushes the login key; not part of the sign-in
		tp.ResetStats()
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(cmds)/float64(b.N), "tpm-cmds/op")
}
