package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/runnel/runnel/compression"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var codecs = []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd}

type rec struct {
	ts         int64
	key, value []byte
	headers    []Header
}

func sampleRecords(rng *rand.Rand, n int) []rec {
	out := make([]rec, n)
	base := int64(1_700_000_000_000)
	for i := range out {
		r := rec{ts: base + int64(rng.IntN(2000)) - 1000}
		switch rng.IntN(4) {
		case 0: // null key
		case 1:
			r.key = []byte{}
		default:
			r.key = fmt.Appendf(nil, "key-%d", rng.IntN(50))
		}
		if rng.IntN(5) != 0 {
			r.value = bytes.Repeat([]byte{byte('a' + i%26)}, rng.IntN(300))
		}
		for h := rng.IntN(3); h > 0; h-- {
			var v []byte
			if rng.IntN(2) == 0 {
				v = fmt.Appendf(nil, "hv%d", h)
			}
			r.headers = append(r.headers, Header{Key: fmt.Sprintf("h%d", h), Value: v})
		}
		out[i] = r
	}
	return out
}

func build(t testing.TB, b *Builder, recs []rec, codec compression.Codec) Batch {
	t.Helper()
	for _, r := range recs {
		b.Append(r.ts, r.key, r.value, r.headers)
	}
	batch, err := b.Finish(codec)
	require.NoError(t, err)
	return append(Batch(nil), batch...)
}

func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, codec := range codecs {
		for _, n := range []int{1, 2, 17, 500} {
			t.Run(fmt.Sprintf("%v/%d", codec, n), func(t *testing.T) {
				recs := sampleRecords(rng, n)
				var b Builder
				b.SetProducer(77, 3, 1000)
				batch := build(t, &b, recs, codec)
				batch.SetBaseOffset(4242)
				batch.SetLeaderEpoch(9)

				got, err := Parse(append(batch, 0xff, 0xff), 100)
				require.NoError(t, err)
				require.Equal(t, len(batch), len(got))
				require.NoError(t, got.Validate(100))
				require.NoError(t, got.ValidateRecords(100, 0))
				require.Equal(t, codec, got.Codec())
				require.EqualValues(t, n, got.NumRecords())
				require.EqualValues(t, 4242+n-1, got.LastOffset())
				require.EqualValues(t, 77, got.ProducerID())
				require.EqualValues(t, 3, got.ProducerEpoch())
				require.EqualValues(t, 1000, got.BaseSequence())
				require.EqualValues(t, 1000+n-1, got.LastSequence())

				maxTs := recs[0].ts
				i := 0
				for r, err := range got.Records() {
					require.NoError(t, err)
					want := recs[i]
					require.EqualValues(t, 4242+i, r.Offset)
					require.Equal(t, want.ts, r.Timestamp.UnixMilli())
					require.Equal(t, want.key, r.Key, "key %d", i)
					require.Equal(t, want.value, r.Value, "value %d", i)
					require.Equal(t, want.key == nil, r.Key == nil)
					require.Equal(t, want.value == nil, r.Value == nil)
					require.Equal(t, len(want.headers), len(r.Headers))
					for h := range want.headers {
						require.Equal(t, want.headers[h].Key, r.Headers[h].Key)
						require.Equal(t, want.headers[h].Value, r.Headers[h].Value)
					}
					require.EqualValues(t, 9, r.LeaderEpoch)
					require.EqualValues(t, 1000+i, r.Sequence)
					maxTs = max(maxTs, want.ts)
					i++
				}
				require.Equal(t, n, i)
				require.Equal(t, maxTs, got.MaxTimestamp())
				require.Equal(t, recs[0].ts, got.BaseTimestamp())
			})
		}
	}
}

func TestOffsetRewriteKeepsCRC(t *testing.T) {
	var b Builder
	batch := build(t, &b, sampleRecords(rand.New(rand.NewPCG(3, 4)), 10), compression.None)
	crc := batch.CRC()
	batch.SetBaseOffset(1 << 40)
	batch.SetLeaderEpoch(12345)
	require.Equal(t, crc, batch.CRC())
	require.NoError(t, batch.Validate(0))
}

func TestLogAppendTime(t *testing.T) {
	var b Builder
	batch := build(t, &b, sampleRecords(rand.New(rand.NewPCG(5, 6)), 5), compression.Zstd)
	batch.SetLogAppendTime(1234567)
	require.NoError(t, batch.Validate(0))
	require.Equal(t, LogAppendTime, batch.TimestampType())
	for r, err := range batch.Records() {
		require.NoError(t, err)
		require.EqualValues(t, 1234567, r.Timestamp.UnixMilli())
		require.Equal(t, LogAppendTime, r.TimestampType)
	}
}

// TestSetCreateTime: a batch marked LogAppendTime goes back to its
// records' create times, with the CRC recomputed, and readers report each
// record's own timestamp again.
func TestSetCreateTime(t *testing.T) {
	for _, codec := range []compression.Codec{compression.None, compression.Zstd} {
		var b Builder
		recs := sampleRecords(rand.New(rand.NewPCG(9, 10)), 5)
		batch := build(t, &b, recs, codec)
		batch.SetLogAppendTime(1234567)
		batch.SetCreateTime(-1)
		require.NoError(t, batch.Validate(0), "the CRC follows")
		require.Equal(t, CreateTime, batch.TimestampType())
		require.EqualValues(t, -1, batch.MaxTimestamp())
		require.Equal(t, codec, batch.Codec(), "the other attributes stay")
		i := 0
		for r, err := range batch.Records() {
			require.NoError(t, err)
			require.Equal(t, recs[i].ts, r.Timestamp.UnixMilli())
			require.Equal(t, CreateTime, r.TimestampType)
			i++
		}
		require.Equal(t, len(recs), i)
	}
}

// TestBuilderMaxTimestamp: the max timestamp starts at NoTimestamp, as
// Kafka's MemoryRecordsBuilder's does: records all below -1 leave it -1.
func TestBuilderMaxTimestamp(t *testing.T) {
	for _, c := range []struct {
		ts   []int64
		want int64
	}{
		{[]int64{-10, -7}, NoTimestamp},
		{[]int64{-7, -1, -3}, -1},
		{[]int64{-7, 0}, 0},
		{[]int64{5, 3, 9, 1}, 9},
		{[]int64{math.MinInt64}, NoTimestamp},
	} {
		var b Builder
		for _, ts := range c.ts {
			b.Append(ts, nil, []byte("v"), nil)
		}
		batch, err := b.Finish(compression.None)
		require.NoError(t, err)
		require.Equal(t, c.want, batch.MaxTimestamp(), "%v", c.ts)
		require.Equal(t, c.ts[0], batch.BaseTimestamp())
		i := 0
		for r, err := range batch.Records() {
			require.NoError(t, err)
			require.Equal(t, c.ts[i], r.Timestamp.UnixMilli())
			i++
		}
	}
}

func TestNoProducer(t *testing.T) {
	var b Builder
	b.SetProducer(5, 5, 5)
	b.Reset()
	batch := build(t, &b, sampleRecords(rand.New(rand.NewPCG(7, 8)), 3), compression.None)
	require.EqualValues(t, NoProducerID, batch.ProducerID())
	require.EqualValues(t, NoSequence, batch.BaseSequence())
	require.EqualValues(t, NoSequence, batch.LastSequence())
	for r, err := range batch.Records() {
		require.NoError(t, err)
		require.EqualValues(t, NoSequence, r.Sequence)
	}
}

func TestEmptyBuilder(t *testing.T) {
	var b Builder
	batch, err := b.Finish(compression.None)
	require.NoError(t, err)
	require.Nil(t, batch)
}

func TestRecordSize(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, r := range sampleRecords(rng, 200) {
		delta := int64(rng.IntN(1 << 20))
		enc := AppendRecord(nil, r.ts, delta, r.key, r.value, r.headers)
		require.Equal(t, len(enc), RecordSize(r.ts, delta, r.key, r.value, r.headers))
	}
}

