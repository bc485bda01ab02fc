package runnel

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// Edges of Kafka's broker semantics that no other test pinned (found by
// a hunt through the public API on 2026-12-07). Each test names the Kafka
// source its rule comes from, or the paragraph of docs/details.md,
// "Answers that differ from Kafka's", where runnel differs on purpose.

// edgeIdemBatch is one uncompressed batch of idempotent producer pid at
// epoch and base sequence seq, of a record per value, keyed key (nil: no
// key) and stamped now.
func edgeIdemBatch(t *testing.T, pid int64, epoch int16, seq int32, key []byte, values ...string) []byte {
	t.Helper()
	var bl record.Builder
	bl.SetProducer(pid, epoch, seq)
	for _, v := range values {
		bl.Append(time.Now().UnixMilli(), key, []byte(v), nil)
	}
	out, err := bl.AppendTo(nil, compression.None)
	require.NoError(t, err)
	return out
}

// edgeLogEnd is partition 0's log end offset of topic.
func edgeLogEnd(t *testing.T, b *Broker, topic string) int64 {
	t.Helper()
	info, err := b.DescribeTopic(context.Background(), topic)
	require.NoError(t, err)
	return info.Partitions[0].LogEndOffset
}

// TestKafkaRetryIsValidatedBeforeItIsADuplicate: Kafka's UnifiedLog.append
// checks a produced batch's size (analyzeAndValidateRecords) and runs
// LogValidator (keys on a compacted topic, timestamps) before it looks
// the batch up among its producer's last batches
// (analyzeAndValidateProducerState, whose findDuplicateBatch answers a
// retry with the first append's offsets). So a retry of a batch the
// partition has is refused when the topic's config has since changed to
// refuse it: MESSAGE_TOO_LARGE once max.message.bytes is below its size,
// INVALID_RECORD once the topic is compacted and the batch has a record
// without a key. Nothing is appended and the producer's state stays as it
// was: with the config back, the same retry is a duplicate again.
// (docs/details.md, "Producer timestamps", says the same of the timestamp
// bounds, which TestTimestampBounds* cover.)
func TestKafkaRetryIsValidatedBeforeItIsADuplicate(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name    string
		key     []byte
		value   string
		change  func(*log.Config)
		restore func(*log.Config)
		code    int16
		err     error
	}{
		{
			name: "max.message.bytes lowered below the batch", key: []byte("k"), value: string(bytes.Repeat([]byte("x"), 500)),
			change:  func(c *log.Config) { c.MaxMessageBytes = 200 },
			restore: func(c *log.Config) { c.MaxMessageBytes = 0 },
			code:    10, err: log.ErrRecordTooLarge, // MESSAGE_TOO_LARGE
		},
		{
			name: "the topic compacted, a record without a key", key: nil, value: "v",
			change:  func(c *log.Config) { c.CleanupPolicy = log.Compact },
			restore: func(c *log.Config) { c.CleanupPolicy = log.Delete },
			code:    87, err: log.ErrInvalidRecord, // INVALID_RECORD
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := open(t, Config{})
			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
			pid, epoch, err := b.InitProducerID(ctx)
			require.NoError(t, err)
			send := func() (api.ProduceResponse, error) {
				return b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: edgeIdemBatch(t, pid, epoch, 0, c.key, c.value)})
			}
			first, err := send()
			require.NoError(t, err)
			require.False(t, first.Duplicate)

			require.NoError(t, b.UpdateTopicConfig(ctx, "t", c.change))
			resp, err := send()
			require.ErrorIs(t, err, c.err, "the retry is refused, not answered as a duplicate: %+v", resp)
			require.EqualValues(t, c.code, api.Code(err))
			require.False(t, resp.Duplicate)
			require.EqualValues(t, 1, edgeLogEnd(t, b, "t"), "nothing appended")

			require.NoError(t, b.UpdateTopicConfig(ctx, "t", c.restore))
			resp, err = send()
			require.NoError(t, err)
			require.True(t, resp.Duplicate, "the producer's state kept the batch")
			require.Equal(t, first.BaseOffset, resp.BaseOffset)
			require.EqualValues(t, 1, edgeLogEnd(t, b, "t"))
		})
	}
}

