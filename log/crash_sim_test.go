package log

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

// TestCrashSim is a seeded, randomized crash simulation of one log. Each
// seed picks a configuration (every sync policy — SyncAlways, SyncPeriodic
// (flush.messages; in half its runs flush.ms too, or alone), SyncNever —
// with every cleanup policy — delete, compact, compact+delete — over
// small segments and index intervals) and
// runs one to three phases of random operations: plain appends of one or
// two batches (waited for, or AppendAsync with the Durability waited for
// later or never: a group commit in flight at the crash), idempotent
// producer batches with their retried duplicates, stale epochs and
// sequence gaps, rolls, truncations, DeleteRecordsBefore, retention under
// a fake clock, compaction, Maintain, Flush, and clean Close and Open. Each
// phase ends in a power cut: between two operations, or in the middle of
// one (the disk dies after a random number of file-system operations);
// then vfs.MemFS.CrashClone with a random tail mode, with and without
// Reorder, and Open — itself cut by a power loss now and then, and opened
// again on what that crash left, and after one crash in eight tried first
// with a stale clean-shutdown marker put back (see openStale). The log
// must then hold:
//
//   - every acknowledged record (an append whose fsync it waited for: under
//     SyncAlways every Append, under SyncPeriodic those that made a flush
//     due, flush.messages counted from the durable offset, the active
//     segment's base or the last flush made due, flush.ms in whole
//     milliseconds from the last flush: the Open, a flush made due, a
//     roll, an fsync; and everything below the end at a Flush or a Wait
//     that returned nil, at a Maintain that made a flush.ms flush due, or
//     at a clean Close, and under both policies below the base of a
//     segment a roll began) at its offset, byte for byte, unless removed
//     on purpose (retention, DeleteRecordsBefore, TruncateTo, compaction:
//     the latest record of each key stays, a tombstone goes only after
//     delete.retention.ms, and then so have the older records of its key);
//   - nothing that was not appended, and no offset missing but those
//     compaction removed: a crash loses a tail only;
//   - its log end offset at the end of its last batch, reads from the log
//     start offset to the end, and indexes that agree with the segments
//     (checkIndexes);
//   - for each idempotent producer, its retries answered as the log's
//     producer state must answer them: a batch that survived is a
//     duplicate with its original offsets, one lost with the crash is
//     appended once, in order;
//   - its producer state and producer-state snapshot files holding only
//     batches it holds, at least each producer's last batches, and no
//     snapshot past its end or below its start (checkProducerState,
//     after every operation too).
//
// Between crashes the model checks each operation's answer too (under
// SyncPeriodic, whether each append waits for a flush, and after every
// operation the durable offset, which the model follows through the
// fsyncs it expects), and the records the log holds after each
// retention, compaction and Maintain. On a flush.ms run the fake clock
// steps by fractions of a second too, and now and then to flush.ms's
// bound (see clockStep).
// Whatever Open kept is durable: the next phase's crash must keep it.
//
// A failing seed logs its configuration, the operations it ran and the
// command that replays it alone:
//
//	RUNNEL_CRASH_SIM_SEED=123 go test -run 'TestCrashSim$' -v ./log
//
// By default (and in -short mode, fewer) a fixed set of seeds runs; a long
// run over new seeds, spread over the cores:
//
//	RUNNEL_CRASH_SIM=20000 go test -run 'TestCrashSim$' -timeout 2h ./log
//
// (RUNNEL_CRASH_SIM_BASE sets the first seed; by default a long run starts
// at one drawn from the time, which it logs, and it logs how many flushes
// flush.ms made due: see flushMSStats.)
func TestCrashSim(t *testing.T) { crashSimSeeds(t, "RUNNEL_CRASH_SIM", 270, false) }

// crashSimSeeds runs the crash simulation over the default number of
// seeds, or those env (and env_SEED, env_BASE) asks for; transient adds
// transient faults (see TestCrashSimTransientFaults).
func crashSimSeeds(t *testing.T, env string, runs int, transient bool) {
	if v := os.Getenv(env + "_SEED"); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s_SEED=%q: %v", env, v, err)
		}
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runCrashSimWith(t, seed, true, transient) })
		return
	}
	base := uint64(1)
	if testing.Short() {
		runs /= 3
	}
	if testkit.RaceEnabled {
		runs /= 3
	}
	if v := os.Getenv(env); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("%s=%q: want a number of runs", env, v)
		}
		runs, base = n, testkit.ClockSeed()
		if b := os.Getenv(env + "_BASE"); b != "" {
			if base, err = strconv.ParseUint(b, 10, 64); err != nil {
				t.Fatalf("%s_BASE=%q: %v", env, b, err)
			}
		}
		t.Logf("crash simulation: %d runs, seeds %d to %d", runs, base, base+uint64(runs)-1)
	}
	workers := runtime.GOMAXPROCS(0)
	var done atomic.Int64
	for w := range workers {
		t.Run(fmt.Sprintf("worker%d", w), func(t *testing.T) {
			t.Parallel()
			failures := 0
			for i := w; i < runs && failures < 3; i += workers {
				seed := base + uint64(i)
				if !t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runCrashSimWith(t, seed, false, transient) }) {
					failures++
				}
				done.Add(1)
			}
		})
	}
	t.Cleanup(func() {
		if os.Getenv(env) != "" {
			t.Logf("crash simulation: %d runs done", done.Load())
			t.Logf("crash simulation: %s", flushMSSummary())
			if transient {
				t.Logf("crash simulation: %s", sameBootSummary())
			}
		}
	})
}

// runCrashSim runs the simulation of one seed; verbose logs its operations
// as it goes (a replay).
func runCrashSim(t *testing.T, seed uint64, verbose bool) { runCrashSimWith(t, seed, verbose, false) }

// runCrashSimWith is runCrashSim, with transient faults if transient.
func runCrashSimWith(t *testing.T, seed uint64, verbose, transient bool) {
	s := newCrashSim(t, seed)
	s.verbose = verbose
	replay := fmt.Sprintf("RUNNEL_CRASH_SIM_SEED=%d go test -run 'TestCrashSim$' -v ./log", seed)
	if transient {
		s.transient = rand.New(rand.NewPCG(seed, 0x7472616e73))
		s.reopenRng = rand.New(rand.NewPCG(seed, 0x72656f70656e))
		s.processRng = rand.New(rand.NewPCG(seed, 0x70726f63))
		replay = fmt.Sprintf("RUNNEL_CRASH_SIM_TRANSIENT_SEED=%d go test -run TestCrashSimTransientFaults -v ./log", seed)
	}
	defer func() {
		if s.l != nil {
			s.l.Close()
		}
		if t.Failed() && !verbose {
			trace := s.trace
			if len(trace) > 150 {
				trace = append([]string{fmt.Sprintf("... %d operations before", len(trace)-150)}, trace[len(trace)-150:]...)
			}
			t.Logf("seed %d: %s\n%s\nreplay: %s", seed, s.describe(), strings.Join(trace, "\n"), replay)
		}
	}()
	s.run()
	s.checkLeftovers()
}

// simRec is a record the model knows at an offset.
type simRec struct {
	key, value  []byte // a nil value is a tombstone
	ts          int64  // its timestamp, ms
	batch       int64  // its batch's base offset
	at          int64  // the fake clock (ms) at its append
	compactions int    // compaction passes begun before its append
	acked       bool   // durable: a crash must keep it
	gone        bool   // compaction removed it (seen in the log)
	// mayBeGone: a later record of its key was truncated after a
	// compaction pass may have removed this one in its favour.
	mayBeGone bool
}

func (m *simRec) is(r *record.Record) bool {
	return bytes.Equal(m.key, r.Key) && (m.key == nil) == (r.Key == nil) &&
		bytes.Equal(m.value, r.Value) && (m.value == nil) == (r.Value == nil) && m.ts == r.Timestamp.UnixMilli()
}

