package service

import (
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// Paths served.
const (
	PathKeys    = "/v1/keys"
	PathRecover = "/v1/recover"
)

// realm names the service in WWW-Authenticate challenges (RFC 6750 §3).
const realm = "hellosim-pin-reset"

// ServeHTTP implements http.Handler.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rid := s.reqPrefix + strconv.FormatUint(s.reqSeq.Add(1), 10)
	h := w.Header()
	h["X-Request-Id"] = []string{rid}
	h["Cache-Control"] = []string{"no-store"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	at := &attempt{r: r, rid: rid, client: s.clientOf(r)}
	switch r.URL.Path {
	case PathKeys:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h["Allow"] = []string{"GET, HEAD"}
			s.refuse(w, at, &refusal{status: http.StatusMethodNotAllowed, code: CodeMethodNotAllowed, message: "use GET"})
			return
		}
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{strconv.Itoa(len(s.keySet))}
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write(s.keySet)
		}
		s.record(at, slog.LevelInfo, "pin reset keys", http.StatusOK, nil)
	case PathRecover:
		if r.Method != http.MethodPost {
			h["Allow"] = []string{"POST"}
			s.refuse(w, at, &refusal{status: http.StatusMethodNotAllowed, code: CodeMethodNotAllowed, message: "use POST"})
			return
		}
		s.recover(w, at)
	default:
		s.refuse(w, at, &refusal{status: http.StatusNotFound, code: CodeNotFound, message: "no such resource"})
	}
}

// readBody reads at most maxBody bytes, in one allocation when the client
// sent a Content-Length.
func (s *Service) readBody(r *http.Request) ([]byte, *refusal) {
	if r.ContentLength > s.maxBody {
		return nil, s.tooLarge()
	}
	n := s.maxBody + 1
	if r.ContentLength >= 0 {
		n = r.ContentLength + 1 // one more, to see the end
	}
	lr := io.LimitReader(r.Body, s.maxBody+1)
	buf := make([]byte, 0, n)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		m, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, &refusal{status: http.StatusBadRequest, code: CodeMalformedRequest, message: "could not read the body", reason: "body read failed"}
		}
	}
	if int64(len(buf)) > s.maxBody {
		return nil, s.tooLarge()
	}
	return buf, nil
}

func (s *Service) tooLarge() *refusal {
	return &refusal{status: http.StatusRequestEntityTooLarge, code: CodeBodyTooLarge,
		message: "request body over " + strconv.FormatInt(s.maxBody, 10) + " bytes"}
}

// isJSON accepts application/json, with at most a utf-8 charset parameter.
func isJSON(ct string) bool {
	if ct == "application/json" {
		return true
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return false
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return false
		}
	}
	return true
}

// auditPath names the path for the audit log: unknown paths are not
// logged verbatim, since a client could have put anything there.
func auditPath(p string) string {
	if p == PathKeys || p == PathRecover {
		return p
	}
	return "(other)"
}

// sanitize bounds and cleans an attacker-chosen string for the audit log.
func sanitize(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\ufffd' {
			return '?'
		}
		return r
	}, s)
}
