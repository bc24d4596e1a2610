package reliability

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/container/store"
	"github.com/hellosim/hellosim/internal/syncbuf"
)

// Child programs: the test binary started again with childEnv set to a
// role. They print what they did on stdout, one line per event.
const (
	// roleSaver loads the stored generation of the chain's container and
	// saves every later generation of the chain in order, as fast as it
	// can (args: store directory, chain file). It prints "ready" before its
	// first save and "done" after its last; the crash test kills it
	// somewhere in between.
	roleSaver = "saver"
	// roleRacer saves one container (args: store directory, container
	// file) when a line arrives on stdin, and prints "ok", "conflict" or
	// "error: …".
	roleRacer = "racer"
	// roleReplacer runs every write of the Store on one user's container,
	// in a loop (args: store directory, pool file of containers of one
	// user, number of operations): it looks up the user's container and
	// replaces it with the next of the pool, deletes it every fifth time,
	// and saves one when the user has none. It prints "ready" before its
	// first operation and "done" after its last.
	roleReplacer = "replacer"
)

// runChild runs the child program named role (see TestMain).
func runChild(role string, args []string) error {
	switch role {
	case roleSaver:
		if len(args) != 2 {
			return errors.New("usage: saver DIR CHAIN")
		}
		return childSaver(args[0], args[1])
	case roleRotator:
		if len(args) != 3 {
			return errors.New("usage: rotator DIR TPM PIN")
		}
		return childRotator(args[0], args[1], args[2])
	case roleRacer:
		if len(args) != 2 {
			return errors.New("usage: racer DIR CONTAINER")
		}
		return childRacer(args[0], args[1])
	case roleReplacer:
		if len(args) != 3 {
			return errors.New("usage: replacer DIR POOL OPS")
		}
		ops, err := strconv.Atoi(args[2])
		if err != nil {
			return err
		}
		return childReplacer(args[0], args[1], ops)
	}
	return fmt.Errorf("unknown child role %q", role)
}

func childSaver(dir, chainFile string) error {
	raw, err := os.ReadFile(chainFile)
	if err != nil {
		return err
	}
	chain, err := decodeChain(raw)
	if err != nil {
		return err
	}
	cs := make([]*container.Container, len(chain))
	for i, b := range chain {
		if cs[i], err = container.Parse(b); err != nil {
			return fmt.Errorf("chain[%d]: %w", i, err)
		}
	}
	st, err := store.Open(dir)
	if err != nil {
		return err
	}
	next := 0
	switch c, err := st.Load(cs[0].ID()); {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return err
	default:
		for next < len(cs) && cs[next].Generation() <= c.Generation() {
			next++
		}
	}
	fmt.Println("ready")
	for _, c := range cs[next:] {
		if err := st.Save(c); err != nil {
			return fmt.Errorf("save generation %d: %w", c.Generation(), err)
		}
	}
	fmt.Println("done")
	return nil
}

func childReplacer(dir, poolFile string, ops int) error {
	raw, err := os.ReadFile(poolFile)
	if err != nil {
		return err
	}
	enc, err := decodeChain(raw)
	if err != nil {
		return err
	}
	pool := make([]*container.Container, len(enc))
	for i, b := range enc {
		if pool[i], err = container.Parse(b); err != nil {
			return fmt.Errorf("pool[%d]: %w", i, err)
		}
	}
	st, err := store.Open(dir)
	if err != nil {
		return err
	}
	cfg := pool[0].Config()
	fmt.Println("ready")
	for i := range ops {
		cur, err := st.Lookup(cfg.TenantID, cfg.UserID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			err = st.Save(pool[i%len(pool)])
		case err != nil:
		case i%5 == 4:
			err = st.Delete(cur.ID())
		default:
			next := pool[0]
			for j, c := range pool {
				if c.ID() == cur.ID() {
					next = pool[(j+1)%len(pool)]
				}
			}
			err = st.Replace(cur, next)
		}
		if err != nil {
			return fmt.Errorf("operation %d: %w", i, err)
		}
	}
	fmt.Println("done")
	return nil
}

func childRacer(dir, file string) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	c, err := container.Parse(raw)
	if err != nil {
		return err
	}
	st, err := store.Open(dir)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return err
	}
	switch err := st.Save(c); {
	case err == nil:
		fmt.Println("ok")
	case errors.Is(err, store.ErrConflict):
		fmt.Println("conflict")
	default:
		fmt.Printf("error: %v\n", err)
	}
	return nil
}

// encodeChain and decodeChain frame container encodings with a 4-byte
// length each.
func encodeChain(chain [][]byte) []byte {
	var out []byte
	for _, b := range chain {
		out = binary.BigEndian.AppendUint32(out, uint32(len(b)))
		out = append(out, b...)
	}
	return out
}

func decodeChain(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, io.ErrUnexpectedEOF
		}
		n := binary.BigEndian.Uint32(b)
		b = b[4:]
		if uint32(len(b)) < n {
			return nil, io.ErrUnexpectedEOF
		}
		out = append(out, b[:n])
		b = b[n:]
	}
	return out, nil
}

// childCommand prepares the test binary as the child role with args.
func childCommand(t testing.TB, role string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("test binary: %v", err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), childEnv+"="+role)
	return cmd
}

// lockedBuffer is a buffer a child's stderr copier and the test may use
// at the same time.
type lockedBuffer = syncbuf.Buffer
