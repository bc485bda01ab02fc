// A randomized differential test of multi-segment logs, the sibling of
// TestParityRandomized (parity_random_test.go), whose logs are one segment
// each: small segment.bytes, segment.ms and segment.index.bytes (with
// index.interval.bytes) roll segments, retention.ms and
// retention.bytes delete them, and ListOffsets by time, MAX_TIMESTAMP,
// DeleteRecords and fetches run across them, on records stamped out of
// order (CreateTime) or by the broker's clock (LogAppendTime). runnel's
// broker runs on a stepped clock (runnel.Config.Clock), and
// is compared with a model of Kafka's broker (UnifiedLog, LocalLog,
// LogSegment) on the same clock. kfake has no clock to step and no
// segments of Kafka's kind, so it is not compared here: the model alone
// decides.
//
// The default run is short; RUNNEL_PARITY_OPS, RUNNEL_PARITY_RUNS and
// RUNNEL_PARITY_SEED set a long one, as for TestParityRandomized:
//
//	RUNNEL_PARITY_RUNS=300 RUNNEL_PARITY_OPS=1000 RUNNEL_PARITY_SEED=random go test -run TestParitySegments .
//
// The clock is the seed's, so a failure repeats exactly with
// RUNNEL_PARITY_SEED=<seed> RUNNEL_PARITY_RUNS=1.

package peers

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"go.uber.org/goleak"
)

// stepClock is a clock that moves only when the test moves it.
type stepClock struct{ ms atomic.Int64 }

// Now returns the clock's time.
func (c *stepClock) Now() time.Time { return time.UnixMilli(c.ms.Load()) }

// TestParitySegments runs random operation sequences on multi-segment
// logs against the model of Kafka (see the file's comment).
func TestParitySegments(t *testing.T) { paritySeeds(t, 400, runSegments) }

// scfg is a topic's config in this test.
type scfg struct {
	segBytes int64 // segment.bytes
	segMs    int64 // segment.ms; -1: never
	retMs    int64 // retention.ms; -1: unlimited
	retBytes int64 // retention.bytes; -1: unlimited
	lat      bool  // message.timestamp.type=LogAppendTime
	// segment.index.bytes and index.interval.bytes, set at creation only
	// (Kafka sizes a segment's indexes and fixes its interval when it
	// creates the segment; runnel's reopen for a config change would apply
	// them to the active segment at once).
	idxBytes, idxInterval int
	// The compaction configs (parity_compact_test.go): cleanup.policy
	// compact or compact,delete (neither: delete), delete.retention.ms,
	// min.compaction.lag.ms and max.compaction.lag.ms (0: none) and
	// min.cleanable.dirty.ratio.
	compact, compactDelete bool
	delRetMs               int64
	minLagMs, maxLagMs     int64
	ratio                  float64
	// sync is the fsync policy (SyncDefault: SyncAlways), flushMsgs
	// flush.messages for SyncPeriodic: Kafka's are flush.messages and
	// flush.ms, which a single broker's answers do not show.
	sync      log.SyncPolicy
	flushMsgs int64
}

func (c scfg) String() string {
	out := fmt.Sprintf("segment.bytes=%d segment.ms=%d retention.ms=%d retention.bytes=%d LogAppendTime=%t segment.index.bytes=%d index.interval.bytes=%d",
		c.segBytes, c.segMs, c.retMs, c.retBytes, c.lat, c.idxBytes, c.idxInterval)
	if c.compacted() {
		out += fmt.Sprintf(" compact=%t delete=%t delete.retention.ms=%d min.compaction.lag.ms=%d max.compaction.lag.ms=%d min.cleanable.dirty.ratio=%g",
			c.compact || c.compactDelete, c.deletes(), c.delRetMs, c.minLagMs, c.maxLagMs, c.ratio)
	}
	if c.sync != log.SyncDefault {
		out += fmt.Sprintf(" sync=%s flush.messages=%d", c.sync, c.flushMsgs)
	}
	return out
}

// compacted reports whether cleanup.policy has compact.
func (c scfg) compacted() bool { return c.compact || c.compactDelete }

// deletes reports whether cleanup.policy has delete.
func (c scfg) deletes() bool { return !c.compact || c.compactDelete }

// rollMs is LogConfig.maxSegmentMs: segment.ms, or max.compaction.lag.ms
// if shorter on a compacted log (KIP-354); -1: never.
func (c scfg) rollMs() int64 {
	if c.compacted() && c.maxLagMs > 0 && (c.segMs <= 0 || c.maxLagMs < c.segMs) {
		return c.maxLagMs
	}
	return c.segMs
}

