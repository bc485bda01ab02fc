package log

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// A Flush while the log closes waits for Close, which fsyncs everything,
// as Flush's doc says (and as Durability.Wait does): it succeeds. The old
// code answered ErrClosed at once once Close had begun (its closed flag
// set), before Close had synced anything. Close's fsync is held until the
// Flush waits for it (testHookWaitsForClose).
func TestFlushWhileClosingWaitsForClose(t *testing.T) {
	var hold atomic.Bool
	inSync, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	releaseOnce := func() { once.Do(func() { close(release) }) }
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && hold.CompareAndSwap(true, false) {
			close(inSync)
			<-release
		}
		return nil
	}))
	l, err := Open("/p", Config{Sync: SyncNever}, Options{FS: fsys, Clock: newClock()})
	require.NoError(t, err)
	appendOK(t, l, valueBatch(t, 1, "one"))
	testHookWaitsForClose = func(hl *Log) {
		if hl == l {
			releaseOnce()
		}
	}
	defer func() { testHookWaitsForClose = nil }()
	hold.Store(true)
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	testkit.AwaitHold(t, inSync, closed, "Close") // Close is syncing the active segment
	err = l.Flush(context.Background())
	releaseOnce() // the old code's Flush returned without waiting
	require.NoError(t, testkit.Await(t, closed, "Close's answer"))
	require.NoError(t, err, "a Flush while the log closes")
	require.ErrorIs(t, l.Flush(context.Background()), ErrClosed, "a Flush after Close")
}

// Under SyncPeriodic, an append that makes a flush due (flush.messages
// reached) is acknowledged once that flush is done, and so is a retry of
// it that the log answers as a duplicate: the retry waits for the flush
// as its first attempt would have, as under SyncAlways. The old code
// answered the duplicate at once, with nothing to wait for, while the
// first attempt's flush had not run (its wait given up, as a delivery
// timeout or a lost answer leaves it): acknowledged, the record was lost
// to a power cut.
func TestDuplicateWaitsForTheFlushItsFirstAttemptMadeDue(t *testing.T) {
	mem := vfs.NewMem()
	cfg := Config{Sync: SyncPeriodic, FlushMessages: 1}
	l, err := Open("/p", cfg, Options{FS: mem, Clock: newClock()})
	require.NoError(t, err)
	defer l.Close()
	ctx := context.Background()
	batch := keyedProducerBatch(t, 0, "k")
	first, d, err := l.AppendAsync(ctx, bytes.Clone(batch), AppendOptions{})
	require.NoError(t, err)
	require.True(t, d.Pending(), "flush.messages=1: the append waits for a flush")
	// Its wait given up: the producer retries.
	res, d2, err := l.AppendAsync(ctx, bytes.Clone(batch), AppendOptions{})
	require.NoError(t, err)
	require.True(t, res.Duplicate)
	require.Equal(t, first.FirstOffset, res.FirstOffset)
	require.NoError(t, d2.Wait(ctx)) // acknowledged
	crashed := mem.CrashClone(vfs.CrashOptions{})
	l2, err := Open("/p", cfg, Options{FS: crashed, Clock: newClock()})
	require.NoError(t, err)
	defer l2.Close()
	require.Equal(t, first.LastOffset+1, l2.LogEndOffset(), "the acknowledged duplicate's record survives a power cut")
}

// periodicAppend appends one record to l and reports whether the append
// made a SyncPeriodic flush due (it then waits for it, here).
func periodicAppend(t *testing.T, l *Log, v string) bool {
	t.Helper()
	_, d, err := l.AppendAsync(context.Background(), valueBatch(t, 1_700_000_000_000, v), AppendOptions{})
	require.NoError(t, err)
	due := d.Pending()
	require.NoError(t, d.Wait(context.Background()))
	return due
}

