package service

import (
	"math"
	"sync"
	"time"
)

// RateLimit is a per-user token bucket: Requests recoveries per Per, with a
// burst of Requests. The zero value means DefaultRateLimit.
type RateLimit struct {
	Requests  int           // bucket size and refill per Per; 0 means 5
	Per       time.Duration // refill period; 0 means one minute
	Unlimited bool          // no limit at all (load tests only)
}

// DefaultRateLimit: five recoveries per user per minute. A person resetting a
// forgotten PIN needs one; five leaves room for retries after network errors
// and stops an attacker with a stolen token and envelope from hammering the
// service's private key.
func DefaultRateLimit() RateLimit { return RateLimit{Requests: 5, Per: time.Minute} }

// guard holds the two pieces of per-request state: the jti replay cache and
// the per-user rate limiter. One mutex covers both, so "not replayed, within
// the limit, now recorded" is a single atomic step.
type guard struct {
	mu      sync.Mutex
	seen    map[string]time.Time // issuer+jti -> keep until
	maxSeen int
	nextGC  int

	rl      RateLimit
	rate    float64 // tokens per second
	buckets map[string]*bucket
	nextRL  int
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newGuard(rl RateLimit, maxSeen int) *guard {
	g := &guard{
		seen:    make(map[string]time.Time),
		maxSeen: maxSeen,
		nextGC:  1024,
		rl:      rl,
		buckets: make(map[string]*bucket),
		nextRL:  1024,
	}
	if !rl.Unlimited {
		g.rate = float64(rl.Requests) / rl.Per.Seconds()
	}
	return g
}

type guardResult int

const (
	guardOK guardResult = iota
	guardReplay
	guardRateLimited
	guardFull
)

// admit checks and records one recovery: jti (unique per issuer) must be new,
// and user must have a token in its bucket. On success the jti is kept until
// keepUntil (the token's expiry plus skew: after that the verifier refuses
// it anyway). A rate-limited request does not consume its jti, so the client
// may retry with the same token after retryAfter.
func (g *guard) admit(jtiKey, user string, keepUntil, now time.Time) (guardResult, time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if until, ok := g.seen[jtiKey]; ok && now.Before(until) {
		return guardReplay, 0
	}
	if len(g.seen) >= g.nextGC {
		for k, until := range g.seen {
			if !now.Before(until) {
				delete(g.seen, k)
			}
		}
		g.nextGC = max(1024, 2*len(g.seen))
	}
	if len(g.seen) >= g.maxSeen {
		return guardFull, 0
	}
	if !g.rl.Unlimited {
		if ok, wait := g.take(user, now); !ok {
			return guardRateLimited, wait
		}
	}
	g.seen[jtiKey] = keepUntil
	return guardOK, 0
}

// take removes one token from user's bucket, or says how long until one is
// there.
func (g *guard) take(user string, now time.Time) (bool, time.Duration) {
	burst := float64(g.rl.Requests)
	b, ok := g.buckets[user]
	if !ok {
		if len(g.buckets) >= g.nextRL {
			// Forget buckets that have refilled: they hold no information.
			for k, ob := range g.buckets {
				if ob.tokens+now.Sub(ob.last).Seconds()*g.rate >= burst {
					delete(g.buckets, k)
				}
			}
			g.nextRL = max(1024, 2*len(g.buckets))
		}
		b = &bucket{tokens: burst, last: now}
		g.buckets[user] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(burst, b.tokens+el*g.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / g.rate * float64(time.Second))
	return false, wait
}
