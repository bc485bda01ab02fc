package log

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestHoldLockWaitsEndWithTheirCtx: the partition lock's waits end with their ctx:
// a reader's behind a writer, a writer's behind a reader; a writer that
// gives up lets the readers it held back go on; a writer waiting holds
// new readers back (as a sync.RWMutex); a free lock is taken whatever
// the ctx.
func TestHoldLockWaitsEndWithTheirCtx(t *testing.T) {
	m := newHoldLock()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, m.RLockContext(ended), "a free lock is taken whatever the ctx")
	require.True(t, m.TryRLock())
	m.RUnlock()

	// A writer behind the reader: it holds new readers back until it
	// gives up.
	wctx, wcancel := context.WithCancel(context.Background())
	wdone := make(chan error, 1)
	go func() { wdone <- m.LockContext(wctx) }()
	// The writer waits once a shared hold can no longer be taken.
	testkit.SpinUntil(t, func() bool {
		if m.TryRLock() {
			m.RUnlock()
			return false
		}
		return true
	}, "the writer did not wait")
	require.False(t, m.TryRLock(), "a writer waits: new readers wait too")
	require.ErrorIs(t, m.RLockContext(ended), context.Canceled)
	rdone := make(chan error, 1)
	go func() { rdone <- m.RLockContext(context.Background()) }()
	wcancel()
	require.ErrorIs(t, testkit.Await(t, wdone, "LockContext's answer"), context.Canceled)
	require.NoError(t, testkit.Await(t, rdone, "RLockContext's answer"), "the writer gave up: the reader it held back goes on")
	m.RUnlock()
	m.RUnlock()

	// A writer holding it: readers and writers wait until their ctx ends,
	// or it is released.
	m.Lock()
	require.ErrorIs(t, m.RLockContext(ended), context.Canceled)
	require.ErrorIs(t, m.LockContext(ended), context.Canceled)
	go func() { rdone <- m.RLockContext(context.Background()) }()
	go func() { wdone <- m.LockContext(context.Background()) }()
	m.Unlock()
	// One of them has it; the other follows once it is released.
	select {
	case err := <-rdone:
		require.NoError(t, err)
		m.RUnlock()
		require.NoError(t, testkit.Await(t, wdone, "LockContext's answer"))
		m.Unlock()
	case err := <-wdone:
		require.NoError(t, err)
		m.Unlock()
		require.NoError(t, testkit.Await(t, rdone, "RLockContext's answer"))
		m.RUnlock()
	case <-time.After(testkit.HangGuard):
		t.Fatalf("neither RLockContext nor LockContext answered within %v", testkit.HangGuard)
	}
	require.True(t, m.TryRLock(), "free again")
	m.RUnlock()
	require.Panics(t, func() { m.RUnlock() })
	require.Panics(t, func() { m.Unlock() })
}

// TestWriterLockWaitEndsWithItsCtx: the log's writer lock's wait ends with its ctx;
// a free lock is taken whatever the ctx.
func TestWriterLockWaitEndsWithItsCtx(t *testing.T) {
	m := newWriterLock()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, m.LockContext(ended), "a free lock is taken whatever the ctx")
	require.ErrorIs(t, m.LockContext(ended), context.Canceled)
	done := make(chan error, 1)
	go func() { done <- m.LockContext(context.Background()) }()
	m.Unlock()
	require.NoError(t, testkit.Await(t, done, "LockContext's answer"))
	m.Unlock()
	require.Panics(t, func() { m.Unlock() })
}

