package log

import (
	"bytes"
	"context"
	"math"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// TestCompactedLogNamesTheKeylessRecord: a compacted log refuses a batch with
// key-less records naming the first of them (its offset delta), for an
// uncompressed batch and a compressed one, read as it decompresses.
func TestCompactedLogNamesTheKeylessRecord(t *testing.T) {
	for _, codec := range []compression.Codec{compression.None, compression.Gzip} {
		t.Run(codec.String(), func(t *testing.T) {
			e := newEnv(t)
			l := e.open(Config{CleanupPolicy: Compact})
			defer l.Close()
			ts := e.clock.Now().UnixMilli()
			batch := batchOf(t, codec, kv{key: []byte("k"), value: []byte("a"), ts: ts},
				kv{value: []byte("b"), ts: ts}, kv{key: []byte("k"), value: []byte("c"), ts: ts}, kv{value: []byte("d"), ts: ts})
			_, err := l.Append(context.Background(), batch, AppendOptions{})
			require.ErrorIs(t, err, ErrInvalidRecord)
			require.Contains(t, err.Error(), "(offset delta 1)", "the first key-less record")
		})
	}
}

// TestCompactedLogMarkWinsOverALaterKeylessRecord: a compacted LogAppendTime
// log refuses a batch its producer marked LogAppendTime with
// ErrInvalidTimestamp when a record has a key, also when a key-less one
// follows it (the mark wins over a missing key unless every record lacks
// one), for an uncompressed batch and a compressed one, read as it
// decompresses.
func TestCompactedLogMarkWinsOverALaterKeylessRecord(t *testing.T) {
	for _, codec := range []compression.Codec{compression.None, compression.Gzip} {
		t.Run(codec.String(), func(t *testing.T) {
			e := newEnv(t)
			l := e.open(Config{CleanupPolicy: Compact, TimestampType: LogAppendTime})
			defer l.Close()
			now := e.clock.Now().UnixMilli()
			batch := batchOf(t, codec, kv{key: []byte("k"), value: []byte("a"), ts: now}, kv{value: []byte("b"), ts: now})
			record.Batch(batch).SetLogAppendTime(now)
			_, err := l.Append(context.Background(), batch, AppendOptions{})
			require.ErrorIs(t, err, ErrInvalidTimestamp)
			require.NotContains(t, err.Error(), "needs a key", "the mark's error, not the keys'")
		})
	}
}

// TestCompactedLogTooLargeWinsOverAKeylessRecord: a compacted log refuses a
// compressed batch whose records decompress to more than the limit with
// ErrRecordTooLarge, also when a key-less record comes first (read before
// the stream reaches the limit): decompression is judged first, as when
// the records were decompressed whole.
func TestCompactedLogTooLargeWinsOverAKeylessRecord(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{CleanupPolicy: Compact})
	defer l.Close()
	now := e.clock.Now().UnixMilli()
	batch := batchOf(t, compression.Gzip, kv{value: []byte("no key"), ts: now},
		kv{key: []byte("k"), value: make([]byte, compression.DefaultDecodeLimit), ts: now})
	_, err := l.Append(context.Background(), batch, AppendOptions{})
	require.ErrorIs(t, err, ErrRecordTooLarge)
}

