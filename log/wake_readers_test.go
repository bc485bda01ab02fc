package log

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// requireWoken requires ch, a channel taken from Partition.Changed, to be
// closed already.
func requireWoken(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	default:
		t.Fatalf("%s did not wake the readers waiting on Changed", what)
	}
}

// TestReopenWakesReaders: a Reopen wakes the readers waiting on
// Changed (a broker's long-poll fetches), whether its open succeeds or
// fails. Under SyncAlways the old log's Close fsyncs the appends whose
// acknowledgement nobody waited for, which moves the high watermark with
// no OnDurable call; and a failed open makes the partition answer
// ErrLogFenced, which a waiting reader must learn.
func TestReopenWakesReaders(t *testing.T) {
	e := newEnv(t)
	p := NewPartition("t", 0, e.open(Config{}))
	defer p.Close()
	_, _, err := p.AppendAsync(context.Background(), valueBatch(t, 1, "a"), AppendOptions{})
	require.NoError(t, err)
	require.Zero(t, p.HighWatermark(), "not fsynced: nobody waited for it")

	ch := p.Changed()
	require.NoError(t, p.Reopen(func() (*Log, error) { return Open(e.dir, Config{}, Options{FS: e.fs, Clock: e.clock}) }))
	requireWoken(t, ch, "a Reopen")
	require.EqualValues(t, 1, p.HighWatermark(), "the old log's Close fsynced the append")

	ch = p.Changed()
	boom := errors.New("boom")
	require.ErrorIs(t, p.Reopen(func() (*Log, error) { return nil, boom }), boom)
	requireWoken(t, ch, "a failed Reopen")
}

// TestAppendWakesReadersWithoutFsync: on a topic that does not
// fsync before acknowledging (SyncNever, SyncPeriodic) the high watermark
// is the log end, which an append moves with no fsync to call OnDurable:
// Append and AppendAsync wake the readers waiting on Changed themselves.
func TestAppendWakesReadersWithoutFsync(t *testing.T) {
	for _, sync := range []SyncPolicy{SyncNever, SyncPeriodic} {
		t.Run(sync.String(), func(t *testing.T) {
			e := newEnv(t)
			p := NewPartition("t", 0, e.open(Config{Sync: sync}))
			defer p.Close()
			ch := p.Changed()
			_, _, err := p.AppendAsync(context.Background(), valueBatch(t, 1, "a"), AppendOptions{})
			require.NoError(t, err)
			require.EqualValues(t, 1, p.HighWatermark())
			requireWoken(t, ch, "AppendAsync")
			ch = p.Changed()
			_, err = p.Append(context.Background(), valueBatch(t, 1, "b"), AppendOptions{})
			require.NoError(t, err)
			require.EqualValues(t, 2, p.HighWatermark())
			requireWoken(t, ch, "Append")
		})
	}
}

// TestPartitionAppendWakesReaders: a Partition's Append and
// AppendAsync close the channel Changed returned before them on a log
// that acknowledges without an fsync, where the high watermark moves with
// the append (mutants: no wake-up there); a duplicate, which moves
// nothing, wakes no one.
func TestPartitionAppendWakesReaders(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{Sync: SyncNever})
	defer l.Close()
	p := NewPartition("t", 0, l)
	closed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	ch := p.Changed()
	_, err := p.Append(t.Context(), keyedProducerBatch(t, 0, "k"), AppendOptions{})
	require.NoError(t, err)
	require.True(t, closed(ch), "Append woke no one")
	ch = p.Changed()
	_, _, err = p.AppendAsync(t.Context(), keyedProducerBatch(t, 1, "k"), AppendOptions{})
	require.NoError(t, err)
	require.True(t, closed(ch), "AppendAsync woke no one")
	ch = p.Changed()
	res, err := p.Append(t.Context(), keyedProducerBatch(t, 1, "k"), AppendOptions{})
	require.NoError(t, err)
	require.True(t, res.Duplicate)
	require.False(t, closed(ch), "a duplicate woke the readers")
}

// TestFsyncWakesReadersOnlyUnderSyncAlways: an fsync that advances the
// durable offset wakes the readers waiting on Changed where the durable
// offset is the high watermark (SyncAlways), and only there: under
// SyncPeriodic and SyncNever the high watermark is the log end, which the
// append moved and woke them for, and a flush (a Flush, flush.messages,
// or flush.ms at a maintenance tick) moves nothing they wait for
// (mutant: every such fsync woke every reader at the log end, each to
// read and find nothing).
func TestFsyncWakesReadersOnlyUnderSyncAlways(t *testing.T) {
	for _, sync := range []SyncPolicy{SyncAlways, SyncPeriodic, SyncNever} {
		t.Run(sync.String(), func(t *testing.T) {
			e := newEnv(t)
			l := e.open(Config{Sync: sync})
			p := NewPartition("t", 0, l)
			defer p.Close()
			_, _, err := p.AppendAsync(t.Context(), valueBatch(t, 1, "a"), AppendOptions{})
			require.NoError(t, err)
			ch := p.Changed()
			hw := p.HighWatermark()
			require.NoError(t, l.Flush(t.Context()))
			require.EqualValues(t, 1, l.DurableOffset(), "the flush fsynced the append")
			if sync == SyncAlways {
				require.Zero(t, hw)
				require.EqualValues(t, 1, p.HighWatermark())
				requireWoken(t, ch, "an fsync that moved the high watermark")
				return
			}
			require.EqualValues(t, 1, hw)
			select {
			case <-ch:
				t.Fatal("an fsync that did not move the high watermark woke the readers")
			default:
			}
		})
	}
}

