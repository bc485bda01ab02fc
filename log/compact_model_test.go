package log

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"pgregory.net/rapid"
)

// TestCompactionModel runs random histories of a log under compaction and
// retention — keyed records, tombstones, keyless records (on a log that
// is not compacted then), empty keys and values (a key and a live value,
// not null ones), idempotent producers, a fake clock, Compact,
// Maintain, ApplyRetention, DeleteRecordsBefore, config changes (cleanup
// policy, min/max.compaction.lag.ms, delete.retention.ms, retention by
// time and size, dirty ratio, segment size, sync policy, timestamp type),
// a key map as small as one entry, clean reopens (some without the
// producer-state snapshots), crashes (under SyncPeriodic and SyncNever
// losing what was not fsynced), crashes in the middle of a compaction or
// a Maintain, and compactions that race appends, reads, DeleteRecords and
// retention — against a model of what Kafka's rules allow the log to
// hold. After every step:
//
//   - every record read is the one appended at its offset, offsets
//     increase, and the log start never goes back nor the log end moves
//     but by appends;
//   - a record at or past the log start is missing only if compaction
//     may have removed it: a keyless one; one superseded by a later
//     record of its key that some compaction pass could have cleaned
//     (below the active segment, and older than min.compaction.lag.ms
//     then); a tombstone that some pass could have cleaned at least
//     delete.retention.ms (as then) ago; never because the record that
//     superseded it was lost to a crash. Once missing, a record stays
//     missing but after a crash in the middle of a compaction;
//   - below the cleaner checkpoint, no key is held twice and no record
//     lacks a key (what a pass reaches, it deduplicates);
//   - each idempotent producer's last batch is still in the log (maybe
//     emptied) while it is at or past the log start, unless a crash lost
//     a later one, and its retry is a duplicate;
//   - a read from any offset starts at the next record kept,
//     OffsetForTime answers the first record kept at or after the time,
//     and OffsetOfMaxTimestamp the first kept with the largest;
//   - after Maintain with a key map large enough, the log is neither
//     dirty enough nor overdue for compaction; after ApplyRetention, the
//     oldest segment left is not past retention.ms nor in excess of
//     retention.bytes, and what went was past them.
//
// It runs half rapid's number of checks (50 by default; a fifth of
// that, with fewer steps each, under -short); RUNNEL_COMPACT_MODEL=N
// runs rapid's whole number N times over, as does -rapid.checks with 2N
// times as many:
//
//	RUNNEL_COMPACT_MODEL=30 go test -run TestCompactionModel ./log
func TestCompactionModel(t *testing.T) {
	testkit.RapidReplay(t)
	if n, _ := strconv.Atoi(os.Getenv("RUNNEL_COMPACT_MODEL")); n > 0 {
		// N runs of rapid's whole number of checks; its
		// -rapid.checks flag is the other way to ask for more.
		for i := range n {
			t.Run(fmt.Sprint(i), func(t *testing.T) { rapid.Check(t, runCompactModel) })
		}
		return
	}
	defer rapidChecks(t, 2)()
	rapid.Check(t, runCompactModel)
}

func runCompactModel(t *rapid.T) {
	m := newCompactModel(t)
	defer func() { m.l.Close() }()
	actions := map[string]func(*rapid.T){
		"append":          m.Append,
		"append-more":     m.Append,
		"append-most":     m.Append,
		"producer":        m.ProducerAppend,
		"advance":         m.Advance,
		"roll":            m.Roll,
		"compact":         m.Compact,
		"maintain":        m.Maintain,
		"retention":       m.Retention,
		"delete-records":  m.DeleteRecords,
		"config":          m.Reconfigure,
		"reopen":          m.Reopen,
		"crash":           m.Crash,
		"crash-compact":   m.CrashCompact,
		"concurrent":      m.Concurrent,
		"read-from":       m.ReadFrom,
		"offset-for-time": m.OffsetForTime,
		"":                m.Check,
	}
	rounds := 4
	if testing.Short() {
		rounds = 2
	}
	for range rounds {
		t.Repeat(actions)
	}
}

// cmRec is a record the model appended.
type cmRec struct {
	key, value []byte // key nil: keyless; value nil: a tombstone
	ts         int64
	// cleanable: some compaction pass could have reached it (it lay below
	// the active segment, and was older than min.compaction.lag.ms then).
	cleanable bool
	// horizon is the earliest delete horizon such a pass could have set
	// on its batch: the pass's time plus delete.retention.ms then.
	horizon int64
	gone    bool // seen missing
}

