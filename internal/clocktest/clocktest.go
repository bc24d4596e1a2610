// Package clocktest is the settable clock the module's tests share: a test
// hands Now to the code under test (container.WithClock, idp.WithClock,
// service.Config.Clock) and moves time with Advance instead of sleeping.
package clocktest

import (
	"sync"
	"time"
)

// Clock is a clock that stands still until Advance moves it. It is safe for
// concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a Clock reading start.
func New(start time.Time) *Clock { return &Clock{t: start} }

// Now returns the clock's reading.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d (backward for a negative d).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
