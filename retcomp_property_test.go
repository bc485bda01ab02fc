package runnel_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

// TestRetCompProperty checks log cleaning — retention by time and size,
// DeleteRecords, compaction with tombstones, min.compaction.lag.ms and
// delete.retention.ms — against a model while readers race it. For each
// seed a broker opens on a vfs.MemFS (one seed in three on disk) with a
// fake clock that the test advances, and random topics (cleanup.policy
// delete, compact or both, small segment.bytes, retention by time and
// size, random lags, tombstone retention, dirty ratio, fsync policy,
// timestamp type, and a small cleaner key map now and then, over a key
// space of 1 to 20 keys); the broker's own maintenance runs every few milliseconds
// throughout, and the test calls Maintain too. A random sequence of steps
// follows: produce keyed records, tombstones and headers (empty keys,
// values and header values too, never taken for null ones; from one or two
// goroutines at once), advance the clock, Maintain, DeleteRecords,
// AlterTopicConfig (a new random config, which reopens the logs), a clean
// Close and Open. All along, 1–3 consumers of random reset policy
// and fetch limits read every partition (Records loops and Poll, seeking
// to the start, the end, a time and an offset). After every step:
//
//   - every record a consumer or the check reads is the one produced at
//     its partition and offset (key, value, headers, timestamp; every
//     record carries its id in a header), and no offset is reused;
//   - each consumer's offsets in a partition strictly increase but where
//     it seeked, across restarts too, and what it skipped is what the log
//     may have lost: records below the log start, records compaction may
//     remove, and with ResetLatest anything behind a reset;
//   - the log start, high watermark and log end never go back;
//   - a read of each partition from its start to its high watermark finds
//     every record at or past the log start but those compaction may have
//     removed: on a compacted topic, a record superseded by a later one of
//     its key where both were older than min.compaction.lag.ms and below
//     the active segment, or the latest, a tombstone, once
//     delete.retention.ms passed after it could first have been cleaned;
//     nothing at all on a topic with the delete policy alone, and nothing
//     of the active segment;
//   - ListOffset (earliest, latest, by time, the largest timestamp)
//     agrees with that read;
//   - out-of-range fetches under ResetNone name an offset below the log
//     start (or past the end, after a seek there), and every error is one
//     of the documented ones;
//   - after a Maintain step (two Maintains, the clock standing still),
//     what maintenance must have done is done (see checkMaintained), and
//     after a DeleteRecords that moved the log start, the segments wholly
//     below it are gone;
//   - now and then, and at the end, every consumer reaches the high
//     watermark of every partition (its own seeks held back).
//
// At the end of each seed no goroutine is left.
//
// A few seeds run by default (fewer under -short). For a long run:
//
//	RUNNEL_RETCOMP_PROP=500 go test -run TestRetCompProperty .
//
// RUNNEL_RETCOMP_PROP=N runs N seeds from one the test picks and logs;
// RUNNEL_RETCOMP_PROP_BASE=S makes S the first (with N=1, replays seed S,
// up to the scheduling of the goroutines); RUNNEL_RETCOMP_PROP_LOG=1 logs
// the steps.
func TestRetCompProperty(t *testing.T) {
	testkit.Seeds(t, "RUNNEL_RETCOMP_PROP", 4, 2, runRetComp)
}

// rcClock is the broker's clock, which the test moves.
type rcClock struct{ ms atomic.Int64 }

func (c *rcClock) Now() time.Time { return time.UnixMilli(c.ms.Load()) }

type rcTP struct {
	topic string
	part  int32
}

func (tp rcTP) String() string { return fmt.Sprintf("%s-%d", tp.topic, tp.part) }

// rcRec is one produced record.
type rcRec struct {
	id         int64
	tp         rcTP
	key, value []byte // value nil: a tombstone
	headers    []record.Header
	ts         int64 // its timestamp (ms)
	clock      int64 // the broker's clock when it was produced
	offset     int64 // -1 until acknowledged
	// appendTime: its topic stamps records with LogAppendTime, which the
	// model knows once the record is acknowledged.
	appendTime bool
	// sealed is the clock at the check before the first that found the
	// record below the active segment (0 before): no cleaning reached it
	// before that.
	sealed int64
}

type rcPart struct {
	tp  rcTP
	cfg log.Config // with the defaults
	// cfgs are every config the partition had, the current one last: a
	// record may have gone under any of them.
	cfgs []log.Config
	// byOff maps each offset to the id of the record there, as acknowledged
	// or read first; acked lists the acknowledged records by offset.
	byOff map[int64]int64
	acked []*rcRec
	// the offsets last seen, which never go back
	start, hw, end int64
}

// rcGap is what a consumer skipped: offsets (from, to) exclusive.
type rcGap struct {
	cons     int
	tp       rcTP
	from, to int64
	reset    consumer.ResetPolicy
}

type rcRun struct {
	t       *testing.T
	rng     *rand.Rand
	crng    *rand.Rand // the checks': their retries must not change the steps
	seed    uint64
	verbose bool
	ctx     context.Context

	fs    vfs.FS // a MemFS, or the OS's for one seed in three
	dir   string
	clock *rcClock
	cfg   runnel.Config
	b     *runnel.Broker
	p     *producer.Producer

	mu     sync.Mutex // guards what follows: the consumers read the model
	recs   map[int64]*rcRec
	parts  map[rcTP]*rcPart
	order  []rcTP
	gaps   []rcGap
	nextID int64
	fails  int
	keys   int // how many keys the records take
	// checked is the clock at the end of the last check.
	checked int64
	// compacted and below count the acknowledged records the last check
	// of each partition found removed by compaction and below the start.
	compacted, below int

	cons []*rcCons
}

func (r *rcRun) logf(format string, args ...any) {
	if r.verbose {
		r.t.Helper()
		r.t.Logf(format, args...)
	}
}

// failf reports a failure, from any goroutine; after a few the seed stops
// at its next step.
func (r *rcRun) failf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failLocked(format, args...)
}

func (r *rcRun) failLocked(format string, args ...any) {
	r.fails++
	if r.fails <= 10 {
		r.t.Errorf("seed %d: "+format, append([]any{r.seed}, args...)...)
	}
}

