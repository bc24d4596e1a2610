package reset_test

import (
	"context"
	"testing"

	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/resettest"
	"github.com/hellosim/hellosim/reset/service"
)

// BenchmarkNonDestructiveReset measures a whole non-destructive reset: the
// service key, the HTTP recovery on loopback, and the container work. It
// reports the TPM commands per reset (the target is one: sealing S under
// the new PIN). Minting the token is outside the timer.
func BenchmarkNonDestructiveReset(b *testing.B) {
	w := resettest.New(b, resettest.WithRateLimit(service.RateLimit{Unlimited: true}))
	ctx := context.Background()
	var cmds uint64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		req := reset.Request{Token: w.Token(b), NewPIN: newPIN}
		w.TPM.ResetStats()
		b.StartTimer()
		if _, err := reset.NonDestructive(ctx, w.Env(), w.Container, req); err != nil {
			b.Fatal(err)
		}
		cmds += w.TPM.Stats().Total()
	}
	b.ReportMetric(float64(cmds)/float64(b.N), "tpm-cmds/op")
}

// BenchmarkDestructiveReset measures a destructive reset with key
// registration in the directory; the target is at most three TPM commands
// (seal S, create the login key).
func BenchmarkDestructiveReset(b *testing.B) {
	w := resettest.New(b, resettest.WithoutRecovery())
	ctx := context.Background()
	var cmds uint64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		req := reset.Request{Token: w.Token(b), NewPIN: newPIN}
		w.TPM.ResetStats()
		b.StartTimer()
		if _, err := reset.Destructive(ctx, w.Env(), w.Container, req); err != nil {
			b.Fatal(err)
		}
		cmds += w.TPM.Stats().Total()
	}
	b.ReportMetric(float64(cmds)/float64(b.N), "tpm-cmds/op")
}
