package producer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

func TestProduceSyncSetsOffsetsAndTimestamps(t *testing.T) {
	b := newBroker(t, runneltest.Topic("orders", 1))
	p := newProducer(t, b, producer.DefaultTopic("orders"))
	ctx := testCtx(t)
	before := time.Now().Add(-time.Millisecond)
	batch := recs("o", 10)
	stamped := time.UnixMilli(1_600_000_000_000)
	batch[3].Timestamp = stamped
	require.NoError(t, p.ProduceSync(ctx, batch...))
	for i, r := range batch {
		require.Equal(t, "orders", r.Topic)
		require.Equal(t, int32(0), r.Partition)
		require.Equal(t, int64(i), r.Offset)
		if i == 3 {
			require.True(t, r.Timestamp.Equal(stamped), "a given timestamp is kept")
		} else {
			require.False(t, r.Timestamp.Before(before), "a zero timestamp is set at Produce")
		}
	}
	got := readRecords(t, b, "orders", 0)
	require.Equal(t, values(batch), values(got))
	for i, r := range got {
		require.Equal(t, batch[i].Timestamp.UnixMilli(), r.Timestamp.UnixMilli())
		require.Equal(t, batch[i].ProducerID, r.ProducerID)
		require.Equal(t, batch[i].Sequence, r.Sequence)
		require.Equal(t, int32(i), r.Sequence, "idempotent by default")
	}
	require.NoError(t, p.ProduceSync(ctx))
}

func TestLogAppendTimeIsReported(t *testing.T) {
	b := newBroker(t, runneltest.TopicConfig("lat", log.TopicConfig{Partitions: 1, Config: log.Config{TimestampType: log.LogAppendTime}}))
	p := newProducer(t, b)
	r := &record.Record{Topic: "lat", Value: []byte("v"), Timestamp: time.UnixMilli(1000)}
	require.NoError(t, p.ProduceSync(testCtx(t), r))
	require.Equal(t, record.LogAppendTime, r.TimestampType)
	got := readRecords(t, b, "lat", 0)
	require.Len(t, got, 1)
	require.Equal(t, got[0].Timestamp.UnixMilli(), r.Timestamp.UnixMilli())
	require.Greater(t, r.Timestamp.UnixMilli(), int64(1000))
}

// A retry answered as a duplicate reports the append time the broker
// stamped on the batch's first attempt, as Kafka's broker answers a
// duplicate with the batch's timestamp: the promise got the record's
// create time (1000) as a CreateTime, while the log holds the append
// time.
func TestLogAppendTimeIsReportedForADuplicate(t *testing.T) {
	b := newBroker(t, runneltest.TopicConfig("lat", log.TopicConfig{Partitions: 1, Config: log.Config{TimestampType: log.LogAppendTime}}))
	c := &hookClient{b: b}
	c.setHook(func(_ context.Context, call int, _ *api.ProduceRequest, next func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
		resp, err := next()
		if call == 0 && err == nil {
			return api.ProduceResponse{}, api.ErrRequestTimedOut // appended, answer lost
		}
		return resp, err
	})
	p := newProducer(t, c, producer.RetryBackoff(time.Millisecond), producer.MaxInFlight(1))
	r := &record.Record{Topic: "lat", Value: []byte("v"), Timestamp: time.UnixMilli(1000)}
	require.NoError(t, p.ProduceSync(testCtx(t), r))
	require.Len(t, c.requests(), 2, "retried")
	got := readRecords(t, b, "lat", 0)
	require.Len(t, got, 1, "appended once")
	require.Equal(t, record.LogAppendTime, r.TimestampType)
	require.Equal(t, got[0].Timestamp.UnixMilli(), r.Timestamp.UnixMilli())
}

