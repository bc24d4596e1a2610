package main

import (
	"context"
	"fmt"
	"net/url"
	"os"

	"github.com/hellosim/hellosim/internal/chromium"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/policy"
	"github.com/hellosim/hellosim/reset/webhost"
)

// setWebHost reads reset's -web-host and -web-signin-allowed-urls.
func (a *app) setWebHost(host, allowed string, ep reset.EntryPoint) error {
	switch {
	case host == "" && allowed == "":
		return nil
	case host == "":
		return fmt.Errorf("%w: -web-signin-allowed-urls needs -web-host chromium", errUsage)
	case host != "chromium":
		return fmt.Errorf("%w: -web-host %q: want chromium", errUsage, host)
	case ep != reset.EntryLockScreen:
		return fmt.Errorf("%w: -web-host is the lock-screen web host: give -entry lock-screen", errUsage)
	}
	var hosts []string
	if allowed != "" {
		var err error
		if hosts, err = policy.ParseDomainList(allowed); err != nil {
			return fmt.Errorf("%w: -web-signin-allowed-urls: %v", errUsage, err)
		}
	}
	al := webhost.NewAllowlist(reset.Policy{WebSignInAllowedURLs: hosts})
	a.webHost = &al
	return nil
}

// openWebHost opens page in the lock-screen web host: Chromium, headless
// unless there is a display, trusting the private CA of the state
// directory. A page the host refuses ends the sign-in with the host's
// message. stop closes the browser.
func (a *app) openWebHost(ctx context.Context, caPEM, page string) (stop func(), err error) {
	o := chromium.Options{Visible: os.Getenv("DISPLAY") != "", SPKIHashes: chromium.SPKIHashes([]byte(caPEM))}
	_, h, stop, err := webhost.Start(ctx, o, *a.webHost, page)
	if err != nil {
		return nil, fmt.Errorf("%w: lock-screen web host: %v", errSignIn, err)
	}
	for _, b := range h.Blocked() {
		if b.Document {
			stop()
			host := b.URL
			if u, err := url.Parse(b.URL); err == nil {
				host = u.Host
			}
			fmt.Fprintln(a.stderr, webhost.Message)
			return nil, fmt.Errorf("%w: the lock-screen web host did not open %s: %s (not a Microsoft sign-in host and not in -web-signin-allowed-urls)", errSignIn, host, webhost.Message)
		}
	}
	fmt.Fprintf(a.stdout, "The sign-in page is open in the lock-screen web host (%s).\n", map[bool]string{true: "Chromium", false: "headless Chromium"}[o.Visible])
	return stop, nil
}