// cmProducer is an idempotent producer's history.
type cmProducer struct {
	seq     int32
	last    []byte // its last batch as appended (base offset 0)
	end     int64  // the last offset of that batch
	batches []cmBatch
	// lost: a crash lost the producer's last batch (not fsynced), which
	// compaction kept as the last instead of the one before, now the
	// last: the log may no longer hold that one (Kafka's cleaner too
	// keeps only the last batch its producer state knows), and only the
	// producer-state snapshots keep its state. Cleared by its next batch.
	lost bool
}

// cmBatch is one batch of an idempotent producer.
type cmBatch struct {
	data []byte
	end  int64 // last offset
	seq  int32 // the next sequence after it
}

type compactModel struct {
	mem      *vfs.MemFS
	fail     vfs.Injector // nil: no fault
	clock    *fakeClock
	cfg      Config
	mapBytes int64
	l        *Log

	recs      []cmRec
	start     int64
	producers map[int64]*cmProducer
	seq       int
}

func newCompactModel(t *rapid.T) *compactModel {
	m := &compactModel{mem: vfs.NewMem(), clock: newClock(), producers: map[int64]*cmProducer{}}
	m.cfg = m.drawConfig(t)
	m.mapBytes = m.drawMapBytes(t)
	m.open(t)
	return m
}

// drawConfig draws a small-segment config.
func (m *compactModel) drawConfig(t *rapid.T) Config {
	policy := rapid.SampledFrom([]CleanupPolicy{Compact, Compact, Compact | Delete, Delete}).Draw(t, "policy")
	cfg := Config{
		SegmentBytes:       int64(rapid.IntRange(150, 1200).Draw(t, "segment.bytes")),
		IndexIntervalBytes: rapid.IntRange(1, 256).Draw(t, "index.interval.bytes"),
		CleanupPolicy:      policy,
		RetentionTime:      -1,
		// The model stamps records ahead of the clock (which it then
		// moves past them): no TimestampAfterMax.
		TimestampAfterMax: -1,
	}
	// Each duration is sometimes the largest (some 292 years, as near
	// Kafka's Long.MAX_VALUE ms as a time.Duration goes): no sum or
	// difference with it may wrap.
	longest := func(name string) bool { return rapid.IntRange(0, 7).Draw(t, name) == 0 }
	if rapid.Bool().Draw(t, "min-lag") {
		cfg.MinCompactionLag = time.Duration(rapid.IntRange(1, 120).Draw(t, "min.compaction.lag.min")) * time.Minute
		if longest("min.compaction.lag.longest") {
			cfg.MinCompactionLag = math.MaxInt64
		}
	}
	if rapid.Bool().Draw(t, "max-lag") {
		if cfg.MinCompactionLag == math.MaxInt64 || longest("max.compaction.lag.longest") {
			cfg.MaxCompactionLag = math.MaxInt64
		} else {
			cfg.MaxCompactionLag = cfg.MinCompactionLag + time.Duration(rapid.IntRange(1, 120).Draw(t, "max.compaction.lag.min"))*time.Minute
		}
	}
	if dr := rapid.IntRange(-1, 180).Draw(t, "delete.retention.min"); dr != 0 {
		cfg.DeleteRetentionTime = time.Duration(dr) * time.Minute
	} else {
		cfg.DeleteRetentionTime = -1 // zero
	}
	if longest("delete.retention.longest") {
		cfg.DeleteRetentionTime = math.MaxInt64
	}
	if rapid.Bool().Draw(t, "retention") {
		cfg.RetentionTime = time.Duration(rapid.IntRange(30, 600).Draw(t, "retention.min")) * time.Minute
		if longest("retention.longest") {
			cfg.RetentionTime = math.MaxInt64
		}
	}
	if rapid.IntRange(0, 3).Draw(t, "retention-bytes") == 0 {
		cfg.RetentionBytes = int64(rapid.IntRange(500, 5000).Draw(t, "retention.bytes"))
	}
	if rapid.IntRange(0, 3).Draw(t, "log-append-time") == 0 {
		cfg.TimestampType = LogAppendTime
	}
	cfg.Sync = rapid.SampledFrom([]SyncPolicy{SyncAlways, SyncAlways, SyncPeriodic, SyncNever}).Draw(t, "sync")
	if cfg.Sync == SyncPeriodic {
		cfg.FlushMessages = int64(rapid.IntRange(1, 20).Draw(t, "flush.messages"))
	}
	cfg.MinCleanableDirtyRatio = rapid.SampledFrom([]float64{-1, 0.1, 0.5, 0.9}).Draw(t, "dirty.ratio")
	if rapid.Bool().Draw(t, "segment.ms") {
		cfg.SegmentTime = time.Duration(rapid.IntRange(10, 300).Draw(t, "segment.min")) * time.Minute
	}
	return cfg
}