// TestCorrupt covers each kind of bad input: every one is an error matching
// ErrCorrupt, and torn input also matches ErrTruncated.
func TestCorrupt(t *testing.T) {
	var b Builder
	good := build(t, &b, sampleRecords(rand.New(rand.NewPCG(11, 12)), 20), compression.None)
	mutate := func(f func(Batch) Batch) Batch {
		c := append(Batch(nil), good...)
		return f(c)
	}
	setCount := func(n uint32) func(Batch) Batch {
		return func(c Batch) Batch {
			binary.BigEndian.PutUint32(c[offCount:], n)
			c.UpdateCRC()
			return c
		}
	}
	cases := []struct {
		name      string
		in        Batch
		truncated bool
		stage     string // parse, validate or records
	}{
		{"empty", Batch{}, true, "parse"},
		{"short header", good[:8], true, "parse"},
		{"truncated body", good[:len(good)-1], true, "parse"},
		{"length below header", mutate(func(c Batch) Batch { binary.BigEndian.PutUint32(c[offLength:], 10); return c }), false, "parse"},
		{"negative length", mutate(func(c Batch) Batch { binary.BigEndian.PutUint32(c[offLength:], 0xffffffff); return c }), false, "parse"},
		{"length past data", mutate(func(c Batch) Batch { binary.BigEndian.PutUint32(c[offLength:], 1<<30); return c }), true, "parse"},
		{"wrong magic", mutate(func(c Batch) Batch { c[offMagic] = 1; return c }), false, "parse"},
		{"bad crc", mutate(func(c Batch) Batch { c[len(c)-1] ^= 0xff; return c }), false, "validate"},
		{"unknown codec", mutate(func(c Batch) Batch { c[offAttributes+1] |= 7; c.UpdateCRC(); return c }), false, "validate"},
		{"negative count", setCount(0xffffffff)(append(Batch(nil), good...)), false, "validate"},
		{"count above records", setCount(19)(append(Batch(nil), good...)), false, "records"},
		{"count too large for bytes", mutate(func(c Batch) Batch {
			binary.BigEndian.PutUint32(c[offCount:], 1<<20)
			binary.BigEndian.PutUint32(c[offLastDelta:], 1<<20)
			c.UpdateCRC()
			return c
		}), false, "validate"},
		{"delta below count", mutate(func(c Batch) Batch { binary.BigEndian.PutUint32(c[offLastDelta:], 3); c.UpdateCRC(); return c }), false, "validate"},
		{"bad record length", mutate(func(c Batch) Batch { c[HeaderSize] = 0x7f; c.UpdateCRC(); return c }), false, "records"},
		{"negative record length", mutate(func(c Batch) Batch { c[HeaderSize] = 0x03; c.UpdateCRC(); return c }), false, "records"},
		{"overflowing varint", mutate(func(c Batch) Batch {
			for i := HeaderSize + 3; i < HeaderSize+14; i++ {
				c[i] = 0xff
			}
			c.UpdateCRC()
			return c
		}), false, "records"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			batch, perr := Parse(tc.in, 500)
			switch {
			case perr != nil:
				err = perr
				require.Equal(t, "parse", tc.stage, "failed at parse: %v", perr)
			default:
				if verr := batch.Validate(500); verr != nil {
					err = verr
					require.Equal(t, "validate", tc.stage, "failed at validate: %v", verr)
				} else {
					err = batch.ValidateRecords(500, 0)
					require.Equal(t, "records", tc.stage)
				}
			}
			require.Error(t, err)
			require.ErrorIs(t, err, ErrCorrupt)
			require.Equal(t, tc.truncated, errors.Is(err, ErrTruncated), "%v", err)
			var ce *CorruptError
			require.ErrorAs(t, err, &ce)
			require.EqualValues(t, 500, ce.Position)
		})
	}
}

func TestCorruptCompressed(t *testing.T) {
	var b Builder
	for _, codec := range codecs[1:] {
		b.Reset()
		batch := build(t, &b, sampleRecords(rand.New(rand.NewPCG(13, 14)), 20), codec)
		for i := HeaderSize; i < len(batch); i += 7 {
			c := append(Batch(nil), batch...)
			c[i] ^= 0x5a
			c.UpdateCRC() // get past the CRC to the decoder
			_ = c.ValidateRecords(0, 1<<20)
		}
		// a payload that inflates past the limit
		c := append(Batch(nil), batch...)
		err := c.ValidateRecords(0, 10)
		require.ErrorIs(t, err, ErrCorrupt, "%v", codec)
		require.ErrorIs(t, err, compression.ErrTooLarge, "%v", codec)
	}
}

// TestKmsgInterop decodes our batches with franz-go's independent kmsg
// decoder: our format must be Kafka's.
func TestKmsgInterop(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for _, codec := range codecs {
		t.Run(codec.String(), func(t *testing.T) {
			recs := sampleRecords(rng, 50)
			var b Builder
			b.SetProducer(1234, 2, 77)
			batch := build(t, &b, recs, codec)
			batch.SetBaseOffset(1000)
			batch.SetLeaderEpoch(5)

			var kb kmsg.RecordBatch
			require.NoError(t, kb.ReadFrom(batch))
			require.EqualValues(t, 1000, kb.FirstOffset)
			require.EqualValues(t, 5, kb.PartitionLeaderEpoch)
			require.EqualValues(t, 2, kb.Magic)
			require.EqualValues(t, len(batch)-12, kb.Length)
			require.EqualValues(t, batch.ComputeCRC(), uint32(kb.CRC))
			require.EqualValues(t, codec, kb.Attributes&7)
			require.EqualValues(t, 49, kb.LastOffsetDelta)
			require.EqualValues(t, 1234, kb.ProducerID)
			require.EqualValues(t, 2, kb.ProducerEpoch)
			require.EqualValues(t, 77, kb.FirstSequence)
			require.EqualValues(t, 50, kb.NumRecords)
			// kmsg re-encodes to the same bytes.
			require.Equal(t, []byte(batch), kb.AppendTo(nil))

			raw, err := codec.AppendDecode(nil, kb.Records, 0)
			require.NoError(t, err)
			for i, want := range recs {
				var kr kmsg.Record
				length, n := binary.Varint(raw)
				require.Greater(t, n, 0)
				require.NoError(t, kr.ReadFrom(raw[:n+int(length)]))
				raw = raw[n+int(length):]
				require.EqualValues(t, i, kr.OffsetDelta)
				require.Equal(t, want.ts-recs[0].ts, kr.TimestampDelta64)
				require.Equal(t, want.key, kr.Key)
				require.Equal(t, want.value, kr.Value)
				require.Equal(t, len(want.headers), len(kr.Headers))
				for h := range want.headers {
					require.Equal(t, want.headers[h].Key, kr.Headers[h].Key)
					require.Equal(t, want.headers[h].Value, kr.Headers[h].Value)
				}
			}
			require.Empty(t, raw)
		})
	}
}

// TestKmsgEncoded decodes batches that kmsg encoded.
func TestKmsgEncoded(t *testing.T) {
	var recs []byte
	for i := range 3 {
		kr := kmsg.Record{
			TimestampDelta64: int64(i * 10),
			OffsetDelta:      int32(i),
			Key:              []byte{byte('a' + i)},
			Value:            []byte("value"),
			Headers:          []kmsg.Header{{Key: "k", Value: []byte("v")}},
		}
		kr.Length = int32(len(kr.AppendTo(nil)) - 1) // length prefix of a small record is one byte
		recs = kr.AppendTo(recs)
	}
	kb := kmsg.RecordBatch{
		FirstOffset: 7, Magic: 2, LastOffsetDelta: 2, FirstTimestamp: 1000, MaxTimestamp: 1020,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 3, Records: recs,
	}
	raw := kb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	batch, err := Parse(raw, 0)
	require.NoError(t, err)
	batch.UpdateCRC() // kmsg leaves CRC and length to the caller
	require.NoError(t, batch.Validate(0))
	i := 0
	for r, err := range batch.Records() {
		require.NoError(t, err)
		require.EqualValues(t, 7+i, r.Offset)
		require.EqualValues(t, 1000+10*i, r.Timestamp.UnixMilli())
		require.Equal(t, []byte{byte('a' + i)}, r.Key)
		require.Equal(t, []Header{{Key: "k", Value: []byte("v")}}, r.Headers)
		i++
	}
	require.Equal(t, 3, i)
}