// TestLogCallsHeedTheirCtxBehindAStuckWrite: while an append
// hangs in its write, holding the writer lock, the log's calls that take
// a ctx and need that lock — Append, DeleteRecordsBefore,
// ApplyRetention, Compact, Maintain — return with their ctx's
// error once it ends (before the call, or by a deadline), changing
// nothing; once the write goes on, the log holds what was acknowledged.
func TestLogCallsHeedTheirCtxBehindAStuckWrite(t *testing.T) {
	e := newEnv(t)
	hang, fs := newHangingWrite(t, e.fs, "")
	e.fs = fs
	l := e.open(Config{CleanupPolicy: Compact | Delete, RetentionTime: time.Hour})
	defer l.Close()
	defer hang.unstick() // before the Close, which waits for the stuck write: a failed assertion frees it
	appendOK(t, l, valueBatch(t, e.clock.Now().UnixMilli(), "a"))
	hang.arm()
	stuck := make(chan error, 1)
	go func() {
		_, err := l.Append(context.Background(), valueBatch(t, e.clock.Now().UnixMilli(), "b"), AppendOptions{})
		stuck <- err
	}()
	testkit.AwaitHold(t, hang.entered, stuck, "the Append of b")
	e.clock.Advance(2 * time.Hour) // retention and compaction due

	calls := map[string]func(ctx context.Context) error{
		"Append": func(ctx context.Context) error {
			_, err := l.Append(ctx, valueBatch(t, e.clock.Now().UnixMilli(), "lost"), AppendOptions{})
			return err
		},
		"DeleteRecordsBefore": func(ctx context.Context) error { _, err := l.DeleteRecordsBefore(ctx, 1); return err },
		"ApplyRetention":      func(ctx context.Context) error { _, err := l.ApplyRetention(ctx); return err },
		"Compact":             func(ctx context.Context) error { _, err := l.Compact(ctx); return err },
		"Maintain":            l.Maintain,
	}
	for name, call := range calls {
		for _, deadline := range []bool{false, true} {
			var ctx context.Context
			var cancel context.CancelFunc
			if deadline {
				ctx, cancel = context.WithTimeout(context.Background(), time.Millisecond)
			} else {
				ctx, cancel = context.WithCancel(context.Background())
				cancel()
			}
			done := make(chan error, 1)
			go func() { done <- call(ctx) }()
			select {
			case err := <-done:
				require.ErrorIs(t, err, ctx.Err(), name)
			case <-time.After(testkit.HangGuard):
				hang.unstick()
				t.Fatalf("%s (deadline %v) waited for the stuck write", name, deadline)
			}
			cancel()
		}
	}
	require.EqualValues(t, 0, l.LogStartOffset(), "nothing deleted")
	hang.unstick()
	require.NoError(t, testkit.Await(t, stuck, "Append's answer"))
	require.EqualValues(t, 2, l.LogEndOffset())
}

// TestOutOfRangeReadsAnswerBehindAStuckWrite: while an append hangs in
// its write, holding the writer lock, a read of an offset out of range —
// below the log start (a consumer behind retention or DeleteRecords) or
// past the log end — answers ErrOffsetOutOfRange at once, as Kafka's
// lock-free reads do, through the Log and through the Partition (a
// fetch's read), and the reads in range are served too. Before, a read
// that failed waited for the writer lock (to see whether a truncation had
// cut under it, though none had begun), whatever its ctx said: one
// partition's out-of-range offset held a whole fetch for as long as any
// writer of that log held the lock (a roll's fsyncs, retention, a disk
// that hangs). Kills: truncatedUnder without its look at the truncations
// begun.
func TestOutOfRangeReadsAnswerBehindAStuckWrite(t *testing.T) {
	e := newEnv(t)
	hang, fs := newHangingWrite(t, e.fs, ".log")
	e.fs = fs
	p := NewPartition("t", 0, e.open(Config{}))
	defer p.Close()
	defer hang.unstick() // before the Close, which waits for the stuck append
	ctx := context.Background()
	for _, v := range []string{"a", "b", "c"} {
		_, err := p.Append(ctx, valueBatch(t, e.clock.Now().UnixMilli(), v), AppendOptions{})
		require.NoError(t, err)
	}
	_, err := p.DeleteRecordsBefore(ctx, 1)
	require.NoError(t, err)
	l := p.Log()
	hang.arm()
	stuck := make(chan error, 1)
	go func() {
		_, _, err := p.AppendAsync(ctx, valueBatch(t, e.clock.Now().UnixMilli(), "d"), AppendOptions{})
		stuck <- err
	}()
	testkit.AwaitHold(t, hang.entered, stuck, "the AppendAsync of d")

	reads := map[string]func(off int64) ([]byte, error){
		"Log.ReadInto":   func(off int64) ([]byte, error) { return l.ReadInto(nil, off, 1<<20, math.MaxInt64) },
		"Log.ReadWithin": func(off int64) ([]byte, error) { return l.ReadWithin(nil, off, 1<<20, math.MaxInt64) },
		"Partition.ReadInto": func(off int64) ([]byte, error) {
			return p.ReadInto(ctx, nil, off, 1<<20, math.MaxInt64)
		},
	}
	for name, read := range reads {
		for _, off := range []int64{0, 1, 3, 4} {
			type answer struct {
				data []byte
				err  error
			}
			done := make(chan answer, 1)
			go func() {
				data, err := read(off)
				done <- answer{data, err}
			}()
			var a answer
			select {
			case a = <-done:
			case <-time.After(testkit.HangGuard):
				hang.unstick()
				t.Fatalf("%s at offset %d waited for the stuck write", name, off)
			}
			switch off {
			case 0, 4: // below the log start 1; past the log end 3
				require.ErrorIs(t, a.err, ErrOffsetOutOfRange, "%s at %d", name, off)
			case 1:
				require.NoError(t, a.err, name)
				require.NotEmpty(t, a.data, name)
				require.EqualValues(t, 1, record.Batch(a.data).BaseOffset(), name)
			case 3:
				require.NoError(t, a.err, name)
				require.Empty(t, a.data, "%s at the log end", name)
			}
		}
	}
	hang.unstick()
	require.NoError(t, testkit.Await(t, stuck, "AppendAsync's answer"))
	require.EqualValues(t, 4, p.LogEndOffset())
}