func TestLingerPutsRecordsProducedTogetherInOneBatch(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	p := newProducer(t, b, producer.Linger(time.Minute), producer.DefaultTopic("t"))
	ctx := testCtx(t)
	out := newOutcome()
	batch := recs("l", 50)
	for _, r := range batch {
		p.Produce(ctx, r, out.promise())
	}
	require.EqualValues(t, 50, p.BufferedRecords(), "lingering: nothing sent")
	require.Empty(t, readBatches(t, b, "t", 0))
	require.NoError(t, p.Flush(ctx))
	out.wait()
	batches := readBatches(t, b, "t", 0)
	require.Len(t, batches, 1)
	require.EqualValues(t, 50, batches[0].NumRecords())
	require.Equal(t, values(batch), values(readRecords(t, b, "t", 0)))
}

// Without linger, a partition sends as soon as it has no request in
// flight; what arrives meanwhile forms the next batch.
func TestRecordsProducedDuringARequestFormTheNextBatch(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c, g := gatedClient(b)
	p := newProducer(t, c, producer.DefaultTopic("t"))
	ctx := testCtx(t)
	out := newOutcome()
	batch := recs("n", 10)
	p.Produce(ctx, batch[0], out.promise())
	testkit.Await(t, g.entered, "the first record's request at the gate") // the first record's request is in flight
	for _, r := range batch[1:] {
		p.Produce(ctx, r, out.promise())
	}
	g.release()
	out.wait()
	var sizes []int32
	for _, bt := range readBatches(t, b, "t", 0) {
		sizes = append(sizes, bt.NumRecords())
	}
	require.Equal(t, []int32{1, 9}, sizes)
	for _, r := range batch {
		require.NoError(t, out.err(r))
	}
}

func TestBatchMaxBytesSplitsBatches(t *testing.T) {
	// Records stamped up to 3000 h ahead (their deltas' sizes matter):
	// no TimestampAfterMax.
	b := newBroker(t, runneltest.TopicConfig("t", log.TopicConfig{Partitions: 1, Config: log.Config{TimestampAfterMax: -1}}))
	const max = 1000
	p := newProducer(t, b, producer.Linger(time.Minute), producer.BatchMaxBytes(max), producer.DefaultTopic("t"))
	ctx := testCtx(t)
	var batch []*record.Record
	t0 := time.Now()
	for i := range 60 {
		// Timestamps far apart, some before the batch's first: the size
		// of a record depends on its delta.
		ts := t0.Add(time.Duration(i%7-3) * 1000 * time.Hour)
		batch = append(batch, &record.Record{Key: []byte{byte(i)}, Value: bytes.Repeat([]byte{byte('a' + i%26)}, 90), Timestamp: ts})
	}
	for _, r := range batch {
		p.Produce(ctx, r, nil)
	}
	require.NoError(t, p.Flush(ctx))
	batches := readBatches(t, b, "t", 0)
	require.Greater(t, len(batches), 5)
	for i, bt := range batches {
		require.LessOrEqual(t, bt.Size(), max)
		if i < len(batches)-1 {
			require.Greater(t, bt.Size(), max-120, "batches are filled up")
		}
	}
	require.Equal(t, values(batch), values(readRecords(t, b, "t", 0)))
}

func TestRecordTooLargeFailsOnlyThatRecord(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	p := newProducer(t, b, producer.BatchMaxBytes(500), producer.DefaultTopic("t"))
	big := &record.Record{Value: make([]byte, 500)}
	small := &record.Record{Value: []byte("small")}
	err := p.ProduceSync(testCtx(t), small, big)
	require.ErrorIs(t, err, producer.ErrRecordTooLarge)
	require.Equal(t, "MESSAGE_TOO_LARGE", api.Name(err))
	require.Equal(t, []string{"small"}, values(readRecords(t, b, "t", 0)))
}