// drawMapBytes draws the cleaner's key map size: one entry up to a few,
// or the default.
func (m *compactModel) drawMapBytes(t *rapid.T) int64 {
	if rapid.Bool().Draw(t, "small-map") {
		return int64(rapid.IntRange(MinCleanerMapBytes, 8*keySlotBytes).Draw(t, "map.bytes"))
	}
	return 0
}

// bigMap reports whether one pass's key map holds every key of the model.
func (m *compactModel) bigMap() bool { return m.mapBytes == 0 }

func (m *compactModel) fs() vfs.FS {
	return vfs.WithFaults(m.mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if m.fail != nil {
			return m.fail.MaybeError(op, name)
		}
		return nil
	}))
}

func (m *compactModel) open(t *rapid.T) { m.openAfter(t, int64(len(m.recs))) }

// openAfter opens the log, whose end may be as low as durable (a crash
// lost what was not fsynced), and takes what it lost from the model.
func (m *compactModel) openAfter(t *rapid.T, durable int64) {
	l, err := Open(crashDir, m.cfg, Options{FS: m.fs(), Clock: m.clock, CleanerMapBytes: m.mapBytes, ProducerExpiration: 100000 * time.Hour})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	m.l = l
	if s := l.LogStartOffset(); s < m.start {
		t.Fatalf("log start %d after open, was %d", s, m.start)
	} else {
		m.start = s
	}
	e := l.LogEndOffset()
	if e > int64(len(m.recs)) || e < min(durable, int64(len(m.recs))) && e < l.LogStartOffset() {
		t.Fatalf("log end %d after open: %d appended, %d durable", e, len(m.recs), durable)
	}
	if e < durable && e != l.LogStartOffset() {
		t.Fatalf("log end %d after open, below the durable offset %d", e, durable)
	}
	m.recs = m.recs[:e]
	for _, p := range m.producers {
		for len(p.batches) > 0 && p.batches[len(p.batches)-1].end >= e {
			p.batches = p.batches[:len(p.batches)-1]
			p.lost = true
		}
		if n := len(p.batches); n > 0 {
			b := p.batches[n-1]
			p.seq, p.last, p.end = b.seq, b.data, b.end
		} else {
			p.last, p.end = nil, -1
		}
	}
}

func (m *compactModel) now() int64 { return m.clock.Now().UnixMilli() }

// drawRecord draws one record's key, value and timestamp.
func (m *compactModel) drawRecord(t *rapid.T, keyless bool) cmRec {
	r := cmRec{ts: m.now() + int64(rapid.IntRange(-10, 10).Draw(t, "ts.min"))*60_000}
	if rapid.IntRange(0, 15).Draw(t, "old") == 0 {
		r.ts = m.now() - int64(rapid.IntRange(1, 48).Draw(t, "ts.hours.ago"))*3_600_000
	}
	if rapid.IntRange(0, 31).Draw(t, "far") == 0 {
		// The ends of an int64: Kafka's largest timestamp, and the most
		// negative one a client can send.
		r.ts = rapid.SampledFrom([]int64{math.MaxInt64, math.MinInt64, -1}).Draw(t, "ts.far")
	}
	if !keyless || rapid.IntRange(0, 3).Draw(t, "keyed") > 0 {
		r.key = fmt.Appendf(nil, "k%d", rapid.IntRange(0, 9).Draw(t, "key"))
		if rapid.IntRange(0, 15).Draw(t, "empty.key") == 0 {
			r.key = []byte{} // a key, not a null one
		}
	}
	if rapid.IntRange(0, 4).Draw(t, "tombstone") > 0 {
		r.value = fmt.Appendf(nil, "v%d-", m.seq)
		r.value = append(r.value, bytes.Repeat([]byte{'x'}, rapid.IntRange(0, 60).Draw(t, "size"))...)
		if rapid.IntRange(0, 9).Draw(t, "empty.value") == 0 {
			r.value = []byte{} // a live value, not a tombstone
		}
	}
	m.seq++
	return r
}

// Append appends one or two batches of 1-5 records; keyless ones too
// when the log is not compacted.
func (m *compactModel) Append(t *rapid.T) {
	keyless := m.cfg.CleanupPolicy&Compact == 0
	var data []byte
	var recs []cmRec
	for range rapid.IntRange(1, 2).Draw(t, "batches") {
		var b record.Builder
		b.Reset()
		for range rapid.IntRange(1, 5).Draw(t, "records") {
			r := m.drawRecord(t, keyless)
			b.Append(r.ts, r.key, r.value, nil)
			recs = append(recs, r)
		}
		var err error
		if data, err = b.AppendTo(data, rapid.SampledFrom(modelCodecs).Draw(t, "codec")); err != nil {
			t.Fatalf("encoding: %v", err)
		}
	}
	m.append(t, data, recs)
	m.check(t)
}