// TestReadsOvertakenByARemovalGoOnBehindItsStuckRemoval: a read, and a
// search by time, that a DeleteRecords overtakes — it removes the segment
// they are reading, or that holds their answer — read again at once on
// the listing the removal left, while the removal still holds the
// writer lock (here stuck in the removal of the segment's file): the read
// answers ErrOffsetOutOfRange for its offset now below the log start,
// the search the first record at or past its time that the log still
// holds. Before, both waited for the writer lock (whatever their
// caller's ctx said), for as long as the removal's file operations
// took. Kills: listingSettled always false (or the retries that use it
// removed).
func TestReadsOvertakenByARemovalGoOnBehindItsStuckRemoval(t *testing.T) {
	for _, search := range []bool{false, true} {
		t.Run(map[bool]string{false: "read", true: "search"}[search], func(t *testing.T) {
			e := newEnv(t)
			armed, entered, unstick := stickSegmentZerosRemoval(t, e)
			l := e.open(Config{})
			defer l.Close()
			// Released before the Close, which waits for the removal.
			defer unstick()

			appendOK(t, l, valueBatch(t, 100, "a")) // 0
			appendOK(t, l, valueBatch(t, 200, "b")) // 1
			require.NoError(t, l.Roll())
			appendOK(t, l, valueBatch(t, 300, "c")) // 2

			removed := make(chan error, 1)
			overtake := func(*Log) {
				testHookReadListed, testHookTimeSearched = nil, nil
				armed.Store(true)
				go func() {
					_, err := l.DeleteRecordsBefore(context.Background(), 2) // segment 0 goes
					removed <- err
				}()
				<-entered
			}
			type answer struct {
				off int64
				ok  bool
				err error
			}
			done := make(chan answer, 1)
			if search {
				testHookTimeSearched = overtake
				go func() {
					off, ok, err := l.OffsetForTime(150) // 1, then 2 once segment 0 is gone
					done <- answer{off, ok, err}
				}()
			} else {
				testHookReadListed = overtake
				go func() {
					_, err := l.ReadInto(nil, 0, 1<<20, math.MaxInt64)
					done <- answer{err: err}
				}()
			}
			defer func() { testHookReadListed, testHookTimeSearched = nil, nil }()
			var a answer
			select {
			case a = <-done:
			case <-time.After(testkit.HangGuard):
				unstick()
				t.Fatal("the overtaken call waited for the stuck removal")
			}
			if search {
				require.NoError(t, a.err)
				require.True(t, a.ok)
				require.EqualValues(t, 2, a.off)
			} else {
				require.ErrorIs(t, a.err, ErrOffsetOutOfRange)
			}
			unstick()
			require.NoError(t, testkit.Await(t, removed, "DeleteRecordsBefore's answer"))
			require.EqualValues(t, 2, l.LogStartOffset())
		})
	}
}

