package log

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestPartitionAppendAfterFailedReopen: Reopen's doc promises that once
// open fails, the partition's appends, reads and look-ups fail with
// ErrLogFenced (wrapping open's error) instead of ErrClosed. Append did
// not translate the closed log's error (AppendAsync did), so it answered
// ErrClosed, which a caller takes for a closed broker.
func TestPartitionAppendAfterFailedReopen(t *testing.T) {
	e := newEnv(t)
	p := NewPartition("t", 0, e.open(Config{}))
	appendOK(t, p.Log(), valueBatch(t, 1, "a"))
	boom := errors.New("boom")
	require.ErrorIs(t, p.Reopen(func() (*Log, error) { return nil, boom }), boom)

	_, err := p.Append(context.Background(), valueBatch(t, 1, "b"), AppendOptions{})
	require.ErrorIs(t, err, ErrLogFenced)
	require.ErrorIs(t, err, boom)
	_, _, err = p.AppendAsync(context.Background(), valueBatch(t, 1, "c"), AppendOptions{})
	require.ErrorIs(t, err, ErrLogFenced)
	_, err = p.ReadInto(context.Background(), nil, 0, 1<<20, 1<<62)
	require.ErrorIs(t, err, ErrLogFenced)
	_, _, err = p.OffsetForTime(context.Background(), 0)
	require.ErrorIs(t, err, ErrLogFenced)
	_, _, err = p.OffsetOfMaxTimestamp(context.Background(), 1<<62)
	require.ErrorIs(t, err, ErrLogFenced)
	_, err = p.DeleteRecordsBefore(context.Background(), 0)
	require.ErrorIs(t, err, ErrLogFenced)
}

// TestClosedPartitionAfterAFailedReopen: a partition whose Reopen
// could not open its log answers ErrLogFenced (wrapping open's error)
// until Close or Discard closes it, as Reopen's doc says; then ErrClosed,
// as any closed partition: its owner closed it (a deleted topic, the
// broker's Close), and the broker tells those apart by ErrClosed. A
// Reopen after that opens the log again.
func TestClosedPartitionAfterAFailedReopen(t *testing.T) {
	for _, how := range []string{"Close", "Discard"} {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t)
			p := NewPartition("t", 0, e.open(Config{}))
			_, err := p.Append(context.Background(), valueBatch(t, 1, "a"), AppendOptions{})
			require.NoError(t, err)
			errOpen := errors.New("no file descriptors left")
			require.ErrorIs(t, p.Reopen(func() (*Log, error) { return nil, errOpen }), errOpen)
			_, err = p.Append(context.Background(), valueBatch(t, 1, "b"), AppendOptions{})
			require.ErrorIs(t, err, ErrLogFenced)
			require.ErrorIs(t, err, errOpen)
			if how == "Close" {
				require.NoError(t, p.Close())
			} else {
				require.NoError(t, p.Discard())
			}
			_, err = p.Append(context.Background(), valueBatch(t, 1, "c"), AppendOptions{})
			require.ErrorIs(t, err, ErrClosed)
			require.NotErrorIs(t, err, ErrLogFenced)
			_, err = p.ReadInto(context.Background(), nil, 0, 1<<20, 10)
			require.ErrorIs(t, err, ErrClosed)
			require.NotErrorIs(t, err, ErrLogFenced)
			_, err = p.DeleteRecordsBefore(context.Background(), 0)
			require.ErrorIs(t, err, ErrClosed)
			tried, err := p.RetryReopen(context.Background())
			require.False(t, tried)
			require.NoError(t, err)

			// A Reopen after Close opens the log again (as Reopen's doc
			// says): the owner that closed it decides.
			require.NoError(t, p.Reopen(func() (*Log, error) { return e.open(Config{}), nil }))
			_, err = p.Append(context.Background(), valueBatch(t, 1, "d"), AppendOptions{})
			require.NoError(t, err)
			require.Equal(t, int64(2), p.LogEndOffset(), "a, then d")
		})
	}
}

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
		ctx, cancel := context.WithTimeout(context.Background(), testkit.HangGuard)
		defer cancel()
		tried, retryErr = p.RetryReopen(ctx)
		return hw, nil
	})
	require.NoError(t, err)
	require.NoError(t, retryErr, "RetryReopen waited for the call in flight")
	require.False(t, tried)
}

