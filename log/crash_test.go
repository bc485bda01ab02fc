package log

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/index"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// The crash tests check the log's durability contract: crash after every
// file-system operation of a run of appends, rolls, retention, delete-records,
// truncation and compaction, with each way the unsynced tail of a file can
// survive a crash, reopen, and check that
//
//	(a) every record whose append was acknowledged is there, byte for byte
//	    (unless retention, delete-records or compaction removed it by design);
//	(b) nothing corrupt is ever read;
//	(c) the indexes agree with the log;
//	(d) the log accepts new appends at the right offset, and keeps them
//	    across a clean close.
//
// The disk "dies" at operation k (vfs.FailFrom): that operation and every
// later one fail, the workload stops at its first error, and the crash clone
// of the in-memory FS is what a power cut at that moment would leave.
//
// The one-fault tests fail a single write or fsync (vfs.FailNth) instead:
// the log must fence itself, acknowledging nothing more, and the same
// checks hold after a crash.

var crashTails = []vfs.TailMode{vfs.TailDrop, vfs.TailTorn, vfs.TailZeros, vfs.TailGarbage}

const crashDir = "/data/topic-0"

type crashOp uint8

const (
	crashAppend crashOp = iota
	crashRetention
	crashDeleteRecords
	crashCompact
	crashRoll
	crashTruncate
	crashClose
)

func (o crashOp) String() string {
	return [...]string{"append", "retention", "delete-records", "compact", "roll", "truncate", "close"}[o]
}

// crashRec is one record a workload appends.
type crashRec struct {
	key, value []byte // a nil value is a tombstone
	ts         int64
	cut        bool // in a history: not a record, but a truncation past it
}

// is reports whether r is c.
func (c crashRec) is(r *record.Record) bool {
	return !c.cut && bytes.Equal(c.key, r.Key) && bytes.Equal(c.value, r.Value) && (c.value == nil) == (r.Value == nil) &&
		c.ts == r.Timestamp.UnixMilli()
}

type crashStep struct {
	op      crashOp
	advance time.Duration // the clock moves by this much before the step
	batch   []byte        // crashAppend: the batch as a producer encoded it
	recs    []crashRec    // crashAppend: its records
	epoch   int32         // crashAppend: its leader epoch
	back    int64         // crashTruncate: truncate to this many offsets before the end
}

// crashWorkload is a deterministic run of log operations.
type crashWorkload struct {
	cfg     Config
	compact bool
	steps   []crashStep
}

// newCrashWorkload builds the steps: 60 appends of 1-5 small keyed records
// a minute apart, with mixed codecs, over small segments (so that the log
// rolls every few appends) and small index intervals (so that the indexes
// have entries); retention every 8 appends (retention.ms is 25 minutes), an
// explicit roll, a truncation of the batch appended after it (whose offsets
// the next appends take again), one DeleteRecordsBefore, and, for the
// compacted workload, tombstones and three compactions; a clean close at
// the end.
func newCrashWorkload(t testing.TB, compact bool) *crashWorkload {
	w := &crashWorkload{compact: compact, cfg: Config{
		SegmentBytes:       600,
		IndexIntervalBytes: 100,
		RetentionTime:      25 * time.Minute,
		CleanupPolicy:      Delete,
	}}
	if compact {
		w.cfg.CleanupPolicy = Compact | Delete
		w.cfg.DeleteRetentionTime = 5 * time.Minute
	}
	rng := rand.New(rand.NewPCG(7, map[bool]uint64{false: 1, true: 2}[compact]))
	codecs := []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd}
	t0 := newClock().Now()
	for i := range 60 {
		st := crashStep{op: crashAppend, epoch: int32(i / 20)}
		if i > 0 {
			st.advance = time.Minute
		}
		ts := t0.Add(time.Duration(i) * time.Minute).UnixMilli()
		kvs := make([]kv, 1+rng.IntN(5))
		for j := range kvs {
			r := crashRec{
				key:   fmt.Appendf(nil, "key-%02d", rng.IntN(12)),
				value: fmt.Appendf(nil, "v%02d.%d:%s", i, j, strings.Repeat(string(rune('a'+i%26)), rng.IntN(40))),
				ts:    ts,
			}
			if compact && rng.IntN(8) == 0 {
				r.value = nil
			}
			st.recs = append(st.recs, r)
			kvs[j] = kv{key: r.key, value: r.value, ts: ts}
		}
		st.batch = batchOf(t, codecs[rng.IntN(len(codecs))], kvs...)
		w.steps = append(w.steps, st)
		switch {
		case i%8 == 7:
			w.steps = append(w.steps, crashStep{op: crashRetention})
		case i == 25:
			w.steps = append(w.steps, crashStep{op: crashRoll})
		case i == 27:
			// Truncate into batch 26, so that it goes: all that goes was
			// appended after the roll, so that no record compaction
			// removed ever depended on it.
			w.steps = append(w.steps, crashStep{op: crashTruncate, back: int64(len(st.recs)) + 1})
		case i == 33:
			w.steps = append(w.steps, crashStep{op: crashDeleteRecords})
		case compact && (i == 19 || i == 41 || i == 54):
			w.steps = append(w.steps, crashStep{op: crashCompact})
		}
	}
	w.steps = append(w.steps, crashStep{op: crashClose})
	return w
}