// logConfig sets c's fields on runnel's config.
func (c scfg) logConfig(lc *log.Config) {
	lc.SegmentBytes = c.segBytes
	lc.SegmentTime = -1
	if c.segMs > 0 {
		lc.SegmentTime = time.Duration(c.segMs) * time.Millisecond
	}
	lc.RetentionTime = -1
	if c.retMs >= 0 {
		lc.RetentionTime = time.Duration(c.retMs) * time.Millisecond
	}
	lc.RetentionBytes = max(0, c.retBytes)
	lc.SegmentIndexBytes = c.idxBytes
	lc.IndexIntervalBytes = max(1, c.idxInterval) // Kafka's 0 is runnel's 1 (log.Config)
	lc.CleanupPolicy = topicSpec{compact: c.compact, compactDelete: c.compactDelete}.runnelConfig().CleanupPolicy
	if lc.CleanupPolicy == 0 {
		lc.CleanupPolicy = log.Delete
	}
	lc.DeleteRetentionTime = time.Duration(c.delRetMs) * time.Millisecond
	if c.delRetMs == 0 {
		lc.DeleteRetentionTime = -1 // zero (log.Config)
	}
	lc.MinCompactionLag = time.Duration(c.minLagMs) * time.Millisecond
	lc.MaxCompactionLag = -1
	if c.maxLagMs > 0 {
		lc.MaxCompactionLag = time.Duration(c.maxLagMs) * time.Millisecond
	}
	lc.MinCleanableDirtyRatio = c.ratio
	if c.ratio == 0 {
		lc.MinCleanableDirtyRatio = -1 // zero (log.Config)
	}
	lc.Sync, lc.FlushMessages = c.sync, c.flushMsgs
	lc.TimestampType = log.CreateTime
	if c.lat {
		lc.TimestampType = log.LogAppendTime
	}
}

// sseg is a modelled segment (LogSegment).
type sseg struct {
	base    int64
	batches []mbatch
	size    int64
	created int64 // LogSegment.created: the clock when made or loaded
	written int64 // its .log file's modification time: the clock at its last write
	// LogSegment's index bookkeeping: bytesSinceLastIndexEntry, the
	// entries of its offset and time indexes, and the time index's last
	// timestamp (TimeIndex.maybeAppend adds only a larger one).
	bytesSince              int
	offEntries, timeEntries int
	lastTimeTS              int64
}

// appendBatch is LogSegment.append of one batch: the max timestamp so
// far first (this batch's too), then an index entry if more than interval
// (index.interval.bytes) bytes passed since the last (never for a
// segment's first batch).
func (g *sseg) appendBatch(b mbatch, interval int) {
	g.batches = append(g.batches, b)
	if g.bytesSince > interval {
		g.offEntries++
		if m := g.maxTS(); m > g.lastTimeTS {
			g.timeEntries++
			g.lastTimeTS = m
		}
		g.bytesSince = 0
	}
	g.bytesSince += b.size
	g.size += int64(b.size)
}

// finalTimeEntry adds the max timestamp so far to a segment's time index
// as it becomes inactive or closes (TimeIndex.maybeAppend with
// skipFullCheck: only a larger one than its last entry's), and reports
// whether it did.
func (g *sseg) finalTimeEntry() bool {
	if m := g.maxTS(); g.size > 0 && m > g.lastTimeTS {
		g.timeEntries++
		g.lastTimeTS = m
		return true
	}
	return false
}

// maxTS is the segment's maxTimestampSoFar: -1 until a batch stamped 0 or
// later (LogSegment.append keeps the largest batch max timestamp).
func (g *sseg) maxTS() int64 {
	top := int64(-1)
	for _, b := range g.batches {
		top = max(top, b.maxTS)
	}
	return top
}

// largestTimestamp is LogSegment.largestTimestamp: maxTimestampSoFar, or
// the file's modification time when it is below 0.
func (g *sseg) largestTimestamp() int64 {
	if m := g.maxTS(); m >= 0 {
		return m
	}
	return g.written
}

// spart is a modelled one-partition topic (UnifiedLog over LocalLog).
type spart struct {
	cfg           scfg
	segs          []*sseg
	logStart, end int64
	// cleanedTo is the cleaner's checkpoint (parity_compact_test.go), and
	// prods the idempotent producers' state by producer id.
	cleanedTo int64
	prods     map[int64]*sprod
}

// bases is the segments' base offsets.
func (p *spart) bases() []int64 {
	out := make([]int64, len(p.segs))
	for i, g := range p.segs {
		out[i] = g.base
	}
	return out
}

func (p *spart) active() *sseg { return p.segs[len(p.segs)-1] }

func (p *spart) size() int64 {
	var n int64
	for _, g := range p.segs {
		n += g.size
	}
	return n
}

func (p *spart) dump() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nmodel (%s): log start %d, end %d", p.cfg, p.logStart, p.end)
	for _, g := range p.segs {
		fmt.Fprintf(&b, "\n  segment %d (%d bytes, created %d, written %d, max ts %d):", g.base, g.size, g.created, g.written, g.maxTS())
		for _, bt := range g.batches {
			fmt.Fprintf(&b, " [%d-%d %dB", bt.base, bt.last, bt.size)
			for _, r := range bt.recs {
				fmt.Fprintf(&b, " %d", r.TS)
			}
			b.WriteString("]")
		}
	}
	return b.String()
}

// sstate is one run.
type sstate struct {
	t      *testing.T
	ctx    context.Context
	rng    *rand.Rand
	clock  *stepClock
	b      *runnel.Broker
	cfg    runnel.Config
	topics map[string]*spart
	op     int
	desc   string
	known  map[string]int
	// compaction: a run of TestParityCompaction, with its producer ids.
	compaction bool
	// stepBack: the clock also steps backwards (an NTP step, a VM
	// restored), a third of its steps (TestParityClockSteps).
	stepBack bool
	pids     []int64
}

