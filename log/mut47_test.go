package log

import (
	"bytes"
	"context"
	"math"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
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