// crashTrace is what a run of the workload did.
type crashTrace struct {
	step     int                // the step that failed (-1: Open); len(steps) when none did
	acked    map[int64]crashRec // acknowledged records not truncated since, by offset
	ackedEnd int64              // one past the last acknowledged offset
	// After each step that completed: the log start and end offsets.
	startAfter, endAfter []int64
	// history holds for each offset the records whose appends were tried
	// there, acknowledged or not, and the truncations that cut it, in
	// order. A record read at an offset must be its history's last.
	history map[int64][]crashRec
}

func newCrashTrace() *crashTrace {
	return &crashTrace{step: -1, acked: map[int64]crashRec{}, history: map[int64][]crashRec{}}
}

// run runs the workload on l, stopping at the first error, which it
// returns.
func (w *crashWorkload) run(l *Log, clock *fakeClock, tr *crashTrace) error {
	ctx := context.Background()
	for i, st := range w.steps {
		tr.step = i
		clock.Advance(st.advance)
		var err error
		switch st.op {
		case crashAppend:
			first := l.LogEndOffset()
			for j, r := range st.recs {
				tr.history[first+int64(j)] = append(tr.history[first+int64(j)], r)
			}
			var res AppendResult
			res, err = l.Append(ctx, bytes.Clone(st.batch), AppendOptions{LeaderEpoch: st.epoch})
			if err == nil {
				if res.FirstOffset != first || res.LastOffset-res.FirstOffset+1 != int64(len(st.recs)) {
					return fmt.Errorf("append of %d records at %d acknowledged offsets [%d, %d]", len(st.recs), first, res.FirstOffset, res.LastOffset)
				}
				for j, r := range st.recs {
					tr.acked[first+int64(j)] = r
				}
				tr.ackedEnd = res.LastOffset + 1
			}
		case crashRetention:
			_, err = l.ApplyRetention(context.Background())
		case crashDeleteRecords:
			start, end := l.LogStartOffset(), l.LogEndOffset()
			_, err = l.DeleteRecordsBefore(context.Background(), start+(end-start)/3)
		case crashCompact:
			_, err = l.Compact(ctx)
		case crashRoll:
			err = l.Roll()
		case crashTruncate:
			var end int64
			was := l.LogEndOffset()
			end, err = l.TruncateTo(was - st.back)
			if err == nil {
				for o := end; o < was; o++ {
					delete(tr.acked, o)
					tr.history[o] = append(tr.history[o], crashRec{cut: true})
				}
				tr.ackedEnd = min(tr.ackedEnd, end)
			}
		case crashClose:
			err = l.Close()
		}
		if err != nil {
			return fmt.Errorf("step %d (%s): %w", i, st.op, err)
		}
		tr.startAfter = append(tr.startAfter, l.LogStartOffset())
		tr.endAfter = append(tr.endAfter, l.LogEndOffset())
	}
	tr.step = len(w.steps)
	return nil
}

// referenceOps runs the workload without faults, returning its
// file-system operations in order (the k-th is ops[k-1]).
func (w *crashWorkload) referenceOps(t *testing.T) (*crashTrace, []testkit.FSOp) {
	tr := newCrashTrace()
	var ops []testkit.FSOp
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		ops = append(ops, fsOp(tr.step, op, name))
		return nil
	}))
	clock := newClock()
	l, err := Open(crashDir, w.cfg, Options{FS: fsys, Clock: clock})
	require.NoError(t, err)
	require.NoError(t, w.run(l, clock, tr))
	return tr, ops
}

// crashPointsOf returns the k at which the crash matrix of w crashes,
// given its reference run's operations: with RUNNEL_CRASH_POINTS=all,
// every one; in -short mode, crashPoints(len(ops), short); by default,
// opPathPoints(ops, kind of step).
func crashPointsOf(w *crashWorkload, ops []testkit.FSOp, short int) []int {
	if testkit.CrashPointsAll() || testing.Short() {
		return crashPoints(len(ops), short)
	}
	return opPathPoints(ops, func(step int) string {
		if step < 0 {
			return "open"
		}
		return w.steps[step].op.String()
	})
}

// fsOp is the testkit.FSOp of an operation op on the file name, made by
// step.
func fsOp(step int, op vfs.Op, name string) testkit.FSOp {
	return testkit.FSOp{Step: step, Name: fmt.Sprint(op) + filepath.Ext(name)}
}