// simBatch is a batch an idempotent producer appended.
type simBatch struct {
	pid         int64
	epoch       int16
	first, last int64 // offsets
	seq, lastSq int32
	data        []byte // as the producer encoded it, for retries
	state       simBatchState
	// appendTime is the log append time of a LogAppendTime log's append
	// (the fake clock's ms then), -1 on a CreateTime log: what a
	// duplicate of the batch is answered with.
	appendTime int64
}

type simBatchState uint8

const (
	batchLive      simBatchState = iota
	batchTruncated               // removed by TruncateTo (the producer learns nothing)
	batchLost                    // lost with a crash: the producer retries it
	batchRetried                 // lost, and appended again (a new simBatch)
)

// simProducer is an idempotent producer.
type simProducer struct {
	id    int64
	epoch int16
	// window is what the model is sure the log's producer state
	// remembers: the last batches of the latest epoch (at most
	// maxProducerBatches), as the log's rules update and drop them. The
	// log may remember more (replayed from its segments after a crash),
	// never less.
	window  []*simBatch
	history []*simBatch
}

// nextSeq is the sequence number the producer's next batch takes: after
// its newest batch in the log of its current epoch, else 0.
func (p *simProducer) nextSeq() int32 {
	for _, b := range slices.Backward(p.history) {
		if b.state == batchLive && b.epoch == p.epoch {
			return b.lastSq + 1
		}
	}
	return 0
}

// update is producers.update for the model's window.
func (p *simProducer) update(b *simBatch) {
	if len(p.window) > 0 && b.epoch > p.window[0].epoch {
		p.window = nil
	}
	p.window = append(p.window, b)
	if len(p.window) > maxProducerBatches {
		p.window = p.window[1:]
	}
}

func (p *simProducer) dropFrom(offset int64) {
	p.window = slices.DeleteFunc(p.window, func(b *simBatch) bool { return b.first >= offset })
}

func (p *simProducer) dropBefore(offset int64) {
	p.window = slices.DeleteFunc(p.window, func(b *simBatch) bool { return b.last < offset })
}

// simPending is an append whose Durability nobody waited for yet.
type simPending struct {
	d      Durability
	target int64
	truncs int // truncations before the append
	what   string
}

// simUncertain is what the operation the power cut interrupted may have
// done, or not.
type simUncertain struct {
	op       string
	cutFrom  int64 // >= 0: a truncation may have removed the records from here on
	startMax int64 // the log start offset may have moved up to here
	// keepTo: the offsets below it were appended before the interrupted
	// operation began (an append's own records may or may not have been
	// written): an Open in the same boot, without a crash, keeps them
	// (see reopenAfterFailure), but for what a truncation (cutFrom) may
	// have cut.
	keepTo int64
}

// errPowerCut ends a phase: an operation failed because the disk died.
var errPowerCut = errors.New("power cut")

type crashSim struct {
	t       *testing.T
	seed    uint64
	rng     *rand.Rand
	verbose bool
	cfg     Config
	opts    Options
	clock   *fakeClock
	mem     *vfs.MemFS
	failIn  atomic.Int64 // file-system operations left before the disk dies; -1: it does not
	// transient, when not nil, draws the transient faults (see
	// TestCrashSimTransientFaults); faultIn counts the writing file-system
	// operations left before one fails alone (-1: none does), and faulted
	// says that one did since the last crash.
	transient *rand.Rand
	faultIn   atomic.Int64
	faulted   atomic.Bool
	faultOp   atomic.Pointer[string] // the operation that failed, until logged
	// faultMatch, when not empty, makes faultIn count (and fail) only the
	// writing operations on a name holding it; faultBurst is how many such
	// operations in a row fail once faultIn comes to 0 (0 counts as 1).
	// ckptFaulted says that a fault hit the writing of the sync-failed
	// checkpoint since the log last opened (see reopenAfterFailure).
	faultMatch  atomic.Pointer[string]
	faultBurst  atomic.Int64
	ckptFaulted atomic.Bool
	// reopenRng, when not nil (transient faults only), draws apart from
	// rng whether a phase whose log failed reopens it in the same boot,
	// and how (see reopenAfterFailure).
	reopenRng *rand.Rand
	// processRng, when not nil (transient faults only), draws apart from
	// the rest whether a reopen in the same boot is by another process
	// (see reopenAfterFailure).
	processRng *rand.Rand
	// jitter, on a run with flush.ms, draws apart from rng the clock's
	// steps by fractions of a second (see clockStep).
	jitter *rand.Rand
	// stale draws, apart from rng (so that a seed's run is the same
	// without it), the crashes after which a stale clean-shutdown marker
	// is put back (a directory copied with an older marker, say);
	// staleOpened says that Open took one since the run began.
	stale       *rand.Rand
	staleOpened bool
	l           *Log

	recs      []*simRec // by offset, from 0 to the log end offset
	start     int64
	present   map[int64]bool // base offsets of the batches from the log start on that the log holds
	producers []*simProducer
	pending   []simPending
	epoch     int32 // leader epoch
	// durable is the log's durable offset as the model follows it: the
	// log end at each fsync that an append's wait, a Wait, a Flush or a
	// Close runs (none when the durable offset is at the wait's target
	// already), lowered by truncations, and the log end after Open.
	durable int64
	// flushDueTo is, under SyncPeriodic, the log end after the last
	// append that made a flush due: a duplicate of a batch below it waits
	// for the flush, as that append did; and flushClaim is the same end,
	// lowered by truncations, from which flush.messages counts (see
	// waits).
	flushDueTo, flushClaim int64
	// lastFlush is, under SyncPeriodic, the fake clock's ms at the log's
	// last flush as flush.ms counts it (see flushMSDue): the Open, a
	// flush made due (an append's, Maintain's), a roll, an fsync (which
	// covers the whole log: the model's flushClaim is never past the end).
	lastFlush int64
	// compactions counts the compaction passes begun (Compact, Maintain);
	// lastCompactAt is the clock (ms) when the last began.
	compactions   int
	lastCompactAt int64
	truncs        int
	seq           int
	unc           simUncertain
	trace         []string
	ops, crashes  int
}

func newCrashSim(t *testing.T, seed uint64) *crashSim {
	s := &crashSim{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 0x6372617368)), clock: newClock(), mem: vfs.NewMem(),
		present: map[int64]bool{}, unc: simUncertain{cutFrom: -1}, stale: rand.New(rand.NewPCG(seed, 0x7374616c65))}
	s.failIn.Store(-1)
	s.faultIn.Store(-1)
	r := s.rng
	s.cfg = Config{
		Sync:                   []SyncPolicy{SyncAlways, SyncPeriodic, SyncNever}[seed%3],
		CleanupPolicy:          []CleanupPolicy{Delete, Compact, Compact | Delete}[seed/3%3],
		SegmentBytes:           int64(250 + r.IntN(900)),
		IndexIntervalBytes:     1 + r.IntN(256),
		RetentionTime:          time.Duration(20+r.IntN(40)) * time.Minute,
		DeleteRetentionTime:    time.Duration(1+r.IntN(10)) * time.Minute,
		MinCleanableDirtyRatio: []float64{-1, 0.3, 0.5}[r.IntN(3)],
	}
	if s.cfg.Sync == SyncPeriodic {
		s.cfg.FlushMessages = int64(1 + r.IntN(8))
		// flush.ms in half the SyncPeriodic runs, drawn apart from rng
		// so that a seed's run is otherwise the same: a few seconds to a
		// minute of the fake clock, now and then with a fraction of a
		// millisecond, which flush.ms does not count; with flush.messages
		// unlimited (Kafka's default) in a third of them. Their clock
		// steps by fractions of a second too (see clockStep).
		if fr := rand.New(rand.NewPCG(seed, 0x666c7573686d73)); fr.IntN(2) == 0 {
			s.cfg.FlushInterval = time.Duration(2+fr.IntN(59)) * time.Second
			if fr.IntN(2) == 0 {
				s.cfg.FlushInterval += time.Duration(1+fr.IntN(999)) * time.Microsecond
			}
			if fr.IntN(3) == 0 {
				s.cfg.FlushMessages = 0
			}
			s.jitter = fr
		}
	}
	if r.IntN(3) == 0 {
		s.cfg.SegmentTime = time.Duration(5+r.IntN(20)) * time.Minute
	}
	// A LogAppendTime log in a third of the runs, drawn apart from rng so
	// that a seed's run is otherwise the same: its records read with
	// their append time, and its snapshots keep its batches' (rows -3).
	if rand.New(rand.NewPCG(seed, 0x6c6174)).IntN(3) == 0 {
		s.cfg.TimestampType = LogAppendTime
	}
	s.opts = Options{Clock: s.clock, ProducerExpiration: -1, CleanerMapBytes: []int64{0, 64, 256}[r.IntN(3)]}
	for i := range 1 + r.IntN(3) {
		s.producers = append(s.producers, &simProducer{id: int64(1000 + i)})
	}
	return s
}

