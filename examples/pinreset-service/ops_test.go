package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/internal/redistest"
	"github.com/hellosim/hellosim/internal/syncbuf"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset/service/state"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestOpsHealthReadinessMetrics: /healthz always answers; /readyz only
// when every backend does and the service is not draining; /metrics
// counts decisions by code and request latency by route.
func TestOpsHealthReadinessMetrics(t *testing.T) {
	o := newOps()
	backendUp := true
	o.addCheck("fake", func(context.Context) error {
		if backendUp {
			return nil
		}
		return errors.New("down at 10.0.0.1:6379")
	})
	dir, _, _, _, err := demoDirectory("")
	require.NoError(t, err)
	svc, _ := demoService(t, dir, slog.New(o.auditCounter(slog.DiscardHandler)))
	mux := http.NewServeMux()
	mux.Handle("/v1/", svc)
	o.routes(mux)
	srv := httptest.NewServer(o.instrument(mux))
	defer srv.Close()

	code, body := get(t, srv.URL+"/healthz")
	assert.Equal(t, 200, code)
	assert.Equal(t, "ok\n", body)
	code, _ = get(t, srv.URL+"/readyz")
	assert.Equal(t, 200, code)
	backendUp = false
	code, body = get(t, srv.URL+"/readyz")
	assert.Equal(t, 503, code)
	assert.Equal(t, "fake not ready\n", body, "names the backend, never its error")
	backendUp = true
	o.drain()
	code, body = get(t, srv.URL+"/readyz")
	assert.Equal(t, 503, code)
	assert.Equal(t, "shutting down\n", body)
	code, _ = get(t, srv.URL+"/healthz")
	assert.Equal(t, 200, code, "alive while draining")

	// Two decisions: keys served, and a recover refused (malformed body).
	code, _ = get(t, srv.URL+"/v1/keys")
	require.Equal(t, 200, code)
	resp, err := http.Post(srv.URL+"/v1/recover", "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 400, resp.StatusCode)

	_, metrics := get(t, srv.URL+"/metrics")
	assert.Regexp(t, `pinreset_decisions_total\{code="[a-z_]+",decision="deny"\} 1`, metrics)
	assert.Regexp(t, `pinreset_decisions_total\{code="ok",decision="allow"\} 1`, metrics)
	assert.Regexp(t, `pinreset_http_request_duration_seconds_count\{route="/v1/",status="400"\} 1`, metrics)
	assert.Regexp(t, `pinreset_http_request_duration_seconds_count\{route="GET /readyz",status="503"\} 2`, metrics)
}

// TestOpsRedisPKCS11Backends: with -redis and a token, the keys come from
// the token, /readyz waits for both, and their latencies are measured; a
// Redis that does not answer makes the service unready, not dead.
func TestOpsRedisPKCS11Backends(t *testing.T) {
	redisURL, module, label := os.Getenv("HELLOSIM_REDIS"), os.Getenv("HELLOSIM_PKCS11_MODULE"), os.Getenv("HELLOSIM_PKCS11_TOKEN")
	if redisURL == "" || module == "" || label == "" {
		t.Skip("HELLOSIM_REDIS, HELLOSIM_PKCS11_MODULE and HELLOSIM_PKCS11_TOKEN (with HELLOSIM_PKCS11_PIN) are not all set; skipping the Redis and PKCS11 backend test")
	}
	t.Setenv(pinEnv, os.Getenv("HELLOSIM_PKCS11_PIN"))
	o := newOps()
	be := &backendConfig{redisURL: redisURL, pkcs11Module: module, pkcs11Token: label, pkcs11NewKey: "p256"}
	keys, b, err := be.open(o, nil, io.Discard)
	require.NoError(t, err)
	defer b.Close()
	require.NotEmpty(t, keys)
	assert.Equal(t, protector.HPKEP256, keys[0].Public().Scheme(), "the new key is current")
	t.Cleanup(func() { _ = b.token.Destroy(keys[0].Public().ID()) })

	r, err := protector.NewKey(nil)
	require.NoError(t, err)
	defer r.Destroy()
	env, err := keys[0].Public().Wrap(r, protector.Binding{TenantID: "t", UserID: "u", ContainerID: "c"}, nil)
	require.NoError(t, err)
	got, err := keys[0].Unwrap(env)
	require.NoError(t, err)
	got.Destroy()

	srv := serveOps(t, o)
	code, body := get(t, srv.URL+"/readyz")
	assert.Equal(t, 200, code, body)
	_, metrics := get(t, srv.URL+"/metrics")
	assert.Contains(t, metrics, `pinreset_backend_duration_seconds_count{backend="pkcs11",op="derive",result="ok"} 1`)
	assert.Regexp(t, `pinreset_backend_duration_seconds_count\{backend="redis",op="ping",result="ok"\} [1-9]`, metrics)

	// A Redis nobody answers at.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := "redis://" + ln.Addr().String() + "/0"
	require.NoError(t, ln.Close())
	o2 := newOps()
	_, b2, err := (&backendConfig{redisURL: dead}).open(o2, keys, io.Discard)
	require.NoError(t, err, "an unreachable Redis makes the service unready, it does not stop it")
	defer b2.Close()
	code, body = get(t, serveOps(t, o2).URL+"/readyz")
	assert.Equal(t, 503, code)
	assert.Equal(t, "redis not ready\n", body)
}

func TestBackendFlagsRefuseHalfAToken(t *testing.T) {
	_, _, err := (&backendConfig{pkcs11Module: "/nonexistent.so"}).open(newOps(), nil, io.Discard)
	assert.Error(t, err)
	_, _, err = (&backendConfig{pkcs11NewKey: "p256"}).open(newOps(), nil, io.Discard)
	assert.Error(t, err)
	_, err = tokenScheme("x25519")
	assert.Error(t, err)
}

// TestGracefulShutdownFinishesInFlight: SIGTERM while a request is half
// sent; the server stops accepting, answers that request, and exits 0.
func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the program")
	}
	bin := filepath.Join(t.TempDir(), "pinreset-service")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr := new(lockedBuffer)
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(stdout)
	require.True(t, sc.Scan())
	m := regexp.MustCompile(`at http://(127\.0\.0\.1:\d+)`).FindStringSubmatch(sc.Text())
	require.NotNil(t, m, sc.Text())
	assert.Contains(t, sc.Text(), "(public URL derived from the listener)", "the start-up line says how the URL proofs must name was chosen")
	go io.Copy(io.Discard, stdout)
	addr := m[1]

	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	body := `{"envelope":"AAAA","return_key":"AAAA"}`
	// Expect: 100-continue makes the server say when the handler starts
	// reading the body: from then on the request is in flight.
	fmt.Fprintf(conn, "POST /v1/recover HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", addr, len(body))
	br := bufio.NewReader(conn)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	status, err := br.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "HTTP/1.1 100 Continue\r\n", status)
	blank, err := br.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "\r\n", blank)
	_, err = io.WriteString(conn, body[:10])
	require.NoError(t, err)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "shutting down") }, 5*time.Second, 10*time.Millisecond)
	// The log line comes just before the listener closes: new
	// connections are refused from then on, while the one in flight
	// stays open.
	assert.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	}, 5*time.Second, 10*time.Millisecond, "no new connections once shutting down")

	_, err = io.WriteString(conn, body[10:])
	require.NoError(t, err)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err, "the request in flight is answered")
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, 400, resp.StatusCode, "the envelope AAAA is malformed")
	assert.Contains(t, string(answer), `"error"`)
	require.NoError(t, cmd.Wait(), "exits 0 after a graceful shutdown; stderr:\n%s", stderr.String())
}