// opPathPoints is testkit.OpPathPoints(ops, kind) and the last four
// operations.
func opPathPoints(ops []testkit.FSOp, kind func(step int) string) []int {
	ks := testkit.OpPathPoints(ops, kind)
	for k := max(len(ops)-3, 1); k <= len(ops); k++ {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return slices.Compact(ks)
}

// recordOps wraps fsys so that each operation is appended to *ops, as
// made by step 0.
func recordOps(fsys vfs.FS, ops *[]testkit.FSOp) vfs.FS {
	return vfs.WithFaults(fsys, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		*ops = append(*ops, fsOp(0, op, name))
		return nil
	}))
}

// crashPoints returns the k at which to crash: all of 1..n, or in -short
// mode (unless RUNNEL_CRASH_POINTS=all) about short of them, evenly
// spread (no closer than every 7th), and the last few. The quick race run
// (-race -short) takes about a third of short: each crash replays a
// workload and reopens its clones, seconds under the race detector; the
// plain run takes them all.
func crashPoints(n, short int) []int {
	if testkit.RaceEnabled {
		short = max(short/3, 1)
	}
	stride := max(7, n/short)
	var ks []int
	for k := 1; k <= n; k++ {
		if !testing.Short() || testkit.CrashPointsAll() || k%stride == 1 || k > n-4 {
			ks = append(ks, k)
		}
	}
	return ks
}

// TestCrashDelete runs the crash matrix over the delete-only workload.
func TestCrashDelete(t *testing.T) { testCrash(t, false) }

// TestCrashCompact runs it over the compacted workload.
func TestCrashCompact(t *testing.T) { testCrash(t, true) }

func testCrash(t *testing.T, compact bool) {
	t.Parallel()
	w := newCrashWorkload(t, compact)
	ref, ops := w.referenceOps(t)
	n := len(ops)
	require.Greater(t, n, 100)
	ks := crashPointsOf(w, ops, 60)
	t.Logf("%d steps, %d file-system operations, %d records, %d crash points", len(w.steps), n, len(ref.history), len(ks))
	sample := rand.New(rand.NewPCG(testkit.SampleSeed(t), 0))
	for _, k := range ks {
		w.crashAt(t, ref, k, func(mem *vfs.MemFS) []namedClone {
			var clones []namedClone
			for _, mode := range crashTailsAt(sample) {
				clones = append(clones, namedClone{fmt.Sprintf("k=%04d/%s", k, mode),
					mem.CrashClone(vfs.CrashOptions{Tail: mode, Rand: rand.New(rand.NewPCG(uint64(k), uint64(mode)))})})
			}
			return clones
		})
	}
}

// crashTailsAt returns the tail modes a crash matrix takes at a crash
// point: two of crashTails, drawn with r (from the run's sample seed,
// testkit.SampleSeed: RUNNEL_SAMPLE_SEED replays a run's, and runs after
// runs take each mode at each point), in crashTails' order, also in
// -short mode (every one there until 2026-12-07); with
// RUNNEL_CRASH_POINTS=all, every one.
func crashTailsAt(r *rand.Rand) []vfs.TailMode {
	if testkit.CrashPointsAll() {
		return crashTails
	}
	i, j := r.IntN(len(crashTails)), r.IntN(len(crashTails)-1)
	if j >= i {
		j++
	}
	return []vfs.TailMode{crashTails[min(i, j)], crashTails[max(i, j)]}
}

// namedClone is a crash clone and the name of its subtest.
type namedClone struct {
	name string
	fs   *vfs.MemFS
}

// crashAt runs the workload on a fresh MemFS whose k-th operation and all
// after it fail (the power is cut there), takes the crash clones clone
// makes of it, and checks the log each of them leaves against ref.
func (w *crashWorkload) crashAt(t *testing.T, ref *crashTrace, k int, clone func(*vfs.MemFS) []namedClone) {
	mem := vfs.NewMem()
	fsys := vfs.WithFaults(mem, vfs.FailFrom(k))
	clock := newClock()
	tr := newCrashTrace()
	l, err := Open(crashDir, w.cfg, Options{FS: fsys, Clock: clock})
	if err == nil {
		err = w.run(l, clock, tr)
	}
	if err != nil && !errors.Is(err, vfs.ErrInjected) {
		t.Errorf("k=%d: the workload failed with an error not injected: %v", k, err)
		return
	}
	clones := clone(mem)
	if l != nil {
		l.Close() // on a dead disk: it changes nothing durable
	}
	for _, c := range clones {
		t.Run(c.name, func(t *testing.T) { checkCrashed(t, w, ref, tr, c.fs) })
	}
}

