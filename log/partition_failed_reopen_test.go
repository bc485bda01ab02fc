package log

import (
	"context"
	"errors"
	"testing"
	"time"

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
// broker's Close), and the broker tells those apart by ErrClosed.
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
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tried, retryErr = p.RetryReopen(ctx)
		return hw, nil
	})
	require.NoError(t, err)
	require.NoError(t, retryErr, "RetryReopen waited for the call in flight")
	require.False(t, tried)
}
