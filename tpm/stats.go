package tpm

import (
	"encoding/binary"
	"maps"
	"sync"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// Stats counts TPM commands sent, by command code. Every command that reaches
// the transport counts, retries included.
type Stats struct {
	Commands map[tpm2.TPMCC]uint64
}

// Total is the number of commands sent.
func (s Stats) Total() uint64 {
	var n uint64
	for _, v := range s.Commands {
		n += v
	}
	return n
}

// Stats returns a snapshot of the command counters.
func (t *TPM) Stats() Stats { return t.counter.snapshot() }

// ResetStats zeroes the command counters.
func (t *TPM) ResetStats() { t.counter.reset() }

// counter is a transport that counts commands by their command code
// (TPM 2.0 Part 1 §18.2: tag, size, then commandCode at offset 6).
type counter struct {
	next transport.TPM

	mu     sync.Mutex
	counts map[tpm2.TPMCC]uint64
}

func newCounter(next transport.TPM) *counter {
	return &counter{next: next, counts: make(map[tpm2.TPMCC]uint64)}
}

// Send implements transport.TPM.
func (c *counter) Send(cmd []byte) ([]byte, error) {
	if len(cmd) >= 10 {
		cc := tpm2.TPMCC(binary.BigEndian.Uint32(cmd[6:10]))
		c.mu.Lock()
		c.counts[cc]++
		c.mu.Unlock()
	}
	return c.next.Send(cmd)
}

func (c *counter) snapshot() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Commands: maps.Clone(c.counts)}
}

func (c *counter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.counts)
}
