package consumer_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/stretchr/testify/require"
)

// TestChangesFromAnotherGoroutineTakeEffectAtNextRecord: a Records loop
// reads three partitions while another goroutine seeks them (to an
// offset, the start or the end), assigns them again, pauses, resumes,
// unassigns and assigns them, at random moments. The Records doc
// promises that such a change takes effect at the loop's next record:
// once the call has returned, no record fetched before it is yielded,
// but for the one record the loop may have taken before the call
// (Position past it), still on its way to the loop body. The test logs
// each change, once it has returned, and each record the body gets,
// under one lock, and checks every record against that log: a
// partition's records follow one another without gap or duplicate from
// where the last change put its position, but for that one record in
// hand (the first the body gets after the change); a paused or
// unassigned partition yields nothing more but that one. The record in
// hand is at the position the partition had at one of the changes since
// the body's last record (taken before the first, or between two).
// Seeks never go to the offset the partition is at, nor to one a record
// in hand may have, where a record may legitimately come twice (see
// Records). After the loop, Position is where the log says.
//
// A few seeds run by default; RUNNEL_CONSUMER_CHAOS=N runs N seeds (see
// testkit.Seeds), RUNNEL_CONSUMER_CHAOS_BASE=S replays seed S.
//
// The same runs with a loop of Polls in place of the Records loop, whose
// answers are checked in the same way: each partition's records in a
// Poll follow on from where the last change put its position, or, for
// the one Poll that may have been made before the change (under the
// consumer's lock, which the change waits for) and returned after it,
// from the position the partition had at a change since the last Poll;
// a partition paused or unassigned before a Poll began has no records in
// it (Poll's doc: records fetched of a partition changed meanwhile are
// dropped).
func TestChangesFromAnotherGoroutineTakeEffectAtNextRecord(t *testing.T) {
	for _, mode := range []string{"Records", "Poll"} {
		t.Run(mode, func(t *testing.T) {
			testkit.Seeds(t, "RUNNEL_CONSUMER_CHAOS", 6, 2, func(t *testing.T, seed uint64) { runChaos(t, seed, mode == "Poll") })
		})
	}
}

const (
	chaosParts = 3
	chaosN     = 300 // records per partition, offsets 0 to chaosN-1
	chaosOps   = 300
)

// chaosModel is where each partition's next record must come from, as
// the changes logged so far put it.
type chaosModel struct {
	mu       sync.Mutex
	next     [chaosParts]int64   // the next offset the partition's records continue from
	hand     [chaosParts][]int64 // the offsets a record the loop has in hand may have
	assigned [chaosParts]bool
	paused   [chaosParts]bool
	records  int
	finished chan struct{} // closed once finishing and every partition read to its end
	finish   bool
	closed   bool
}

// changeLocked logs that p's position or state is about to change: the
// loop may have taken the record at p's position before.
func (m *chaosModel) changeLocked(p int) {
	m.hand[p] = append(m.hand[p], m.next[p])
}

// target picks an offset to seek p to, other than those where a record
// may come twice.
func (m *chaosModel) targetLocked(rng *rand.Rand, p int) int64 {
	for {
		x := rng.Int64N(chaosN + 1)
		if x != m.next[p] && !slices.Contains(m.hand[p], x) {
			return x
		}
	}
}

// record checks a record the body got, and reports what is wrong.
func (m *chaosModel) record(p int, off int64, value string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	bad := m.checkLocked(p, off, value)
	m.newTurnLocked()
	return bad
}

