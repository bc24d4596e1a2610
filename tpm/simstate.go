package tpm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// A simulator state file holds the embedded simulator's NV memory — its
// hierarchy seeds, dictionary-attack counter and parameters, NV indices and
// persistent objects — so that the next process finds the same TPM
// (OpenSimulator with WithState). Layout, all integers big-endian:
//
//	magic     16 bytes  "hellosim sim-nv\n"
//	version    4 bytes  1
//	size       4 bytes  length of the image (the simulator's NV_MEMORY_SIZE)
//	savedAt    8 bytes  wall-clock time of the save, Unix milliseconds
//	image   size bytes  the NV image
//	sum       32 bytes  SHA-256 of everything above
//
// The file is replaced atomically (a temporary file in the same directory,
// fsynced, renamed over it, the directory fsynced), so it is always one
// whole image: the old one or the new one. It is NOT a secret store: the
// seeds in it are every key of that TPM, in clear, so it protects nothing
// against whoever can read it (the same holds for swtpm's state directory).
const (
	simStateMagic   = "hellosim sim-nv\n"
	simStateVersion = 1
	simStateHeader  = len(simStateMagic) + 4 + 4 + 8
)

// SimStateError is a simulator state file that cannot be used. Op says what
// failed ("lock", "read", "save"); Err is ErrSimStateLocked,
// ErrSimStateCorrupt (wrapped with the reason) or the I/O error.
type SimStateError struct {
	Path string
	Op   string
	Err  error
}

func (e *SimStateError) Error() string {
	return fmt.Sprintf("tpm: simulator state %s: %s: %v", e.Path, e.Op, e.Err)
}

func (e *SimStateError) Unwrap() error { return e.Err }

// encodeSimState is the file's content for img saved at savedAt.
func encodeSimState(img []byte, savedAt time.Time) []byte {
	b := make([]byte, 0, simStateHeader+len(img)+sha256.Size)
	b = append(b, simStateMagic...)
	b = binary.BigEndian.AppendUint32(b, simStateVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(len(img)))
	b = binary.BigEndian.AppendUint64(b, uint64(savedAt.UnixMilli()))
	b = append(b, img...)
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// decodeSimState checks a state file's content and returns its image, which
// must be size bytes long. Every defect is ErrSimStateCorrupt.
func decodeSimState(b []byte, size int) (img []byte, savedAt time.Time, err error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrSimStateCorrupt, fmt.Sprintf(format, args...))
	}
	if len(b) < simStateHeader+sha256.Size {
		return nil, time.Time{}, bad("truncated (%d bytes)", len(b))
	}
	if !bytes.HasPrefix(b, []byte(simStateMagic)) {
		return nil, time.Time{}, bad("not a simulator state file")
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, time.Time{}, bad("checksum mismatch (truncated or altered)")
	}
	h := body[len(simStateMagic):]
	if v := binary.BigEndian.Uint32(h); v != simStateVersion {
		return nil, time.Time{}, bad("version %d, want %d", v, simStateVersion)
	}
	n := binary.BigEndian.Uint32(h[4:])
	if int64(n) != int64(size) || len(body)-simStateHeader != size {
		return nil, time.Time{}, bad("NV image of %d bytes, this simulator's is %d", len(body)-simStateHeader, size)
	}
	savedAt = time.UnixMilli(int64(binary.BigEndian.Uint64(h[8:])))
	return body[simStateHeader:], savedAt, nil
}

// readSimState reads the state file at path. A missing file is no error:
// exists is false and the caller starts a new TPM.
func readSimState(path string, size int) (img []byte, savedAt time.Time, exists bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, time.Time{}, false, nil
	}
	if err == nil {
		img, savedAt, err = decodeSimState(b, size)
	}
	if err != nil {
		return nil, time.Time{}, true, &SimStateError{Path: path, Op: "read", Err: err}
	}
	return img, savedAt, true, nil
}

// writeSimState replaces the state file at path atomically.
func writeSimState(path string, img []byte, savedAt time.Time) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(encodeSimState(img, savedAt)); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// simStateLockPath is the file locked while a process uses the state at
// path. It is never removed: removing a lock file races with the next
// process taking it.
func simStateLockPath(path string) string { return path + ".lock" }
