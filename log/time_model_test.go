package log

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"pgregory.net/rapid"
)

// TestTimeModel runs random sequences of operations on a Log and checks
// its time semantics against Kafka's after each: timestamps that go
// backwards, lie far in the future, are -1 (no timestamp) or below it,
// batches whose max timestamp disagrees with their records' (or that a
// client marked LogAppendTime), the topic switched between CreateTime and
// LogAppendTime, and its index sizes and interval, segment size and time,
// retention and cleanup policy changed, by a reopen as AlterTopicConfig
// does, a clock that goes backwards, crashes, time indexes damaged while
// the log is closed (removed, cut, padded with zeros, given an entry past
// the true ones, an entry moved within the orders; whole entries cut from
// the active segment's, which the clean-shutdown marker tells), rolls,
// truncations and DeleteRecords. What it checks: each batch's max
// timestamp and each record's, each segment's max timestamp (Kafka's
// largestTimestamp: its batches' largest), the active segment's first
// batch timestamp, OffsetForTime, OffsetOfMaxTimestamp and
// OffsetOfMaxTimestampBelow against the records, the rolls that
// segment.ms and a full index call for and no others, and which segments
// retention.ms deletes (Kafka's deleteRetentionMsBreachedSegments, with
// runnel's documented rule for a segment without a timestamp).
//
// Not modelled: whole entries cut from a sealed segment's time index
// (Open cannot tell, nor can Kafka's sanity check: both then take the
// segment's max timestamp from the last entry left), and an entry moved
// to another batch of the same max timestamp (beyond any check).
//
// The "os" run, on the OS file system, runs a quarter of rapid's checks
// and is skipped under -short; RUNNEL_TIME_MODEL=N runs both N times over
// (or -rapid.checks with N times as many). Its directory is
// testkit.FastTempDir's, a tmpfs where there is one, whose files are
// mapped, truncated and removed as a disk's are: on a disk its file
// operations took 5 to 10 s of a busy machine's time (since 2026-12-07).
func TestTimeModel(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("RUNNEL_TIME_MODEL"))
	for i := range max(n, 1) {
		t.Run(fmt.Sprint("mem-", i), func(t *testing.T) { testTimeModel(t, false) })
		t.Run(fmt.Sprint("os-", i), func(t *testing.T) {
			if testing.Short() {
				t.Skip("on disk: skipped under -short")
			}
			defer rapidChecks(t, 4)()
			testTimeModel(t, true)
		})
	}
}

// rapidChecks sets rapid's number of checks (-rapid.checks, 100 by
// default) to a div-th of what it is, for a run that costs more than
// another of the same test, and returns the function that sets it back.
// rapid reads its flags at each Check; no test runs in parallel here.
func rapidChecks(t *testing.T, div int) (restore func()) {
	t.Helper()
	f := flag.Lookup("rapid.checks")
	if f == nil {
		t.Fatal("no -rapid.checks flag")
	}
	was := f.Value.String()
	n, err := strconv.Atoi(was)
	if err != nil {
		t.Fatalf("-rapid.checks=%s: %v", was, err)
	}
	if err := f.Value.Set(strconv.Itoa(max(n/div, 1))); err != nil {
		t.Fatal(err)
	}
	return func() { _ = f.Value.Set(was) }
}

func testTimeModel(tt *testing.T, onDisk bool) {
	testkit.RapidReplay(tt)
	rapid.Check(tt, func(t *rapid.T) {
		m := newTimeModel(t)
		if onDisk {
			// On the OS file system: sealed indexes mapped, files
			// truncated and removed for real; no crash (the memory FS
			// simulates it).
			dir, err := os.MkdirTemp(testkit.FastTempDir(tt), "time")
			if err != nil {
				t.Fatalf("temp dir: %v", err)
			}
			m.l.Close()
			m.fs, m.dir = vfs.OS, filepath.Join(dir, "t-0")
			m.cfg.Sync = SyncNever // no crash: fsyncs would only slow it
			m.open(t)
		}
		defer func() { m.l.Close() }()
		actions := map[string]func(*rapid.T){
			"append":       m.Append,
			"append-more":  m.Append,
			"append-again": m.Append,
			"clock":        m.Clock,
			"reconfigure":  m.Reconfigure,
			"retention":    m.Retention,
			"truncate":     m.Truncate,
			"delete":       m.DeleteRecords,
			"damage":       m.DamageTimeIndex,
			"roll":         m.Roll,
			"":             m.Check,
		}
		if !onDisk {
			actions["crash"] = m.Crash
		}
		rounds := 3
		if onDisk {
			rounds = 1
		}
		for range rounds {
			t.Repeat(actions)
		}
	})
}

