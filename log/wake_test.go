package log

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/stretchr/testify/require"
)

// wakePartitions opens n partitions (SyncNever) on one memory FS, closed
// when t ends.
func wakePartitions(t *testing.T, n int) []*Partition {
	t.Helper()
	e := newEnv(t)
	ps := make([]*Partition, n)
	for i := range ps {
		l, err := Open(fmt.Sprintf("/data/t-%d", i), Config{Sync: SyncNever}, Options{FS: e.fs, Clock: e.clock})
		require.NoError(t, err)
		ps[i] = NewPartition("t", int32(i), l)
		t.Cleanup(func() { ps[i].Close() })
	}
	return ps
}

// requireFired requires w, stopped, to say that exactly its waits
// listed in want fired, of n.
func requireFired(t *testing.T, w *Wake, n int, want ...int) {
	t.Helper()
	got := []int{}
	for i := range n {
		if w.Fired(i) {
			got = append(got, i)
		}
	}
	require.Equal(t, append([]int{}, want...), got, "the waits that fired")
}

// TestWakeOfSeveralPartitionsClosesOnce: a Wake's waits on several
// partitions (one twice) close its one channel at the first that is met,
// and the others met after it close nothing more (a second close would
// panic); Fired says which were met; Stop takes the others out of their
// partitions' heaps, and a second wait, on a new channel, is met at its
// own counts. Mutants: fire closing the channel at each wait met (a
// panic), Stop leaving a wait in its heap, the next wait keeping the
// closed channel (it answers at once).
func TestWakeOfSeveralPartitionsClosesOnce(t *testing.T) {
	ps := wakePartitions(t, 3)
	b := valueBatch(t, 1, "a")
	size := int64(len(b))
	appendTo := func(p *Partition) {
		t.Helper()
		_, err := p.Append(t.Context(), valueBatch(t, 1, "a"), AppendOptions{})
		require.NoError(t, err)
	}
	var w Wake
	marks := []Mark{ps[0].Mark(), ps[1].Mark(), ps[2].Mark(), ps[0].Mark()}
	for i, m := range marks {
		w.Add(m, size*int64(i+1)) // 0: one batch, 1: two, 2: three, 0 again: four
	}
	done := w.Done()
	require.False(t, closed(done))
	appendTo(ps[1])
	require.False(t, closed(done), "one batch of the two partition 1 waits for")
	appendTo(ps[0])
	require.True(t, closed(done), "partition 0's batch")
	appendTo(ps[1]) // partition 1's count met too: no second close
	for range 4 {
		appendTo(ps[0]) // and partition 0's second wait
	}
	w.Stop()
	requireFired(t, &w, 4, 0, 1, 3)
	for i, p := range ps {
		require.Empty(t, p.waiters, "partition %d", i)
	}
	w.Stop() // a second Stop does nothing
	requireFired(t, &w, 4, 0, 1, 3)

	w.Add(ps[2].Mark(), size)
	w.Add(ps[1].Mark(), 2*size)
	next := w.Done()
	require.False(t, closed(next), "the second wait's channel is closed already")
	require.False(t, w.Fired(0), "Fired during a wait")
	appendTo(ps[1])
	require.False(t, closed(next))
	appendTo(ps[2])
	require.True(t, closed(next))
	w.Stop()
	requireFired(t, &w, 2, 0)
	for i, p := range ps {
		require.Empty(t, p.waiters, "partition %d", i)
	}
}

// TestWakeStopFreesItsWaits: a wait that nothing met holds one entry in
// each of its partitions' heaps, among another reader's, until Stop
// takes them all out and leaves the other's; the next wait keeps the
// channel, open, and its entries. Mutants: Stop taking out only the
// first, or none.
func TestWakeStopFreesItsWaits(t *testing.T) {
	ps := wakePartitions(t, 4)
	other, stopOther := ps[2].Mark().ChangedPast(1 << 30)
	defer stopOther()
	var w Wake
	for round := range 3 {
		for _, p := range ps {
			w.Add(p.Mark(), 1<<30)
		}
		done := w.Done()
		for i, p := range ps {
			want := 1
			if i == 2 {
				want = 2
			}
			require.Len(t, p.waiters, want, "round %d, partition %d", round, i)
		}
		w.Stop()
		require.False(t, closed(done))
		requireFired(t, &w, len(ps))
		for i, p := range ps {
			want := 0
			if i == 2 {
				want = 1
			}
			require.Len(t, p.waiters, want, "round %d, partition %d, after Stop", round, i)
		}
		require.Equal(t, done, w.Done(), "a channel no wait closed is kept")
		w.Stop()
	}
	require.False(t, closed(other))
}

