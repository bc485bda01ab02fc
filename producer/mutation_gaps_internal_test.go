package producer

import (
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// Tests of the producer's internals that close gaps of the mutation pass
// (see mutation_gaps_test.go).

// A partition that a topic loses (its count went down: deleted and
// created again with fewer, or a broker that had not caught up) and gets
// back is the same one, with its sequence numbers and its buffered
// batches, also when the count grows past what it was at once: follow
// makes only the partitions the topic never had.
func TestFollowKeepsPartitionsThatComeBack(t *testing.T) {
	p, err := New(&manyClient{n: 3})
	require.NoError(t, err)
	defer p.Close()
	ts, err := p.topic(context.Background(), "t", true)
	require.NoError(t, err)
	had := slices.Clone(*ts.parts.Load())
	require.Len(t, had, 3)

	ts.follow(1, ts.looks.Add(1))
	require.Equal(t, had[:1], *ts.parts.Load())
	ts.follow(5, ts.looks.Add(1))
	now := *ts.parts.Load()
	require.Len(t, now, 5)
	for i, pp := range had {
		require.True(t, pp == now[i], "partition %d was made anew", i)
	}
	for i, pp := range now {
		require.Equal(t, int32(i), pp.id)
	}
	require.Equal(t, now, *ts.all.Load())
}

// An empty buffer takes a record larger than MaxBufferedBytes at once,
// also without waiting (TryProduce): refused there, it would be refused
// for ever, and a blocking Produce would wait for room that never comes.
// (The mutation pass killed the mutant that refuses it only by the
// package's hang; this fails it with an error.)
func TestEmptyBufferTakesOversizedRecordWithoutWaiting(t *testing.T) {
	p, _ := spaceProducer(t, MaxBufferedBytes(100))
	require.NoError(t, p.reserve(context.Background(), 500, false))
	requireSpace(t, p, 1, 500, 0)
	require.ErrorIs(t, p.reserve(context.Background(), 1, false), ErrMaxBuffered, "the buffer is over its bound now")
	p.release(1, 500)
	require.NoError(t, p.reserve(context.Background(), 1, false))
}