func (m *compactModel) append(t *rapid.T, data []byte, recs []cmRec) AppendResult {
	res, err := m.l.Append(context.Background(), data, AppendOptions{})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	if res.Duplicate || res.FirstOffset != int64(len(m.recs)) || res.LastOffset != res.FirstOffset+int64(len(recs))-1 {
		t.Fatalf("append of %d records at %d: %+v", len(recs), len(m.recs), res)
	}
	if res.LogAppendTime >= 0 {
		for i := range recs {
			recs[i].ts = res.LogAppendTime
		}
	}
	m.recs = append(m.recs, recs...)
	return res
}

// ProducerAppend appends a batch of 1-3 keyed records of idempotent
// producer 1 or 2.
func (m *compactModel) ProducerAppend(t *rapid.T) {
	id := int64(rapid.IntRange(1, 2).Draw(t, "producer"))
	p := m.producers[id]
	if p == nil {
		p = &cmProducer{}
		m.producers[id] = p
	}
	var b record.Builder
	b.Reset()
	b.SetProducer(id, 0, p.seq)
	var recs []cmRec
	n := rapid.IntRange(1, 3).Draw(t, "records")
	for range n {
		r := m.drawRecord(t, false)
		b.Append(r.ts, r.key, r.value, nil)
		recs = append(recs, r)
	}
	data, err := b.AppendTo(nil, rapid.SampledFrom(modelCodecs).Draw(t, "codec"))
	if err != nil {
		t.Fatalf("encoding: %v", err)
	}
	last := append([]byte(nil), data...)
	res := m.append(t, data, recs)
	p.seq += int32(n)
	p.last, p.end = last, res.LastOffset
	p.batches = append(p.batches, cmBatch{data: last, end: res.LastOffset, seq: p.seq})
	p.lost = false
	m.check(t)
}

// Advance moves the clock 0-90 minutes on.
func (m *compactModel) Advance(t *rapid.T) {
	m.clock.Advance(time.Duration(rapid.IntRange(0, 90).Draw(t, "advance.min")) * time.Minute)
	m.check(t)
}

func (m *compactModel) Roll(t *rapid.T) {
	if err := m.l.Roll(); err != nil {
		t.Fatalf("roll: %v", err)
	}
	m.check(t)
}

// pass marks what a compaction pass that starts now may reach.
func (m *compactModel) pass() {
	if m.cfg.CleanupPolicy&Compact == 0 {
		return
	}
	segs := *m.l.segs.Load()
	active := segs[len(segs)-1].Base()
	now := m.now()
	dr := max(m.cfg.DeleteRetentionTime, 0).Milliseconds()
	lag := m.cfg.MinCompactionLag.Milliseconds()
	for o := m.start; o < active; o++ {
		r := &m.recs[o]
		if lag > 0 && r.ts > now-lag {
			continue
		}
		if !r.cleanable || now+dr < r.horizon {
			r.horizon = now + dr
		}
		r.cleanable = true
	}
}

func (m *compactModel) Compact(t *rapid.T) {
	m.pass()
	start, end := m.l.LogStartOffset(), m.l.LogEndOffset()
	res, err := m.l.Compact(context.Background())
	if err != nil {
		t.Fatalf("compact: %v", err)
	}
	if m.l.LogStartOffset() != start || m.l.LogEndOffset() != end {
		t.Fatalf("compaction moved the log start or end: [%d, %d) to [%d, %d)", start, end, m.l.LogStartOffset(), m.l.LogEndOffset())
	}
	segs := *m.l.segs.Load()
	if active := segs[len(segs)-1].Base(); res.FirstUncleanable > active || res.CleanedTo > max(active, start) {
		t.Fatalf("compaction %+v: active segment at %d", res, active)
	}
	m.check(t)
}

// Maintain runs Maintain; with a key map large enough, it must leave the
// log neither dirty enough nor overdue for a compaction.
func (m *compactModel) Maintain(t *rapid.T) {
	m.passForRetention()
	m.pass()
	before := m.readable(t)
	if err := m.l.Maintain(context.Background()); err != nil {
		t.Fatalf("maintain: %v", err)
	}
	m.checkRetained(t, before, false)
	if m.cfg.CleanupPolicy&Compact != 0 && m.bigMap() {
		if m.l.dirtyEnough() {
			t.Fatalf("dirty ratio %v after Maintain, more than %v", m.l.DirtyRatio(), m.l.cfg.MinCleanableDirtyRatio)
		}
		if m.l.compactionOverdue() {
			t.Fatalf("compaction overdue after Maintain (max.compaction.lag.ms %v)", m.cfg.MaxCompactionLag)
		}
	}
	m.check(t)
}

// passForRetention is a no-op kept for symmetry: retention needs no
// marking, what it removes is below the log start.
func (m *compactModel) passForRetention() {}

