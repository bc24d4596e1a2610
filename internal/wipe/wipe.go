// Package wipe overwrites secret buffers when they are no longer needed.
//
// Go's garbage collector may have copied a slice before it is wiped, so
// wiping is a best-effort reduction of how long a secret stays in memory, not
// a guarantee. It is still worth doing: most secrets in this module live in a
// single buffer from creation to wipe.
package wipe

// Bytes sets every byte of each buffer to zero.
func Bytes(bufs ...[]byte) {
	for _, b := range bufs {
		clear(b)
	}
}
