// Command pinreset-load measures the reference PIN reset service on
// loopback and sets the figure beside its ceiling: the cryptography one
// recover request cannot avoid, measured in the same run on the same cores.
//
//	go run ./examples/pinreset-load -n 2000 -c 8 -scheme x25519 -rounds 5
//
// It starts the service on 127.0.0.1 (an ephemeral port; it never sends to
// any other address) with a simulated directory, signs users in with
// password and TOTP on a device of their own (a P-256 key registered as the
// device object, the sign-in bound to it), and mints one DPoP-bound access
// token per request beforehand, with the device's proof for it — every
// recover needs a fresh token and proof, since the service refuses a
// replayed jti of either. Each round then measures n requests two ways, alternating in chunks
// of -chunk requests so that both see the same machine (on shared cores the
// load from other processes changes faster than a round lasts):
//
//   - ceiling: c goroutines run the pure crypto path of a request — verify
//     the token (ES256 and claims), verify the DPoP proof (ES256 under its
//     JWK, its thumbprint, htm, htu, iat, ath, rkh), unwrap the envelope,
//     seal the protector to the client's one-time key;
//   - served: c HTTP/1.1 clients with keep-alive send POST /v1/recover;
//     every response must be 200 and decode, and during warm-up one
//     response per user is opened with its one-time key and compared with
//     the protector that was wrapped.
//
// It prints requests per second, p50 and p99 latency, the ratio of served to
// ceiling, and allocations per request: of the handler alone (measured
// in-process) and of the whole process (client and server together). The
// per-user, per-address and per-tenant limits are off: this measures
// throughput, not the limiters (the replay records stay on).
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hellosim/hellosim/internal/dpop"
	"github.com/hellosim/hellosim/internal/examplecmd"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/service"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pinreset-load:", err)
		os.Exit(1)
	}
}

type config struct {
	n, c, users, rounds int
	chunk               int
	scheme              protector.Scheme
	schemeName          string
	timeout             time.Duration
	remote              bool // the directory behind HTTP: discovery, JWKS, lookup API
}