// TestKafkaDuplicateIsTheSequenceRange: Kafka's ProducerStateEntry
// .findDuplicateBatch matches a batch to one of its producer's last 5 by
// epoch and first and last sequence alone (batchWithSequenceRange): a
// batch of other records under a remembered range is answered as that
// batch's duplicate, with its offsets, and is not appended. The records a
// consumer reads are the first batch's.
func TestKafkaDuplicateIsTheSequenceRange(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	pid, epoch, err := b.InitProducerID(ctx)
	require.NoError(t, err)
	for seq, vals := range [][]string{{"a", "b"}, {"c"}} {
		_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: edgeIdemBatch(t, pid, epoch, int32(2*seq), []byte("k"), vals...)})
		require.NoError(t, err)
	}
	// Sequences 0-1 at offsets 0-1, sequence 2 at offset 2.
	resp, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: edgeIdemBatch(t, pid, epoch, 0, []byte("other"), "x", "y")})
	require.NoError(t, err)
	require.True(t, resp.Duplicate)
	require.EqualValues(t, 0, resp.BaseOffset)
	require.EqualValues(t, 3, edgeLogEnd(t, b, "t"), "nothing appended")

	// The same first sequence with another last one is no duplicate: out
	// of order (ProducerAppendInfo.checkSequence).
	_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: edgeIdemBatch(t, pid, epoch, 0, []byte("k"), "x")})
	require.ErrorIs(t, err, log.ErrOutOfOrderSequence)

	fr, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t"}}})
	require.NoError(t, err)
	require.NoError(t, fr.Partitions[0].Err)
	require.Equal(t, []string{"a", "b", "c"}, values(t, fr.Partitions[0].Records))
}

// TestKafkaRecordOffsetDeltasOutOfOrder: a produced batch whose records'
// offset deltas are not 0, 1, ..., n-1 (its count and last offset delta
// agreeing) is refused with INVALID_RECORD, and nothing is written —
// runnel's documented difference (docs/details.md, "Answers that differ
// from Kafka's"): Kafka's LogValidator rebuilds such a compressed batch
// with consecutive offsets (validateMessagesAndAssignOffsetsCompressed:
// "Some older clients do not implement the V1 internal offsets
// correctly", inPlaceAssignment false) and stores an uncompressed one as
// sent (assignOffsetsNonCompressed reads no delta), where its consumers
// then read the records at the offsets the deltas give. runnel stores a
// batch as its producer encoded it, and takes no batch whose records
// would read at offsets other than their own.
func TestKafkaRecordOffsetDeltasOutOfOrder(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	for _, codec := range []compression.Codec{compression.None, compression.Gzip, compression.Zstd} {
		for _, deltas := range [][]int64{{0, 0, 0}, {0, 2, 1}, {1, 1, 2}} {
			name := fmt.Sprintf("%v-%d%d%d", codec, deltas[0], deltas[1], deltas[2])
			t.Run(name, func(t *testing.T) {
				require.NoError(t, b.CreateTopic(ctx, name, log.TopicConfig{Partitions: 1}))
				var bl record.Builder
				for i, d := range deltas {
					bl.AppendAt(d, time.Now().UnixMilli(), []byte{'k', byte('0' + i)}, []byte("v"), nil)
				}
				bl.SetLastOffsetDelta(int32(len(deltas) - 1))
				data, err := bl.AppendTo(nil, codec)
				require.NoError(t, err)
				require.EqualValues(t, len(deltas), record.Batch(data).NumRecords())
				require.EqualValues(t, len(deltas)-1, record.Batch(data).LastOffsetDelta())

				resp, err := b.Produce(ctx, &api.ProduceRequest{Topic: name, Acks: api.AcksAll, Batches: data})
				require.ErrorIs(t, err, log.ErrInvalidRecord, "answered %+v", resp)
				require.EqualValues(t, 87, api.Code(err))
				require.False(t, api.IsRetriable(err))
				require.EqualValues(t, 0, edgeLogEnd(t, b, name))
			})
		}
	}
}

// TestKafkaTransactionalBatchRefused: runnel has no transactions, and
// refuses a transactional batch (as an idempotent producer with a
// transactional.id sends them) with INVALID_RECORD, writing nothing and
// leaving the producer's sequence where it was: its next batch at
// sequence 0, not transactional, is taken, at offset 0, and is no
// duplicate. Kafka's broker refuses such a produce request, without a
// transactional id (runnel's api.ProduceRequest has none), with
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED (KafkaApis.handleProduceRequest);
// docs/details.md, "Answers that differ from Kafka's", says so.
func TestKafkaTransactionalBatchRefused(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	pid, epoch, err := b.InitProducerID(ctx)
	require.NoError(t, err)
	for _, codec := range []compression.Codec{compression.None, compression.LZ4} {
		var bl record.Builder
		bl.SetProducer(pid, epoch, 0)
		bl.SetTransactional(true)
		bl.Append(time.Now().UnixMilli(), []byte("k"), []byte("v"), nil)
		data, err := bl.AppendTo(nil, codec)
		require.NoError(t, err)
		require.True(t, record.Batch(data).IsTransactional())
		resp, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: data})
		require.ErrorIs(t, err, log.ErrInvalidRecord, "%v: answered %+v", codec, resp)
		require.EqualValues(t, 87, api.Code(err))
		require.EqualValues(t, 0, edgeLogEnd(t, b, "t"))
	}
	resp, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: edgeIdemBatch(t, pid, epoch, 0, []byte("k"), "v")})
	require.NoError(t, err)
	require.False(t, resp.Duplicate)
	require.EqualValues(t, 0, resp.BaseOffset)
}
