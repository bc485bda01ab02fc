package runnel

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// malformedRecordBatch is a batch of one record whose header and CRC are
// sound but whose record is not: its header count claims two headers
// where there are no bytes for them.
func malformedRecordBatch(t testing.TB) []byte {
	t.Helper()
	data := batch(t, "x")
	require.EqualValues(t, 0, data[len(data)-1], "the record ends with its header count, 0")
	data[len(data)-1] = 4 // zigzag varint 2
	record.Batch(data).UpdateCRC()
	return data
}

// TestBrokerBadInput calls every method of the Broker with bad input: each
// returns an error matching the sentinel its doc lists, nothing panics,
// and afterwards every record acknowledged before is still there and the
// broker still takes good input.
func TestBrokerBadInput(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2, Config: log.Config{MaxMessageBytes: 1000}}))
	require.NoError(t, b.CreateTopic(ctx, "compacted", log.TopicConfig{Partitions: 1, Config: log.Config{CleanupPolicy: log.Compact}}))
	require.NoError(t, b.CreateTopic(ctx, "gone", log.TopicConfig{Partitions: 1}))
	require.NoError(t, b.DeleteTopic(ctx, "gone"))
	acked := []string{"a", "b", "c"}
	produce(t, b, "t", 0, acked...)

	good := func() *api.ProduceRequest {
		return &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, "bad")}
	}
	withReq := func(mod func(*api.ProduceRequest)) *api.ProduceRequest { r := good(); mod(r); return r }
	produceErr := func(req *api.ProduceRequest) func() error {
		return func() error {
			_, err := b.Produce(ctx, req)
			if req == nil {
				return err
			}
			// ProduceAsync answers the same; its request is a copy, as the
			// broker may have rewritten the first one's bytes.
			cp := *req
			cp.Batches = append([]byte(nil), req.Batches...)
			_, ack, aerr := b.ProduceAsync(ctx, &cp)
			if ack != nil {
				ack.Wait(ctx)
			}
			if (err == nil) != (aerr == nil) || api.Name(err) != api.Name(aerr) {
				return fmt.Errorf("Produce said %v, ProduceAsync %v", err, aerr)
			}
			return err
		}
	}
	listErr := func(topic string, p int32, ts int64) func() error {
		return func() error { _, err := b.ListOffset(ctx, topic, p, ts); return err }
	}
	fetchPartErr := func(fp api.FetchPartition) func() error {
		return func() error {
			resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{fp}})
			if err != nil {
				return err
			}
			return resp.Partitions[0].Err
		}
	}
	deleteErr := func(topic string, p int32, off int64) func() error {
		return func() error { _, err := b.DeleteRecords(ctx, topic, p, off); return err }
	}
	tooLarge := batch(t, strings.Repeat("v", 2000))

	for _, tc := range []struct {
		name string
		call func() error
		want error
	}{
		// Topic administration.
		{"CreateTopic empty name", func() error { return b.CreateTopic(ctx, "", log.TopicConfig{Partitions: 1}) }, ErrInvalidTopic},
		{"CreateTopic bad char", func() error { return b.CreateTopic(ctx, "a b", log.TopicConfig{Partitions: 1}) }, ErrInvalidTopic},
		{"CreateTopic too long", func() error { return b.CreateTopic(ctx, strings.Repeat("x", 250), log.TopicConfig{Partitions: 1}) }, ErrInvalidTopic},
		{"CreateTopic device name", func() error { return b.CreateTopic(ctx, "nul", log.TopicConfig{Partitions: 1}) }, ErrInvalidTopic},
		{"CreateTopic collides in case", func() error { return b.CreateTopic(ctx, "T", log.TopicConfig{Partitions: 1}) }, ErrInvalidTopic},
		{"CreateTopic exists", func() error { return b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}) }, ErrTopicExists},
		{"CreateTopic zero partitions", func() error { return b.CreateTopic(ctx, "n", log.TopicConfig{}) }, ErrInvalidPartitions},
		{"CreateTopic -2 partitions", func() error { return b.CreateTopic(ctx, "n", log.TopicConfig{Partitions: -2}) }, ErrInvalidPartitions},
		{"CreateTopic more partitions than int32", func() error {
			return b.CreateTopic(ctx, "n", log.TopicConfig{Partitions: testkit.PastInt32(2)})
		}, ErrInvalidPartitions},
		{"CreateTopic bad config", func() error {
			return b.CreateTopic(ctx, "n", log.TopicConfig{Partitions: 1, Config: log.Config{MaxMessageBytes: 10}})
		}, log.ErrInvalidConfig},
		{"CreateTopic NaN dirty ratio", func() error {
			return b.CreateTopic(ctx, "n", log.TopicConfig{Partitions: 1, Config: log.Config{MinCleanableDirtyRatio: math.NaN()}})
		}, log.ErrInvalidConfig},
		{"CreatePartitions fewer", func() error { return b.CreatePartitions(ctx, "t", 1) }, ErrInvalidPartitions},
		{"CreatePartitions negative", func() error { return b.CreatePartitions(ctx, "t", -1) }, ErrInvalidPartitions},
		{"CreatePartitions more than int32", func() error { return b.CreatePartitions(ctx, "t", testkit.PastInt32(2)) }, ErrInvalidPartitions},
		{"CreatePartitions unknown", func() error { return b.CreatePartitions(ctx, "nope", 3) }, ErrUnknownTopic},
		{"CreatePartitions deleted", func() error { return b.CreatePartitions(ctx, "gone", 3) }, ErrUnknownTopic},
		{"CreatePartitions empty name", func() error { return b.CreatePartitions(ctx, "", 3) }, ErrUnknownTopic},
		{"DeleteTopic unknown", func() error { return b.DeleteTopic(ctx, "nope") }, ErrUnknownTopic},
		{"DeleteTopic deleted", func() error { return b.DeleteTopic(ctx, "gone") }, ErrUnknownTopic},
		{"DeleteTopic empty name", func() error { return b.DeleteTopic(ctx, "") }, ErrUnknownTopic},
		{"DescribeTopic unknown", func() error { _, err := b.DescribeTopic(ctx, "nope"); return err }, ErrUnknownTopic},
		{"DescribeTopic invalid", func() error { _, err := b.DescribeTopic(ctx, ".."); return err }, ErrInvalidTopic},
		{"AlterTopicConfig unknown", func() error { return b.AlterTopicConfig(ctx, "nope", log.Config{}) }, ErrUnknownTopic},
		{"AlterTopicConfig bad config", func() error { return b.AlterTopicConfig(ctx, "t", log.Config{SegmentBytes: 3}) }, log.ErrInvalidConfig},
		{"AlterTopicConfig bad policy", func() error { return b.AlterTopicConfig(ctx, "t", log.Config{CleanupPolicy: 9}) }, log.ErrInvalidConfig},
		{"UpdateTopicConfig nil update", func() error { return b.UpdateTopicConfig(ctx, "t", nil) }, api.ErrInvalidRequest},
		{"UpdateTopicConfig unknown", func() error { return b.UpdateTopicConfig(ctx, "nope", func(*log.Config) {}) }, ErrUnknownTopic},
		{"UpdateTopicConfig bad value", func() error {
			return b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.SegmentIndexBytes = 1 })
		}, log.ErrInvalidConfig},

		// Records.
		{"DeleteRecords past the end", deleteErr("t", 0, 100), log.ErrOffsetOutOfRange},
		{"DeleteRecords -2", deleteErr("t", 0, -2), log.ErrOffsetOutOfRange},
		{"DeleteRecords MinInt64", deleteErr("t", 0, math.MinInt64), log.ErrOffsetOutOfRange},
		{"DeleteRecords MaxInt64", deleteErr("t", 0, math.MaxInt64), log.ErrOffsetOutOfRange},
		{"DeleteRecords negative partition", deleteErr("t", -1, 0), ErrUnknownTopic},
		{"DeleteRecords partition past the count", deleteErr("t", 2, 0), ErrUnknownTopic},
		{"DeleteRecords MaxInt32 partition", deleteErr("t", math.MaxInt32, 0), ErrUnknownTopic},
		{"DeleteRecords unknown topic", deleteErr("nope", 0, 0), ErrUnknownTopic},
		{"DeleteRecords deleted topic", deleteErr("gone", 0, 0), ErrUnknownTopic},
		{"DeleteRecords invalid name", deleteErr("", 0, 0), ErrInvalidTopic},
		{"DeleteRecords compacted", deleteErr("compacted", 0, 0), ErrPolicyViolation},

		{"Produce nil request", produceErr(nil), api.ErrInvalidRequest},
		{"Produce bad acks", produceErr(withReq(func(r *api.ProduceRequest) { r.Acks = 2 })), api.ErrInvalidRequiredAcks},
		{"Produce MinInt16 acks", produceErr(withReq(func(r *api.ProduceRequest) { r.Acks = math.MinInt16 })), api.ErrInvalidRequiredAcks},
		{"Produce no topic", produceErr(withReq(func(r *api.ProduceRequest) { r.Topic = "" })), ErrInvalidTopic},
		{"Produce invalid topic", produceErr(withReq(func(r *api.ProduceRequest) { r.Topic = "a/b" })), ErrInvalidTopic},
		{"Produce unknown topic", produceErr(withReq(func(r *api.ProduceRequest) { r.Topic = "nope" })), ErrUnknownTopic},
		{"Produce deleted topic", produceErr(withReq(func(r *api.ProduceRequest) { r.Topic = "gone" })), ErrUnknownTopic},
		{"Produce negative partition", produceErr(withReq(func(r *api.ProduceRequest) { r.Partition = -1 })), ErrUnknownTopic},
		{"Produce MinInt32 partition", produceErr(withReq(func(r *api.ProduceRequest) { r.Partition = math.MinInt32 })), ErrUnknownTopic},
		{"Produce partition past the count", produceErr(withReq(func(r *api.ProduceRequest) { r.Partition = 2 })), ErrUnknownTopic},
		{"Produce nil batches", produceErr(withReq(func(r *api.ProduceRequest) { r.Batches = nil })), log.ErrInvalidRecord},
		{"Produce garbage", produceErr(withReq(func(r *api.ProduceRequest) { r.Batches = []byte("garbage") })), log.ErrInvalidRecord},
		{"Produce truncated batch", produceErr(withReq(func(r *api.ProduceRequest) { r.Batches = r.Batches[:len(r.Batches)-1] })), log.ErrInvalidRecord},
		{"Produce magic 1", produceErr(withReq(func(r *api.ProduceRequest) { r.Batches[16] = 1 })), log.ErrInvalidRecord},
		{"Produce magic 3", produceErr(withReq(func(r *api.ProduceRequest) { r.Batches[16] = 3 })), record.ErrCorrupt},
		{"Produce trailing bytes", produceErr(withReq(func(r *api.ProduceRequest) { r.Batches = append(r.Batches, 0, 0, 0) })), record.ErrCorrupt},
		{"Produce bad CRC", produceErr(withReq(func(r *api.ProduceRequest) { r.Batches[len(r.Batches)-2] ^= 1 })), record.ErrCorrupt},
		{"Produce malformed record, CRC fine", produceErr(withReq(func(r *api.ProduceRequest) { r.Batches = malformedRecordBatch(t) })), log.ErrInvalidRecord},
		{"Produce over max.message.bytes", produceErr(withReq(func(r *api.ProduceRequest) { r.Batches = tooLarge })), log.ErrRecordTooLarge},
		{"Produce null key to a compacted topic", produceErr(&api.ProduceRequest{Topic: "compacted", Acks: api.AcksAll, Batches: func() []byte {
			var bl record.Builder
			bl.Reset()
			bl.Append(1, nil, []byte("v"), nil)
			out, err := bl.AppendTo(nil, 0)
			require.NoError(t, err)
			return out
		}()}), log.ErrInvalidRecord},

		{"Fetch nil request", func() error { _, err := b.Fetch(ctx, nil); return err }, api.ErrInvalidRequest},
		{"Fetch negative offset", fetchPartErr(api.FetchPartition{Topic: "t", Offset: -1}), log.ErrOffsetOutOfRange},
		{"Fetch MinInt64 offset", fetchPartErr(api.FetchPartition{Topic: "t", Offset: math.MinInt64}), log.ErrOffsetOutOfRange},
		{"Fetch offset past the end", fetchPartErr(api.FetchPartition{Topic: "t", Offset: 4}), log.ErrOffsetOutOfRange},
		{"Fetch MaxInt64 offset", fetchPartErr(api.FetchPartition{Topic: "t", Offset: math.MaxInt64}), log.ErrOffsetOutOfRange},
		{"Fetch negative partition", fetchPartErr(api.FetchPartition{Topic: "t", Partition: -1}), ErrUnknownTopic},
		{"Fetch partition past the count", fetchPartErr(api.FetchPartition{Topic: "t", Partition: 2}), ErrUnknownTopic},
		{"Fetch unknown topic", fetchPartErr(api.FetchPartition{Topic: "nope"}), ErrUnknownTopic},
		{"Fetch deleted topic", fetchPartErr(api.FetchPartition{Topic: "gone"}), ErrUnknownTopic},
		{"Fetch invalid topic", fetchPartErr(api.FetchPartition{Topic: ""}), ErrInvalidTopic},
		{"Fetch unknown topic ID", fetchPartErr(api.FetchPartition{Topic: "t", TopicID: log.NewTopicID()}), ErrUnknownTopicID},

		{"ListOffset -5", listErr("t", 0, -5), nil}, // taken as a timestamp: documented in docs/details.md
		// Other negative timestamps are no special one Kafka's broker
		// knows: UNSUPPORTED_VERSION, before the topic is looked up.
		{"ListOffset MinInt64", listErr("t", 0, math.MinInt64), api.ErrUnsupportedVersion},
		{"ListOffset -6", listErr("t", 0, -6), api.ErrUnsupportedVersion},
		{"ListOffset -7", listErr("t", 0, -7), api.ErrUnsupportedVersion},
		{"ListOffset -7 of an unknown topic", listErr("nope", 0, -7), api.ErrUnsupportedVersion},
		{"ListOffset negative partition", listErr("t", -1, api.Latest), ErrUnknownTopic},
		{"ListOffset partition past the count", listErr("t", 2, api.Latest), ErrUnknownTopic},
		{"ListOffset unknown topic", listErr("nope", 0, api.Latest), ErrUnknownTopic},
		{"ListOffset deleted topic", listErr("gone", 0, api.Latest), ErrUnknownTopic},
		{"ListOffset invalid topic", listErr(".", 0, api.Latest), ErrInvalidTopic},

		{"Partitions unknown", func() error { _, err := b.Partitions(ctx, "nope"); return err }, ErrUnknownTopic},
		{"Partitions deleted", func() error { _, err := b.Partitions(ctx, "gone"); return err }, ErrUnknownTopic},
		{"Partitions invalid", func() error { _, err := b.Partitions(ctx, ""); return err }, ErrInvalidTopic},
	} {
		err := testkit.NoPanic(t, tc.name, tc.call)
		if tc.want == nil {
			require.NoError(t, err, tc.name)
			continue
		}
		require.ErrorIs(t, err, tc.want, tc.name)
		if api.Code(tc.want) != -1 {
			// The error's Kafka code is the sentinel's: nothing else it
			// wraps comes first in the table.
			require.Equal(t, api.Name(tc.want), api.Name(err), "%s: %v", tc.name, err)
		}
	}

	// Nothing was lost, nothing was added, and good input still works.
	resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t"}, {Topic: "t", Partition: 1}}})
	require.NoError(t, err)
	require.Equal(t, acked, values(t, resp.Partitions[0].Records))
	require.Empty(t, resp.Partitions[1].Records)
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Len(t, info.Partitions, 2)
	require.Equal(t, 1000, info.Config.MaxMessageBytes)
	require.Equal(t, []string{"compacted", "t"}, b.Topics())
	produce(t, b, "t", 0, "d")
	resp, err = b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t"}}})
	require.NoError(t, err)
	require.Equal(t, append(acked, "d"), values(t, resp.Partitions[0].Records))
}