func (s *crashSim) describe() string {
	c := s.cfg
	return fmt.Sprintf("sync %s (flush.messages %d, flush.ms %v), cleanup %s, timestamps %s, segment %d B (%v), index interval %d B, retention %v, delete retention %v, dirty ratio %v, cleaner map %d B, %d producers",
		c.Sync, c.FlushMessages, c.FlushInterval, c.CleanupPolicy, c.TimestampType, c.SegmentBytes, c.SegmentTime, c.IndexIntervalBytes, c.RetentionTime, c.DeleteRetentionTime,
		c.MinCleanableDirtyRatio, s.opts.CleanerMapBytes, len(s.producers))
}

func (s *crashSim) logf(format string, args ...any) {
	layout := "15:04:05"
	if s.jitter != nil {
		layout = "15:04:05.000000" // flush.ms counts the milliseconds
	}
	line := fmt.Sprintf("%4d %s ", s.ops, s.clock.Now().Format(layout)) + fmt.Sprintf(format, args...)
	s.trace = append(s.trace, line)
	if s.verbose {
		s.t.Log(line)
	}
}

func (s *crashSim) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("seed %d, operation %d, after %d crashes: %s", s.seed, s.ops, s.crashes, fmt.Sprintf(format, args...))
}

func (s *crashSim) check(ok bool, format string, args ...any) {
	if !ok {
		s.t.Helper()
		s.fatalf(format, args...)
	}
}

func (s *crashSim) end() int64      { return int64(len(s.recs)) }
func (s *crashSim) compacted() bool { return s.cfg.CleanupPolicy&Compact != 0 }

// appendTime is the log append time of an append now: the fake clock's on
// a LogAppendTime log, else -1.
func (s *crashSim) appendTime() int64 {
	if s.cfg.TimestampType == LogAppendTime {
		return s.clock.Now().UnixMilli()
	}
	return -1
}

// stamped sets the timestamps of recs, appended now, to what the log
// reads them with: the append time on a LogAppendTime log.
func (s *crashSim) stamped(recs []simRec) []simRec {
	if t := s.appendTime(); t >= 0 {
		for i := range recs {
			recs[i].ts = t
		}
	}
	return recs
}

// fs is the log's file system: the MemFS, whose operations fail once the
// disk died (failIn), and one of whose writing operations fails alone
// when faultIn comes to 0.
func (s *crashSim) fs(mem *vfs.MemFS) vfs.FS {
	return vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if m := s.faultMatch.Load(); writes(op) && (m == nil || strings.Contains(name, *m)) {
			switch n := s.faultIn.Load(); {
			case n == 0:
				if s.faultBurst.Add(-1) <= 0 {
					s.faultIn.Store(-1)
				}
				s.faulted.Store(true)
				if strings.Contains(name, syncFailedFile) {
					s.ckptFaulted.Store(true)
				}
				what := fmt.Sprintf("%s %s", op, name)
				if p := s.faultOp.Load(); p != nil {
					what = *p + ", " + what
				}
				s.faultOp.Store(&what)
				return vfs.ErrInjected
			case n > 0:
				s.faultIn.Store(n - 1)
			}
		}
		n := s.failIn.Load()
		switch {
		case n < 0:
			return nil
		case n == 0:
			return vfs.ErrInjected
		}
		s.failIn.Store(n - 1)
		return nil
	}))
}

// writes reports whether op changes the file system.
func writes(op vfs.Op) bool {
	switch op {
	case vfs.OpCreate, vfs.OpWrite, vfs.OpSync, vfs.OpTruncate, vfs.OpRemove, vfs.OpRename, vfs.OpSyncDir:
		return true
	}
	return false
}

func (s *crashSim) openLog(mem *vfs.MemFS) (*Log, error) {
	opts := s.opts
	opts.FS = s.fs(mem)
	return Open(crashDir, s.cfg, opts)
}

func (s *crashSim) run() {
	l, err := s.openLog(s.mem)
	s.check(err == nil, "open: %v", err)
	s.l = l
	s.lastFlush = s.now() // Open counts as a flush for flush.ms
	s.logf("open: %s", s.describe())
	for range 1 + s.rng.IntN(3) {
		n := 20 + s.rng.IntN(100)
		cutAt := -1 // the operation during which the power goes
		if s.rng.IntN(2) == 0 {
			cutAt = s.rng.IntN(n)
		}
		if s.transient != nil {
			k := s.transient.Int64N(1 + s.transient.Int64N(400))
			s.armFault(k, "", s.faultBurstDraw())
		}
		for i := range n {
			s.ops++
			s.clock.Advance(s.clockStep())
			if i == cutAt {
				k := s.rng.Int64N(1 + s.rng.Int64N(40)) // most often early in it
				s.logf("the disk dies after %d more file-system operations", k)
				s.failIn.Store(k)
			}
			err := s.step()
			if p := s.faultOp.Swap(nil); p != nil {
				s.logf("  transient fault: %s failed", *p)
			}
			if err != nil && i != cutAt && s.reopenRng != nil && s.reopenRng.IntN(2) == 0 && s.reopenAfterFailure() {
				continue // the log failed, and opened again in the same boot
			}
			if err != nil || i == cutAt {
				break
			}
			s.checkProducerState(fmt.Sprintf("operation %d", s.ops))
			if s.cfg.Sync == SyncPeriodic {
				// Whichever fsyncs the operation ran (an append's
				// flush made due, Maintain's flush.ms flush), the
				// model ran them too.
				s.check(s.l.DurableOffset() == s.durable, "operation %d: durable offset %d, the model's %d", s.ops, s.l.DurableOffset(), s.durable)
			}
		}
		s.crash()
	}
	// Last, a clean close and open: nothing changes.
	s.ops++
	s.check(s.reopen() == nil, "clean reopen failed")
}

// clockStep draws the fake clock's step before an operation: whole
// seconds; and on a flush.ms run (jitter) now and then a millisecond or a
// fraction of one more or less, or a step to flush.ms's bound (the
// millisecond before the one FlushInterval after the last flush, that
// one or the one after, at a random fraction of it), so that operations
// come at every side of the bound, which flush.ms counts in whole
// milliseconds, with the clock's fraction of a millisecond anywhere.
func (s *crashSim) clockStep() time.Duration {
	d := time.Duration(s.rng.IntN(90)) * time.Second
	if s.jitter == nil {
		return d
	}
	switch s.jitter.IntN(8) {
	case 0:
		d += time.Duration(1+s.jitter.IntN(999)) * time.Microsecond
	case 1:
		d += time.Millisecond
	case 2:
		if d > 0 {
			d -= time.Millisecond
		}
	case 3:
		if d > 0 {
			d -= time.Duration(1+s.jitter.IntN(999)) * time.Microsecond
		}
	case 4:
		ms := s.lastFlush + s.cfg.FlushInterval.Milliseconds() + int64(s.jitter.IntN(3)) - 1
		at := time.UnixMilli(ms).Add(time.Duration(s.jitter.IntN(1000)) * time.Microsecond)
		if step := at.Sub(s.clock.Now()); step >= 0 {
			d = step
		}
	}
	return d
}

