package consumer_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// fairBroker opens a memory broker with topic "t" of parts partitions,
// partition 0 holding hot batches of about 600 bytes each, the others
// cold batches each.
func fairBroker(t *testing.T, parts, hot, cold int) *runnel.Broker {
	b, err := runnel.Open(runnel.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: parts}))
	v := string(bytes.Repeat([]byte("x"), 600))
	for p := range parts {
		n := cold
		if p == 0 {
			n = hot
		}
		for range n {
			_, err := b.Produce(t.Context(), &api.ProduceRequest{Topic: "t", Partition: int32(p), Acks: api.AcksAll, Batches: oneRecord(t, v)})
			require.NoError(t, err)
		}
	}
	return b
}

// pollCounts polls n times and counts the records per partition.
func pollCounts(t *testing.T, c *consumer.Consumer, n int) map[int32]int {
	got := map[int32]int{}
	for range n {
		fs, err := c.Poll(t.Context())
		require.NoError(t, err)
		for _, f := range fs {
			require.NoError(t, f.Err)
			got[f.Partition] += f.NumRecords()
		}
	}
	return got
}

func fairConsumer(t *testing.T, b *runnel.Broker, parts int) *consumer.Consumer {
	c, err := consumer.New(b, consumer.FetchMaxBytes(1024), consumer.FetchMaxWait(0))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	for p := range parts {
		require.NoError(t, c.Assign("t", int32(p), consumer.Start()))
	}
	return c
}

// A hot partition's backlog, larger than FetchMaxBytes, does not starve
// the others: each comes first in turn.
func TestFairHotPartitionPoll(t *testing.T) {
	const parts = 4
	b := fairBroker(t, parts, 400, 5)
	c := fairConsumer(t, b, parts)
	got := pollCounts(t, c, 5*parts)
	for p := int32(1); p < parts; p++ {
		require.Equal(t, 5, got[p], "partition %d in %v", p, got)
	}
}

// A partition paused and resumed rejoins the rotation.
func TestFairPauseResumeRejoins(t *testing.T) {
	const parts = 4
	b := fairBroker(t, parts, 400, 5)
	c := fairConsumer(t, b, parts)
	tp1 := api.TopicPartition{Topic: "t", Partition: 1}
	c.Pause(tp1)
	got := pollCounts(t, c, 3*parts)
	require.Zero(t, got[1])
	c.Resume(tp1)
	got = pollCounts(t, c, 5*parts)
	require.Equal(t, 5, got[1], "%v", got)
}

// Unassign and Assign of a partition between polls does not starve the
// others.
func TestFairAssignChurn(t *testing.T) {
	const parts = 4
	b := fairBroker(t, parts, 400, 5)
	c := fairConsumer(t, b, parts)
	got := map[int32]int{}
	for i := range 8 * parts {
		// churn a different partition each time, at its position
		churn := int32(i % parts)
		pos, ok := c.Position("t", churn)
		c.Unassign("t", churn)
		at := consumer.Start()
		if ok {
			at = consumer.At(pos)
		}
		require.NoError(t, c.Assign("t", churn, at))
		for p, n := range pollCounts(t, c, 1) {
			got[p] += n
		}
	}
	for p := int32(1); p < parts; p++ {
		require.Equal(t, 5, got[p], "partition %d in %v", p, got)
	}
}

// The Records iterator delivers from every partition when one is hot.
func TestFairRecordsIterator(t *testing.T) {
	const parts = 4
	b := fairBroker(t, parts, 400, 5)
	c := fairConsumer(t, b, parts)
	ctx, cancel := context.WithTimeout(t.Context(), testkit.HangGuard)
	defer cancel()
	got := map[int32]int{}
	n := 0
	for r, err := range c.Records(ctx) {
		require.NoError(t, err)
		got[r.Partition]++
		n++
		if n == 3*5+40 {
			break
		}
	}
	for p := int32(1); p < parts; p++ {
		require.Equal(t, 5, got[p], "partition %d in %v", p, got)
	}
}

// A partition whose next batch is larger than FetchMaxPartitionBytes gets
// it at its turn at the head, however hot the others are.
func TestFairLargeBatchBehindHot(t *testing.T) {
	const parts = 3
	b := fairBroker(t, parts, 400, 0)
	big := string(bytes.Repeat([]byte("y"), 5000))
	for p := int32(1); p < parts; p++ {
		_, err := b.Produce(t.Context(), &api.ProduceRequest{Topic: "t", Partition: p, Acks: api.AcksAll, Batches: oneRecord(t, big)})
		require.NoError(t, err)
	}
	c, err := consumer.New(b, consumer.FetchMaxPartitionBytes(1024), consumer.FetchMaxWait(0))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	for p := range parts {
		require.NoError(t, c.Assign("t", int32(p), consumer.Start()))
	}
	got := pollCounts(t, c, parts)
	for p := int32(1); p < parts; p++ {
		require.Equal(t, 1, got[p], "partition %d in %v", p, got)
	}
}

// A paused partition gives up its turn at the head of the fetch: each
// partition fetched comes first as often. (The rotation ran over every
// assignment, paused or not, so the partition after a paused one came
// first at its own turn and at the paused one's: twice the others.)
func TestFairPausedPartitionGivesUpItsTurn(t *testing.T) {
	const parts, rounds = 4, 5
	b := fairBroker(t, parts, 4*rounds, 4*rounds)
	// Every partition is hot: a fetch of 1 KiB answers one batch, the
	// first partition's.
	c := fairConsumer(t, b, parts)
	c.Pause(api.TopicPartition{Topic: "t", Partition: 1})
	got := pollCounts(t, c, 3*rounds)
	require.Equal(t, map[int32]int{0: rounds, 2: rounds, 3: rounds}, got)
}