// TestFlushMessagesCountsFromWhatIsDurable: flush.messages counts the
// records not yet durable, as Kafka counts its unflushed messages from
// the recovery point that every flush moves: a Flush, or the roll that
// synced the segment it sealed, makes those before durable, and the next
// flush is due FlushMessages records after it. The log counted the
// records appended since the last flush that an append made due, so an
// append right after a Flush or a roll made a flush due (an fsync more,
// of records that were mostly durable).
func TestFlushMessagesCountsFromWhatIsDurable(t *testing.T) {
	e := newEnv(t)
	syncs := countLogSyncs(e)
	l := e.open(Config{Sync: SyncPeriodic, FlushMessages: 3, RetentionTime: -1})
	defer l.Close()
	opened := syncs.Load()

	require.False(t, periodicAppend(t, l, "a"))
	require.False(t, periodicAppend(t, l, "b"))
	require.NoError(t, l.Flush(context.Background()))
	require.Equal(t, int64(1), syncs.Load()-opened)
	require.False(t, periodicAppend(t, l, "c"), "one record past a Flush")
	require.False(t, periodicAppend(t, l, "d"))
	require.True(t, periodicAppend(t, l, "e"), "three records past the Flush")
	require.Equal(t, int64(2), syncs.Load()-opened)
	require.EqualValues(t, 5, l.DurableOffset())

	require.False(t, periodicAppend(t, l, "f"))
	require.False(t, periodicAppend(t, l, "g"))
	require.NoError(t, l.Roll()) // seals f and g, synced
	require.Equal(t, int64(3), syncs.Load()-opened)
	require.False(t, periodicAppend(t, l, "h"), "one record past the roll")
	require.False(t, periodicAppend(t, l, "i"))
	require.True(t, periodicAppend(t, l, "j"), "three records past the roll")
	require.Equal(t, int64(4), syncs.Load()-opened)
	require.EqualValues(t, 10, l.DurableOffset())
}

// TestFlushIntervalCountsFromAnyFlush: flush.ms counts from the last
// flush, whatever made it, as Kafka's lastFlushTime, which every flush
// sets: a Flush, or a roll that synced everything before it, is one. The
// log counted from the last flush that an append or Maintain made due,
// so an append soon after a Flush or a roll made a flush due.
func TestFlushIntervalCountsFromAnyFlush(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{Sync: SyncPeriodic, FlushInterval: time.Minute, RetentionTime: -1})
	defer l.Close()
	ctx := context.Background()

	require.False(t, periodicAppend(t, l, "a"))
	e.clock.Advance(50 * time.Second)
	require.NoError(t, l.Flush(ctx))
	e.clock.Advance(20 * time.Second)
	require.False(t, periodicAppend(t, l, "b"), "20 s after a Flush")

	e.clock.Advance(30 * time.Second)
	require.NoError(t, l.Roll()) // a and b synced: a flush
	e.clock.Advance(30 * time.Second)
	require.False(t, periodicAppend(t, l, "c"), "30 s after the roll")
	require.NoError(t, l.Maintain(ctx))
	require.EqualValues(t, 1, l.DurableOffset(), "Maintain, 30 s after the roll")
	e.clock.Advance(30 * time.Second)
	require.NoError(t, l.Maintain(ctx))
	require.EqualValues(t, 3, l.DurableOffset(), "Maintain, a minute after the roll")
}

// TestFlushDueAgainAfterItsWaitGaveUp: an append that made a flush due
// (flush.messages) and whose wait ended (its ctx) while another caller's
// fsync, begun before its records were written, was under way, leaves
// them unsynced: the next append makes the flush due again, as Kafka's
// count of unflushed messages (from the recovery point) would. The log
// counted the flush as done when it was made due, so the records stayed
// unsynced until FlushMessages more were appended (or flush.ms).
func TestFlushDueAgainAfterItsWaitGaveUp(t *testing.T) {
	_, l, hold, inSync, release := heldSyncLogWith(t, Config{Sync: SyncPeriodic, FlushMessages: 2, RetentionTime: -1})

	require.False(t, periodicAppend(t, l, "a"))
	hold.Store(true)
	flushed := make(chan error, 1)
	go func() { flushed <- l.Flush(context.Background()) }()
	testkit.AwaitHold(t, inSync, flushed, "Flush") // an fsync up to offset 1 is under way, held

	_, d, err := l.AppendAsync(context.Background(), valueBatch(t, 1_700_000_000_000, "b"), AppendOptions{})
	require.NoError(t, err)
	require.True(t, d.Pending(), "two records not durable: a flush is due")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, d.Wait(ctx), context.Canceled) // given up, the fsync under way still held
	release()
	require.NoError(t, testkit.Await(t, flushed, "Flush's answer"))
	require.EqualValues(t, 1, l.DurableOffset(), "b is not durable")

	require.True(t, periodicAppend(t, l, "c"), "b and c not durable: the flush is due again")
	require.EqualValues(t, 3, l.DurableOffset())
}

