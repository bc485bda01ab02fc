package log

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// TestModel runs random sequences of operations on a Log over a MemFS and
// compares it after each with a model: the records appended, by offset, and
// the log start offset. Crashes (with every tail mode) and clean reopens
// are among the operations: under SyncAlways neither may change what the
// log holds.
func TestModel(t *testing.T) {
	testkit.RapidReplay(t)
	rapid.Check(t, func(t *rapid.T) {
		m := newLogModel(t)
		defer func() { m.l.Close() }()
		actions := map[string]func(*rapid.T){
			"append":          m.Append,
			"append-more":     m.Append, // appends twice as often as the rest
			"read":            m.Read,
			"offset-for-time": m.OffsetForTime,
			"roll":            m.Roll,
			"retention":       m.Retention,
			"delete-records":  m.DeleteRecords,
			"truncate":        m.Truncate,
			"crash":           m.Crash,
			"reopen":          m.Reopen,
			"":                m.Check,
		}
		// Several rounds of rapid's 30 steps (15 in -short mode) on average,
		// so that histories are long enough for many segments.
		for range 4 {
			t.Repeat(actions)
		}
	})
}

// modelRecord is a record the model expects at an offset.
type modelRecord struct {
	key, value []byte
	ts         int64
	batch      int64 // the base offset of its batch
}

type logModel struct {
	mem   *vfs.MemFS
	clock *fakeClock
	cfg   Config
	l     *Log

	recs  []modelRecord // every record from offset 0 to the log end offset
	start int64         // the log start offset
	seq   int           // records appended so far, to make values unique
}

func newLogModel(t *rapid.T) *logModel {
	m := &logModel{
		mem:   vfs.NewMem(),
		clock: newClock(),
		cfg:   Config{SegmentBytes: 700, IndexIntervalBytes: 128, RetentionTime: time.Hour},
	}
	m.open(t)
	return m
}

func (m *logModel) open(t *rapid.T) {
	l, err := Open(crashDir, m.cfg, Options{FS: m.mem, Clock: m.clock})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	m.l = l
}

func (m *logModel) end() int64 { return int64(len(m.recs)) }

// batchEnd returns the offset after the batch holding offset o.
func (m *logModel) batchEnd(o int64) int64 {
	b := m.recs[o].batch
	for o < m.end() && m.recs[o].batch == b {
		o++
	}
	return o
}

var modelCodecs = []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd}

// Append appends one or two batches of 1-4 records of 0-300 bytes, each
// batch with a random codec, in one call, 0-2 minutes after the last.
func (m *logModel) Append(t *rapid.T) {
	m.clock.Advance(time.Duration(rapid.IntRange(0, 120).Draw(t, "seconds")) * time.Second)
	var data []byte
	var recs []modelRecord
	base := m.end()
	now := m.clock.Now().UnixMilli()
	for range rapid.IntRange(1, 2).Draw(t, "batches") {
		n := rapid.IntRange(1, 4).Draw(t, "records")
		codec := rapid.SampledFrom(modelCodecs).Draw(t, "codec")
		var b record.Builder
		b.Reset()
		for range n {
			r := modelRecord{ts: now + int64(rapid.IntRange(-5, 5).Draw(t, "ts")), batch: base}
			if k := rapid.IntRange(-1, 9).Draw(t, "key"); k >= 0 {
				r.key = fmt.Appendf(nil, "k%d", k)
			}
			if size := rapid.IntRange(-1, 300).Draw(t, "size"); size >= 0 {
				r.value = fmt.Appendf(nil, "%d:", m.seq)
				r.value = append(r.value, bytes.Repeat([]byte{byte(m.seq)}, size)...)
			}
			m.seq++
			b.Append(r.ts, r.key, r.value, nil)
			recs = append(recs, r)
		}
		var err error
		if data, err = b.AppendTo(data, codec); err != nil {
			t.Fatalf("encoding: %v", err)
		}
		base += int64(n)
	}
	res, err := m.l.Append(context.Background(), data, AppendOptions{})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	if res.FirstOffset != m.end() || res.LastOffset != m.end()+int64(len(recs))-1 || res.Records != len(recs) {
		t.Fatalf("append of %d records at %d returned %+v", len(recs), m.end(), res)
	}
	m.recs = append(m.recs, recs...)
}

