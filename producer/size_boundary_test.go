package producer_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// encodedSize is the size of the batch record.Builder makes of recs,
// uncompressed, as the producer encodes it.
func encodedSize(t *testing.T, recs ...*record.Record) int {
	return compressedSize(t, compression.None, recs...)
}

// compressedSize is encodedSize with codec.
func compressedSize(t *testing.T, codec compression.Codec, recs ...*record.Record) int {
	t.Helper()
	var bld record.Builder
	bld.SetProducer(1, 0, 0)
	for _, r := range recs {
		bld.Add(r)
	}
	data, err := bld.Finish(codec)
	require.NoError(t, err)
	return len(data)
}

// boundaryRecords are records whose sizes depend on every field: nil and
// empty keys and values, headers with nil and empty values and empty
// keys, and timestamps far from one another (before the first record's,
// too), so that their deltas take several bytes.
func boundaryRecords(t0 time.Time) []*record.Record {
	return []*record.Record{
		{Key: nil, Value: bytes.Repeat([]byte("a"), 100), Timestamp: t0},
		{Key: []byte{}, Value: nil, Timestamp: t0.Add(-1000 * time.Hour),
			Headers: []record.Header{{Key: "", Value: nil}, {Key: "h", Value: []byte{}}}},
		{Key: []byte("key"), Value: []byte{}, Timestamp: t0.Add(200000 * time.Hour),
			Headers: []record.Header{{Key: "long header", Value: bytes.Repeat([]byte("v"), 70)}}},
		{Key: bytes.Repeat([]byte("k"), 63), Value: bytes.Repeat([]byte("b"), 64), Timestamp: t0.Add(time.Millisecond)},
	}
}

// A batch may be exactly BatchMaxBytes: a record whose batch of its own
// is exactly that size is sent, one a byte larger fails with
// ErrRecordTooLarge before it is buffered; records whose batch together
// is exactly BatchMaxBytes go in one batch, and one more byte's worth
// makes two. The sizes are those record.Builder encodes, whatever the
// record's key, value, headers and timestamp delta.
func TestBatchMaxBytesBoundary(t *testing.T) {
	t0 := time.UnixMilli(1_700_000_000_000)
	for n := 1; n <= len(boundaryRecords(t0)); n++ {
		t.Run(fmt.Sprint(n, " records"), func(t *testing.T) {
			exact := encodedSize(t, boundaryRecords(t0)[:n]...)
			for _, max := range []int{exact, exact - 1} {
				// A record is stamped 200000 h ahead (its delta's size is
				// the point): no TimestampAfterMax.
				b := newBroker(t, runneltest.TopicConfig("t", log.TopicConfig{Partitions: 1, Config: log.Config{TimestampAfterMax: -1}}))
				p := newProducer(t, b, producer.DefaultTopic("t"), producer.BatchMaxBytes(max),
					producer.Linger(time.Hour), producer.DeliveryTimeout(2*time.Hour))
				in := boundaryRecords(t0)[:n]
				out := newOutcome()
				for _, r := range in {
					p.Produce(testCtx(t), r, out.promise())
				}
				require.NoError(t, p.Flush(testCtx(t))) // the last batch lingers
				out.wait()
				var err error
				for _, r := range in {
					if err == nil {
						err = out.err(r)
					}
				}
				batches := readBatches(t, b, "t", 0)
				switch {
				case max == exact:
					require.NoError(t, err)
					require.Len(t, batches, 1)
					require.Len(t, batches[0], exact)
				case n == 1:
					require.ErrorIs(t, err, producer.ErrRecordTooLarge)
					require.Empty(t, batches)
				default:
					require.NoError(t, err)
					require.Len(t, batches, 2, "a byte short of the records' batch")
					for _, bt := range batches {
						require.LessOrEqual(t, len(bt), max)
					}
				}
				if err == nil {
					got := readRecords(t, b, "t", 0)
					require.Len(t, got, n)
					for i, r := range got {
						require.Equal(t, in[i].Key, r.Key, "record %d", i)
						require.Equal(t, in[i].Value, r.Value, "record %d", i)
						require.Equal(t, in[i].Timestamp.UnixMilli(), r.Timestamp.UnixMilli(), "record %d", i)
						require.Equal(t, len(in[i].Headers), len(r.Headers), "record %d", i)
						for j, h := range in[i].Headers {
							require.Equal(t, h, r.Headers[j], "record %d header %d", i, j)
						}
						require.EqualValues(t, i, in[i].Offset)
					}
				}
			}
		})
	}
}

// A batch of exactly the topic's max.message.bytes is appended; one a
// byte larger is refused, split, and its records sent in batches that
// fit, only a record too large alone failing (ErrRecordTooLarge, never
// with ErrMaybeWritten). With compression the limit is on the batch as
// compressed: a record fails only if its batch of its own, compressed,
// is over it.
func TestMaxMessageBytesBoundary(t *testing.T) {
	t0 := time.UnixMilli(1_700_000_000_000)
	in := boundaryRecords(t0)
	for _, codec := range []compression.Codec{compression.None, compression.Zstd, compression.Gzip} {
		exact := compressedSize(t, codec, in...)
		alone := compressedSize(t, codec, in[0])
		for _, limit := range []int{exact, exact - 1, alone, alone - 1} {
			t.Run(fmt.Sprintf("%v/max.message.bytes=%d", codec, limit), func(t *testing.T) {
				// A record is stamped 200000 h ahead: no TimestampAfterMax.
				b := newBroker(t, runneltest.TopicConfig("t", log.TopicConfig{Partitions: 1, Config: log.Config{MaxMessageBytes: limit, TimestampAfterMax: -1}}))
				p := newProducer(t, b, producer.DefaultTopic("t"), producer.Compression(codec),
					producer.Linger(time.Hour), producer.DeliveryTimeout(2*time.Hour))
				recs := boundaryRecords(t0)
				out := newOutcome()
				for _, r := range recs {
					p.Produce(testCtx(t), r, out.promise())
				}
				require.NoError(t, p.Flush(testCtx(t)))
				out.wait()
				batches := readBatches(t, b, "t", 0)
				for _, bt := range batches {
					require.LessOrEqual(t, len(bt), limit)
				}
				if limit == exact {
					require.Len(t, batches, 1)
				}
				var want []string
				for i, r := range recs {
					err := out.err(r)
					if compressedSize(t, codec, in[i]) > limit {
						require.ErrorIs(t, err, producer.ErrRecordTooLarge, "record %d", i)
						require.NotErrorIs(t, err, producer.ErrMaybeWritten, "record %d", i)
						continue
					}
					require.NoError(t, err, "record %d", i)
					want = append(want, string(r.Value))
				}
				require.Equal(t, want, values(readRecords(t, b, "t", 0)))
			})
		}
	}
}
