package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/hellosim/hellosim/internal/chromium"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/policy"
	"github.com/hellosim/hellosim/reset/webhost"
)

// setWebHost reads reset's -web-host, -web-signin-allowed-urls and
// -web-host-map.
func (a *app) setWebHost(host, allowed, hostMap string, ep reset.EntryPoint) error {
	switch {
	case host == "" && allowed == "" && hostMap == "":
		return nil
	case host == "" && allowed != "":
		return fmt.Errorf("%w: -web-signin-allowed-urls needs -web-host chromium", errUsage)
	case host == "":
		return fmt.Errorf("%w: -web-host-map needs -web-host chromium", errUsage)
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
	m, err := parseHostMap(hostMap)
	if err != nil {
		return fmt.Errorf("%w: -web-host-map: %v", errUsage, err)
	}
	al := webhost.NewAllowlist(reset.Policy{WebSignInAllowedURLs: hosts})
	a.webHost, a.webHostMap = &al, m
	return nil
}

// parseHostMap reads -web-host-map: NAME=HOST:PORT pairs, comma-separated,
// each name a DNS name given once and each address a loopback one with a
// port. The map only makes a name resolve; whether the web host opens it
// is still the allowlist's decision.
func parseHostMap(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	m := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		name, addr, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			return nil, fmt.Errorf("%q: want NAME=127.0.0.1:PORT", pair)
		}
		h, err := policy.ParseDomain(name)
		if err != nil || net.ParseIP(h) != nil {
			return nil, fmt.Errorf("%q: not a host name", name)
		}
		if _, dup := m[h]; dup {
			return nil, fmt.Errorf("%s is mapped twice", h)
		}
		host, port, err := net.SplitHostPort(addr)
		ip := net.ParseIP(host)
		if err != nil || ip == nil || !ip.IsLoopback() || port == "" {
			return nil, fmt.Errorf("%s=%s: the address must be a loopback IP address with a port", h, addr)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("%s=%s: bad port", h, addr)
		}
		m[h] = addr
	}
	return m, nil
}

// webHostSession is the lock-screen web host while a sign-in runs in it.
type webHostSession struct {
	a    *app
	h    *webhost.Host
	stop func()
}

// openWebHost opens page in the lock-screen web host: Chromium, headless
// unless there is a display, trusting the private CA of the state
// directory, its resolver knowing the names of -web-host-map. A page the
// host refuses ends the sign-in with the host's message. The caller
// closes the session, which stops the browser.
func (a *app) openWebHost(ctx context.Context, caPEM, page string) (*webHostSession, error) {
	o := chromium.Options{Visible: os.Getenv("DISPLAY") != "", SPKIHashes: chromium.SPKIHashes([]byte(caPEM)), Hosts: a.webHostMap}
	_, h, stop, err := webhost.Start(ctx, o, *a.webHost, page)
	if err != nil {
		return nil, fmt.Errorf("%w: lock-screen web host: %v", errSignIn, err)
	}
	s := &webHostSession{a: a, h: h, stop: stop}
	if err := s.refused(); err != nil {
		stop()
		return nil, err
	}
	fmt.Fprintf(a.stdout, "The sign-in page is open in the lock-screen web host (%s).\n", map[bool]string{true: "Chromium", false: "headless Chromium"}[o.Visible])
	return s, nil
}

// refused is the end of the sign-in once the host has refused to open a
// page (the start page, or one the user went on to, such as a
// federation service's): the host's message, said on standard error as
// the host shows it, and which host it was. It is nil while every page
// opened.
func (s *webHostSession) refused() error {
	for _, b := range s.h.Blocked() {
		if b.Document {
			host := b.URL
			if u, err := url.Parse(b.URL); err == nil {
				host = u.Host
			}
			fmt.Fprintln(s.a.stderr, webhost.Message)
			return fmt.Errorf("%w: the lock-screen web host did not open %s: %s (not a Microsoft sign-in host and not in -web-signin-allowed-urls)", errSignIn, host, webhost.Message)
		}
	}
	return nil
}

func (s *webHostSession) close() { s.stop() }
