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
// service key, the HTTP recovery on loopback, the container work and the
// Retire that revokes the container before. It reports the TPM commands per
// reset (the budget is three: NV_DefineSpace and NV_Write of S under the
// new PIN, NV_UndefineSpace of the old index). Minting the token is outside
// the timer.
func BenchmarkNonDestructiveReset(b *testing.B) {
	benchReset(b, resettest.New(b, resettest.WithRateLimit(service.RateLimit{Unlimited: true})), reset.NonDestructive)
}

// BenchmarkDestructiveReset measures a destructive reset with key
// registration in the directory and the Retire that revokes the container
// before; the budget is four TPM commands (NV_DefineSpace, NV_Write, Create
// of the login key, NV_UndefineSpace).
func BenchmarkDestructiveReset(b *testing.B) {
	benchReset(b, resettest.New(b, resettest.WithoutRecovery()), reset.Destructive)
}

// benchReset times do, then container.Retire, on w's container and each
// result in turn (as a client resets its saved container), with a fresh
// token each round (minted outside the timer), and reports the TPM commands
// per reset.
func benchReset(b *testing.B, w *resettest.World, do func(context.Context, reset.Env, *container.Container, reset.Request) (*container.Container, error)) {
	ctx := context.Background()
	var cmds uint64
	c := w.Container
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		req := reset.Request{Token: w.Token(b), NewPIN: newPIN}
		w.TPM.ResetStats()
		b.StartTimer()
		n, err := do(ctx, w.Env(), c, req)
		if err != nil {
			b.Fatal(err)
		}
		if c, err = container.Retire(ctx, w.TPM, n); err != nil {
			b.Fatal(err)
		}
		cmds += w.TPM.Stats().Total()
	}
	b.ReportMetric(float64(cmds)/float64(b.N), "tpm-cmds/op")
}