// The broker refuses batches over the topic's max.message.bytes: the
// producer splits them so that only a record too large on its own fails.
func TestBrokerMaxMessageBytesSplitsBatches(t *testing.T) {
	// With every acks level: AcksNone does not retry a failed request,
	// but a batch refused before its append is split all the same, so
	// that the records not at fault are not failed with its error.
	for _, acks := range []api.Acks{producer.AcksAll, producer.AcksLeader, producer.AcksNone} {
		t.Run(fmt.Sprint("acks=", acks), func(t *testing.T) {
			b := newBroker(t, runneltest.TopicConfig("t", log.TopicConfig{Partitions: 1, Config: log.Config{MaxMessageBytes: 2000}}))
			p := newProducer(t, b, producer.Linger(time.Minute), producer.DefaultTopic("t"), producer.Acks(acks))
			ctx := testCtx(t)
			out := newOutcome()
			var batch []*record.Record
			for i := range 30 {
				size := 300
				if i == 17 {
					size = 3000
				}
				r := &record.Record{Value: append([]byte(fmt.Sprintf("%02d", i)), make([]byte, size)...)}
				batch = append(batch, r)
				p.Produce(ctx, r, out.promise())
			}
			require.NoError(t, p.Flush(ctx))
			out.wait()
			var want []string
			for i, r := range batch {
				if i == 17 {
					require.ErrorIs(t, out.err(r), producer.ErrRecordTooLarge)
					continue
				}
				require.NoError(t, out.err(r), "record %d", i)
				want = append(want, string(r.Value))
			}
			require.Equal(t, want, values(readRecords(t, b, "t", 0)), "in order, each once")
			for _, bt := range readBatches(t, b, "t", 0) {
				require.LessOrEqual(t, bt.Size(), 2000)
			}
		})
	}
}

// A compacted topic refuses a record without a key: the others of its
// batch still go through.
func TestInvalidRecordFailsOnlyThatRecord(t *testing.T) {
	b := newBroker(t, runneltest.TopicConfig("c", log.TopicConfig{Partitions: 1, Config: log.Config{CleanupPolicy: log.Compact}}))
	p := newProducer(t, b, producer.Linger(time.Minute), producer.DefaultTopic("c"), producer.RecordPartitioner(producer.ManualPartitioner()))
	ctx := testCtx(t)
	out := newOutcome()
	var batch []*record.Record
	for i := range 9 {
		r := &record.Record{Key: []byte{byte('a' + i)}, Value: []byte{byte('0' + i)}}
		if i == 4 {
			r.Key = nil
		}
		batch = append(batch, r)
		p.Produce(ctx, r, out.promise())
	}
	require.NoError(t, p.Flush(ctx))
	out.wait()
	for i, r := range batch {
		if i == 4 {
			require.ErrorIs(t, out.err(r), log.ErrInvalidRecord)
		} else {
			require.NoError(t, out.err(r))
		}
	}
	require.Equal(t, []string{"0", "1", "2", "3", "5", "6", "7", "8"}, values(readRecords(t, b, "c", 0)))
}

func TestTopicErrors(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	p := newProducer(t, b)
	ctx := testCtx(t)
	require.ErrorIs(t, p.ProduceSync(ctx, &record.Record{Value: []byte("x")}), producer.ErrNoTopic)
	require.ErrorIs(t, p.ProduceSync(ctx, &record.Record{Topic: "missing"}), api.ErrUnknownTopicOrPartition)
	require.ErrorIs(t, p.ProduceSync(ctx, &record.Record{Topic: "bad topic!"}), api.ErrInvalidTopic)
	require.ErrorIs(t, p.ProduceSync(ctx, nil), producer.ErrNilRecord)
	// A timestamp before the epoch is refused, as Kafka's producer does
	// (negative timestamps are ListOffsets' "latest" and "earliest"); the
	// epoch itself is a timestamp like any other.
	err := p.ProduceSync(ctx, &record.Record{Topic: "t", Timestamp: time.UnixMilli(-2), Value: []byte("neg")})
	require.ErrorIs(t, err, producer.ErrInvalidTimestamp)
	require.Equal(t, "INVALID_TIMESTAMP", api.Name(err))
	require.ErrorIs(t, p.ProduceSync(ctx, &record.Record{Topic: "t", Timestamp: time.Unix(0, -1), Value: []byte("neg")}), producer.ErrInvalidTimestamp)
	epoch := &record.Record{Topic: "t", Timestamp: time.Unix(0, 0), Value: []byte("epoch")}
	require.NoError(t, p.ProduceSync(ctx, epoch))
	// None of it disturbed a good record, nor left anything buffered.
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "t", Value: []byte("ok")}))
	require.NoError(t, p.Flush(ctx))
	require.Zero(t, p.BufferedRecords())
	got := readRecords(t, b, "t", 0)
	require.Equal(t, []string{"epoch", "ok"}, values(got))
	require.Zero(t, got[0].Timestamp.UnixMilli())

	// A topic created later is found.
	runneltest.CreateTopic(t, b, "missing", log.TopicConfig{Partitions: 2})
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "missing", Value: []byte("now")}))
}