var segTopics = []string{"s0", "s1"}

func runSegments(t *testing.T, seed uint64, ops int, known map[string]int) {
	runSegmentsMode(t, seed, ops, known, false, false)
}

// TestParityClockSteps is TestParitySegments and TestParityCompaction on a
// clock that steps backwards too (an NTP step, a VM restored, a laptop
// waking), by a millisecond to eight days, among appends, rolls by
// segment.ms, retention.ms, compaction's lags and delete horizons,
// config changes and restarts: the model's Kafka takes each step as its
// wall clock (time.milliseconds) would. The default run is short; the
// RUNNEL_PARITY_* variables set a long one, as for the others:
//
//	RUNNEL_PARITY_RUNS=400 RUNNEL_PARITY_OPS=1500 go test -run TestParityClockSteps .
func TestParityClockSteps(t *testing.T) {
	t.Run("segments", func(t *testing.T) {
		paritySeeds(t, 400, func(t *testing.T, seed uint64, ops int, known map[string]int) {
			runSegmentsMode(t, seed, ops, known, false, true)
		})
	})
	t.Run("compaction", func(t *testing.T) {
		paritySeeds(t, 300, func(t *testing.T, seed uint64, ops int, known map[string]int) {
			runSegmentsMode(t, seed, ops, known, true, true)
		})
	})
}

// runSegmentsMode is a run of TestParitySegments, or with compaction set
// one of TestParityCompaction (parity_compact_test.go); with stepBack,
// one of TestParityClockSteps.
func runSegmentsMode(t *testing.T, seed uint64, ops int, known map[string]int, compaction, stepBack bool) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(ops)*100*time.Millisecond+20*time.Second)
	t.Cleanup(cancel)
	clock := &stepClock{}
	clock.ms.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
	cfg := runnel.Config{Dir: "/data", FS: vfs.NewMem(), MaintenanceInterval: time.Hour, Clock: clock}
	// The model is Kafka's log with message.timestamp.after.max.ms
	// unlimited (its default before 4.0): it stamps records ahead of the
	// clock, and steps the clock back past records it holds, whose
	// retries it then sends again.
	cfg.TopicDefaults.TimestampAfterMax = -1
	if os.Getenv("RUNNEL_PARITY_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if compaction {
		// The model's Kafka never expires a producer id (runnel counts
		// producer.id.expiration.ms from the last append, Kafka from the
		// last batch's timestamp).
		cfg.ProducerIDExpiration = -1
		if seed%3 == 0 {
			// A key map of a few keys: passes that end where it fills.
			cfg.CleanerMapBytes = []int64{48, 72, 96, 120, 240}[seed/3%5]
		}
	}
	b, err := runnel.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &sstate{t: t, ctx: ctx, rng: rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d)), clock: clock,
		b: b, cfg: cfg, topics: map[string]*spart{}, known: known, compaction: compaction, stepBack: stepBack}
	t.Cleanup(func() {
		if err := s.b.Close(); err != nil {
			t.Error(err)
		}
	})
	trace := os.Getenv("RUNNEL_PARITY_TRACE") != ""
	for s.op = 0; s.op < ops && !t.Failed(); s.op++ {
		s.step()
		if trace {
			t.Logf("op %d: %s", s.op, s.desc)
		}
	}
}

// runnelSegments is the base offsets of the segments of runnel's log of
// topic's partition 0, from the names of its .log files.
func (s *sstate) runnelSegments(topic string) []int64 {
	names, err := s.cfg.FS.List(s.cfg.Dir + "/" + topic + "-0")
	if err != nil {
		s.t.Fatalf("op %d: %v", s.op, err)
	}
	var out []int64
	for _, n := range names {
		if base, ok := strings.CutSuffix(n, ".log"); ok {
			b, err := strconv.ParseInt(base, 10, 64)
			if err != nil {
				s.t.Fatalf("op %d: segment file %s: %v", s.op, n, err)
			}
			out = append(out, b)
		}
	}
	return out
}

func (s *sstate) now() int64 { return s.clock.ms.Load() }

// checkAppended checks a produce's answer against Kafka's for a batch
// appended (not a duplicate) at p's end: the base offset, the log start,
// and the append time, the broker's clock on a LogAppendTime topic and
// -1 otherwise.
func (s *sstate) checkAppended(p *spart, resp api.ProduceResponse) {
	wantLAT := int64(-1)
	if p.cfg.lat {
		wantLAT = s.now()
	}
	if resp.BaseOffset != p.end || resp.LogStartOffset != p.logStart || resp.LogAppendTime != wantLAT || resp.Duplicate {
		s.fail(p, "runnel base offset %d log start %d log append time %d duplicate %t, Kafka %d, %d, %d, false", resp.BaseOffset, resp.LogStartOffset, resp.LogAppendTime, resp.Duplicate, p.end, p.logStart, wantLAT)
	}
}

func (s *sstate) fail(p *spart, format string, args ...any) {
	s.t.Helper()
	d := ""
	if p != nil {
		d = p.dump()
	}
	s.t.Errorf("op %d (%s): %s%s", s.op, s.desc, fmt.Sprintf(format, args...), d)
}

