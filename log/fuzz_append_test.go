package log

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// seedBatch encodes recs as one batch with codec, after setup (if
// set) has configured the builder; every second record carries two
// headers.
func seedBatch(t testing.TB, codec compression.Codec, setup func(*record.Builder), recs ...kv) []byte {
	var b record.Builder
	b.Reset()
	if setup != nil {
		setup(&b)
	}
	for i, r := range recs {
		var hs []record.Header
		if i%2 == 1 {
			hs = []record.Header{{Key: "h", Value: r.value}, {Key: "n"}}
		}
		b.Append(r.ts, r.key, r.value, hs)
	}
	out, err := b.AppendTo(nil, codec)
	require.NoError(t, err)
	return out
}

// appendSeeds are produce requests' data as clients send them: a batch of
// each codec, with headers and null keys and values, an idempotent
// producer's, several batches, a batch a producer marked LogAppendTime,
// a transactional producer's, and broken ones (cut, a control batch, an
// offset set, bytes after).
func appendSeeds(t testing.TB) [][]byte {
	recs := []kv{
		{key: []byte("k1"), value: []byte("v1"), ts: 1_700_000_000_000},
		{key: nil, value: []byte("no key"), ts: 1_700_000_000_005},
		{key: []byte("k3"), value: nil, ts: 1_699_999_999_000},
		{key: []byte(""), value: []byte(""), ts: -1},
	}
	var seeds [][]byte
	for _, c := range []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd} {
		seeds = append(seeds, seedBatch(t, c, nil, recs...))
	}
	keyed := seedBatch(t, compression.None, nil, recs[0], recs[2])
	seeds = append(seeds,
		seedBatch(t, compression.None, func(b *record.Builder) { b.SetProducer(7, 0, 0) }, recs[0], recs[2]),
		seedBatch(t, compression.Zstd, func(b *record.Builder) { b.SetProducer(7, 3, 5) }, recs...),
		seedBatch(t, compression.None, func(b *record.Builder) { b.SetProducer(8, 0, 0); b.SetTransactional(true) }, recs[0]),
		append(bytes.Clone(keyed), seedBatch(t, compression.Gzip, nil, recs[1])...),
		keyed[:len(keyed)-3],
		append(bytes.Clone(keyed), 0, 0, 0),
		nil,
		make([]byte, record.HeaderSize),
	)
	lat := bytes.Clone(keyed)
	record.Batch(lat).SetLogAppendTime(1_700_000_000_009)
	seeds = append(seeds, lat)
	ctl := bytes.Clone(keyed)
	ctl[22] |= byte(record.AttrControl)
	record.Batch(ctl).UpdateCRC()
	seeds = append(seeds, ctl)
	off := bytes.Clone(keyed)
	record.Batch(off).SetBaseOffset(3)
	record.Batch(off).UpdateCRC()
	seeds = append(seeds, off)
	return seeds
}

// appendErrors are the errors Append documents for data it refuses.
var appendErrors = []error{ErrInvalidRecord, ErrRecordTooLarge, record.ErrCorrupt, ErrOutOfOrderSequence, ErrProducerFenced}

