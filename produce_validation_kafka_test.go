package runnel

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// TestProduceHeaderCountsAreInvalidRecord: a batch whose CRC holds but
// whose header disagrees with itself — a record count that is not its
// offset range (last offset delta + 1), a negative count or delta, more
// records than its bytes can hold, a base offset whose last offset
// overflows — is refused as Kafka's broker refuses it: LogValidator's
// validateBatch throws InvalidRecordException (INVALID_RECORD, 87, not
// retriable) for the offset range and count, and the records that are not
// there fail the record iterator the same way. Not CORRUPT_MESSAGE, which
// a producer retries until its delivery timeout: the batch never changes.
// Kafka checks the base offset first, before the batch's size and CRC
// (UnifiedLog.analyzeAndValidateRecords), so a batch with a base offset
// other than 0 is INVALID_RECORD whatever its CRC; a CRC that fails is
// CORRUPT_MESSAGE before any count is looked at. The log is unchanged
// after each.
func TestProduceHeaderCountsAreInvalidRecord(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	const (
		offLastDelta = 23
		offCount     = 57
	)
	put := func(d []byte, off int, v uint32) { binary.BigEndian.PutUint32(d[off:], v) }
	sealed := func(d []byte) []byte { record.Batch(d).UpdateCRC(); return d }
	for _, tc := range []struct {
		name string
		data []byte
		code int16
	}{
		{"count 3, last offset delta 1", sealed(func() []byte { d := batch(t, "a", "b"); put(d, offCount, 3); return d }()), 87},
		{"count 1, last offset delta 1", sealed(func() []byte { d := batch(t, "a", "b"); put(d, offCount, 1); return d }()), 87},
		{"count -1", sealed(func() []byte { d := batch(t, "a", "b"); put(d, offCount, math.MaxUint32); return d }()), 87},
		{"count 0, last offset delta -1", sealed(func() []byte {
			d := batch(t, "a")
			put(d, offCount, 0)
			put(d, offLastDelta, math.MaxUint32)
			return d
		}()), 87},
		{"count 0, last offset delta 0", sealed(func() []byte { d := batch(t, "a"); put(d, offCount, 0); return d }()), 87},
		{"count 100 in the bytes of one record", sealed(func() []byte {
			d := batch(t, "a")
			put(d, offCount, 100)
			put(d, offLastDelta, 99)
			return d
		}()), 87},
		{"count and delta MaxInt32", sealed(func() []byte {
			d := batch(t, "a")
			put(d, offCount, math.MaxInt32)
			put(d, offLastDelta, math.MaxInt32-1)
			return d
		}()), 87},
		{"base offset MaxInt64", func() []byte { d := batch(t, "a", "b"); record.Batch(d).SetBaseOffset(math.MaxInt64); return d }(), 87},
		{"base offset 5 and a bad CRC", func() []byte {
			d := batch(t, "a")
			record.Batch(d).SetBaseOffset(5)
			d[len(d)-1] ^= 1
			return d
		}(), 87},
		{"count 3, last offset delta 1, bad CRC", func() []byte { d := batch(t, "a", "b"); put(d, offCount, 3); return d }(), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: tc.data})
			require.Error(t, err)
			require.Equal(t, tc.code, api.Code(err), "%v", err)
			if tc.code == 87 {
				require.ErrorIs(t, err, log.ErrInvalidRecord)
				require.False(t, api.IsRetriable(err))
			} else {
				require.ErrorIs(t, err, record.ErrCorrupt)
			}
			info, err := b.DescribeTopic(ctx, "t")
			require.NoError(t, err)
			require.Zero(t, info.Partitions[0].LogEndOffset, "nothing appended")
		})
	}
	// A good batch is still taken, and is all there is.
	produce(t, b, "t", 0, "x")
	resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t"}}})
	require.NoError(t, err)
	require.Equal(t, []string{"x"}, values(t, resp.Partitions[0].Records))
}