func TestHeadersAndNullsRoundTrip(t *testing.T) {
	b := newBroker(t, runneltest.Topic("h", 1))
	p := newProducer(t, b, producer.DefaultTopic("h"))
	in := []*record.Record{
		{Key: []byte("k"), Value: []byte("v"), Headers: []record.Header{{Key: "a", Value: []byte("1")}, {Key: "null", Value: nil}, {Key: "empty", Value: []byte{}}}},
		{Key: nil, Value: nil},
		{Key: []byte{}, Value: []byte{}},
	}
	require.NoError(t, p.ProduceSync(testCtx(t), in...))
	got := readRecords(t, b, "h", 0)
	require.Len(t, got, 3)
	for i := range in {
		require.Equal(t, in[i].Key, got[i].Key)
		require.Equal(t, in[i].Value, got[i].Value)
		require.Equal(t, len(in[i].Headers), len(got[i].Headers))
		for j, h := range in[i].Headers {
			require.Equal(t, h.Key, got[i].Headers[j].Key)
			require.Equal(t, h.Value, got[i].Headers[j].Value)
		}
	}
}

func TestCompressionRoundTripsThroughTheBroker(t *testing.T) {
	for _, codec := range []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd} {
		t.Run(codec.String(), func(t *testing.T) {
			b := newBroker(t, runneltest.Topic("z", 1))
			p := newProducer(t, b, producer.Compression(codec), producer.Linger(time.Minute), producer.DefaultTopic("z"))
			ctx := testCtx(t)
			var batch []*record.Record
			for i := range 100 {
				batch = append(batch, &record.Record{Key: []byte(fmt.Sprint("key", i)), Value: bytes.Repeat([]byte(fmt.Sprint("value ", i)), 20),
					Headers: []record.Header{{Key: "i", Value: []byte(fmt.Sprint(i))}}})
			}
			for _, r := range batch {
				p.Produce(ctx, r, nil)
			}
			require.NoError(t, p.Flush(ctx))
			batches := readBatches(t, b, "z", 0)
			require.Len(t, batches, 1)
			require.Equal(t, codec, batches[0].Codec())
			require.NoError(t, batches[0].ValidateRecords(0, 0))
			got := readRecords(t, b, "z", 0)
			require.Equal(t, values(batch), values(got))
			for i, r := range got {
				require.Equal(t, batch[i].Key, r.Key)
				require.Equal(t, batch[i].Headers[0].Value, r.Headers[0].Value)
				require.Equal(t, int64(i), batch[i].Offset)
			}
		})
	}
}

