package state

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAdmit is one recover decision (a lockout, two one-time IDs,
// three buckets) against each store. For Redis it reports the round trips
// and the bytes the server read and wrote per decision (from INFO stats:
// run it alone on its Redis), and the latency quantiles.
func BenchmarkAdmit(b *testing.B) {
	b.Run("memory", func(b *testing.B) {
		benchAdmit(b, NewMemory(MemoryOptions{}), nil)
	})
	b.Run("redis", func(b *testing.B) {
		s := newRedisStore(b, redisURL(b), RedisOptions{Prefix: testPrefix(b)})
		benchAdmit(b, s, s)
	})
}

// BenchmarkRedisFail is one counted failure.
func BenchmarkRedisFail(b *testing.B) {
	s := newRedisStore(b, redisURL(b), RedisOptions{Prefix: testPrefix(b)})
	ctx := context.Background()
	p := Lockout{Failures: 1 << 20, Window: time.Hour, Base: time.Minute, Max: time.Minute}
	if _, err := s.Fail(ctx, "t", "warm", p); err != nil {
		b.Fatal(err)
	}
	in0, out0 := netBytes(b, s)
	h := new(countingHook)
	s.c.AddHook(h)
	i := 0
	for b.Loop() {
		i++
		if _, err := s.Fail(ctx, "t", "user-"+strconv.Itoa(i%1000), p); err != nil {
			b.Fatal(err)
		}
	}
	in1, out1 := netBytes(b, s)
	n := float64(b.N)
	b.ReportMetric(float64(h.trips.Load())/n, "round-trips/op")
	b.ReportMetric(float64(in1-in0)/n, "req-bytes/op")
	b.ReportMetric(float64(out1-out0)/n, "resp-bytes/op")
}

func benchAdmit(b *testing.B, s Store, r *Redis) {
	ctx := context.Background()
	if _, err := s.Admit(ctx, recoverAdmission(-1)); err != nil {
		b.Fatal(err)
	}
	var h *countingHook
	var in0, out0 int64
	if r != nil {
		in0, out0 = netBytes(b, r)
		h = new(countingHook)
		r.c.AddHook(h)
	}
	lat := make([]time.Duration, 0, 1<<16)
	i := 0
	for b.Loop() {
		a := recoverAdmission(i)
		i++
		start := time.Now()
		v, err := s.Admit(ctx, a)
		lat = append(lat, time.Since(start))
		if err != nil || v.Outcome != Admitted {
			b.Fatal(v, err)
		}
	}
	b.StopTimer()
	n := float64(b.N)
	if r != nil {
		in1, out1 := netBytes(b, r)
		b.ReportMetric(float64(h.trips.Load())/n, "round-trips/op")
		b.ReportMetric(float64(in1-in0)/n, "req-bytes/op")
		b.ReportMetric(float64(out1-out0)/n, "resp-bytes/op")
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
}

// netBytes reads the server's total_net_input_bytes and
// total_net_output_bytes; the INFO call itself is a few hundred bytes,
// negligible over a benchmark's thousands of decisions.
func netBytes(b *testing.B, r *Redis) (in, out int64) {
	info, err := r.c.Info(context.Background(), "stats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		k, v, _ := strings.Cut(line, ":")
		switch k {
		case "total_net_input_bytes":
			in, _ = strconv.ParseInt(v, 10, 64)
		case "total_net_output_bytes":
			out, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return in, out
}

// BenchmarkRedisMemory reports the Redis memory one live record takes
// (used_memory before and after b.N records; run it alone on its Redis):
// a remembered token ID, a user's token bucket, a user's failure window.
func BenchmarkRedisMemory(b *testing.B) {
	exp := time.Now().Add(time.Hour)
	lim := Limit{Burst: 5, Per: time.Minute}
	p := Lockout{Failures: 10, Window: time.Hour, Base: time.Minute, Max: time.Hour}
	for _, c := range []struct {
		name string
		op   func(s *Redis, i int) error
	}{
		{"once", func(s *Redis, i int) error {
			_, err := s.Admit(context.Background(), Admission{Partition: tenant, Once: []Once{{ID: "jti-" + strconv.Itoa(i) + "-0123456789abcdef", Expires: exp}}})
			return err
		}},
		{"bucket", func(s *Redis, i int) error {
			_, err := s.Admit(context.Background(), Admission{Partition: tenant, Buckets: []Bucket{{Key: "user:" + tenant + "/" + strconv.Itoa(i), Limit: lim}}})
			return err
		}},
		{"failure", func(s *Redis, i int) error {
			_, err := s.Fail(context.Background(), tenant, tenant+"/"+strconv.Itoa(i), p)
			return err
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := newRedisStore(b, redisURL(b), RedisOptions{Prefix: testPrefix(b)})
			if err := c.op(s, -1); err != nil {
				b.Fatal(err)
			}
			before := usedMemory(b, s)
			i := 0
			for b.Loop() {
				if err := c.op(s, i); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(usedMemory(b, s)-before)/float64(b.N), "redis-bytes/record")
		})
	}
}

func usedMemory(b *testing.B, r *Redis) int64 {
	info, err := r.c.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Fatal("no used_memory in INFO")
	return 0
}

// BenchmarkRedisAdmitParallel is decisions from 16 concurrent callers (8 per core) on
// one connection pool: what one service instance can push through one
// Redis (client and server share this machine's cores).
func BenchmarkRedisAdmitParallel(b *testing.B) {
	s := newRedisStore(b, redisURL(b), RedisOptions{Prefix: testPrefix(b)})
	ctx := context.Background()
	if _, err := s.Admit(ctx, Admission{}); err != nil { // sets the epoch
		b.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	var n atomic.Int64
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if v, err := s.Admit(ctx, recoverAdmission(int(n.Add(1)))); err != nil || v.Outcome != Admitted {
				b.Error(v, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}
