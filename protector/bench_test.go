package protector

import "testing"

func BenchmarkWrap(b *testing.B) {
	for _, s := range allSchemes {
		b.Run(s.String(), func(b *testing.B) {
			pub := testKey(b, s).Public()
			r := newKey(b)
			var size int
			for b.Loop() {
				env, err := pub.Wrap(r, testBinding, nil)
				if err != nil {
					b.Fatal(err)
				}
				size = len(env.enc) + len(env.ct)
			}
			b.ReportMetric(float64(size), "wrapped-bytes")
		})
	}
}

func BenchmarkUnwrap(b *testing.B) {
	for _, s := range allSchemes {
		b.Run(s.String(), func(b *testing.B) {
			priv := testKey(b, s)
			env, raw := wrap(b, s, newKey(b), testBinding)
			for b.Loop() {
				r, err := priv.Unwrap(env)
				if err != nil {
					b.Fatal(err)
				}
				r.Destroy()
			}
			b.ReportMetric(float64(len(raw)), "envelope-bytes")
		})
	}
}

func BenchmarkParseEnvelope(b *testing.B) {
	_, raw := wrap(b, HPKEXWing, newKey(b), testBinding)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := ParseEnvelope(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReturn is the service's and the client's work to return R.
func BenchmarkReturn(b *testing.B) {
	r := newKey(b)
	env, _ := wrap(b, HPKEX25519, r, testBinding)
	for b.Loop() {
		rk, err := NewReturnKey()
		if err != nil {
			b.Fatal(err)
		}
		sealed, err := SealToReturnKey(rk.PublicKey(), r, env)
		if err != nil {
			b.Fatal(err)
		}
		got, err := rk.Open(sealed, env)
		if err != nil {
			b.Fatal(err)
		}
		got.Destroy()
		rk.Destroy()
	}
}
