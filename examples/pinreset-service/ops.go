package main

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ops is what an operator watches: /healthz (the process answers),
// /readyz (it can decide: every backend answers and it is not shutting
// down), and /metrics in the Prometheus text format.
type ops struct {
	reg       *prometheus.Registry
	decisions *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	backend   *prometheus.HistogramVec
	checks    []readyCheck
	draining  atomic.Bool
}

type readyCheck struct {
	name string
	ping func(context.Context) error
}

// readyTimeout bounds one readiness check of all backends: a load
// balancer polls often and must not pile requests up on a stuck backend.
const readyTimeout = time.Second

func newOps() *ops {
	o := &ops{
		reg: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pinreset_decisions_total",
			Help: "Decisions of the PIN reset service, by decision (allow, deny) and refusal code (ok when allowed).",
		}, []string{"decision", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pinreset_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route and status.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route", "status"}),
		backend: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pinreset_backend_duration_seconds",
			Help:    "Time of one call to a backend (redis, pkcs11), by operation and result (ok, error).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25},
		}, []string{"backend", "op", "result"}),
	}
	o.reg.MustRegister(o.decisions, o.latency, o.backend,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return o
}

// observer is the Observe hook of a backend.
func (o *ops) observer(backend string) func(op string, d time.Duration, err error) {
	return func(op string, d time.Duration, err error) {
		result := "ok"
		if err != nil {
			result = "error"
		}
		o.backend.WithLabelValues(backend, op, result).Observe(d.Seconds())
	}
}

// addCheck makes readiness depend on a backend.
func (o *ops) addCheck(name string, ping func(context.Context) error) {
	o.checks = append(o.checks, readyCheck{name: name, ping: ping})
}

// routes adds the three endpoints to mux.
func (o *ops) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", o.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.reg, promhttp.HandlerOpts{}))
}

// ready answers 200 when every backend answers within readyTimeout and the
// service is not draining, else 503 naming what is not ready (never a
// backend's error text, which could carry an address or a credential).
func (o *ops) ready(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if o.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("shutting down\n"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	var failed []byte
	for _, c := range o.checks {
		if err := c.ping(ctx); err != nil {
			failed = append(failed, c.name+" not ready\n"...)
		}
	}
	if failed != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write(failed)
		return
	}
	w.Write([]byte("ready\n"))
}

// drain makes /readyz answer 503, so that a load balancer stops sending
// new requests while the server finishes those in flight.
func (o *ops) drain() { o.draining.Store(true) }

// instrument records each request's latency under its route pattern (the
// mux's, so paths chosen by a client cannot grow the label set).
func (o *ops) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		o.latency.WithLabelValues(route, statusClass(sw.status)).Observe(time.Since(start).Seconds())
	})
}

func statusClass(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code)
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingHandler counts the service's audit records, one per decision,
// by their decision and code attributes, and passes them on.
type countingHandler struct {
	slog.Handler
	decisions *prometheus.CounterVec
}

// auditCounter wraps the audit log's handler so that every decision is
// counted as it is recorded.
func (o *ops) auditCounter(h slog.Handler) slog.Handler {
	return &countingHandler{Handler: h, decisions: o.decisions}
}

// Enabled is true: every decision is counted, whatever the level the log
// itself keeps.
func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }

// Handle counts a record that carries a decision, then logs it if the
// wrapped handler wants its level.
func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	decision, code := "", "ok"
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "decision":
			decision = a.Value.String()
		case "code":
			code = a.Value.String()
		}
		return true
	})
	if decision != "" {
		h.decisions.WithLabelValues(decision, code).Inc()
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h *countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &countingHandler{Handler: h.Handler.WithAttrs(as), decisions: h.decisions}
}

func (h *countingHandler) WithGroup(name string) slog.Handler {
	return &countingHandler{Handler: h.Handler.WithGroup(name), decisions: h.decisions}
}