// Retention runs ApplyRetention, and checks what it removed and left.
func (m *compactModel) Retention(t *rapid.T) {
	before := m.readable(t)
	if _, err := m.l.ApplyRetention(context.Background()); err != nil {
		t.Fatalf("retention: %v", err)
	}
	m.checkRetained(t, before, true)
	m.check(t)
}

// readable returns the records the log serves, by offset.
func (m *compactModel) readable(t *rapid.T) []*record.Record {
	_, recs := cmReadBatches(t, m.l, m.l.LogStartOffset())
	return recs
}

// checkRetained checks what retention removed from before (the records
// the log served before it ran): under the delete policy, only records
// past retention.ms, or, with retention.bytes, oldest first; and with
// exact, what it left: no segment that retention must remove.
func (m *compactModel) checkRetained(t *rapid.T, before []*record.Record, exact bool) {
	start := m.l.LogStartOffset()
	if start < m.start {
		t.Fatalf("log start went back from %d to %d", m.start, start)
	}
	cutoff := m.now() - m.cfg.RetentionTime.Milliseconds()
	if m.cfg.CleanupPolicy&Delete == 0 {
		if start != m.start {
			t.Fatalf("retention moved the log start from %d to %d without the delete policy", m.start, start)
		}
		return
	}
	if m.cfg.RetentionBytes <= 0 {
		for _, r := range before {
			if r.Offset < start && (m.cfg.RetentionTime < 0 || r.Timestamp.UnixMilli() >= cutoff) {
				t.Fatalf("retention removed offset %d (timestamp %d), not past retention.ms (cutoff %d)", r.Offset, r.Timestamp.UnixMilli(), cutoff)
			}
		}
	}
	m.start = start
	if !exact {
		return
	}
	segs := *m.l.segs.Load()
	if len(segs) == 1 {
		return
	}
	first := segs[0]
	// With retention.bytes too, a segment past retention.ms may stay
	// behind one retention.bytes removed, until the next run (as in Kafka
	// before 3.x, whose size rule ran after its time rule).
	if m.cfg.RetentionTime >= 0 && m.cfg.RetentionBytes <= 0 && first.MaxTimestamp() < cutoff {
		t.Fatalf("segment %v (max timestamp %d) past retention.ms (cutoff %d) left", first, first.MaxTimestamp(), cutoff)
	}
	if m.cfg.RetentionBytes > 0 {
		var size int64
		for _, s := range segs {
			size += s.Size()
		}
		if size-first.Size() >= m.cfg.RetentionBytes {
			t.Fatalf("segment %v left: %d bytes without it, retention.bytes %d", first, size-first.Size(), m.cfg.RetentionBytes)
		}
	}
}

// DeleteRecords moves the log start to a random offset up to the end.
func (m *compactModel) DeleteRecords(t *rapid.T) {
	if m.cfg.CleanupPolicy&Delete == 0 {
		t.Skip("refused on a compacted-only topic (by the broker)")
	}
	to := rapid.Int64Range(m.start, int64(len(m.recs))).Draw(t, "delete-before")
	got, err := m.l.DeleteRecordsBefore(context.Background(), to)
	if err != nil {
		t.Fatalf("delete records before %d: %v", to, err)
	}
	if got != max(to, m.start) {
		t.Fatalf("delete records before %d: start %d", to, got)
	}
	m.start = got
	m.check(t)
}

// Reconfigure reopens the log with a new config and key map size.
func (m *compactModel) Reconfigure(t *rapid.T) {
	m.cfg = m.drawConfig(t)
	m.mapBytes = m.drawMapBytes(t)
	if err := m.l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	m.open(t)
	m.check(t)
}

func (m *compactModel) Reopen(t *rapid.T) {
	if err := m.l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	m.removeSnapshots(t, int64(len(m.recs)))
	m.open(t)
	m.check(t)
}

// removeSnapshots removes the producer-state snapshots now and then, so
// that Open rebuilds the producers' state from the log alone — when every
// producer's last batch is still at or past the log start, and below
// durable (what a crash keeps), and none lost its last batch to a crash.
func (m *compactModel) removeSnapshots(t *rapid.T, durable int64) {
	if len(m.producers) == 0 || !rapid.Bool().Draw(t, "remove-snapshots") {
		return
	}
	for _, p := range m.producers {
		if p.lost || p.last != nil && (p.end < m.start || p.end >= durable) {
			return
		}
	}
	names, err := m.mem.List(crashDir)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	for _, name := range names {
		if name == producerFile || len(name) > len(snapshotSuffix) && name[len(name)-len(snapshotSuffix):] == snapshotSuffix {
			if err := m.mem.Remove(crashDir + "/" + name); err != nil {
				t.Fatalf("remove %s: %v", name, err)
			}
		}
	}
}