func runRetComp(t *testing.T, seed uint64) {
	ignore := goleak.IgnoreCurrent()
	r := &rcRun{
		t: t, rng: rand.New(rand.NewPCG(seed, 0x5eed)), crng: rand.New(rand.NewPCG(seed, 0xc4ec)), seed: seed,
		verbose: os.Getenv("RUNNEL_RETCOMP_PROP_LOG") != "",
		fs:      vfs.NewMem(), dir: "/data", clock: &rcClock{},
		recs: map[int64]*rcRec{}, parts: map[rcTP]*rcPart{},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r.ctx = ctx
	r.clock.ms.Store(1_700_000_000_000 + r.rng.Int64N(1e9))
	r.checked = r.clock.ms.Load()
	if r.rng.IntN(3) == 0 {
		r.fs, r.dir = vfs.OS, testkit.FastTempDir(t) // its fsyncs were most of a seed's time on a disk
	}
	r.cfg = runnel.Config{
		Dir: r.dir, FS: r.fs, Clock: r.clock,
		MaintenanceInterval: time.Duration(1+r.rng.IntN(10)) * time.Millisecond,
	}
	if r.rng.IntN(3) == 0 {
		r.cfg.CleanerMapBytes = log.MinCleanerMapBytes * int64(1+r.rng.IntN(8))
	}
	r.keys = []int{1, 3, 6, 20}[r.rng.IntN(4)]
	r.open()
	for i, n := 0, 1+r.rng.IntN(3); i < n; i++ {
		r.createTopic(fmt.Sprintf("t%d", i))
	}
	for i, n := 0, 1+r.rng.IntN(3); i < n; i++ {
		r.cons = append(r.cons, r.newCons(i))
	}
	r.startClients()
	steps := 120
	if testing.Short() {
		steps = 40
	}
	for step := 0; step < steps && r.failures() == 0; step++ {
		r.step(step)
		r.check(fmt.Sprintf("after step %d", step))
	}
	if r.failures() == 0 {
		r.step(-1) // a last Maintain
		r.catchUp()
		r.check("at the end")
	}
	r.stopClients()
	if err := r.b.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	var reads int64
	for _, c := range r.cons {
		reads += c.reads.Load()
	}
	r.logf("consumers read %d records; the last checks found %d acknowledged records gone by compaction, %d below the log start", reads, r.compacted, r.below)
	if err := goleak.Find(ignore); err != nil {
		t.Errorf("goroutines left: %v", err)
	}
}

func (r *rcRun) failures() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fails
}

func (r *rcRun) open() {
	b, err := runnel.Open(r.cfg)
	if err != nil {
		r.t.Fatalf("seed %d: Open: %v", r.seed, err)
	}
	r.b = b
}

func (r *rcRun) pick(choices ...time.Duration) time.Duration {
	return choices[r.rng.IntN(len(choices))]
}

func (r *rcRun) createTopic(name string) {
	c := r.randomConfig()
	parts := 1 + r.rng.IntN(2)
	if err := r.b.CreateTopic(r.ctx, name, log.TopicConfig{Partitions: parts, Config: c}); err != nil {
		r.t.Fatalf("seed %d: CreateTopic %s: %v", r.seed, name, err)
	}
	r.logf("topic %s: %d partitions, %+v", name, parts, c)
	for i := range parts {
		tp := rcTP{name, int32(i)}
		r.parts[tp] = &rcPart{tp: tp, cfg: c.WithDefaults(), cfgs: []log.Config{c.WithDefaults()}, byOff: map[int64]int64{}}
		r.order = append(r.order, tp)
	}
}