// checkCrashed reopens the log on a crash clone and checks it against what
// the interrupted run acknowledged and what the reference run wrote.
func checkCrashed(t *testing.T, w *crashWorkload, ref, tr *crashTrace, fsys *vfs.MemFS) {
	clock := newClock()
	clock.Advance(2 * time.Hour)
	l, err := Open(crashDir, w.cfg, Options{FS: fsys, Clock: clock})
	require.NoError(t, err, "reopening after a crash at step %d (%s)", tr.step, stepName(w, tr.step))
	defer l.Close()

	start, end := l.LogStartOffset(), l.LogEndOffset()
	require.Equal(t, end, l.DurableOffset())
	// The log start offset moved no further than the interrupted step would
	// have moved it, and no less than the last completed step did.
	ackedStart, maxStart, minEnd, maxEnd := int64(0), int64(0), tr.ackedEnd, int64(0)
	if tr.step > 0 {
		ackedStart = tr.startAfter[tr.step-1]
	}
	if tr.step >= 0 {
		s := min(tr.step, len(ref.startAfter)-1)
		maxStart, maxEnd = ref.startAfter[s], ref.endAfter[s]
	}
	acked := tr.acked
	if stepName(w, tr.step) == crashTruncate.String() {
		// An interrupted truncation may have cut what it was to cut, or
		// not.
		cut := ref.endAfter[tr.step]
		minEnd, maxEnd = min(minEnd, cut), ref.endAfter[tr.step-1]
		acked = maps.Clone(acked)
		maps.DeleteFunc(acked, func(o int64, _ crashRec) bool { return o >= cut })
	}
	require.GreaterOrEqual(t, start, ackedStart, "log start offset went back")
	require.LessOrEqual(t, start, maxStart, "log start offset moved too far")
	require.GreaterOrEqual(t, end, minEnd, "acknowledged records lost at the end")
	require.LessOrEqual(t, end, maxEnd, "records appear that were never appended")

	// (b) Reading everything returns valid batches only.
	batches, recs := readBatches(t, l, start)
	got := map[int64]*record.Record{}
	for _, r := range recs {
		h := tr.history[r.Offset]
		must(t, len(h) > 0 && h[len(h)-1].is(r), "offset %d holds %q=%q at %d, not the last written there (history %v)",
			r.Offset, r.Key, r.Value, r.Timestamp.UnixMilli(), h)
		got[r.Offset] = r
	}

	// (a) Acknowledged records are there.
	if !w.compact {
		// Nothing but the log start offset removes records: every offset in
		// [start, end) is there, acknowledged ones as acknowledged.
		require.Len(t, recs, int(end-start))
		for o := start; o < end; o++ {
			r := got[o]
			must(t, r != nil, "offset %d missing", o)
			if a, ok := acked[o]; ok {
				must(t, a.is(r), "offset %d holds %q, acknowledged %q", o, r.Value, a.value)
			}
		}
	} else {
		// For each key, its latest acknowledged record is there, or a later
		// record of the key; a tombstone may be gone once compaction dropped
		// it, but then so are the key's older records.
		latest := map[string]int64{}
		for o, a := range acked {
			k := string(a.key)
			if cur, ok := latest[k]; (!ok || o > cur) && o >= start {
				latest[k] = o
			}
		}
		for k, o := range latest {
			var at []int64
			for _, r := range recs {
				if string(r.Key) == k {
					at = append(at, r.Offset)
				}
			}
			tomb := acked[o].value == nil
			switch {
			case len(at) > 0 && at[len(at)-1] >= o:
				if r := got[o]; r != nil {
					must(t, acked[o].is(r), "offset %d holds %q, acknowledged %q", o, r.Value, acked[o].value)
				}
			case tomb:
				require.Empty(t, at, "key %s: tombstone at %d gone but older records remain", k, o)
			default:
				require.Failf(t, "acknowledged record lost", "key %s: latest acknowledged record at offset %d missing (key found at %v)", k, o, at)
			}
		}
	}

	// The leader epochs are in order, and within the log.
	epochs := l.LeaderEpochs()
	for i, e := range epochs {
		must(t, e.StartOffset <= end && (i == 0 || e.Epoch > epochs[i-1].Epoch && e.StartOffset >= epochs[i-1].StartOffset),
			"leader epochs %v (log end offset %d)", epochs, end)
	}

	// (c) The indexes agree with the log.
	segs := scanSegmentFiles(t, fsys, crashDir)
	checkIndexes(t, l, segs, batches, recs, start, end)

	// (d) The log takes a new append at its end and keeps it.
	after := batchOf(t, compression.None, kv{key: []byte("after"), value: []byte("after the crash"), ts: clock.Now().UnixMilli()})
	res, err := l.Append(context.Background(), after, AppendOptions{LeaderEpoch: 9})
	require.NoError(t, err)
	require.Equal(t, end, res.FirstOffset)
	_, recs2 := readBatches(t, l, end)
	require.Len(t, recs2, 1)
	require.Equal(t, "after the crash", string(recs2[0].Value))
	require.NoError(t, l.Close())
	l, err = Open(crashDir, w.cfg, Options{FS: fsys, Clock: clock})
	require.NoError(t, err)
	require.True(t, l.Recovery().Clean)
	require.Equal(t, start, l.LogStartOffset())
	require.Equal(t, end+1, l.LogEndOffset())
	_, recs3 := readBatches(t, l, start)
	require.Equal(t, len(recs)+1, len(recs3))
	for i, r := range recs {
		must(t, r.Offset == recs3[i].Offset && bytes.Equal(r.Value, recs3[i].Value), "after a clean reopen, record %d is %d=%q, was %d=%q",
			i, recs3[i].Offset, recs3[i].Value, r.Offset, r.Value)
	}
	require.Equal(t, end, recs3[len(recs)].Offset)
}

