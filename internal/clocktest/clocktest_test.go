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
	first := c.Now()
	time.Sleep(time.Millisecond)
	if second := c.Now(); !first.Equal(start) || !second.Equal(start) {
		t.Fatalf("Now = %v then %v, want %v both times", first, second, start)
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