// alterTopic gives one topic a new random config (AlterTopicConfig,
// which reopens its logs under the readers and the maintenance).
func (r *rcRun) alterTopic(step int) {
	name := r.order[r.rng.IntN(len(r.order))].topic
	c := r.randomConfig()
	r.logf("step %d: AlterTopicConfig %s %+v", step, name, c)
	if err := r.b.AlterTopicConfig(r.ctx, name, c); err != nil {
		r.failf("AlterTopicConfig %s: %v", name, err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, part := range r.parts {
		if part.tp.topic == name {
			part.cfg = c.WithDefaults()
			part.cfgs = append(part.cfgs, part.cfg)
		}
	}
}

func (r *rcRun) randomConfig() log.Config {
	pol := []log.CleanupPolicy{log.Delete, log.Compact, log.Compact | log.Delete}[r.rng.IntN(3)]
	s := time.Second
	c := log.Config{
		CleanupPolicy:       pol,
		SegmentBytes:        int64(150 + r.rng.IntN(700)),
		Sync:                []log.SyncPolicy{log.SyncAlways, log.SyncNever, log.SyncPeriodic}[r.rng.IntN(3)],
		RetentionTime:       r.pick(-1, time.Duration(5+r.rng.IntN(60))*s),
		DeleteRetentionTime: r.pick(-1, time.Duration(1+r.rng.IntN(20))*s),
		MinCompactionLag:    r.pick(0, 0, time.Duration(1+r.rng.IntN(10))*s),
	}
	if r.rng.IntN(8) == 0 {
		c.SegmentBytes = 14 // a segment per batch
	}
	if c.Sync == log.SyncPeriodic {
		c.FlushMessages = int64(1 + r.rng.IntN(10))
	}
	if r.rng.IntN(6) == 0 {
		c.TimestampType = log.LogAppendTime
	}
	if r.rng.IntN(2) == 0 {
		c.RetentionBytes = int64(600 + r.rng.IntN(4000))
	}
	switch r.rng.IntN(3) {
	case 0:
		c.MinCleanableDirtyRatio = -1
	case 1:
		c.MinCleanableDirtyRatio = 0.1 + 0.8*r.rng.Float64()
	}
	if r.rng.IntN(3) == 0 {
		c.MaxCompactionLag = c.MinCompactionLag + time.Duration(1+r.rng.IntN(10))*s
	}
	if r.rng.IntN(3) == 0 {
		c.SegmentTime = time.Duration(1+r.rng.IntN(10)) * s
	}
	if r.rng.IntN(3) == 0 {
		c.IndexIntervalBytes = 1 + r.rng.IntN(200)
	}
	return c
}

// step runs one random step; -1 is the last, a Maintain.
func (r *rcRun) step(step int) {
	op := r.rng.IntN(100)
	if step < 0 {
		op = 60
	}
	switch {
	case op < 35:
		r.produce()
	case op < 52:
		d := time.Duration(r.rng.Int64N(3000)) * time.Millisecond
		if r.rng.IntN(5) == 0 {
			d = time.Duration(r.rng.Int64N(40_000)) * time.Millisecond
		}
		r.logf("step %d: advance the clock %v", step, d)
		r.clock.ms.Add(d.Milliseconds())
	case op < 65:
		r.logf("step %d: Maintain", step)
		// Twice before the checks: a Maintain runs retention before
		// compaction, whose cleaned segments may be smaller and older
		// (their newest records removed) than retention saw them.
		for range 2 {
			if err := r.b.Maintain(r.ctx); err != nil {
				r.failf("Maintain: %v", err)
			}
		}
		for _, tp := range r.order {
			r.checkMaintained(tp)
		}
	case op < 77:
		r.deleteRecords(step)
	case op < 83:
		r.logf("step %d: let the consumers catch up", step)
		r.catchUp()
	case op < 86:
		r.burst(step)
	case op < 88:
		r.alterTopic(step)
	case op < 94:
		r.logf("step %d: restart", step)
		r.stopClients()
		var maintained chan error
		if r.rng.IntN(3) == 0 {
			// Close while a Maintain runs: it ends with ErrClosed, or
			// finished first.
			r.clock.ms.Add(r.rng.Int64N(20_000))
			maintained = make(chan error, 1)
			go func() { maintained <- r.b.Maintain(r.ctx) }()
		}
		if err := r.b.Close(); err != nil {
			r.failf("Close: %v", err)
		}
		if maintained != nil {
			if err := testkit.Await(r.t, maintained, "the Maintain's answer"); err != nil && !errors.Is(err, runnel.ErrClosed) {
				r.failf("Maintain during Close: %v", err)
			}
		}
		if r.rng.IntN(3) == 0 {
			r.cfg.CleanerMapBytes = log.MinCleanerMapBytes * int64(r.rng.IntN(8))
		}
		r.open()
		r.startClients()
	default:
		// Produce and Maintain at once.
		r.logf("step %d: produce while maintaining", step)
		done := make(chan error, 1)
		go func() { done <- r.b.Maintain(r.ctx) }()
		r.produce()
		if err := testkit.Await(r.t, done, "Maintain's answer"); err != nil {
			r.failf("Maintain: %v", err)
		}
	}
}

// burst produces without a pause from a goroutine while the clock moves
// and Maintain and DeleteRecords run.
func (r *rcRun) burst(step int) {
	r.logf("step %d: a burst of appends", step)
	stop := make(chan struct{})
	done := make(chan struct{})
	var recs [][]*record.Record
	for range 50 {
		var batch []*record.Record
		for range 1 + r.rng.IntN(4) {
			batch = append(batch, r.newRecord())
		}
		recs = append(recs, batch)
	}
	go func() {
		defer close(done)
		for _, batch := range recs {
			select {
			case <-stop:
				return
			default:
			}
			r.produceSync(batch)
		}
	}()
	for range 2 + r.rng.IntN(6) {
		switch r.rng.IntN(3) {
		case 0:
			r.clock.ms.Add(r.rng.Int64N(5000))
		case 1:
			if err := r.b.Maintain(r.ctx); err != nil {
				r.failf("Maintain: %v", err)
			}
		case 2:
			r.deleteRecords(step)
		}
	}
	close(stop)
	testkit.Await(r.t, done, "the burst's producing goroutine's end")
	// The records never sent are no one's.
	r.mu.Lock()
	for _, batch := range recs {
		for _, rec := range batch {
			if m := r.recs[rcID(rec)]; m.offset < 0 {
				delete(r.recs, m.id)
			}
		}
	}
	r.mu.Unlock()
}

func (r *rcRun) deleteRecords(step int) {
	tp := r.order[r.rng.IntN(len(r.order))]
	r.mu.Lock()
	part := r.parts[tp]
	hw := part.hw
	start := part.start
	r.mu.Unlock()
	off := start + r.rng.Int64N(max(hw-start, 0)+1)
	if r.rng.IntN(5) == 0 {
		off = api.Latest
	}
	r.logf("step %d: DeleteRecords %s before %d", step, tp, off)
	before, err := r.b.ListOffset(r.ctx, tp.topic, tp.part, api.Earliest)
	if err != nil {
		r.failf("ListOffset %s: %v", tp, err)
		return
	}
	pre := r.segments(tp) // its last is the active segment, but for a roll after
	low, err := r.b.DeleteRecords(r.ctx, tp.topic, tp.part, off)
	switch {
	case part.cfg.CleanupPolicy&log.Delete == 0:
		if !errors.Is(err, runnel.ErrPolicyViolation) {
			r.failf("DeleteRecords %s (compact only): %v, want ErrPolicyViolation", tp, err)
		}
	case err != nil:
		r.failf("DeleteRecords %s before %d: %v", tp, off, err)
	case off != api.Latest && low < off:
		r.failf("DeleteRecords %s before %d: low watermark %d", tp, off, low)
	default:
		// The segments wholly below the new start go, when it moved (a
		// segment rolled since an earlier start went past its end is
		// left to the next maintenance, as Kafka's
		// deleteLogStartOffsetBreachedSegments). So is the active
		// segment when the start moved to its end, the log end, and an
		// append of a burst's producer rolled it right after the call
		// (seed 41200023, one run in a hundred): the segment after it
		// begins at the new start, and it was the last before the call.
		segs := r.segments(tp)
		rolledAfter := len(segs) > 1 && segs[1].base == low && len(pre) > 0 && pre[len(pre)-1].base == segs[0].base
		if low > before.Offset && len(segs) > 1 && segs[1].base <= low && !rolledAfter {
			r.failf("DeleteRecords %s before %d: low watermark %d, and segment %d is still there: %v", tp, off, low, segs[0].base, segs)
		}
		r.mu.Lock()
		if low < part.start {
			r.failLocked("DeleteRecords %s before %d: low watermark %d below the start %d seen before", tp, off, low, part.start)
		}
		part.start = max(part.start, low)
		r.mu.Unlock()
	}
}

// produce produces a few records to random partitions, from one or two
// goroutines.
func (r *rcRun) produce() {
	n := 1 + r.rng.IntN(2)
	batches := make([][]*record.Record, n)
	for i := range batches {
		for range 1 + r.rng.IntN(8) {
			batches[i] = append(batches[i], r.newRecord())
		}
	}
	r.logf("produce %d records in %d calls", len(batches[0])+len(batches[n-1]), n)
	var wg sync.WaitGroup
	for _, recs := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.produceSync(recs)
		}()
	}
	wg.Wait()
}

