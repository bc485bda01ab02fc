package log

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// The tests of this file close the gaps that session 39's mutation pass
// found in the code changed since 85f1e0f (the ctx-aware locks, the line
// hand-on): each names the mutant it kills.

// TestListedOffsetsOfAClosedPartition: ListedOffsets answers from
// an open log only: ErrClosed once the partition is closed, ErrLogFenced
// (wrapping open's error) once a Reopen's open failed, as its reads
// answer. Kills: ListedOffsets without its closed check; its ErrClosed
// not turned into ErrLogFenced (p.failed dropped).
func TestListedOffsetsOfAClosedPartition(t *testing.T) {
	e := newEnv(t)
	p := NewPartition("t", 0, e.open(Config{}))
	_, err := p.Append(context.Background(), valueBatch(t, 1_700_000_000_000, "a"), AppendOptions{})
	require.NoError(t, err)
	o, err := p.ListedOffsets(context.Background())
	require.NoError(t, err)
	require.Equal(t, PartitionOffsets{LogStart: 0, HighWatermark: 1, LogEnd: 1}, o)

	openErr := errors.New("injected open failure")
	err = p.Reopen(func() (*Log, error) { return nil, openErr })
	require.ErrorIs(t, err, openErr)
	_, err = p.ListedOffsets(context.Background())
	require.ErrorIs(t, err, ErrLogFenced, "a Reopen's open failed")
	require.ErrorIs(t, err, openErr)
	_, err = p.ReadInto(context.Background(), nil, 0, 1<<20, 1)
	require.ErrorIs(t, err, ErrLogFenced, "as the reads answer")

	require.NoError(t, p.Close())
	_, err = p.ListedOffsets(context.Background())
	require.ErrorIs(t, err, ErrClosed)
	require.NotErrorIs(t, err, ErrLogFenced, "closed by its owner")
}

// TestRetryReopenWithNothingToRetryHoldsNothingUp: RetryReopen
// with nothing to retry takes the partition's lock shared only, so it
// does not wait for a call in flight (here DeleteRecordsChecked, whose
// check runs holding the lock shared) as a Reopen would. Kills:
// RetryReopen taking the lock exclusively whatever its first look found.
func TestRetryReopenWithNothingToRetryHoldsNothingUp(t *testing.T) {
	e := newEnv(t)
	p := NewPartition("t", 0, e.open(Config{}))
	defer p.Close()
	var tried bool
	var retryErr error
	_, err := p.DeleteRecordsChecked(context.Background(), func(_ Config, hw int64) (int64, error) {
		// Bounded: a RetryReopen that waits for the lock exclusively
		// waits for this check, which waits for it.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tried, retryErr = p.RetryReopen(ctx)
		return hw, nil
	})
	require.NoError(t, err)
	require.NoError(t, retryErr, "RetryReopen waited for the call in flight")
	require.False(t, tried)
}

// TestLogAppendTimeBeforeTheEpochRollsByItsOwnTime: under
// LogAppendTime segment.ms compares the batches' stamps, the log's time,
// with the active segment's first: after the log's clock stepped back
// from 1 s past 1970 to before it, an append is stamped with a negative
// time and does not roll after a segment.ms of one hour, whatever
// CreateTime the producer set (here decades later). Kills: the roll's
// max timestamp taken from the batches when the append time is negative
// (the sign of the time, not the topic's type, deciding), which rolled.
func TestLogAppendTimeBeforeTheEpochRollsByItsOwnTime(t *testing.T) {
	e := newEnv(t)
	e.clock.t = time.UnixMilli(1000)
	l := e.open(Config{TimestampType: LogAppendTime, SegmentTime: time.Hour})
	defer l.Close()
	appendOK(t, l, batchOf(t, compression.None, kv{value: []byte("a"), ts: 1_700_000_000_000}))
	e.clock.t = time.UnixMilli(-5000)
	res := appendOK(t, l, batchOf(t, compression.None, kv{value: []byte("b"), ts: 1_700_000_000_000}))
	require.EqualValues(t, -5000, res.LogAppendTime)
	require.Equal(t, 1, l.Segments(), "rolled: the log's time went back, not an hour on")
}