// TestFlushMessagesCountsPastATruncation: a truncation below the end a
// flush made due is to reach brings that end down with it: the offsets
// appended again from the new end on count for flush.messages. Left
// where it was, it would keep the next flush from being due until the
// log end passed it again, with records unsynced meanwhile (the crash
// simulation's model follows the same count).
func TestFlushMessagesCountsPastATruncation(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{Sync: SyncPeriodic, FlushMessages: 3, RetentionTime: -1})
	defer l.Close()
	require.False(t, periodicAppend(t, l, "a"))
	require.False(t, periodicAppend(t, l, "b"))
	_, d, err := l.AppendAsync(context.Background(), valueBatch(t, 1_700_000_000_000, "c"), AppendOptions{})
	require.NoError(t, err)
	require.True(t, d.Pending(), "a flush to 3 is due") // not waited for
	_, err = l.TruncateTo(1)
	require.NoError(t, err)
	require.EqualValues(t, 0, l.DurableOffset())
	require.False(t, periodicAppend(t, l, "x"))
	require.False(t, periodicAppend(t, l, "y"))
	require.True(t, periodicAppend(t, l, "z"), "three offsets past the durable one")
	require.EqualValues(t, 4, l.DurableOffset())
}

// TestFlushIntervalNotSetBackByAnOlderFsync: an fsync that began before
// a flush was made due, and ends after, does not cover that flush's
// records: flush.ms keeps counting from the flush made due, not from
// the older fsync (which would make the next flush due sooner: an fsync
// more). Here the append that made the flush due does not wait for it.
func TestFlushIntervalNotSetBackByAnOlderFsync(t *testing.T) {
	e, l, hold, inSync, release := heldSyncLogWith(t, Config{Sync: SyncPeriodic, FlushMessages: 2, FlushInterval: time.Minute, RetentionTime: -1})
	require.False(t, periodicAppend(t, l, "a"))
	hold.Store(true)
	flushed := make(chan error, 1)
	go func() { flushed <- l.Flush(context.Background()) }()
	testkit.AwaitHold(t, inSync, flushed, "Flush") // an fsync up to offset 1, begun now, held

	e.clock.Advance(30 * time.Second)
	_, d, err := l.AppendAsync(context.Background(), valueBatch(t, 1_700_000_000_000, "b"), AppendOptions{})
	require.NoError(t, err)
	require.True(t, d.Pending(), "flush.messages: a flush is due (made due now, not waited for)")
	release()
	require.NoError(t, testkit.Await(t, flushed, "Flush's answer"))
	require.EqualValues(t, 1, l.DurableOffset())

	e.clock.Advance(40 * time.Second) // 70 s after the older fsync began, 40 s after the flush made due
	require.False(t, periodicAppend(t, l, "c"), "flush.ms counts from the flush made due")
	require.NoError(t, l.Maintain(context.Background()))
	require.EqualValues(t, 1, l.DurableOffset(), "Maintain: flush.ms counts from the flush made due")
	e.clock.Advance(20 * time.Second)
	require.NoError(t, l.Maintain(context.Background()))
	require.EqualValues(t, 3, l.DurableOffset(), "Maintain, a minute after the flush made due")
}