// TestBuilderIsWhatProducersWrite compares the builder's uncompressed
// batches byte for byte with the batch a Kafka producer (Java's
// MemoryRecordsBuilder, franz-go's kgo) writes for the same records, encoded
// here with kmsg: base offset 0, partition leader epoch -1 (the broker
// stamps its own), the first record's timestamp as the base, the largest as
// the max.
func TestBuilderIsWhatProducersWrite(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	for _, idempotent := range []bool{false, true} {
		recs := sampleRecords(rng, 20)
		var b Builder
		kb := kmsg.RecordBatch{
			Magic: 2, LastOffsetDelta: int32(len(recs) - 1), FirstTimestamp: recs[0].ts,
			PartitionLeaderEpoch: -1, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
			NumRecords: int32(len(recs)),
		}
		if idempotent {
			b.SetProducer(4321, 7, 99)
			b.SetTransactional(true)
			kb.ProducerID, kb.ProducerEpoch, kb.FirstSequence = 4321, 7, 99
			kb.Attributes = AttrTransactional
		}
		kb.MaxTimestamp = NoTimestamp
		for i, r := range recs {
			kr := kmsg.Record{
				TimestampDelta64: r.ts - recs[0].ts, OffsetDelta: int32(i),
				Key: r.key, Value: r.value,
			}
			for _, h := range r.headers {
				kr.Headers = append(kr.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
			}
			body := kr.AppendTo(nil)
			_, n := binary.Varint(body) // kmsg writes the Length field as given: skip it
			body = body[n:]
			kb.Records = append(binary.AppendVarint(kb.Records, int64(len(body))), body...)
			kb.MaxTimestamp = max(kb.MaxTimestamp, r.ts)
		}
		want := kb.AppendTo(nil)
		binary.BigEndian.PutUint32(want[offLength:], uint32(len(want)-LogOverhead))
		Batch(want).UpdateCRC()

		got := build(t, &b, recs, compression.None)
		require.Equal(t, want[:HeaderSize], []byte(got[:HeaderSize]), "header, idempotent %v", idempotent)
		require.Equal(t, want, []byte(got), "idempotent %v", idempotent)
	}
}

// TestNegativeLengthsAreNull: a key, value or header value whose length
// is negative reads as null, whatever the negative number, as Kafka's
// DefaultRecord.readFrom reads it (keySize >= 0 ? bytes : null) and
// franz-go's kmsg too; a header key's negative length is corrupt, as in
// Kafka. A broker checks only the framing of what it appends: a record it
// accepted must decode.
func TestNegativeLengthsAreNull(t *testing.T) {
	var body []byte
	body = append(body, 0)                  // attributes
	body = binary.AppendVarint(body, 0)     // timestamp delta
	body = binary.AppendVarint(body, 0)     // offset delta
	body = binary.AppendVarint(body, -2)    // key: null
	body = binary.AppendVarint(body, -1000) // value: null
	body = binary.AppendVarint(body, 2)     // headers
	body = binary.AppendVarint(body, 1)
	body = append(body, 'h')
	body = binary.AppendVarint(body, -7) // null
	body = binary.AppendVarint(body, 1)
	body = append(body, 'i')
	body = binary.AppendVarint(body, math.MinInt32) // null
	records := append(binary.AppendVarint(nil, int64(len(body))), body...)

	var kr kmsg.Record
	require.NoError(t, kr.ReadFrom(records))
	require.Nil(t, kr.Key)
	require.Nil(t, kr.Value)
	require.Nil(t, kr.Headers[0].Value)

	kb := kmsg.RecordBatch{
		Magic: 2, FirstTimestamp: 5, MaxTimestamp: 5, PartitionLeaderEpoch: -1,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 1, Records: records,
	}
	raw := kb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[offLength:], uint32(len(raw)-LogOverhead))
	batch := Batch(raw)
	batch.UpdateCRC()
	require.NoError(t, batch.Validate(0))
	maxTs, err := batch.CheckFraming(0)
	require.NoError(t, err, "the broker's append check takes it")
	require.EqualValues(t, 5, maxTs)
	require.NoError(t, batch.ValidateRecords(0, 0))
	n := 0
	for r, err := range batch.Records() {
		require.NoError(t, err)
		require.Nil(t, r.Key)
		require.Nil(t, r.Value)
		require.Equal(t, []Header{{Key: "h"}, {Key: "i"}}, r.Headers)
		n++
	}
	require.Equal(t, 1, n)

	// A header key may not be null, in Kafka either.
	bad := bytes.Replace(raw, []byte{2, 'h'}, []byte{3, 'h'}, 1) // key length -2
	Batch(bad).UpdateCRC()
	require.ErrorIs(t, Batch(bad).ValidateRecords(0, 0), ErrCorrupt)
}

// kafkaSegments are the directories of testdata/kafka-segments.
var kafkaSegments = []string{"a", "b"}

// kafkaSegment is the .log file written by Apache Kafka in directory dir
// of testdata/kafka-segments.
func kafkaSegment(t testing.TB, dir string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "kafka-segments", dir, "__cluster_metadata-0", "00000000000000000000.log"))
	require.NoError(t, err)
	return data
}

// TestKafkaSegments reads every batch of .log files written by Apache Kafka.
func TestKafkaSegments(t *testing.T) {
	want := map[string][2]int{"a": {2, 4}, "b": {2, 3}}
	for dir, counts := range want {
		data := kafkaSegment(t, dir)
		batches, records := 0, 0
		for pos := 0; pos < len(data); {
			b, err := Parse(data[pos:], int64(pos))
			require.NoError(t, err)
			require.NoError(t, b.Validate(int64(pos)))
			require.NoError(t, b.ValidateRecords(int64(pos), 0))
			// The builder writes what Kafka wrote, byte for byte, given
			// the same records and the fields a broker stamps.
			var bld Builder
			if b.ProducerID() != NoProducerID {
				bld.SetProducer(b.ProducerID(), b.ProducerEpoch(), b.BaseSequence())
			}
			bld.SetTransactional(b.IsTransactional())
			for r, err := range b.Records() {
				require.NoError(t, err)
				require.GreaterOrEqual(t, r.Offset, b.BaseOffset())
				require.True(t, r.Timestamp.After(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)))
				bld.AppendAt(r.Offset-b.BaseOffset(), r.Timestamp.UnixMilli(), r.Key, r.Value, r.Headers)
				records++
			}
			if !b.IsControl() && b.Codec() == compression.None {
				again, err := bld.Finish(compression.None)
				require.NoError(t, err)
				again.SetBaseOffset(b.BaseOffset())
				again.SetLeaderEpoch(b.LeaderEpoch())
				require.Equal(t, []byte(b), []byte(again), "%s: batch at %d rebuilt", dir, pos)
			}
			batches++
			pos += len(b)
		}
		require.Equal(t, counts[0], batches, dir)
		require.Equal(t, counts[1], records, dir)
	}
}