// TestPartitionAppendWakesReadersWhenItsFlushFails: under SyncPeriodic an
// Append that makes a flush due (flush.messages) writes its batch, which
// moves the high watermark (the log end), then waits for the flush: a
// flush that fails fails the Append, but the batch is in the log and
// readable, and the readers waiting on Changed are woken for it, as
// AppendAsync wakes them (mutant: Append woke them only when the wait
// succeeded, and a reader of the partition alone waited for its next
// change).
func TestPartitionAppendWakesReadersWhenItsFlushFails(t *testing.T) {
	e := newEnv(t)
	var armed atomic.Bool
	e.fs = vfs.WithFaults(e.fs, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && strings.HasSuffix(name, ".log") && armed.Load() {
			return vfs.ErrInjected
		}
		return nil
	}))
	p := NewPartition("t", 0, e.open(Config{Sync: SyncPeriodic, FlushMessages: 1}))
	defer p.Close()
	ch := p.Changed()
	armed.Store(true)
	_, err := p.Append(t.Context(), valueBatch(t, 1, "a"), AppendOptions{})
	require.ErrorIs(t, err, vfs.ErrInjected)
	require.EqualValues(t, 1, p.HighWatermark(), "the batch is in the log")
	requireWoken(t, ch, "an Append whose flush failed")
}

// TestNotifyReplacesOnlyATakenChannel: a change closes the channel
// Changed handed out, and the next Changed hands out a new one, which the
// next change closes; a change that no reader took a channel for (an
// append under SyncNever with no long poll waiting) closes nothing and
// makes no channel (before, each made one and closed the last: an
// allocation an append). Mutants: notify swapping whether or not the
// channel was taken, or after the first take for ever (the flag not
// cleared), allocate; Changed not marking the channel taken loses the
// wake.
func TestNotifyReplacesOnlyATakenChannel(t *testing.T) {
	e := newEnv(t)
	p := NewPartition("t", 0, e.open(Config{Sync: SyncNever}))
	defer p.Close()
	require.Zero(t, testing.AllocsPerRun(100, p.notify), "a change with no channel taken allocated")
	ch := p.Changed()
	require.Equal(t, ch, p.Changed(), "no change came between")
	_, err := p.Append(t.Context(), valueBatch(t, 1, "a"), AppendOptions{})
	require.NoError(t, err)
	requireWoken(t, ch, "an Append after the channel was taken")
	require.Zero(t, testing.AllocsPerRun(100, p.notify), "a change with no channel taken since the last allocated")
	next := p.Changed()
	require.NotEqual(t, ch, next, "a closed channel handed out")
	select {
	case <-next:
		t.Fatal("the channel taken after the wake is closed already")
	default:
	}
	_, err = p.Append(t.Context(), valueBatch(t, 1, "b"), AppendOptions{})
	require.NoError(t, err)
	requireWoken(t, next, "an Append after the next channel was taken")
}

// TestChangedPastWakesAtItsCount: a reader waiting on Mark.ChangedPast
// is woken by the append (under SyncNever) or the fsync (under
// SyncAlways, where the high watermark is the durable offset) that
// brings the bytes below the high watermark since its mark to its count,
// and not by those before (mutants: every append waking it; an append
// under SyncAlways counted before its fsync); several readers of
// different counts, some of which stopped waiting, each at its own
// (the heap and its removal); a count reached already by an append
// between the mark and the call answers at once.
func TestChangedPastWakesAtItsCount(t *testing.T) {
	batch := func(i int) []byte { return valueBatch(t, 1, fmt.Sprintf("v%02d", i)) }
	size := int64(len(batch(0)))
	for _, sync := range []SyncPolicy{SyncNever, SyncAlways} {
		t.Run(sync.String(), func(t *testing.T) {
			e := newEnv(t)
			l := e.open(Config{Sync: sync})
			p := NewPartition("t", 0, l)
			defer p.Close()
			// appended moves the high watermark over one more batch.
			appended := func(i int) {
				t.Helper()
				_, _, err := p.AppendAsync(t.Context(), batch(i), AppendOptions{})
				require.NoError(t, err)
				if sync == SyncAlways {
					require.NoError(t, l.Flush(t.Context()))
				}
			}
			m := p.Mark()
			type reader struct {
				at      int64 // batches its count is
				ch      <-chan struct{}
				stop    func()
				stopped bool
			}
			var rs []*reader
			for i, at := range []int64{3, 1, 5, 2, 3, 4, 1, 5, 2} {
				ch, stop := m.ChangedPast(at*size - size/2) // half a batch short of at batches
				rs = append(rs, &reader{at: at, ch: ch, stop: stop, stopped: i%3 == 2})
			}
			for _, r := range rs {
				if r.stopped {
					r.stop()
				}
			}
			for i := int64(1); i <= 5; i++ {
				if sync == SyncAlways {
					_, _, err := p.AppendAsync(t.Context(), batch(int(i)), AppendOptions{})
					require.NoError(t, err)
					for _, r := range rs {
						if r.at >= i {
							require.False(t, closed(r.ch), "a reader of %d batches woken by the write of batch %d, before its fsync", r.at, i)
						}
					}
					require.NoError(t, l.Flush(t.Context()))
				} else {
					appended(int(i))
				}
				for _, r := range rs {
					require.Equal(t, !r.stopped && r.at <= i, closed(r.ch), "a reader of %d batches (stopped %v), after %d", r.at, r.stopped, i)
				}
			}
			for _, r := range rs {
				r.stop() // a second stop, or one after the wake, does nothing
			}
			require.Empty(t, p.waiters, "readers left waiting")

			m = p.Mark()
			appended(6)
			ch, stop := m.ChangedPast(size)
			defer stop()
			require.True(t, closed(ch), "the count reached between the mark and the call")
			ch, stop = m.ChangedPast(size + 1)
			defer stop()
			require.False(t, closed(ch))
		})
	}
}