// TestFlushIntervalDueAgainAfterItsWaitGaveUp: a flush that flush.ms made
// due at an append, whose wait ended (its ctx) while another caller's
// fsync, begun before the append's records were written, was under way,
// leaves them unsynced: as Durability.Wait's doc says, the next append
// makes the flush due again, as it would have had no flush been made due
// (Kafka's lastFlushTime moves only with a flush that happened). The wait
// ends here once the older fsync has done its bookkeeping (OnDurable),
// before its round ends: that fsync does not count as the flush (its end
// is below the claim), and the release gave back flush.messages' count
// only, so flush.ms counted from the flush that never came, and the
// records stayed unsynced for a whole FlushInterval more.
func TestFlushIntervalDueAgainAfterItsWaitGaveUp(t *testing.T) {
	e, l, hold, inSync, release := heldSyncLogWith(t, Config{Sync: SyncPeriodic, FlushInterval: time.Minute, RetentionTime: -1})

	require.False(t, periodicAppend(t, l, "a"))
	giveUpBehindAnOlderFsync(t, l, hold, inSync, release, func() {
		e.clock.Advance(time.Minute) // flush.ms has passed since the log opened
	}, "flush.ms has passed: a flush is due")

	require.True(t, periodicAppend(t, l, "c"), "b not durable, and no flush since the log opened: the flush is due again")
	require.EqualValues(t, 3, l.DurableOffset())
}

// TestFlushIntervalCountsFromTheLastFlushAfterAGivenUpWait: once a wait
// gives back a flush that flush.messages made due (its ctx ended while
// another caller's fsync, begun before the records were written, was
// under way), flush.ms counts from the last flush that happened — the
// open, a roll, an fsync of the whole log — not from some earlier one:
// a Maintain a FlushInterval after the log opened, but less than one after
// that flush, has no flush due (it would wait for the fsync under way).
func TestFlushIntervalCountsFromTheLastFlushAfterAGivenUpWait(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before func(t *testing.T, e *env, l *Log) // the last flush that happens, a minute after open or not
	}{
		{"open", func(t *testing.T, e *env, l *Log) {}},
		{"roll", func(t *testing.T, e *env, l *Log) {
			require.False(t, periodicAppend(t, l, "z"))
			e.clock.Advance(time.Minute)
			require.NoError(t, l.Roll())
		}},
		{"fsync", func(t *testing.T, e *env, l *Log) {
			require.False(t, periodicAppend(t, l, "z"))
			e.clock.Advance(time.Minute)
			require.NoError(t, l.Flush(context.Background()))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e, l, hold, inSync, release := heldSyncLogWith(t, Config{Sync: SyncPeriodic, FlushMessages: 2, FlushInterval: time.Minute, RetentionTime: -1})
				tc.before(t, e, l)
				durable := l.DurableOffset()
				e.clock.Advance(30 * time.Second)
				require.False(t, periodicAppend(t, l, "a"), "30 s after the last flush, one record")
				hold.Store(true)
				flushed := make(chan error, 1)
				go func() { flushed <- l.Flush(context.Background()) }()
				<-inSync // an fsync of the whole log, held

				_, d, err := l.AppendAsync(context.Background(), valueBatch(t, 1_700_000_000_000, "b"), AppendOptions{})
				require.NoError(t, err)
				require.True(t, d.Pending(), "flush.messages: a flush is due")
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				require.ErrorIs(t, d.Wait(ctx), context.Canceled) // given up, the fsync under way still held

				mctx, mcancel := context.WithCancel(context.Background())
				maintained := make(chan error, 1)
				go func() { maintained <- l.Maintain(mctx) }()
				synctest.Wait()
				var merr error
				stuck := false
				select {
				case merr = <-maintained:
				default:
					stuck = true // its flush waits for the fsync under way
					mcancel()
					merr = <-maintained
				}
				mcancel()
				durableThen := l.DurableOffset()
				release()
				require.NoError(t, <-flushed)
				require.False(t, stuck, "Maintain, 30 s after the last flush, made a flush due: %v", merr)
				require.NoError(t, merr)
				require.Equal(t, durable, durableThen)
			})
		})
	}
}