func stepName(w *crashWorkload, i int) string {
	if i < 0 {
		return "open"
	}
	if i >= len(w.steps) {
		return "done"
	}
	return w.steps[i].op.String()
}

// readBatches reads the log from offset from to its end, checking every
// batch and decoding every record; it returns the batches and the records
// at or after from.
func readBatches(t testing.TB, l *Log, from int64) ([]record.Batch, []*record.Record) {
	t.Helper()
	var batches []record.Batch
	var recs []*record.Record
	for off := from; off < l.LogEndOffset(); {
		data, err := l.Read(off, 1<<10, math.MaxInt64)
		mustNoError(t, err, "read at %d", off)
		must(t, len(data) > 0, "nothing read at %d, before the log end offset %d", off, l.LogEndOffset())
		for p := 0; p < len(data); {
			b, err := record.Parse(data[p:], 0)
			mustNoError(t, err, "read at %d", off)
			mustNoError(t, b.Validate(0), "read at %d", off)
			must(t, b.LastOffset() >= off, "batch [%d, %d] read at %d", b.BaseOffset(), b.LastOffset(), off)
			must(t, len(batches) == 0 || b.BaseOffset() > batches[len(batches)-1].LastOffset(), "batches out of order at %d", b.BaseOffset())
			batches = append(batches, b)
			n := 0
			for r, err := range b.Records() {
				mustNoError(t, err, "decoding batch at offset %d", b.BaseOffset())
				must(t, r.Offset >= b.BaseOffset() && r.Offset <= b.LastOffset(), "record %d in batch [%d, %d]", r.Offset, b.BaseOffset(), b.LastOffset())
				if r.Offset >= from {
					recs = append(recs, r)
				}
				n++
			}
			must(t, int(b.NumRecords()) == n, "batch at %d: %d records, %d decoded", b.BaseOffset(), b.NumRecords(), n)
			off = b.NextOffset()
			p += len(b)
		}
	}
	return batches, recs
}

// segFiles is a segment as its files hold it.
type segFiles struct {
	base    int64
	batches []record.Batch
	pos     []int64 // of each batch
	offsets []index.OffsetEntry
	times   []index.TimeEntry
}

// scanSegmentFiles reads the log directory straight from the file system:
// each .log must be whole valid batches with increasing offsets, each index
// must decode.
func scanSegmentFiles(t testing.TB, fsys vfs.FS, dir string) []segFiles {
	t.Helper()
	names, err := fsys.List(dir)
	require.NoError(t, err)
	read := func(name string) []byte {
		f, err := fsys.Open(filepath.Join(dir, name))
		require.NoError(t, err)
		defer f.Close()
		n, err := f.Size()
		require.NoError(t, err)
		b := make([]byte, n)
		_, err = f.ReadAt(b, 0)
		if n > 0 {
			require.NoError(t, err)
		}
		return b
	}
	var segs []segFiles
	for _, name := range names {
		require.False(t, strings.HasSuffix(name, tmpSuffix) || strings.HasSuffix(name, cleanedSuffix) ||
			strings.HasSuffix(name, swapSuffix) || name == cleanShutdownFile, "%s left in the log directory", name)
		base, suffix, ok := segment.ParseFileName(name)
		if !ok || suffix != segment.LogSuffix {
			continue
		}
		s := segFiles{base: base}
		data := read(name)
		for p := 0; p < len(data); {
			b, err := record.Parse(data[p:], int64(p))
			mustNoError(t, err, "%s", name)
			mustNoError(t, b.Validate(int64(p)), "%s", name)
			must(t, b.BaseOffset() >= base, "%s: batch at %d below the base offset", name, b.BaseOffset())
			s.batches = append(s.batches, b)
			s.pos = append(s.pos, int64(p))
			p += len(b)
		}
		s.offsets, err = index.DecodeOffsetEntries(read(segment.FileName(base, segment.IndexSuffix)), base)
		require.NoError(t, err, "%d.index", base)
		s.times, err = index.DecodeTimeEntries(read(segment.FileName(base, segment.TimeIndexSuffix)), base)
		require.NoError(t, err, "%d.timeindex", base)
		segs = append(segs, s)
	}
	require.NotEmpty(t, segs)
	return segs
}