// TestMalformedRecordIsInvalidRecord: a record that does not decode inside
// a batch whose header and CRC are sound is refused as Kafka's broker
// refuses it: DefaultRecord.readFrom throws InvalidRecordException, which
// LogValidator lets through, INVALID_RECORD (87), not retriable; the
// batch-level checks (size, magic, CRC) answer CORRUPT_MESSAGE.
func TestMalformedRecordIsInvalidRecord(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: malformedRecordBatch(t)})
	require.ErrorIs(t, err, log.ErrInvalidRecord)
	var ce *record.CorruptError
	require.ErrorAs(t, err, &ce, "what is wrong, and where")
	require.EqualValues(t, 87, api.Code(err))
	require.False(t, api.IsRetriable(err))

	bad := batch(t, "x")
	bad[len(bad)-2] ^= 1 // the CRC no longer holds
	_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: bad})
	require.ErrorIs(t, err, record.ErrCorrupt)
	require.EqualValues(t, 2, api.Code(err))
	require.True(t, api.IsRetriable(err))
}

// TestNoWholeV2BatchIsInvalidRecord: records that hold no whole batch, or
// a batch of magic 0 or 1, are INVALID_RECORD, as Kafka's
// ProduceRequest.validateRecords (v3+) refuses them; a batch length below
// 14 and a magic above 2 are CORRUPT_MESSAGE, as Kafka's
// ByteBufferLogInputStream throws them, and so is a whole magic 2 batch
// shorter than its header (Kafka's CRC check); and a batch cut short after a
// whole one stays CORRUPT_MESSAGE (Kafka would append the whole one and
// drop the rest: runnel takes a request whole or not at all).
func TestNoWholeV2BatchIsInvalidRecord(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	for _, tc := range []struct {
		name string
		mod  func([]byte) []byte
		code int16
	}{
		{"5 bytes", func(d []byte) []byte { return d[:5] }, 87},
		{"the header alone", func(d []byte) []byte { return d[:record.HeaderSize] }, 87},
		{"one byte short", func(d []byte) []byte { return d[:len(d)-1] }, 87},
		{"magic 0", func(d []byte) []byte { d[16] = 0; return d }, 87},
		{"magic 1", func(d []byte) []byte { d[16] = 1; return d }, 87},
		{"magic 3", func(d []byte) []byte { d[16] = 3; return d }, 2},
		{"magic -1", func(d []byte) []byte { d[16] = 0xff; return d }, 2},
		{"length below the header", func(d []byte) []byte { d[11] = 10; d[10], d[9], d[8] = 0, 0, 0; return d }, 2},
		{"a whole batch, then one cut short", func(d []byte) []byte { return append(d, batch(t, "y")[:20]...) }, 2},
		// Kafka reads the length before the magic: below 14 it is
		// CORRUPT_MESSAGE whatever the magic; from 14 up, a batch cut
		// short is no batch, whatever the length (INVALID_RECORD).
		{"magic 0, length below 14", func(d []byte) []byte { d[16] = 0; setLength(d, 13); return d }, 2},
		{"magic 1, length below 14", func(d []byte) []byte { d[16] = 1; setLength(d, 10); return d }, 2},
		{"magic 1, length 14", func(d []byte) []byte { d[16] = 1; setLength(d, 14); return d[:26] }, 87},
		{"length 20, cut short", func(d []byte) []byte { setLength(d, 20); return d[:30] }, 87},
		{"length 20, cut short before the magic", func(d []byte) []byte { setLength(d, 20); return d[:15] }, 87},
		{"length 40, whole", func(d []byte) []byte { setLength(d, 40); return d[:52] }, 2},
	} {
		_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: tc.mod(batch(t, "x"))})
		require.ErrorIs(t, err, record.ErrCorrupt, tc.name)
		require.Equal(t, tc.code, api.Code(err), "%s: %v", tc.name, err)
	}
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Zero(t, info.Partitions[0].LogEndOffset)
}