func TestAcksLevels(t *testing.T) {
	for _, acks := range []api.Acks{producer.AcksNone, producer.AcksLeader, producer.AcksAll} {
		t.Run(acks.String(), func(t *testing.T) {
			b := newBroker(t, runneltest.Topic("a", 2))
			c := &hookClient{b: b}
			p := newProducer(t, c, producer.Acks(acks), producer.DefaultTopic("a"))
			batch := recs("a", 20)
			for _, r := range batch {
				r.Key = []byte(r.Value)
			}
			require.NoError(t, p.ProduceSync(testCtx(t), batch...))
			for _, req := range c.requests() {
				require.Equal(t, acks, req.acks)
				if acks == producer.AcksAll {
					require.NotEqual(t, int64(record.NoProducerID), req.batch.ProducerID(), "idempotent with acks=all")
				} else {
					require.Equal(t, int64(record.NoProducerID), req.batch.ProducerID(), "idempotence needs acks=all")
				}
			}
			if acks != producer.AcksAll {
				require.Zero(t, c.initCount())
			}
			// In process the broker answers after the append, so even
			// acks=0 reports offsets.
			for part := range int32(2) {
				got := readRecords(t, b, "a", part)
				for _, r := range batch {
					if r.Partition == part {
						require.Equal(t, string(r.Value), string(got[r.Offset].Value))
					}
				}
			}
		})
	}
}

func TestAcksNoneDoesNotRetry(t *testing.T) {
	b := newBroker(t, runneltest.Topic("a", 1))
	c := &hookClient{b: b}
	c.setHook(func(context.Context, int, *api.ProduceRequest, func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
		return api.ProduceResponse{BaseOffset: -1, LogAppendTime: -1}, api.ErrNotEnoughReplicas
	})
	p := newProducer(t, c, producer.Acks(producer.AcksNone), producer.DefaultTopic("a"), producer.RetryBackoff(time.Millisecond))
	err := p.ProduceSync(testCtx(t), &record.Record{Value: []byte("v")})
	require.ErrorIs(t, err, api.ErrNotEnoughReplicas)
	require.Len(t, c.requests(), 1)

	c.setHook(func(context.Context, int, *api.ProduceRequest, func() (api.ProduceResponse, error)) (api.ProduceResponse, error) {
		return api.ProduceResponse{BaseOffset: -1, LogAppendTime: -1}, nil // a remote broker's acks=0 answer
	})
	r := &record.Record{Value: []byte("v")}
	require.NoError(t, p.ProduceSync(testCtx(t), r))
	require.Equal(t, int64(-1), r.Offset)
}

func TestManyGoroutinesManyPartitions(t *testing.T) {
	b := newBroker(t, runneltest.Topic("m", 4))
	p := newProducer(t, b, producer.DefaultTopic("m"), producer.MaxBufferedRecords(64), producer.BatchMaxBytes(4096))
	ctx := testCtx(t)
	const writers, each = 8, 300
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []error
	byKey := map[string][]string{}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprint("writer", w)
			for i := range each {
				v := fmt.Sprintf("%s-%d", key, i)
				mu.Lock()
				byKey[key] = append(byKey[key], v)
				mu.Unlock()
				var r *record.Record
				if i%3 == 0 {
					r = &record.Record{Value: []byte(v)} // sticky
				} else {
					r = &record.Record{Key: []byte(key), Value: []byte(v)}
				}
				p.Produce(ctx, r, func(_ *record.Record, err error) {
					if err != nil {
						mu.Lock()
						failed = append(failed, err)
						mu.Unlock()
					}
				})
			}
		}()
	}
	wg.Wait()
	require.NoError(t, p.Flush(ctx))
	require.Empty(t, failed)
	total := 0
	perKey := map[string][]string{}
	for part := range int32(4) {
		for i, r := range readRecords(t, b, "m", part) {
			require.Equal(t, int64(i), r.Offset)
			if r.Key != nil {
				perKey[string(r.Key)] = append(perKey[string(r.Key)], string(r.Value))
			}
			total++
		}
	}
	require.Equal(t, writers*each, total)
	for key, vs := range byKey {
		var keyed []string
		for i, v := range vs {
			if i%3 != 0 {
				keyed = append(keyed, v)
			}
		}
		require.Equal(t, keyed, perKey[key], "a key's records keep their order")
	}
}