// crashClone replaces the file system with what a power cut leaves, and
// returns the log's durable offset before it.
func (m *compactModel) crashClone(t *rapid.T) int64 {
	durable := m.l.DurableOffset()
	mode := rapid.SampledFrom(crashTails).Draw(t, "tail")
	reorder := rapid.Bool().Draw(t, "reorder")
	m.mem = m.mem.CrashClone(vfs.CrashOptions{Tail: mode, Reorder: reorder, Rand: rand.New(rand.NewPCG(uint64(m.seq), 7))})
	m.fail = nil
	m.l.Close()
	m.removeSnapshots(t, durable)
	return durable
}

// Crash cuts the power: under SyncAlways nothing changes.
func (m *compactModel) Crash(t *rapid.T) {
	m.openAfter(t, m.crashClone(t))
	m.check(t)
}

// CrashCompact runs a compaction (or a Maintain: retention too) whose
// file system dies at a random operation, and reopens what a power cut
// leaves: the log is as before the pass or after it, group by group, and
// retention removed only what it may.
func (m *compactModel) CrashCompact(t *rapid.T) {
	m.pass()
	maintain := rapid.Bool().Draw(t, "maintain")
	var before []*record.Record
	if maintain {
		before = m.readable(t)
	}
	m.fail = vfs.FailFrom(rapid.IntRange(1, 60).Draw(t, "fail-from"))
	if maintain {
		_ = m.l.Maintain(context.Background())
	} else {
		_, _ = m.l.Compact(context.Background())
	}
	start := m.start
	m.openAfter(t, m.crashClone(t))
	if maintain {
		// What retention removed before the crash, it could remove.
		m.start = start
		m.checkRetained(t, before, false)
	}
	// A pass cut short may leave removed records back: the records
	// are taken as seen anew.
	for i := range m.recs {
		m.recs[i].gone = false
	}
	m.check(t)
}

// Concurrent runs a compaction (or a Maintain) while appends, reads,
// DeleteRecordsBefore and ApplyRetention run on the test's goroutine.
func (m *compactModel) Concurrent(t *rapid.T) {
	type op struct {
		kind string
		data []byte
		recs []cmRec
		to   int64
	}
	var ops []op
	for range rapid.IntRange(1, 6).Draw(t, "ops") {
		o := op{kind: rapid.SampledFrom([]string{"append", "append", "delete-records", "retention", "read"}).Draw(t, "op")}
		switch o.kind {
		case "append":
			var b record.Builder
			b.Reset()
			for range rapid.IntRange(1, 4).Draw(t, "records") {
				r := m.drawRecord(t, m.cfg.CleanupPolicy&Compact == 0)
				b.Append(r.ts, r.key, r.value, nil)
				o.recs = append(o.recs, r)
			}
			var err error
			if o.data, err = b.AppendTo(nil, compression.None); err != nil {
				t.Fatalf("encoding: %v", err)
			}
		case "delete-records":
			if m.cfg.CleanupPolicy&Delete == 0 {
				continue
			}
			o.to = int64(rapid.IntRange(0, 8).Draw(t, "delete-ahead"))
		}
		ops = append(ops, o)
	}
	maintain := rapid.Bool().Draw(t, "maintain")
	m.pass()
	done := make(chan error, 1)
	go func() {
		if maintain {
			done <- m.l.Maintain(context.Background())
			return
		}
		_, err := m.l.Compact(context.Background())
		done <- err
	}()
	for _, o := range ops {
		switch o.kind {
		case "append":
			m.append(t, o.data, o.recs)
		case "delete-records":
			to := min(m.l.LogStartOffset()+o.to, m.l.LogEndOffset())
			if _, err := m.l.DeleteRecordsBefore(context.Background(), to); err != nil {
				t.Fatalf("delete records before %d: %v", to, err)
			}
		case "retention":
			if _, err := m.l.ApplyRetention(context.Background()); err != nil {
				t.Fatalf("retention: %v", err)
			}
		case "read":
			m.readDuring(t)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("compaction (maintain %v): %v", maintain, err)
	}
	// What the pass could reach: at most what lay below the active
	// segment when it ended.
	m.pass()
	m.check(t)
}

// readDuring reads the log from its start to its end while a compaction
// (and its retention) runs: every record read is the one appended at its
// offset, in increasing order; the read ends early if the log start moves
// past it.
func (m *compactModel) readDuring(t *rapid.T) {
	prev := int64(-1)
	for off := m.l.LogStartOffset(); off < m.l.LogEndOffset(); {
		data, err := m.l.Read(off, 1<<10, math.MaxInt64)
		if errors.Is(err, ErrOffsetOutOfRange) && off < m.l.LogStartOffset() {
			return
		}
		if err != nil || len(data) == 0 {
			t.Fatalf("read at %d during a compaction: %d bytes, %v", off, len(data), err)
		}
		for b, err := range record.Batches(data) {
			if err != nil {
				t.Fatalf("read at %d during a compaction: %v", off, err)
			}
			for r, err := range b.Records() {
				if err != nil {
					t.Fatalf("decoding batch at offset %d: %v", b.BaseOffset(), err)
				}
				if r.Offset < off {
					continue
				}
				want := m.recs[r.Offset]
				if r.Offset <= prev || !bytes.Equal(r.Key, want.key) || !bytes.Equal(r.Value, want.value) || r.Timestamp.UnixMilli() != want.ts ||
					(r.Key == nil) != (want.key == nil) || (r.Value == nil) != (want.value == nil) {
					t.Fatalf("offset %d read during a compaction (after %d): key %q value %q, want %q %q", r.Offset, prev, r.Key, r.Value, want.key, want.value)
				}
				prev = r.Offset
			}
			off = max(off, b.NextOffset())
		}
	}
}

// ReadFrom reads from a random offset: the first record served is the
// first kept at or after it.
func (m *compactModel) ReadFrom(t *rapid.T) {
	end := int64(len(m.recs))
	if m.start >= end {
		t.Skip("empty log")
	}
	from := rapid.Int64Range(m.start, end-1).Draw(t, "from")
	all := m.readable(t)
	var want int64 = -1
	for _, r := range all {
		if r.Offset >= from {
			want = r.Offset
			break
		}
	}
	_, recs := cmReadBatches(t, m.l, from)
	got := int64(-1)
	if len(recs) > 0 {
		got = recs[0].Offset
	}
	if got != want {
		t.Fatalf("read from %d: first record %d, want %d", from, got, want)
	}
	if len(recs) > 0 && len(all) > 0 && !sameOffsets(recs, all[len(all)-len(recs):]) {
		t.Fatalf("read from %d served other records than a read from the start", from)
	}
}

func sameOffsets(a, b []*record.Record) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Offset != b[i].Offset {
			return false
		}
	}
	return true
}