// checkIndexes checks the index files against the .log files, reads at
// every offset against a scan of the files, and OffsetForTime against a
// scan of the records.
func checkIndexes(t testing.TB, l *Log, segs []segFiles, batches []record.Batch, recs []*record.Record, start, end int64) {
	t.Helper()
	// The files: offsets increase across segments, and the last segment
	// ends at the log end offset.
	var all []record.Batch
	next := int64(-1)
	for i, s := range segs {
		if i > 0 {
			require.Greater(t, s.base, segs[i-1].base)
		}
		for _, b := range s.batches {
			must(t, b.BaseOffset() > next, "segment %d: offsets go backwards at %d", s.base, b.BaseOffset())
			next = b.LastOffset()
		}
		all = append(all, s.batches...)
		// Each offset index entry points at the start of a batch that holds
		// its offset; each time index entry names an offset of a batch
		// where the segment's running max timestamp first reached it.
		for _, e := range s.offsets {
			j := slices.Index(s.pos, e.Position)
			must(t, j >= 0, "segment %d: index entry %+v not at a batch", s.base, e)
			b := s.batches[j]
			must(t, b.BaseOffset() <= e.Offset && e.Offset <= b.LastOffset(),
				"segment %d: index entry %+v points at batch [%d, %d]", s.base, e, b.BaseOffset(), b.LastOffset())
		}
		for _, e := range s.times {
			maxTs, found := int64(-1), false
			for _, b := range s.batches {
				before := maxTs
				maxTs = max(maxTs, b.MaxTimestamp())
				if b.BaseOffset() <= e.Offset && e.Offset <= b.LastOffset() {
					must(t, before < e.Timestamp && e.Timestamp == maxTs,
						"segment %d: time index entry %+v, max timestamp %d before its batch and %d after", s.base, e, before, maxTs)
					found = true
					break
				}
			}
			must(t, found, "segment %d: time index entry %+v points at no batch", s.base, e)
		}
	}
	last := segs[len(segs)-1]
	if n := len(last.batches); n > 0 {
		require.Equal(t, end, last.batches[n-1].NextOffset())
	} else {
		require.Equal(t, end, last.base)
	}

	// Reading through the log gives the batches of the files from start.
	var live []record.Batch
	for _, b := range all {
		if b.LastOffset() >= start {
			live = append(live, b)
		}
	}
	require.Equal(t, len(live), len(batches))
	for i := range live {
		must(t, bytes.Equal(live[i], batches[i]), "batch %d differs from the file", i)
	}

	// Reading at each offset starts at the batch holding it, or the next
	// one when compaction left a gap.
	j := 0
	for o := start; o < end; o++ {
		for live[j].LastOffset() < o {
			j++
		}
		data, err := l.Read(o, 1, math.MaxInt64)
		mustNoError(t, err, "read at %d", o)
		b, err := record.Parse(data, 0)
		mustNoError(t, err, "read at %d", o)
		must(t, live[j].BaseOffset() == b.BaseOffset() && live[j].LastOffset() == b.LastOffset(),
			"read at %d gives batch [%d, %d], want [%d, %d]", o, b.BaseOffset(), b.LastOffset(), live[j].BaseOffset(), live[j].LastOffset())
	}
	data, err := l.Read(end, 1, math.MaxInt64)
	require.NoError(t, err)
	require.Empty(t, data)
	_, err = l.Read(end+1, 1, math.MaxInt64)
	require.ErrorIs(t, err, ErrOffsetOutOfRange)
	if start > 0 {
		_, err = l.Read(start-1, 1, math.MaxInt64)
		require.ErrorIs(t, err, ErrOffsetOutOfRange)
	}

	// OffsetForTime: the workloads' timestamps never decrease, so the
	// answer is the first record from start with a timestamp at least ts;
	// an answer before it is right too if no record lies between. Ask for
	// each batch's timestamp, and one past it.
	tss := []int64{0, math.MaxInt64}
	for _, b := range batches {
		if b.NumRecords() > 0 && (len(tss) == 2 || b.MaxTimestamp() != tss[len(tss)-1]-1) {
			tss = append(tss, b.MaxTimestamp(), b.MaxTimestamp()+1)
		}
	}
	for _, ts := range tss {
		want, wantOK := int64(0), false
		for _, r := range recs {
			if r.Timestamp.UnixMilli() >= ts {
				want, wantOK = r.Offset, true
				break
			}
		}
		off, ok, err := l.OffsetForTime(ts)
		mustNoError(t, err, "OffsetForTime(%d)", ts)
		if !wantOK {
			must(t, !ok, "OffsetForTime(%d) = %d, but no record is that recent", ts, off)
			continue
		}
		must(t, ok, "OffsetForTime(%d) found nothing, want %d", ts, want)
		if off != want {
			must(t, off >= start && off < want, "OffsetForTime(%d) = %d, want %d", ts, off, want)
			for _, r := range recs {
				must(t, r.Offset < off || r.Offset >= want, "OffsetForTime(%d) = %d, but record %d lies before %d", ts, off, r.Offset, want)
			}
		}
	}
}

// must fails the test unless ok. Unlike require's functions it costs
// nothing when ok (no t.Helper call), which matters in the inner loops of
// the crash checks, run tens of thousands of times.
func must(t testing.TB, ok bool, format string, args ...any) {
	if !ok {
		t.Helper()
		t.Fatalf(format, args...)
	}
}