func TestNewValidatesOptions(t *testing.T) {
	b := newBroker(t)
	pastInt32 := math.MaxInt32
	pastInt32++ // past a batch's length field (on 32-bit platforms it wraps: invalid too)
	for name, opt := range map[string]producer.Opt{
		"acks":        producer.Acks(2),
		"linger":      producer.Linger(-1),
		"batch":       producer.BatchMaxBytes(record.HeaderSize),
		"batch>int32": producer.BatchMaxBytes(pastInt32),
		"codec":       producer.Compression(7),
		"partitioner": producer.RecordPartitioner(nil),
		"records":     producer.MaxBufferedRecords(0),
		"bytes":       producer.MaxBufferedBytes(-1),
		"timeout":     producer.DeliveryTimeout(0),
		"linger>=dt":  producer.Linger(producer.DefaultDeliveryTimeout),
		"backoff":     producer.RetryBackoff(0),
		"metadata":    producer.MetadataMaxAge(0),
		"inflight0":   producer.MaxInFlight(0),
		"inflight6":   producer.MaxInFlight(6),
		"topic":       producer.DefaultTopic("a/b"),
	} {
		_, err := producer.New(b, opt)
		require.ErrorIs(t, err, producer.ErrInvalidOption, name)
	}
	_, err := producer.New(b, producer.DefaultTopic(".."))
	require.ErrorIs(t, err, api.ErrInvalidTopic)
	_, err = producer.New(nil)
	require.ErrorIs(t, err, producer.ErrInvalidOption)
	_, err = producer.New((*runnel.Broker)(nil)) // whose methods would panic
	require.ErrorIs(t, err, producer.ErrInvalidOption)
}

func TestNewPartitionsAreFound(t *testing.T) {
	b := newBroker(t, runneltest.Topic("grow", 1))
	p := newProducer(t, b, producer.DefaultTopic("grow"), producer.MetadataMaxAge(time.Nanosecond),
		producer.RecordPartitioner(producer.ManualPartitioner()))
	ctx := testCtx(t)
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Value: []byte("0")}))
	require.NoError(t, b.CreatePartitions(ctx, "grow", 3))
	var err error
	for range 1000 {
		// Each batch sent lets the producer look again.
		require.NoError(t, p.ProduceSync(ctx, &record.Record{Value: []byte("0")}))
		if err = p.ProduceSync(ctx, &record.Record{Partition: 2, Value: []byte("2")}); err == nil {
			break
		}
		require.ErrorIs(t, err, producer.ErrInvalidPartition)
	}
	require.NoError(t, err)
	require.Equal(t, []string{"2"}, values(readRecords(t, b, "grow", 2)))
}

// A topic deleted and created again with fewer partitions: the batch
// made for a partition that is gone fails with the broker's error once
// the producer, looking again, finds the partition gone (not at its
// delivery timeout), and later records follow the new count.
func TestTopicCreatedAgainWithFewerPartitions(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 3))
	p := newProducer(t, b, producer.DefaultTopic("t"), producer.MetadataMaxAge(time.Hour),
		producer.RecordPartitioner(producer.ManualPartitioner()),
		producer.Acks(producer.AcksLeader), producer.DisableIdempotence(), producer.RetryBackoff(time.Millisecond))
	ctx := testCtx(t)
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Partition: 2, Value: []byte("before")}))
	require.NoError(t, b.DeleteTopic(ctx, "t"))
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))

	// Made for partition 2, which is gone.
	err := p.ProduceSync(ctx, &record.Record{Partition: 2, Value: []byte("gone")})
	require.ErrorIs(t, err, api.ErrUnknownTopicOrPartition)
	require.NotErrorIs(t, err, producer.ErrDeliveryTimeout)
	// The producer knows the topic has one partition now.
	err = p.ProduceSync(ctx, &record.Record{Partition: 2, Value: []byte("refused")})
	require.ErrorIs(t, err, producer.ErrInvalidPartition)
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Partition: 0, Value: []byte("after")}))
	require.Equal(t, []string{"after"}, values(readRecords(t, b, "t", 0)))
}

// zeroPartitions is a Client that reports no partitions once its topic
// was looked up the first time, as no Client should.
type zeroPartitions struct {
	*hookClient
	calls atomic.Int32
}