func (s *sstate) knownDivergence(what string) { s.known["runnel diverges: "+what]++ }

func (s *sstate) step() {
	if s.compaction {
		s.compactStep()
		return
	}
	switch r := s.rng.IntN(100); {
	case r < 4 || len(s.topics) == 0:
		s.createTopic()
	case r < 5:
		s.deleteTopic()
	case r < 8:
		s.alterConfig()
	case r < 40:
		s.produce()
	case r < 50:
		s.advance()
	case r < 64:
		s.fetch()
	case r < 82:
		s.listOffsets()
	case r < 87:
		s.deleteRecords()
	case r < 98:
		s.retention()
	default:
		s.restart()
	}
}

func (s *sstate) genConfig() scfg {
	c := scfg{
		segBytes:    []int64{14, 150, 300, 600, 1500, 1 << 20}[s.rng.IntN(6)],
		segMs:       []int64{-1, -1, 60 * 1000, 3600 * 1000, 24 * 3600 * 1000}[s.rng.IntN(5)],
		retMs:       []int64{-1, 0, 3600 * 1000, 24 * 3600 * 1000, 3 * 24 * 3600 * 1000}[s.rng.IntN(5)],
		retBytes:    []int64{-1, -1, 1, 200, 800, 3000}[s.rng.IntN(6)],
		lat:         s.rng.IntN(5) == 0,
		idxBytes:    []int{10 << 20, 10 << 20, 12, 24, 40, 100}[s.rng.IntN(6)],
		idxInterval: []int{4096, 4096, 0, 100, 300}[s.rng.IntN(5)],
	}
	if s.compaction {
		s.genCompaction(&c)
	}
	return c
}

func (s *sstate) createTopic() {
	name := segTopics[s.rng.IntN(len(segTopics))]
	cfg := s.genConfig()
	s.desc = fmt.Sprintf("create %s %s", name, cfg)
	tc := log.TopicConfig{Partitions: 1}
	cfg.logConfig(&tc.Config)
	if cfg.retMs == 0 {
		tc.RetentionTime = time.Nanosecond // retention.ms=0 (log.Config)
	}
	err := s.b.CreateTopic(s.ctx, name, tc)
	if s.topics[name] != nil {
		if api.Code(err) != codeTopicExists {
			s.fail(nil, "runnel code %d, Kafka %d", api.Code(err), codeTopicExists)
		}
		return
	}
	if err != nil {
		s.fail(nil, "runnel: %v", err)
		return
	}
	now := s.now()
	s.topics[name] = &spart{cfg: cfg, segs: []*sseg{{created: now, written: now, lastTimeTS: -1}}}
}

func (s *sstate) deleteTopic() {
	name := segTopics[s.rng.IntN(len(segTopics))]
	s.desc = "delete " + name
	want := codeNone
	if s.topics[name] == nil {
		want = codeUnknownTopic
	}
	if rc := api.Code(s.b.DeleteTopic(s.ctx, name)); rc != want {
		s.fail(nil, "runnel code %d, Kafka %d", rc, want)
	}
	delete(s.topics, name)
}

// alterConfig changes segment.bytes, segment.ms, retention.ms or
// retention.bytes. Kafka changes a log's config in place
// (UnifiedLog.updateConfig): the segments, and the active one's created
// time, stay as they are.
func (s *sstate) alterConfig() {
	name := segTopics[s.rng.IntN(len(segTopics))]
	p := s.topics[name]
	if p == nil {
		return
	}
	cfg, next := p.cfg, s.genConfig()
	fields := 5
	if s.compaction {
		fields = 12
	}
	switch s.rng.IntN(fields) {
	case 0:
		cfg.segBytes = next.segBytes
	case 1:
		cfg.segMs = next.segMs
	case 2:
		cfg.retMs = next.retMs
	case 3:
		cfg.retBytes = next.retBytes
	case 4:
		cfg.lat = !cfg.lat
	default:
		s.alterCompaction(&cfg, next)
	}
	s.desc = fmt.Sprintf("alter %s %s", name, cfg)
	err := s.b.UpdateTopicConfig(s.ctx, name, func(c *log.Config) {
		cfg.logConfig(c)
		if cfg.retMs == 0 {
			c.RetentionTime = time.Nanosecond
		}
	})
	if err != nil {
		s.fail(p, "runnel: %v", err)
	}
	if cfg != p.cfg && p.closeActive() && p.cfg.idxBytes < 10<<20 {
		// runnel reopens the log for the change, which closes the active
		// segment as a restart does (docs/details.md); with the default
		// segment.index.bytes no roll can tell.
		s.knownDivergence("a config change reopens the log: the active segment's time index gets its final entry and its index byte count starts over, as at a restart (Kafka changes the config in place)")
	}
	if (cfg.idxBytes != p.cfg.idxBytes || cfg.idxInterval != p.cfg.idxInterval) && p.active().size > 0 {
		// The model's active segment takes them at once, as runnel's
		// reopen does (README).
		s.knownDivergence("a config change reopens the log: a new segment.index.bytes or index.interval.bytes applies to the active segment at once, as at a restart (Kafka's keeps those it was created with until it rolls)")
	}
	p.cfg = cfg
}

