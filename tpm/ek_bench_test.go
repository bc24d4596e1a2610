package tpm_test

import (
	"context"
	"crypto/x509"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// BenchmarkVerifyEndorsement is the one-time cost of showing a connection
// talks to a genuine TPM: reading the EK certificate and chain from NV,
// verifying the chain, bringing the EK in and activating a credential for
// the SRK. Each iteration uses a fresh pool (a copy of the same roots), so
// the per-connection cache does not answer.
func BenchmarkVerifyEndorsement(b *testing.B) {
	run := func(b *testing.B, tp *tpm.TPM, roots *x509.CertPool) {
		ctx := context.Background()
		tp.ResetStats()
		b.ResetTimer()
		for b.Loop() {
			if _, err := tp.VerifyEndorsement(ctx, roots.Clone()); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(tp.Stats().Total())/float64(b.N), "tpm-cmds/op")
	}
	b.Run("manufactured-ECCP256", func(b *testing.B) {
		tp := tpmtest.Open(b)
		run(b, tp, tpmtest.Manufacture(b, tp))
	})
	b.Run("manufactured-RSA2048", func(b *testing.B) {
		tp := tpmtest.Open(b)
		run(b, tp, tpmtest.ManufactureWith(b, tp, tpmtest.ManufactureOptions{RSA: true}))
	})
	b.Run("genuine", func(b *testing.B) {
		roots := tpmtest.Roots(b)
		run(b, tpmtest.Open(b), roots)
	})
}

// BenchmarkEKSaltedSessionStart is the alternative design measured: salting
// the shared session to the certified EK instead of proving the SRK. Every
// session start (the first, and each restart after an error) then needs
// the EK loaded: TPM2_CreatePrimary of the EK (no persistent EK on the
// simulator), the salted TPM2_StartAuthSession, and a flush of the EK.
func BenchmarkEKSaltedSessionStart(b *testing.B) {
	for _, tc := range []struct {
		name     string
		template tpm2.TPMTPublic
	}{{"ECCP256", tpm2.ECCEKTemplate}, {"RSA2048", tpm2.RSAEKTemplate}} {
		b.Run(tc.name, func(b *testing.B) {
			tr := tpmtest.OpenTransport(b)
			var cmds int
			for b.Loop() {
				ek, err := tpm2.CreatePrimary{
					PrimaryHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHEndorsement, Auth: tpm2.PasswordAuth(nil)},
					InPublic:      tpm2.New2B(tc.template),
				}.Execute(tr)
				if err != nil {
					b.Fatal(err)
				}
				pub, err := ek.OutPublic.Contents()
				if err != nil {
					b.Fatal(err)
				}
				// go-tpm's own salted session: the salt encrypted to the
				// EK, then TPM2_StartAuthSession with AES-128-CFB.
				_, closeSession, err := tpm2.HMACSession(tr, tpm2.TPMAlgSHA256, 32,
					tpm2.Salted(ek.ObjectHandle, *pub), tpm2.AESEncryption(128, tpm2.EncryptInOut))
				if err != nil {
					b.Fatal(err)
				}
				_, _ = tpm2.FlushContext{FlushHandle: ek.ObjectHandle}.Execute(tr)
				cmds += 3
				b.StopTimer()
				_ = closeSession()
				b.StartTimer()
			}
			b.ReportMetric(float64(cmds)/float64(b.N), "tpm-cmds/op")
		})
	}
}