func (c *zeroPartitions) Partitions(ctx context.Context, topic string) (int, error) {
	if c.calls.Add(1) > 1 {
		return 0, nil
	}
	return c.hookClient.Partitions(ctx, topic)
}

// A Client that answers a later look-up with no partitions is not
// followed (as a first look-up answered so fails the record): the
// producer keeps the partitions it knew.
func TestRefreshToNoPartitionsIsIgnored(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := &zeroPartitions{hookClient: &hookClient{b: b}}
	p := newProducer(t, c, producer.DefaultTopic("t"), producer.MetadataMaxAge(time.Nanosecond))
	ctx := testCtx(t)
	for _, v := range []string{"a", "b", "c"} {
		clockTick() // so that MetadataMaxAge has passed (see clockTick)
		require.NoError(t, p.ProduceSync(ctx, &record.Record{Value: []byte(v)}))
	}
	require.Greater(t, c.calls.Load(), int32(1), "looked again")
	require.Equal(t, []string{"a", "b", "c"}, values(readRecords(t, b, "t", 0)))
}

func TestCloseFailsWhatIsBuffered(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 2))
	p, err := producer.New(b, producer.Linger(time.Minute), producer.DefaultTopic("t"))
	require.NoError(t, err)
	ctx := testCtx(t)
	delivered := &record.Record{Value: []byte("delivered")}
	p.Produce(ctx, delivered, nil)
	require.NoError(t, p.Flush(ctx))
	out := newOutcome()
	batch := recs("c", 10)
	for _, r := range batch {
		p.Produce(ctx, r, out.promise())
	}
	require.NoError(t, p.Close())
	out.wait()
	for _, r := range batch {
		require.ErrorIs(t, out.err(r), producer.ErrClosed)
	}
	require.Zero(t, p.BufferedRecords())
	require.Equal(t, []string{"delivered"}, values(readRecords(t, b, "t", delivered.Partition)))

	// Afterwards everything fails with ErrClosed.
	require.NoError(t, p.Close())
	require.ErrorIs(t, p.ProduceSync(ctx, &record.Record{Value: []byte("late")}), producer.ErrClosed)
	late := newOutcome()
	r := &record.Record{Value: []byte("late")}
	p.TryProduce(ctx, r, late.promise())
	late.wait()
	require.ErrorIs(t, late.err(r), producer.ErrClosed)
	require.ErrorIs(t, p.Flush(ctx), producer.ErrClosed)
}

func TestCloseCancelsTheRequestInFlight(t *testing.T) {
	for _, acks := range []api.Acks{producer.AcksAll, producer.AcksNone} {
		t.Run("acks="+acks.String(), func(t *testing.T) {
			b := newBroker(t, runneltest.Topic("t", 1))
			c, g := gatedClient(b) // never opened: only Close ends the request
			p, err := producer.New(c, producer.DefaultTopic("t"), producer.Acks(acks))
			require.NoError(t, err)
			ctx := testCtx(t)
			out := newOutcome()
			first, second := &record.Record{Value: []byte("1")}, &record.Record{Value: []byte("2")}
			p.Produce(ctx, first, out.promise())
			testkit.Await(t, g.entered, "the first record's request at the gate")
			p.Produce(ctx, second, out.promise())
			require.NoError(t, p.Close())
			out.wait()
			require.ErrorIs(t, out.err(first), producer.ErrClosed)
			// The broker may have appended first: its error does not
			// match a ctx's, which would say it was not written.
			require.NotErrorIs(t, out.err(first), context.Canceled)
			require.ErrorIs(t, out.err(second), producer.ErrClosed)
		})
	}
}

