package service

import (
	"bytes"
	"context"
	"errors"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// net/http answers some requests itself, without calling the handler: a
// header block over MaxHeaderBytes (431), a request line it cannot parse
// (400), an unsupported transfer encoding (501); and it drops connections
// whose client is too slow (ReadHeaderTimeout, ReadTimeout) or whose writes
// time out. None of that reaches a handler, so none of it would reach the
// audit log. AuditListener and ErrorLog bring it there.

// AuditListener wraps l so that what net/http does on its own on a
// connection is audited: every response written to the connection that the
// handler did not produce (the status net/http chose, and the client
// address), and every read or write that timed out in the middle of a
// request. Serve the service with
//
//	srv := &http.Server{Handler: svc.AuditHandler(mux), ErrorLog: svc.ErrorLog(), ConnContext: svc.ConnContext, ...}
//	srv.Serve(svc.AuditListener(l))
//
// where mux serves the service (and whatever else the server serves):
// AuditHandler marks each request a handler answered, so the responses
// net/http writes on its own are told from the rest.
//
// It sees plaintext, so it belongs under a TLS-terminating proxy or above
// a listener that has already done TLS at the connection level; behind
// http.Server.ServeTLS it sees only ciphertext and audits timeouts alone.
func (s *Service) AuditListener(l net.Listener) net.Listener {
	return &auditListener{Listener: l, s: s}
}

// AuditHandler wraps the server's handler for AuditListener: it tells the
// connection that a handler answers this request.
func (s *Service) AuditHandler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		markHandled(r)
		h.ServeHTTP(w, r)
	})
}

// ConnContext is for http.Server.ConnContext: it lets the handler tell the
// connection that it answered a request, so AuditListener can tell
// net/http's own answers from the handler's.
func (s *Service) ConnContext(ctx context.Context, c net.Conn) context.Context {
	if ac, ok := c.(*auditConn); ok {
		return context.WithValue(ctx, auditConnKey{}, ac)
	}
	return ctx
}

// ErrorLog returns a logger for http.Server.ErrorLog: net/http's own
// complaints (TLS handshake errors, a panicking handler, accept errors)
// become audit records.
func (s *Service) ErrorLog() *log.Logger {
	return log.New(errorLogWriter{s}, "", 0)
}

type errorLogWriter struct{ s *Service }

func (e errorLogWriter) Write(p []byte) (int, error) {
	e.s.auditConn("net/http error", slog.String("error", sanitize(strings.TrimSpace(string(p)), 300)))
	return len(p), nil
}

// audit writes one record about the connection level.
func (s *Service) auditConn(msg string, attrs ...slog.Attr) {
	s.audit.LogAttrs(context.Background(), slog.LevelWarn, msg, attrs...)
}

type auditConnKey struct{}

// markHandled tells r's connection, when it is audited, that the handler
// answers this request.
func markHandled(r *http.Request) {
	if ac, ok := r.Context().Value(auditConnKey{}).(*auditConn); ok {
		ac.handled.Add(1)
	}
}

type auditListener struct {
	net.Listener
	s *Service
}

func (l *auditListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &auditConn{Conn: c, s: l.s, client: addrString(peerAddr(c.RemoteAddr().String()), c.RemoteAddr().String())}, nil
}

// auditConn watches one connection.
type auditConn struct {
	net.Conn
	s       *Service
	client  string
	handled atomic.Int64 // requests the handler answered

	mu        sync.Mutex
	responses int64 // final responses written (status lines, 1xx aside)
	pending   bool  // bytes read since the last response: a request is in progress
	reported  bool  // a timeout was reported already
}

func (c *auditConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	if n > 0 {
		c.pending = true
	}
	report := err != nil && isTimeout(err) && c.pending && !c.reported
	if report {
		c.reported = true
	}
	c.mu.Unlock()
	if report {
		c.s.auditConn("net/http refusal", slog.String("client", c.client), slog.String("reason", "timeout reading the request"))
	}
	return n, err
}

func (c *auditConn) Write(b []byte) (int, error) {
	if status, line, ok := statusLine(b); ok {
		c.mu.Lock()
		c.responses++
		c.pending = false
		own := c.responses > c.handled.Load()
		if own {
			// Keep the count in step: the handler never saw this request.
			c.handled.Add(1)
		}
		c.mu.Unlock()
		if own {
			c.s.auditConn("net/http refusal", slog.String("client", c.client), slog.Int("status", status),
				slog.String("reason", sanitize(line, 80)))
		}
	}
	n, err := c.Conn.Write(b)
	if err != nil && isTimeout(err) {
		c.s.auditConn("net/http refusal", slog.String("client", c.client), slog.String("reason", "timeout writing the response"))
	}
	return n, err
}

// statusLine reads an HTTP/1 status line at the start of b; 1xx interim
// responses are not final and are skipped.
func statusLine(b []byte) (int, string, bool) {
	if len(b) < 12 || !bytes.HasPrefix(b, []byte("HTTP/1.")) || b[8] != ' ' {
		return 0, "", false
	}
	st := 0
	for _, d := range b[9:12] {
		if d < '0' || d > '9' {
			return 0, "", false
		}
		st = st*10 + int(d-'0')
	}
	if st < 200 {
		return 0, "", false
	}
	line := b
	if i := bytes.IndexByte(b, '\r'); i >= 0 {
		line = b[:i]
	}
	return st, string(line), true
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