type timeRec struct {
	ts    int64 // as a reader sees it: the append time in a LogAppendTime batch
	batch int64 // its batch's base offset
}

type timeModel struct {
	mem   *vfs.MemFS
	fs    vfs.FS // mem, or the OS's
	dir   string
	clock *fakeClock
	cfg   Config
	l     *Log

	recs     []timeRec
	batchMax map[int64]int64 // batch base offset -> its max timestamp
	start    int64
	// created is when the active segment was created, the log opened or
	// a truncation emptied the segment: segment.ms counts from it when
	// the first batch has no timestamp. A truncation that makes an older
	// segment active again takes that segment's: rolled[its base] if it
	// rolled since the log opened, else opened.
	created int64
	opened  int64
	rolled  map[int64]int64
}

func newTimeModel(t *rapid.T) *timeModel {
	m := &timeModel{
		mem:   vfs.NewMem(),
		dir:   "/data/time-0",
		clock: newClock(),
		// TimestampAfterMax off: the model stamps records far in the
		// future, which its default (an hour) would refuse.
		cfg:      Config{SegmentBytes: 600, IndexIntervalBytes: 100, RetentionTime: 24 * time.Hour, SegmentTime: time.Hour, TimestampAfterMax: -1},
		batchMax: map[int64]int64{},
	}
	m.fs = m.mem
	m.open(t)
	return m
}

func (m *timeModel) open(t *rapid.T) {
	l, err := Open(m.dir, m.cfg, Options{FS: m.fs, Clock: m.clock})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	m.l = l
	m.created = m.clock.Now().UnixMilli()
	m.opened, m.rolled = m.created, map[int64]int64{}
}

// rolledAt records that the active segment was created at now.
func (m *timeModel) rolledAt(now int64) {
	segs := m.segs()
	m.created = now
	m.rolled[segs[len(segs)-1].Base()] = now
}

func (m *timeModel) end() int64 { return int64(len(m.recs)) }

func (m *timeModel) segs() []*segment.Segment { return *m.l.segs.Load() }

// drawTs draws a record timestamp around now: near it, hours back, days
// ahead, -1, below -1, 0, and at the ends of an int64 (Kafka's largest
// timestamp, Long.MAX_VALUE, and the most negative one a client can send).
func drawTs(t *rapid.T, now int64) int64 {
	switch rapid.IntRange(0, 9).Draw(t, "tsKind") {
	case 8:
		return rapid.SampledFrom([]int64{math.MaxInt64, math.MaxInt64 - 1}).Draw(t, "far")
	case 9:
		return rapid.SampledFrom([]int64{math.MinInt64, math.MinInt64 + 1}).Draw(t, "farBack")
	case 0:
		return now - int64(rapid.IntRange(1, 48).Draw(t, "hoursBack"))*3600_000
	case 1:
		return now + int64(rapid.IntRange(1, 10).Draw(t, "daysAhead"))*24*3600_000
	case 2:
		return -1
	case 3:
		return -int64(rapid.IntRange(2, 100).Draw(t, "below"))
	case 4:
		return 0
	default:
		return now + int64(rapid.IntRange(-3, 3).Draw(t, "ms"))
	}
}

