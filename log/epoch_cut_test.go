package log

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// appendEpochs appends one batch per epoch in epochs, each with the
// leader epoch given.
func appendEpochs(t *testing.T, l *Log, epochs ...int32) {
	t.Helper()
	for i, ep := range epochs {
		_, err := l.Append(context.Background(), valueBatch(t, 1, fmt.Sprint(i)), AppendOptions{LeaderEpoch: ep})
		require.NoError(t, err)
	}
}

// TestTruncateToSavesEpochs: a truncation's cut of the leader epochs is in
// the checkpoint, so that batches of an older epoch appended after it are
// not taken, after a clean reopen, for the epoch cut (mutant: the cut not
// saved).
func TestTruncateToSavesEpochs(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	appendEpochs(t, l, 0, 0, 1, 1, 2, 2)
	require.Equal(t, []EpochEntry{{0, 0}, {1, 2}, {2, 4}}, l.LeaderEpochs())
	_, err := l.TruncateTo(3)
	require.NoError(t, err)
	appendEpochs(t, l, 1, 1, 1) // offsets 3 to 5, epoch 1 still
	require.Equal(t, []EpochEntry{{0, 0}, {1, 2}}, l.LeaderEpochs())
	require.NoError(t, l.Close())

	l = e.open(Config{})
	defer l.Close()
	require.Equal(t, []EpochEntry{{0, 0}, {1, 2}}, l.LeaderEpochs())
	ep, end := l.EndOffsetForEpoch(1)
	require.Equal(t, int32(1), ep)
	require.Equal(t, int64(6), end)
}

// TestDeleteRecordsAtEpochStart: a log start exactly at an epoch's start
// offset drops the epochs before it and keeps that one as it is (mutant:
// the search for the epoch holding the start taking the one before it,
// which then starts at the same offset).
func TestDeleteRecordsAtEpochStart(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	defer l.Close()
	appendEpochs(t, l, 0, 0, 1, 1, 2, 2)
	_, err := l.DeleteRecordsBefore(context.Background(), 2)
	require.NoError(t, err)
	require.Equal(t, []EpochEntry{{1, 2}, {2, 4}}, l.LeaderEpochs())
	_, err = l.DeleteRecordsBefore(context.Background(), 5)
	require.NoError(t, err)
	require.Equal(t, []EpochEntry{{2, 5}}, l.LeaderEpochs())
}