// advance steps the clock: forwards, or with stepBack a third of the
// time backwards.
func (s *sstate) advance() {
	d := []int64{1, 1000, 60 * 1000, 30 * 60 * 1000, 2 * 3600 * 1000, 24 * 3600 * 1000, 4 * 24 * 3600 * 1000}[s.rng.IntN(7)]
	d += s.rng.Int64N(d)
	if s.stepBack && s.rng.IntN(3) == 0 {
		d = -d
	}
	s.desc = fmt.Sprintf("advance the clock %d ms", d)
	s.clock.ms.Add(d)
}

// genTS draws a record timestamp around the clock: out of order, in the
// past and (a little) in the future, fixed and old, or none.
func (s *sstate) genTS() int64 {
	now := s.now()
	switch s.rng.IntN(12) {
	case 0:
		return -1
	case 1:
		return tsOld + s.rng.Int64N(1000)
	case 2:
		return now + s.rng.Int64N(2*3600*1000)
	case 3:
		return now
	default:
		return now - s.rng.Int64N(4*24*3600*1000)
	}
}

// produce appends one batch (no producer id, CreateTime).
func (s *sstate) produce() {
	name := segTopics[s.rng.IntN(len(segTopics))]
	p := s.topics[name]
	var bl record.Builder
	n := 1 + s.rng.IntN(4)
	if s.rng.IntN(8) == 0 {
		n = 5 + s.rng.IntN(15)
	}
	shared := s.genTS()
	tss := make([]int64, n)
	for i := range n {
		ts := shared
		if s.rng.IntN(3) == 0 {
			ts = s.genTS()
		}
		tss[i] = ts
		bl.Append(ts, []byte("k"+strconv.Itoa(s.rng.IntN(8))), []byte(strings.Repeat("v", s.rng.IntN(50))), nil)
	}
	codec := []compression.Codec{compression.None, compression.None, compression.LZ4}[s.rng.IntN(3)]
	batch, err := bl.AppendTo(nil, codec)
	if err != nil {
		s.t.Fatal(err)
	}
	s.desc = fmt.Sprintf("produce to %s: %d bytes, ts %v", name, len(batch), tss)
	resp, err := s.b.Produce(s.ctx, &api.ProduceRequest{Topic: name, Acks: api.AcksAll, Batches: slices.Clone(batch)})
	if p == nil {
		if api.Code(err) != codeUnknownTopic {
			s.fail(nil, "runnel code %d, Kafka %d", api.Code(err), codeUnknownTopic)
		}
		return
	}
	if err != nil {
		s.fail(p, "runnel: %v", err)
		return
	}
	s.checkAppended(p, resp)
	mb := mbatch{base: p.end, last: p.end + int64(n) - 1, size: len(batch), maxTS: -1}
	for _, r := range decode(s.t, batch, 0) {
		r.Offset += p.end
		if p.cfg.lat {
			// LogValidator stamps the broker's clock on every record.
			r.TS, r.TSType = s.now(), record.LogAppendTime
		}
		mb.maxTS = max(mb.maxTS, r.TS)
		mb.recs = append(mb.recs, r)
	}
	s.append(p, mb)
	// runnel removes the segments wholly below the log start at once
	// (DeleteRecords; not the active one), Kafka at its next retention
	// check: runnel's are Kafka's, less some of those.
	all, got := p.bases(), s.runnelSegments(name)
	k := len(all) - len(got)
	if k < 0 || !slices.Equal(got, all[k:]) || k > 0 && all[k] > p.logStart {
		s.fail(p, "runnel's segments %v, Kafka's %v", got, all)
	}
}

// append is UnifiedLog.append's roll (maybeRoll, LogSegment.shouldRoll)
// and LogSegment.append on the model.
func (s *sstate) append(p *spart, mb mbatch) {
	now := s.now()
	act := p.active()
	if int64(mb.size) > p.cfg.segBytes {
		// UnifiedLog.append refuses a batch larger than segment.bytes
		// (RecordBatchTooLargeException); runnel takes it into a segment
		// of its own (docs/details.md).
		s.knownDivergence("a batch larger than segment.bytes is taken into a segment of its own (Kafka: RECORD_LIST_TOO_LARGE)")
	}
	// LogSegment.shouldRoll: size > maxSegmentBytes - messagesSize, or
	// size > 0 and timeWaitedForRoll(now, maxTimestampInMessages) >
	// maxSegmentMs (no jitter); timeWaitedForRoll is the batch's max
	// timestamp less the segment's first batch's (rollingBasedTimestamp),
	// or now less the segment's created time if that is below 0. The
	// indexes (10 MiB) never fill here. An empty active segment rolled
	// for its size is replaced by one at the same offset (UnifiedLog.roll),
	// which only a batch larger than segment.bytes, refused, would do.
	// offsetIndex().isFull() || timeIndex().isFull(): entries at
	// maxIndexSize / entry size (8 and 12 bytes), the time index's one
	// short of it (TimeIndex.isFull: entries >= maxEntries - 1, its last
	// slot held for onBecomeInactiveSegment's entry).
	roll := act.size > 0 && act.size+int64(mb.size) > p.cfg.segBytes ||
		act.offEntries >= p.cfg.idxBytes/8 || act.timeEntries >= p.cfg.idxBytes/12-1
	if ms := p.cfg.rollMs(); !roll && act.size > 0 && ms > 0 {
		var waited int64
		if first := act.batches[0].maxTS; first >= 0 {
			waited = mb.maxTS - first
		} else {
			waited = now - act.created
		}
		roll = waited > ms
	}
	if roll {
		// LogSegment.onBecomeInactiveSegment: the time index's final
		// entry (which the cleaner's grouping counts).
		act.finalTimeEntry()
		p.segs = append(p.segs, &sseg{base: p.end, created: now, written: now, lastTimeTS: -1})
		act = p.active()
	}
	act.appendBatch(mb, p.cfg.idxInterval)
	act.written = now
	p.end = mb.last + 1
}

