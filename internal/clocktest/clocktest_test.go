package clocktest_test

import (
	"sync"
	"testing"
	"time"

	"github.com/hellosim/hellosim/internal/clocktest"
)

func TestClockMovesOnlyWhenAdvanced(t *testing.T) {
	start := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	c := clocktest.New(start)
	// Two readings: a clock that moved by itself would differ.
	first, second := c.Now(), c.Now()
	if !first.Equal(start) || !second.Equal(start) {
		t.Fatalf("Now = %v, %v, want %v", first, second, start)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { c.Advance(time.Second) })
	}
	wg.Wait()
	if got, want := c.Now(), start.Add(10*time.Second); !got.Equal(want) {
		t.Fatalf("after ten concurrent Advance(1s): %v, want %v", got, want)
	}
}
