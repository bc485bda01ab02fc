package log

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// TestAppendResetsLogAppendTimeBit: a produced batch that arrives with
// the LogAppendTime attribute on a CreateTime topic is stored as a
// CreateTime batch, as Kafka's LogValidator stores it (since Kafka 3.6
// it accepts one whose max timestamp is not -1, and rewrites it with
// setMaxTimestamp(CREATE_TIME, ...), which clears the bit). Its max
// timestamp is then its records' largest create time, so that consumers,
// OffsetForTime, OffsetOfMaxTimestamp, the time index and time retention
// all see the records' own timestamps, not the time the producer claimed.
// Before, the bit was kept: every record read back with the claimed time,
// and a claim in the future kept the segment from retention.
func TestAppendResetsLogAppendTimeBit(t *testing.T) {
	for _, policy := range []CleanupPolicy{Delete, Compact | Delete} {
		for _, codec := range []compression.Codec{compression.None, compression.Zstd} {
			t.Run(fmt.Sprintf("%v/%v", policy, codec), func(t *testing.T) {
				e := newEnv(t)
				l := e.open(Config{CleanupPolicy: policy, RetentionTime: time.Hour})
				defer l.Close()
				now := e.clock.Now().UnixMilli()
				created := []int64{now - 2*3600_000, now - 3*3600_000}
				data := batchOf(t, codec, kv{[]byte("a"), []byte("1"), created[0]}, kv{[]byte("b"), []byte("2"), created[1]})
				record.Batch(data).SetLogAppendTime(now + 24*3600_000) // the producer's claim
				res := appendOK(t, l, data)
				require.EqualValues(t, -1, res.LogAppendTime, "a CreateTime topic answers no append time")

				got, err := l.Read(0, 1<<20, math.MaxInt64)
				require.NoError(t, err)
				b, err := record.Parse(got, 0)
				require.NoError(t, err)
				require.NoError(t, b.Validate(0), "the CRC follows the rewrite")
				require.Equal(t, record.CreateTime, b.TimestampType())
				require.Equal(t, created[0], b.MaxTimestamp(), "the records' largest create time")
				i := 0
				for r, err := range b.Records() {
					require.NoError(t, err)
					require.Equal(t, record.CreateTime, r.TimestampType)
					require.Equal(t, created[i], r.Timestamp.UnixMilli(), "record %d", i)
					i++
				}
				require.Equal(t, 2, i)

				// The time index and the searches see the create times.
				_, ok, err := l.OffsetForTime(now)
				require.NoError(t, err)
				require.False(t, ok, "every record is older than now")
				off, ok, err := l.OffsetForTime(created[1] + 1)
				require.NoError(t, err)
				require.True(t, ok)
				require.Zero(t, off)
				off, ok, err = l.OffsetOfMaxTimestamp(context.Background())
				require.NoError(t, err)
				require.True(t, ok)
				require.Zero(t, off)

				// Time retention ages the segment by its records: two hours
				// old, past retention.ms of an hour.
				require.NoError(t, l.Roll())
				n, err := l.ApplyRetention(context.Background())
				require.NoError(t, err)
				require.Equal(t, 1, n, "the segment's age is its records', not the claimed append time")
			})
		}
	}
}

// TestAppendRefusesLogAppendTimeBit: what Kafka's LogValidator refuses
// with INVALID_TIMESTAMP ("Producer should not set timestamp type to
// LogAppendTime"): a batch with the LogAppendTime attribute on a
// LogAppendTime topic, and on a CreateTime topic one whose max timestamp
// is -1 (no timestamp). Nothing is written.
func TestAppendRefusesLogAppendTimeBit(t *testing.T) {
	for _, c := range []struct {
		name  string
		cfg   Config
		claim int64
	}{
		{"LogAppendTime topic", Config{TimestampType: LogAppendTime}, 1_700_000_000_000},
		{"CreateTime topic, max timestamp -1", Config{}, record.NoTimestamp},
		{"compacted CreateTime topic, max timestamp -1", Config{CleanupPolicy: Compact}, record.NoTimestamp},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			l := e.open(c.cfg)
			defer l.Close()
			data := batchOf(t, compression.None, kv{[]byte("a"), []byte("1"), 1000})
			record.Batch(data).SetLogAppendTime(c.claim)
			_, err := l.Append(context.Background(), data, AppendOptions{})
			require.ErrorIs(t, err, ErrInvalidTimestamp)
			require.ErrorIs(t, err, ErrInvalidRecord, "until the error table maps INVALID_TIMESTAMP, it answers INVALID_RECORD")
			require.Zero(t, l.LogEndOffset())
		})
	}
}

