package service

import (
	"fmt"
	"testing"
	"time"
)

func TestGuardForgetsExpiredJTIs(t *testing.T) {
	g := newGuard(RateLimit{Unlimited: true}, 1<<20)
	now := time.Unix(1_700_000_000, 0)
	for i := range 3000 {
		if res, _ := g.admit(fmt.Sprint("jti-", i), "u", now.Add(time.Minute), now); res != guardOK {
			t.Fatalf("admit %d: %v", i, res)
		}
	}
	if res, _ := g.admit("jti-7", "u", now.Add(time.Minute), now); res != guardReplay {
		t.Fatalf("replay not refused: %v", res)
	}
	later := now.Add(2 * time.Minute)
	// The cache is swept when it doubles: memory stays within twice the
	// live entries, at amortised constant cost.
	for i := range 1200 {
		if res, _ := g.admit(fmt.Sprint("fresh-", i), "u", later.Add(time.Minute), later); res != guardOK {
			t.Fatalf("admit after expiry: %v", res)
		}
	}
	if len(g.seen) > 1200 {
		t.Errorf("expired jtis kept: %d entries", len(g.seen))
	}
	// After expiry a jti is forgotten; the verifier refuses such a token
	// anyway, since it has expired.
	if res, _ := g.admit("jti-7", "u", later.Add(time.Minute), later); res != guardOK {
		t.Errorf("expired jti still remembered: %v", res)
	}
}

func TestGuardFullRefusesRatherThanForgets(t *testing.T) {
	g := newGuard(RateLimit{Unlimited: true}, 10)
	now := time.Unix(1_700_000_000, 0)
	for i := range 10 {
		if res, _ := g.admit(fmt.Sprint(i), "u", now.Add(time.Hour), now); res != guardOK {
			t.Fatalf("admit %d: %v", i, res)
		}
	}
	if res, _ := g.admit("eleventh", "u", now.Add(time.Hour), now); res != guardFull {
		t.Fatalf("full cache admitted: %v", res)
	}
	if res, _ := g.admit("3", "u", now.Add(time.Hour), now); res != guardReplay {
		t.Fatalf("replay check must come first: %v", res)
	}
}

func TestGuardForgetsRefilledBuckets(t *testing.T) {
	g := newGuard(RateLimit{Requests: 5, Per: time.Minute}, 1<<20)
	now := time.Unix(1_700_000_000, 0)
	for i := range 2000 {
		if res, _ := g.admit(fmt.Sprint("a", i), fmt.Sprint("user", i), now.Add(time.Hour), now); res != guardOK {
			t.Fatalf("admit %d: %v", i, res)
		}
	}
	later := now.Add(time.Minute)
	for i := range 1100 {
		g.admit(fmt.Sprint("b", i), fmt.Sprint("other", i), later.Add(time.Hour), later)
	}
	if len(g.buckets) >= 3000 {
		t.Errorf("refilled buckets kept: %d", len(g.buckets))
	}
	// The limit itself: five, then a wait of 12 s.
	for i := range 5 {
		if res, _ := g.admit(fmt.Sprint("c", i), "carol", later.Add(time.Hour), later); res != guardOK {
			t.Fatalf("within limit %d: %v", i, res)
		}
	}
	res, wait := g.admit("c5", "carol", later.Add(time.Hour), later)
	if res != guardRateLimited || wait != 12*time.Second {
		t.Fatalf("sixth: %v, wait %s", res, wait)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"12":                            12 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"Tue, 10 Mar 2026 09:01:00 GMT": time.Minute,
		"Tue, 10 Mar 2026 08:59:00 GMT": 0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}