// lockedBuffer is an io.Writer the test may read while exec writes to it.
type lockedBuffer = syncbuf.Buffer

// TestOpsRedisCluster: -redis takes a Redis Cluster URL; the service's
// store decides on the cluster and /readyz waits for it.
func TestOpsRedisCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	o := newOps()
	_, b, err := (&backendConfig{redisURL: c.URL()}).open(o, nil, io.Discard)
	require.NoError(t, err)
	defer b.Close()
	a := state.Admission{Partition: "8f6ba4d2-5bd9-4e0a-9c43-0d1c6f2b7a11", Locks: []string{"user"},
		Once: []state.Once{{ID: "jti", Expires: time.Now().Add(time.Hour)}}}
	v, err := b.store.Admit(context.Background(), a)
	require.NoError(t, err)
	assert.Equal(t, state.Admitted, v.Outcome)
	v, err = b.store.Admit(context.Background(), a)
	require.NoError(t, err)
	assert.Equal(t, state.Replayed, v.Outcome)
	code, body := get(t, serveOps(t, o).URL+"/readyz")
	assert.Equal(t, 200, code, body)
}

// serveOps serves o's routes (readiness, metrics) until the test ends.
func serveOps(t *testing.T, o *ops) *httptest.Server {
	mux := http.NewServeMux()
	o.routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}