func (s *sstate) pickPart() (string, *spart) {
	name := segTopics[s.rng.IntN(len(segTopics))]
	return name, s.topics[name]
}

// fetch reads one partition from an offset. LocalLog.read reads from one
// segment only: the one holding the offset (floorEntry), or the next
// holding a batch at or past it; LogSegment.read slices from the batch
// that holds the offset up to max(limit, its first batch) bytes
// (minOneMessage, KIP-74: the fetch's first partition), and no further
// than the segment's end; a batch the limit cuts short is sent in part,
// and a consumer drops it.
func (s *sstate) fetch() {
	name, p := s.pickPart()
	if p == nil {
		return
	}
	var off int64
	switch r := s.rng.IntN(10); {
	case r == 0:
		off = p.logStart - 1
	case r == 1:
		off = p.end
	case r == 2:
		off = p.end + 1
	default:
		off = p.logStart + s.rng.Int64N(p.end-p.logStart+1)
	}
	limits := []int{1, 100, 300, 1000, 1 << 20}
	partMax, reqMax := limits[s.rng.IntN(len(limits))], limits[s.rng.IntN(len(limits))]
	s.desc = fmt.Sprintf("fetch %s from %d, max bytes %d, request %d", name, off, partMax, reqMax)
	resp, err := s.b.Fetch(s.ctx, &api.FetchRequest{MaxBytes: reqMax, Partitions: []api.FetchPartition{{Topic: name, Offset: off, MaxBytes: partMax}}})
	if err != nil {
		s.fail(p, "runnel: %v", err)
		return
	}
	got := resp.Partitions[0]
	if off < p.logStart || off > p.end {
		if api.Code(got.Err) != codeOffsetOutOfRange {
			s.fail(p, "runnel code %d, Kafka %d", api.Code(got.Err), codeOffsetOutOfRange)
		}
		return
	}
	if got.Err != nil || got.HighWatermark != p.end || got.LogStartOffset != p.logStart {
		s.fail(p, "runnel %v, high watermark %d, log start %d; Kafka none, %d, %d", got.Err, got.HighWatermark, got.LogStartOffset, p.end, p.logStart)
		return
	}
	want := fetchPlan(p, off, partMax, reqMax)
	var gotBases []int64
	for b, err := range record.Batches(got.Records) {
		if err != nil {
			s.fail(p, "runnel's batches: %v", err)
			return
		}
		gotBases = append(gotBases, b.BaseOffset())
	}
	bases := func(bs []mbatch) []int64 {
		var out []int64
		for _, b := range bs {
			out = append(out, b.base)
		}
		return out
	}
	if !slices.Equal(gotBases, bases(want)) {
		s.fail(p, "runnel: batches at %v, Kafka %v", gotBases, bases(want))
		return
	}
	var wantRecs []rec
	for _, b := range want {
		wantRecs = append(wantRecs, b.recs...)
	}
	if gotRecs := decode(s.t, got.Records, 0); !slices.Equal(gotRecs, wantRecs) {
		s.fail(p, "runnel: records\n%v\nKafka\n%v", gotRecs, wantRecs)
	}
}

// fetchPlan is the whole batches a fetch from off gets (a consumer drops
// a batch a limit cuts), from the one segment LocalLog.read reads.
func fetchPlan(p *spart, off int64, partMax, reqMax int) []mbatch {
	var from []mbatch
	for _, g := range p.segs {
		if len(from) > 0 {
			break
		}
		for _, b := range g.batches {
			if b.last >= off {
				from = append(from, b)
			}
		}
	}
	size := min(partMax, reqMax)
	if len(from) > 0 {
		size = max(size, from[0].size)
	}
	var out []mbatch
	used := 0
	for _, b := range from {
		if used+b.size > size {
			break
		}
		out = append(out, b)
		used += b.size
	}
	return out
}

