//go:build cgo

package pkcs11

import (
	"slices"
	"testing"
	"time"

	"github.com/hellosim/hellosim/protector"
)

// BenchmarkUnwrap opens envelopes under a key in the token and under a
// software key of the same scheme, alternating one each per iteration so
// that both sides see the same noise of a shared machine, and reports the
// p50 and p99 of each side and the ratio of the medians. ns/op is the
// pair.
func BenchmarkUnwrap(b *testing.B) {
	for _, s := range tokenSchemes {
		b.Run(s.String(), func(b *testing.B) {
			sw, err := protector.GenerateServiceKey(s)
			if err != nil {
				b.Fatal(err)
			}
			hw, err := openToken(b).Generate(s)
			if err != nil {
				b.Fatal(err)
			}
			_, swEnv := wrapTo(b, sw.Public(), binding)
			_, hwEnv := wrapTo(b, hw.Public(), binding)
			var swLat, hwLat []time.Duration
			for b.Loop() {
				swLat = append(swLat, timeUnwrap(b, sw, swEnv))
				hwLat = append(hwLat, timeUnwrap(b, hw, hwEnv))
			}
			swP50, swP99 := quantiles(swLat)
			hwP50, hwP99 := quantiles(hwLat)
			b.ReportMetric(swP50, "software-p50-µs")
			b.ReportMetric(swP99, "software-p99-µs")
			b.ReportMetric(hwP50, "pkcs11-p50-µs")
			b.ReportMetric(hwP99, "pkcs11-p99-µs")
			b.ReportMetric(hwP50/swP50, "pkcs11/software-p50")
		})
	}
}

func timeUnwrap(b *testing.B, u protector.Unwrapper, env *protector.Envelope) time.Duration {
	start := time.Now()
	r, err := u.Unwrap(env)
	d := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	r.Destroy()
	return d
}

func quantiles(lat []time.Duration) (p50, p99 float64) {
	slices.Sort(lat)
	return float64(lat[len(lat)/2].Nanoseconds()) / 1e3, float64(lat[len(lat)*99/100].Nanoseconds()) / 1e3
}