// step runs one random operation; it returns errPowerCut if the disk died
// under it.
func (s *crashSim) step() error {
	type op struct {
		weight int
		f      func() error
	}
	ops := []op{
		{20, func() error { return s.appendPlain() }},
		{14, func() error { return s.appendIdempotent() }},
		{6, func() error { return s.retry() }},
		{2, func() error { return s.refused() }},
		{6, func() error { return s.wait() }},
		{4, func() error { return s.flush() }},
		{3, func() error { return s.roll() }},
		{3, func() error { return s.truncate() }},
		{2, func() error { return s.deleteRecords() }},
		{3, func() error { return s.retention() }},
		{4, func() error { return s.maintain() }},
		{2, func() error { return s.reopen() }},
		{1, func() error { s.epoch++; s.logf("leader epoch %d", s.epoch); return nil }},
		{1, func() error {
			p := s.producers[s.rng.IntN(len(s.producers))]
			p.epoch++
			s.logf("producer %d: epoch %d", p.id, p.epoch)
			return nil
		}},
	}
	if s.compacted() {
		ops = append(ops, op{4, func() error { return s.compact() }})
	}
	total := 0
	for _, o := range ops {
		total += o.weight
	}
	n := s.rng.IntN(total)
	for _, o := range ops {
		if n < o.weight {
			return o.f()
		}
		n -= o.weight
	}
	panic("unreachable")
}

// powerCut tells an error of the dying disk from any other, which fails
// the test; unc says what the interrupted operation may have done.
func (s *crashSim) powerCut(what string, err error, unc simUncertain) error {
	s.t.Helper()
	if s.failIn.Load() != 0 && !s.faulted.Load() || !errors.Is(err, vfs.ErrInjected) {
		s.fatalf("%s: %v", what, err)
	}
	unc.op = what
	s.unc = unc
	s.logf("%s: power cut: %v", what, err)
	return errPowerCut
}

func (s *crashSim) noUnc() simUncertain {
	return simUncertain{cutFrom: -1, startMax: s.start, keepTo: s.end()}
}

// appendUnc is what an append of records from first on that failed may
// have done: written them, or not.
func (s *crashSim) appendUnc(first int64) simUncertain {
	unc := s.noUnc()
	unc.keepTo = first
	return unc
}

var simCodecs = []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd}

// batch encodes one batch of 1-4 records (of producer pid, unless -1).
func (s *crashSim) batch(pid int64, epoch int16, seq int32) ([]byte, []simRec) {
	var b record.Builder
	b.Reset()
	if pid >= 0 {
		b.SetProducer(pid, epoch, seq)
	}
	now := s.clock.Now().UnixMilli()
	var recs []simRec
	for range 1 + s.rng.IntN(4) {
		r := simRec{ts: now - int64(s.rng.IntN(3)), at: now}
		if s.compacted() || s.rng.IntN(10) > 0 {
			r.key = fmt.Appendf(nil, "k%d", s.rng.IntN(8))
		}
		if s.rng.IntN(8) > 0 {
			r.value = fmt.Appendf(nil, "%d.%d:%s", s.seed, s.seq, strings.Repeat("v", s.rng.IntN(60)))
		}
		s.seq++
		b.Append(r.ts, r.key, r.value, nil)
		recs = append(recs, r)
	}
	data, err := b.AppendTo(nil, simCodecs[s.rng.IntN(len(simCodecs))])
	s.check(err == nil, "encoding: %v", err)
	return data, s.stamped(recs)
}

// add puts the records of an append at [first, ...) into the model.
func (s *crashSim) add(first int64, recs []simRec, batchSizes []int) {
	s.check(first == s.end(), "append at %d, model end %d", first, s.end())
	i := 0
	for _, n := range batchSizes {
		base := first + int64(i)
		s.present[base] = true
		for range n {
			r := recs[i]
			r.batch, r.compactions = base, s.compactions
			s.recs = append(s.recs, &r)
			i++
		}
	}
}

// waits reports whether the append that just ended the model's log
// waits for an fsync, as the model counts: always under SyncAlways; under
// SyncPeriodic when it makes a flush due: flush.messages when
// FlushMessages offsets lie past the durable offset, the active segment's
// base (the roll that began it synced everything before it: the model
// takes the segments' bounds from the log, and checks that such a roll
// made its records durable: they are acknowledged, and the next crash
// must keep them) and the end of the last flush made due, whichever is
// highest; flush.ms when FlushInterval has passed since the last flush
// (see flushMSDue), which the append's own roll, if it rolled (its
// active segment is no longer before), moved to now. A flush made due
// counts as a flush from then on, for both.
func (s *crashSim) waits(before *segment.Segment) bool {
	switch s.cfg.Sync {
	case SyncAlways:
		s.ack(s.activeBase())
		return true
	case SyncPeriodic:
		base := s.activeBase()
		s.ack(base)
		s.noteRoll(before)
		due := s.cfg.FlushMessages > 0 && s.end()-max(s.durable, base, s.flushClaim) >= s.cfg.FlushMessages
		if ms := s.flushMSDue(); due || ms {
			s.logf("  flush due (flush.messages %v, flush.ms %v)", due, ms)
			if ms && !due {
				s.countFlushMS(&flushMSStats.appends)
			}
			s.flushDueTo, s.flushClaim = s.end(), s.end()
			s.lastFlush = s.now()
			return true
		}
	}
	return false
}

// now is the fake clock's time, in ms.
func (s *crashSim) now() int64 { return s.clock.Now().UnixMilli() }

// flushMSDue reports whether flush.ms has passed since the last flush
// (lastFlush), as the log counts it (and Kafka: time.milliseconds -
// lastFlushTime >= flushMs): in whole milliseconds of the clock, against
// FlushInterval's whole milliseconds.
func (s *crashSim) flushMSDue() bool {
	return s.cfg.FlushInterval > 0 && s.now()-s.lastFlush >= s.cfg.FlushInterval.Milliseconds()
}

// flushMSStats counts, over a run of seeds, the flushes flush.ms made due
// (appends: those flush.messages did not; Maintain's), and of them those
// due at FlushInterval's last millisecond (exact): a long run logs them
// (see crashSimSeeds), to show the paths were taken, also at the bound.
var flushMSStats struct{ appends, maintains, exact atomic.Int64 }

func flushMSSummary() string {
	st := &flushMSStats
	return fmt.Sprintf("flush.ms made %d appends' flushes due (flush.messages not) and %d of Maintain's, %d of them at FlushInterval exactly",
		st.appends.Load(), st.maintains.Load(), st.exact.Load())
}

// countFlushMS counts a flush flush.ms made due now in n, and in
// flushMSStats.exact if it came due in this very millisecond.
func (s *crashSim) countFlushMS(n *atomic.Int64) {
	n.Add(1)
	if s.now()-s.lastFlush == s.cfg.FlushInterval.Milliseconds() {
		flushMSStats.exact.Add(1)
	}
}

// noteRoll follows an operation that may have rolled the log (an append,
// Roll, retention, Maintain's retention): the log's active segment is no
// longer before, the one it had when the operation began. Under
// SyncPeriodic such a roll synced the segment it sealed, and the ones
// before it were synced as they rolled: a flush, for flush.ms.
func (s *crashSim) noteRoll(before *segment.Segment) {
	if s.cfg.Sync == SyncPeriodic && s.activeSeg() != before {
		s.lastFlush = s.now()
	}
}

// activeBase is the base offset of the log's active segment.
func (s *crashSim) activeBase() int64 { return s.activeSeg().Base() }

// activeSeg is the log's active segment.
func (s *crashSim) activeSeg() *segment.Segment {
	segs := *s.l.segs.Load()
	return segs[len(segs)-1]
}