// Read reads at a random offset in [start, end], with a random size limit
// and high watermark, and compares what it gets with the model.
func (m *logModel) Read(t *rapid.T) {
	end := m.end()
	off := rapid.Int64Range(m.start, end).Draw(t, "offset")
	maxBytes := rapid.IntRange(0, 4096).Draw(t, "maxBytes")
	upTo := int64(math.MaxInt64)
	if rapid.Bool().Draw(t, "bounded") {
		upTo = rapid.Int64Range(m.start, end).Draw(t, "upTo")
	}
	data, err := m.l.Read(off, maxBytes, upTo)
	if err != nil {
		t.Fatalf("read at %d: %v", off, err)
	}
	// Only whole batches that end below upTo are returned.
	if off >= min(end, upTo) || m.batchEnd(off) > upTo {
		if len(data) != 0 {
			t.Fatalf("read at %d (end %d, upTo %d) returned %d bytes", off, end, upTo, len(data))
		}
		return
	}
	if len(data) == 0 {
		t.Fatalf("read at %d (end %d, upTo %d) returned nothing", off, end, upTo)
	}
	var batches int
	next := int64(-1)
	for p := 0; p < len(data); batches++ {
		b, err := record.Parse(data[p:], int64(p))
		if err == nil {
			err = b.Validate(int64(p))
		}
		if err != nil {
			t.Fatalf("read at %d: batch %d: %v", off, batches, err)
		}
		switch {
		case batches == 0 && (b.BaseOffset() > off || b.LastOffset() < off):
			t.Fatalf("read at %d starts with batch [%d, %d]", off, b.BaseOffset(), b.LastOffset())
		case batches > 0 && b.BaseOffset() != next:
			t.Fatalf("read at %d: batch at %d follows one ending at %d", off, b.BaseOffset(), next)
		case b.LastOffset() >= upTo:
			t.Fatalf("read at %d up to %d returned batch [%d, %d]", off, upTo, b.BaseOffset(), b.LastOffset())
		}
		m.checkBatch(t, b)
		next = b.NextOffset()
		p += len(b)
	}
	if batches > 1 && len(data) > maxBytes {
		t.Fatalf("read at %d returned %d batches, %d bytes, over maxBytes %d", off, batches, len(data), maxBytes)
	}
}

// OffsetForTime looks up a timestamp near that of a random record: the
// answer is the first offset from the log start offset whose record is at
// least that recent.
func (m *logModel) OffsetForTime(t *rapid.T) {
	var ts int64
	if m.end() > 0 {
		ts = m.recs[rapid.Int64Range(0, m.end()-1).Draw(t, "record")].ts + rapid.Int64Range(-1, 1).Draw(t, "delta")
	}
	checkOffsetForTime(t, m.l, ts, m.start, m.end(), func(o int64) int64 { return m.recs[o].ts })
}

// checkOffsetForTime fails unless l.OffsetForTime(ts) answers the first of
// the offsets [start, end) whose timestamp (tsOf) is at least ts, or
// nothing if none is: Kafka's ListOffsets by time. The model tests of the
// log and of its time semantics share it.
func checkOffsetForTime(t interface{ Fatalf(string, ...any) }, l *Log, ts, start, end int64, tsOf func(int64) int64) {
	want, wantOK := int64(0), false
	for o := start; o < end; o++ {
		if tsOf(o) >= ts {
			want, wantOK = o, true
			break
		}
	}
	got, ok, err := l.OffsetForTime(ts)
	if err != nil {
		t.Fatalf("offset for time %d: %v", ts, err)
	}
	if ok != wantOK || ok && got != want {
		t.Fatalf("offset for time %d: %d, %v; want %d, %v", ts, got, ok, want, wantOK)
	}
}

// checkBatch compares every record of b with the model.
func (m *logModel) checkBatch(t *rapid.T, b record.Batch) {
	n := 0
	for r, err := range b.Records() {
		if err != nil {
			t.Fatalf("decoding batch at %d: %v", b.BaseOffset(), err)
		}
		if r.Offset >= m.end() {
			t.Fatalf("record at %d, past the end %d", r.Offset, m.end())
		}
		want := m.recs[r.Offset]
		if want.batch != b.BaseOffset() || !bytes.Equal(want.key, r.Key) || (want.key == nil) != (r.Key == nil) ||
			!bytes.Equal(want.value, r.Value) || (want.value == nil) != (r.Value == nil) || want.ts != r.Timestamp.UnixMilli() {
			t.Fatalf("record at %d: batch %d, key %q, value %q, ts %d; want batch %d, key %q, value %q, ts %d",
				r.Offset, b.BaseOffset(), r.Key, r.Value, r.Timestamp.UnixMilli(), want.batch, want.key, want.value, want.ts)
		}
		n++
	}
	if want := b.LastOffset() - b.BaseOffset() + 1; int64(n) != want {
		t.Fatalf("batch [%d, %d] has %d records", b.BaseOffset(), b.LastOffset(), n)
	}
}