// TestPartitionReadOvertakenByAStuckSwapEndsWithItsCtx: a Partition read,
// a Partition look-up of the largest timestamp (ListOffsets'
// MaxTimestamp) and one by time (ListOffsets by timestamp, a consumer's
// seek to a time), that a compaction's swap overtakes — the swap closed the
// segment it reads (or that holds its answer) and has not listed the
// cleaned one yet, stuck in its file operations — wait for the swap to
// finish, as they must (the offset is in no listed open segment
// meanwhile), but return their ctx's error once their ctx ends, as a
// fetch's read must. Before, they waited for the writer lock whatever
// their ctx said. Kills: readInto's and searchTime's wait by
// writerBarrier.
func TestPartitionReadOvertakenByAStuckSwapEndsWithItsCtx(t *testing.T) {
	for _, call := range []string{"read", "max timestamp", "offset for time"} {
		t.Run(call, func(t *testing.T) {
			e := newEnv(t)
			armed, entered, unstick := stickSegmentZerosRemoval(t, e)
			p := NewPartition("t", 0, e.open(Config{CleanupPolicy: Compact, MinCleanableDirtyRatio: -1, RetentionTime: -1}))
			defer p.Close()
			// Released before the Close, which waits for the swap.
			defer unstick()

			l := p.Log()
			for i := range 2 { // the second round supersedes the first: segment 0 is rewritten
				for _, k := range []string{"a", "b", "c"} {
					appendOK(t, l, batchOf(t, compression.None, kv{[]byte(k), []byte("v"), int64(300 - 100*i)}))
				}
				require.NoError(t, l.Roll())
			}

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			compacted := make(chan error, 1)
			overtake := func(*Log) {
				testHookReadListed, testHookTimeSearched = nil, nil
				armed.Store(true)
				go func() {
					_, err := l.Compact(context.Background())
					compacted <- err
				}()
				<-entered // the swap closed segment 0, and holds the writer lock
				cancel()
			}
			defer func() { testHookReadListed, testHookTimeSearched = nil, nil }()
			done := make(chan error, 1)
			switch call {
			case "max timestamp":
				testHookTimeSearched = overtake
				go func() {
					_, _, err := p.OffsetOfMaxTimestamp(ctx, math.MaxInt64) // offset 0's 300, in segment 0
					done <- err
				}()
			case "offset for time":
				testHookTimeSearched = overtake
				go func() {
					_, _, err := p.OffsetForTime(ctx, 250) // offset 0's 300, in segment 0
					done <- err
				}()
			default:
				testHookReadListed = overtake
				go func() {
					_, err := p.ReadInto(ctx, nil, 0, 1<<20, math.MaxInt64)
					done <- err
				}()
			}
			select {
			case err := <-done:
				require.ErrorIs(t, err, context.Canceled)
			case <-time.After(testkit.HangGuard):
				unstick()
				t.Fatal("the overtaken call waited for the stuck swap, past its ctx")
			}
			unstick()
			require.NoError(t, testkit.Await(t, compacted, "Compact's answer"))
			data, err := p.ReadInto(context.Background(), nil, 0, 1<<20, math.MaxInt64)
			require.NoError(t, err)
			require.NotEmpty(t, data, "the cleaned segment serves the offsets")
		})
	}
}

// TestPartitionReadBehindAStuckTruncationEndsWithItsCtx: a Partition read
// that fails while a truncation is under way (here of an offset past the
// end the truncation has lowered, which it is still checkpointing, stuck
// in a write to a disk that hangs) waits for the truncation before it
// answers, as it must (the failure may be the cut's doing), but returns
// its ctx's error once its ctx ends, as acef45b1 made the other waits of
// a Partition read (and Partition.ReadInto's doc says of a truncation).
// Before, truncatedUnder waited for the writer lock with no ctx. So does
// a Partition look-up of the largest timestamp, whose search the
// truncation makes stale (it must search again once the truncation is
// done), or whose read of the segment fails (here an injected read
// error). Kills: truncatedUnder's wait without the read's or the
// search's ctx (writerBarrierContext given context.Background, or its
// error dropped); searchTime searching again at once, without the wait,
// while a truncation is under way (its check of the count of
// truncations begun dropped: it used up its attempts, then failed).
func TestPartitionReadBehindAStuckTruncationEndsWithItsCtx(t *testing.T) {
	for _, call := range []string{"ReadInto", "ReadWithin", "OffsetOfMaxTimestamp", "OffsetOfMaxTimestamp read fails"} {
		t.Run(call, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t)
				var armed, readFails atomic.Bool
				entered, release := make(chan struct{}), make(chan struct{})
				e.fs = vfs.WithFaults(e.fs, vfs.InjectorFunc(func(op vfs.Op, name string) error {
					if op == vfs.OpWrite && strings.Contains(name, recoveryPointFile) && armed.CompareAndSwap(true, false) {
						close(entered)
						<-release
					}
					if op == vfs.OpRead && strings.HasSuffix(name, segment.LogSuffix) && readFails.CompareAndSwap(true, false) {
						return errors.New("injected read failure")
					}
					return nil
				}))
				l := e.open(Config{})
				for _, v := range []string{"a", "b", "c"} {
					appendOK(t, l, valueBatch(t, e.clock.Now().UnixMilli(), v))
				}
				require.NoError(t, l.Close())
				l = e.open(Config{}) // its recovery point is the log end, 3
				p := NewPartition("t", 0, l)
				defer p.Close()

				armed.Store(true)
				truncated := make(chan error, 1)
				go func() {
					_, err := l.TruncateTo(1) // lowers the recovery point, and hangs writing it
					truncated <- err
				}()
				<-entered
				require.EqualValues(t, 1, p.LogEndOffset())

				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				readFails.Store(call == "OffsetOfMaxTimestamp read fails")
				go func() {
					var err error
					switch call {
					case "ReadInto":
						_, err = p.ReadInto(ctx, nil, 2, 1<<20, math.MaxInt64)
					case "ReadWithin":
						_, err = p.ReadWithin(ctx, nil, 2, 1<<20, math.MaxInt64)
					default:
						_, _, err = p.OffsetOfMaxTimestamp(ctx, math.MaxInt64)
					}
					done <- err
				}()
				synctest.Wait() // the read waits for the truncation
				cancel()
				require.ErrorIs(t, <-done, context.Canceled)
				require.False(t, readFails.Load(), "the search read the segment")

				close(release)
				require.NoError(t, <-truncated)
				_, err := p.ReadInto(context.Background(), nil, 2, 1<<20, math.MaxInt64)
				require.ErrorIs(t, err, ErrOffsetOutOfRange, "past the end once the truncation is done")
			})
		})
	}
}