// synced follows the durable offset through a wait for target that
// returned (or found a truncation past target, once the log end is back
// at target): an fsync then ran, to the log end, unless the durable offset
// was at target already. Under SyncPeriodic, whose flush.messages counts
// from it, the log's must be the model's; and such an fsync, which covered
// every record appended before it (the end it read is at or past the last
// flush made due), is a flush for flush.ms.
func (s *crashSim) synced(target int64) {
	if s.durable < target {
		s.durable = s.end()
		if s.end() >= s.flushClaim {
			s.lastFlush = s.now()
		}
	}
	if s.cfg.Sync == SyncPeriodic {
		s.check(s.l.DurableOffset() == s.durable, "durable offset %d, the model's %d", s.l.DurableOffset(), s.durable)
	}
}

// ack marks every record below target durable.
func (s *crashSim) ack(target int64) {
	for _, r := range s.recs[:min(target, s.end())] {
		r.acked = true
	}
}

// settle waits for an append's Durability now, later (pending), or never.
func (s *crashSim) settle(what string, d Durability, target int64, wantWait bool) error {
	s.check((d.l != nil) == wantWait, "%s: durability %v, model says the append waits: %v", what, d.l != nil, wantWait)
	if d.l == nil {
		return nil
	}
	switch s.rng.IntN(3) {
	case 0:
		if err := d.Wait(context.Background()); err != nil {
			return s.powerCut(what+": wait", err, s.noUnc())
		}
		s.synced(target)
		s.ack(target)
	case 1:
		s.pending = append(s.pending, simPending{d: d, target: target, truncs: s.truncs, what: what})
	}
	return nil
}

// appendPlain appends one or two batches of no producer in one call.
func (s *crashSim) appendPlain() error {
	var data []byte
	var recs []simRec
	var sizes []int
	for range 1 + s.rng.IntN(2) {
		b, r := s.batch(-1, 0, 0)
		data = append(data, b...)
		recs = append(recs, r...)
		sizes = append(sizes, len(r))
	}
	first := s.end()
	what := fmt.Sprintf("append %v records at %d", sizes, first)
	s.logf("%s", what)
	before := s.activeSeg()
	if s.rng.IntN(3) == 0 {
		// Append itself: it waits when the policy says so.
		res, err := s.l.Append(context.Background(), data, AppendOptions{LeaderEpoch: s.epoch})
		if s.rollFailed(what, err, first) {
			return nil
		}
		if err != nil {
			s.add(first, recs, sizes)
			return s.powerCut(what, err, s.appendUnc(first))
		}
		s.checkResult(what, res, first, len(recs), false)
		s.add(first, recs, sizes)
		if s.waits(before) {
			s.synced(res.LastOffset + 1)
			s.ack(res.LastOffset + 1)
		}
		return nil
	}
	res, d, err := s.l.AppendAsync(context.Background(), data, AppendOptions{LeaderEpoch: s.epoch})
	if s.rollFailed(what, err, first) {
		return nil
	}
	s.add(first, recs, sizes)
	if err != nil {
		return s.powerCut(what, err, s.appendUnc(first))
	}
	s.checkResult(what, res, first, len(recs), false)
	return s.settle(what, d, res.LastOffset+1, s.waits(before))
}

// rollFailed reports whether err is that of an append whose roll failed
// (a transient fault on the new segment's files), which wrote nothing and
// left the log working: the simulation goes on with the log as it was,
// whose next appends that fit go to the old segment, unsealed again.
func (s *crashSim) rollFailed(what string, err error, first int64) bool {
	s.t.Helper()
	if !errors.Is(err, ErrRollFailed) || errors.Is(err, ErrLogFenced) || s.failIn.Load() == 0 {
		return false
	}
	s.check(errors.Is(err, vfs.ErrInjected), "%s: %v", what, err)
	s.check(s.l.LogEndOffset() == first, "%s: the roll failed (%v), yet the log end offset is %d", what, err, s.l.LogEndOffset())
	s.logf("%s: roll failed, nothing written: %v", what, err)
	return true
}

func (s *crashSim) checkResult(what string, res AppendResult, first int64, n int, dup bool) {
	s.t.Helper()
	s.check(res.FirstOffset == first && res.LastOffset == first+int64(n)-1 && res.Records == n && res.Duplicate == dup,
		"%s: result %+v, want offsets [%d, %d], duplicate %v", what, res, first, first+int64(n)-1, dup)
}

// appendIdempotent appends a producer's next batch.
func (s *crashSim) appendIdempotent() error {
	p := s.producers[s.rng.IntN(len(s.producers))]
	return s.appendBatchOf(p, nil)
}

// appendBatchOf appends a new batch of p, or again the lost batch old.
func (s *crashSim) appendBatchOf(p *simProducer, old *simBatch) error {
	var data []byte
	var recs []simRec
	epoch, seq := p.epoch, p.nextSeq()
	if old != nil {
		data, epoch, seq = old.data, old.epoch, old.seq
		for r, err := range record.Batch(data).Records() {
			s.check(err == nil, "decoding a retried batch: %v", err)
			now := s.clock.Now().UnixMilli()
			recs = append(recs, simRec{key: bytes.Clone(r.Key), value: bytes.Clone(r.Value), ts: r.Timestamp.UnixMilli(), at: now})
		}
		recs = s.stamped(recs)
	} else {
		data, recs = s.batch(p.id, epoch, seq)
	}
	first := s.end()
	what := fmt.Sprintf("producer %d epoch %d seq %d: %d records at %d", p.id, epoch, seq, len(recs), first)
	if old != nil {
		what = "retry of lost batch: " + what
	}
	s.logf("%s", what)
	b := &simBatch{pid: p.id, epoch: epoch, seq: seq, lastSq: seq + int32(len(recs)) - 1, first: first, last: first + int64(len(recs)) - 1, data: data, appendTime: s.appendTime()}
	before := s.activeSeg()
	res, d, err := s.l.AppendAsync(context.Background(), bytes.Clone(data), AppendOptions{LeaderEpoch: s.epoch})
	s.add(first, recs, []int{len(recs)})
	p.history = append(p.history, b)
	p.update(b)
	if err != nil {
		return s.powerCut(what, err, s.appendUnc(first))
	}
	s.checkResult(what, res, first, len(recs), false)
	s.check(res.LogAppendTime == b.appendTime, "%s: log append time %d, want %d", what, res.LogAppendTime, b.appendTime)
	return s.settle(what, d, res.LastOffset+1, s.waits(before))
}

// retry sends again a batch the log's producer state remembers: a
// duplicate, answered with its offsets, and waited for as the first
// attempt was: under SyncAlways, and under SyncPeriodic when an append at
// or past it made a flush due.
func (s *crashSim) retry() error {
	p := s.producers[s.rng.IntN(len(s.producers))]
	if len(p.window) == 0 {
		return nil
	}
	b := p.window[s.rng.IntN(len(p.window))]
	return s.retryDuplicate(p, b)
}

func (s *crashSim) retryDuplicate(p *simProducer, b *simBatch) error {
	what := fmt.Sprintf("retry of producer %d epoch %d seq %d (offsets [%d, %d])", p.id, b.epoch, b.seq, b.first, b.last)
	s.logf("%s", what)
	res, d, err := s.l.AppendAsync(context.Background(), bytes.Clone(b.data), AppendOptions{LeaderEpoch: s.epoch})
	if err != nil {
		return s.powerCut(what, err, s.noUnc())
	}
	s.checkResult(what, res, b.first, int(b.last-b.first+1), true)
	s.check(res.LogAppendTime == b.appendTime, "%s: log append time %d, the first answer's %d", what, res.LogAppendTime, b.appendTime)
	return s.settle(what, d, b.last+1, s.cfg.Sync == SyncAlways || s.cfg.Sync == SyncPeriodic && b.last+1 <= s.flushDueTo)
}