// setLength sets the batch length field of batch d.
func setLength(d []byte, n uint32) { binary.BigEndian.PutUint32(d[8:], n) }

// TestBrokerCallsAfterClose: every method of a closed broker answers
// ErrClosed, whatever its arguments, good or bad.
func TestBrokerCallsAfterClose(t *testing.T) {
	b, err := Open(Config{})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	require.NoError(t, b.Close())
	require.NoError(t, b.Close())
	for _, name := range []string{"t", "", "nope"} {
		for _, tc := range []struct {
			name string
			call func() error
		}{
			{"CreateTopic", func() error { return b.CreateTopic(ctx, name, log.TopicConfig{Partitions: 1}) }},
			{"CreatePartitions", func() error { return b.CreatePartitions(ctx, name, 5) }},
			{"DeleteTopic", func() error { return b.DeleteTopic(ctx, name) }},
			{"DescribeTopic", func() error { _, err := b.DescribeTopic(ctx, name); return err }},
			{"AlterTopicConfig", func() error { return b.AlterTopicConfig(ctx, name, log.Config{}) }},
			{"UpdateTopicConfig", func() error { return b.UpdateTopicConfig(ctx, name, nil) }},
			{"DeleteRecords", func() error { _, err := b.DeleteRecords(ctx, name, 0, 0); return err }},
			{"Produce", func() error {
				_, err := b.Produce(ctx, &api.ProduceRequest{Topic: name, Acks: api.AcksAll, Batches: batch(t, "x")})
				return err
			}},
			{"ProduceAsync", func() error {
				_, _, err := b.ProduceAsync(ctx, &api.ProduceRequest{Topic: name, Acks: api.AcksAll, Batches: batch(t, "x")})
				return err
			}},
			{"Fetch", func() error {
				_, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: name}}})
				return err
			}},
			{"Produce(nil)", func() error { _, err := b.Produce(ctx, nil); return err }},
			{"Produce(bad acks)", func() error {
				_, err := b.Produce(ctx, &api.ProduceRequest{Topic: name, Acks: 7, Batches: batch(t, "x")})
				return err
			}},
			{"ProduceAsync(nil)", func() error { _, _, err := b.ProduceAsync(ctx, nil); return err }},
			{"Fetch(nil)", func() error { _, err := b.Fetch(ctx, nil); return err }},
			{"ListOffset(-1)", func() error { _, err := b.ListOffset(ctx, name, -1, api.Latest); return err }},
			{"DeleteRecords(-1)", func() error { _, err := b.DeleteRecords(ctx, name, -1, -5); return err }},
			{"ListOffset", func() error { _, err := b.ListOffset(ctx, name, 0, api.Latest); return err }},
			{"Partitions", func() error { _, err := b.Partitions(ctx, name); return err }},
			{"InitProducerID", func() error { _, _, err := b.InitProducerID(ctx); return err }},
			{"Maintain", func() error { return b.Maintain(ctx) }},
		} {
			err := testkit.NoPanic(t, tc.name, tc.call)
			require.ErrorIs(t, err, ErrClosed, "%s(%q)", tc.name, name)
			require.EqualValues(t, 8, api.Code(err))
		}
	}
	require.Empty(t, b.Topics())
}

