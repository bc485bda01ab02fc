package log

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"go.uber.org/goleak"
)

// TestConcurrentStress is a seeded, randomized concurrency stress test of
// one log as a broker drives it: appenders (Append, and AppendAsync with
// the Durability waited for at once, later by another goroutine, or
// never), a roller, a truncator, DeleteRecordsBefore, retention under a
// fake clock, compaction, Maintain and Flush all run at once with readers
// (Read with upTo the log end, the durable offset or everything,
// OffsetForTime, OffsetOfMaxTimestamp, the offsets and segment counts).
// Truncations exclude appends in flight (a test-side RWMutex), so that the
// model knows which record every offset held when; everything else races.
//
// Readers check every record they read: its content is the one appended
// with its id, its offset below the upTo they passed (the durable offset
// under SyncAlways), a Read's first batch holds the offset asked for and,
// on logs that are not compacted, its records follow one another; at the
// end every (offset, record) a reader saw must have been appended at that
// offset. Errors must be the documented ones for what ran meanwhile.
//
// Each seed ends one of three ways: the workers stop, the MemFS is
// crash-cloned and reopened (every append whose Wait returned nil and
// that no truncation cut since must be there, and every offset below the
// durable offset as it was), and the log is compared with the model, then
// closed and reopened and compared again; or Close races the workers,
// then the reopened log is compared; or Discard races them, then a crash
// clone must hold the appends acknowledged.
//
// By default a few seeds run (fewer under -short); a long run:
//
//	RUNNEL_STRESS=200 go test -race -run TestConcurrentStress -timeout 1h ./log
//
// (RUNNEL_STRESS_BASE sets the first seed; RUNNEL_STRESS_SEED replays one,
// of RUNNEL_STRESS_OPS operations, 4000 by default: a failure prints both.)
func TestConcurrentStress(t *testing.T) {
	stressSeeds(t, false, "RUNNEL_STRESS", stressScale{seeds: 6, ops: 1500, shortSeeds: 3, shortOps: 300, randomBase: true})
}

// TestConcurrentStressOS is TestConcurrentStress on the OS's file system
// (a t.TempDir), where reads are preads into fresh memory checked by their
// CRCs, a scan reads the headers a block at a time, and sealed indexes are
// mapped: the same workers and checks, but the crash clones of the MemFS
// (the Discard ending checks nothing more than the readers did). Its seeds
// are TestConcurrentStress's; RUNNEL_STRESS_SEED replays one, and
// RUNNEL_STRESS_OS=N runs N seeds from RUNNEL_STRESS_BASE (1 by default):
//
//	RUNNEL_STRESS_OS=100 go test -race -run TestConcurrentStressOS -timeout 1h ./log
func TestConcurrentStressOS(t *testing.T) {
	stressSeeds(t, true, "RUNNEL_STRESS_OS", stressScale{seeds: 3, ops: 800, shortSeeds: 2, shortOps: 200})
}

// stressScale is how many seeds of how many operations a stress test
// runs by default and under -short; with its env var set to N it runs N
// seeds of 4000 operations, from a random first seed if randomBase.
type stressScale struct {
	seeds, ops, shortSeeds, shortOps int
	randomBase                       bool
}

// stressSeeds runs runStress (on the OS's file system if osFS) over the
// seeds sc and env say; RUNNEL_STRESS_SEED replays one seed (of
// RUNNEL_STRESS_OPS operations, 4000 by default) and
// RUNNEL_STRESS_BASE sets the first.
func stressSeeds(t *testing.T, osFS bool, env string, sc stressScale) {
	defer goleak.VerifyNone(t)
	if v := os.Getenv("RUNNEL_STRESS_SEED"); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("RUNNEL_STRESS_SEED=%q: %v", v, err)
		}
		// The number of operations shapes the run (the ending races
		// the workers once a quarter of them are left): a replay takes
		// the failed run's, which its replay line gives.
		ops := 4000
		if v := os.Getenv("RUNNEL_STRESS_OPS"); v != "" {
			if ops, err = strconv.Atoi(v); err != nil || ops <= 0 {
				t.Fatalf("RUNNEL_STRESS_OPS=%q: want a number of operations", v)
			}
		}
		runStress(t, seed, ops, osFS)
		return
	}
	seeds, ops := sc.seeds, sc.ops
	if testing.Short() {
		seeds, ops = sc.shortSeeds, sc.shortOps
	}
	base := uint64(1)
	if v := os.Getenv(env); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("%s=%q: %v", env, v, err)
		}
		seeds, ops = n, 4000
		if sc.randomBase {
			base = uint64(time.Now().UnixNano() % 1_000_000)
		}
	}
	if v := os.Getenv("RUNNEL_STRESS_BASE"); v != "" {
		b, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("RUNNEL_STRESS_BASE=%q: %v", v, err)
		}
		base = b
	}
	for seed := base; seed < base+uint64(seeds); seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runStress(t, seed, ops, osFS) })
	}
}