// Roll starts a new segment.
func (m *logModel) Roll(t *rapid.T) {
	if err := m.l.Roll(); err != nil {
		t.Fatalf("roll: %v", err)
	}
}

// Retention moves the clock on and applies retention: the log start offset
// may move, only forward, to a batch boundary, and past expired records
// only.
func (m *logModel) Retention(t *rapid.T) {
	m.clock.Advance(time.Duration(rapid.IntRange(0, 30).Draw(t, "minutes")) * time.Minute)
	if rapid.Bool().Draw(t, "maintain") {
		// Retention, and the recovery point checkpointed at the durable
		// offset: a crash from now on must not cut below it.
		if err := m.l.Maintain(context.Background()); err != nil {
			t.Fatalf("maintain: %v", err)
		}
		if rp, err := readOffset(m.mem, crashDir, recoveryPointFile, 0); err != nil || rp != m.l.DurableOffset() {
			t.Fatalf("recovery point after Maintain: %d, %v; want the durable offset %d", rp, err, m.l.DurableOffset())
		}
	} else if _, err := m.l.ApplyRetention(context.Background()); err != nil {
		t.Fatalf("retention: %v", err)
	}
	start := m.l.LogStartOffset()
	switch {
	case start < m.start || start > m.end():
		t.Fatalf("retention moved the log start offset from %d to %d (end %d)", m.start, start, m.end())
	case start > m.start && start < m.end() && m.recs[start].batch != start:
		t.Fatalf("retention moved the log start offset to %d, inside the batch at %d", start, m.recs[start].batch)
	}
	cutoff := m.clock.Now().Add(-m.cfg.RetentionTime).UnixMilli()
	for o := m.start; o < start; o++ {
		if m.recs[o].ts >= cutoff {
			t.Fatalf("retention removed offset %d, timestamp %d, not older than %d", o, m.recs[o].ts, cutoff)
		}
	}
	m.start = start
}

// DeleteRecords deletes the records before a random offset in [start, end],
// most often near the start.
func (m *logModel) DeleteRecords(t *rapid.T) {
	off := m.start + min(rapid.Int64Range(0, 12).Draw(t, "records"), m.end()-m.start)
	if rapid.IntRange(0, 4).Draw(t, "anywhere") == 0 {
		off = rapid.Int64Range(m.start, m.end()).Draw(t, "offset")
	}
	start, err := m.l.DeleteRecordsBefore(context.Background(), off)
	if err != nil {
		t.Fatalf("delete records before %d: %v", off, err)
	}
	if start != off {
		t.Fatalf("delete records before %d: log start offset %d", off, start)
	}
	m.start = off
}

// Truncate truncates the log to a random offset in [start, end], most
// often near the end: the log ends at the batch that holds it. A log start
// offset past the new end comes back to it, as Kafka's does: the log is
// then empty.
func (m *logModel) Truncate(t *rapid.T) {
	off := m.end() - min(rapid.Int64Range(0, 12).Draw(t, "records"), m.end()-m.start)
	if rapid.IntRange(0, 4).Draw(t, "anywhere") == 0 {
		off = rapid.Int64Range(m.start, m.end()).Draw(t, "offset")
	}
	want := m.end()
	if off < m.end() {
		want = m.recs[off].batch
	}
	end, err := m.l.TruncateTo(off)
	if err != nil {
		t.Fatalf("truncate to %d: %v", off, err)
	}
	if end != want {
		t.Fatalf("truncate to %d: log end offset %d, want %d", off, end, want)
	}
	m.recs = m.recs[:want]
	m.start = min(m.start, want)
}

// Crash crashes the machine, with a random tail mode, and reopens the log:
// everything was acknowledged, so nothing changes.
func (m *logModel) Crash(t *rapid.T) {
	mode := rapid.SampledFrom(crashTails).Draw(t, "tail")
	seed := rapid.Uint64().Draw(t, "seed")
	clone := m.mem.CrashClone(vfs.CrashOptions{Tail: mode, Rand: rand.New(rand.NewPCG(seed, seed))})
	m.l.Close()
	m.mem = clone
	m.open(t)
}

// Reopen closes the log cleanly and opens it again.
func (m *logModel) Reopen(t *rapid.T) {
	if err := m.l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	m.open(t)
	if !m.l.Recovery().Clean {
		t.Fatalf("reopened after a clean close, but recovery says %+v", m.l.Recovery())
	}
}