func TestAppendAllocs(t *testing.T) {
	var b Builder
	key, value := []byte("key-123"), bytes.Repeat([]byte("v"), 100)
	for range 1000 {
		b.Append(1, key, value, nil)
	}
	b.Reset()
	allocs := testing.AllocsPerRun(100, func() {
		b.Reset()
		for range 1000 {
			b.Append(1, key, value, nil)
		}
		if _, err := b.Finish(compression.None); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs)
}

// TestRewrite covers what the log cleaner needs: gaps in offset deltas, a
// kept offset range, empty batches and the delete horizon.
func TestRewrite(t *testing.T) {
	for _, codec := range codecs {
		var b Builder
		b.Reset()
		b.SetDeleteHorizon(5000)
		b.SetLastOffsetDelta(9)
		b.AppendAt(2, 4000, []byte("a"), nil, nil)
		b.AppendAt(7, 4500, []byte("b"), []byte("v"), nil)
		batch, err := b.Finish(codec)
		require.NoError(t, err)
		batch.SetBaseOffset(100)
		require.NoError(t, batch.Validate(0))
		require.NoError(t, batch.ValidateRecords(0, 0))
		require.True(t, batch.HasDeleteHorizon())
		require.EqualValues(t, 5000, batch.BaseTimestamp())
		require.EqualValues(t, 4500, batch.MaxTimestamp())
		require.EqualValues(t, 109, batch.LastOffset())
		var offs, tss []int64
		for r, err := range batch.Records() {
			require.NoError(t, err)
			offs = append(offs, r.Offset)
			tss = append(tss, r.Timestamp.UnixMilli())
		}
		require.Equal(t, []int64{102, 107}, offs)
		require.Equal(t, []int64{4000, 4500}, tss)

		// var kb kmsg.RecordBatch reads it too.
		var kb kmsg.RecordBatch
		require.NoError(t, kb.ReadFrom(batch))
		require.EqualValues(t, 9, kb.LastOffsetDelta)

		b.Reset()
		b.SetLastOffsetDelta(4)
		empty, err := b.Finish(codec)
		require.NoError(t, err)
		require.NotNil(t, empty)
		require.NoError(t, empty.Validate(0))
		require.NoError(t, empty.ValidateRecords(0, 0))
		require.EqualValues(t, 0, empty.NumRecords())
		require.EqualValues(t, 4, empty.LastOffsetDelta())
		require.EqualValues(t, NoTimestamp, empty.MaxTimestamp())
	}
}

func TestBatches(t *testing.T) {
	var b Builder
	var data []byte
	for i := range 3 {
		b.Reset()
		b.Append(int64(i), nil, []byte{byte(i)}, nil)
		var err error
		data, err = b.AppendTo(data, compression.None)
		require.NoError(t, err)
	}
	n := 0
	for batch, err := range Batches(data) {
		require.NoError(t, err)
		for r, err := range batch.Records() {
			require.NoError(t, err)
			require.Equal(t, []byte{byte(n)}, r.Value)
		}
		n++
	}
	require.Equal(t, 3, n)
	var last error
	for _, err := range Batches(data[:len(data)-1]) {
		last = err
	}
	require.ErrorIs(t, last, ErrTruncated)
}

func TestCheckFraming(t *testing.T) {
	var b Builder
	good := build(t, &b, sampleRecords(rand.New(rand.NewPCG(31, 32)), 20), compression.None)
	maxTs, err := good.CheckFraming(0)
	require.NoError(t, err)
	require.Equal(t, good.MaxTimestamp(), maxTs, "the records' largest timestamp")
	for _, count := range []uint32{19, 21, 0} {
		c := append(Batch(nil), good...)
		binary.BigEndian.PutUint32(c[offCount:], count)
		_, err := c.CheckFraming(0)
		require.ErrorIs(t, err, ErrCorrupt, "count %d", count)
	}
	c := append(Batch(nil), good...)
	c[HeaderSize] = 0x7f // first record's length now runs past the batch
	_, err = c.CheckFraming(0)
	require.ErrorIs(t, err, ErrCorrupt)
	b.Reset()
	zstd := build(t, &b, sampleRecords(rand.New(rand.NewPCG(33, 34)), 5), compression.Zstd)
	maxTs, err = zstd.CheckFraming(0)
	require.NoError(t, err)
	require.Equal(t, zstd.MaxTimestamp(), maxTs, "a compressed batch's header")

	// The header's max timestamp is not where CheckFraming reads it.
	b.Reset()
	ts := build(t, &b, []rec{{ts: 1000, value: []byte("a")}, {ts: 3000, value: []byte("b")}, {ts: 2000, value: []byte("c")}}, compression.None)
	binary.BigEndian.PutUint64(ts[offMaxTime:], 9999)
	maxTs, err = ts.CheckFraming(0)
	require.NoError(t, err)
	require.EqualValues(t, 3000, maxTs)

	// The largest timestamp, not the largest delta: deltas wrap around
	// (a varlong of timestamp - base, as Kafka's are) when the base is far
	// below the others, and Kafka's broker takes the largest of the
	// records' timestamps (base + delta).
	for _, c := range [][]int64{
		{math.MinInt64, 1000, 5},
		{math.MinInt64 + 1, 1_700_000_000_000},
		{-1 << 62, 1 << 62},
	} {
		var recs []rec
		for _, ts := range c {
			recs = append(recs, rec{ts: ts, value: []byte("v")})
		}
		b.Reset()
		batch := build(t, &b, recs, compression.None)
		maxTs, err = batch.CheckFraming(0)
		require.NoError(t, err)
		require.Equal(t, slices.Max(c), maxTs, "%v", c)
		require.Equal(t, slices.Max(c), batch.MaxTimestamp(), "%v", c)
		i := 0
		for r, err := range batch.Records() {
			require.NoError(t, err)
			require.Equal(t, c[i], r.Timestamp.UnixMilli())
			i++
		}
	}
}

// TestCheckFramingChecksFields: what a broker takes must decode. A batch
// whose records are framed right but malformed inside (a field past its
// record, a header count or key that cannot be, offset deltas out of
// order) is refused by CheckFraming and CheckFramingBuffer, as by
// ValidateRecords, as Kafka's broker refuses it (it reads every record of
// a produced batch with DefaultRecord.readFrom): else it would be stored,
// acknowledged, and then fail every consumer.
func TestCheckFramingChecksFields(t *testing.T) {
	// record returns one record's bytes, its length prefix first, with
	// the given offset delta, key length field (and key) and header bytes.
	record := func(offDelta, keyLen int64, key string, headers []byte, tail ...byte) []byte {
		var body []byte
		body = append(body, 0)
		body = binary.AppendVarint(body, 0)
		body = binary.AppendVarint(body, offDelta)
		body = binary.AppendVarint(body, keyLen)
		body = append(body, key...)
		body = binary.AppendVarint(body, 1)
		body = append(body, 'v')
		body = append(body, headers...)
		body = append(body, tail...)
		return append(binary.AppendVarint(nil, int64(len(body))), body...)
	}
	noHeaders := []byte{0}
	oneHeader := append(append(binary.AppendVarint(nil, 1), binary.AppendVarint(nil, 1)...), 'h', 1) // "h": null
	batchOf := func(codec compression.Codec, recs ...[]byte) Batch {
		var b Builder
		b.Append(0, nil, nil, nil)
		h, err := b.Finish(compression.None)
		require.NoError(t, err)
		raw := append([]byte(nil), h[:HeaderSize]...)
		payload, err := codec.AppendEncode(nil, bytes.Join(recs, nil))
		require.NoError(t, err)
		raw = append(raw, payload...)
		binary.BigEndian.PutUint32(raw[offLength:], uint32(len(raw)-LogOverhead))
		binary.BigEndian.PutUint32(raw[offCount:], uint32(len(recs)))
		binary.BigEndian.PutUint32(raw[offLastDelta:], uint32(len(recs)-1))
		binary.BigEndian.PutUint16(raw[offAttributes:], uint16(codec))
		Batch(raw).UpdateCRC()
		return Batch(raw)
	}
	good := [][]byte{record(0, 1, "k", oneHeader), record(1, -1, "", noHeaders)}
	for _, codec := range []compression.Codec{compression.None, compression.Zstd} {
		b := batchOf(codec, good...)
		require.NoError(t, b.ValidateRecords(0, 0), codec)
		_, _, err := b.CheckFramingBuffer(0, 0, nil)
		require.NoError(t, err, codec)
	}
	for name, recs := range map[string][][]byte{
		"header count past the record": {good[0], record(1, 1, "k", []byte{10})},
		"negative header count":        {good[0], record(1, 1, "k", []byte{1})},
		"null header key":              {good[0], record(1, 1, "k", []byte{2, 1, 1})},
		"byte after the headers":       {good[0], record(1, 1, "k", noHeaders, 0)},
		"key past the record":          {good[0], record(1, 40, "k", noHeaders)},
		"offset deltas out of order":   {record(1, 1, "k", noHeaders), record(0, 1, "k", noHeaders)},
		"offset delta repeated":        {good[0], record(0, 1, "k", noHeaders)},
		"offset delta past the last":   {good[0], record(2, 1, "k", noHeaders)},
		"negative offset delta":        {record(-1, 1, "k", noHeaders), good[1]},
	} {
		for _, codec := range []compression.Codec{compression.None, compression.Zstd} {
			b := batchOf(codec, recs...)
			require.ErrorIs(t, b.ValidateRecords(0, 0), ErrCorrupt, "%s, %v: the records do not decode", name, codec)
			if codec == compression.None {
				_, err := b.CheckFraming(0)
				require.ErrorIs(t, err, ErrCorrupt, "%s: CheckFraming", name)
			}
			_, _, err := b.CheckFramingBuffer(0, 0, nil)
			require.ErrorIs(t, err, ErrCorrupt, "%s, %v: CheckFramingBuffer", name, codec)
		}
	}
}

// TestCheckFramingBuffer: CheckFramingBuffer decompresses a batch of
// every codec and checks its framing, reusing the buffer; records that do
// not decompress, or not within the limit, or whose count disagrees, are
// ErrCorrupt.
func TestCheckFramingBuffer(t *testing.T) {
	var buf []byte
	for _, codec := range codecs {
		var b Builder
		good := build(t, &b, sampleRecords(rand.New(rand.NewPCG(35, 36)), 20), codec)
		var err error
		var maxTs int64
		buf, maxTs, err = good.CheckFramingBuffer(0, 0, buf)
		require.NoError(t, err, codec)
		require.Equal(t, good.MaxTimestamp(), maxTs, codec)

		c := append(Batch(nil), good...)
		binary.BigEndian.PutUint32(c[offCount:], 21)
		_, _, err = c.CheckFramingBuffer(7, 0, buf)
		require.ErrorIs(t, err, ErrCorrupt, codec)
		var ce *CorruptError
		require.ErrorAs(t, err, &ce)
		require.EqualValues(t, 7, ce.Position)
		if codec == compression.None {
			continue
		}
		c = append(Batch(nil), good...)
		for i := HeaderSize; i < len(c); i++ {
			c[i] = byte(i * 7)
		}
		_, _, err = c.CheckFramingBuffer(0, 0, buf)
		require.ErrorIs(t, err, ErrCorrupt, codec)
		_, _, err = good.CheckFramingBuffer(0, 10, buf)
		require.ErrorIs(t, err, ErrCorrupt, codec)
		require.ErrorIs(t, err, compression.ErrTooLarge, codec)
	}
}

// TestVarint: the decoder's varints, fast paths and all, agree with
// Kafka's ByteUtils.readVarint (kafkaVarint, see TestVarintsAsKafka),
// and varlong with its readVarlong (kafkaVarlong).
func TestVarint(t *testing.T) {
	// varint as the decoder reads it: the value and the bytes it took, or
	// bad and n <= 0.
	varint := func(data []byte) (int64, int) {
		d := decoder{b: data}
		v := d.varint()
		if d.bad {
			return v, -1
		}
		return v, len(data) - len(d.b)
	}
	for _, v := range []int64{0, 1, -1, 63, 64, -64, -65, 100, 8191, -8192, 8192, 1 << 20, math.MaxInt32, math.MinInt32, -(1 << 40), math.MinInt64} {
		buf := binary.AppendVarint(nil, v)
		for _, tail := range [][]byte{nil, {0}, {0x80, 0x80}} {
			data := append(append([]byte{}, buf...), tail...)
			got, m := varint(data)
			want, wm, ok := kafkaVarint(data)
			require.Equal(t, ok, m > 0, "%d", v)
			if ok {
				require.EqualValues(t, want, got, "%d", v)
				require.Equal(t, wm, m, "%d", v)
			}
			got, m = varlong(data)
			wantl, wm, ok := kafkaVarlong(data)
			require.True(t, ok, "%d", v)
			require.Equal(t, v, got, "%d", v)
			require.Equal(t, wantl, got, "%d", v)
			require.Equal(t, wm, m, "%d", v)
		}
	}
	for _, bad := range [][]byte{nil, {0x80}, {0x80, 0x80}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}} {
		_, m := varint(bad)
		require.Negative(t, m, "bad")
		_, m = varlong(bad)
		require.LessOrEqual(t, m, 0, "bad")
	}
	// varintShort, every one- and two-byte input: binary.Varint's answer
	// when that is one or two bytes long, else n = 0.
	for i := range 1 << 16 {
		for _, data := range [][]byte{{byte(i)}, {byte(i), byte(i >> 8)}} {
			got, m := varintShort(data)
			want, wm := binary.Varint(data)
			if wm == 1 || wm == 2 {
				require.Equal(t, want, got, "% x", data)
				require.Equal(t, wm, m, "% x", data)
			} else {
				require.Zero(t, m, "% x", data)
			}
		}
	}
}