// polled checks the records a Poll returned, and reports what is wrong.
func (m *chaosModel) polled(fs consumer.Fetches) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.newTurnLocked()
	for _, f := range fs {
		if f.Err != nil {
			return fmt.Sprintf("partition %d: %v", f.Partition, f.Err)
		}
		p := int(f.Partition)
		prev := int64(-1)
		current := false // the fetch is from the position the last change set
		for r, err := range f.Records() {
			if err != nil {
				return fmt.Sprintf("partition %d: %v", p, err)
			}
			m.records++
			if want := fmt.Sprintf("%d-%d", p, r.Offset); string(r.Value) != want {
				return fmt.Sprintf("partition %d offset %d: value %q, want %q", p, r.Offset, r.Value, want)
			}
			switch {
			case prev >= 0 && r.Offset != prev+1:
				return fmt.Sprintf("partition %d: offset %d after %d in one fetch", p, r.Offset, prev)
			case prev < 0:
				blocked := !m.assigned[p] || m.paused[p]
				current = r.Offset == m.next[p]
				if !slices.Contains(m.hand[p], r.Offset) && (blocked || !current) {
					return fmt.Sprintf("partition %d: fetch from offset %d, want %d (before a change: %v; assigned %v, paused %v)",
						p, r.Offset, m.next[p], m.hand[p], m.assigned[p], m.paused[p])
				}
			}
			prev = r.Offset
		}
		if current {
			m.next[p] = prev + 1
		}
	}
	return ""
}

// checkLocked checks a record against the log of changes.
func (m *chaosModel) checkLocked(p int, off int64, value string) string {
	m.records++
	if want := fmt.Sprintf("%d-%d", p, off); value != want {
		return fmt.Sprintf("partition %d offset %d: value %q, want %q", p, off, value, want)
	}
	blocked := !m.assigned[p] || m.paused[p]
	var bad string
	switch {
	case slices.Contains(m.hand[p], off):
		// The record in hand when a change came.
		if off == m.next[p] {
			m.next[p]++ // no seek since: the position went past it
		}
	case !blocked && off == m.next[p]:
		m.next[p]++
	default:
		bad = fmt.Sprintf("partition %d: got offset %d, want %d (in hand: %v; assigned %v, paused %v)",
			p, off, m.next[p], m.hand[p], m.assigned[p], m.paused[p])
	}
	return bad
}

// newTurnLocked starts a new turn of the loop: what it returns from now
// on was taken after the changes logged so far.
func (m *chaosModel) newTurnLocked() {
	for q := range chaosParts {
		m.hand[q] = m.hand[q][:0]
	}
	m.checkFinishedLocked()
}

func (m *chaosModel) checkFinishedLocked() {
	if !m.finish || m.closed {
		return
	}
	for p := range chaosParts {
		if m.next[p] != chaosN {
			return
		}
	}
	m.closed = true
	close(m.finished)
}

func runChaos(t *testing.T, seed uint64, poll bool) {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	b := openBroker(t, map[string]int{"c": chaosParts})
	for p := range chaosParts {
		for i := 0; i < chaosN; i += 10 {
			vs := make([]string, 10)
			for j := range vs {
				vs[j] = fmt.Sprintf("%d-%d", p, i+j)
			}
			values(t, b, "c", int32(p), vs...)
		}
	}
	// Fetches of a few batches or of one, so that changes come inside
	// fetches and between them. With an hour's max wait, a loop that
	// has caught up, or whose partitions are all paused, waits until a
	// change wakes it (a Poll returns early on a change): one that did
	// not wake would wait for the test's deadline. With none, fetches
	// answer at once (and a Records loop that found nothing waits for a
	// record: see FetchMaxWait).
	maxWait := []time.Duration{0, time.Millisecond, time.Hour, time.Hour}[rng.IntN(4)]
	c := newConsumer(t, b, consumer.FetchMaxWait(maxWait),
		consumer.FetchMaxPartitionBytes(1+rng.IntN(1500)), consumer.FetchMaxBytes(1+rng.IntN(4000)))
	m := &chaosModel{finished: make(chan struct{})}
	for p := range chaosParts {
		require.NoError(t, c.Assign("c", int32(p), consumer.At(0)))
		m.assigned[p] = true
	}

	deadline := testCtx(t)
	ctx, cancel := context.WithCancel(deadline)
	defer cancel()
	errs := make(chan error, 1)
	go func() {
		defer cancel()
		errs <- chaos(ctx, rng, c, m)
	}()
	var bad string
	if poll {
		for ctx.Err() == nil && bad == "" {
			fs, err := c.Poll(ctx)
			if err != nil {
				if ctx.Err() == nil {
					bad = fmt.Sprintf("Poll: %v", err)
				}
				break
			}
			bad = m.polled(fs)
		}
	} else {
		for r, err := range c.Records(ctx) {
			if err != nil {
				if !ctxEnd(ctx, err) { // ctx's error comes last, once the changes are made
					bad = fmt.Sprintf("error yielded: %v", err)
				}
				break
			}
			if bad = m.record(int(r.Partition), r.Offset, string(r.Value)); bad != "" {
				break
			}
		}
	}
	cancel()
	require.NoError(t, testkit.Await(t, errs, "the chaos goroutine's answer"))
	require.Empty(t, bad, "seed %d", seed)
	require.NoError(t, deadline.Err(), "seed %d: the loop did not read every partition to its end in time", seed)
	m.mu.Lock()
	defer m.mu.Unlock()
	for p := range chaosParts {
		pos, ok := c.Position("c", int32(p))
		if !ok {
			// Only a Seek to End, at the end, may not be looked up yet.
			require.EqualValues(t, chaosN, m.next[p], "partition %d: position not resolved", p)
			continue
		}
		require.Equal(t, m.next[p], pos, "partition %d", p)
	}
	t.Logf("seed %d: %d records", seed, m.records)
}

