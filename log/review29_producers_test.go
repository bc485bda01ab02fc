package log

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReview29NoEpochTakesAnySequence: a producer id whose batches carry
// no epoch (-1) is taken at any sequence number, as Kafka's broker takes
// it (ProducerAppendInfo.checkSequence accepts any sequence while the
// producer's current epoch is NO_PRODUCER_EPOCH, and a new epoch at any
// sequence after it), while its retries are still answered as duplicates
// (ProducerStateEntry.findDuplicateBatch compares the epochs, equal). The
// log checked the sequence numbers of such a producer as of one with an
// epoch: the gap, and the first batch of epoch 0 at a sequence other than
// 0, were refused with ErrOutOfOrderSequence.
func TestReview29NoEpochTakesAnySequence(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	ctx := context.Background()
	app := func(data []byte) (AppendResult, error) { return l.Append(ctx, data, AppendOptions{}) }
	_, err := app(idemBatch(t, 7, -1, 5, 2))
	require.NoError(t, err)
	r, err := app(idemBatch(t, 7, -1, 5, 2))
	require.NoError(t, err)
	require.True(t, r.Duplicate, "a retry under no epoch is a duplicate")
	r, err = app(idemBatch(t, 7, -1, 20, 1))
	require.NoError(t, err, "no epoch: any sequence")
	require.False(t, r.Duplicate)
	_, err = app(idemBatch(t, 7, 0, 3, 1))
	require.NoError(t, err, "a new epoch after none, at any sequence")
	// From then on the producer has an epoch: its sequence numbers count.
	_, err = app(idemBatch(t, 7, 0, 9, 1))
	require.ErrorIs(t, err, ErrOutOfOrderSequence)
	_, err = app(idemBatch(t, 7, 1, 4, 1))
	require.ErrorIs(t, err, ErrOutOfOrderSequence, "a new epoch after a real one starts at 0")
	_, err = app(idemBatch(t, 7, -1, 5, 1))
	require.ErrorIs(t, err, ErrProducerFenced)
	require.Equal(t, int64(4), l.LogEndOffset())
}
