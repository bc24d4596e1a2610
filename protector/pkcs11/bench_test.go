//go:build cgo

package pkcs11

import (
	"slices"
	"testing"
	"time"

	"github.com/hellosim/hellosim/protector"
)

// BenchmarkUnwrap opens one envelope per iteration, under a key in the
// token and under a software key of the same scheme, and reports p50 and
// p99 as well as the mean.
func BenchmarkUnwrap(b *testing.B) {
	for _, s := range tokenSchemes {
		b.Run(s.String()+"/software", func(b *testing.B) {
			k, err := protector.GenerateServiceKey(s)
			if err != nil {
				b.Fatal(err)
			}
			benchUnwrap(b, k)
		})
		b.Run(s.String()+"/pkcs11", func(b *testing.B) {
			k, err := openToken(b).Generate(s)
			if err != nil {
				b.Fatal(err)
			}
			benchUnwrap(b, k)
		})
	}
}

func benchUnwrap(b *testing.B, u protector.Unwrapper) {
	_, env := wrapTo(b, u.Public(), binding)
	lat := make([]time.Duration, 0, 4096)
	for b.Loop() {
		start := time.Now()
		r, err := u.Unwrap(env)
		lat = append(lat, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		r.Destroy()
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
}