// chaos makes chaosOps changes, each logged once it has returned, then
// resumes and assigns every partition and waits until the loop has read
// them to their ends.
func chaos(ctx context.Context, rng *rand.Rand, c *consumer.Consumer, m *chaosModel) error {
	tp := func(p int) api.TopicPartition { return api.TopicPartition{Topic: "c", Partition: int32(p)} }
	for range chaosOps {
		if ctx.Err() != nil {
			return nil // the loop ended: it failed
		}
		p := rng.IntN(chaosParts)
		m.mu.Lock()
		var err error
		switch op := rng.IntN(10); {
		case op < 3 && m.assigned[p]:
			x := m.targetLocked(rng, p)
			if err = c.Seek("c", int32(p), consumer.At(x)); err == nil {
				m.changeLocked(p)
				m.next[p] = x
			}
		case op < 4 && m.assigned[p]:
			// Start or End, looked up by the loop's next Poll.
			at, x := consumer.Start(), int64(0)
			if rng.IntN(2) == 0 {
				at, x = consumer.End(), chaosN
			}
			if x == m.next[p] || slices.Contains(m.hand[p], x) {
				break
			}
			if err = c.Seek("c", int32(p), at); err == nil {
				m.changeLocked(p)
				m.next[p] = x
			}
		case op < 5:
			x := m.targetLocked(rng, p)
			if err = c.Assign("c", int32(p), consumer.At(x)); err == nil {
				m.changeLocked(p)
				if !m.assigned[p] {
					m.assigned[p], m.paused[p] = true, false
				}
				m.next[p] = x
			}
		case op < 7 && m.assigned[p] && !m.paused[p]:
			c.Pause(tp(p))
			m.changeLocked(p)
			m.paused[p] = true
		case op < 9 && m.paused[p]:
			c.Resume(tp(p))
			m.paused[p] = false
		case op == 9 && m.assigned[p]:
			c.Unassign("c", int32(p))
			m.changeLocked(p)
			m.assigned[p], m.paused[p] = false, false
		}
		m.mu.Unlock()
		if err != nil {
			return err
		}
		// Pacing, not synchronization: some changes come in bursts,
		// others after the loop went on.
		if rng.IntN(3) == 0 {
			time.Sleep(time.Duration(rng.IntN(300)) * time.Microsecond)
		}
	}
	m.mu.Lock()
	for p := range chaosParts {
		if !m.assigned[p] {
			x := m.targetLocked(rng, p)
			if err := c.Assign("c", int32(p), consumer.At(x)); err != nil {
				m.mu.Unlock()
				return err
			}
			m.changeLocked(p)
			m.assigned[p] = true
			m.next[p] = x
		}
		if m.paused[p] {
			c.Resume(tp(p))
			m.paused[p] = false
		}
	}
	m.finish = true
	m.checkFinishedLocked()
	m.mu.Unlock()
	select {
	case <-m.finished:
	case <-ctx.Done():
	}
	return nil
}