// OffsetForTime searches a random time: the answer is the first record
// kept whose timestamp is at least it. OffsetOfMaxTimestamp answers the
// first record kept with the largest timestamp.
func (m *compactModel) OffsetForTime(t *rapid.T) {
	target := m.now() + int64(rapid.IntRange(-50*60, 20*60).Draw(t, "target.s"))*1000
	if len(m.recs) > 0 && rapid.Bool().Draw(t, "at-a-record") {
		target = m.recs[rapid.IntRange(0, len(m.recs)-1).Draw(t, "record")].ts + int64(rapid.IntRange(-1, 1).Draw(t, "delta"))
	}
	var want int64 = -1
	readable := m.readable(t)
	for _, r := range readable {
		if r.Timestamp.UnixMilli() >= target {
			want = r.Offset
			break
		}
	}
	var wantMax int64 = -1
	maxTs := int64(math.MinInt64)
	for _, r := range readable {
		// wantMax < 0: the first record, whatever its timestamp
		// (math.MinInt64 too).
		if ts := r.Timestamp.UnixMilli(); wantMax < 0 || ts > maxTs {
			maxTs, wantMax = ts, r.Offset
		}
	}
	gotMax, ok, err := m.l.OffsetOfMaxTimestamp(context.Background())
	if err != nil {
		t.Fatalf("offset of the max timestamp: %v", err)
	}
	if !ok {
		gotMax = -1
	}
	if gotMax != wantMax {
		t.Fatalf("offset of the max timestamp: %d (ok %v), want %d (timestamp %d)", gotMax, ok, wantMax, maxTs)
	}
	got, ok, err := m.l.OffsetForTime(target)
	if err != nil {
		t.Fatalf("offset for time %d: %v", target, err)
	}
	if !ok {
		got = -1
	}
	if got != want {
		t.Fatalf("offset for time %d: %d (ok %v), want %d", target, got, ok, want)
	}
}

func (m *compactModel) Check(t *rapid.T) { m.check(t) }