// Append appends one or two batches of 1-3 records with drawn timestamps
// (a batch's max timestamp field sometimes wrong, as a client may send
// it), and checks the roll that segment.ms calls for.
func (m *timeModel) Append(t *rapid.T) {
	now := m.clock.Now().UnixMilli()
	var data []byte
	type pending struct {
		n     int
		maxTs int64 // of the records, as a CreateTime topic stores it
	}
	var batches []pending
	var tss []int64
	for range rapid.IntRange(1, 2).Draw(t, "batches") {
		n := rapid.IntRange(1, 3).Draw(t, "records")
		var b record.Builder
		b.Reset()
		maxTs := int64(math.MinInt64)
		for range n {
			ts := drawTs(t, now)
			maxTs = max(maxTs, ts)
			tss = append(tss, ts)
			b.Append(ts, []byte("k"), []byte(fmt.Sprint(len(m.recs)+len(tss))), nil)
		}
		codec := rapid.SampledFrom([]compression.Codec{compression.None, compression.LZ4}).Draw(t, "codec")
		p := len(data)
		var err error
		if data, err = b.AppendTo(data, codec); err != nil {
			t.Fatalf("encoding: %v", err)
		}
		switch rapid.IntRange(0, 5).Draw(t, "wrongMax") {
		case 0:
			record.Batch(data[p:]).SetMaxTimestamp(drawTs(t, now))
		case 1:
			// Marked LogAppendTime by the client, with a time of its
			// own: a CreateTime topic stores it as CreateTime (Kafka's
			// LogValidator), a LogAppendTime topic refuses it.
			if m.cfg.WithDefaults().TimestampType == CreateTime {
				record.Batch(data[p:]).SetLogAppendTime(now + int64(rapid.IntRange(0, 1000).Draw(t, "claimed")))
			}
		}
		batches = append(batches, pending{n, max(maxTs, -1)})
	}
	segsBefore := m.segs()
	active := segsBefore[len(segsBefore)-1]
	activeSize, indexFull := active.Size(), active.IndexFull()
	firstTs := active.FirstBatchTimestamp()

	res, err := m.l.Append(context.Background(), data, AppendOptions{})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	cfg := m.cfg.WithDefaults()
	base := m.end()
	appendMax := int64(math.MinInt64)
	i := 0
	for _, pb := range batches {
		bm := pb.maxTs
		if cfg.TimestampType == LogAppendTime {
			bm = res.LogAppendTime
		}
		m.batchMax[base] = bm
		appendMax = max(appendMax, bm)
		for range pb.n {
			ts := tss[i]
			if cfg.TimestampType == LogAppendTime {
				ts = res.LogAppendTime
			}
			m.recs = append(m.recs, timeRec{ts: ts, batch: base})
			i++
		}
		base += int64(pb.n)
	}
	if res.FirstOffset != m.end()-int64(len(tss)) {
		t.Fatalf("append at %d", res.FirstOffset)
	}

	rolled := len(m.segs()) > len(segsBefore)
	bySize := activeSize+int64(len(data)) > cfg.SegmentBytes
	byTime := false
	if activeSize > 0 && cfg.SegmentTime > 0 {
		if firstTs >= 0 {
			byTime = appendMax-firstTs > cfg.SegmentTime.Milliseconds()
		} else {
			byTime = now-m.created > cfg.SegmentTime.Milliseconds()
		}
	}
	switch {
	case activeSize > 0 && byTime && !rolled:
		t.Fatalf("no roll: the active segment's first batch has timestamp %d, the append's largest is %d, segment.ms %d",
			firstTs, appendMax, cfg.SegmentTime.Milliseconds())
	case activeSize > 0 && indexFull && !rolled:
		t.Fatalf("no roll: the active segment's index is full (segment.index.bytes %d)", cfg.SegmentIndexBytes)
	case rolled && activeSize == 0:
		t.Fatalf("rolled an empty active segment")
	case rolled && !bySize && !byTime && !indexFull:
		t.Fatalf("rolled for no reason: size %d + %d of %d, first batch %d, append max %d, created %d, now %d, segment.ms %d",
			activeSize, len(data), cfg.SegmentBytes, firstTs, appendMax, m.created, now, cfg.SegmentTime.Milliseconds())
	}
	if rolled {
		m.rolledAt(now)
	}
}