func mustNoError(t testing.TB, err error, format string, args ...any) {
	if err != nil {
		t.Helper()
		t.Fatalf("%s: %v", fmt.Sprintf(format, args...), err)
	}
}

// TestCrashSyncFailureFences fails one fsync at each point of the workload
// (after Open): the log must fence itself at once — no append is
// acknowledged after the failure, even though later syncs would work — and
// after a crash everything acknowledged is there (the crash's tail modes
// as the crash matrices take them: crashTailsAt).
func TestCrashSyncFailureFences(t *testing.T) {
	testCrashOneFault(t, vfs.OpSync)
}

// TestCrashWriteFailureFences does the same with one failed write: the
// append (or roll, or compaction) that hit it fails, every later append
// fails with ErrLogFenced, and acknowledged records survive a crash.
func TestCrashWriteFailureFences(t *testing.T) {
	testCrashOneFault(t, vfs.OpWrite)
}

func testCrashOneFault(t *testing.T, op vfs.Op) {
	t.Parallel()
	seed := testkit.SampleSeed(t)
	for _, compact := range []bool{false, true} {
		w := newCrashWorkload(t, compact)
		// Count the operations of the kind after Open.
		var armed atomic.Bool
		count := vfs.Count(op)
		fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(o vfs.Op, name string) error {
			if armed.Load() {
				return count.MaybeError(o, name)
			}
			return nil
		}))
		clock := newClock()
		l, err := Open(crashDir, w.cfg, Options{FS: fsys, Clock: clock})
		require.NoError(t, err)
		armed.Store(true)
		ref := newCrashTrace()
		require.NoError(t, w.run(l, clock, ref))
		n := count.N()
		require.Positive(t, n)

		sample := rand.New(rand.NewPCG(seed, uint64(op)))
		for _, k := range crashPoints(n, 15) {
			t.Run(fmt.Sprintf("compact=%v/%s=%d", compact, op, k), func(t *testing.T) {
				mem := vfs.NewMem()
				armed.Store(false)
				fail := vfs.FailNth(k, op)
				var failed string // the file whose operation failed
				fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(o vfs.Op, name string) error {
					if !armed.Load() {
						return nil
					}
					err := fail.MaybeError(o, name)
					if err != nil {
						failed = name
					}
					return err
				}))
				clock := newClock()
				l, err := Open(crashDir, w.cfg, Options{FS: fsys, Clock: clock})
				require.NoError(t, err)
				defer l.Close()
				armed.Store(true)
				tr := newCrashTrace()
				err = w.run(l, clock, tr)
				armed.Store(false)
				require.NotEmpty(t, failed, "the fault was not reached")
				// A log start checkpoint whose temporary file could not be
				// written changed nothing: the segments below the new start
				// go first, then it is written again (deleteSegmentsLocked,
				// as on a full disk), or the call fails, the log not fenced.
				startNotWritten := filepath.Base(failed) == logStartFile+tmpSuffix && !errors.Is(err, ErrLogFenced)
				// Nor does a cleaner checkpoint whose temporary file could
				// not be written (Compact fails, the log not fenced: the
				// checkpoint on disk stays lower, which only makes the next
				// pass after a reopen map more).
				cleanerNotWritten := filepath.Base(failed) == cleanerFile+tmpSuffix && !errors.Is(err, ErrLogFenced)
				// Nor does a leader epoch checkpoint not written as the
				// log start moved (setStartLocked): the start has moved,
				// the call succeeds, and the epochs below it stay in the
				// checkpoint until its next write (an Open drops them).
				// Written as an append's epoch began, or a truncation cut
				// the epochs, it fences the log (the default case below).
				epochNotWritten := filepath.Base(failed) == leaderEpochFile+tmpSuffix && !errors.Is(err, ErrLogFenced)
				if !startNotWritten && !epochNotWritten {
					require.Error(t, err, "the failed %s of %s went unnoticed", op, failed)
					require.ErrorIs(t, err, vfs.ErrInjected)
				}
				ctx := context.Background()
				_, aerr := l.Append(ctx, bytes.Clone(w.steps[0].batch), AppendOptions{})
				switch {
				case w.steps[min(tr.step, len(w.steps)-1)].op == crashClose:
					require.ErrorIs(t, aerr, ErrClosed)
				case startNotWritten, cleanerNotWritten, epochNotWritten:
					require.NoError(t, aerr, "a checkpoint not written (%s) fenced the log", failed)
					// The extra record: cut it again, as below.
					_, err = l.TruncateTo(tr.ackedEnd)
					require.NoError(t, err)
				case strings.HasSuffix(failed, cleanedSuffix):
					// The cleaner failed on its own temporary files, which it
					// then drops: the log's own files are untouched, so it
					// need not fence itself, and compaction may be retried.
					if errors.Is(aerr, ErrLogFenced) {
						break
					}
					require.NoError(t, aerr)
					_, err := l.Compact(ctx)
					require.NoError(t, err)
					// The extra record is acknowledged but was never
					// written by the reference run: cut it again.
					_, err = l.TruncateTo(tr.ackedEnd)
					require.NoError(t, err)
				default:
					// The log is fenced: nothing is acknowledged any more,
					// though the disk works again.
					require.ErrorIs(t, aerr, ErrLogFenced, "failed %s of %s did not fence the log", op, failed)
					require.ErrorIs(t, l.Flush(ctx), ErrLogFenced)
					_, err = l.ApplyRetention(context.Background())
					require.ErrorIs(t, err, ErrLogFenced)
				}
				for _, mode := range crashTailsAt(sample) {
					clone := mem.CrashClone(vfs.CrashOptions{Tail: mode, Rand: rand.New(rand.NewPCG(uint64(k), uint64(mode)))})
					t.Run(mode.String(), func(t *testing.T) { checkCrashed(t, w, ref, tr, clone) })
				}
			})
		}
	}
}