// FuzzAppend: a produce request's data from a caller, appended to a log
// (delete or compact policy, CreateTime or LogAppendTime; any timestamp
// taken, or, with mode bit 4, Kafka 4's TimestampAfterMax, under which a
// CreateTime log takes no record stamped more than an hour ahead of its
// clock). The log either
// refuses it with one of Append's documented errors, leaving the caller's
// bytes and the log as they were, or takes it: offsets from 0 on, one per
// record, and every record reads back, before and after a reopen, with
// the key, value, headers and timestamp it was sent with (a compacted
// log's each with a key).
func FuzzAppend(f *testing.F) {
	for _, s := range appendSeeds(f) {
		f.Add(s, uint8(0))
		f.Add(s, uint8(1))
		f.Add(s, uint8(2))
		f.Add(s, uint8(4))
	}
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		cfg := Config{MaxMessageBytes: 1 << 16}
		if mode&1 != 0 {
			cfg.CleanupPolicy = Compact
		}
		if mode&2 != 0 {
			cfg.TimestampType = LogAppendTime
		}
		if mode&4 == 0 {
			cfg.TimestampAfterMax = -1 // any timestamp
		}
		// What the records are, as a consumer would read them once a
		// producer's LogAppendTime mark is cleared (a CreateTime log
		// clears it; a LogAppendTime log stamps its own time).
		sent := bytes.Clone(data)
		plain := bytes.Clone(data)
		for b, err := range record.Batches(plain) {
			if err != nil || len(b) < record.HeaderSize {
				break
			}
			b[22] &^= byte(record.AttrLogAppendTime)
		}

		e := newEnv(t)
		l := e.open(cfg)
		defer func() { l.Close() }()
		res, err := l.Append(context.Background(), data, AppendOptions{})
		if err != nil {
			matched := false
			for _, want := range appendErrors {
				matched = matched || errors.Is(err, want)
			}
			require.True(t, matched, "undocumented error %v", err)
			require.Equal(t, sent, data, "a refused append changed the caller's bytes")
			require.Zero(t, l.LogEndOffset())
			return
		}
		var want []*record.Record
		for b, err := range record.Batches(plain) {
			require.NoError(t, err)
			for r, err := range b.Records() {
				require.NoError(t, err)
				want = append(want, r)
			}
		}
		if mode&4 != 0 && cfg.TimestampType != LogAppendTime {
			limit := e.clock.Now().UnixMilli() + DefaultTimestampAfterMax.Milliseconds()
			for i, w := range want {
				if ms := w.Timestamp.UnixMilli(); ms != record.NoTimestamp && ms > limit {
					t.Fatalf("record %d stamped %d taken, more than TimestampAfterMax ahead of the clock (%d)", i, ms, limit)
				}
			}
		}
		require.Equal(t, int64(0), res.FirstOffset)
		require.Equal(t, int64(len(want)-1), res.LastOffset)
		require.Equal(t, len(want), res.Records)
		check := func(l *Log) {
			got := readAll(t, l, 0)
			require.Len(t, got, len(want))
			for i, r := range got {
				w := want[i]
				require.Equal(t, int64(i), r.Offset)
				require.Equal(t, w.Key, r.Key, "offset %d", i)
				require.Equal(t, w.Value, r.Value, "offset %d", i)
				require.Equal(t, len(w.Headers), len(r.Headers), "offset %d", i)
				for j := range w.Headers {
					require.Equal(t, w.Headers[j].Key, r.Headers[j].Key)
					require.Equal(t, w.Headers[j].Value, r.Headers[j].Value)
				}
				if cfg.TimestampType == LogAppendTime {
					require.Equal(t, res.LogAppendTime, r.Timestamp.UnixMilli(), "offset %d", i)
				} else {
					require.Equal(t, w.Timestamp.UnixMilli(), r.Timestamp.UnixMilli(), "offset %d", i)
				}
				if cfg.CleanupPolicy&Compact != 0 {
					require.NotNil(t, r.Key, "a compacted log took a record without a key")
				}
			}
		}
		check(l)
		require.NoError(t, l.Close())
		l = e.open(cfg)
		require.Equal(t, int64(len(want)), l.LogEndOffset())
		check(l)
	})
}

// TestAppendSeedsAccepted: FuzzAppend's valid seeds are taken (the fuzz
// target starts from accepted data, not only refused).
func TestAppendSeedsAccepted(t *testing.T) {
	taken := 0
	for _, s := range appendSeeds(t) {
		e := &env{t: t, fs: vfs.NewMem(), dir: "/d/t-0", clock: newClock()}
		l := e.open(Config{})
		if _, err := l.Append(context.Background(), s, AppendOptions{}); err == nil {
			taken++
		}
		require.NoError(t, l.Close())
	}
	require.GreaterOrEqual(t, taken, 9)
}
