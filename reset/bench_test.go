package reset_test

import (
	"context"
	"testing"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/resettest"
	"github.com/hellosim/hellosim/reset/service"
)

// BenchmarkNonDestructiveReset measures a whole non-destructive reset: the
// service key, the HTTP recovery on loopback, and the container work. It
// reports the TPM commands per reset (the target is one: sealing S under
// the new PIN). Minting the token is outside the timer.
func BenchmarkNonDestructiveReset(b *testing.B) {
	benchReset(b, resettest.New(b, resettest.WithRateLimit(service.RateLimit{Unlimited: true})), reset.NonDestructive)
}

// BenchmarkDestructiveReset measures a destructive reset with key
// registration in the directory; the target is at most three TPM commands
// (seal S, create the login key).
func BenchmarkDestructiveReset(b *testing.B) {
	benchReset(b, resettest.New(b, resettest.WithoutRecovery()), reset.Destructive)
}

// benchReset times do on w's container with a fresh token each round (minted
// outside the timer) and reports the TPM commands per reset.
func benchReset(b *testing.B, w *resettest.World, do func(context.Context, reset.Env, *container.Container, reset.Request) (*container.Container, error)) {
	ctx := context.Background()
	var cmds uint64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		req := reset.Request{Token: w.Token(b), NewPIN: newPIN}
		w.TPM.ResetStats()
		b.StartTimer()
		if _, err := do(ctx, w.Env(), w.Container, req); err != nil {
			b.Fatal(err)
		}
		cmds += w.TPM.Stats().Total()
	}
	b.ReportMetric(float64(cmds)/float64(b.N), "tpm-cmds/op")
}