// Clock moves the clock, mostly forward, sometimes back.
func (m *timeModel) Clock(t *rapid.T) {
	if rapid.IntRange(0, 3).Draw(t, "back") == 0 {
		m.clock.Advance(-time.Duration(rapid.IntRange(1, 120).Draw(t, "minutesBack")) * time.Minute)
		return
	}
	m.clock.Advance(time.Duration(rapid.IntRange(0, 72*60).Draw(t, "minutes")) * time.Minute)
}

// Reconfigure reopens the log with a new config, as AlterTopicConfig does:
// the timestamp type, index sizes and interval, segment size and time,
// retention.
func (m *timeModel) Reconfigure(t *rapid.T) {
	m.cfg.TimestampType = rapid.SampledFrom([]TimestampType{CreateTime, LogAppendTime, TimestampDefault}).Draw(t, "tsType")
	m.cfg.SegmentIndexBytes = rapid.SampledFrom([]int{0, 12, 24, 36, 120}).Draw(t, "indexBytes")
	m.cfg.IndexIntervalBytes = rapid.SampledFrom([]int{0, 1, 100, 1<<31 - 1}).Draw(t, "interval")
	m.cfg.SegmentBytes = rapid.SampledFrom([]int64{300, 600, 4000}).Draw(t, "segmentBytes")
	// Durations at their ends too: below a millisecond (0 ms) and the
	// largest (some 292 years), which no sum or difference may wrap.
	m.cfg.SegmentTime = rapid.SampledFrom([]time.Duration{0, -1, time.Hour, 10 * time.Minute, time.Nanosecond, math.MaxInt64}).Draw(t, "segmentTime")
	m.cfg.RetentionTime = rapid.SampledFrom([]time.Duration{time.Hour, 24 * time.Hour, -1, time.Nanosecond, math.MaxInt64, math.MinInt64}).Draw(t, "retention")
	// Compact|Delete: appends decode every record for its key, and take
	// the max timestamp from them (nothing here compacts).
	m.cfg.CleanupPolicy = rapid.SampledFrom([]CleanupPolicy{Delete, Compact | Delete}).Draw(t, "policy")
	if err := m.l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	m.open(t)
}

// Roll rolls the active segment.
func (m *timeModel) Roll(t *rapid.T) {
	n := len(m.segs())
	if err := m.l.Roll(); err != nil {
		t.Fatalf("roll: %v", err)
	}
	if len(m.segs()) > n {
		m.rolledAt(m.clock.Now().UnixMilli())
	}
}

// segMax is the model's largest max timestamp of the batches in [from,
// to), -1 when none.
func (m *timeModel) segMax(from, to int64) int64 {
	hi := int64(-1)
	for o := from; o < to && o < m.end(); o++ {
		hi = max(hi, m.batchMax[m.recs[o].batch])
	}
	return hi
}

// Retention applies retention and checks which segments went against
// Kafka's rule: from the oldest, while the segment lies below the high
// watermark and now - its largest timestamp > retention.ms (a rolled
// segment without a timestamp counts as past it, an active one waits;
// runnel's documented rule where Kafka takes the file's mtime).
func (m *timeModel) Retention(t *rapid.T) {
	segs := m.segs()
	cfg := m.cfg.WithDefaults()
	now := m.clock.Now().UnixMilli()
	n := 0
	for n < len(segs)-1 && segs[n+1].Base() <= m.start {
		n++
	}
	if cfg.RetentionTime >= 0 {
		for n < len(segs) {
			from, to := segs[n].Base(), m.end()
			if n < len(segs)-1 {
				to = segs[n+1].Base()
			}
			if n == len(segs)-1 && from >= m.end() {
				break // the active segment, empty
			}
			largest := m.segMax(from, to)
			if n == len(segs)-1 && largest == -1 {
				break
			}
			if !(now-largest > cfg.RetentionTime.Milliseconds()) {
				break
			}
			n++
		}
	}
	wantStart := m.start
	if n == len(segs) {
		wantStart = m.end()
	} else if n > 0 {
		wantStart = max(m.start, segs[n].Base())
	}
	if _, err := m.l.ApplyRetention(context.Background()); err != nil {
		t.Fatalf("retention: %v", err)
	}
	if n == len(segs) {
		m.rolledAt(now)
	}
	if got := m.l.LogStartOffset(); got != wantStart {
		t.Fatalf("retention at %d (retention.ms %d): log start %d, want %d (segments %v)",
			now, cfg.RetentionTime.Milliseconds(), got, wantStart, describeSegs(segs))
	}
	m.start = wantStart
}