// TestChangedPastWakesAtEveryOtherChange: a reader waiting on
// Mark.ChangedPast for more bytes than come is woken by every change
// that closes Changed's channel but an append (a cut, a Reopen, a
// lock's release, a Close), and one whose mark is older than such a
// change is answered at once; the zero Mark and a count of 0 answer at
// once. Mutants: notify leaving the readers of ChangedPast waiting, or
// not counting the change (epoch).
func TestChangedPastWakesAtEveryOtherChange(t *testing.T) {
	e := newEnv(t)
	p := NewPartition("t", 0, e.open(Config{Sync: SyncNever}))
	for i := range 3 {
		_, err := p.Append(t.Context(), valueBatch(t, 1, fmt.Sprint(i)), AppendOptions{})
		require.NoError(t, err)
	}
	for _, c := range []struct {
		name string
		do   func() error
	}{
		{"DeleteRecordsBefore", func() error { _, err := p.DeleteRecordsBefore(t.Context(), 1); return err }},
		{"Reopen", func() error {
			return p.Reopen(func() (*Log, error) { return Open(e.dir, Config{Sync: SyncNever}, Options{FS: e.fs, Clock: e.clock}) })
		}},
		{"Lock and Unlock", func() error {
			k, err := p.Lock(t.Context())
			if err == nil {
				k.Unlock()
			}
			return err
		}},
		{"Close", p.Close},
	} {
		m := p.Mark()
		ch, stop := m.ChangedPast(math.MaxInt64)
		late := p.Mark()
		require.NoError(t, c.do(), c.name)
		require.True(t, closed(ch), "%s did not wake a reader of ChangedPast", c.name)
		stop()
		ch, stop = late.ChangedPast(1 << 40)
		require.True(t, closed(ch), "a mark taken before %s waits", c.name)
		stop()
		require.Empty(t, p.waiters, c.name)
	}
	ch, stop := Mark{}.ChangedPast(1 << 40)
	stop()
	require.True(t, closed(ch), "the zero Mark")
	ch, stop = p.Mark().ChangedPast(0)
	stop()
	require.True(t, closed(ch), "a count of 0")
}

// TestChangedPastCountsOnlyWhatTheFsyncCovered: under SyncAlways the
// bytes below the high watermark are those the fsync that moved it
// covered, counted as the log stood when the fsync began: a batch
// appended during the fsync is below neither, until the next. A reader
// that counted the first batch and waits for one more is woken by the
// fsync of the second (mutant: the fsync's count read when it ended took
// the second batch in, before any fsync covered it, and the reader
// waited for a third).
func TestChangedPastCountsOnlyWhatTheFsyncCovered(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{}) // SyncAlways
	p := NewPartition("t", 0, l)
	defer p.Close()
	second := valueBatch(t, 1, "b")
	testHookSyncListed = func(l *Log) {
		testHookSyncListed = nil
		_, _, err := l.AppendAsync(t.Context(), second, AppendOptions{})
		require.NoError(t, err)
	}
	defer func() { testHookSyncListed = nil }()
	first := valueBatch(t, 1, "a")
	_, _, err := p.AppendAsync(t.Context(), first, AppendOptions{})
	require.NoError(t, err)
	require.NoError(t, l.Flush(t.Context()))
	require.EqualValues(t, 1, p.HighWatermark(), "the fsync covered the first batch only")
	require.EqualValues(t, 2, p.LogEndOffset())

	m := p.Mark()
	ch, stop := m.ChangedPast(int64(len(second))) // the reader holds the first
	defer stop()
	require.False(t, closed(ch))
	require.NoError(t, l.Flush(t.Context()))
	require.EqualValues(t, 2, p.HighWatermark())
	require.True(t, closed(ch), "the fsync of the second batch did not wake its reader")
}