// TestOptionsGoStartsTheSyncRound: a group commit's fsync round
// run apart from its waiter (its ctx can end: on a file system other than
// the bare memory FS) is started by Options.Go, before Close returns, so
// that an owner counting the log's goroutines with it (a broker) knows
// of it. Kills: the round started by a go statement whatever Options.Go.
func TestOptionsGoStartsTheSyncRound(t *testing.T) {
	var calls atomic.Int32
	var wg sync.WaitGroup
	goFunc := func(f func()) {
		calls.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	fs := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(vfs.Op, string) error { return nil }))
	l, err := Open("/d/t-0", Config{Sync: SyncAlways}, Options{FS: fs, Clock: newClock(), Go: goFunc})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background()) // a ctx that can end: the round on its own goroutine
	defer cancel()
	_, err = l.Append(ctx, valueBatch(t, 1_700_000_000_000, "a"), AppendOptions{})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	require.NotZero(t, calls.Load(), "the fsync round was not started by Options.Go")
	wg.Wait()
}

// TestSegmentTimesForgetRemovedSegments: the creation times the
// log keeps for segment.ms (createdAt) are those of its live segments,
// and of removed ones at most as many again: retention's removals are
// forgotten at a roll once the map holds twice as many entries as there
// are segments (before, at every roll, which made each roll's cost grow
// with the segments), so that a log that rolls and
// deletes for months keeps a bounded map. Kills: noteRolledLocked
// keeping the times of removed segments below the first live one (its
// check of the base found dropped).
func TestSegmentTimesForgetRemovedSegments(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentBytes: 100})
	defer l.Close()
	for _, v := range []string{"a", "b", "c", "d", "e", "f"} {
		appendOK(t, l, valueBatch(t, 1_700_000_000_000, v)) // each rolls
	}
	require.Equal(t, 6, l.Segments())
	for i := range 40 {
		_, err := l.DeleteRecordsBefore(context.Background(), l.LogEndOffset()-1)
		require.NoError(t, err)
		appendOK(t, l, valueBatch(t, 1_700_000_000_000, "g")) // rolls
		l.mu.Lock()
		segs, kept := len(*l.segs.Load()), len(l.createdAt)
		l.unlock()
		require.LessOrEqual(t, kept, 2*segs+1, "round %d: creation times kept for %d segments", i, segs)
	}
}

// TestRetentionKeepsTheActiveSegmentEndingOnePastTheLast: time
// retention keeps the active segment of a log whose end is
// MaxLogEndOffset+1 (a batch of one record at the largest base: no
// segment can start at its end), as it keeps one ending further past it
// (TestLogPastTheLastEndKeepsOpening). Kills: the check moved to
// an end past MaxLogEndOffset+1, which rolled (ErrRollFailed).
func TestRetentionKeepsTheActiveSegmentEndingOnePastTheLast(t *testing.T) {
	e := newEnv(t)
	writeSegmentFile(t, e.fs, e.dir, maxSegmentBase, gapBatch(t, maxSegmentBase, 0))
	l := e.open(Config{RetentionTime: time.Second})
	defer l.Close()
	require.Equal(t, int64(MaxLogEndOffset+1), l.LogEndOffset())
	e.clock.Advance(time.Hour) // the record, stamped 1 ms, is past retention.ms
	_, err := l.ApplyRetention(context.Background())
	require.NoError(t, err)
	require.Len(t, readAll(t, l, maxSegmentBase), 1, "the active segment stays")
}

// TestRelativeDirUnderAWrappedOSFS: Open makes a relative dir
// absolute on the OS file system under any vfs.Wrapper too (Open's doc),
// so Dir is absolute for a log opened through vfs.WithFaults(vfs.OS).
// Kills: the check made on the FS itself rather than vfs.Unwrap's.
func TestRelativeDirUnderAWrappedOSFS(t *testing.T) {
	base := t.TempDir()
	t.Chdir(base)
	fs := vfs.WithFaults(vfs.OS, vfs.InjectorFunc(func(vfs.Op, string) error { return nil }))
	l, err := Open(filepath.Join("data", "t-0"), Config{}, Options{FS: fs, Clock: newClock()})
	require.NoError(t, err)
	defer l.Close()
	require.True(t, filepath.IsAbs(l.Dir()), "Dir %q", l.Dir())
	abs, err := filepath.Abs(filepath.Join("data", "t-0"))
	require.NoError(t, err)
	require.Equal(t, abs, l.Dir())
}