// refused sends a batch the log must refuse: one of an epoch older than
// the producer's latest, or one with a gap in its sequence.
func (s *crashSim) refused() error {
	p := s.producers[s.rng.IntN(len(s.producers))]
	if len(p.window) == 0 {
		return nil
	}
	var data []byte
	var want error
	if i := slices.IndexFunc(p.history, func(b *simBatch) bool { return b.epoch < p.window[0].epoch }); i >= 0 {
		data, want = p.history[i].data, ErrProducerFenced
	} else {
		data, _ = s.batch(p.id, p.epoch, p.nextSeq()+1+int32(s.rng.IntN(3)))
		want = ErrOutOfOrderSequence
	}
	b := record.Batch(data)
	what := fmt.Sprintf("producer %d epoch %d seq %d (refused: %v)", p.id, b.ProducerEpoch(), b.BaseSequence(), want)
	s.logf("%s", what)
	end := s.l.LogEndOffset()
	_, err := s.l.Append(context.Background(), bytes.Clone(data), AppendOptions{LeaderEpoch: s.epoch})
	if s.faulted.Load() && errors.Is(err, ErrLogFenced) {
		return s.powerCut(what, err, s.noUnc())
	}
	s.check(errors.Is(err, want), "%s: %v", what, err)
	s.check(s.l.LogEndOffset() == end, "%s: the log end offset moved from %d to %d", what, end, s.l.LogEndOffset())
	return nil
}

// wait waits for a pending append's Durability.
func (s *crashSim) wait() error {
	if len(s.pending) == 0 {
		return nil
	}
	i := s.rng.IntN(len(s.pending))
	p := s.pending[i]
	s.pending = slices.Delete(s.pending, i, i+1)
	what := fmt.Sprintf("wait for %s (to %d)", p.what, p.target)
	s.logf("%s", what)
	err := p.d.Wait(context.Background())
	switch {
	case err == nil:
		s.synced(p.target)
		s.ack(p.target)
	case errors.Is(err, ErrOffsetOutOfRange) && s.truncs > p.truncs:
		s.logf("  truncated before its fsync: %v", err)
		if p.target <= s.end() {
			s.synced(p.target) // appended again: the wait fsynced them
		}
	default:
		return s.powerCut(what, err, s.noUnc())
	}
	return nil
}

func (s *crashSim) flush() error {
	target := s.end()
	s.logf("flush (to %d)", target)
	if err := s.l.Flush(context.Background()); err != nil {
		return s.powerCut("flush", err, s.noUnc())
	}
	s.synced(target)
	s.ack(target)
	return nil
}

func (s *crashSim) roll() error {
	s.logf("roll at %d", s.end())
	before := s.activeSeg()
	if err := s.l.Roll(); err != nil {
		return s.powerCut("roll", err, s.noUnc())
	}
	if s.cfg.Sync != SyncNever {
		s.ack(s.activeBase()) // the roll synced the segment it sealed
	}
	s.noteRoll(before) // none when the active segment was empty
	return nil
}

// batchEnd returns the offset after the batch based at base.
func (s *crashSim) batchEnd(base int64) int64 {
	o := base
	for o < s.end() && s.recs[o].batch == base {
		o++
	}
	return o
}

// truncate truncates to a random offset in [start, end], most often near
// the end. Whole batches go: the log must end at the batch holding it, or
// at the offset itself when no batch does (compaction removed them); or,
// when compaction emptied the offsets before that, as low as the end of
// the batch before, which segments keep as their end.
func (s *crashSim) truncate() error {
	end := s.end()
	off := end - min(s.rng.Int64N(12), end-s.start)
	if s.rng.IntN(4) == 0 {
		off = s.start + s.rng.Int64N(end-s.start+1)
	}
	lo, hi := end, end // the log end offset the truncation may leave
	if off < end {
		hi = off
		if b := s.recs[off].batch; s.present[b] {
			hi = b
		}
		lo = 0
		for o := hi - 1; o >= s.start; o-- {
			if b := s.recs[o].batch; s.present[b] {
				lo = s.batchEnd(b)
				break
			}
		}
	}
	what := fmt.Sprintf("truncate to %d (end %d, expect [%d, %d])", off, end, lo, hi)
	s.logf("%s", what)
	got, err := s.l.TruncateTo(off)
	if err != nil {
		unc := s.noUnc()
		unc.cutFrom = lo
		return s.powerCut(what, err, unc)
	}
	s.check(got >= lo && got <= hi, "%s: log end offset %d", what, got)
	if got < end {
		s.truncs++
		s.cut(got, false)
		s.durable, s.flushClaim = min(s.durable, got), min(s.flushClaim, got)
	}
	return nil
}

// cut removes the records from offset on from the model: truncated, or
// lost with a crash.
func (s *crashSim) cut(offset int64, lost bool) {
	if !lost {
		s.markSupersededCut(offset)
	}
	s.recs = s.recs[:offset]
	s.start = min(s.start, offset)
	for b := range s.present {
		if b >= offset {
			delete(s.present, b)
		}
	}
	for _, p := range s.producers {
		p.dropFrom(offset)
		for _, b := range p.history {
			if b.state == batchLive && b.first >= offset {
				b.state = map[bool]simBatchState{false: batchTruncated, true: batchLost}[lost]
			}
		}
	}
}

// markSupersededCut marks, for each record from offset on that a
// compaction pass may have used (begun after its append), the earlier
// records of its key: that pass may have removed them, and the record that
// stood for them goes now.
func (s *crashSim) markSupersededCut(offset int64) {
	for _, p := range s.recs[offset:] {
		if p.compactions == s.compactions || p.key == nil {
			continue
		}
		for _, r := range s.recs[:offset] {
			if bytes.Equal(r.key, p.key) && r.key != nil {
				r.mayBeGone = true
			}
		}
	}
}

func (s *crashSim) deleteRecords() error {
	off := s.start + min(s.rng.Int64N(10), s.end()-s.start)
	if s.rng.IntN(4) == 0 {
		off = s.start + s.rng.Int64N(s.end()-s.start+1)
	}
	what := fmt.Sprintf("delete records before %d", off)
	s.logf("%s", what)
	got, err := s.l.DeleteRecordsBefore(context.Background(), off)
	if err != nil {
		unc := s.noUnc()
		unc.startMax = max(off, s.start)
		return s.powerCut(what, err, unc)
	}
	s.check(got == max(off, s.start), "%s: log start offset %d (was %d)", what, got, s.start)
	s.setStart(got)
	return nil
}

// setStart moves the model's log start offset. The producers' windows
// keep their batches below it: the log's state keeps them until the
// producer expires, as Kafka's since KIP-360.
func (s *crashSim) setStart(start int64) {
	s.start = start
}

// retentionMax is where retention at this moment may move the log start
// offset to, at most: the first record it holds that is not older than
// retention.ms (whole segments go, and only those whose records are all
// older).
func (s *crashSim) retentionMax() int64 {
	if s.cfg.CleanupPolicy&Delete == 0 {
		return s.start
	}
	cutoff := s.clock.Now().UnixMilli() - s.cfg.RetentionTime.Milliseconds()
	for o := s.start; o < s.end(); o++ {
		if r := s.recs[o]; !r.gone && r.ts >= cutoff {
			return o
		}
	}
	return s.end()
}

func (s *crashSim) retention() error {
	s.clock.Advance(time.Duration(s.rng.IntN(10)) * time.Minute)
	startMax := s.retentionMax()
	what := fmt.Sprintf("retention (start %d, at most %d)", s.start, startMax)
	s.logf("%s", what)
	before := s.activeSeg()
	if _, err := s.l.ApplyRetention(context.Background()); err != nil {
		unc := s.noUnc()
		unc.startMax = startMax
		return s.powerCut(what, err, unc)
	}
	s.noteRoll(before) // retention rolls a log all of whose segments expired
	s.observe(what, startMax)
	return nil
}

// beginCompaction counts a compaction pass about to begin.
func (s *crashSim) beginCompaction() {
	if s.compacted() {
		s.compactions++
		s.lastCompactAt = s.clock.Now().UnixMilli()
	}
}

