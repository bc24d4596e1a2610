//go:build cgo

package tpm_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/google/go-tpm-tools/client"
	"github.com/google/go-tpm-tools/simulator"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// sealUnseal seals benchSecret under benchAuth on tp and unseals it: one
// round of the library's own path.
func sealUnseal(ctx context.Context, b *testing.B, tp *tpm.TPM) []byte {
	blob, err := tp.Seal(ctx, benchSecret, benchAuth)
	if err != nil {
		b.Fatal(err)
	}
	got, err := tp.Unseal(ctx, blob, benchAuth)
	if err != nil {
		b.Fatal(err)
	}
	return got
}

// BenchmarkSealUnsealInterleaved runs one seal+unseal with this package
// (PIN authValue, salted session, parameter encryption) and one with
// go-tpm-tools' client (no auth, no encryption) in every iteration, on the
// same simulator, and times each separately. On shared cores the load from
// other processes changes faster than a sub-benchmark lasts; interleaving
// pair by pair gives both sides the same machine, so the ratio is the
// figure to read. ns/op is the pair; hellosim-ns and client-ns are the
// halves; client/hellosim is how many times faster this package is.
func BenchmarkSealUnsealInterleaved(b *testing.B) {
	tp, srk, cc := benchTPMs(b)
	ctx := context.Background()
	var ours, theirs time.Duration
	tp.ResetStats()
	cc.n.Store(0)
	for b.Loop() {
		t0 := time.Now()
		got := sealUnseal(ctx, b, tp)
		t1 := time.Now()
		sealed, err := srk.Seal(benchSecret, client.SealOpts{})
		if err != nil {
			b.Fatal(err)
		}
		got2, err := srk.Unseal(sealed, client.UnsealOpts{})
		if err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		ours += t1.Sub(t0)
		theirs += t2.Sub(t1)
		if string(got) != string(benchSecret) || string(got2) != string(benchSecret) {
			b.Fatal("unsealed secret differs from the sealed one")
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(ours.Nanoseconds())/n, "hellosim-ns")
	b.ReportMetric(float64(theirs.Nanoseconds())/n, "client-ns")
	b.ReportMetric(float64(theirs)/float64(ours), "client/hellosim")
	b.ReportMetric(float64(tp.Stats().Total())/n, "tpm-cmds/op")
	b.ReportMetric(float64(cc.n.Load())/n, "client-tpm-cmds/op")
}

// simSwitch sends to the embedded simulator either through go-tpm's
// transport.FromReadWriteCloser (what OpenSimulator uses: tpmutil's
// RunCommandRaw allocates and zeroes a 4 KiB response buffer and decodes
// the response header by reflection on every command) or directly: Write
// the command, read the 10-byte header, then exactly the response size.
type simSwitch struct {
	sim    *simulator.Simulator
	viaRWC transport.TPM
	direct bool
}

func (s *simSwitch) Send(cmd []byte) ([]byte, error) {
	if !s.direct {
		return s.viaRWC.Send(cmd)
	}
	if _, err := s.sim.Write(cmd); err != nil {
		return nil, err
	}
	var hdr [10]byte
	if _, err := io.ReadFull(s.sim, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[2:6])
	if n < 10 || n > 4096 {
		return nil, fmt.Errorf("simulator response size %d", n)
	}
	rsp := make([]byte, n)
	copy(rsp, hdr[:])
	if _, err := io.ReadFull(s.sim, rsp[10:]); err != nil {
		return nil, err
	}
	return rsp, nil
}

// BenchmarkSimTransport measures how much of a seal+unseal on the
// simulator is the transport adapter, not this package nor the simulator:
// every iteration does one seal+unseal through go-tpm's
// FromReadWriteCloser and one sending straight to the simulator, on the
// same TPM and session. rwc/direct is how many times faster the direct one
// is. It runs on the embedded simulator only.
func BenchmarkSimTransport(b *testing.B) {
	if tpmtest.Spec() != "sim" {
		b.Skip("embedded simulator only")
	}
	sim, err := simulator.Get()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sim.Close() })
	sw := &simSwitch{sim: sim, viaRWC: transport.FromReadWriter(sim)}
	tp, err := tpm.New(sw)
	if err != nil {
		b.Fatal(err)
	}
	tpmtest.Prepare(b, tp)
	ctx := context.Background()
	round := func() {
		if got := sealUnseal(ctx, b, tp); string(got) != string(benchSecret) {
			b.Fatal("unsealed secret differs from the sealed one")
		}
	}
	var viaRWC, direct time.Duration
	for b.Loop() {
		sw.direct = false
		t0 := time.Now()
		round()
		t1 := time.Now()
		sw.direct = true
		round()
		t2 := time.Now()
		viaRWC += t1.Sub(t0)
		direct += t2.Sub(t1)
	}
	n := float64(b.N)
	b.ReportMetric(float64(viaRWC.Nanoseconds())/n, "rwc-ns")
	b.ReportMetric(float64(direct.Nanoseconds())/n, "direct-ns")
	b.ReportMetric(float64(viaRWC)/float64(direct), "rwc/direct")
}