func (s *sstate) listOffsets() {
	name, p := s.pickPart()
	if p == nil {
		return
	}
	var ts int64
	switch r := s.rng.IntN(10); {
	case r == 0:
		ts = tsLatest
	case r == 1:
		ts = tsEarliest
	case r < 4:
		ts = tsMaxTimestamp
	case r == 4:
		ts = max(0, s.genTS())
	default:
		ts = s.now() - s.rng.Int64N(5*24*3600*1000)
		var all []rec
		for _, g := range p.segs {
			for _, b := range g.batches {
				all = append(all, b.recs...)
			}
		}
		if len(all) > 0 {
			ts = max(0, all[s.rng.IntN(len(all))].TS+s.rng.Int64N(3)-1)
		}
	}
	s.desc = fmt.Sprintf("list offsets %s at %d", name, ts)
	s.checkListOffset(name, p, ts)
}

// checkListOffset compares runnel's ListOffsets answer for ts with the
// model's.
func (s *sstate) checkListOffset(name string, p *spart, ts int64) {
	got, err := s.b.ListOffset(s.ctx, name, 0, ts)
	if err != nil {
		s.fail(p, "runnel: %v", err)
		return
	}
	wantOff, wantTS := int64(-1), int64(-1)
	docOff, docTS := int64(-1), int64(-1) // runnel's documented answer, where it differs
	switch ts {
	case tsLatest:
		wantOff = p.end
	case tsEarliest:
		wantOff = p.logStart
	case tsMaxTimestamp:
		// UnifiedLog.fetchOffsetByTimestamp: the first segment with the
		// largest maxTimestampSoFar (Scala's maxBy keeps the first), the
		// first of its batches with that max timestamp, and that batch's
		// first record stamped with it (offsetOfMaxTimestamp); a segment
		// wholly below the log start counts until retention removes it.
		top, at := int64(-2), -1
		for i, g := range p.segs {
			if m := g.maxTS(); m > top {
				top, at = m, i
			}
		}
		wantOff, wantTS = kafkaMaxTimestamp(p.segs[at].batches)
		// runnel: the first record with the largest timestamp at or
		// past the log start (docs/details.md); none: the high watermark.
		var bs []mbatch
		for _, g := range p.segs {
			bs = append(bs, g.batches...)
		}
		docOff, docTS = p.end, -1
		if p.logStart < p.end {
			docOff, docTS = firstLargest(bs, p.logStart)
		}
	default:
		// UnifiedLog.fetchOffsetByTimestamp: the first segment whose
		// largestTimestamp (its file's modification time when it has no
		// timestamp) reaches ts, and in it only
		// (LogSegment.findOffsetByTimestamp from the log start) the
		// first record at or past the log start stamped ts or later.
		for _, g := range p.segs {
			if g.largestTimestamp() < ts {
				continue
			}
		search:
			for _, b := range g.batches {
				for _, r := range b.recs {
					if r.Offset >= p.logStart && r.TS >= ts {
						wantOff, wantTS = r.Offset, r.TS
						break search
					}
				}
			}
			break
		}
		// Across the log: the first record at or past the log start
		// stamped ts or later, else the high watermark (docs/details.md).
		docOff = p.end
	all:
		for _, g := range p.segs {
			for _, b := range g.batches {
				for _, r := range b.recs {
					if r.Offset >= p.logStart && r.TS >= ts {
						docOff, docTS = r.Offset, r.TS
						break all
					}
				}
			}
		}
	}
	if got.Offset == wantOff && got.Timestamp == wantTS {
		return
	}
	switch {
	case ts >= 0 && wantOff == -1 && got.Offset == p.end && got.Timestamp == -1 && docOff == p.end:
		s.knownDivergence("ListOffsets by a time no record reaches answers the high watermark (Kafka: -1)")
	case ts >= 0 && got.Offset == docOff && got.Timestamp == docTS:
		s.knownDivergence("ListOffsets by time searches every segment (Kafka: only the first whose largest timestamp, or file time, reaches it, and answers -1 if its records at or past the log start do not)")
	case ts == tsMaxTimestamp && got.Offset == docOff && got.Timestamp == docTS:
		s.knownDivergence("MAX_TIMESTAMP answers the first record with the largest timestamp at or past the log start (Kafka: the first segment's with the largest, below the log start too, -1 at least)")
	default:
		s.fail(p, "runnel offset %d timestamp %d; Kafka %d, %d (runnel's documented answer %d, %d)", got.Offset, got.Timestamp, wantOff, wantTS, docOff, docTS)
	}
}

// deleteRecords moves the log start (UnifiedLog.maybeIncrementLogStartOffset);
// Kafka removes the segments wholly below it at its next retention check
// (deleteLogStartOffsetBreachedSegments), runnel at once: only
// MAX_TIMESTAMP and ListOffsets by time could tell, and the model keeps
// them for those.
func (s *sstate) deleteRecords() {
	name, p := s.pickPart()
	if p == nil {
		return
	}
	off := p.logStart + s.rng.Int64N(p.end-p.logStart+1)
	if s.rng.IntN(8) == 0 {
		off = -1
	}
	s.desc = fmt.Sprintf("delete records %s before %d", name, off)
	if !p.cfg.deletes() {
		// Kafka refuses it on a topic compacted only.
		if _, err := s.b.DeleteRecords(s.ctx, name, 0, off); api.Code(err) != codePolicyViolation {
			s.fail(p, "runnel code %d (%v), Kafka %d", api.Code(err), err, codePolicyViolation)
		}
		return
	}
	low, err := s.b.DeleteRecords(s.ctx, name, 0, off)
	if off == -1 {
		off = p.end
	}
	p.logStart = max(p.logStart, off)
	if err != nil || low != p.logStart {
		s.fail(p, "runnel low watermark %d (%v), Kafka %d", low, err, p.logStart)
	}
}