func (s *crashSim) compact() error {
	s.logf("compact")
	s.beginCompaction()
	res, err := s.l.Compact(context.Background())
	if err != nil {
		return s.powerCut("compact", err, s.noUnc())
	}
	s.logf("  %+v", res)
	s.observe("compact", s.start)
	return nil
}

func (s *crashSim) maintain() error {
	s.clock.Advance(time.Duration(s.rng.IntN(10)) * time.Minute)
	startMax := s.retentionMax()
	what := fmt.Sprintf("maintain (start %d, at most %d)", s.start, startMax)
	s.logf("%s", what)
	s.beginCompaction()
	before := s.activeSeg()
	if err := s.l.Maintain(context.Background()); err != nil {
		unc := s.noUnc()
		unc.startMax = startMax
		return s.powerCut(what, err, unc)
	}
	// Under SyncPeriodic, after its retention (whose roll is a flush),
	// Maintain makes a flush due when flush.ms has passed since the last
	// one, to the log end, and runs it: once Maintain returned, the
	// records it covered are durable, and the next crash must keep them.
	s.noteRoll(before)
	if s.cfg.Sync == SyncPeriodic && s.flushMSDue() {
		s.logf("  flush.ms flush (to %d)", s.end())
		s.countFlushMS(&flushMSStats.maintains)
		s.lastFlush, s.flushClaim = s.now(), max(s.flushClaim, s.end())
		s.synced(s.end())
		s.ack(s.end())
	}
	// The recovery point is at least the durable offset (a roll that
	// synced the segment it sealed moves it to the new segment's base,
	// without moving the durable offset), and never past the log end —
	// unless the disk died under Maintain: a recovery-point write that
	// fails inside an fsync is logged, not returned (it costs a longer
	// scan at Open, no data).
	rp, err := readOffset(s.mem, crashDir, recoveryPointFile, 0)
	s.check(err == nil && (rp >= s.l.DurableOffset() || s.failIn.Load() == 0 || s.faulted.Load()) && rp <= s.l.LogEndOffset(),
		"%s: recovery point %d (%v), durable offset %d, log end offset %d", what, rp, err, s.l.DurableOffset(), s.l.LogEndOffset())
	s.observe(what, startMax)
	return nil
}

// reopen closes the log cleanly (which makes everything durable) and
// opens it again: nothing may change.
func (s *crashSim) reopen() error {
	s.logf("close")
	if err := s.l.fenceErr(); err != nil && s.faulted.Load() {
		return s.powerCut("close of a fenced log", err, s.noUnc())
	}
	if err := s.l.Close(); err != nil {
		return s.powerCut("close", err, s.noUnc())
	}
	s.ack(s.end())
	for _, p := range s.pending {
		err := p.d.Wait(context.Background())
		s.check(err == nil || errors.Is(err, ErrOffsetOutOfRange) && s.truncs > p.truncs,
			"wait for %s after Close: %v", p.what, err)
	}
	s.pending = nil
	s.logf("open")
	l, err := s.openLog(s.mem)
	if err != nil {
		s.l = nil
		return s.powerCut("open after a clean close", err, s.noUnc())
	}
	s.l = l
	s.durable, s.flushDueTo, s.flushClaim, s.lastFlush = s.end(), 0, 0, s.now()
	// A write that failed (a transient fault) may have left its .tmp file,
	// which Open removes, and then scans the log as after a crash.
	s.check(l.Recovery().Clean || s.faulted.Load(), "reopened after a clean close, recovery %+v", l.Recovery())
	s.observe("reopen", s.start)
	return nil
}

// observe reads the whole log and checks it against the model, outside a
// crash: the same end and records, the log start offset in [start,
// startMax], and offsets missing only as compaction removes them. The
// model learns which records and batches compaction removed.
func (s *crashSim) observe(what string, startMax int64) {
	// Reads work even if the disk is dying: the power cut comes next.
	defer s.failIn.Store(s.failIn.Load())
	s.failIn.Store(-1)
	start, end := s.l.LogStartOffset(), s.l.LogEndOffset()
	s.check(end == s.end(), "%s: log end offset %d, want %d", what, end, s.end())
	s.check(start >= s.start && start <= startMax, "%s: log start offset %d, want [%d, %d]", what, start, s.start, startMax)
	// Retention moves it to a segment's base.
	if start != s.start && start != end {
		s.check(s.recs[start].batch == start, "%s: log start offset %d inside the batch at %d", what, start, s.recs[start].batch)
	}
	s.compare(what, start, end)
	s.setStart(start)
}

// compare reads the log from start to end and checks it against the
// model; then records the records and batches missing as gone.
func (s *crashSim) compare(what string, start, end int64) ([]record.Batch, []*record.Record, map[int64]*record.Record) {
	batches, recs := readBatches(s.t, s.l, start)
	got := make(map[int64]*record.Record, len(recs))
	for _, r := range recs {
		s.check(r.Offset >= start && r.Offset < end, "%s: record at %d outside [%d, %d)", what, r.Offset, start, end)
		m := s.recs[r.Offset]
		s.check(m.is(r), "%s: offset %d holds %q=%q ts %d, never appended there (model: %q=%q ts %d)",
			what, r.Offset, r.Key, r.Value, r.Timestamp.UnixMilli(), m.key, m.value, m.ts)
		s.check(!m.gone, "%s: offset %d: compacted away, and back", what, r.Offset)
		got[r.Offset] = r
	}
	for o := start; o < end; o++ {
		if got[o] == nil {
			s.checkRemovable(what, o, got, start, end)
		}
	}
	for o := start; o < end; o++ {
		s.recs[o].gone = got[o] == nil
	}
	clear(s.present)
	for _, b := range batches {
		s.present[b.BaseOffset()] = true
	}
	return batches, recs, got
}

// checkRemovable checks that the record at o, missing from the log, is
// one compaction may remove: a later record of its key lies in [o, end)
// (whose own absence is checked in turn), or a compaction pass may have
// used one truncated since, or it is the key's latest, a tombstone, and a
// pass began delete.retention.ms after it was appended — and then no
// earlier record of its key is left.
func (s *crashSim) checkRemovable(what string, o int64, got map[int64]*record.Record, start, end int64) {
	m := s.recs[o]
	s.check(s.compacted() && s.compactions > 0, "%s: offset %d (%q=%q) missing, below the log end offset %d (start %d)",
		what, o, m.key, m.value, end, start)
	if m.mayBeGone {
		return
	}
	for p := o + 1; p < end; p++ {
		if bytes.Equal(s.recs[p].key, m.key) {
			return
		}
	}
	s.check(m.value == nil && s.lastCompactAt >= m.at+s.cfg.DeleteRetentionTime.Milliseconds(),
		"%s: offset %d (%q=%q), the latest of its key, missing (last compaction at %d, appended at %d)",
		what, o, m.key, m.value, s.lastCompactAt, m.at)
	for q := start; q < o; q++ {
		s.check(got[q] == nil || !bytes.Equal(s.recs[q].key, m.key),
			"%s: the tombstone at %d is gone but the record at %d of its key %q is still there", what, o, q, m.key)
	}
}

// crash cuts the power, takes what the disk keeps, opens the log on it
// (with now and then another power cut during Open), checks it, and
// retries what each producer did not see acknowledged.
func (s *crashSim) crash() {
	s.crashes++
	s.ops++
	s.disarmFault()
	clone := s.mem.CrashClone(s.crashOptions())
	if s.l != nil {
		s.failIn.Store(0) // the old log writes nothing more
		s.l.Close()
		s.l = nil
	}
	s.failIn.Store(-1)
	s.faulted.Store(false)
	s.ckptFaulted.Store(false)
	s.pending = nil
	for tries := 0; ; tries++ {
		s.mem = clone
		if tries < 2 && s.rng.IntN(4) == 0 {
			k := s.rng.Int64N(30)
			s.logf("open, the disk dying after %d file-system operations", k)
			s.failIn.Store(k)
			l, err := s.openLog(s.mem)
			s.failIn.Store(-1)
			if err == nil {
				s.l = l
				break
			}
			s.check(errors.Is(err, vfs.ErrInjected), "open after a crash: %v", err)
			clone = s.mem.CrashClone(s.crashOptions())
			continue
		}
		s.logf("open")
		if s.stale.IntN(8) == 0 {
			if l := s.openStale(); l != nil {
				s.l = l
				break
			}
		}
		l, err := s.openLog(s.mem)
		s.check(err == nil, "open after a crash (during %q): %v", s.unc.op, err)
		s.l = l
		break
	}
	s.afterOpen("after the crash", -1)
}