// TestWakeFiresAtOnce: a wait met as it is added (the zero Mark, a count
// of 0 or less, a count reached between the mark and the Add, a mark
// taken before a change other than an append) closes the channel at
// once, and takes no heap entry; one added after it waits on. Mutants:
// any of those cases waiting.
func TestWakeFiresAtOnce(t *testing.T) {
	ps := wakePartitions(t, 1)
	p := ps[0]
	b := valueBatch(t, 1, "a")
	for _, c := range []struct {
		name string
		mark func() Mark
		n    int64
	}{
		{"the zero Mark", func() Mark { return Mark{} }, 1 << 30},
		{"a count of 0", p.Mark, 0},
		{"a count below 0", p.Mark, -1},
		{"a count reached", func() Mark {
			m := p.Mark()
			_, err := p.Append(t.Context(), valueBatch(t, 1, "a"), AppendOptions{})
			require.NoError(t, err)
			return m
		}, int64(len(b))},
		{"a mark before a lock's release", func() Mark {
			m := p.Mark()
			k, err := p.Lock(t.Context())
			require.NoError(t, err)
			k.Unlock()
			return m
		}, 1 << 30},
	} {
		var w Wake
		w.Add(c.mark(), c.n)
		require.True(t, closed(w.Done()), c.name)
		w.Add(p.Mark(), 1<<30)
		require.Len(t, p.waiters, 1, c.name)
		w.Stop()
		requireFired(t, &w, 2, 0)
		require.Empty(t, p.waiters, c.name)
	}
}

// TestWakeOfSeveralPartitionsWokenByEveryOtherChange: a change other than
// an append to one of a Wake's partitions (a cut, a lock's release, a
// Close) closes its channel, whatever the count; Fired names that
// partition's waits. Mutant: notify leaving the waits of a Wake.
func TestWakeOfSeveralPartitionsWokenByEveryOtherChange(t *testing.T) {
	ps := wakePartitions(t, 2)
	_, err := ps[1].Append(t.Context(), valueBatch(t, 1, "a"), AppendOptions{})
	require.NoError(t, err)
	for _, c := range []struct {
		name string
		do   func() error
	}{
		{"DeleteRecordsBefore", func() error { _, err := ps[1].DeleteRecordsBefore(t.Context(), 1); return err }},
		{"Lock and Unlock", func() error {
			k, err := ps[1].Lock(t.Context())
			if err == nil {
				k.Unlock()
			}
			return err
		}},
		{"Close", ps[1].Close},
	} {
		var w Wake
		w.Add(ps[0].Mark(), math.MaxInt64)
		w.Add(ps[1].Mark(), math.MaxInt64)
		w.Add(ps[1].Mark(), 1)
		require.False(t, closed(w.Done()), c.name)
		require.NoError(t, c.do(), c.name)
		require.True(t, closed(w.Done()), "%s did not close the Wake", c.name)
		w.Stop()
		requireFired(t, &w, 3, 1, 2)
		require.Empty(t, ps[0].waiters, c.name)
	}
}

