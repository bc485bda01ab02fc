package runnel

import (
	"context"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestDeleteRecordsAgainstTheHighWatermark: DeleteRecords answers as
// Kafka's Partition.deleteRecordsOnLeader does, with the high watermark
// below the log end (appends whose fsync nobody has waited for yet): -1
// deletes up to the high watermark, not the log end; an offset past the
// high watermark is OFFSET_OUT_OF_RANGE and deletes nothing; an offset at
// or below the log start changes nothing and returns the log start (the
// low watermark). On a topic compacted only, the policy is checked before
// the offset: POLICY_VIOLATION, whatever the offset.
func TestDeleteRecordsAgainstTheHighWatermark(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	require.NoError(t, b.CreateTopic(ctx, "c", log.TopicConfig{Partitions: 1, Config: log.Config{CleanupPolicy: log.Compact}}))
	produce(t, b, "t", 0, "a", "b", "c")
	_, ack, err := b.ProduceAsync(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, "d", "e")})
	require.NoError(t, err)
	require.NotNil(t, ack, "SyncAlways: the append waits for its fsync")
	offsets := func() PartitionInfo {
		info, err := b.DescribeTopic(ctx, "t")
		require.NoError(t, err)
		return info.Partitions[0]
	}
	require.Equal(t, PartitionInfo{HighWatermark: 3, LogEndOffset: 5}, withoutSize(offsets()))

	low, err := b.DeleteRecords(ctx, "t", 0, api.Latest)
	require.NoError(t, err)
	require.EqualValues(t, 3, low, "-1 is the high watermark")
	_, err = b.DeleteRecords(ctx, "t", 0, 4)
	require.ErrorIs(t, err, log.ErrOffsetOutOfRange)
	require.EqualValues(t, 1, api.Code(err))
	for _, off := range []int64{0, 1, 3} {
		low, err = b.DeleteRecords(ctx, "t", 0, off)
		require.NoError(t, err, "offset %d", off)
		require.EqualValues(t, 3, low, "offset %d: at or below the log start, the low watermark as it is", off)
	}
	require.Equal(t, PartitionInfo{LogStartOffset: 3, HighWatermark: 3, LogEndOffset: 5}, withoutSize(offsets()))

	require.NoError(t, ack.Wait(ctx))
	low, err = b.DeleteRecords(ctx, "t", 0, 5)
	require.NoError(t, err)
	require.EqualValues(t, 5, low)
	require.Equal(t, PartitionInfo{LogStartOffset: 5, HighWatermark: 5, LogEndOffset: 5}, withoutSize(offsets()))
	listed, err := b.ListOffset(ctx, "t", 0, api.Earliest)
	require.NoError(t, err)
	require.EqualValues(t, 5, listed.Offset)

	produce(t, b, "c", 0, "a")
	for _, off := range []int64{api.Latest, 0, 1, 1000, -7} {
		_, err := b.DeleteRecords(ctx, "c", 0, off)
		require.ErrorIs(t, err, ErrPolicyViolation, "offset %d", off)
	}
}

func withoutSize(p PartitionInfo) PartitionInfo { p.Size = 0; return p }

// TestDeleteRecordsOutOfRangeNamesThePartition: DeleteRecords' error for
// a negative offset (but api.Latest) names the partition, as its error for
// an offset above the high watermark does; it said "delete records before
// -5, a negative offset", of no partition. Nothing is deleted.
func TestDeleteRecordsOutOfRangeNamesThePartition(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))
	produce(t, b, "t", 1, "a", "b")
	for _, off := range []int64{-5, api.Earliest, 3} {
		_, err := b.DeleteRecords(ctx, "t", 1, off)
		require.ErrorIs(t, err, log.ErrOffsetOutOfRange, "offset %d", off)
		require.ErrorContains(t, err, "t-1", "offset %d", off)
	}
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Zero(t, info.Partitions[1].LogStartOffset)
}

// TestRefusedProduceAnswersNoOffsets: a refused produce answers base
// offset, log append time and log start offset -1, as Kafka's
// PartitionResponse for an error does (INVALID_OFFSET, NO_TIMESTAMP,
// INVALID_OFFSET), not a log start offset of 0 that the partition may
// not have.
func TestRefusedProduceAnswersNoOffsets(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	produce(t, b, "t", 0, "a", "b")
	_, err := b.DeleteRecords(ctx, "t", 0, 2)
	require.NoError(t, err)
	bad := batch(t, "x")
	bad[len(bad)-1] ^= 1
	for _, req := range []*api.ProduceRequest{
		{Topic: "t", Acks: api.AcksAll, Batches: bad},
		{Topic: "t", Partition: 7, Acks: api.AcksAll, Batches: batch(t, "x")},
		{Topic: "t", Acks: 2, Batches: batch(t, "x")},
	} {
		resp, err := b.Produce(ctx, req)
		require.Error(t, err)
		require.Equal(t, api.ProduceResponse{BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1}, resp, "%v", err)
	}
	resp := produce(t, b, "t", 0, "c")
	require.EqualValues(t, 2, resp.LogStartOffset)
}