func run() error {
	var cfg config
	flag.IntVar(&cfg.n, "n", 2000, "requests per round (1..200000)")
	flag.IntVar(&cfg.c, "c", 8, "concurrent clients (1..256)")
	flag.IntVar(&cfg.users, "users", 8, "distinct users")
	flag.IntVar(&cfg.rounds, "rounds", 5, "rounds (1..20)")
	flag.IntVar(&cfg.chunk, "chunk", 200, "requests per chunk; ceiling and served alternate chunk by chunk")
	flag.StringVar(&cfg.schemeName, "scheme", "x25519", "envelope scheme: x25519, wing, rsa")
	flag.DurationVar(&cfg.timeout, "timeout", 5*time.Minute, "give up after this long")
	flag.BoolVar(&cfg.remote, "issuer", false, "serve the directory on its own loopback listener and have the service trust it over HTTP\n(OpenID discovery, cached JWKS, the lookup API with an app token), as pinreset-service -issuer does")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the served rounds to this file")
	examplecmd.Parse("pinreset-load", "pinreset-load: measures the reference PIN reset service on loopback against the cost of its cryptography.",
		"pinreset-load [flags]")
	if flag.NArg() != 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(flag.Args(), " "))
	}
	switch {
	case cfg.n < 1 || cfg.n > 200000:
		return errors.New("-n must be 1..200000")
	case cfg.c < 1 || cfg.c > 256:
		return errors.New("-c must be 1..256")
	case cfg.users < 1 || cfg.users > 1000:
		return errors.New("-users must be 1..1000")
	case cfg.rounds < 1 || cfg.rounds > 20:
		return errors.New("-rounds must be 1..20")
	case cfg.chunk < 1:
		return errors.New("-chunk must be positive")
	}
	switch cfg.schemeName {
	case "x25519":
		cfg.scheme = protector.HPKEX25519
	case "wing":
		cfg.scheme = protector.HPKEXWing
	case "rsa":
		cfg.scheme = protector.RSAOAEP3072
	default:
		return fmt.Errorf("unknown -scheme %q", cfg.schemeName)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()

	fmt.Printf("setting up: directory, %d users, %s service key...\n", cfg.users, cfg.schemeName)
	w, err := newWorld(ctx, cfg)
	if err != nil {
		return err
	}
	defer w.close()
	fmt.Printf("service on %s; %d clients, keep-alive; %d requests per round; GOMAXPROCS=%d, %d CPUs\n\n",
		w.base, cfg.c, cfg.n, runtime.GOMAXPROCS(0), runtime.NumCPU())

	handlerAllocs, err := w.handlerAllocs(ctx, min(cfg.n, 500))
	if err != nil {
		return err
	}

	fmt.Printf("%-6s %14s %10s %10s %16s %8s %14s\n", "round", "served req/s", "p50", "p99", "ceiling req/s", "ratio", "allocs/req*")
	var served, ceil, ratios, procAllocs, remotes, remoteRatios []float64
	var p50s, p99s []time.Duration
	for r := 1; r <= cfg.rounds; r++ {
		prof := ""
		if r == 1 {
			prof = *cpuprofile
		}
		res, err := w.round(ctx, cfg.n, cfg.chunk, prof)
		if err != nil {
			return err
		}
		ratio := res.served / res.ceiling
		served, ceil, ratios = append(served, res.served), append(ceil, res.ceiling), append(ratios, ratio)
		p50s, p99s, procAllocs = append(p50s, res.p50), append(p99s, res.p99), append(procAllocs, res.allocs)
		fmt.Printf("%-6d %14.0f %10s %10s %16.0f %7.0f%% %14.0f\n", r, res.served, ms(res.p50), ms(res.p99), res.ceiling, 100*ratio, res.allocs)
		if cfg.remote {
			remotes, remoteRatios = append(remotes, res.remote), append(remoteRatios, res.remote/res.served)
		}
	}
	fmt.Printf("%-6s %14.0f %10s %10s %16.0f %7.0f%% %14.0f\n", "median", median(served), ms(medianD(p50s)), ms(medianD(p99s)),
		median(ceil), 100*median(ratios), median(procAllocs))
	if cfg.remote {
		fmt.Printf("\nthe same service trusting the directory over HTTP (-issuer), in alternating chunks:\n")
		fmt.Printf("%-6s %14s %16s\n", "round", "remote req/s", "of in-process")
		for i := range remotes {
			fmt.Printf("%-6d %14.0f %15.0f%%\n", i+1, remotes[i], 100*remoteRatios[i])
		}
		fmt.Printf("%-6s %14.0f %15.0f%%\n", "median", median(remotes), 100*median(remoteRatios))
	}
	fmt.Printf("\nallocations per request in the handler alone: %.0f (%.0f in the crypto path)\n", handlerAllocs.handler, handlerAllocs.crypto)
	fmt.Println("* allocs/req: whole process, load generator and service together")
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/1e6) }

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianD(v []time.Duration) time.Duration {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// user is a signed-in user with an envelope and a one-time key.
type user struct {
	session *idp.Pending
	env     *protector.Envelope
	want    *protector.Key
	body    []byte // the recover request body
	rk      *protector.ReturnKey
	device  *ecdsa.PrivateKey
}

type world struct {
	cfg      config
	dir      *idp.IdP
	verifier *service.JWTVerifier
	key      *protector.ServicePrivateKey
	svc      *service.Service
	srv      *http.Server
	base     string
	users    []*user
	hc       *http.Client
	dirSrv   *httptest.Server // -issuer: the directory's own server
	remote   http.Handler     // -issuer: the service trusting it over HTTP
}

func newWorld(ctx context.Context, cfg config) (*world, error) {
	w := &world{cfg: cfg}
	var err error
	// Passwords are not what the load generator measures: one Argon2id pass
	// over 64 KiB keeps setting up thousands of users fast.
	opts := []idp.Option{idp.WithArgon2(idp.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1})}
	var dirLn net.Listener
	if cfg.remote {
		if dirLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil { // loopback only
			return nil, err
		}
		opts = append(opts, idp.WithIssuer("https://"+dirLn.Addr().String()+"/{tid}/v2.0"))
	}
	w.dir, err = idp.New(opts...)
	if err != nil {
		return nil, err
	}
	tenant, err := w.dir.AddTenant(idp.TenantConfig{Domain: "load.test", ConsentedApps: []string{identity.PINResetServiceAppID, identity.PINResetClientAppID}})
	if err != nil {
		return nil, err
	}
	w.key, err = protector.GenerateServiceKey(cfg.scheme)
	if err != nil {
		return nil, err
	}
	for i := range cfg.users {
		pw := fmt.Sprintf("load test password %d", i)
		u, err := w.dir.AddUser(idp.UserConfig{TenantID: tenant.ID, UPN: fmt.Sprintf("user%d@load.test", i), Password: pw})
		if err != nil {
			return nil, err
		}
		p, err := w.dir.SignIn(ctx, u.UPN, pw)
		if err != nil {
			return nil, err
		}
		code, err := w.dir.TOTPCode(u.UPN)
		if err != nil {
			return nil, err
		}
		if _, err := p.CompleteMFA(ctx, code); err != nil {
			return nil, err
		}
		// Each user's device: a P-256 key (a TPM key on a real device;
		// its signing is the device's cost, not the service's) registered
		// as the device object, and the sign-in bound to it.
		dk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		deviceID := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		if err := w.dir.AddDeviceKey(tenant.ID, u.ObjectID, deviceID, &dk.PublicKey); err != nil {
			return nil, err
		}
		bind, err := w.dir.DeviceProof(dk, tenant.ID, w.dir.Now())
		if err != nil {
			return nil, err
		}
		if err := p.BindDevice(ctx, deviceID, bind); err != nil {
			return nil, err
		}
		r, err := protector.NewKey(nil)
		if err != nil {
			return nil, err
		}
		env, err := w.key.Public().Wrap(r, protector.Binding{TenantID: tenant.ID, UserID: u.ObjectID, ContainerID: fmt.Sprintf("container-%d", i), DeviceID: deviceID}, nil)
		if err != nil {
			return nil, err
		}
		rk, err := protector.NewReturnKey()
		if err != nil {
			return nil, err
		}
		body, err := recoverBody(env, rk.PublicKey())
		if err != nil {
			return nil, err
		}
		w.users = append(w.users, &user{session: p, env: env, want: r, body: body, rk: rk, device: dk})
	}
	if w.verifier, err = service.VerifierFor(w.dir); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0") // loopback only
	if err != nil {
		return nil, err
	}
	w.base = "http://" + ln.Addr().String()
	w.svc, err = service.New(service.Config{
		Verifier:  w.verifier,
		Directory: w.dir,
		Keys:      []protector.Unwrapper{w.key},
		Audit:     slog.New(slog.NewJSONHandler(io.Discard, nil)),
		// One address, one tenant, a handful of users sending thousands
		// of requests: the limits would measure themselves.
		RateLimit:    service.RateLimit{Unlimited: true},
		AddressLimit: service.RateLimit{Unlimited: true},
		TenantLimit:  service.RateLimit{Unlimited: true},
		PublicURL:    w.base,
	})
	if err != nil {
		return nil, err
	}
	var handler http.Handler = w.svc
	if cfg.remote {
		rv, lc, srv, err := remoteDirectory(w.dir, dirLn)
		if err != nil {
			return nil, err
		}
		w.dirSrv = srv
		rs, err := service.New(service.Config{
			Verifier: rv, Directory: lc, Keys: []protector.Unwrapper{w.key},
			Audit:     slog.New(slog.NewJSONHandler(io.Discard, nil)),
			RateLimit: service.RateLimit{Unlimited: true}, AddressLimit: service.RateLimit{Unlimited: true},
			TenantLimit: service.RateLimit{Unlimited: true}, PublicURL: w.base,
		})
		if err != nil {
			return nil, err
		}
		w.remote = rs
		// One listener, one URL (the proofs name it): a header picks the
		// service, so both are measured over the same connections.
		handler = http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if r.Header.Get(remoteHeader) != "" {
				w.remote.ServeHTTP(rw, r)
				return
			}
			w.svc.ServeHTTP(rw, r)
		})
	}
	w.srv = &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	go w.srv.Serve(ln)
	w.hc = &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil, // never through a proxy: loopback only
			MaxIdleConns:        cfg.c,
			MaxIdleConnsPerHost: cfg.c,
			MaxConnsPerHost:     cfg.c,
			IdleConnTimeout:     time.Minute,
		},
	}
	return w, nil
}

