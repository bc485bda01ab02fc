package log

import (
	"context"
	"errors"
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