// TestAppendChecksPoolTheirBuffer: checkFraming, validateKeys and hasKey
// read a compressed batch through a pooled buffer: each allocates far
// less than the buffer (record.StreamBufferSize) once the pools hold one
// (the least of three tries, the collector off, as a pool can lose an
// item to it).
func TestAppendChecksPoolTheirBuffer(t *testing.T) {
	if testkit.RaceEnabled {
		t.Skip("the race detector drops pooled items at random")
	}
	e := newEnv(t)
	l := e.open(Config{CleanupPolicy: Compact})
	defer l.Close()
	ts := e.clock.Now().UnixMilli()
	b := record.Batch(batchOf(t, compression.Gzip, kv{key: []byte("k"), value: bytes.Repeat([]byte("v"), 300<<10), ts: ts},
		kv{key: []byte("k"), value: []byte(strings.Repeat("w", 1000)), ts: ts}))
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	checks := map[string]func() error{
		"checkFraming": func() error { _, err := checkFraming(b, 0); return err },
		"validateKeys": func() error { _, _, err := l.validateKeys(b, 0); return err },
		"hasKey":       func() error { _, err := hasKey(b, 0); return err },
	}
	for name, check := range checks {
		require.NoError(t, check(), name)
		per := uint64(math.MaxUint64)
		for range 3 {
			per = min(per, allocatedPerRun(10, func() { _ = check() }))
		}
		t.Logf("%s: %d bytes allocated a check", name, per)
		if per > record.StreamBufferSize/4 {
			t.Errorf("%s: %d bytes allocated a check, more than a quarter of the buffer: the buffer is not pooled", name, per)
		}
	}
}

// allocatedPerRun returns the bytes f allocates on the heap a run, over
// runs runs.
func allocatedPerRun(runs int, f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

// TestCompactedLogKeylessRecordTimestampErrors: on a compacted CreateTime
// topic, a batch with a record that has no key is refused with
// ErrInvalidTimestamp when a record that has one is stamped out of
// bounds, and with ErrInvalidRecord when none is (only the keyless one:
// Kafka's validateRecord checks a record's key, then, only if it has
// one, its timestamp; processRecordErrors answers INVALID_TIMESTAMP over
// INVALID_RECORD) — whether or not the producer marked the batch
// LogAppendTime, where the records' own create times are checked (the
// mark's claim set here to the same time). The refused bytes stay as the
// producer made them. (A marked batch once answered the missing key
// alone.)
func TestCompactedLogKeylessRecordTimestampErrors(t *testing.T) {
	for _, codec := range []compression.Codec{compression.None, compression.LZ4} {
		for _, marked := range []bool{false, true} {
			for _, tc := range []struct {
				name            string
				keyedAt, bareAt int64 // ms from the clock's now
				want            error
			}{
				{"keyed late", 2 * hourMs, 0, ErrInvalidTimestamp},
				{"keyless late", 0, 2 * hourMs, ErrInvalidRecord},
				{"none late", 0, 0, ErrInvalidRecord},
			} {
				name := codec.String() + "/" + tc.name
				if marked {
					name += "/marked"
				}
				t.Run(name, func(t *testing.T) {
					e := newEnv(t)
					l := e.open(Config{CleanupPolicy: Compact})
					defer l.Close()
					now := e.clock.Now().UnixMilli()
					data := batchOf(t, codec,
						kv{key: []byte("k"), value: []byte("v"), ts: now + tc.keyedAt},
						kv{value: []byte("no key"), ts: now + tc.bareAt})
					if marked {
						record.Batch(data).SetLogAppendTime(now + max(tc.keyedAt, tc.bareAt))
					}
					was := bytes.Clone(data)
					_, err := l.Append(context.Background(), data, AppendOptions{})
					require.ErrorIs(t, err, tc.want)
					if tc.want == ErrInvalidRecord {
						require.NotErrorIs(t, err, ErrInvalidTimestamp)
					}
					require.Equal(t, was, data, "the refused batch's bytes")
					require.Zero(t, l.LogEndOffset())
				})
			}
		}
	}
}

// TestCompactedTopicTakesEmptyKey: a compacted topic needs every record's
// key to be present (not null), as Kafka's LogValidator.validateKey; an
// empty key is a key.
func TestCompactedTopicTakesEmptyKey(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{CleanupPolicy: Compact})
	defer l.Close()
	data := batchOf(t, compression.None, kv{[]byte{}, []byte("v"), e.clock.Now().UnixMilli()})
	appendOK(t, l, data)
	recs := readAll(t, l, 0)
	require.Len(t, recs, 1)
	require.NotNil(t, recs[0].Key)
	require.Empty(t, recs[0].Key)
}