func (w *world) close() {
	w.srv.Close()
	if w.dirSrv != nil {
		w.dirSrv.Close()
	}
	for _, u := range w.users {
		u.want.Destroy()
		u.rk.Destroy()
	}
}

// recoverBody is the JSON body of a recover request.
func recoverBody(env *protector.Envelope, returnKey []byte) ([]byte, error) {
	txt, err := env.MarshalText()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(`{"envelope":"`)
	b.Write(txt)
	b.WriteString(`","return_key":"`)
	b.WriteString(b64(returnKey))
	b.WriteString(`"}`)
	return b.Bytes(), nil
}

// credential is a token and the DPoP proof its device signed for it.
type credential struct{ token, proof string }

// tokens mints n fresh access tokens, round-robin over the users, each with
// its device's proof for the user's request (signed ahead: the device's
// signing is not the service's work).
func (w *world) tokens(ctx context.Context, n int) ([]credential, error) {
	out := make([]credential, n)
	for i := range out {
		u := w.users[i%len(w.users)]
		t, err := u.session.Refresh(ctx)
		if err != nil {
			return nil, err
		}
		proof, err := dpop.Fresh(u.device, dpop.Claims{HTM: http.MethodPost, HTU: w.base + service.PathRecover, IAT: time.Now().Unix(),
			ATH: dpop.Hash([]byte(t)), RKH: dpop.Hash(u.rk.PublicKey())})
		if err != nil {
			return nil, err
		}
		out[i] = credential{t, proof}
	}
	return out, nil
}

