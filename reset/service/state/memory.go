package state

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"
)

// DefaultMaxPerPartition bounds the one-time IDs the memory store keeps for
// one partition (tenant). A partition that is full refuses new IDs with
// Full rather than forget one; other partitions are not affected.
const DefaultMaxPerPartition = 1 << 18

// MemoryOptions configures NewMemory.
type MemoryOptions struct {
	// Clock; nil means time.Now.
	Clock func() time.Time
	// Epoch; the zero time means Clock() when NewMemory is called, so a
	// restarted process refuses tokens issued before it started.
	Epoch time.Time
	// MaxPerPartition bounds one partition's one-time IDs; 0 means
	// DefaultMaxPerPartition.
	MaxPerPartition int
}

// Memory is a Store in process memory: the embedded default, for a service
// on one instance. Its records vanish with the process; its epoch makes
// that safe (see the package documentation).
type Memory struct {
	now     func() time.Time
	epoch   time.Time
	maxPart int

	mu      sync.Mutex
	closed  bool
	parts   map[string]*partition
	buckets map[string]bucketState
	nextB   int
	fails   map[string][]time.Time // failure times in the window, oldest first
	locks   map[string]time.Time   // lockout ends
	nextF   int
}

type partition struct {
	seen map[[idSize]byte]time.Time // ID hash -> expiry
	next int                        // size at which expired IDs are swept
}

const idSize = 16

var _ Store = (*Memory)(nil)