// TestVarintAt: varintAt(b, i), which Next reads a record's fields with,
// is varintShort(b[i:]) for every one- and two-byte input, after 0 to 2
// bytes (of either continuation bit) and followed by nothing or by a byte
// of either; and n = 0 at and past b's end.
func TestVarintAt(t *testing.T) {
	for i := range 1 << 16 {
		for _, data := range [][]byte{{byte(i)}, {byte(i), byte(i >> 8)}} {
			for _, before := range [][]byte{nil, {0x80}, {0x01, 0xff}} {
				for _, after := range [][]byte{nil, {0x00}, {0x80}} {
					b := slices.Concat(before, data, after)
					b = b[:len(b):len(b)]
					v, n := varintAt(b, len(before))
					wv, wn := varintShort(b[len(before):])
					if v != wv || n != wn {
						t.Fatalf("varintAt(% x, %d) = %d, %d; varintShort reads %d, %d", b, len(before), v, n, wv, wn)
					}
				}
			}
		}
	}
	for _, b := range [][]byte{nil, {0x02}, {0x82, 0x01}} {
		for i := len(b); i <= len(b)+2; i++ {
			if _, n := varintAt(b, i); n != 0 {
				t.Fatalf("varintAt(% x, %d) read %d bytes", b, i, n)
			}
		}
	}
}

// decoder reads varint-framed fields, remembering the first failure: how
// RecordIter.decode read a record's fields before it read them into
// locals (see referenceDecode).
type decoder struct {
	b   []byte
	bad bool
}

// varint reads a field Kafka reads with ByteUtils.readVarint (all but
// the timestamp delta): see the function varint.
func (d *decoder) varint() int64 {
	if v, n := varintShort(d.b); n > 0 {
		d.b = d.b[n:]
		return v
	}
	return d.advance(varint(d.b))
}

// varlong reads the timestamp delta (see the function varlong).
func (d *decoder) varlong() int64 { return d.advance(varlong(d.b)) }