// TestFlushIntervalCountsFromAnOlderFsyncAfterAGivenUpWait: an fsync that
// began before a flush was made due, and ends after, is still a flush
// that happened (lastSynced), though not the one made due: once the wait
// for that one gives up, flush.ms counts from the older fsync, not from
// the one before it (here the open): a Maintain 30 s after the older
// fsync has no flush due.
func TestFlushIntervalCountsFromAnOlderFsyncAfterAGivenUpWait(t *testing.T) {
	e, l, hold, inSync, release := heldSyncLogWith(t, Config{Sync: SyncPeriodic, FlushMessages: 2, FlushInterval: time.Minute, RetentionTime: -1})

	e.clock.Advance(40 * time.Second)
	require.False(t, periodicAppend(t, l, "a"))
	// The older fsync, up to offset 1, begins 40 s after the open.
	giveUpBehindAnOlderFsync(t, l, hold, inSync, release, func() {}, "flush.messages: a flush is due")

	e.clock.Advance(30 * time.Second) // 70 s after the open, 30 s after the older fsync
	require.NoError(t, l.Maintain(context.Background()))
	require.EqualValues(t, 1, l.DurableOffset(), "Maintain: flush.ms counts from the older fsync")
	e.clock.Advance(30 * time.Second)
	require.NoError(t, l.Maintain(context.Background()))
	require.EqualValues(t, 2, l.DurableOffset(), "Maintain, a minute after the older fsync")
}

// giveUpBehindAnOlderFsync holds a Flush's fsync of l (up to its log end,
// through heldSyncLogWith's hold), runs between once it is held, appends
// b, which must make a flush due (why says why), and gives the wait for
// that flush up from OnDurable: once the older fsync has advanced the
// durable offset, before its round is over. It returns with both over,
// b not durable.
func giveUpBehindAnOlderFsync(t *testing.T, l *Log, hold *atomic.Bool, inSync chan struct{}, release func(), between func(), why string) {
	t.Helper()
	hold.Store(true)
	flushed := make(chan error, 1)
	go func() { flushed <- l.Flush(context.Background()) }()
	testkit.AwaitHold(t, inSync, flushed, "Flush") // the older fsync is under way, held
	between()
	durable := l.DurableOffset()
	_, d, err := l.AppendAsync(context.Background(), valueBatch(t, 1_700_000_000_000, "b"), AppendOptions{})
	require.NoError(t, err)
	require.True(t, d.Pending(), why)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	gaveUp := make(chan error, 1)
	var once sync.Once
	l.OnDurable(func() { once.Do(func() { gaveUp <- d.Wait(ctx) }) })
	release()
	require.NoError(t, testkit.Await(t, flushed, "Flush's answer"))
	require.ErrorIs(t, testkit.Await(t, gaveUp, "the OnDurable callback's Wait"), context.Canceled)
	require.Equal(t, durable+1, l.DurableOffset(), "the older fsync's end; b is not durable")
}

// TestDurabilityCovers: an append's Durability covers the earlier
// appends of its log (its fsync reaches past them), not the later ones
// nor another log's; across a truncation the later era's covers the
// earlier one's (whose records it removed, or left below its own, which
// its fsync reaches), and not the other way round, though the earlier
// one's target is no lower. Once the covering one's Wait has returned
// nil, the covered ones have nothing left to wait for. The broker's
// syncLater keeps one goroutine a partition on it.
func TestDurabilityCovers(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	l := e.open(Config{Sync: SyncAlways, RetentionTime: -1})
	defer l.Close()
	appendOne := func(l *Log, v string) Durability {
		t.Helper()
		_, d, err := l.AppendAsync(ctx, valueBatch(t, 1_700_000_000_000, v), AppendOptions{})
		require.NoError(t, err)
		require.True(t, d.Pending(), v)
		return d
	}
	a, b := appendOne(l, "a"), appendOne(l, "b")
	require.True(t, b.Covers(a))
	require.False(t, a.Covers(b))
	require.True(t, a.Covers(a))
	require.True(t, a.Covers(Durability{}))
	require.False(t, Durability{}.Covers(a))

	_, err := l.TruncateTo(1) // b's record removed unsynced
	require.NoError(t, err)
	x := appendOne(l, "x") // at b's offset: the same target
	require.True(t, x.Covers(b))
	require.True(t, x.Covers(a))
	require.False(t, b.Covers(x), "an append the truncation removed covers none after it")

	other := newEnv(t).open(Config{Sync: SyncAlways, RetentionTime: -1})
	defer other.Close()
	o := appendOne(other, "o")
	require.False(t, o.Covers(a))
	require.False(t, x.Covers(o))

	require.NoError(t, x.Wait(ctx))
	require.False(t, a.Pending())
	require.ErrorIs(t, b.Wait(ctx), ErrOffsetOutOfRange)
}
