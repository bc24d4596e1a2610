package service

import (
	"time"

	"github.com/hellosim/hellosim/reset/service/state"
)

// RateLimit is a token bucket: Requests recoveries per Per, with a burst of
// Requests. The zero value means the default of the field it is in.
type RateLimit struct {
	Requests  int           // bucket size and refill per Per
	Per       time.Duration // refill period
	Unlimited bool          // no limit at all (load tests only)
}

// DefaultRateLimit: five recoveries per user per minute. A person resetting a
// forgotten PIN needs one; five leaves room for retries after network errors
// and stops an attacker with a stolen token and envelope from hammering the
// service's private key.
func DefaultRateLimit() RateLimit { return RateLimit{Requests: 5, Per: time.Minute} }

// DefaultAddressLimit: 30 requests per client address per minute, counted
// before any signature is checked. Many users behind one NAT share it; a
// deployment that knows its proxies sets TrustedProxies so that the address
// is the client's, not the proxy's.
func DefaultAddressLimit() RateLimit { return RateLimit{Requests: 30, Per: time.Minute} }

// DefaultTenantLimit: 600 recoveries per tenant per minute, a quota far
// above what a tenant's users need on their worst morning, so that one
// tenant's flood leaves capacity for the others.
func DefaultTenantLimit() RateLimit { return RateLimit{Requests: 600, Per: time.Minute} }

// orDefault fills a zero field from def.
func (r RateLimit) orDefault(def RateLimit) RateLimit {
	if r.Unlimited {
		return r
	}
	if r.Requests <= 0 {
		r.Requests = def.Requests
	}
	if r.Per <= 0 {
		r.Per = def.Per
	}
	return r
}

// bucket is the state-store bucket for key under r, or false when r is
// unlimited.
func (r RateLimit) bucket(key string) (state.Bucket, bool) {
	if r.Unlimited {
		return state.Bucket{}, false
	}
	return state.Bucket{Key: key, Limit: state.Limit{Burst: r.Requests, Per: r.Per}}, true
}

// limits are the three buckets a recovery draws from.
type limits struct {
	user, address, tenant RateLimit
}