// hangingWrite makes a file system's next write, once armed, to a file
// whose name ends in suffix hang until released: a disk that hangs.
type hangingWrite struct {
	armed   atomic.Bool
	entered chan struct{} // closed once the armed write has begun
	release chan struct{}
	once    sync.Once
}

// newHangingWrite wraps fs (see hangingWrite); the write is released on
// the test's cleanup too, so that a failing test leaves nothing stuck.
func newHangingWrite(t *testing.T, fs vfs.FS, suffix string) (*hangingWrite, vfs.FS) {
	h := &hangingWrite{entered: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(h.unstick)
	return h, vfs.WithFaults(fs, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpWrite && strings.HasSuffix(name, suffix) && h.armed.CompareAndSwap(true, false) {
			close(h.entered)
			<-h.release
		}
		return nil
	}))
}

// arm makes the next write hang.
func (h *hangingWrite) arm() { h.armed.Store(true) }

// unstick lets the hanging write go on (once; later calls do nothing).
// It runs at the test's cleanup; a test that defers a Close of the log
// defers unstick after it too, so that it runs first: the Close waits
// for the stuck write.
func (h *hangingWrite) unstick() { h.once.Do(func() { close(h.release) }) }

// TestMaintainHeedsItsCtxBehindAWriteStuckAfterRetention: each of
// Maintain's steps after retention that waits for the writer lock (the
// producer ids' expiry, SyncNever's look for rolled segments, the
// periodic flush's look at flush.ms) gives up when Maintain's ctx ends,
// as ApplyRetention does (TestLogCallsHeedTheirCtxBehindAStuckWrite
// ends there). The handler of retention's "deleting segment" line, which
// runs between retention and the next step, starts an append whose
// write hangs, then ends the ctx. Kills: each of those steps taking the
// lock with Lock.
func TestMaintainHeedsItsCtxBehindAWriteStuckAfterRetention(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		expire time.Duration
	}{
		{"producer expiry", Config{}, 0},
		{"SyncNever's rolled segments", Config{Sync: SyncNever}, -1},
		{"flush.ms", Config{Sync: SyncPeriodic, FlushInterval: time.Millisecond}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			hang, fs := newHangingWrite(t, e.fs, ".log")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stuck := make(chan error, 1)
			late := valueBatch(t, e.clock.Now().Add(2*time.Hour).UnixMilli(), "stuck")
			var once sync.Once
			var l *Log
			logger := slog.New(testkit.LineFunc(func(r slog.Record) {
				if r.Message != "deleting segment" {
					return
				}
				once.Do(func() {
					hang.arm()
					go func() {
						_, err := l.Append(context.Background(), late, AppendOptions{})
						stuck <- err
					}()
					<-hang.entered
					cancel()
				})
			}))
			cfg := tc.cfg
			cfg.RetentionTime = time.Hour
			cfg.TimestampAfterMax = -1 // "new" is stamped 2 hours ahead, and the clock then moves to it
			var err error
			l, err = Open(e.dir, cfg, Options{FS: fs, Clock: e.clock, Logger: logger, ProducerExpiration: tc.expire})
			require.NoError(t, err)
			appendOK(t, l, valueBatch(t, e.clock.Now().UnixMilli(), "old"))
			require.NoError(t, l.Roll())
			appendOK(t, l, valueBatch(t, e.clock.Now().Add(2*time.Hour).UnixMilli(), "new"))
			e.clock.Advance(2 * time.Hour) // the first segment is past retention

			done := make(chan error, 1)
			go func() { done <- l.Maintain(ctx) }()
			select {
			case err := <-done:
				require.ErrorIs(t, err, context.Canceled)
			case <-time.After(testkit.HangGuard):
				hang.unstick()
				testkit.Await(t, done, "Maintain's answer")
				t.Fatal("Maintain waited for the stuck write past its ctx")
			}
			require.EqualValues(t, 1, l.LogStartOffset(), "retention ran")
			hang.unstick()
			require.NoError(t, testkit.Await(t, stuck, "Append's answer"))
			require.NoError(t, l.Close())
		})
	}
}

