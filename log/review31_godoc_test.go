package log

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

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