// Check compares the log with the model: its offsets, and every record
// read from the log start offset on.
func (m *logModel) Check(t *rapid.T) {
	end := m.end()
	if got := m.l.LogEndOffset(); got != end {
		t.Fatalf("log end offset %d, want %d", got, end)
	}
	if got := m.l.LogStartOffset(); got != m.start {
		t.Fatalf("log start offset %d, want %d", got, m.start)
	}
	if got := m.l.DurableOffset(); got != end {
		t.Fatalf("durable offset %d, want %d", got, end)
	}
	off := m.start
	for off < end {
		data, err := m.l.Read(off, 1<<10, math.MaxInt64)
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if len(data) == 0 {
			t.Fatalf("read at %d returned nothing (end %d)", off, end)
		}
		for p := 0; p < len(data); {
			b, err := record.Parse(data[p:], int64(p))
			if err == nil {
				err = b.Validate(int64(p))
			}
			if err != nil {
				t.Fatalf("read at %d: %v", off, err)
			}
			if b.BaseOffset() > off || b.LastOffset() < off {
				t.Fatalf("read at %d returned batch [%d, %d]", off, b.BaseOffset(), b.LastOffset())
			}
			m.checkBatch(t, b)
			off = b.NextOffset()
			p += len(b)
		}
	}
	if off != end {
		t.Fatalf("reading from %d ended at %d, want %d", m.start, off, end)
	}
	if _, err := m.l.Read(end+1, 1, math.MaxInt64); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read past the end: %v", err)
	}
	if m.start > 0 {
		if _, err := m.l.Read(m.start-1, 1, math.MaxInt64); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("read before the start: %v", err)
		}
	}
}

// TestTruncateIntoBatchBelowLogStart: truncating to an offset inside a
// batch that begins below the log start offset cuts the whole batch, so the
// log end offset falls below the log start offset. Found by TestModel. The
// log start offset must follow it down (as Kafka's does, to the truncation
// offset), durably: otherwise the next append gets an offset below the log
// start offset and is acknowledged but unreadable.
func TestTruncateIntoBatchBelowLogStart(t *testing.T) {
	e := newEnv(t)
	cfg := Config{}
	l := e.open(cfg)
	appendOK(t, l, valueBatch(t, 1, "a", "b")) // offsets 0 and 1, one batch
	appendOK(t, l, valueBatch(t, 1, "c"))
	start, err := l.DeleteRecordsBefore(context.Background(), 1)
	require.NoError(t, err)
	require.EqualValues(t, 1, start)
	end, err := l.TruncateTo(1)
	require.NoError(t, err)
	require.EqualValues(t, 0, end)
	require.LessOrEqual(t, l.LogStartOffset(), l.LogEndOffset())

	res := appendOK(t, l, valueBatch(t, 1, "d"))
	recs := readAll(t, l, l.LogStartOffset())
	require.Len(t, recs, 1)
	require.Equal(t, res.FirstOffset, recs[0].Offset)
	require.Equal(t, "d", string(recs[0].Value))

	// And after a crash and after a clean reopen.
	for _, clean := range []bool{false, true} {
		if clean {
			require.NoError(t, l.Close())
		} else {
			e.fs = e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
			l.Close()
		}
		l = e.open(cfg)
		recs = readAll(t, l, l.LogStartOffset())
		require.Len(t, recs, 1, "clean %v", clean)
		require.Equal(t, "d", string(recs[0].Value))
	}
	require.NoError(t, l.Close())
}

// TestOffsetForTimeBelowLogStart: OffsetForTime must answer from the
// records at or after the log start offset. Found by TestModel: when the
// first record recent enough lay below the log start offset, in a batch
// straddling it, the log start offset was returned, whatever the
// timestamps of the records from there on.
func TestOffsetForTimeBelowLogStart(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	defer l.Close()
	k := []byte("k")
	appendOK(t, l, batchOf(t, compression.None, kv{k, []byte("a"), 100}, kv{k, []byte("b"), 50}, kv{k, []byte("c"), 50}))
	_, err := l.DeleteRecordsBefore(context.Background(), 1)
	require.NoError(t, err)
	_, ok, err := l.OffsetForTime(100)
	require.NoError(t, err)
	require.False(t, ok, "no record from the log start offset on is as recent as 100")
	off, ok, err := l.OffsetForTime(50)
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 1, off)

	appendOK(t, l, batchOf(t, compression.None, kv{k, []byte("d"), 200}))
	off, ok, err = l.OffsetForTime(100)
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 3, off)
}