// TestAppendLogAppendTimeBitAfterRecords: Kafka's LogValidator refuses a
// producer's LogAppendTime mark record by record, after the record's key
// (validateRecord: validateKey, then validateTimestamp), and a record that
// does not decode ends the validation at once: a compacted topic answers a
// marked batch whose records all lack a key with INVALID_RECORD (no
// record reached the timestamp check), one with a keyed record with
// INVALID_TIMESTAMP (processRecordErrors: any INVALID_TIMESTAMP wins), and
// a marked batch whose record does not decode gets the decoding error.
// Append checked the mark before the records, and refused all three with
// ErrInvalidTimestamp. Found by TestParityRandomized in benchmarks/peers.
func TestAppendLogAppendTimeBitAfterRecords(t *testing.T) {
	badHeaders := func(data []byte) []byte {
		data[len(data)-1] = 4 // the last record's header count: 2, with no bytes for them
		record.Batch(data).UpdateCRC()
		return data
	}
	for _, c := range []struct {
		name    string
		cfg     Config
		claim   int64
		codec   compression.Codec
		recs    []kv
		corrupt func([]byte) []byte
		want    error // ErrInvalidTimestamp, or ErrInvalidRecord without it
	}{
		{name: "compacted, no record with a key", cfg: Config{CleanupPolicy: Compact}, claim: record.NoTimestamp,
			recs: []kv{{nil, []byte("1"), 1000}, {nil, []byte("2"), 1000}}, want: ErrInvalidRecord},
		{name: "compacted zstd, no record with a key", cfg: Config{CleanupPolicy: Compact | Delete}, claim: record.NoTimestamp, codec: compression.Zstd,
			recs: []kv{{nil, []byte("1"), 1000}}, want: ErrInvalidRecord},
		{name: "compacted LogAppendTime topic, no record with a key", cfg: Config{CleanupPolicy: Compact, TimestampType: LogAppendTime}, claim: 1_700_000_000_000,
			recs: []kv{{nil, []byte("1"), 1000}}, want: ErrInvalidRecord},
		{name: "compacted, one record with a key", cfg: Config{CleanupPolicy: Compact}, claim: record.NoTimestamp,
			recs: []kv{{nil, []byte("1"), 1000}, {[]byte("a"), []byte("2"), 1000}}, want: ErrInvalidTimestamp},
		{name: "a record that does not decode", cfg: Config{TimestampType: LogAppendTime}, claim: 1_700_000_000_000,
			recs: []kv{{[]byte("a"), []byte("1"), 1000}}, corrupt: badHeaders, want: ErrInvalidRecord},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			l := e.open(c.cfg)
			defer l.Close()
			data := batchOf(t, c.codec, c.recs...)
			if c.corrupt != nil {
				data = c.corrupt(data)
			}
			record.Batch(data).SetLogAppendTime(c.claim)
			_, err := l.Append(context.Background(), data, AppendOptions{})
			require.ErrorIs(t, err, c.want)
			if c.want != ErrInvalidTimestamp {
				require.NotErrorIs(t, err, ErrInvalidTimestamp)
			}
			require.Zero(t, l.LogEndOffset())
		})
	}
}

