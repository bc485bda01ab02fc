package log

import (
	"context"
	"errors"
	"testing"

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