// TestProduceAcceptsWhatKafkaAccepts: batches that look odd but that
// Kafka's broker takes are taken, and read back as they were sent (but
// for the base offset and leader epoch the log assigns, outside the CRC,
// and the max timestamp it corrects, as Kafka's does): attribute bits
// Kafka does not use (it ignores them); timestamps before the epoch and
// at the ends of an int64 on a topic whose message.timestamp.after.max.ms
// is unlimited (Kafka's Long.MAX_VALUE: its default before 4.0), as
// message.timestamp.before.max.ms is by default (Kafka 4 refuses
// MaxInt64 by its default after.max.ms of an hour, and MinInt64 too, by a
// long overflow: see docs/details.md, "Topic configs"); an idempotent
// producer's batch sent with acks 0 or 1 (Kafka's broker does not tie
// idempotence to acks; the producer client does); sequence numbers that
// wrap past MaxInt32 to 0, the retry of the batch that wrapped answered
// as a duplicate; and a compressed batch under max.message.bytes whose
// records are over it uncompressed (Kafka compares the batch as sent).
func TestProduceAcceptsWhatKafkaAccepts(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{MaxMessageBytes: 1000, TimestampAfterMax: -1}}))
	pid, epoch, err := b.InitProducerID(ctx)
	require.NoError(t, err)
	build := func(codec compression.Codec, seq int32, ts []int64, value []byte) []byte {
		var bl record.Builder
		bl.Reset()
		if seq >= 0 {
			bl.SetProducer(pid, epoch, seq)
		}
		for _, ts := range ts {
			bl.Append(ts, []byte("k"), value, nil)
		}
		out, err := bl.AppendTo(nil, codec)
		require.NoError(t, err)
		return out
	}
	withAttrs := func(d []byte, bits uint16) []byte {
		binary.BigEndian.PutUint16(d[21:], uint16(record.Batch(d).Attributes())|bits)
		record.Batch(d).UpdateCRC()
		return d
	}
	now := time.Now().UnixMilli()
	var sent [][]byte
	var offsets []int64
	for _, tc := range []struct {
		name  string
		acks  api.Acks
		data  []byte
		dup   bool
		first int64 // the duplicate's original base offset
	}{
		{name: "attribute bit 8", acks: api.AcksAll, data: withAttrs(build(compression.None, -1, []int64{now}, []byte("v")), 1<<8)},
		{name: "attribute bit 15", acks: api.AcksAll, data: withAttrs(build(compression.None, -1, []int64{now}, []byte("v")), 1<<15)},
		{name: "timestamp -5", acks: api.AcksAll, data: build(compression.None, -1, []int64{-5, -7}, []byte("v"))},
		{name: "timestamp MinInt64", acks: api.AcksAll, data: build(compression.None, -1, []int64{math.MinInt64}, []byte("v"))},
		{name: "timestamp MaxInt64", acks: api.AcksAll, data: build(compression.None, -1, []int64{math.MaxInt64}, []byte("v"))},
		{name: "idempotent, acks 0, sequence up to MaxInt32 and past it", acks: api.AcksNone, data: build(compression.None, math.MaxInt32-1, []int64{now, now, now}, []byte("v"))},
		{name: "idempotent, acks 1, sequence 1 after the wrap", acks: api.AcksLeader, data: build(compression.None, 1, []int64{now, now}, []byte("v"))},
		{name: "the wrapped batch again", acks: api.AcksAll, data: build(compression.None, math.MaxInt32-1, []int64{now, now, now}, []byte("v")), dup: true, first: 6},
		{name: "gzip, 5000 bytes of records in fewer than 1000", acks: api.AcksAll, data: build(compression.Gzip, -1, []int64{now}, bytes.Repeat([]byte("a"), 5000))},
	} {
		resp, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: tc.acks, Batches: tc.data})
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.dup, resp.Duplicate, tc.name)
		if tc.dup {
			require.Equal(t, tc.first, resp.BaseOffset, tc.name)
			continue
		}
		require.NoError(t, record.Batch(tc.data).Validate(0), "%s: the broker's rewrite keeps the CRC", tc.name)
		sent = append(sent, tc.data)
		offsets = append(offsets, resp.BaseOffset)
	}
	require.Equal(t, []int64{0, 1, 2, 4, 5, 6, 9, 11}, offsets)
	var got [][]byte
	for off := int64(0); off < 12; {
		resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Offset: off}}})
		require.NoError(t, err)
		require.NoError(t, resp.Partitions[0].Err)
		for bt, err := range record.Batches(resp.Partitions[0].Records) {
			require.NoError(t, err)
			require.NoError(t, bt.Validate(0))
			got = append(got, bytes.Clone(bt))
			off = bt.NextOffset()
		}
	}
	require.Equal(t, sent, got, "every batch read back as the log wrote it")
	// The timestamps, as sent.
	var ts []int64
	for _, d := range got[2:5] {
		for r, err := range record.Batch(d).Records() {
			require.NoError(t, err)
			ts = append(ts, r.Timestamp.UnixMilli())
		}
	}
	require.Equal(t, []int64{-5, -7, math.MinInt64, math.MaxInt64}, ts)
	require.EqualValues(t, record.NoTimestamp, record.Batch(got[2]).MaxTimestamp(), "as Kafka's: the largest from -1 (no timestamp)")
	require.EqualValues(t, 1<<8, record.Batch(got[0]).Attributes()&(1<<8))
}
