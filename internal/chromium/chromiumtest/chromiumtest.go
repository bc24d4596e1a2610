// Package chromiumtest starts Chromium for a test: it skips the test when
// the browser is missing, and fails it when the environment says CI=true.
package chromiumtest

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hellosim/hellosim/internal/chromium"
)

// Require returns the browser's path, or skips t (fails it under CI=true)
// when there is none.
func Require(t testing.TB) string {
	t.Helper()
	p, err := chromium.Path()
	if errors.Is(err, chromium.ErrNoBrowser) {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but no chromium binary: install the Debian package chromium")
		}
		t.Skip("no chromium binary (Debian package chromium): skipping the browser test")
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Start starts headless Chromium as o describes (ExecPath and UserDataDir
// filled in when empty), with a five-minute limit for the whole session (a
// loaded machine under -race is slow), stopped at cleanup. It
// returns a chromedp context for the first tab.
func Start(t testing.TB, o chromium.Options) context.Context {
	t.Helper()
	if o.ExecPath == "" {
		o.ExecPath = Require(t)
	}
	if o.UserDataDir == "" {
		o.UserDataDir = t.TempDir()
	}
	actx, cancelA, err := chromium.NewAllocator(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelC := context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(func() { cancelC(); cancelB(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}