func describeSegs(segs []*segment.Segment) []string {
	var out []string
	for _, s := range segs {
		out = append(out, fmt.Sprintf("[%d,%d) max %d", s.Base(), s.NextOffset(), s.MaxTimestamp()))
	}
	return out
}

// Truncate truncates to a random offset, as model_test's does.
func (m *timeModel) Truncate(t *rapid.T) {
	if m.end() == m.start {
		return
	}
	off := rapid.Int64Range(m.start, m.end()).Draw(t, "truncateTo")
	oldEnd, oldSegs := m.end(), len(m.segs())
	want := m.end()
	if off < m.end() {
		want = m.recs[off].batch
	}
	end, err := m.l.TruncateTo(off)
	if err != nil {
		t.Fatalf("truncate to %d: %v", off, err)
	}
	if end != want {
		t.Fatalf("truncate to %d: end %d, want %d", off, end, want)
	}
	for b := range m.batchMax {
		if b >= want {
			delete(m.batchMax, b)
		}
	}
	m.recs = m.recs[:want]
	m.start = min(m.start, want)
	segs := m.segs()
	if len(segs) < oldSegs {
		// An older segment active again: its own creation time.
		created, ok := m.rolled[segs[len(segs)-1].Base()]
		if !ok {
			created = m.opened
		}
		m.created = created
	}
	if off < oldEnd && segs[len(segs)-1].Size() == 0 {
		// Emptied by the cut (a truncation to the end does nothing, as
		// Kafka's): the segment's creation time from now on, also once
		// it has rolled and a truncation makes it active again.
		m.rolledAt(m.clock.Now().UnixMilli())
	}
}

// DeleteRecords moves the log start offset.
func (m *timeModel) DeleteRecords(t *rapid.T) {
	off := rapid.Int64Range(m.start, m.end()).Draw(t, "deleteBefore")
	if _, err := m.l.DeleteRecordsBefore(context.Background(), off); err != nil {
		t.Fatalf("delete records before %d: %v", off, err)
	}
	m.start = off
}

// Crash cuts the power and reopens: everything was fsynced (SyncAlways).
func (m *timeModel) Crash(t *rapid.T) {
	seed := rapid.Uint64().Draw(t, "seed")
	mode := rapid.SampledFrom(crashTails).Draw(t, "tail")
	clone := m.mem.CrashClone(vfs.CrashOptions{Tail: mode, Rand: rand.New(rand.NewPCG(seed, seed))})
	m.l.Close()
	m.mem, m.fs = clone, clone
	m.open(t)
}

