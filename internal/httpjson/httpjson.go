// Package httpjson writes a JSON answer the way every server of the module
// does: the media type, not to be stored (RFC 6749 §5.1 asks it of token
// answers, and nothing these servers answer is for a cache), the status,
// the body.
package httpjson

import (
	"encoding/json"
	"net/http"
)

// Write answers v as JSON with status. An encoding error after the status
// is sent can only cut the body short, which the client's decoder sees.
func Write(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