// NewMemory returns an empty memory store.
func NewMemory(o MemoryOptions) *Memory {
	m := &Memory{
		now:     o.Clock,
		epoch:   o.Epoch,
		maxPart: o.MaxPerPartition,
		parts:   make(map[string]*partition),
		buckets: make(map[string]bucketState),
		nextB:   1024,
		fails:   make(map[string][]time.Time),
		locks:   make(map[string]time.Time),
		nextF:   1024,
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.epoch.IsZero() {
		m.epoch = m.now()
	}
	if m.maxPart <= 0 {
		m.maxPart = DefaultMaxPerPartition
	}
	return m
}

// hashID is the key under which a one-time ID is remembered: the store
// never keeps the ID itself.
func hashID(id string) [idSize]byte {
	h := sha256.Sum256([]byte(id))
	return [idSize]byte(h[:idSize])
}

// Admit implements Store.
func (m *Memory) Admit(_ context.Context, a Admission) (Verdict, error) {
	if err := a.check(); err != nil {
		return Verdict{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Verdict{}, ErrStoreClosed
	}
	now := m.now()
	if !a.IssuedAt.IsZero() && a.IssuedAt.Before(m.epoch) {
		return Verdict{Outcome: BeforeEpoch}, nil
	}
	for i, k := range a.Locks {
		if until, ok := m.locks[scoped(a.Partition, k)]; ok && now.Before(until) {
			return Verdict{Outcome: LockedOut, Index: i, RetryAfter: until.Sub(now)}, nil
		}
	}
	hashes := make([][idSize]byte, len(a.Once))
	for i, o := range a.Once {
		if !now.Before(o.Expires) {
			return Verdict{Outcome: Expired, Index: i}, nil
		}
		hashes[i] = hashID(o.ID)
		// The same ID twice in one admission is a replay too.
		for j := range i {
			if hashes[j] == hashes[i] {
				return Verdict{Outcome: Replayed, Index: i}, nil
			}
		}
		p := m.parts[a.Partition]
		if p == nil {
			continue
		}
		if exp, ok := p.seen[hashes[i]]; ok && now.Before(exp) {
			return Verdict{Outcome: Replayed, Index: i}, nil
		}
		p.sweep(now)
		if len(p.seen) >= m.maxPart {
			return Verdict{Outcome: Full, Index: i}, nil
		}
	}
	tokens := make([]float64, len(a.Buckets))
	for i, b := range a.Buckets {
		st, ok := m.buckets[scoped(a.Partition, b.Key)]
		if !ok {
			st = bucketState{tokens: float64(b.Limit.Burst), last: now}
		}
		tokens[i] = st.refill(b.Limit, now)
		// A key named twice draws twice.
		for j := range i {
			if a.Buckets[j].Key == b.Key {
				tokens[i]--
			}
		}
		if tokens[i] < 1 {
			return Verdict{Outcome: RateLimited, Index: i, RetryAfter: wait(b.Limit, tokens[i])}, nil
		}
	}
	// Admitted: record and spend.
	for i, o := range a.Once {
		p := m.parts[a.Partition]
		if p == nil {
			p = &partition{seen: make(map[[idSize]byte]time.Time), next: 1024}
			m.parts[a.Partition] = p
		}
		p.seen[hashes[i]] = o.Expires
	}
	for i, b := range a.Buckets {
		m.buckets[scoped(a.Partition, b.Key)] = bucketState{tokens: tokens[i] - 1, last: now}
	}
	m.sweepBuckets(a.Buckets, now)
	return Verdict{Outcome: Admitted}, nil
}

// scoped is a key within its partition, which holds no NUL.
func scoped(partition, key string) string { return partition + "\x00" + key }

// sweep forgets expired IDs once the partition has doubled since the last
// sweep, so the cost is amortised.
func (p *partition) sweep(now time.Time) {
	if len(p.seen) < p.next {
		return
	}
	for k, exp := range p.seen {
		if !now.Before(exp) {
			delete(p.seen, k)
		}
	}
	p.next = max(1024, 2*len(p.seen))
}

// sweepBuckets forgets full buckets: they hold no information. The limits
// are those of this admission; a bucket under another limit is judged by
// the first one seen for it, which is at worst a bucket forgotten early
// (refilled).
func (m *Memory) sweepBuckets(bs []Bucket, now time.Time) {
	if len(m.buckets) < m.nextB || len(bs) == 0 {
		return
	}
	l := bs[0].Limit
	for _, b := range bs {
		if b.Limit.Per > l.Per {
			l = b.Limit
		}
	}
	for k, st := range m.buckets {
		if now.Sub(st.last) >= l.Per {
			delete(m.buckets, k)
		}
	}
	m.nextB = max(1024, 2*len(m.buckets))
}

// Fail implements Store.
func (m *Memory) Fail(_ context.Context, partition, key string, p Lockout) (Failures, error) {
	if err := checkFailure(partition, key, p); err != nil {
		return Failures{}, err
	}
	key = scoped(partition, key)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Failures{}, ErrStoreClosed
	}
	now := m.now()
	if len(m.fails) >= m.nextF {
		for k, ts := range m.fails {
			if len(ts) == 0 || !now.Before(ts[len(ts)-1].Add(p.Window)) {
				delete(m.fails, k)
			}
		}
		for k, until := range m.locks {
			if !now.Before(until) {
				delete(m.locks, k)
			}
		}
		m.nextF = max(1024, 2*len(m.fails))
	}
	ts := m.fails[key]
	cut := 0
	for cut < len(ts) && !now.Before(ts[cut].Add(p.Window)) {
		cut++
	}
	ts = append(ts[cut:], now)
	if len(ts) > p.keep() {
		ts = ts[len(ts)-p.keep():]
	}
	m.fails[key] = ts
	out := Failures{Count: len(ts)}
	if d := p.duration(len(ts)); d > 0 {
		until := now.Add(d)
		if until.After(m.locks[key]) {
			m.locks[key] = until
		}
	}
	if until, ok := m.locks[key]; ok && now.Before(until) {
		out.LockedUntil = until
	}
	return out, nil
}

// Epoch implements Store.
func (m *Memory) Epoch(context.Context, string) (time.Time, error) { return m.epoch, nil }

// Ping implements Store.
func (m *Memory) Ping(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrStoreClosed
	}
	return nil
}

// Close implements Store; the records are dropped.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.parts, m.buckets, m.fails, m.locks = nil, nil, nil, nil
	return nil
}