// TestAppendMaxTimestampOfNegativeTimestamps: Kafka's LogValidator
// starts a batch's max timestamp at -1 (NO_TIMESTAMP) and only a record
// above it raises it, so a batch whose records all have timestamps below
// -1 gets max timestamp -1 (Kafka's broker takes such CreateTimes: only
// its Java producer refuses them), as the cleaner's rebuilt batches do
// (Kafka's MemoryRecordsBuilder). Before, Append set the true largest.
// Readers stay coherent with it: -1 is no timestamp to the segment and
// its time index, which never hold a smaller one; OffsetForTime and
// OffsetOfMaxTimestamp read the records' own timestamps; time retention
// takes a segment without a timestamp above -1 as older than any
// retention.ms (Kafka ages such a segment by its file's modification
// time instead; runnel's segments keep none).
func TestAppendMaxTimestampOfNegativeTimestamps(t *testing.T) {
	for _, policy := range []CleanupPolicy{Delete, Compact | Delete} {
		for _, codec := range []compression.Codec{compression.None, compression.Zstd} {
			t.Run(fmt.Sprintf("%v/%v", policy, codec), func(t *testing.T) {
				e := newEnv(t)
				cfg := Config{CleanupPolicy: policy, RetentionTime: time.Hour, IndexIntervalBytes: 1}
				l := e.open(cfg)
				defer func() { l.Close() }()
				// claimed sets the header's max timestamp, with the CRC, as a
				// client that writes the true largest does.
				claimed := func(data []byte, ts int64) []byte {
					record.Batch(data).SetMaxTimestamp(ts)
					return data
				}
				appendOK(t, l, claimed(batchOf(t, codec, kv{[]byte("a"), []byte("1"), -10}, kv{[]byte("b"), []byte("2"), -7}), -7)) // 0, 1
				appendOK(t, l, claimed(batchOf(t, codec, kv{[]byte("c"), []byte("3"), -3}), -3))                                    // 2
				appendOK(t, l, batchOf(t, codec, kv{[]byte("d"), []byte("4"), -1}, kv{[]byte("e"), []byte("5"), -20}))              // 3, 4
				maxOf := func(off int64) int64 {
					t.Helper()
					data, err := l.Read(off, 1, math.MaxInt64)
					require.NoError(t, err)
					b, err := record.Parse(data, 0)
					require.NoError(t, err)
					require.NoError(t, b.Validate(0))
					return b.MaxTimestamp()
				}
				for _, off := range []int64{0, 2, 3} {
					require.EqualValues(t, record.NoTimestamp, maxOf(off), "batch at %d", off)
				}
				recs := readAll(t, l, 0)
				require.Len(t, recs, 5)
				for i, ts := range []int64{-10, -7, -3, -1, -20} {
					require.Equal(t, ts, recs[i].Timestamp.UnixMilli(), "records keep their timestamps")
				}

				check := func() {
					t.Helper()
					for _, c := range []struct {
						ts   int64
						off  int64
						none bool
					}{{-25, 0, false}, {-10, 0, false}, {-8, 1, false}, {-7, 1, false}, {-4, 2, false}, {-2, 3, false}, {-1, 3, false}, {0, 0, true}} {
						off, ok, err := l.OffsetForTime(c.ts)
						require.NoError(t, err)
						require.Equal(t, !c.none, ok, "offset for time %d", c.ts)
						if ok {
							require.Equal(t, c.off, off, "offset for time %d", c.ts)
						}
					}
					off, ok, err := l.OffsetOfMaxTimestamp(context.Background())
					require.NoError(t, err)
					require.True(t, ok)
					require.EqualValues(t, 3, off, "the first record with the largest timestamp, -1")
					for _, s := range *l.segs.Load() {
						require.EqualValues(t, record.NoTimestamp, s.MaxTimestamp(), "segment %v", s)
					}
				}
				check()
				require.NoError(t, l.Close())
				l = e.open(cfg) // the time index and the segment's max timestamp, from the files
				check()

				// A record at 0 or later has a timestamp: it raises the max.
				require.NoError(t, l.Roll())
				now := e.clock.Now().UnixMilli()
				appendOK(t, l, claimed(batchOf(t, codec, kv{[]byte("f"), []byte("6"), -30}, kv{[]byte("g"), []byte("7"), now}), -30)) // 5, 6
				require.Equal(t, now, maxOf(5))
				off, ok, err := l.OffsetOfMaxTimestamp(context.Background())
				require.NoError(t, err)
				require.True(t, ok)
				require.EqualValues(t, 6, off)

				// Time retention: the first segment, no timestamp above -1,
				// is past retention.ms; the second is new.
				require.NoError(t, l.Roll())
				n, err := l.ApplyRetention(context.Background())
				require.NoError(t, err)
				require.Equal(t, 1, n)
				require.EqualValues(t, 5, l.LogStartOffset())
			})
		}
	}
}

// TestCompactionKeepsNoTimestampMax: a batch the cleaner rebuilds from
// records whose timestamps are all below -1 has max timestamp -1, as
// Append gives it (Kafka's MemoryRecordsBuilder starts at -1 too).
func TestCompactionKeepsNoTimestampMax(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{CleanupPolicy: Compact})
	defer l.Close()
	appendOK(t, l, batchOf(t, compression.None, kv{[]byte("a"), []byte("old"), -10}, kv{[]byte("b"), []byte("1"), -7})) // 0, 1
	appendOK(t, l, batchOf(t, compression.None, kv{[]byte("a"), []byte("new"), -5}))                                    // 2
	require.NoError(t, l.Roll())
	_, err := l.Compact(context.Background())
	require.NoError(t, err)
	data, err := l.Read(0, 1, math.MaxInt64)
	require.NoError(t, err)
	b, err := record.Parse(data, 0)
	require.NoError(t, err)
	require.EqualValues(t, 1, b.NumRecords(), "the cleaner rebuilt the batch without offset 0")
	require.EqualValues(t, record.NoTimestamp, b.MaxTimestamp())
}