type stressRec struct {
	id, key string
	ts      int64
}

type stressAck struct {
	first, end int64
	gen        int // truncations before the append
}

type stress struct {
	t     *testing.T
	seed  uint64
	cfg   Config
	clock *fakeClock
	mem   *vfs.MemFS // nil on the OS's file system
	fs    vfs.FS
	dir   string
	l     *Log

	gate sync.RWMutex // appends in flight (read) against truncations (write)

	mu       sync.Mutex
	recs     map[int64]stressRec       // the log as the model knows it
	end      int64                     // the model's log end offset
	hist     map[int64]map[string]bool // every id ever appended at an offset
	byID     map[string]stressRec      // every record appended, by id
	truncs   []int64                   // the new ends of the truncations, in order
	acks     []stressAck               // appends whose Wait returned nil
	seen     map[int64]map[string]bool // what readers read
	failures []string                  // what went wrong, reported at the end
	closing  atomic.Bool               // Close or Discard was called
}

func (s *stress) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failures) < 20 {
		s.failures = append(s.failures, fmt.Sprintf(format, args...))
	}
}

// expected reports whether err is nil or ErrClosed once closing began.
func (s *stress) expected(err error, also ...error) bool {
	if err == nil || s.closing.Load() && errors.Is(err, ErrClosed) {
		return true
	}
	for _, e := range also {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func runStress(t *testing.T, seed uint64, ops int, onDisk bool) {
	r := rand.New(rand.NewPCG(seed, 0x737472657373))
	s := &stress{t: t, seed: seed, clock: newClock(), dir: "/d/t-0",
		recs: map[int64]stressRec{}, hist: map[int64]map[string]bool{}, byID: map[string]stressRec{}, seen: map[int64]map[string]bool{}}
	if onDisk {
		s.fs, s.dir = vfs.OS, filepath.Join(t.TempDir(), "t-0")
	} else {
		s.mem = vfs.NewMem()
		s.fs = s.mem
	}
	s.cfg = Config{
		Sync:                   []SyncPolicy{SyncAlways, SyncPeriodic, SyncNever}[seed%3],
		CleanupPolicy:          []CleanupPolicy{Delete, Compact, Compact | Delete}[seed/3%3],
		SegmentBytes:           int64(300 + r.IntN(900)),
		IndexIntervalBytes:     1 + r.IntN(256),
		RetentionTime:          time.Duration(20+r.IntN(40)) * time.Minute,
		DeleteRetentionTime:    time.Duration(1+r.IntN(10)) * time.Minute,
		MinCleanableDirtyRatio: 0.3,
	}
	if s.cfg.Sync == SyncPeriodic {
		s.cfg.FlushMessages = int64(1 + r.IntN(8))
	}
	ending := r.IntN(3) // 0 quiesce, 1 Close races, 2 Discard races
	opts := Options{FS: s.fs, Clock: s.clock, ProducerExpiration: -1, CleanerMapBytes: []int64{0, 64, 256}[r.IntN(3)]}
	l, err := Open(s.dir, s.cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	s.l = l
	defer func() {
		if t.Failed() {
			replay := fmt.Sprintf("RUNNEL_STRESS_SEED=%d RUNNEL_STRESS_OPS=%d go test -race -run 'TestConcurrentStress$' -v ./log", seed, ops)
			if onDisk {
				replay = fmt.Sprintf("RUNNEL_STRESS_SEED=%d RUNNEL_STRESS_OPS=%d go test -race -run TestConcurrentStressOS -v ./log", seed, ops)
			}
			t.Logf("seed %d (sync %v, cleanup %v, ending %d): replay: %s", seed, s.cfg.Sync, s.cfg.CleanupPolicy, ending, replay)
		}
	}()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var left atomic.Int64
	left.Store(int64(ops))
	var wg, waiters sync.WaitGroup
	worker := func(i int, f func(r *rand.Rand)) {
		wg.Add(1)
		wr := rand.New(rand.NewPCG(seed, uint64(i)))
		go func() {
			defer wg.Done()
			for left.Add(-1) > 0 && ctx.Err() == nil {
				f(wr)
				runtime.Gosched()
			}
		}()
	}
	for i := range 3 {
		worker(i, func(r *rand.Rand) { s.appendOne(ctx, r, i, &waiters) })
	}
	worker(10, func(r *rand.Rand) {
		if r.IntN(4) == 0 {
			s.check("roll", l.Roll())
		}
	})
	worker(11, func(r *rand.Rand) {
		if r.IntN(6) == 0 {
			s.truncate(r)
		}
	})
	worker(12, func(r *rand.Rand) {
		switch r.IntN(8) {
		case 0:
			start, end := l.LogStartOffset(), l.LogEndOffset()
			if end > start {
				_, err := l.DeleteRecordsBefore(context.Background(), start+r.Int64N(min(end-start, 8)+1))
				s.check("delete records", err, ErrOffsetOutOfRange) // a truncation may have lowered the end
			}
		case 1:
			s.clock.Advance(time.Duration(r.IntN(120)) * time.Second)
			_, err := l.ApplyRetention(context.Background())
			s.check("retention", err)
		}
	})
	worker(13, func(r *rand.Rand) {
		switch r.IntN(6) {
		case 0:
			_, err := l.Compact(ctx)
			s.check("compact", err, context.Canceled)
		case 1:
			s.check("maintain", l.Maintain(ctx), context.Canceled)
		case 2:
			s.check("flush", l.Flush(ctx), context.Canceled, ErrOffsetOutOfRange)
		}
	})
	for i := range 2 {
		worker(20+i, func(r *rand.Rand) { s.readOne(ctx, r) })
	}
	worker(30, func(r *rand.Rand) {
		// ErrOffsetOutOfRange: segments kept changing under the search.
		_, _, err := l.OffsetForTime(s.clock.Now().UnixMilli() - r.Int64N(3_600_000))
		s.check("offset for time", err, ErrOffsetOutOfRange)
		if r.IntN(4) == 0 {
			_, _, err := l.OffsetOfMaxTimestamp(ctx)
			s.check("offset of max timestamp", err, context.Canceled, ErrOffsetOutOfRange)
		}
		_ = l.Size()
		_ = l.Segments()
		_ = l.DirtyRatio()
	})

	switch ending {
	case 0:
		wg.Wait()
		waiters.Wait()
		s.crashCheck("crash while open", l, l.DurableOffset())
		s.compare("before close", l)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	case 1, 2:
		for left.Load() > int64(ops/4) && ctx.Err() == nil {
			runtime.Gosched()
		}
		s.closing.Store(true)
		if ending == 1 {
			err = l.Close()
		} else {
			err = l.Discard()
		}
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		wg.Wait()
		waiters.Wait()
	}
	s.report()
	if ending == 2 {
		s.crashCheck("after discard", nil, 0)
		s.report()
		return
	}
	l2, err := Open(s.dir, s.cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	s.compare("reopened", l2)
	s.checkSeen()
	s.report()
}

func (s *stress) report() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.failures {
		s.t.Error(f)
	}
	if len(s.failures) > 0 {
		s.t.FailNow()
	}
}

func (s *stress) check(what string, err error, also ...error) {
	if !s.expected(err, also...) {
		s.fail("%s: %v", what, err)
	}
}

var stressIDs atomic.Int64

func (s *stress) appendOne(ctx context.Context, r *rand.Rand, w int, waiters *sync.WaitGroup) {
	n := 1 + r.IntN(3)
	recs := make([]kv, n)
	model := make([]stressRec, n)
	for i := range recs {
		id := fmt.Sprintf("w%d-%d", w, stressIDs.Add(1))
		m := stressRec{id: id, key: fmt.Sprintf("k%d", r.IntN(12)), ts: s.clock.Now().UnixMilli() - r.Int64N(1000)}
		recs[i], model[i] = kv{key: []byte(m.key), value: []byte(id), ts: m.ts}, m
	}
	data := batchOf(s.t, []compression.Codec{compression.None, compression.Snappy}[r.IntN(2)], recs...)
	s.mu.Lock()
	for _, m := range model {
		s.byID[m.id] = m
	}
	s.mu.Unlock()

	s.gate.RLock()
	res, d, err := s.l.AppendAsync(ctx, data, AppendOptions{})
	var gen int
	if err == nil {
		s.mu.Lock()
		gen = len(s.truncs)
		for i, m := range model {
			off := res.FirstOffset + int64(i)
			s.recs[off] = m
			if s.hist[off] == nil {
				s.hist[off] = map[string]bool{}
			}
			s.hist[off][m.id] = true
		}
		s.end = max(s.end, res.LastOffset+1)
		s.mu.Unlock()
	}
	s.gate.RUnlock()
	if err != nil {
		s.check("append", err, context.Canceled)
		return
	}
	// The wait's ctx: one that cannot end (the fsync, if this wait starts
	// it, runs in place), or one that can and does not (it runs on a
	// goroutine of its own: see syncTo), or, first, one that has ended
	// (it starts the fsync, if none is under way, and returns). Drawn from
	// the offset rather than r, so that r's draws stay those of a seed.
	waitCtx := int(res.FirstOffset % 3)
	wait := func() {
		ctx := context.Background()
		switch waitCtx {
		case 1:
			c, cancel := context.WithCancel(ctx)
			defer cancel()
			ctx = c
		case 2:
			ended, cancel := context.WithCancel(ctx)
			cancel()
			if err := d.Wait(ended); err != nil {
				s.check("wait (ctx ended)", err, context.Canceled, ErrOffsetOutOfRange)
			}
		}
		err := d.Wait(ctx)
		if err == nil && d.l != nil { // a Durability with nothing to wait for acknowledges nothing
			s.mu.Lock()
			s.acks = append(s.acks, stressAck{first: res.FirstOffset, end: res.LastOffset + 1, gen: gen})
			s.mu.Unlock()
			if s.cfg.Sync == SyncAlways && !s.closing.Load() {
				s.l.mu.Lock()
				truncated := s.l.truncations.Load() > 0
				durable := s.l.durable.Load()
				s.l.mu.Unlock()
				if durable <= res.LastOffset && !truncated {
					s.fail("Wait returned nil for offsets up to %d, durable offset %d", res.LastOffset, durable)
				}
			}
			return
		}
		if err == nil {
			return
		}
		if errors.Is(err, ErrOffsetOutOfRange) {
			// Only a truncation since the append may cut it.
			s.gate.RLock()
			s.mu.Lock()
			cut := false
			for _, e := range s.truncs[gen:] {
				cut = cut || e <= res.LastOffset
			}
			s.mu.Unlock()
			s.gate.RUnlock()
			if !cut {
				s.fail("Wait for [%d, %d]: %v, and no truncation cut it", res.FirstOffset, res.LastOffset, err)
			}
			return
		}
		s.check("wait", err)
	}
	switch r.IntN(4) {
	case 0, 1:
		wait()
	case 2:
		waiters.Add(1)
		go func() {
			defer waiters.Done()
			wait()
		}()
	}
}

func (s *stress) truncate(r *rand.Rand) {
	s.gate.Lock()
	defer s.gate.Unlock()
	start, end := s.l.LogStartOffset(), s.l.LogEndOffset()
	if end <= start {
		return
	}
	o := end - 1 - r.Int64N(min(end-start, 10))
	got, err := s.l.TruncateTo(o)
	if err != nil {
		s.check("truncate", err, ErrOffsetOutOfRange) // retention may have passed o
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if got > o || got > s.end {
		s.failures = append(s.failures, fmt.Sprintf("TruncateTo(%d) = %d, model end %d", o, got, s.end))
	}
	for off := got; off < s.end; off++ {
		delete(s.recs, off)
	}
	s.end = got
	s.truncs = append(s.truncs, got)
}

func (s *stress) readOne(ctx context.Context, r *rand.Rand) {
	l := s.l
	o := l.Offsets()
	if o.Start > o.End || o.Durable > o.End {
		s.fail("Offsets: %+v: the start or the durable offset past the end", o)
	}
	start, end := o.Start, o.End
	off := start
	if end > start {
		off += r.Int64N(end - start + 1)
	}
	upTo := int64(math.MaxInt64)
	switch r.IntN(3) {
	case 0:
		upTo = o.Durable
	case 1:
		upTo = end
	}
	for range 1 + r.IntN(4) {
		if ctx.Err() != nil {
			return
		}
		data, err := l.Read(off, 1+r.IntN(2000), upTo)
		if err != nil {
			if errors.Is(err, ErrOffsetOutOfRange) || s.closing.Load() && errors.Is(err, ErrClosed) {
				return // moved under us: start past it, or truncated below it
			}
			s.fail("Read(%d): %v", off, err)
			return
		}
		if len(data) == 0 {
			return
		}
		first := true
		prev := int64(-1)
		for b, err := range record.Batches(data) {
			if err != nil {
				s.fail("Read(%d): %v", off, err)
				return
			}
			if first && (b.LastOffset() < off || b.BaseOffset() > off && s.cfg.CleanupPolicy&Compact == 0) {
				s.fail("Read(%d): first batch [%d, %d]", off, b.BaseOffset(), b.LastOffset())
			}
			first = false
			for rec, err := range b.Records() {
				if err != nil {
					s.fail("Read(%d): %v", off, err)
					return
				}
				s.saw(off, upTo, prev, rec)
				prev = rec.Offset
			}
			off = b.NextOffset()
		}
	}
}

func (s *stress) saw(from, upTo, prev int64, rec *record.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := string(rec.Value)
	m, ok := s.byID[id]
	switch {
	case !ok:
		s.failures = append(s.failures, fmt.Sprintf("read from %d: offset %d holds %q, never appended", from, rec.Offset, id))
	case m.key != string(rec.Key) || m.ts != rec.Timestamp.UnixMilli():
		s.failures = append(s.failures, fmt.Sprintf("read from %d: offset %d %q: key %q ts %d, appended with %q %d", from, rec.Offset, id, rec.Key, rec.Timestamp.UnixMilli(), m.key, m.ts))
	case rec.Offset >= upTo:
		s.failures = append(s.failures, fmt.Sprintf("read from %d up to %d: got offset %d", from, upTo, rec.Offset))
	case prev >= 0 && (rec.Offset <= prev || s.cfg.CleanupPolicy&Compact == 0 && rec.Offset != prev+1):
		s.failures = append(s.failures, fmt.Sprintf("read from %d: offset %d after %d", from, rec.Offset, prev))
	}
	if s.seen[rec.Offset] == nil {
		s.seen[rec.Offset] = map[string]bool{}
	}
	s.seen[rec.Offset][id] = true
}

// checkSeen checks that every record a reader saw was appended at its
// offset.
func (s *stress) checkSeen() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for off, ids := range s.seen {
		for id := range ids {
			if !s.hist[off][id] {
				s.failures = append(s.failures, fmt.Sprintf("a reader saw %q at offset %d, appended at none", id, off))
			}
		}
	}
}

// logRecords reads every record of l, by offset.
func (s *stress) logRecords(what string, l *Log) (map[int64]*record.Record, int64, int64) {
	start, end := l.LogStartOffset(), l.LogEndOffset()
	got := map[int64]*record.Record{}
	for off := start; off < end; {
		data, err := l.Read(off, 1<<16, math.MaxInt64)
		if err != nil {
			s.fail("%s: Read(%d): %v", what, off, err)
			return got, start, end
		}
		if len(data) == 0 {
			break
		}
		for b, err := range record.Batches(data) {
			if err != nil {
				s.fail("%s: Read(%d): %v", what, off, err)
				return got, start, end
			}
			for rec, err := range b.Records() {
				if err != nil {
					s.fail("%s: %v", what, err)
					return got, start, end
				}
				if rec.Offset >= start {
					got[rec.Offset] = rec
				}
			}
			off = b.NextOffset()
		}
	}
	return got, start, end
}

// compare checks l against the model: the same end, and at every offset
// from the start the record appended there, unless compaction removed it
// for a later record of its key.
func (s *stress) compare(what string, l *Log) {
	got, start, end := s.logRecords(what, l)
	s.mu.Lock()
	defer s.mu.Unlock()
	if end != s.end {
		s.failures = append(s.failures, fmt.Sprintf("%s: log end %d, model %d", what, end, s.end))
	}
	lastOfKey := s.lastOfKeyLocked()
	for off := start; off < s.end; off++ {
		m, ok := s.recs[off]
		rec := got[off]
		switch {
		case !ok:
			if rec != nil {
				s.failures = append(s.failures, fmt.Sprintf("%s: offset %d holds %q, the model nothing", what, off, rec.Value))
			}
		case rec == nil:
			if s.cfg.CleanupPolicy&Compact == 0 || lastOfKey[m.key] <= off {
				s.failures = append(s.failures, fmt.Sprintf("%s: offset %d (%q, key %s) missing", what, off, m.id, m.key))
			}
		case string(rec.Value) != m.id:
			s.failures = append(s.failures, fmt.Sprintf("%s: offset %d holds %q, want %q", what, off, rec.Value, m.id))
		}
	}
	for off := range got {
		if off >= s.end {
			s.failures = append(s.failures, fmt.Sprintf("%s: offset %d past the model end %d", what, off, s.end))
		}
	}
}

// crashCheck crash-clones the FS (l, if not nil, stays open on the
// original) and checks the reopened clone: it ends at or past durable,
// and holds every acknowledged append that no truncation cut since.
func (s *stress) crashCheck(what string, l *Log, durable int64) {
	if s.mem == nil {
		return // the OS's file system: no crash clone
	}
	clone := s.mem.CrashClone(vfs.CrashOptions{Tail: vfs.TailTorn, Reorder: true, Rand: rand.New(rand.NewPCG(s.seed, 7))})
	cl, err := Open("/d/t-0", s.cfg, Options{FS: clone, Clock: s.clock, ProducerExpiration: -1})
	if err != nil {
		s.fail("%s: Open: %v", what, err)
		return
	}
	defer cl.Close()
	got, start, end := s.logRecords(what, cl)
	s.mu.Lock()
	defer s.mu.Unlock()
	if end < durable {
		s.failures = append(s.failures, fmt.Sprintf("%s: log end %d below the durable offset %d", what, end, durable))
	}
	lastOfKey := s.lastOfKeyLocked()
	for _, a := range s.acks {
		cut := false
		for _, e := range s.truncs[a.gen:] {
			cut = cut || e < a.end
		}
		if cut {
			continue
		}
		for off := max(a.first, start); off < a.end; off++ {
			m := s.recs[off]
			rec := got[off]
			if rec == nil {
				if s.cfg.CleanupPolicy&Compact != 0 && lastOfKey[m.key] > off {
					continue
				}
				s.failures = append(s.failures, fmt.Sprintf("%s: acknowledged offset %d (%q) lost (log [%d, %d])", what, off, m.id, start, end))
				continue
			}
			if string(rec.Value) != m.id {
				s.failures = append(s.failures, fmt.Sprintf("%s: acknowledged offset %d holds %q, want %q", what, off, rec.Value, m.id))
			}
		}
	}
	_ = l
}

// lastOfKeyLocked returns, for each key, the largest offset a record of
// it was ever appended at: compaction may remove a record for a later one
// of its key, which a truncation may then remove too.
func (s *stress) lastOfKeyLocked() map[string]int64 {
	last := map[string]int64{}
	for off, ids := range s.hist {
		for id := range ids {
			if k := s.byID[id].key; off > last[k] {
				last[k] = off
			}
		}
	}
	return last
}