// TestHoldLockUnderChurn: readers and writers of a holdLock, in
// seeded random order, some giving up by their ctx (cancelled before,
// or while, they wait), some trying only: no writer ever shares the lock,
// no reader holds it beside a writer, every wait ends (a writer that
// gives up never leaves readers stuck behind it), and the lock is free
// at the end. Run it with -race.
func TestHoldLockUnderChurn(t *testing.T) {
	testkit.Seeds(t, "RUNNEL_HOLDLOCK_CHURN", 6, 2, func(t *testing.T, seed uint64) {
		m := newHoldLock()
		var readers, writers atomic.Int32
		check := func(writer bool) {
			r, w := readers.Load(), writers.Load()
			if writer && (r != 0 || w != 1) || !writer && w != 0 {
				t.Errorf("writer %v: %d readers and %d writers hold the lock", writer, r, w)
			}
		}
		hold := func(writer bool, spins int) {
			if writer {
				writers.Add(1)
			} else {
				readers.Add(1)
			}
			check(writer)
			for range spins {
				runtime.Gosched()
			}
			check(writer)
			if writer {
				writers.Add(-1)
				m.Unlock()
			} else {
				readers.Add(-1)
				m.RUnlock()
			}
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			var wg sync.WaitGroup
			for w := range 6 {
				rng := rand.New(rand.NewPCG(seed, uint64(w)))
				wg.Go(func() {
					for range 300 {
						writer := rng.IntN(4) == 0
						spins := rng.IntN(4)
						ctx, cancel := context.Background(), context.CancelFunc(func() {})
						switch rng.IntN(4) {
						case 0:
							ctx, cancel = context.WithCancel(context.Background())
							cancel() // ended: only a free lock is taken
						case 1:
							ctx, cancel = context.WithCancel(context.Background())
							go func() { runtime.Gosched(); cancel() }()
						}
						if rng.IntN(8) == 0 && !writer {
							if m.TryRLock() {
								hold(false, spins)
							}
							cancel()
							continue
						}
						var err error
						if writer {
							err = m.LockContext(ctx)
						} else {
							err = m.RLockContext(ctx)
						}
						if err == nil {
							hold(writer, spins)
						} else if ctx.Err() == nil {
							t.Errorf("wait failed with %v, its ctx not ended", err)
						}
						cancel()
					}
				})
			}
			wg.Wait()
		}()
		select {
		case <-done:
		case <-time.After(testkit.HangGuard):
			t.Fatal("a wait for the hold lock never ended")
		}
		ctx, cancel := context.WithTimeout(context.Background(), testkit.HangGuard)
		defer cancel()
		require.NoError(t, m.LockContext(ctx), "a hold left behind")
		m.Unlock()
		require.True(t, m.TryRLock(), "free at the end")
		m.RUnlock()
	})
}

// stickSegmentZerosRemoval makes the removal of segment 0's .log in e's
// file system, once armed is set, hang (closing entered once it has
// begun) until unstick, which the test's cleanup calls too.
func stickSegmentZerosRemoval(t *testing.T, e *env) (armed *atomic.Bool, entered chan struct{}, unstick func()) {
	armed, entered = new(atomic.Bool), make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	unstick = func() { once.Do(func() { close(release) }) }
	t.Cleanup(unstick)
	e.fs = vfs.WithFaults(e.fs, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpRemove && strings.HasSuffix(name, segment.FileName(0, segment.LogSuffix)) && armed.CompareAndSwap(true, false) {
			close(entered)
			<-release
		}
		return nil
	}))
	return armed, entered, unstick
}