// produceSync produces recs and notes their offsets in the model.
func (r *rcRun) produceSync(recs []*record.Record) {
	if err := r.p.ProduceSync(r.ctx, recs...); err != nil {
		r.failf("ProduceSync: %v", err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range recs {
		m := r.recs[rcID(rec)]
		m.offset = rec.Offset
		if m.appendTime {
			m.ts = rec.Timestamp.UnixMilli()
		}
		part := r.parts[m.tp]
		if rec.Partition != m.tp.part {
			r.failLocked("record %d produced to %s went to partition %d", m.id, m.tp, rec.Partition)
		}
		if id, ok := part.byOff[rec.Offset]; ok && id != m.id {
			r.failLocked("%s offset %d: record %d acknowledged there, record %d read there", m.tp, rec.Offset, m.id, id)
		}
		part.byOff[rec.Offset] = m.id
		i, found := slices.BinarySearchFunc(part.acked, rec.Offset, func(a *rcRec, o int64) int { return int(a.offset - o) })
		if found {
			r.failLocked("%s offset %d acknowledged twice", m.tp, rec.Offset)
		}
		part.acked = slices.Insert(part.acked, i, m)
	}
}

func rcID(rec *record.Record) int64 {
	for _, h := range rec.Headers {
		if h.Key == "id" {
			id, err := strconv.ParseInt(string(h.Value), 10, 64)
			if err == nil {
				return id
			}
		}
	}
	return -1
}

func (r *rcRun) newRecord() *record.Record {
	tp := r.order[r.rng.IntN(len(r.order))]
	part := r.parts[tp]
	r.mu.Lock()
	r.nextID++
	id := r.nextID
	r.mu.Unlock()
	m := &rcRec{id: id, tp: tp, offset: -1, clock: r.clock.ms.Load()}
	m.ts = m.clock - r.rng.Int64N(2000)
	if r.rng.IntN(20) == 0 {
		m.ts = m.clock + r.rng.Int64N(5000) // in the future
	}
	ts := m.ts
	if part.cfg.TimestampType == log.LogAppendTime {
		// The broker's clock at the append: its answer tells (the clock
		// moves during a burst).
		m.ts, m.appendTime = m.clock, true
	}
	compacted := part.cfg.CleanupPolicy&log.Compact != 0
	if compacted || r.rng.IntN(4) != 0 {
		m.key = fmt.Appendf(nil, "k%d", r.rng.IntN(r.keys))
		if id%13 == 0 {
			m.key = m.key[:0] // the empty key: a key, not a null one
		}
	}
	if !compacted || r.rng.IntN(5) != 0 {
		m.value = fmt.Appendf(nil, "v%d-%s", id, strings.Repeat("x", r.rng.IntN(60)))
		if id%11 == 0 {
			m.value = m.value[:0] // an empty value: a live one, not a tombstone
		}
	}
	m.headers = []record.Header{{Key: "id", Value: []byte(strconv.FormatInt(id, 10))}}
	for i := range r.rng.IntN(3) {
		var v []byte
		if r.rng.IntN(3) != 0 {
			v = fmt.Appendf(nil, "h%d", r.rng.IntN(100))
			if id%7 == 0 {
				v = v[:0] // an empty header value, not a null one
			}
		}
		m.headers = append(m.headers, record.Header{Key: fmt.Sprintf("h%d", i), Value: v})
	}
	r.mu.Lock()
	r.recs[id] = m
	r.mu.Unlock()
	return &record.Record{Topic: tp.topic, Partition: tp.part, Key: m.key, Value: m.value,
		Headers: slices.Clone(m.headers), Timestamp: time.UnixMilli(ts)}
}

// seen checks a record read at tp (by a consumer, or the check) against
// the model: the record produced there. The caller holds mu.
func (r *rcRun) seenLocked(who string, tp rcTP, rec *record.Record) *rcRec {
	id := rcID(rec)
	m := r.recs[id]
	if m == nil {
		r.failLocked("%s: %s offset %d: a record that was never produced (id %d, key %q)", who, tp, rec.Offset, id, rec.Key)
		return nil
	}
	if m.tp != tp {
		r.failLocked("%s: %s offset %d: record %d was produced to %s", who, tp, rec.Offset, id, m.tp)
	}
	if m.offset >= 0 && m.offset != rec.Offset {
		r.failLocked("%s: %s: record %d read at offset %d, acknowledged at %d", who, tp, id, rec.Offset, m.offset)
	}
	part := r.parts[tp]
	if prev, ok := part.byOff[rec.Offset]; ok && prev != id {
		r.failLocked("%s: %s offset %d: record %d read, record %d was there", who, tp, rec.Offset, id, prev)
	}
	part.byOff[rec.Offset] = id
	if !bytes.Equal(m.key, rec.Key) || (m.key == nil) != (rec.Key == nil) {
		r.failLocked("%s: %s offset %d: key %q, produced %q", who, tp, rec.Offset, rec.Key, m.key)
	}
	if !bytes.Equal(m.value, rec.Value) || (m.value == nil) != (rec.Value == nil) {
		r.failLocked("%s: %s offset %d: value %q, produced %q", who, tp, rec.Offset, rec.Value, m.value)
	}
	if got := rec.Timestamp.UnixMilli(); got != m.ts && (!m.appendTime || m.offset >= 0) {
		r.failLocked("%s: %s offset %d: timestamp %d, produced %d", who, tp, rec.Offset, got, m.ts)
	}
	if len(rec.Headers) != len(m.headers) {
		r.failLocked("%s: %s offset %d: %d headers, produced %d", who, tp, rec.Offset, len(rec.Headers), len(m.headers))
	} else {
		for i, h := range rec.Headers {
			w := m.headers[i]
			if h.Key != w.Key || !bytes.Equal(h.Value, w.Value) || (h.Value == nil) != (w.Value == nil) {
				r.failLocked("%s: %s offset %d: header %d %q=%q, produced %q=%q", who, tp, rec.Offset, i, h.Key, h.Value, w.Key, w.Value)
			}
		}
	}
	return m
}

// mayBeGone reports whether the acknowledged record m may have been
// removed by compaction by now, given the partition's records (acked, by
// offset) and the first offset of its active segment (act). The caller
// holds mu.
func (r *rcRun) mayBeGoneLocked(part *rcPart, m *rcRec, act int64) bool {
	for _, cfg := range part.cfgs {
		if r.mayBeGoneUnder(cfg, part, m, act) {
			return true
		}
	}
	return false
}

// mayBeGoneUnder is mayBeGoneLocked under one config of the partition's.
func (r *rcRun) mayBeGoneUnder(cfg log.Config, part *rcPart, m *rcRec, act int64) bool {
	if cfg.CleanupPolicy&log.Compact == 0 || m.offset >= act {
		return false
	}
	now := r.clock.ms.Load()
	lag := cfg.MinCompactionLag.Milliseconds()
	// old reports whether a record stamped ts is past the lag (with no
	// lag, every record is, whatever its timestamp).
	old := func(ts int64) bool { return lag <= 0 || now-ts >= lag }
	if !old(m.ts) {
		return false // within min.compaction.lag.ms
	}
	if m.key == nil {
		return true // produced before the topic was compacted: the cleaner drops it
	}
	i, _ := slices.BinarySearchFunc(part.acked, m.offset, func(a *rcRec, o int64) int { return int(a.offset - o) })
	for _, s := range part.acked[i+1:] {
		if s.offset >= act {
			break
		}
		if bytes.Equal(s.key, m.key) && s.key != nil && old(s.ts) {
			return true // superseded (a keyless record supersedes no record of the empty key)
		}
	}
	if m.value != nil {
		return false
	}
	// A tombstone goes delete.retention.ms after it was first cleaned, at
	// the earliest once its segment rolled, and past the lag.
	first := max(m.clock, m.sealed)
	if m.sealed == 0 {
		first = max(m.clock, r.checked) // sealed since the last check
	}
	if lag > 0 {
		first = max(first, m.ts+lag)
	}
	return now >= first+cfg.DeleteRetentionTime.Milliseconds()
}

// noteSealedLocked notes, for part's records below act first found
// there, the clock at the check before, which their segment rolled
// after. The caller holds mu.
func (r *rcRun) noteSealedLocked(part *rcPart, act int64) {
	now := r.checked // a step may move the clock after an append rolls
	for _, m := range part.acked {
		if m.offset >= act {
			break
		}
		if m.sealed == 0 {
			m.sealed = now
		}
	}
}

// activeBase returns the base offset of tp's active segment, from the
// names of its files.
func (r *rcRun) activeBase(tp rcTP) int64 {
	names, err := r.fs.List(filepath.Join(r.dir, fmt.Sprintf("%s-%d", tp.topic, tp.part)))
	if err != nil {
		r.failf("listing %s: %v", tp, err)
		return 0
	}
	return largestSegmentBase(names)
}

// largestSegmentBase is the largest base offset of the segment files
// among names (a partition directory's listing): its active segment's;
// 0 if there is none.
func largestSegmentBase(names []string) int64 {
	base := int64(0)
	for _, n := range names {
		if b, ok := strings.CutSuffix(n, segment.LogSuffix); ok {
			if o, err := strconv.ParseInt(b, 10, 64); err == nil {
				base = max(base, o)
			}
		}
	}
	return base
}

// readAll reads tp from its log start to its high watermark through
// Fetch, and returns the records and the offsets of the read.
func (r *rcRun) readAll(tp rcTP) (recs []*record.Record, start, hw int64, err error) {
	for attempt := 0; attempt < 5; attempt++ {
		recs = recs[:0]
		lo, err := r.b.ListOffset(r.ctx, tp.topic, tp.part, api.Earliest)
		if err != nil {
			return nil, 0, 0, err
		}
		start = lo.Offset
		off := start
		hw = -1
		for hw < 0 || off < hw {
			resp, err := r.b.Fetch(r.ctx, &api.FetchRequest{MaxBytes: 1 << 20,
				Partitions: []api.FetchPartition{{Topic: tp.topic, Partition: tp.part, Offset: off, MaxBytes: 200 + r.crng.IntN(2000)}}})
			if err != nil {
				return nil, 0, 0, err
			}
			fp := resp.Partitions[0]
			if errors.Is(fp.Err, log.ErrOffsetOutOfRange) && fp.LogStartOffset > off {
				hw = -2 // the start moved: again
				break
			}
			if fp.Err != nil {
				return nil, 0, 0, fp.Err
			}
			if hw < 0 {
				hw = fp.HighWatermark
			}
			if len(fp.Records) == 0 {
				if off < hw {
					return nil, 0, 0, fmt.Errorf("fetch at %d below the high watermark %d returned nothing", off, hw)
				}
				break
			}
			for b, err := range record.Batches(fp.Records) {
				if err != nil {
					return nil, 0, 0, err
				}
				for rec, err := range b.Records() {
					if err != nil {
						return nil, 0, 0, err
					}
					if rec.Offset >= off && rec.Offset < hw && !b.IsControl() {
						recs = append(recs, rec)
					}
				}
				off = max(off, b.NextOffset())
			}
		}
		if hw != -2 {
			return recs, start, hw, nil
		}
	}
	return nil, 0, 0, errors.New("the log start kept moving")
}

// check compares every partition with the model.
func (r *rcRun) check(when string) {
	r.checkGaps(when)
	r.mu.Lock()
	r.compacted, r.below = 0, 0
	r.mu.Unlock()
	for _, tp := range r.order {
		r.checkPartition(when, tp)
	}
	r.mu.Lock()
	r.checked = r.clock.ms.Load()
	r.mu.Unlock()
}

func (r *rcRun) checkPartition(when string, tp rcTP) {
	info, err := r.b.DescribeTopic(r.ctx, tp.topic)
	if err != nil {
		r.failf("%s: DescribeTopic %s: %v", when, tp.topic, err)
		return
	}
	pi := info.Partitions[tp.part]
	r.mu.Lock()
	part := r.parts[tp]
	if pi.LogStartOffset < part.start || pi.HighWatermark < part.hw || pi.LogEndOffset < part.end {
		r.failLocked("%s: %s offsets went back: start %d hw %d end %d, were %d %d %d", when, tp,
			pi.LogStartOffset, pi.HighWatermark, pi.LogEndOffset, part.start, part.hw, part.end)
	}
	part.start, part.hw, part.end = max(part.start, pi.LogStartOffset), max(part.hw, pi.HighWatermark), max(part.end, pi.LogEndOffset)
	r.mu.Unlock()

	for attempt := 0; ; attempt++ {
		act := r.activeBase(tp)
		recs, start, hw, err := r.readAll(tp)
		if err != nil {
			r.failf("%s: reading %s: %v", when, tp, err)
			return
		}
		lists, err := r.listOffsets(tp, recs)
		if err != nil {
			r.failf("%s: ListOffset %s: %v", when, tp, err)
			return
		}
		again, start2, hw2, err := r.readAll(tp)
		if err != nil {
			r.failf("%s: reading %s: %v", when, tp, err)
			return
		}
		stable := start == start2 && hw == hw2 && slices.EqualFunc(recs, again, func(a, b *record.Record) bool { return a.Offset == b.Offset })
		if !stable && attempt < 5 {
			continue // maintenance moved the log under the look-ups
		}
		r.mu.Lock()
		r.checkReadLocked(when, part, recs, start, hw, act)
		if stable {
			r.checkListsLocked(when, part, recs, start, hw, lists)
		}
		r.mu.Unlock()
		return
	}
}

// rcSeg is a segment as its files show it.
type rcSeg struct{ base, size int64 }

// segments lists tp's segments from the names and sizes of their files
// (again when maintenance removed one between the two).
func (r *rcRun) segments(tp rcTP) []rcSeg {
	dir := filepath.Join(r.dir, fmt.Sprintf("%s-%d", tp.topic, tp.part))
again:
	names, err := r.fs.List(dir)
	if err != nil {
		r.failf("listing %s: %v", tp, err)
		return nil
	}
	var segs []rcSeg
	for _, n := range names {
		if b, ok := strings.CutSuffix(n, segment.LogSuffix); ok {
			o, err := strconv.ParseInt(b, 10, 64)
			if err != nil {
				continue
			}
			fi, err := r.fs.Stat(filepath.Join(dir, n))
			if errors.Is(err, fs.ErrNotExist) {
				goto again
			}
			if err != nil {
				r.failf("stat %s: %v", n, err)
				return nil
			}
			segs = append(segs, rcSeg{o, fi.Size()})
		}
	}
	slices.SortFunc(segs, func(a, b rcSeg) int { return int(a.base - b.base) })
	return segs
}

// overRetentionBytes reports whether retention.bytes (cfg's, under the
// delete policy) removes the first of segs: it lies below the high
// watermark hw, and the segments after it hold retention.bytes or more.
func overRetentionBytes(segs []rcSeg, hw int64, cfg log.Config) bool {
	if cfg.CleanupPolicy&log.Delete == 0 || cfg.RetentionBytes <= 0 || len(segs) < 2 || segs[1].base > hw {
		return false
	}
	var rest int64
	for _, sg := range segs[1:] {
		rest += sg.size
	}
	return rest >= cfg.RetentionBytes
}

// checkMaintained checks what two Maintains in a row must have done by
// now, the clock standing still and nothing appended since: the segments
// wholly below the log start are gone; with the delete policy, no
// segment is left that retention.ms or retention.bytes removes (the
// first Maintain's compaction may have made a segment smaller and older
// after its retention ran; under compact,delete, where compaction may make
// one larger, once further Maintains change nothing); and on a compacted topic with no lag and a
// key map that takes every key, when compaction had to run (a dirty
// ratio of 0, or max.compaction.lag.ms passed for every record), no
// record is left that a later one of its key supersedes, both below the
// active segment.
func (r *rcRun) checkMaintained(tp rcTP) {
	segs := r.segments(tp)
	lo, err := r.b.ListOffset(r.ctx, tp.topic, tp.part, api.Earliest)
	if err != nil {
		r.failf("ListOffset %s: %v", tp, err)
		return
	}
	hi, err := r.b.ListOffset(r.ctx, tp.topic, tp.part, api.Latest)
	if err != nil {
		r.failf("ListOffset %s: %v", tp, err)
		return
	}
	start, hw := lo.Offset, hi.Offset
	r.checkSize(tp)
	var recs []*record.Record
	if len(segs) == 0 {
		r.failf("after Maintain: %s has no segment", tp)
		return
	}
	r.mu.Lock()
	part := r.parts[tp]
	cfg := part.cfg
	r.mu.Unlock()
	// Compaction must have run when anything was dirty: with a dirty
	// ratio of 0, or with max.compaction.lag.ms passed for every record
	// below the active segment (so for the first batch of every dirty
	// segment).
	act := segs[len(segs)-1].base
	compacts := cfg.CleanupPolicy&log.Compact != 0 && cfg.MinCompactionLag == 0 && r.cfg.CleanerMapBytes == 0
	if compacts && cfg.MinCleanableDirtyRatio != 0 {
		overdue := cfg.MaxCompactionLag > 0
		r.mu.Lock()
		for _, m := range part.acked {
			if m.offset < act && m.ts >= r.clock.ms.Load()-cfg.MaxCompactionLag.Milliseconds() {
				overdue = false
			}
		}
		r.mu.Unlock()
		compacts = overdue
	}
	if compacts {
		if recs, _, _, err = r.readAll(tp); err != nil {
			r.failf("reading %s: %v", tp, err)
			return
		}
	}
	if cfg.CleanupPolicy == log.Compact|log.Delete {
		// Compaction runs after retention, and may make a segment past the
		// first larger: a batch whose tombstones it maps for the first
		// time gets their delete horizon (KIP-534), and its timestamps,
		// written again relative to the horizon, may take a few bytes more
		// (a key map too small for every key maps them a pass at a time).
		// What retention.bytes removes then goes at a later Maintain: run
		// them, the clock standing still, until one changes nothing.
		for i := 0; overRetentionBytes(segs, hw, cfg); i++ {
			if i == 10 {
				r.failf("after Maintain: %s: ten more Maintains, and the segments still change: %v", tp, segs)
				return
			}
			if err := r.b.Maintain(r.ctx); err != nil {
				r.failf("Maintain: %v", err)
				return
			}
			again := r.segments(tp)
			if slices.Equal(again, segs) {
				break
			}
			segs = again
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.ms.Load()
	end := int64(0)
	if n := len(part.acked); n > 0 {
		end = part.acked[n-1].offset + 1
	}
	if len(segs) > 1 && segs[1].base <= start {
		r.failLocked("after Maintain: %s: segment %d is wholly below the log start %d", tp, segs[0].base, start)
	}
	if cfg.CleanupPolicy&log.Delete != 0 {
		segEnd := end
		if len(segs) > 1 {
			segEnd = segs[1].base
		}
		if cfg.RetentionTime >= 0 && segEnd <= hw && segs[0].size > 0 {
			maxTs, any := int64(math.MinInt64), false
			for _, m := range part.acked {
				if m.offset >= segs[0].base && m.offset < segEnd {
					maxTs, any = max(maxTs, m.ts), true
				}
			}
			if cutoff := now - cfg.RetentionTime.Milliseconds(); any && maxTs < cutoff {
				r.failLocked("after Maintain: %s: segment %d (to %d) holds records up to %d, past retention.ms (%d); log start %d, high watermark %d, segments %v",
					tp, segs[0].base, segEnd, maxTs, cutoff, start, hw, segs)
			}
		}
		if overRetentionBytes(segs, hw, cfg) {
			var total int64
			for _, sg := range segs {
				total += sg.size
			}
			r.failLocked("after Maintain: %s: %d bytes in %d segments, retention.bytes %d, and the first (%d bytes) is still there",
				tp, total, len(segs), cfg.RetentionBytes, segs[0].size)
		}
	}
	if compacts {
		present := map[int64]bool{}
		for _, rec := range recs {
			present[rec.Offset] = true
		}
		latest := map[string]int64{}
		for _, m := range part.acked {
			if m.offset < act && m.key != nil {
				latest[string(m.key)] = m.offset
			}
		}
		for _, m := range part.acked {
			if m.key != nil && m.offset >= start && m.offset < act && present[m.offset] && latest[string(m.key)] > m.offset {
				r.failLocked("after Maintain: %s: record %d (key %q) at offset %d is superseded at %d, both below the active segment at %d, and still there",
					tp, m.id, m.key, m.offset, latest[string(m.key)], act)
			}
		}
	}
}

// checkSize checks that DescribeTopic's Size is what tp's segment files
// hold. Maintenance may be removing files as they are listed (a second
// Maintain's compaction can call for more retention): a mismatch must
// last to count.
func (r *rcRun) checkSize(tp rcTP) {
	var msg string
	for range 20 {
		segs := r.segments(tp)
		info, err := r.b.DescribeTopic(r.ctx, tp.topic)
		if err != nil {
			r.failf("DescribeTopic %s: %v", tp.topic, err)
			return
		}
		var total int64
		for _, sg := range segs {
			total += sg.size
		}
		got := info.Partitions[tp.part].Size
		if got == total {
			return
		}
		msg = fmt.Sprintf("DescribeTopic's Size %d, its segments' files hold %d: %v", got, total, segs)
		time.Sleep(time.Millisecond) // a file system has nothing to wait on
	}
	r.failf("after Maintain: %s: %s", tp, msg)
}

// rcList is one ListOffset look-up and its answer.
type rcList struct {
	ts int64
	lo api.ListedOffset
}

func (r *rcRun) listOffsets(tp rcTP, recs []*record.Record) ([]rcList, error) {
	stamps := []int64{api.Earliest, api.Latest, api.MaxTimestamp, 0, math.MaxInt64 - 1}
	for _, rec := range recs {
		if r.crng.IntN(4) == 0 {
			ts := rec.Timestamp.UnixMilli()
			stamps = append(stamps, ts, ts+1, ts-1)
		}
	}
	stamps = append(stamps, r.clock.ms.Load()-r.crng.Int64N(60_000))
	var out []rcList
	for _, ts := range stamps {
		lo, err := r.b.ListOffset(r.ctx, tp.topic, tp.part, ts)
		if err != nil {
			return nil, fmt.Errorf("timestamp %d: %w", ts, err)
		}
		out = append(out, rcList{ts, lo})
	}
	return out, nil
}

// checkReadLocked checks a read of part from start to hw against the
// model.
func (r *rcRun) checkReadLocked(when string, part *rcPart, recs []*record.Record, start, hw, act int64) {
	tp := part.tp
	who := "read " + when
	r.noteSealedLocked(part, act)
	if start < part.start || hw < part.hw {
		r.failLocked("%s: %s: read from %d to %d, offsets seen before %d to %d", who, tp, start, hw, part.start, part.hw)
	}
	part.start, part.hw = max(part.start, start), max(part.hw, hw)
	present := map[int64]bool{}
	prev := int64(-1)
	for _, rec := range recs {
		if rec.Offset <= prev {
			r.failLocked("%s: %s: offset %d after %d", who, tp, rec.Offset, prev)
		}
		prev = rec.Offset
		r.seenLocked(who, tp, rec)
		present[rec.Offset] = true
	}
	for _, m := range part.acked {
		if m.offset < start {
			r.below++
		}
		if m.offset < start || m.offset >= hw || present[m.offset] {
			continue
		}
		r.compacted++
		if !r.mayBeGoneLocked(part, m, act) {
			r.failLocked("%s: %s: record %d (key %q, value %.12q, ts %d, produced at %d) at offset %d is gone; log start %d, hw %d, active segment at %d, now %d, config %+v",
				who, tp, m.id, m.key, m.value, m.ts, m.clock, m.offset, start, hw, act, r.clock.ms.Load(), part.cfg)
		}
	}
	// Every acknowledged record is below the high watermark.
	if n := len(part.acked); n > 0 && part.acked[n-1].offset >= hw {
		r.failLocked("%s: %s: offset %d acknowledged, high watermark %d", who, tp, part.acked[n-1].offset, hw)
	}
}

// checkListsLocked checks ListOffset's answers against a read of the
// partition.
func (r *rcRun) checkListsLocked(when string, part *rcPart, recs []*record.Record, start, hw int64, lists []rcList) {
	for _, l := range lists {
		want := api.ListedOffset{Offset: hw, Timestamp: -1}
		switch l.ts {
		case api.Earliest:
			want.Offset = start
		case api.Latest:
		case api.MaxTimestamp:
			best := int64(math.MinInt64)
			for _, rec := range recs {
				if ts := rec.Timestamp.UnixMilli(); ts > best {
					best, want = ts, api.ListedOffset{Offset: rec.Offset, Timestamp: ts}
				}
			}
		default:
			for _, rec := range recs {
				if ts := rec.Timestamp.UnixMilli(); ts >= l.ts {
					want = api.ListedOffset{Offset: rec.Offset, Timestamp: ts}
					break
				}
			}
		}
		if l.lo.Offset != want.Offset || l.lo.Timestamp != want.Timestamp {
			r.failLocked("%s: %s: ListOffset(%d) = offset %d timestamp %d, a read finds offset %d timestamp %d (log %d to %d)",
				when, part.tp, l.ts, l.lo.Offset, l.lo.Timestamp, want.Offset, want.Timestamp, start, hw)
		}
	}
}

// checkGaps checks what the consumers skipped since the last check.
func (r *rcRun) checkGaps(when string) {
	acts := map[rcTP]int64{}
	starts := map[rcTP]int64{}
	for _, tp := range r.order {
		acts[tp] = r.activeBase(tp)
		lo, err := r.b.ListOffset(r.ctx, tp.topic, tp.part, api.Earliest)
		if err != nil {
			r.failf("%s: ListOffset %s: %v", when, tp, err)
			return
		}
		starts[tp] = lo.Offset
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for tp, act := range acts {
		r.noteSealedLocked(r.parts[tp], act)
	}
	gaps := r.gaps
	r.gaps = nil
	for _, g := range gaps {
		part := r.parts[g.tp]
		if g.reset == consumer.ResetLatest && g.from+1 < starts[g.tp] {
			continue // reset to the end: the records behind it skipped
		}
		for _, m := range part.acked {
			if m.offset <= g.from || m.offset >= g.to || m.offset < starts[g.tp] {
				continue
			}
			if !r.mayBeGoneLocked(part, m, acts[g.tp]) {
				r.failLocked("%s: consumer %d skipped %s offset %d (record %d, key %q) between %d and %d, log start %d",
					when, g.cons, g.tp, m.offset, m.id, m.key, g.from, g.to, starts[g.tp])
			}
		}
	}
}

// catchUp waits until every consumer has read every partition up to its
// high watermark, its own seeks held back: a position that never gets
// there is a reader stuck on what cleaning left.
func (r *rcRun) catchUp() {
	hws := map[rcTP]int64{}
	for _, tp := range r.order {
		lo, err := r.b.ListOffset(r.ctx, tp.topic, tp.part, api.Latest)
		if err != nil {
			r.failf("ListOffset %s: %v", tp, err)
			return
		}
		hws[tp] = lo.Offset
	}
	for _, c := range r.cons {
		c.calm.Store(true)
	}
	defer func() {
		for _, c := range r.cons {
			c.calm.Store(false)
		}
	}()
	deadline := time.Now().Add(testkit.HangGuard)
	for _, c := range r.cons {
		for _, tp := range r.order {
			for {
				pos, ok := c.c.Position(tp.topic, tp.part)
				if ok && pos == hws[tp] {
					break
				}
				if time.Now().After(deadline) {
					r.failf("consumer %d (reset %v): %s at %d (resolved %v), high watermark %d, not there after %v",
						c.idx, c.reset, tp, pos, ok, hws[tp], testkit.HangGuard)
					return
				}
				time.Sleep(time.Millisecond) // polling a position: nothing to wait on
			}
		}
	}
}

// rcCons is one consumer, across the broker's restarts.
type rcCons struct {
	r     *rcRun
	idx   int
	rng   *rand.Rand
	opts  []consumer.Opt
	reset consumer.ResetPolicy
	// last is the offset last read in each partition, -1 after a seek;
	// beyond says a seek may have gone past the end.
	last   map[rcTP]int64
	beyond map[rcTP]bool
	pos    map[rcTP]int64 // positions kept across a restart
	// starts and hws are the largest log start and high watermark its
	// polls were answered with: they never go back.
	starts, hws map[rcTP]int64

	// calm stops the consumer's own seeks (see catchUp).
	calm   atomic.Bool
	c      *consumer.Consumer
	cancel context.CancelFunc
	done   chan struct{}
	reads  atomic.Int64
}

func (r *rcRun) newCons(i int) *rcCons {
	reset := []consumer.ResetPolicy{consumer.ResetEarliest, consumer.ResetLatest, consumer.ResetNone}[r.rng.IntN(3)]
	c := &rcCons{r: r, idx: i, rng: rand.New(rand.NewPCG(r.seed, uint64(i+1))), reset: reset,
		last: map[rcTP]int64{}, beyond: map[rcTP]bool{}, pos: map[rcTP]int64{},
		starts: map[rcTP]int64{}, hws: map[rcTP]int64{}}
	c.opts = []consumer.Opt{consumer.ResetOffset(reset),
		consumer.FetchMaxWait(time.Duration(r.rng.IntN(20)) * time.Millisecond),
		consumer.FetchMaxPartitionBytes(1 + r.rng.IntN(2000)),
		consumer.FetchMaxBytes(1 + r.rng.IntN(4000)),
		consumer.RetryBackoff(time.Duration(r.rng.IntN(5)) * time.Millisecond)}
	for _, tp := range r.order {
		c.last[tp] = -1
	}
	return c
}

func (r *rcRun) startClients() {
	p, err := producer.New(r.b, producer.RecordPartitioner(producer.ManualPartitioner()), producer.Linger(time.Duration(r.rng.IntN(3))*time.Millisecond))
	if err != nil {
		r.t.Fatalf("producer.New: %v", err)
	}
	r.p = p
	for _, c := range r.cons {
		c.start()
	}
}

func (r *rcRun) stopClients() {
	for _, c := range r.cons {
		c.stop()
	}
	if err := r.p.Close(); err != nil {
		r.failf("producer Close: %v", err)
	}
}

func (c *rcCons) start() {
	cl, err := consumer.New(c.r.b, c.opts...)
	if err != nil {
		c.r.t.Fatalf("consumer.New: %v", err)
	}
	c.c = cl
	for _, tp := range c.r.order {
		at := c.randomOffset(tp)
		if p, ok := c.pos[tp]; ok {
			at = consumer.At(p) // carried over: no seek
		} else {
			c.seeked(tp, at)
		}
		if err := cl.Assign(tp.topic, tp.part, at); err != nil {
			c.r.failf("consumer %d: Assign %s: %v", c.idx, tp, err)
		}
	}
	ctx, cancel := context.WithCancel(c.r.ctx)
	c.cancel, c.done = cancel, make(chan struct{})
	go c.run(ctx)
}

func (c *rcCons) stop() {
	c.cancel()
	testkit.Await(c.r.t, c.done, "the consumer goroutine's return")
	for _, tp := range c.r.order {
		if p, ok := c.c.Position(tp.topic, tp.part); ok {
			c.pos[tp] = p
		} else {
			delete(c.pos, tp)
		}
	}
	if err := c.c.Close(); err != nil {
		c.r.failf("consumer %d: Close: %v", c.idx, err)
	}
}

func (c *rcCons) randomOffset(tp rcTP) consumer.Offset {
	switch c.rng.IntN(5) {
	case 0:
		return consumer.Start()
	case 1:
		return consumer.End()
	case 2:
		return consumer.AtTime(time.UnixMilli(c.r.clock.ms.Load() - c.rng.Int64N(30_000)))
	}
	c.r.mu.Lock()
	part := c.r.parts[tp]
	o := part.start + c.rng.Int64N(max(part.end-part.start, 0)+3)
	c.r.mu.Unlock()
	return consumer.At(o)
}

// seeked notes a seek of the test's own.
func (c *rcCons) seeked(tp rcTP, at consumer.Offset) {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	c.last[tp] = -1
	c.beyond[tp] = strings.Trim(at.String(), "0123456789") == ""
}

// run reads until ctx ends.
func (c *rcCons) run(ctx context.Context) {
	defer close(c.done)
	for ctx.Err() == nil {
		switch c.rng.IntN(4) {
		case 0:
			if c.calm.Load() {
				continue
			}
			tp := c.r.order[c.rng.IntN(len(c.r.order))]
			at := c.randomOffset(tp)
			c.seeked(tp, at)
			if err := c.c.Seek(tp.topic, tp.part, at); err != nil {
				c.r.failf("consumer %d: Seek %s %v: %v", c.idx, tp, at, err)
			}
		case 1:
			fs, err := c.c.Poll(ctx)
			if err != nil {
				if ctx.Err() == nil {
					c.r.failf("consumer %d: Poll: %v", c.idx, err)
				}
				for _, f := range fs {
					if f.Err != nil {
						c.partitionError(f.Err)
					}
				}
				continue
			}
			for _, f := range fs {
				if f.Err != nil {
					c.partitionError(f.Err)
					continue
				}
				tp := rcTP{f.Topic, f.Partition}
				if f.LogStartOffset < c.starts[tp] || f.HighWatermark < c.hws[tp] {
					c.r.failf("consumer %d: %s: a poll answered log start %d, high watermark %d; an earlier one %d, %d",
						c.idx, tp, f.LogStartOffset, f.HighWatermark, c.starts[tp], c.hws[tp])
				}
				c.starts[tp], c.hws[tp] = max(c.starts[tp], f.LogStartOffset), max(c.hws[tp], f.HighWatermark)
				f.EachRecord(func(rec *record.Record) { c.record(rcTP{f.Topic, f.Partition}, rec) })
			}
		default:
			n := 1 + c.rng.IntN(30)
			for rec, err := range c.c.Records(ctx) {
				if err != nil && err == ctx.Err() {
					break // the last: the run is over
				}
				if err != nil {
					c.partitionError(err)
				} else {
					c.record(rcTP{rec.Topic, rec.Partition}, rec)
				}
				if n--; n == 0 {
					break
				}
			}
		}
	}
}

func (c *rcCons) partitionError(err error) {
	var pe *consumer.PartitionError
	if !errors.As(err, &pe) || !errors.Is(err, log.ErrOffsetOutOfRange) || c.reset != consumer.ResetNone {
		c.r.failf("consumer %d (reset %v): unexpected error %v", c.idx, c.reset, err)
		return
	}
	tp := rcTP{pe.Topic, pe.Partition}
	lo, lerr := c.r.b.ListOffset(c.r.ctx, tp.topic, tp.part, api.Earliest)
	c.r.mu.Lock()
	beyond := c.beyond[tp]
	c.r.mu.Unlock()
	if lerr == nil && pe.Offset >= lo.Offset && !beyond {
		c.r.failf("consumer %d: %s: offset %d out of range, log start %d, and no seek past the end", c.idx, tp, pe.Offset, lo.Offset)
	}
	at := consumer.Start()
	c.seeked(tp, at)
	if err := c.c.Seek(tp.topic, tp.part, at); err != nil {
		c.r.failf("consumer %d: Seek %s: %v", c.idx, tp, err)
	}
}

func (c *rcCons) record(tp rcTP, rec *record.Record) {
	c.reads.Add(1)
	r := c.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.parts[tp]; !ok {
		r.failLocked("consumer %d: a record of %s, which is not assigned", c.idx, tp)
		return
	}
	r.seenLocked(fmt.Sprintf("consumer %d", c.idx), tp, rec)
	last := c.last[tp]
	if last >= 0 && rec.Offset <= last {
		r.failLocked("consumer %d: %s: offset %d after %d, without a seek", c.idx, tp, rec.Offset, last)
	}
	if last >= 0 && rec.Offset > last+1 {
		r.gaps = append(r.gaps, rcGap{cons: c.idx, tp: tp, from: last, to: rec.Offset, reset: c.reset})
	}
	c.last[tp] = rec.Offset
	c.beyond[tp] = false
}