// TestPartitionStateTellsWhyAppendsFail: State's Err is the error the
// partition's appends get now, read without appending: nil while they
// are taken, also after a Reopen that succeeded; ErrLogFenced with its
// cause once a failed write fenced the log (whose offsets, under
// SyncNever, look as a healthy log's), once a Reopen could not close the
// log (for good: no Reopen mends it), and once a Reopen could not open it
// again (the closed log's offsets kept), until a Reopen succeeds;
// ErrClosed once the partition is closed. A Reopen under way is waited
// for until ctx ends.
func TestPartitionStateTellsWhyAppendsFail(t *testing.T) {
	ctx := context.Background()
	appendErr := func(p *Partition) error {
		_, err := p.Append(ctx, valueBatch(t, 1, "probe"), AppendOptions{})
		return err
	}

	t.Run("fenced", func(t *testing.T) {
		e := newEnv(t)
		var failing atomic.Bool
		e.fs = vfs.WithFaults(e.fs, vfs.InjectorFunc(func(op vfs.Op, name string) error {
			if failing.Load() && op == vfs.OpWrite && strings.HasSuffix(name, ".log") {
				return vfs.ErrInjected
			}
			return nil
		}))
		p := NewPartition("t", 0, e.open(Config{Sync: SyncNever}))
		defer p.Close()
		require.NoError(t, appendErr(p))
		st, err := p.State(ctx)
		require.NoError(t, err)
		require.NoError(t, st.Err)
		failing.Store(true)
		require.ErrorIs(t, appendErr(p), vfs.ErrInjected) // a failed write fences the log
		failing.Store(false)
		st, err = p.State(ctx)
		require.NoError(t, err)
		require.ErrorIs(t, st.Err, ErrLogFenced)
		require.ErrorIs(t, st.Err, vfs.ErrInjected, "with its cause")
		require.Equal(t, st.HighWatermark, st.LogEnd, "SyncNever: the offsets do not tell")
		require.Equal(t, appendErr(p), st.Err, "the error an append gets")
		_, err = p.ReadInto(ctx, nil, 0, 1<<20, 1<<62)
		require.NoError(t, err, "a fenced log still serves reads")
	})

	t.Run("failed close", func(t *testing.T) {
		e := newEnv(t)
		var failing atomic.Bool
		e.fs = vfs.WithFaults(e.fs, vfs.InjectorFunc(func(op vfs.Op, name string) error {
			if failing.Load() && op == vfs.OpSync {
				return vfs.ErrInjected
			}
			return nil
		}))
		p := NewPartition("t", 0, e.open(Config{Sync: SyncNever}))
		defer p.Close()
		require.NoError(t, appendErr(p)) // not fsynced: the Close's fsync writes it
		failing.Store(true)
		opened := false
		err := p.Reopen(func() (*Log, error) { opened = true; return e.open(Config{Sync: SyncNever}), nil })
		require.ErrorIs(t, err, vfs.ErrInjected, "the old log's closing fsync failed")
		require.False(t, opened)
		failing.Store(false)
		st, err := p.State(ctx)
		require.NoError(t, err)
		require.ErrorIs(t, st.Err, ErrLogFenced)
		require.ErrorIs(t, st.Err, vfs.ErrInjected)
		require.Equal(t, appendErr(p).Error(), st.Err.Error(), "the error an append gets")
		_, err = p.ReadInto(ctx, nil, 0, 1<<20, 1<<62)
		require.ErrorIs(t, err, ErrLogFenced, "reads fail too")
		// Nothing mends it but an Open of the log (the broker's next).
		tried, err := p.RetryReopen(ctx)
		require.False(t, tried)
		require.NoError(t, err)
		require.ErrorIs(t, p.Reopen(func() (*Log, error) { return e.open(Config{}), nil }), ErrLogFenced)
		st, err = p.State(ctx)
		require.NoError(t, err)
		require.ErrorIs(t, st.Err, vfs.ErrInjected, "still")
	})

	t.Run("failed reopen", func(t *testing.T) {
		e := newEnv(t)
		p := NewPartition("t", 0, e.open(Config{}))
		appendOK(t, p.Log(), valueBatch(t, 1, "a", "b"))
		require.NoError(t, p.Reopen(func() (*Log, error) { return e.open(Config{}), nil }))
		st, err := p.State(ctx)
		require.NoError(t, err)
		require.NoError(t, st.Err, "reopened")
		size := st.Size
		require.Positive(t, size)

		openErr := errors.New("no file descriptors left")
		require.ErrorIs(t, p.Reopen(func() (*Log, error) { return nil, openErr }), openErr)
		st, err = p.State(ctx)
		require.NoError(t, err)
		require.ErrorIs(t, st.Err, ErrLogFenced)
		require.ErrorIs(t, st.Err, openErr)
		require.Equal(t, appendErr(p).Error(), st.Err.Error(), "the error an append gets")
		require.Equal(t, PartitionState{PartitionOffsets: PartitionOffsets{LogStart: 0, HighWatermark: 2, LogEnd: 2}, Size: size, Err: st.Err}, st)

		// A Reopen under way is waited for.
		lk, err := p.Lock(ctx)
		require.NoError(t, err)
		short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		defer cancel()
		_, err = p.State(short)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		lk.Unlock()

		tried, err := p.RetryReopen(ctx)
		require.True(t, tried)
		require.ErrorIs(t, err, openErr, "the same open, failing again")
		st, err = p.State(ctx)
		require.NoError(t, err)
		require.ErrorIs(t, st.Err, openErr)
		require.NoError(t, p.Reopen(func() (*Log, error) { return e.open(Config{}), nil }))
		st, err = p.State(ctx)
		require.NoError(t, err)
		require.NoError(t, st.Err, "opened again")
		require.NoError(t, appendErr(p))

		require.NoError(t, p.Close())
		st, err = p.State(ctx)
		require.NoError(t, err)
		require.ErrorIs(t, st.Err, ErrClosed)
		require.NotErrorIs(t, st.Err, ErrLogFenced, "closed by its owner")
	})
}