// check compares the log with the model (see TestCompactionModel).
func (m *compactModel) check(t *rapid.T) {
	t.Helper()
	l := m.l
	start, end := l.LogStartOffset(), l.LogEndOffset()
	if start < m.start {
		t.Fatalf("log start went back from %d to %d", m.start, start)
	}
	m.start = start
	if end != int64(len(m.recs)) {
		t.Fatalf("log end %d, want %d", end, len(m.recs))
	}
	batches, recs := cmReadBatches(t, l, start)
	now := m.now()
	present := make(map[int64]*record.Record, len(recs))
	for _, r := range recs {
		if r.Offset < start {
			continue
		}
		want := m.recs[r.Offset]
		if want.gone {
			t.Fatalf("offset %d is back after it was gone", r.Offset)
		}
		if !bytes.Equal(r.Key, want.key) || !bytes.Equal(r.Value, want.value) || (r.Value == nil) != (want.value == nil) ||
			(r.Key == nil) != (want.key == nil) || r.Timestamp.UnixMilli() != want.ts {
			t.Fatalf("offset %d: key %q value %q ts %d, want key %q value %q ts %d", r.Offset, r.Key, r.Value, r.Timestamp.UnixMilli(), want.key, want.value, want.ts)
		}
		present[r.Offset] = r
	}
	// Superseded: a later record of the key that some pass could clean.
	superseded := make([]bool, len(m.recs))
	latest := map[string]bool{}
	for o := len(m.recs) - 1; o >= int(start); o-- {
		r := m.recs[o]
		if r.key == nil {
			continue
		}
		superseded[o] = latest[string(r.key)]
		if r.cleanable {
			latest[string(r.key)] = true
		}
	}
	for o := start; o < end; o++ {
		if _, ok := present[o]; ok {
			continue
		}
		r := &m.recs[o]
		switch {
		case r.key == nil && r.cleanable:
		case superseded[o]:
		case r.value == nil && r.cleanable && r.horizon <= now:
		default:
			t.Fatalf("offset %d (key %q, tombstone %v, ts %d, cleanable %v, horizon %d, now %d) is gone; policy %v, lag %v",
				o, r.key, r.value == nil, r.ts, r.cleanable, r.horizon, now, m.cfg.CleanupPolicy, m.cfg.MinCompactionLag)
		}
		r.gone = true
	}
	// Below the cleaner checkpoint, each key once and every record keyed.
	l.mu.Lock()
	cleaned := l.cleaned
	l.mu.Unlock()
	seen := map[string]int64{}
	for _, r := range recs {
		if r.Offset >= cleaned {
			break
		}
		if r.Key == nil {
			t.Fatalf("keyless record at %d below the cleaner checkpoint %d", r.Offset, cleaned)
		}
		if o, ok := seen[string(r.Key)]; ok {
			t.Fatalf("key %q at %d and %d, below the cleaner checkpoint %d", r.Key, o, r.Offset, cleaned)
		}
		seen[string(r.Key)] = r.Offset
	}
	// Each producer's last batch stays while at or past the log start.
	for id, p := range m.producers {
		if p.last == nil || p.end < start {
			continue
		}
		found := p.lost
		for _, b := range batches {
			if b.ProducerID() == id && b.LastOffset() == p.end {
				found = true
			}
		}
		if !found {
			t.Fatalf("producer %d's last batch, ending at %d, is gone", id, p.end)
		}
		res, err := l.Append(context.Background(), append([]byte(nil), p.last...), AppendOptions{})
		if err != nil || !res.Duplicate || res.LastOffset != p.end {
			t.Fatalf("retry of producer %d's last batch (ending at %d): %+v, %v", id, p.end, res, err)
		}
	}
	if errors.Is(l.check(), ErrLogFenced) {
		t.Fatalf("log fenced")
	}
}

// cmReadBatches is readBatches for a *rapid.T: the batches and records
// read from offset from to the log end.
func cmReadBatches(t *rapid.T, l *Log, from int64) ([]record.Batch, []*record.Record) {
	t.Helper()
	var batches []record.Batch
	var recs []*record.Record
	for off := from; off < l.LogEndOffset(); {
		data, err := l.Read(off, 1<<10, math.MaxInt64)
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if len(data) == 0 {
			t.Fatalf("nothing read at %d, below the log end offset %d", off, l.LogEndOffset())
		}
		for p := 0; p < len(data); {
			b, err := record.Parse(data[p:], 0)
			if err == nil {
				err = b.Validate(0)
			}
			if err != nil {
				t.Fatalf("read at %d: %v", off, err)
			}
			if b.LastOffset() < off || len(batches) > 0 && b.BaseOffset() <= batches[len(batches)-1].LastOffset() {
				t.Fatalf("batch [%d, %d] read at %d, out of order", b.BaseOffset(), b.LastOffset(), off)
			}
			batches = append(batches, b)
			prev := int64(-1)
			for r, err := range b.Records() {
				if err != nil {
					t.Fatalf("decoding batch at offset %d: %v", b.BaseOffset(), err)
				}
				if r.Offset < b.BaseOffset() || r.Offset > b.LastOffset() || r.Offset <= prev {
					t.Fatalf("record %d in batch [%d, %d], after %d", r.Offset, b.BaseOffset(), b.LastOffset(), prev)
				}
				prev = r.Offset
				if r.Offset >= from {
					recs = append(recs, r)
				}
			}
			off = b.NextOffset()
			p += len(b)
		}
	}
	return batches, recs
}