// TestEpochCheckpointNotWrittenFencesNothing: moving the log start offset
// (by DeleteRecordsBefore or retention) rewrites the leader-epoch
// checkpoint once the start's own is written. A failed write or fsync of
// its temporary file (removed then: the checkpoint on disk as it was)
// fails nothing and fences nothing: the start has moved, the epochs below
// it are dropped in memory, and the reopened log drops them from the
// checkpoint too. (Until 2026-12-06 it fenced the log: on a full disk,
// DeleteRecords and retention, which free room, fenced the partition
// whenever ext4 had not yet given back the room of the segments they
// removed; TestDiskFullFreeSpace/ext4 failed so once.)
func TestEpochCheckpointNotWrittenFencesNothing(t *testing.T) {
	for _, op := range []vfs.Op{vfs.OpWrite, vfs.OpSync} {
		for _, how := range []string{"delete-records", "retention"} {
			t.Run(fmt.Sprintf("%s/%s", op, how), func(t *testing.T) {
				var armed atomic.Bool
				var failed atomic.Int32
				e := newEnv(t)
				e.fs = vfs.WithFaults(e.fs, vfs.InjectorFunc(func(o vfs.Op, name string) error {
					if o == op && armed.Load() && filepath.Base(name) == leaderEpochFile+tmpSuffix {
						armed.Store(false)
						failed.Add(1)
						return vfs.ErrInjected
					}
					return nil
				}))
				cfg := Config{SegmentBytes: 400, RetentionTime: time.Hour}
				l := e.open(cfg)
				ctx := context.Background()
				for i := range 30 {
					_, err := l.Append(ctx, valueBatch(t, e.clock.Now().UnixMilli(), fmt.Sprint(i)), AppendOptions{LeaderEpoch: int32(i / 10)})
					require.NoError(t, err)
				}
				armed.Store(true)
				var err error
				if how == "delete-records" {
					_, err = l.DeleteRecordsBefore(context.Background(), 15)
				} else {
					e.clock.Advance(2 * time.Hour)
					_, err = l.ApplyRetention(context.Background())
				}
				require.NoError(t, err)
				require.EqualValues(t, 1, failed.Load(), "the epochs' checkpoint was not tried")
				start := l.LogStartOffset()
				require.Positive(t, start)
				epochs := l.LeaderEpochs()
				require.Equal(t, start, epochs[0].StartOffset, "epochs %v", epochs)
				_, err = l.Append(ctx, valueBatch(t, e.clock.Now().UnixMilli(), "after"), AppendOptions{LeaderEpoch: 3})
				require.NoError(t, err)
				epochs = l.LeaderEpochs()
				require.NoError(t, l.Close())

				l = e.open(cfg)
				defer l.Close()
				require.Equal(t, start, l.LogStartOffset())
				require.Equal(t, epochs, l.LeaderEpochs())
			})
		}
	}
}

// TestOpenGarbageIndexEntry: a crash can leave garbage where an unsynced
// offset index entry was being written. An entry whose position is
// negative must send the segment to recovery like any other bad entry, not
// fail Open.
func TestOpenGarbageIndexEntry(t *testing.T) {
	mem := vfs.NewMem()
	e := newEnv(t)
	e.fs = mem
	cfg := Config{IndexIntervalBytes: 1}
	l := e.open(cfg)
	for i := range 5 {
		appendOK(t, l, valueBatch(t, 1, fmt.Sprint(i)))
	}
	// The crash: the records were synced, the index entries were not; a
	// garbage entry (relative offset 1, position -5) stands in their place.
	fsys := mem.CrashClone(vfs.CrashOptions{})
	l.Close()
	f, err := fsys.Open(filepath.Join(e.dir, segment.FileName(0, segment.IndexSuffix)))
	require.NoError(t, err)
	_, err = f.Write([]byte{0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfb})
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())

	e.fs = fsys
	l = e.open(cfg)
	defer l.Close()
	require.EqualValues(t, 5, l.LogEndOffset())
	recs := readAll(t, l, 0)
	require.Len(t, recs, 5)
	require.Equal(t, "4", string(recs[4].Value))
}
