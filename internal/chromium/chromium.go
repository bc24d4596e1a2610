// Package chromium finds and starts the Chromium browser for the tests
// and demonstrations that drive pages through chromedp: headless, with the
// host names a test serves mapped to loopback by --host-resolver-rules and
// every other name unresolvable (nothing leaves the machine), and a test
// certificate authority trusted by its SPKI hash
// (--ignore-certificate-errors-spki-list) — certificate checks stay on.
package chromium

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/chromedp/chromedp"
)

// ErrNoBrowser means no Chromium binary is on PATH.
var ErrNoBrowser = errors.New("chromium: no chromium binary on PATH (Debian package chromium)")

// Path finds the browser: chromium or chromium-browser on PATH.
func Path() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNoBrowser
}

// Options says how to start the browser.
type Options struct {
	// ExecPath is the browser binary; empty means Path().
	ExecPath string
	// Hosts maps host names to the loopback host:port that serves them.
	// Every other name except 127.0.0.1 resolves to nothing.
	Hosts map[string]string
	// SPKIHashes are the base64 SHA-256 SPKI hashes of the certificates
	// (or their authority) the browser trusts beyond its own roots.
	SPKIHashes []string
	// UserDataDir is the profile directory; empty means a fresh temporary
	// one, removed when the allocator is cancelled.
	UserDataDir string
	// Visible starts a window instead of headless.
	Visible bool
}

// SPKIHashes are the Options.SPKIHashes of the certificates in pemData
// (a CA, or several): base64 SHA-256 of each one's SubjectPublicKeyInfo.
// Blocks that are not certificates are skipped.
func SPKIHashes(pemData []byte) []string {
	var out []string
	for rest := pemData; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return out
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			h := sha256.Sum256(c.RawSubjectPublicKeyInfo)
			out = append(out, base64.StdEncoding.EncodeToString(h[:]))
		}
	}
}

// HostRules is the --host-resolver-rules value for hosts: each mapped to its
// loopback address, 127.0.0.1 itself left alone, everything else NOTFOUND.
func HostRules(hosts map[string]string) string {
	names := make([]string, 0, len(hosts))
	for h := range hosts {
		names = append(names, h)
	}
	sort.Strings(names)
	var rules []string
	for _, h := range names {
		rules = append(rules, "MAP "+h+" "+hosts[h])
	}
	rules = append(rules, "EXCLUDE 127.0.0.1", "MAP * ~NOTFOUND")
	return strings.Join(rules, ", ")
}

// NewAllocator starts nothing yet: it returns a chromedp allocator context
// for the browser as o describes (the browser starts with the first
// chromedp.Run on a context derived from it) and its cancel function,
// which stops the browser.
func NewAllocator(ctx context.Context, o Options) (context.Context, context.CancelFunc, error) {
	path := o.ExecPath
	if path == "" {
		var err error
		if path, err = Path(); err != nil {
			return nil, nil, err
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("host-resolver-rules", HostRules(o.Hosts)),
		chromedp.Flag("disable-gpu", true),
		// No pop-ups: a page cannot open a second window outside the
		// page the caller watches.
		chromedp.Flag("block-new-web-contents", true),
		chromedp.WindowSize(1000, 800),
	)
	if len(o.SPKIHashes) > 0 {
		opts = append(opts, chromedp.Flag("ignore-certificate-errors-spki-list", strings.Join(o.SPKIHashes, ",")))
	}
	dir, cleanup := o.UserDataDir, func() {}
	if dir == "" {
		d, err := os.MkdirTemp("", "hellosim-chromium-")
		if err != nil {
			return nil, nil, fmt.Errorf("chromium: profile: %w", err)
		}
		dir, cleanup = d, func() { _ = os.RemoveAll(d) }
	}
	if err := writePrefs(dir); err != nil {
		cleanup()
		return nil, nil, err
	}
	opts = append(opts, chromedp.UserDataDir(dir),
		// No speculative DNS, preconnects or prefetches: a host is
		// contacted only by a request the page makes, which a guard
		// (reset/webhost) can refuse.
		chromedp.Flag("dns-prefetch-disable", true),
		chromedp.Flag("disable-features", "NetworkPrediction,LoadingPredictorUseLocalPredictions,NavigationPredictor,Prerender2,PreconnectToSearch"),
	)
	if o.Visible {
		opts = append(opts, chromedp.Flag("headless", false))
	}
	if os.Geteuid() == 0 {
		// Chromium refuses to start its sandbox as root.
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	return actx, func() { cancel(); cleanup() }, nil
}

// prefs turn off the browser's network prediction ("Preload pages"):
// without it, Chromium opens a connection to a page's host when the
// navigation starts, before any request a guard sees.
const prefs = `{"net":{"network_prediction_options":2}}`

func writePrefs(dir string) error {
	p := filepath.Join(dir, "Default", "Preferences")
	if _, err := os.Stat(p); err == nil {
		return nil // an existing profile keeps its preferences
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("chromium: profile: %w", err)
	}
	if err := os.WriteFile(p, []byte(prefs), 0o600); err != nil {
		return fmt.Errorf("chromium: profile: %w", err)
	}
	return nil
}