// Close racing with producers loses no promise.
func TestCloseWhileProducing(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 3))
	p, err := producer.New(b, producer.DefaultTopic("t"))
	require.NoError(t, err)
	ctx := testCtx(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	results := map[error]int{}
	var produced sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				produced.Add(1)
				p.Produce(ctx, &record.Record{Value: []byte(fmt.Sprint(i))}, func(_ *record.Record, err error) {
					mu.Lock()
					if err != nil && !errors.Is(err, producer.ErrClosed) {
						results[err]++
					} else {
						results[nil]++
					}
					mu.Unlock()
					produced.Done()
				})
			}
		}()
	}
	require.NoError(t, p.Close())
	wg.Wait()
	produced.Wait() // every promise ran
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, results, 1, "only successes and ErrClosed: %v", results)
	require.Zero(t, p.BufferedRecords())
}

// A lingering batch goes by itself once Linger has passed.
func TestLingerEnds(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	p := newProducer(t, b, producer.Linger(5*time.Millisecond), producer.DefaultTopic("t"))
	batch := recs("l", 3)
	require.NoError(t, p.ProduceSync(testCtx(t), batch...))
	require.Equal(t, values(batch), values(readRecords(t, b, "t", 0)))
}

// countPartitions counts a Client's Partitions calls.
type countPartitions struct {
	*hookClient
	calls atomic.Int32
}

func (c *countPartitions) Partitions(ctx context.Context, topic string) (int, error) {
	c.calls.Add(1)
	return c.hookClient.Partitions(ctx, topic)
}

// A MetadataMaxAge past the year 2262 (math.MaxInt64, for "never") means
// no periodic look-up: the time of the next one, kept in Unix
// nanoseconds, overflowed, and the partition count was asked for again
// after every batch.
func TestHugeMetadataMaxAgeNeverRefreshes(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := &countPartitions{hookClient: &hookClient{b: b}}
	p := newProducer(t, c, producer.DefaultTopic("t"), producer.MetadataMaxAge(math.MaxInt64))
	for i := range 5 {
		require.NoError(t, p.ProduceSync(testCtx(t), &record.Record{Value: []byte(fmt.Sprint(i))}))
	}
	require.EqualValues(t, 1, c.calls.Load(), "Partitions calls")
}

// TestProduceSyncOnePartitionRefused: a ProduceSync of records to
// three partitions, one of which the broker refuses (a refusal: not
// retriable, nothing written), reports a *RecordError for each record of
// that partition only, with its partition and the refusal, and none may
// have been written; the others are written, their Partition and Offset
// set, as a Java user reading each send's future, or kgo's
// ProduceResults, expects.
func TestProduceSyncOnePartitionRefused(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 3))
	f := runneltest.NewFaults(t, b)
	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Partitions: []int32{1}, Err: api.ErrPolicyViolation, Count: runneltest.Unlimited})
	p := newProducer(t, f, producer.DefaultTopic("t"), producer.RecordPartitioner(producer.ManualPartitioner()))
	var rs []*record.Record
	for i := range 9 {
		rs = append(rs, &record.Record{Partition: int32(i % 3), Value: []byte{byte('a' + i)}})
	}
	err := p.ProduceSync(testCtx(t), rs...)
	require.Error(t, err)
	require.ErrorIs(t, err, api.ErrPolicyViolation)
	require.False(t, producer.MayBeWritten(err), "%v", err)
	res := producer.RecordErrors(err)
	require.Len(t, res, 3, "%v", err)
	failed := map[*record.Record]bool{}
	for _, re := range res {
		require.EqualValues(t, 1, re.Partition)
		require.EqualValues(t, 1, re.Record.Partition)
		require.ErrorIs(t, re, api.ErrPolicyViolation)
		failed[re.Record] = true
	}
	want := map[int32][]string{}
	for _, r := range rs {
		if failed[r] {
			continue
		}
		require.NotEqual(t, int32(1), r.Partition)
		want[r.Partition] = append(want[r.Partition], string(r.Value))
		got := readRecords(t, b, "t", r.Partition)
		require.Less(t, r.Offset, int64(len(got)), "%s", r.Value)
		require.Equal(t, r.Value, got[r.Offset].Value)
	}
	for part := range int32(3) {
		require.Equal(t, want[part], nilIfEmpty(values(readRecords(t, b, "t", part))), "partition %d", part)
	}
}