// TestWakeUnderConcurrentAppends: readers waiting on Wakes of several
// partitions while appends go on to them all, each wait stopped at its
// wake or before (under -race: the partitions' locks, the first-close
// flag, Fired read after Stop). Every heap is empty at the end, each
// wake closed its channel once, and one whose count was one batch was
// met (its Done closed) before its reader gave up.
func TestWakeUnderConcurrentAppends(t *testing.T) {
	ps := wakePartitions(t, 3)
	b := valueBatch(t, 1, "a")
	stopAppends := make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(func() {
			for {
				select {
				case <-stopAppends:
					return
				default:
				}
				_, err := p.Append(t.Context(), valueBatch(t, 1, "a"), AppendOptions{})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	stop := sync.OnceFunc(func() {
		close(stopAppends)
		wg.Wait()
	})
	defer stop()
	readers := make(chan error, 4)
	for r := range cap(readers) {
		go func() {
			var w Wake
			for i := range 200 {
				for _, p := range ps {
					w.Add(p.Mark(), int64(len(b)*(1+(r+i)%3)))
				}
				if i%2 == 0 {
					<-w.Done() // the appends go on: one is met
				}
				w.Stop()
				fired := 0
				for j := range ps {
					if w.Fired(j) {
						fired++
					}
				}
				if i%2 == 0 && fired == 0 {
					readers <- fmt.Errorf("reader %d, wait %d: Done closed, no wait fired", r, i)
					return
				}
			}
			readers <- nil
		}()
	}
	for range cap(readers) {
		require.NoError(t, testkit.Await(t, readers, "a reader of Wakes"))
	}
	stop()
	for i, p := range ps {
		p.notifyMu.Lock()
		n := len(p.waiters)
		p.notifyMu.Unlock()
		require.Zero(t, n, "partition %d holds waits of stopped Wakes", i)
	}
}

// TestByteWaitersHeap: pushes, removals at any index and removals of the
// least, at random, against a naive model: the least comes first, and
// each waiter's index is its slot. Mutants: up or down comparing the
// wrong way, remove leaving the last waiter's index stale.
func TestByteWaitersHeap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h byteWaiters
	in := map[*byteWaiter]bool{}
	for step := range 20_000 {
		switch op := r.IntN(3); {
		case op == 0 || len(h) == 0:
			w := &byteWaiter{at: r.Int64N(50)}
			h.push(w)
			in[w] = true
		case op == 1:
			w := h[r.IntN(len(h))]
			require.Same(t, w, h.remove(w.i), "step %d", step)
			require.Equal(t, -1, w.i)
			delete(in, w)
		default:
			least := int64(math.MaxInt64)
			for w := range in {
				least = min(least, w.at)
			}
			w := h.remove(0)
			require.Equal(t, least, w.at, "step %d: not the least", step)
			delete(in, w)
		}
		require.Len(t, h, len(in))
		for i, w := range h {
			require.Equal(t, i, w.i, "step %d: index", step)
			require.True(t, in[w])
			if i > 0 {
				require.LessOrEqual(t, h[(i-1)/2].at, w.at, "step %d: heap order", step)
			}
		}
	}
}

// TestMarkRewritten: Mark.Rewritten tells a reader that counted a
// partition's batches after a Mark that they may have changed since:
// after a compaction's swap (it made the tombstone's batch larger: a
// delete horizon), after a change other than an append, and for a Mark
// of another partition; not after appends alone, nor after a compaction
// that cleaned nothing. Mutant: Mark not taking the compactions' count
// (a fetch that held records of a compacted partition counted a batch
// at its size before the compaction, and slept with MinBytes readable:
// the root package's TestFetchWaitCompactedBatchGrown).
func TestMarkRewritten(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{CleanupPolicy: Compact, DeleteRetentionTime: time.Hour})
	p := NewPartition("t", 0, l)
	t.Cleanup(func() { p.Close() })
	other := wakePartitions(t, 1)[0]
	appendOK(t, l, keyedBatch(t, "a"))
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("b"), ts: e.clock.Now().UnixMilli()})) // a tombstone
	before, err := l.Read(1, math.MaxInt32, math.MaxInt64)
	require.NoError(t, err)
	m := p.Mark()
	require.False(t, m.Rewritten(p.Mark()), "nothing happened")
	appendOK(t, l, keyedBatch(t, "c"))
	require.False(t, m.Rewritten(p.Mark()), "an append rewrote nothing")
	require.True(t, m.Rewritten(other.Mark()), "a Mark of another partition")
	require.NoError(t, l.Roll())
	res, err := l.Compact(t.Context())
	require.NoError(t, err)
	require.Positive(t, res.SegmentsRewritten)
	after, err := l.Read(1, math.MaxInt32, 2)
	require.NoError(t, err)
	require.Greater(t, len(after), len(before), "the tombstone's batch did not grow")
	m2 := p.Mark()
	require.True(t, m.Rewritten(m2), "a compaction's swap")
	res, err = l.Compact(t.Context())
	require.NoError(t, err)
	require.Zero(t, res.SegmentsRewritten)
	require.False(t, m2.Rewritten(p.Mark()), "a compaction that cleaned nothing")
	_, err = p.DeleteRecordsBefore(t.Context(), 1)
	require.NoError(t, err)
	require.True(t, m2.Rewritten(p.Mark()), "a cut")
}