// advance consumes the n bytes of v, or marks d bad when n <= 0.
func (d *decoder) advance(v int64, n int) int64 {
	if n <= 0 {
		d.bad = true
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

// nullable reads a length-prefixed field; any negative length is null.
func (d *decoder) nullable() []byte {
	n := d.varint()
	switch {
	case d.bad:
		return nil
	case n < 0:
		return nil
	case n > int64(len(d.b)):
		d.bad = true
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// referenceDecode is RecordIter.decode as it was before it read the
// fields into locals (commit 0198bca9): the decoder above reads them one
// by one, and reports a failure once all five fixed ones are read.
func referenceDecode(it *RecordIter, body []byte, r *Record) error {
	d := decoder{b: body[1:]}
	tsDelta := d.varlong()
	offDelta := d.varint()
	key := d.nullable()
	value := d.nullable()
	nh := d.varint()
	if d.bad {
		return corrupt(it.pos, "bad record field")
	}
	h := &it.hdr
	if offDelta <= it.prevOff || offDelta > h.lastDelta {
		return corrupt(it.pos, "record offset delta out of order or past the last offset delta")
	}
	it.prevOff = offDelta
	if nh < 0 || nh > int64(len(d.b)/2) {
		return corrupt(it.pos, "bad header count")
	}
	var headers []Header
	if nh > 0 && !it.noHeader {
		headers = make([]Header, nh)
	}
	for i := 0; i < int(nh); i++ {
		hk := d.nullable()
		hv := d.nullable()
		if d.bad || hk == nil {
			return corrupt(it.pos, "bad record header")
		}
		if headers != nil {
			headers[i] = Header{Key: string(hk), Value: hv}
		}
	}
	if d.bad || len(d.b) != 0 {
		return corrupt(it.pos, "record length disagrees with its fields")
	}
	ts := h.ts
	if h.tsType == CreateTime {
		ts += tsDelta
	}
	seq := int32(NoSequence)
	if h.baseSeq >= 0 {
		seq = AddSequence(h.baseSeq, offDelta)
	}
	*r = Record{
		Offset:        h.baseOffset + offDelta,
		Timestamp:     time.UnixMilli(ts),
		TimestampType: h.tsType,
		Key:           key,
		Value:         value,
		Headers:       headers,
		LeaderEpoch:   h.leaderEpoch,
		ProducerID:    h.producerID,
		ProducerEpoch: h.producerEpoch,
		Sequence:      seq,
	}
	return nil
}

// TestDecodeAsReference: RecordIter.decode, which reads a record's
// fields into locals with inlined varints, decodes every record body
// as referenceDecode (the decoder it replaced) does: the same fields,
// down to the capacity of Key, Value and header values, or the same
// error, for bodies whose varints take every form Kafka takes or refuses
// (varintForms, varlongForms), whose lengths are null, empty, exact or
// one past the end, with headers or not, cut short or with a byte added,
// and with one byte changed at random; under SkipHeaders too, and into a
// record whose every field was set before (decode must overwrite them
// all).
func TestDecodeAsReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(67, 3))
	// varint returns a form of the zigzag u of at most width bytes: most
	// often the shortest, else padded, with junk in a 5th (or 10th)
	// byte's bits past 32 (64), or one longer than Kafka takes.
	varint := func(u uint64, width int) []byte {
		short := len(binary.AppendUvarint(nil, u))
		switch r := rng.IntN(16); {
		case r < 11:
			return paddedVarint(u, short, 0)
		case r < 14:
			return paddedVarint(u, short+rng.IntN(width-short+1), 0)
		case r == 14:
			return paddedVarint(u, width, byte(0x70))
		}
		return paddedVarint(u, width+1+rng.IntN(11-width), 0)
	}
	varint32 := func(v int32) []byte { return varint(uint64(uint32(v<<1^v>>31)), 5) }
	varlong := func(v int64) []byte { return varint(uint64(v<<1^v>>63), 10) }
	// length returns a varint form of n, or now and then of n±1 or a
	// negative length.
	length := func(n int) []byte {
		switch rng.IntN(30) {
		case 0:
			n++
		case 1:
			n--
		case 2:
			n = -1 - rng.IntN(3)
		}
		return varint32(int32(n))
	}
	field := func(body []byte, max int) []byte {
		n := rng.IntN(max + 1)
		if rng.IntN(8) == 0 {
			n = 100 + rng.IntN(9000) // a two-byte length and more
		}
		body = append(body, length(n)...)
		for i := range n {
			body = append(body, byte('a'+i%26))
		}
		return body
	}
	garbage := Record{
		Topic: "t", Offset: 99, Timestamp: time.Unix(1, 2), Key: []byte("k"), Value: []byte("v"),
		Headers: []Header{{Key: "h"}}, ProducerID: 5, Partition: 6, LeaderEpoch: 7, Sequence: 8,
		ProducerEpoch: 9, TimestampType: LogAppendTime,
	}
	// Every field set, so that a field added to Record that decode does
	// not write fails the test.
	for i, v := 0, reflect.ValueOf(garbage); i < v.NumField(); i++ {
		require.False(t, v.Field(i).IsZero(), "garbage leaves Record.%s zero", v.Type().Field(i).Name)
	}
	deltas := []int64{0, 1, 63, 64, 8191, 8192, -1, -64, -65, -8192, -8193, math.MaxInt32, math.MinInt32, 1 << 40, -(1 << 50), math.MaxInt64, math.MinInt64}
	decoded, reasons := 0, map[string]int{}
	for i := range 20000 {
		body := []byte{byte(rng.IntN(256))} // attributes: unused
		body = append(body, varlong(deltas[rng.IntN(len(deltas))])...)
		off := int32(rng.IntN(300))
		if rng.IntN(20) == 0 {
			off = int32(deltas[rng.IntN(len(deltas))])
		}
		body = append(body, varint32(off)...)
		body = field(body, 12)
		body = field(body, 200)
		nh := 0
		if rng.IntN(3) == 0 {
			nh = 1 + rng.IntN(3)
		}
		body = append(body, length(nh)...)
		for range nh {
			body = field(body, 4)
			body = field(body, 4)
		}
		switch rng.IntN(10) {
		case 0:
			body = body[:rng.IntN(len(body)+1)]
		case 1:
			body = append(body, byte(rng.IntN(256)))
		case 2:
			if len(body) > 0 {
				body[rng.IntN(len(body))] = byte(rng.IntN(256))
			}
		}
		if len(body) == 0 {
			body = []byte{0} // Next never hands decode an empty body
		}
		body = body[:len(body):len(body)]
		it := RecordIter{pos: int64(i), prevOff: int64(rng.IntN(3)) - 1, noHeader: rng.IntN(4) == 0, hdr: batchFields{
			baseOffset: rng.Int64N(1 << 40), ts: 1_700_000_000_000 - rng.Int64N(1<<20), producerID: rng.Int64N(9) - 1,
			lastDelta: []int64{299, math.MaxInt32, 5}[rng.IntN(3)], baseSeq: []int32{-1, 0, math.MaxInt32 - 3}[rng.IntN(3)],
			leaderEpoch: rng.Int32N(9) - 1, producerEpoch: int16(rng.IntN(9) - 1), tsType: TimestampType(rng.IntN(2)),
		}}
		ref := it
		var want Record
		wantErr := referenceDecode(&ref, body, &want)
		got := garbage
		err := it.decode(body, &got)
		if wantErr != nil {
			reasons[wantErr.(*CorruptError).Reason]++
			require.Error(t, err, "body % x", body)
			require.Equal(t, wantErr.Error(), err.Error(), "body % x", body)
			continue
		}
		decoded++
		require.NoError(t, err, "body % x", body)
		require.Equal(t, want, got, "body % x", body)
		require.Equal(t, cap(want.Key), cap(got.Key), "body % x", body)
		require.Equal(t, cap(want.Value), cap(got.Value), "body % x", body)
		for j := range want.Headers {
			require.Equal(t, cap(want.Headers[j].Value), cap(got.Headers[j].Value), "body % x", body)
		}
		require.Equal(t, ref.prevOff, it.prevOff)
	}
	// Every outcome was met often enough to mean something.
	require.Greater(t, decoded, 2000)
	require.Len(t, reasons, 5)
	for reason, n := range reasons {
		require.Greater(t, n, 200, reason)
	}
}

// TestRecordSizeIsWhatBuilderEncodes: a batch's size is HeaderSize plus
// RecordSize of each record with its deltas from the first record's
// timestamp and offset (what a producer sizes batches by before it
// encodes them), also for negative and large timestamp deltas; after
// Grow to that size, encoding does not grow the buffer again.
func TestRecordSizeIsWhatBuilderEncodes(t *testing.T) {
	t0 := time.UnixMilli(1_700_000_000_000)
	recs := []*Record{
		{Timestamp: t0, Key: []byte("k1"), Value: []byte("first")},
		{Timestamp: t0.Add(time.Second), Value: []byte("second"), Headers: []Header{{Key: "h", Value: []byte("v")}}},
		{Timestamp: t0.Add(-time.Second), Key: []byte("k3"), Value: nil},
		{Timestamp: t0.Add(1000 * time.Hour), Value: make([]byte, 300)},
	}
	want := HeaderSize
	for i, r := range recs {
		want += RecordSize(r.Timestamp.UnixMilli()-t0.UnixMilli(), int64(i), r.Key, r.Value, r.Headers)
	}
	var b Builder
	b.Grow(want)
	b.Add(recs[0])
	buf := b.buf[:1]
	for _, r := range recs[1:] {
		b.Add(r)
	}
	require.Equal(t, want, b.Size())
	require.Same(t, &buf[0], &b.buf[0], "the buffer did not grow after Grow")
	got, err := b.Finish(compression.None)
	require.NoError(t, err)
	require.Equal(t, want, len(got))
}

// TestAddIsAppend: Add, written out for the producer, encodes the batch
// byte for byte as Append of the record's timestamp, key, value and
// headers does: the first record's timestamp the base, later ones below
// and above it, the max timestamp, with and without a delete horizon,
// in a reused builder and in a zero one (whose first Add starts it: its
// base timestamp and offset delta are the first record's, as Append's).
func TestAddIsAppend(t *testing.T) {
	t0 := time.UnixMilli(1_700_000_000_000)
	recs := []*Record{
		{Timestamp: t0, Key: []byte("k1"), Value: []byte("first")},
		{Timestamp: t0.Add(time.Second), Value: []byte("second"), Headers: []Header{{Key: "h", Value: []byte("v")}, {Key: "n"}}},
		{Timestamp: t0.Add(-time.Second), Key: []byte("k3"), Value: nil},
		{Timestamp: t0.Add(1000 * time.Hour), Key: []byte{}, Value: make([]byte, 300)},
		{Timestamp: time.UnixMilli(-5), Value: []byte("before 1970")},
	}
	var add, app Builder
	for _, zero := range []bool{false, true} {
		for _, horizon := range []int64{-1, t0.UnixMilli() - 10} {
			for n := 1; n <= len(recs); n++ {
				if zero {
					add, app = Builder{}, Builder{}
				} else {
					add.Reset()
					app.Reset()
				}
				if horizon >= 0 {
					add.SetDeleteHorizon(horizon)
					app.SetDeleteHorizon(horizon)
				}
				for _, r := range recs[:n] {
					add.Add(r)
					app.Append(r.Timestamp.UnixMilli(), r.Key, r.Value, r.Headers)
				}
				want, err := app.AppendTo(nil, compression.None)
				require.NoError(t, err)
				got, err := add.AppendTo(nil, compression.None)
				require.NoError(t, err)
				require.Equal(t, want, got, "zero builder %v, horizon %d, %d records", zero, horizon, n)
			}
		}
	}
}

// TestAddIsAppendAsItsBufferGrows: Add encodes as Append also where a
// record does not fit the capacity its buffer has left, and AppendRecord
// moves the batch to a larger array (Add keeps that array, where a
// record appended in place only sets the buffer's length): a record
// larger than the 4 KiB a zero builder starts with, then small ones up
// to the next growth, and one larger still. Builder's own tests grew
// the buffer in Append alone, and the producer's Add follows a Grow to
// the batch's size: Add keeping the old array (its capacity taken for
// the test of an append in place, >= for ==) passed them all.
func TestAddIsAppendAsItsBufferGrows(t *testing.T) {
	t0 := time.UnixMilli(1_700_000_000_000)
	recs := []*Record{{Timestamp: t0, Key: []byte("big"), Value: bytes.Repeat([]byte{'b'}, 5000)}}
	for i := range 200 {
		recs = append(recs, &Record{Timestamp: t0.Add(time.Duration(i) * time.Millisecond), Value: bytes.Repeat([]byte{byte(i)}, 50)})
	}
	recs = append(recs, &Record{Timestamp: t0, Value: bytes.Repeat([]byte{'c'}, 100_000), Headers: []Header{{Key: "h"}}})
	var add, app Builder
	grew := 0
	for _, r := range recs {
		before := cap(add.buf)
		add.Add(r)
		app.Append(r.Timestamp.UnixMilli(), r.Key, r.Value, r.Headers)
		if cap(add.buf) != before {
			grew++
		}
		require.Equal(t, app.buf, add.buf, "after %d records", add.count)
	}
	require.Greater(t, grew, 2, "the premise: Add grew the buffer, past its first")
	want, err := app.AppendTo(nil, compression.None)
	require.NoError(t, err)
	got, err := add.AppendTo(nil, compression.None)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

// TestSizeWithDeltas: a record's size from its BodySize and deltas is the
// size of the body encoded with those deltas plus its length prefix, also
// where the deltas push the length prefix to another byte count.
func TestSizeWithDeltas(t *testing.T) {
	deltas := []int64{0, 1, -1, 63, 64, -65, 8191, 8192, 1 << 40, -(1 << 40)}
	for n := 50; n < 140; n++ {
		value := make([]byte, n)
		headers := []Header{{Key: "h", Value: value[:n%7]}}
		body := BodySize(nil, value, headers)
		for _, ts := range deltas {
			for _, off := range deltas[:6] {
				direct := recordBodySize(ts, off, nil, value, headers)
				require.Equal(t, varintSize(int64(direct))+direct, SizeWithDeltas(body, ts, off), "value %d, deltas %d %d", n, ts, off)
			}
		}
	}
}

// TestBodySizeNoHeaders: BodySizeNoHeaders is BodySize without headers
// (nil or empty), and the size of such a body encoded at deltas of 0, for
// nil and empty keys and values and lengths at each side of where their
// length prefix takes another byte; nullableSize is the length
// appendNullable appends.
func TestBodySizeNoHeaders(t *testing.T) {
	var fields [][]byte
	fields = append(fields, nil, []byte{})
	for _, n := range []int{1, 63, 64, 65, 8191, 8192, 8193} {
		fields = append(fields, make([]byte, n))
	}
	for _, key := range fields {
		require.Equal(t, len(appendNullable(nil, key)), nullableSize(key), "%d bytes, nil %v", len(key), key == nil)
		for _, value := range fields {
			want := BodySize(key, value, nil)
			require.Equal(t, want, BodySizeNoHeaders(key, value), "key %d, value %d", len(key), len(value))
			require.Equal(t, want, BodySize(key, value, []Header{}), "key %d, value %d", len(key), len(value))
			require.Equal(t, recordBodySize(0, 0, key, value, nil), want, "key %d, value %d", len(key), len(value))
		}
	}
}

// TestVarintSize: varintSize is the length of binary.AppendVarint's
// encoding (lengthSize too, of x not negative), and appendVarint appends
// the same bytes, for every bit count, at each side of where the encoding
// takes another byte, and at the ends of int64.
func TestVarintSize(t *testing.T) {
	xs := []int64{0, math.MaxInt64, math.MinInt64, math.MaxInt64 - 1, math.MinInt64 + 1}
	for k := range 63 {
		p := int64(1) << k
		xs = append(xs, p, p-1, p+1, -p, -p-1, -p+1)
	}
	for _, x := range xs {
		want := binary.AppendVarint([]byte{7}, x)
		require.Equal(t, len(want)-1, varintSize(x), "x %d", x)
		if x >= 0 && x <= math.MaxInt { // a length: an int (32 bits on GOARCH=386)
			require.Equal(t, len(want)-1, lengthSize(int(x)), "x %d", x)
		}
		require.Equal(t, want, appendVarint([]byte{7}, x), "x %d", x)
	}
}

// TestRecordStructSize: a Record stays within the 144-byte size class its field
// order was chosen for (a field added or moved carelessly costs every
// produced and consumed record 32 more bytes).
func TestRecordStructSize(t *testing.T) {
	require.LessOrEqual(t, unsafe.Sizeof(Record{}), uintptr(144))
}

// TestAddSequence: sequence numbers wrap after MaxInt32 to 0, as Kafka's
// (DefaultRecordBatch.incrementSequence) — in a batch's last sequence and
// in the sequences its records decode with.
func TestAddSequence(t *testing.T) {
	require.EqualValues(t, 5, AddSequence(2, 3))
	require.EqualValues(t, math.MaxInt32, AddSequence(math.MaxInt32-1, 1))
	require.EqualValues(t, 0, AddSequence(math.MaxInt32, 1))
	require.EqualValues(t, 2, AddSequence(math.MaxInt32-1, 4))

	var b Builder
	for range 4 {
		b.Append(1, nil, []byte("v"), nil)
	}
	b.SetProducer(7, 0, math.MaxInt32-1)
	batch, err := b.Finish(compression.None)
	require.NoError(t, err)
	require.EqualValues(t, 1, batch.LastSequence())
	it, err := batch.Iter(0, 0)
	require.NoError(t, err)
	var seqs []int32
	var r Record
	for it.Next(&r) {
		seqs = append(seqs, r.Sequence)
	}
	require.NoError(t, it.Err())
	require.Equal(t, []int32{math.MaxInt32 - 1, math.MaxInt32, 0, 1}, seqs)
}

// TestMillisFit: the instants whose Unix milliseconds fit an int64 are
// exactly those MillisFit takes — at each end, the first and last
// nanosecond in, and the nearest out, whose UnixMilli wraps.
func TestMillisFit(t *testing.T) {
	first := time.UnixMilli(math.MinInt64)
	last := time.UnixMilli(math.MaxInt64).Add(time.Millisecond - 1)
	for _, c := range []struct {
		t  time.Time
		ms int64 // its UnixMilli, when it fits
		ok bool
	}{
		{first, math.MinInt64, true},
		{first.Add(-1), 0, false},
		{last, math.MaxInt64, true},
		{last.Add(1), 0, false},
		{time.Unix(0, 0), 0, true},
		{time.Time{}, time.Time{}.UnixMilli(), true},
		{time.Unix(2*(math.MaxInt64/1000+1), 0), 0, false},
		{time.Unix(-2*(math.MaxInt64/1000+1), 0), 0, false},
	} {
		require.Equal(t, c.ok, MillisFit(c.t), "%v", c.t)
		if c.ok {
			require.Equal(t, c.ms, c.t.UnixMilli(), "%v", c.t)
		}
	}
}

// TestShortBatch: every entry point that checks a batch refuses
// one shorter than a header — Validate, IterBuffer, CheckFraming,
// CheckFramingBuffer — with a *CorruptError at the position given,
// matching ErrCorrupt and ErrTruncated (a torn write, or a read that cut
// the batch), and does not panic (callers check the length first, so no
// other test gives them one).
func TestShortBatch(t *testing.T) {
	for _, n := range []int{0, 1, LogOverhead, HeaderSize - 1} {
		b := Batch(make([]byte, n))
		check := func(what string, err error) {
			t.Helper()
			require.ErrorIs(t, err, ErrCorrupt, "%s of %d bytes", what, n)
			require.ErrorIs(t, err, ErrTruncated, "%s of %d bytes", what, n)
			var ce *CorruptError
			require.True(t, errors.As(err, &ce), "%s: %T", what, err)
			require.Equal(t, int64(77), ce.Position, what)
		}
		check("Validate", b.Validate(77))
		_, err := b.IterBuffer(77, 1<<20, nil)
		check("IterBuffer", err)
		ts, err := b.CheckFraming(77)
		check("CheckFraming", err)
		require.Equal(t, int64(NoTimestamp), ts)
		buf := make([]byte, 0, 8)
		out, ts, err := b.CheckFramingBuffer(77, 1<<20, buf)
		check("CheckFramingBuffer", err)
		require.Equal(t, int64(NoTimestamp), ts)
		require.Equal(t, 0, len(out))
	}
}

// TestCheckFramingTimes: the Timestamps of a batch's check are its
// records' largest timestamp (CheckFramingStream's) and the least and
// largest of those that carry one (all but -1), for every codec, as a
// naive walk over the decoded records finds them; and all NoTimestamp
// when the check fails.
func TestCheckFramingTimes(t *testing.T) {
	for _, tc := range []struct {
		name string
		ts   []int64
		want Timestamps
	}{
		{"one", []int64{1000}, Timestamps{Max: 1000, Earliest: 1000, Latest: 1000}},
		{"unordered", []int64{5000, 1000, 9000, 3000}, Timestamps{Max: 9000, Earliest: 1000, Latest: 9000}},
		{"-1 skipped for the range", []int64{-1, 7000, -1, 2000}, Timestamps{Max: 7000, Earliest: 2000, Latest: 7000}},
		{"only -1", []int64{-1, -1}, Timestamps{Max: -1, Earliest: -1, Latest: -1}},
		{"below -1", []int64{-1, -5, -7}, Timestamps{Max: -1, Earliest: -7, Latest: -5}},
		{"the ends of an int64", []int64{math.MaxInt64, math.MinInt64, 0}, Timestamps{Max: math.MaxInt64, Earliest: math.MinInt64, Latest: math.MaxInt64}},
	} {
		for _, codec := range []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd} {
			var bl Builder
			bl.Reset()
			for _, ts := range tc.ts {
				bl.Append(ts, []byte("k"), []byte("v"), nil)
			}
			data, err := bl.AppendTo(nil, codec)
			require.NoError(t, err)
			b := Batch(data)
			_, got, err := b.CheckFramingTimes(0, 0, nil)
			require.NoError(t, err, "%s %v", tc.name, codec)
			require.Equal(t, tc.want, got, "%s %v", tc.name, codec)
			_, maxTs, err := b.CheckFramingStream(0, 0, nil)
			require.NoError(t, err)
			require.Equal(t, got.Max, maxTs, "%s %v: CheckFramingStream's", tc.name, codec)

			// The naive walk.
			naive := Timestamps{Max: NoTimestamp, Earliest: math.MaxInt64, Latest: math.MinInt64}
			first, timed := true, false
			for r, err := range b.Records() {
				require.NoError(t, err)
				ms := r.Timestamp.UnixMilli()
				if first || ms > naive.Max {
					naive.Max, first = ms, false
				}
				if ms != NoTimestamp {
					naive.Earliest, naive.Latest, timed = min(naive.Earliest, ms), max(naive.Latest, ms), true
				}
			}
			if !timed {
				naive.Earliest, naive.Latest = NoTimestamp, NoTimestamp
			}
			require.Equal(t, naive, got, "%s %v: as the decoded records say", tc.name, codec)
		}
	}

	// A check that fails gives no timestamps.
	var bl Builder
	bl.Reset()
	bl.Append(1000, []byte("k"), []byte("v"), nil)
	data, err := bl.AppendTo(nil, compression.None)
	require.NoError(t, err)
	data[HeaderSize] = 0x7f // the first record's length, past the batch
	_, got, err := Batch(data).CheckFramingTimes(0, 0, nil)
	require.ErrorIs(t, err, ErrCorrupt)
	require.Equal(t, Timestamps{Max: NoTimestamp, Earliest: NoTimestamp, Latest: NoTimestamp}, got)
}

// TestNoHeadersDecodeNil: the batch format stores a header count, so a
// record produced with an empty header list and one produced with none
// decode alike, with nil Headers (Record.Headers' doc), and one header of
// a null value and one of an empty value stay apart.
func TestNoHeadersDecodeNil(t *testing.T) {
	var b Builder
	b.Append(1, nil, nil, nil)
	b.Append(1, nil, nil, []Header{})
	b.Append(1, nil, nil, []Header{{Key: "n"}, {Key: "e", Value: []byte{}}})
	batch, err := b.Finish(0)
	if err != nil {
		t.Fatal(err)
	}
	var got []*Record
	for r, err := range batch.Records() {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if len(got) != 3 || got[0].Headers != nil || got[1].Headers != nil {
		t.Fatalf("records without headers: %+v", got)
	}
	if h := got[2].Headers; len(h) != 2 || h[0].Value != nil || h[1].Value == nil || len(h[1].Value) != 0 {
		t.Fatalf("headers %+v: want a null value, then an empty one", h)
	}
}