// afterOpen checks the log Open made, after a crash, or in the same boot
// (keepTo >= 0: the offsets below it must be there, see
// simUncertain.keepTo), makes the model what the log kept, and retries
// what each producer did not see acknowledged.
func (s *crashSim) afterOpen(what string, keepTo int64) {
	s.flushDueTo, s.flushClaim, s.lastFlush = 0, 0, s.now()
	s.checkCrashed(what, keepTo)
	s.durable = s.end() // checkCrashed made the model what Open kept
	s.checkRecoveryInfo(s.l.Recovery())
	s.checkProducerState(what)
	s.unc = simUncertain{cutFrom: -1}
	s.retryAfterCrash()
	// The log takes appends again, and reads them back.
	if err := s.appendPlain(); err != nil {
		s.fatalf("append %s: %v", what, err)
	}
	s.observe("append "+what, s.start)
}

// openStale puts a clean-shutdown marker back beside what the crash
// left, as an older marker copied with the directory would be, and opens
// the log: in three cases out of four, one that records what a clean
// Close of the files as they are would have (forgeCleanMarker), whose
// end is the recovery point on disk; else an older runnel's empty one. Whatever it opens is checked as after a crash: a stale marker
// must neither lose acknowledged records nor serve lost ones. Open may
// refuse it with record.ErrCorrupt where the segments end below the
// recovery point (a crash during a truncation, which lowers the recovery
// point after the cut): loss that a marker cannot tell from a stale one.
// The marker then goes, and openStale returns nil.
func (s *crashSim) openStale() *Log {
	marker := filepath.Join(crashDir, cleanShutdownFile)
	if s.stale.IntN(4) == 0 {
		writeMemFile(s.t, s.mem, marker, nil)
		if err := s.mem.SyncDir(crashDir); err != nil {
			s.fatalf("putting a stale marker back: %v", err)
		}
		s.logf("an older runnel's stale clean-shutdown marker put back")
	} else {
		forgeCleanMarker(s.t, s.mem, crashDir)
		s.logf("a stale clean-shutdown marker put back")
	}
	l, err := s.openLog(s.mem)
	if err == nil {
		s.staleOpened = true
		return l
	}
	s.check(errors.Is(err, record.ErrCorrupt), "open after a crash with a stale marker (during %q): %v", s.unc.op, err)
	s.logf("  refused: %v", err)
	if err := s.mem.Remove(marker); err != nil {
		s.fatalf("removing the stale marker: %v", err)
	}
	if err := s.mem.SyncDir(crashDir); err != nil {
		s.fatalf("removing the stale marker: %v", err)
	}
	return nil
}

func (s *crashSim) crashOptions() vfs.CrashOptions {
	opts := vfs.CrashOptions{Tail: crashTails[s.rng.IntN(len(crashTails))], Reorder: s.rng.IntN(2) == 0,
		Rand: rand.New(rand.NewPCG(s.rng.Uint64(), s.rng.Uint64()))}
	s.logf("crash (%s tail, reorder %v; interrupted: %q)", opts.Tail, opts.Reorder, s.unc.op)
	return opts
}

// checkCrashed checks the log Open made of a crash (or, keepTo >= 0, in
// the same boot: see afterOpen) against the model, then makes the model
// what the log kept.
func (s *crashSim) checkCrashed(what string, keepTo int64) {
	l := s.l
	start, end := l.LogStartOffset(), l.LogEndOffset()
	info := l.Recovery()
	info.Duration = 0 // a replay logs the same lines
	s.logf("  opened: start %d, end %d (model %d, %d), %+v", start, end, s.start, s.end(), info)
	s.check(end <= s.end(), "%s: log end offset %d past the %d offsets appended", what, end, s.end())
	if keepTo >= 0 {
		if s.unc.cutFrom >= 0 {
			keepTo = min(keepTo, s.unc.cutFrom)
		}
		s.check(end >= keepTo, "%s: log end offset %d, below the %d offsets appended before the failure (no crash came)", what, end, keepTo)
	}
	s.check(l.DurableOffset() == end, "%s: durable offset %d, log end offset %d", what, l.DurableOffset(), end)
	for o, r := range s.recs[end:] {
		off := end + int64(o)
		s.check(!r.acked || s.unc.cutFrom >= 0 && off >= s.unc.cutFrom,
			"%s: acknowledged offset %d (%q=%q) lost: the log ends at %d", what, off, r.key, r.value, end)
	}
	// The log start offset never comes down to a lower log end: Open
	// then empties the log and starts it at the log start offset, as
	// Kafka's log loading does (only a truncation the power cut
	// interrupted may have lowered it).
	lo, hi := s.start, max(s.start, s.unc.startMax)
	if s.unc.cutFrom >= 0 {
		lo = min(lo, s.unc.cutFrom)
	}
	s.check(start >= lo && start <= hi && start <= end, "%s: log start offset %d, want [%d, %d] and at most the log end offset %d", what, start, lo, hi, end)
	if s.unc.cutFrom >= 0 {
		// The truncation the power cut interrupted may have happened.
		s.markSupersededCut(max(end, s.unc.cutFrom))
	}

	batches, recs, got := s.compare(what, start, end)
	for o := start; o < end; o++ {
		if r := s.recs[o]; r.acked && got[o] == nil {
			s.logf("  acknowledged offset %d compacted away", o)
		}
	}
	segs := scanSegmentFiles(s.t, s.mem, crashDir)
	checkIndexes(s.t, l, segs, batches, recs, start, end)
	epochs := l.LeaderEpochs()
	for i, e := range epochs {
		s.check(e.StartOffset <= end && (i == 0 || e.Epoch > epochs[i-1].Epoch && e.StartOffset >= epochs[i-1].StartOffset),
			"%s: leader epochs %v (log end offset %d)", what, epochs, end)
	}

	// The model follows: the tail past end was lost, the log start offset
	// is where it is, and whatever Open kept is durable.
	s.cut(end, true)
	s.setStart(start)
	// A producer's batches below the log start stay in its state only as
	// far as a snapshot at or above the start holds them (the one at the
	// start's segment may have been pruned): the model is sure of none.
	for _, p := range s.producers {
		p.dropBefore(start)
		// A batch that holds the log end offset is not in the log: a log
		// ends where a batch ends, but one Open emptied because the crash
		// left its end below the log start offset starts anew there,
		// without that batch's part at and past it, and without any
		// producer's state. The producer retries it.
		for _, b := range p.window {
			if b.last >= end {
				b.state = batchLost
			}
		}
		p.window = slices.DeleteFunc(p.window, func(b *simBatch) bool { return b.last >= end })
	}
	s.ack(end)
}

// retryAfterCrash plays each producer after the crash: the batches its
// log state must remember that survived are retried and must be
// duplicates; the batches lost are sent again, in order, and appended.
func (s *crashSim) retryAfterCrash() {
	for _, p := range s.producers {
		for _, b := range slices.Clone(p.window) {
			if err := s.retryDuplicate(p, b); err != nil {
				s.fatalf("retry after the crash: %v", err)
			}
		}
		for _, b := range slices.Clone(p.history) {
			if b.state != batchLost {
				continue
			}
			b.state = batchRetried
			if err := s.appendBatchOf(p, b); err != nil {
				s.fatalf("retry after the crash: %v", err)
			}
		}
	}
}