// restart closes runnel's broker and opens it again; Kafka's segments
// loaded again are created anew (LogSegment's created is the clock at
// load), their files keeping their modification times.
func (s *sstate) restart() {
	s.desc = "restart"
	if err := s.b.Close(); err != nil {
		s.t.Fatalf("op %d: close: %v", s.op, err)
	}
	b, err := runnel.Open(s.cfg)
	if err != nil {
		s.t.Fatalf("op %d: open: %v", s.op, err)
	}
	s.b = b
	for _, p := range s.topics {
		for _, g := range p.segs {
			g.created = s.now()
		}
		p.closeActive()
	}
}

// closeActive is what a close and a load do to the active segment's index
// bookkeeping: LogSegment.close adds the max timestamp so far to the time
// index (TimeIndex.maybeAppend, skipFullCheck), and the segment loaded
// again starts its byte count over. It reports whether that changed
// anything.
func (p *spart) closeActive() bool {
	act := p.active()
	changed := act.finalTimeEntry()
	if act.bytesSince > 0 {
		act.bytesSince = 0
		changed = true
	}
	return changed
}

// retention runs runnel's maintenance and Kafka's retention on the model
// (UnifiedLog.deleteOldSegments with cleanup.policy=delete):
// deleteLogStartOffsetBreachedSegments, then
// deleteRetentionSizeBreachedSegments, then
// deleteRetentionMsBreachedSegments, each through deletableSegments
// (oldest first, stopping at the first segment that does not qualify or
// reaches past the high watermark, never an empty last segment) and
// deleteSegments (the active segment rolled first if every segment goes;
// the log start moved up to the first segment left).
func (s *sstate) retention() {
	s.desc = "retention"
	if err := s.b.Maintain(s.ctx); err != nil {
		s.fail(nil, "runnel maintain: %v", err)
	}
	now := s.now()
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range s.topics {
			if !yield(n) {
				return
			}
		}
	})
	for _, name := range names {
		p := s.topics[name]
		before := p.dump()
		kafka, doc := *p, *p
		kafka.segs, doc.segs = slices.Clone(p.segs), slices.Clone(p.segs)
		kafka.applyRetention(now, false)
		doc.applyRetention(now, true)
		got, err := s.b.ListOffset(s.ctx, name, 0, tsEarliest)
		segs := s.runnelSegments(name)
		switch {
		case err == nil && got.Offset == kafka.logStart && slices.Equal(segs, kafka.bases()):
			*p = kafka
		case err == nil && got.Offset == doc.logStart && slices.Equal(segs, doc.bases()):
			s.knownDivergence("time retention takes a rolled segment with no timestamp above -1 as past retention.ms, and keeps an active one until it rolls (Kafka ages both by the file's modification time)")
			*p = doc
		default:
			s.fail(&kafka, "runnel's log start %d (%v), segments %v; Kafka %d, %v (runnel's documented rule: %d, %v); before:%s", got.Offset, err, segs, kafka.logStart, kafka.bases(), doc.logStart, doc.bases(), before)
			*p = kafka
		}
	}
}

// applyRetention is Kafka's retention on the model, or runnel's
// documented rule for segments without a timestamp if doc is set.
func (p *spart) applyRetention(now int64, doc bool) {
	p.deleteOld(func(g *sseg, next *sseg) bool { return next != nil && next.base <= p.logStart }, now)
	if !p.cfg.deletes() {
		return // deleteOldSegments: only the log start's, without delete
	}
	if p.cfg.retBytes >= 0 && p.size() >= p.cfg.retBytes {
		diff := p.size() - p.cfg.retBytes
		p.deleteOld(func(g *sseg, _ *sseg) bool {
			if diff-g.size >= 0 {
				diff -= g.size
				return true
			}
			return false
		}, now)
	}
	if p.cfg.retMs >= 0 {
		p.deleteOld(func(g *sseg, next *sseg) bool {
			if doc && g.maxTS() == -1 {
				return next != nil
			}
			return now-g.largestTimestamp() > p.cfg.retMs
		}, now)
	}
}

// deleteOld is UnifiedLog.deletableSegments and deleteSegments.
func (p *spart) deleteOld(pred func(g, next *sseg) bool, now int64) {
	n := 0
	for n < len(p.segs) {
		g := p.segs[n]
		var next *sseg
		if n+1 < len(p.segs) {
			next = p.segs[n+1]
		}
		upper, lastEmpty := p.end, next == nil && g.size == 0
		if next != nil {
			upper = next.base
		}
		if p.end >= upper && pred(g, next) && !lastEmpty {
			n++
			continue
		}
		break
	}
	if n == 0 {
		return
	}
	if n == len(p.segs) {
		p.segs = append(p.segs, &sseg{base: p.end, created: now, written: now, lastTimeTS: -1})
	}
	p.segs = p.segs[n:]
	p.logStart = max(p.logStart, p.segs[0].base)
}
