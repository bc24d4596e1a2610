//go:build cgo

package tpm_test

import (
	"context"
	"crypto"
	"io"
	"sync/atomic"
	"testing"

	"github.com/google/go-tpm-tools/client"
	legacy "github.com/google/go-tpm/legacy/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// cmdCounter counts commands for the go-tpm-tools client.
type cmdCounter struct {
	transport.TPM
	n atomic.Uint64
}

func (c *cmdCounter) Send(cmd []byte) ([]byte, error) {
	c.n.Add(1)
	return c.TPM.Send(cmd)
}

// readWriter adapts a transport to the io.ReadWriter the legacy API of
// go-tpm (which go-tpm-tools' client uses) expects: unlike
// transport.ToReadWriter it does not return io.EOF with the last bytes.
type readWriter struct {
	tr  transport.TPM
	rsp []byte
}

func (rw *readWriter) Write(p []byte) (int, error) {
	rsp, err := rw.tr.Send(p)
	if err != nil {
		return 0, err
	}
	rw.rsp = rsp
	return len(p), nil
}

func (rw *readWriter) Read(p []byte) (int, error) {
	if len(rw.rsp) == 0 {
		return 0, io.EOF
	}
	n := copy(p, rw.rsp)
	rw.rsp = rw.rsp[n:]
	return n, nil
}

// benchTPMs opens one TPM and gives both our library and go-tpm-tools'
// client (with its own ECC SRK) access to it.
func benchTPMs(b *testing.B) (*tpm.TPM, *client.Key, *cmdCounter) {
	raw := tpmtest.OpenTransport(b)
	tp, err := tpm.New(keepOpen{raw})
	if err != nil {
		b.Fatal(err)
	}
	tpmtest.Prepare(b, tp)
	cc := &cmdCounter{TPM: raw}
	srk, err := client.NewKey(&readWriter{tr: cc}, legacy.HandleOwner, client.SRKTemplateECC())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srk.Close)
	return tp, srk, cc
}

var (
	benchSecret = []byte("0123456789abcdef0123456789abcdef")
	benchAuth   = []byte("an authValue derived from a PIN.")
)

func reportCmds(b *testing.B, total uint64) {
	b.ReportMetric(float64(total)/float64(b.N), "tpm-cmds/op")
}

func BenchmarkSeal(b *testing.B) {
	tp, srk, cc := benchTPMs(b)
	ctx := context.Background()
	b.Run("hellosim", func(b *testing.B) {
		tp.ResetStats()
		for b.Loop() {
			if _, err := tp.Seal(ctx, benchSecret, benchAuth); err != nil {
				b.Fatal(err)
			}
		}
		reportCmds(b, tp.Stats().Total())
	})
	b.Run("go-tpm-tools-client", func(b *testing.B) {
		cc.n.Store(0)
		for b.Loop() {
			if _, err := srk.Seal(benchSecret, client.SealOpts{}); err != nil {
				b.Fatal(err)
			}
		}
		reportCmds(b, cc.n.Load())
	})
}

func BenchmarkUnseal(b *testing.B) {
	tp, srk, cc := benchTPMs(b)
	ctx := context.Background()
	b.Run("hellosim", func(b *testing.B) {
		blob, err := tp.Seal(ctx, benchSecret, benchAuth)
		if err != nil {
			b.Fatal(err)
		}
		tp.ResetStats()
		for b.Loop() {
			if _, err := tp.Unseal(ctx, blob, benchAuth); err != nil {
				b.Fatal(err)
			}
		}
		reportCmds(b, tp.Stats().Total())
	})
	b.Run("go-tpm-tools-client", func(b *testing.B) {
		sealed, err := srk.Seal(benchSecret, client.SealOpts{})
		if err != nil {
			b.Fatal(err)
		}
		cc.n.Store(0)
		for b.Loop() {
			if _, err := srk.Unseal(sealed, client.UnsealOpts{}); err != nil {
				b.Fatal(err)
			}
		}
		reportCmds(b, cc.n.Load())
	})
}

func BenchmarkSealUnseal(b *testing.B) {
	tp, srk, cc := benchTPMs(b)
	ctx := context.Background()
	b.Run("hellosim", func(b *testing.B) {
		tp.ResetStats()
		for b.Loop() {
			blob, err := tp.Seal(ctx, benchSecret, benchAuth)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := tp.Unseal(ctx, blob, benchAuth); err != nil {
				b.Fatal(err)
			}
		}
		reportCmds(b, tp.Stats().Total())
	})
	b.Run("go-tpm-tools-client", func(b *testing.B) {
		cc.n.Store(0)
		for b.Loop() {
			sealed, err := srk.Seal(benchSecret, client.SealOpts{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := srk.Unseal(sealed, client.UnsealOpts{}); err != nil {
				b.Fatal(err)
			}
		}
		reportCmds(b, cc.n.Load())
	})
}

func BenchmarkSign(b *testing.B) {
	tp := tpmtest.Open(b)
	ctx := context.Background()
	for _, alg := range algorithms {
		b.Run(alg.String(), func(b *testing.B) {
			kb, _, err := tp.CreateKey(ctx, alg, benchAuth)
			if err != nil {
				b.Fatal(err)
			}
			k, err := tp.LoadKey(ctx, kb, benchAuth)
			if err != nil {
				b.Fatal(err)
			}
			defer k.Close()
			d := digestOf("benchmark")
			tp.ResetStats()
			for b.Loop() {
				if _, err := k.SignContext(ctx, d, crypto.SHA256); err != nil {
					b.Fatal(err)
				}
			}
			reportCmds(b, tp.Stats().Total())
		})
	}
}