// DamageTimeIndex closes the log and removes a segment's time index, or
// cuts it to a size that is not a whole number of entries, or pads it
// with zeros (a preallocated file not trimmed), then reopens it.
func (m *timeModel) DamageTimeIndex(t *rapid.T) {
	segs := m.segs()
	s := segs[rapid.IntRange(0, len(segs)-1).Draw(t, "segment")]
	base := s.Base()
	if err := m.l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	path := filepath.Join(m.dir, segment.FileName(base, segment.TimeIndexSuffix))
	f, err := m.fs.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		// Close removed an index that lookups had found bad.
		m.open(t)
		return
	}
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close() // on a t.Fatalf below; closed again, in vain, after the reopen
	size, err := f.Size()
	if err != nil {
		t.Fatalf("size %s: %v", path, err)
	}
	switch rapid.IntRange(0, 5).Draw(t, "damage") {
	case 5:
		// An entry changed within the orders (bit rot that a check of
		// the index alone cannot see): its timestamp or its offset moved
		// between its neighbours'.
		n := int(size / 12)
		if n == 0 {
			break
		}
		buf := make([]byte, size)
		if _, err := f.ReadAt(buf, 0); err != nil {
			t.Fatalf("read: %v", err)
		}
		i := rapid.IntRange(0, n-1).Draw(t, "entry")
		ts := func(j int) int64 { return int64(binary.BigEndian.Uint64(buf[12*j:])) }
		rel := func(j int) int64 { return int64(binary.BigEndian.Uint32(buf[12*j+8:])) }
		loTs, hiTs := int64(0), ts(i)+1e6
		loRel, hiRel := int64(0), s.NextOffset()-base-1
		if i > 0 {
			loTs, loRel = ts(i-1)+1, rel(i-1)
		}
		if i < n-1 {
			hiTs, hiRel = ts(i+1)-1, rel(i+1)
		}
		// Only a change that the log can tell from the truth: the
		// batch holding the entry's offset does not have the entry's
		// timestamp as its max (one moved to another batch of the same
		// max timestamp, or to all zeros, which reads as padding, is
		// beyond any check, as in Kafka).
		batchMaxAt := func(rel int64) int64 { return m.batchMax[m.recs[base+rel].batch] }
		newTs, newRel := ts(i), rel(i)
		if rapid.Bool().Draw(t, "moveTs") {
			if loTs <= hiTs {
				newTs = rapid.Int64Range(loTs, hiTs).Draw(t, "ts")
			}
		} else if loRel <= hiRel {
			newRel = rapid.Int64Range(loRel, hiRel).Draw(t, "rel")
		}
		if batchMaxAt(newRel) == newTs || newTs == 0 && newRel == 0 {
			break
		}
		binary.BigEndian.PutUint64(buf[12*i:], uint64(newTs))
		binary.BigEndian.PutUint32(buf[12*i+8:], uint32(newRel))
		if _, err := f.WriteAt(buf, 0); err != nil {
			t.Fatalf("write: %v", err)
		}
	case 4:
		// A whole entry past the true ones, as bit rot or a bad copy
		// may leave: a larger timestamp at an offset of the segment.
		if n := s.NextOffset() - base; n > 0 {
			var e [12]byte
			binary.BigEndian.PutUint64(e[:], uint64(max(s.MaxTimestamp(), 0)+rapid.Int64Range(1, 1e9).Draw(t, "ahead")))
			binary.BigEndian.PutUint32(e[8:], uint32(rapid.Int64Range(0, n-1).Draw(t, "rel")))
			if _, err := f.WriteAt(e[:], size); err != nil {
				t.Fatalf("entry: %v", err)
			}
		}
	case 3:
		// Whole entries lost: Open cannot tell for a sealed segment
		// (Kafka's sanity check cannot either), only for the active
		// one, against the max timestamp its clean close recorded.
		if size >= 12 && base == segs[len(segs)-1].Base() {
			if err := f.Truncate(size - 12*int64(rapid.IntRange(1, int(size/12)).Draw(t, "entries"))); err != nil {
				t.Fatalf("truncate: %v", err)
			}
		}
	case 0:
		if err := m.fs.Remove(path); err != nil {
			t.Fatalf("remove: %v", err)
		}
	case 1:
		if size > 0 {
			if err := f.Truncate(size - int64(rapid.IntRange(1, int(min(size, 11))).Draw(t, "cut"))); err != nil {
				t.Fatalf("truncate: %v", err)
			}
		}
	case 2:
		if _, err := f.WriteAt(make([]byte, 12*rapid.IntRange(1, 3).Draw(t, "pad")), size); err != nil {
			t.Fatalf("pad: %v", err)
		}
	}
	// Closed before the log opens again: on Windows, where a removed
	// file keeps its name while a handle is open (without POSIX delete
	// semantics: Wine, older Windows, other file systems than NTFS),
	// Open's rebuild of the damaged index would find the old file
	// under its name (see vfs.OS).
	if err := f.Close(); err != nil {
		t.Fatalf("close %s: %v", path, err)
	}
	m.open(t)
}