// TestOpenBadConfig: Open refuses a Config out of range with the errors
// its doc lists, and leaves nothing running.
func TestOpenBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want error
	}{
		{"negative DefaultPartitions", Config{DefaultPartitions: -1}, ErrInvalidPartitions},
		{"DefaultPartitions above int32", Config{DefaultPartitions: testkit.PastInt32(1)}, ErrInvalidPartitions},
		{"CleanerMapBytes below the minimum", Config{CleanerMapBytes: 1}, log.ErrInvalidConfig},
		{"negative CleanerMapBytes", Config{CleanerMapBytes: -1}, log.ErrInvalidConfig},
		{"TopicDefaults out of range", Config{TopicDefaults: log.Config{SegmentBytes: 5}}, log.ErrInvalidConfig},
		{"TopicDefaults bad Sync", Config{TopicDefaults: log.Config{Sync: 99}}, log.ErrInvalidConfig},
	} {
		b, err := Open(tc.cfg)
		require.ErrorIs(t, err, tc.want, tc.name)
		require.Nil(t, b, tc.name)
	}
}

// TestZeroBroker: a Broker not made by Open is closed: every method
// answers ErrClosed (Topics none, Close nil) rather than panic or hang.
func TestZeroBroker(t *testing.T) {
	b := new(Broker)
	ctx, cancel := context.WithTimeout(context.Background(), testkit.HangGuard)
	defer cancel()
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"CreateTopic", func() error { return b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}) }},
		{"CreatePartitions", func() error { return b.CreatePartitions(ctx, "t", 5) }},
		{"DeleteTopic", func() error { return b.DeleteTopic(ctx, "t") }},
		{"DescribeTopic", func() error { _, err := b.DescribeTopic(ctx, "t"); return err }},
		{"AlterTopicConfig", func() error { return b.AlterTopicConfig(ctx, "t", log.Config{}) }},
		{"UpdateTopicConfig", func() error { return b.UpdateTopicConfig(ctx, "t", func(*log.Config) {}) }},
		{"DeleteRecords", func() error { _, err := b.DeleteRecords(ctx, "t", 0, 0); return err }},
		{"Produce", func() error {
			_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, "x")})
			return err
		}},
		{"ProduceAsync", func() error {
			_, _, err := b.ProduceAsync(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, "x")})
			return err
		}},
		{"Fetch", func() error {
			_, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t"}}})
			return err
		}},
		{"ListOffset", func() error { _, err := b.ListOffset(ctx, "t", 0, api.Latest); return err }},
		{"Partitions", func() error { _, err := b.Partitions(ctx, "t"); return err }},
		{"InitProducerID", func() error { _, _, err := b.InitProducerID(ctx); return err }},
		{"Maintain", func() error { return b.Maintain(ctx) }},
	} {
		require.ErrorIs(t, testkit.NoPanic(t, tc.name, tc.call), ErrClosed, tc.name)
	}
	require.Empty(t, b.Topics())
	require.NoError(t, testkit.NoPanic(t, "Close", b.Close))
}

// TestOpenDirIsAFile: a Dir that is a file fails Open with an error that
// says it is runnel's Open of that Dir (it said only "stat DIR/topics: not a
// directory", naming a directory the caller never gave).
func TestOpenDirIsAFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	require.NoError(t, os.WriteFile(dir, []byte("not a directory"), 0o644))
	b, err := Open(Config{Dir: dir})
	require.Error(t, err)
	require.Nil(t, b)
	require.True(t, strings.HasPrefix(err.Error(), "runnel: opening "+dir+": "), "error %q names the broker's Open and its Dir", err)
}