// result is one round's figures.
// remoteHeader sends a request to the service that trusts the directory
// over HTTP (-issuer).
const remoteHeader = "X-Load-Remote"

type result struct {
	served, ceiling float64 // requests per second
	remote          float64 // requests per second, -issuer: the service trusting the directory over HTTP
	p50, p99        time.Duration
	allocs          float64 // per served request, whole process
}

// round measures n requests in chunks, alternating the ceiling (the crypto
// path alone) and the served path chunk by chunk, so that both see the
// same machine: on shared cores, the load from other processes changes
// faster than a whole round lasts.
func (w *world) round(ctx context.Context, n, chunk int, cpuprofile string) (result, error) {
	warm := 2 * w.cfg.c
	toks, err := w.tokens(ctx, n+warm)
	if err != nil {
		return result{}, err
	}
	ctoks, err := w.tokens(ctx, len(w.users))
	if err != nil {
		return result{}, err
	}
	// Warm the connections (and check a response per user) first.
	for i := range warm {
		if err := w.send(ctx, toks[n+i], w.users[(n+i)%len(w.users)], i < len(w.users), false); err != nil {
			return result{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	var rtoks []credential
	if w.remote != nil {
		if rtoks, err = w.tokens(ctx, n+warm); err != nil {
			return result{}, err
		}
		for i := range warm {
			if err := w.send(ctx, rtoks[n+i], w.users[(n+i)%len(w.users)], i < len(w.users), true); err != nil {
				return result{}, fmt.Errorf("warm-up (remote directory): %w", err)
			}
		}
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return result{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return result{}, err
		}
		defer pprof.StopCPUProfile()
	}
	runtime.GC()
	lat := make([]time.Duration, n)
	var ceilEl, loadEl, remoteEl time.Duration
	rlat := make([]time.Duration, n)
	var mallocs uint64
	for done := 0; done < n; done += chunk {
		k := min(chunk, n-done)
		el, err := w.ceilingChunk(ctx, k, ctoks)
		if err != nil {
			return result{}, err
		}
		ceilEl += el
		el, m, err := w.loadChunk(ctx, done, toks[done:done+k], lat[done:done+k], false)
		if err != nil {
			return result{}, err
		}
		loadEl += el
		mallocs += m
		if w.remote != nil {
			el, _, err := w.loadChunk(ctx, done, rtoks[done:done+k], rlat[done:done+k], true)
			if err != nil {
				return result{}, fmt.Errorf("remote directory: %w", err)
			}
			remoteEl += el
		}
	}
	slices.Sort(lat)
	var remote float64
	if w.remote != nil {
		remote = float64(n) / remoteEl.Seconds()
	}
	return result{
		remote:  remote,
		served:  float64(n) / loadEl.Seconds(),
		ceiling: float64(n) / ceilEl.Seconds(),
		p50:     lat[n/2],
		p99:     lat[min(n-1, n*99/100)],
		allocs:  float64(mallocs) / float64(n),
	}, nil
}

// parallel runs fn(i) for i in [0,n) on c goroutines and returns the
// elapsed time and the first error.
func (w *world) parallel(ctx context.Context, n int, fn func(i int) error) (time.Duration, error) {
	var next atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for range w.cfg.c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil || firstErr.Load() != nil {
					return
				}
				if err := fn(i); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if p := firstErr.Load(); p != nil {
		return 0, *p
	}
	return el, ctx.Err()
}

// ceilingChunk runs the crypto of n requests on c goroutines.
func (w *world) ceilingChunk(ctx context.Context, n int, toks []credential) (time.Duration, error) {
	v := w.verifier
	return w.parallel(ctx, n, func(i int) error {
		u := w.users[i%len(w.users)]
		return cryptoPath(ctx, v, w.key, toks[i%len(toks)], w.base+service.PathRecover, u.env, u.rk.PublicKey())
	})
}

// cryptoPath is what a recover request cannot do without: the token's
// signature and claims, the DPoP proof's signature and its match with the
// request, the unwrap and the seal.
func cryptoPath(ctx context.Context, v service.TokenVerifier, k protector.Unwrapper, cr credential, htu string, env *protector.Envelope, pub []byte) error {
	c, err := v.Verify(ctx, cr.token)
	if err != nil {
		return err
	}
	pr, err := dpop.Parse(cr.proof)
	if err != nil {
		return err
	}
	if err := pr.Check(dpop.Expect{HTM: http.MethodPost, HTU: htu, ATH: dpop.Hash([]byte(cr.token)), RKH: dpop.Hash(pub),
		JKT: c.JKT, Now: time.Now(), MaxAge: service.DefaultProofMaxAge, Skew: service.DefaultSkew}); err != nil {
		return err
	}
	r, err := k.Unwrap(env)
	if err != nil {
		return err
	}
	defer r.Destroy()
	_, err = protector.SealToReturnKey(pub, r, env)
	return err
}

// loadChunk sends one recover request per token from c keep-alive clients,
// recording each latency; toks[i] belongs to user off+i. It returns the elapsed time and the process's
// allocations.
func (w *world) loadChunk(ctx context.Context, off int, toks []credential, lat []time.Duration, remote bool) (time.Duration, uint64, error) {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	el, err := w.parallel(ctx, len(toks), func(i int) error {
		t0 := time.Now()
		if err := w.send(ctx, toks[i], w.users[(off+i)%len(w.users)], false, remote); err != nil {
			return err
		}
		lat[i] = time.Since(t0)
		return nil
	})
	runtime.ReadMemStats(&m1)
	return el, m1.Mallocs - m0.Mallocs, err
}

// send makes one recover request; with check, it also opens the sealed
// protector and compares it with the one that was wrapped.
func (w *world) send(ctx context.Context, tok credential, u *user, check, remote bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.base+service.PathRecover, bytes.NewReader(u.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "DPoP "+tok.token)
	req.Header.Set("DPoP", tok.proof)
	if remote {
		req.Header.Set(remoteHeader, "1")
	}
	resp, err := w.hc.Do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, service.MaxResponseBytes))
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	sealed, err := service.DecodeRecoverResponse(body)
	if err != nil {
		return err
	}
	if check {
		got, err := u.rk.Open(sealed, u.env)
		if err != nil {
			return fmt.Errorf("open sealed protector: %w", err)
		}
		ok := got.Equal(u.want)
		got.Destroy()
		if !ok {
			return errors.New("the service returned a different protector")
		}
	}
	return nil
}

type allocFigures struct{ handler, crypto float64 }

// handlerAllocs counts allocations per request of ServeHTTP alone, and of
// the crypto path alone, on one goroutine.
func (w *world) handlerAllocs(ctx context.Context, m int) (allocFigures, error) {
	toks, err := w.tokens(ctx, m)
	if err != nil {
		return allocFigures{}, err
	}
	reqs := make([]*http.Request, m)
	for i := range reqs {
		u := w.users[i%len(w.users)]
		r, err := http.NewRequestWithContext(ctx, http.MethodPost, service.PathRecover, bytes.NewReader(u.body))
		if err != nil {
			return allocFigures{}, err
		}
		r.RemoteAddr = "127.0.0.1:1"
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "DPoP "+toks[i].token)
		r.Header.Set("DPoP", toks[i].proof)
		reqs[i] = r
	}
	rws := make([]*discardWriter, m)
	for i := range rws {
		rws[i] = &discardWriter{h: make(http.Header, 8)}
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for i, r := range reqs {
		w.svc.ServeHTTP(rws[i], r)
	}
	runtime.ReadMemStats(&m1)
	for _, rw := range rws {
		if rw.status != http.StatusOK {
			return allocFigures{}, fmt.Errorf("handler status %d", rw.status)
		}
	}
	v := w.verifier
	var c0, c1 runtime.MemStats
	runtime.ReadMemStats(&c0)
	for i := range m {
		u := w.users[i%len(w.users)]
		if err := cryptoPath(ctx, v, w.key, toks[i], w.base+service.PathRecover, u.env, u.rk.PublicKey()); err != nil {
			return allocFigures{}, err
		}
	}
	runtime.ReadMemStats(&c1)
	return allocFigures{
		handler: float64(m1.Mallocs-m0.Mallocs) / float64(m),
		crypto:  float64(c1.Mallocs-c0.Mallocs) / float64(m),
	}, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

type discardWriter struct {
	h      http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(code int)        { d.status = code }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