// Check compares the log's timestamps with the model's.
func (m *timeModel) Check(t *rapid.T) {
	if got := m.l.LogEndOffset(); got != m.end() {
		t.Fatalf("log end %d, want %d", got, m.end())
	}
	if got := m.l.LogStartOffset(); got != m.start {
		t.Fatalf("log start %d, want %d", got, m.start)
	}
	// Every record's timestamp and its batch's max timestamp.
	for off := m.start; off < m.end(); {
		data, err := m.l.Read(off, 1<<12, math.MaxInt64)
		if err != nil || len(data) == 0 {
			t.Fatalf("read at %d: %d bytes, %v", off, len(data), err)
		}
		for b, err := range record.Batches(data) {
			if err != nil {
				t.Fatalf("read at %d: %v", off, err)
			}
			if want := m.batchMax[b.BaseOffset()]; b.MaxTimestamp() != want {
				t.Fatalf("batch at %d: max timestamp %d, want %d", b.BaseOffset(), b.MaxTimestamp(), want)
			}
			for r, err := range b.Records() {
				if err != nil {
					t.Fatalf("batch at %d: %v", b.BaseOffset(), err)
				}
				if want := m.recs[r.Offset].ts; r.Timestamp.UnixMilli() != want {
					t.Fatalf("record %d: timestamp %d, want %d", r.Offset, r.Timestamp.UnixMilli(), want)
				}
			}
			off = b.NextOffset()
		}
	}
	// Each segment's largest timestamp, and the active one's first.
	segs := m.segs()
	for i, s := range segs {
		to := m.end()
		if i < len(segs)-1 {
			to = segs[i+1].Base()
		}
		if s.NextOffset() != min(to, m.end()) && s.Size() > 0 {
			t.Fatalf("segment %d ends at %d, want %d", s.Base(), s.NextOffset(), to)
		}
		want := int64(-1)
		if s.Size() > 0 {
			want = m.segMax(s.Base(), to)
		}
		if got := s.MaxTimestamp(); got != want {
			t.Fatalf("segment %d: max timestamp %d, want %d (segments %v)", s.Base(), got, want, describeSegs(segs))
		}
		if i == len(segs)-1 {
			wantFirst := int64(-1)
			if s.Size() > 0 {
				wantFirst = m.batchMax[m.recs[s.Base()].batch]
			}
			if got := s.FirstBatchTimestamp(); got != wantFirst {
				t.Fatalf("active segment %d: first batch timestamp %d, want %d", s.Base(), got, wantFirst)
			}
		}
	}
	// OffsetForTime at each record's timestamp and around it.
	probes := []int64{math.MinInt64, -2, -1, 0, 1, math.MaxInt64}
	for o := m.start; o < m.end(); o++ {
		ts := m.recs[o].ts
		probes = append(probes, ts-1, ts, ts+1)
	}
	slices.Sort(probes)
	for _, ts := range slices.Compact(probes) {
		checkOffsetForTime(t, m.l, ts, m.start, m.end(), func(o int64) int64 { return m.recs[o].ts })
	}
	// MAX_TIMESTAMP: the first record with the largest timestamp.
	want, wantOK := int64(0), false
	for o := m.start; o < m.end(); o++ {
		if !wantOK || m.recs[o].ts > m.recs[want].ts {
			want, wantOK = o, true
		}
	}
	got, ok, err := m.l.OffsetOfMaxTimestamp(context.Background())
	if err != nil {
		t.Fatalf("offset of max timestamp: %v", err)
	}
	if ok != wantOK || ok && got != want {
		t.Fatalf("offset of max timestamp: %d, %v; want %d, %v", got, ok, want, wantOK)
	}
	// And below a high watermark anywhere: the segment holding it answers
	// from its indexes and the batch headers after them.
	upTo := rapid.Int64Range(m.start, m.end()).Draw(t, "upTo")
	want, wantOK = 0, false
	for o := m.start; o < upTo; o++ {
		if !wantOK || m.recs[o].ts > m.recs[want].ts {
			want, wantOK = o, true
		}
	}
	got, ok, err = m.l.OffsetOfMaxTimestampBelow(context.Background(), upTo)
	if err != nil {
		t.Fatalf("offset of max timestamp below %d: %v", upTo, err)
	}
	if ok != wantOK || ok && got != want {
		t.Fatalf("offset of max timestamp below %d: %d, %v; want %d, %v (segments %v)", upTo, got, ok, want, wantOK, describeSegs(m.segs()))
	}
}