// TestAppendRefusalLeavesDataAlone: an append that is refused leaves the
// caller's bytes as they were, though Append would have corrected an
// earlier batch of the same call (a max timestamp that is not the
// records' largest, a LogAppendTime mark): the corrections are made only
// once every batch passed (api.ProduceRequest may carry several batches
// for one partition), and once the producer's sequence was checked.
// Before, the first batch was corrected in place before a later one was
// refused, and an idempotent batch before its sequence was refused.
func TestAppendRefusalLeavesDataAlone(t *testing.T) {
	ts := int64(1_700_000_000_000)
	wrongMax := func() []byte { // corrected by Append: max timestamp -1
		data := batchOf(t, compression.Zstd, kv{[]byte("a"), []byte("1"), ts}, kv{[]byte("b"), []byte("2"), ts - 5})
		record.Batch(data).SetMaxTimestamp(record.NoTimestamp)
		return data
	}
	marked := func() []byte { // corrected by Append: the LogAppendTime mark
		data := batchOf(t, compression.None, kv{[]byte("a"), []byte("1"), ts})
		record.Batch(data).SetLogAppendTime(ts + 1000)
		return data
	}
	good := func() []byte { return batchOf(t, compression.None, kv{[]byte("c"), []byte("3"), ts}) }
	idempotent := func(seq int32) []byte {
		var b record.Builder
		b.SetProducer(7, 0, seq)
		b.Append(ts, []byte("k"), []byte("v"), nil)
		data, err := b.AppendTo(nil, compression.None)
		require.NoError(t, err)
		record.Batch(data).SetMaxTimestamp(record.NoTimestamp)
		return data
	}
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	for _, c := range []struct {
		name string
		cfg  Config
		// before runs before the refused append (appends of its own).
		before func(t *testing.T, l *Log)
		data   func() []byte
		want   error
	}{
		{name: "a later batch with a base offset", data: func() []byte {
			bad := good()
			record.Batch(bad).SetBaseOffset(5)
			return cat(wrongMax(), marked(), bad)
		}, want: ErrInvalidRecord},
		{name: "a later batch with a bad CRC", data: func() []byte {
			bad := good()
			bad[len(bad)-1] ^= 1
			return cat(marked(), wrongMax(), bad)
		}, want: record.ErrCorrupt},
		{name: "a later batch marked LogAppendTime with no timestamp", data: func() []byte {
			bad := good()
			record.Batch(bad).SetLogAppendTime(record.NoTimestamp)
			return cat(wrongMax(), bad)
		}, want: ErrInvalidTimestamp},
		{name: "a later batch too large", cfg: Config{MaxMessageBytes: 200}, data: func() []byte {
			return cat(marked(), batchOf(t, compression.None, kv{[]byte("big"), make([]byte, 300), ts}))
		}, want: ErrRecordTooLarge},
		{name: "a later batch without a key on a compacted topic", cfg: Config{CleanupPolicy: Compact}, data: func() []byte {
			return cat(wrongMax(), marked(), batchOf(t, compression.None, kv{nil, []byte("no key"), ts}))
		}, want: ErrInvalidRecord},
		{name: "an idempotent batch out of sequence", data: func() []byte { return idempotent(5) },
			before: func(t *testing.T, l *Log) { appendOK(t, l, idempotent(0)) },
			want:   ErrOutOfOrderSequence},
		{name: "a retried idempotent batch", data: func() []byte { return idempotent(0) },
			before: func(t *testing.T, l *Log) { appendOK(t, l, idempotent(0)) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			l := e.open(c.cfg)
			defer l.Close()
			if c.before != nil {
				c.before(t, l)
			}
			end := l.LogEndOffset()
			data := c.data()
			orig := append([]byte(nil), data...)
			res, err := l.Append(context.Background(), data, AppendOptions{})
			if c.want != nil {
				require.ErrorIs(t, err, c.want)
			} else {
				require.NoError(t, err)
				require.True(t, res.Duplicate)
			}
			require.Equal(t, end, l.LogEndOffset(), "nothing written")
			require.Equal(t, orig, data, "the caller's bytes changed")
		})
	}
}
