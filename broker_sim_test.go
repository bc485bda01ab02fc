package runnel_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// TestBrokerSim is a whole-broker deterministic simulation of the
// durability and ordering contract. For each seed one goroutine drives a
// broker on a vfs.MemFS with a fake clock (the broker's own maintenance
// never runs: its interval is an hour; the schedule calls Maintain) through
// a random schedule of:
//
//   - produces (acks all) of batches of keyed records with random headers,
//     tombstones and codecs, by a plain producer and by idempotent
//     producers (raw batches with their ids and sequences), and retries of
//     an idempotent producer's last batch;
//   - consumers fetching from their positions and seeking (to the start,
//     the end, an offset between);
//   - the clock moving, Maintain, DeleteRecords, AlterTopicConfig with a
//     new random config (cleanup policy, segment size, retention by time
//     and size, each fsync policy, timestamp type), CreatePartitions,
//     DeleteTopic and CreateTopic again under the same name;
//   - a clean Close and Open, and a power cut (CrashClone with a random
//     tail mode, with and without Reorder) followed by Open, now and then
//     after one or more Opens that a dying disk and another power cut
//     ended part way;
//   - a step that writes on a disk that dies after a random number of
//     operations, and a power cut: its effect is in doubt.
//
// After every step the broker is compared with a model:
//
//   - every produce lands at the model's log end (offsets strictly increase,
//     never reused while the record there is in the log), and an
//     idempotent retry of the last batch is a duplicate at its offset;
//   - a read of every partition from its log start to its high watermark
//     finds each record at its offset with its key, value, headers and
//     timestamp, nothing that was not acknowledged, and every acknowledged
//     record at or past the log start but those compaction may have
//     removed (a tombstone, or a record of a key with a later record):
//     compaction keeps the last value of each key;
//   - the log start never passes an acknowledged DeleteRecords offset
//     backwards, and moves only with DeleteRecords on a topic that never
//     had retention; the log start and high watermark never go back but
//     after a crash, and after a clean reopen the high watermark is the
//     log end of before;
//   - after a crash: the topics, IDs, partition counts and configs are the
//     acknowledged ones; every record acknowledged while its topic was
//     SyncAlways, or under SyncPeriodic up to an append that made
//     flush.messages due (counted from what was durable: see
//     simPart.flushLo), all but the last FlushMessages-1 offsets, and
//     below the last roll, or before a clean Close, is there; the
//     log end is past the log start; an idempotent producer's last batch,
//     retried, is a duplicate at its offset if it survived, and else
//     appended at the log end (or refused as out of sequence);
//   - a consumer never sees a record at two offsets (but one that a crash
//     took and its retry put back).
//
// go test runs 10 seeds of 250 steps (4 of 150 with -short). A long run:
//
//	RUNNEL_BROKER_SIM=2000 go test -run TestBrokerSim -timeout 1h .
//
// RUNNEL_BROKER_SIM_BASE=S sets the first seed (with RUNNEL_BROKER_SIM=1, replays
// seed S exactly); RUNNEL_BROKER_SIM_LOG=1 logs the steps.
func TestBrokerSim(t *testing.T) {
	testkit.Seeds(t, "RUNNEL_BROKER_SIM", 10, 4, func(t *testing.T, seed uint64) {
		s := newSim(t, seed)
		s.run(simSteps(t))
	})
}

func simSteps(t *testing.T) int {
	if testing.Short() {
		return 150
	}
	return 250
}

type simClock struct{ ms atomic.Int64 }

func (c *simClock) Now() time.Time { return time.UnixMilli(c.ms.Load()) }

// simRec is one acknowledged record.
type simRec struct {
	id         int64
	key, value []byte // value nil: a tombstone
	headers    []record.Header
	ts         int64
	appendTime bool // its topic stamped it: ts is not checked
}

type simPart struct {
	recs map[int64]*simRec // offset → acknowledged record
	end  int64             // the log end the model expects
	// durable is the offset below which every record must survive a crash.
	durable int64
	// flushLo and flushHi bound, under SyncPeriodic, the offset from
	// which the log counts flush.messages (see log.Config.FlushMessages):
	// the highest of its durable offset, its active segment's base (which
	// the model reads from the segment files' names) and the end of the
	// last flush made due. An append whose offsets from flushHi on reach
	// FlushMessages was due, and is acknowledged once synced; one whose
	// offsets from flushLo on do not was not; between, the model is not
	// sure which (flushHi goes up to the end: it may have been). Either
	// way, at most FlushMessages-1 acknowledged offsets are past those
	// durable, as flush.messages promises, and the segments a roll sealed
	// are durable.
	flushLo, flushHi int64
	// maybeStart is the largest offset a DeleteRecords that failed on a
	// dying disk may have moved the log start to.
	maybeStart int64
	// minStart is the largest offset an acknowledged DeleteRecords moved
	// the log start to: it never goes back, not even in a crash.
	minStart int64
	// the log start and high watermark last seen
	start, hw int64
}

type simTopic struct {
	name string
	gen  int // its incarnation
	id   log.TopicID
	cfg  log.Config // as set (the Overrides)
	// everCompact: some config it had compacted, so records may be gone.
	// everRetention: some config it had could move its log start.
	everCompact, everRetention bool
	parts                      []*simPart
}

func (tp *simTopic) eff() log.Config { return tp.cfg.WithDefaults() }

// simBatch is an idempotent producer's last batch on one partition.
type simBatch struct {
	seq   int32
	recs  []*simRec
	codec compression.Codec
	base  int64
}

type simProducer struct {
	pid  int64
	seq  map[string]int32     // partition key → next sequence
	last map[string]*simBatch // partition key → its last acknowledged batch
}

type simConsumer struct {
	ids  map[string]log.TopicID     // partition key → the topic ID it reads
	pos  map[string]int64           // partition key → next offset
	seen map[string]map[int64]int64 // partition key → record id → offset
}

type sim struct {
	t       *testing.T
	seed    uint64
	rng     *rand.Rand
	verbose bool
	ctx     context.Context
	mem     *vfs.MemFS
	clock   *simClock
	cfg     runnel.Config
	b       *runnel.Broker

	topics map[string]*simTopic
	names  []string
	nextID int64
	prods  []*simProducer
	cons   []*simConsumer
	step   int
	failed bool

	// die, when not negative, is how many more file-system operations
	// the disk does before it fails every one (see dyingStep).
	die atomic.Int64
	// dying: the step runs on a dying disk, and may fail; what it did is
	// in doubt until the crash that follows shows it.
	dying bool
	// the in-doubt AlterTopicConfig (its new config) and CreatePartitions
	doubtAlter *simTopic
	doubtCfg   log.Config
	doubtGrow  *simTopic
}

func newSim(t *testing.T, seed uint64) *sim {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	s := &sim{
		t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 0x5133)),
		verbose: os.Getenv("RUNNEL_BROKER_SIM_LOG") != "",
		ctx:     ctx, mem: vfs.NewMem(), clock: &simClock{},
		topics: map[string]*simTopic{},
	}
	s.clock.ms.Store(1_700_000_000_000)
	s.die.Store(-1)
	s.cfg = runnel.Config{
		Dir: "/data", FS: s.disk(s.mem), Clock: s.clock,
		MaintenanceInterval:  time.Hour,
		ProducerIDExpiration: -1,
	}
	return s
}

// disk is mem behind the injector of s.die.
func (s *sim) disk(mem *vfs.MemFS) vfs.FS {
	return vfs.WithFaults(mem, vfs.InjectorFunc(func(vfs.Op, string) error {
		if s.die.Load() >= 0 && s.die.Add(-1) < 0 {
			return vfs.ErrInjected
		}
		return nil
	}))
}

func (s *sim) logf(format string, args ...any) {
	if s.verbose {
		s.t.Helper()
		s.t.Logf("step %d: "+format, append([]any{s.step}, args...)...)
	}
}

func (s *sim) failf(format string, args ...any) {
	s.t.Helper()
	s.failed = true
	s.t.Fatalf("seed %d step %d: "+format, append([]any{s.seed, s.step}, args...)...)
}

func pkey(topic string, p int) string { return topic + "/" + strconv.Itoa(p) }

func (s *sim) run(steps int) {
	s.open()
	defer func() {
		if s.b != nil {
			if err := s.b.Close(); err != nil && !s.failed {
				s.t.Errorf("Close: %v", err)
			}
		}
	}()
	for i := range 2 + s.rng.IntN(2) {
		s.createTopic(fmt.Sprintf("t%d", i))
	}
	for range 2 {
		s.newProducer()
	}
	for range 2 {
		s.cons = append(s.cons, &simConsumer{ids: map[string]log.TopicID{}, pos: map[string]int64{}, seen: map[string]map[int64]int64{}})
	}
	for s.step = 0; s.step < steps; s.step++ {
		s.oneStep()
		s.check("after the step")
	}
	s.restart()
	s.check("at the end")
}

func (s *sim) open() {
	b, err := runnel.Open(s.cfg)
	if err != nil {
		s.failf("Open: %v", err)
	}
	s.b = b
}

func (s *sim) newProducer() {
	pid, _, err := s.b.InitProducerID(s.ctx)
	if err != nil {
		s.failf("InitProducerID: %v", err)
	}
	for _, p := range s.prods {
		if p.pid >= pid {
			s.failf("producer id %d after %d", pid, p.pid)
		}
	}
	s.prods = append(s.prods, &simProducer{pid: pid, seq: map[string]int32{}, last: map[string]*simBatch{}})
}

func (s *sim) randomConfig() log.Config {
	c := log.Config{
		CleanupPolicy: []log.CleanupPolicy{log.Delete, log.Compact, log.Compact | log.Delete}[s.rng.IntN(3)],
		SegmentBytes:  int64(200 + s.rng.IntN(1500)),
		Sync:          []log.SyncPolicy{log.SyncAlways, log.SyncNever, log.SyncPeriodic}[s.rng.IntN(3)],
		RetentionTime: -1,
		// Tombstones and cleanable segments go at once, or after a while.
		DeleteRetentionTime:    []time.Duration{-1, 2 * time.Second}[s.rng.IntN(2)],
		MinCleanableDirtyRatio: []float64{-1, 0.3}[s.rng.IntN(2)],
	}
	if s.rng.IntN(6) == 0 {
		c.SegmentBytes = 14 // a segment per batch
	}
	if c.Sync == log.SyncPeriodic {
		c.FlushMessages = int64(1 + s.rng.IntN(8))
	}
	if s.rng.IntN(3) == 0 {
		c.RetentionTime = time.Duration(5+s.rng.IntN(30)) * time.Second
	}
	if s.rng.IntN(3) == 0 {
		c.RetentionBytes = int64(1000 + s.rng.IntN(4000))
	}
	if s.rng.IntN(5) == 0 {
		c.TimestampType = log.LogAppendTime
	}
	if s.rng.IntN(4) == 0 {
		c.SegmentTime = time.Duration(1+s.rng.IntN(5)) * time.Second
	}
	return c
}

func (s *sim) noteConfig(tp *simTopic) {
	e := tp.eff()
	if e.CleanupPolicy&log.Compact != 0 {
		tp.everCompact = true
	}
	if e.CleanupPolicy&log.Delete != 0 && (e.RetentionTime >= 0 || e.RetentionBytes >= 0) {
		tp.everRetention = true
	}
}

func (s *sim) createTopic(name string) {
	c := s.randomConfig()
	n := 1 + s.rng.IntN(3)
	s.logf("CreateTopic %s: %d partitions, %+v", name, n, c)
	if err := s.b.CreateTopic(s.ctx, name, log.TopicConfig{Partitions: n, Config: c}); err != nil {
		s.failf("CreateTopic %s: %v", name, err)
	}
	info, err := s.b.DescribeTopic(s.ctx, name)
	if err != nil {
		s.failf("DescribeTopic %s: %v", name, err)
	}
	gen := 0
	if old := s.topics[name]; old != nil {
		gen = old.gen + 1
	}
	for _, old := range s.topics {
		if old.id == info.ID {
			s.failf("topic %s created with the ID of %s", name, old.name)
		}
	}
	tp := &simTopic{name: name, gen: gen, id: info.ID, cfg: c}
	for range n {
		tp.parts = append(tp.parts, &simPart{recs: map[int64]*simRec{}})
	}
	s.noteConfig(tp)
	if s.topics[name] == nil {
		s.names = append(s.names, name)
	}
	s.topics[name] = tp
}

func (s *sim) pickPart() (*simTopic, int) {
	tp := s.topics[s.names[s.rng.IntN(len(s.names))]]
	return tp, s.rng.IntN(len(tp.parts))
}

func (s *sim) oneStep() {
	op := s.rng.IntN(100)
	switch {
	case op < 40:
		s.produce()
	case op < 45:
		s.retryLast()
	case op < 58:
		s.consume()
	case op < 66:
		d := s.rng.Int64N(4000)
		if s.rng.IntN(6) == 0 {
			d = s.rng.Int64N(60_000)
		}
		s.logf("clock +%dms", d)
		s.clock.ms.Add(d)
	case op < 73:
		s.logf("Maintain")
		if err := s.b.Maintain(s.ctx); err != nil {
			s.failf("Maintain: %v", err)
		}
	case op < 78:
		s.deleteRecords()
	case op < 81:
		s.alter()
	case op < 83:
		s.grow()
	case op < 85:
		s.recreate()
	case op < 90:
		s.restart()
	case op < 95:
		s.crash()
	default:
		s.dyingStep()
	}
}

// dyingStep runs a step that writes on a disk that dies after a random
// number of operations, and then cuts the power: the step may have
// failed, its effect on disk whole, in part or not at all, and the model
// accepts each way it may have reached the disk.
func (s *sim) dyingStep() {
	k := s.rng.Int64N(40)
	s.logf("the disk dies after %d operations", k)
	s.dying = true
	s.die.Store(k)
	switch s.rng.IntN(6) {
	case 0, 1:
		s.produce()
	case 2:
		s.retryLast()
	case 3:
		s.logf("Maintain")
		if err := s.b.Maintain(s.ctx); err != nil {
			s.logf("Maintain: %v", err)
		}
	case 4:
		s.deleteRecords()
	default:
		if s.rng.IntN(2) == 0 {
			s.alter()
		} else {
			s.grow()
		}
	}
	s.crash()
}

var simCodecs = []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd}

func (s *sim) newRecords(tp *simTopic) []*simRec {
	var recs []*simRec
	appendTime := tp.eff().TimestampType == log.LogAppendTime
	for range 1 + s.rng.IntN(4) {
		s.nextID++
		r := &simRec{
			id:         s.nextID,
			key:        []byte("k" + strconv.Itoa(s.rng.IntN(6))),
			ts:         s.clock.ms.Load() - s.rng.Int64N(3000),
			appendTime: appendTime,
		}
		if s.rng.IntN(8) != 0 {
			r.value = fmt.Appendf(nil, "v%d-%s", r.id, bytes.Repeat([]byte{'x'}, s.rng.IntN(60)))
		}
		r.headers = []record.Header{{Key: "id", Value: []byte(strconv.FormatInt(r.id, 10))}}
		for i := range s.rng.IntN(3) {
			r.headers = append(r.headers, record.Header{Key: "h" + strconv.Itoa(i), Value: []byte(strconv.Itoa(s.rng.IntN(100)))})
		}
		recs = append(recs, r)
	}
	return recs
}

func encodeSim(recs []*simRec, pid int64, seq int32, codec compression.Codec) []byte {
	var bl record.Builder
	bl.Reset()
	if pid >= 0 {
		bl.SetProducer(pid, 0, seq)
	}
	for _, r := range recs {
		bl.Append(r.ts, r.key, r.value, r.headers)
	}
	data, err := bl.AppendTo(nil, codec)
	if err != nil {
		panic(err)
	}
	return data
}

// produce appends one batch, plain or of an idempotent producer.
func (s *sim) produce() {
	tp, p := s.pickPart()
	part := tp.parts[p]
	recs := s.newRecords(tp)
	codec := simCodecs[s.rng.IntN(len(simCodecs))]
	var prod *simProducer
	pid, seq := int64(-1), int32(0)
	key := pkey(tp.name, p)
	if s.rng.IntN(2) == 0 {
		prod = s.prods[s.rng.IntN(len(s.prods))]
		pid, seq = prod.pid, prod.seq[key]
	}
	s.logf("produce %d records to %s (%s, pid %d seq %d, ids %d..)", len(recs), key, codec, pid, seq, recs[0].id)
	resp, err := s.b.Produce(s.ctx, &api.ProduceRequest{Topic: tp.name, Partition: int32(p), Acks: api.AcksAll, Batches: encodeSim(recs, pid, seq, codec)})
	if err != nil && s.dying {
		// In doubt: at the log end, or not in the log at all.
		s.logf("Produce to %s on a dying disk: %v", key, err)
		for i, r := range recs {
			part.recs[part.end+int64(i)] = r
		}
		if prod != nil {
			prod.seq[key] = seq + int32(len(recs))
			prod.last[key] = &simBatch{seq: seq, recs: recs, codec: codec, base: part.end}
		}
		part.end += int64(len(recs))
		part.flushHi = part.end // a flush may have been due, and run
		return
	}
	if err != nil {
		s.failf("Produce to %s: %v", key, err)
	}
	if resp.Duplicate || resp.BaseOffset != part.end {
		s.failf("Produce to %s: at %d (duplicate %v), want %d", key, resp.BaseOffset, resp.Duplicate, part.end)
	}
	s.acked(tp, p, recs, resp)
	if prod != nil {
		prod.seq[key] = seq + int32(len(recs))
		prod.last[key] = &simBatch{seq: seq, recs: recs, codec: codec, base: resp.BaseOffset}
	}
}

// acked notes recs as acknowledged at resp.BaseOffset, in partition p of
// tp.
func (s *sim) acked(tp *simTopic, p int, recs []*simRec, resp api.ProduceResponse) {
	part := tp.parts[p]
	for i, r := range recs {
		// (The topic's type now: a retry that appends a batch again after
		// a crash is stamped as the topic says then.)
		r.appendTime = tp.eff().TimestampType == log.LogAppendTime
		if r.appendTime {
			r.ts = resp.LogAppendTime
		}
		part.recs[resp.BaseOffset+int64(i)] = r
	}
	part.end = resp.BaseOffset + int64(len(recs))
	switch e := tp.eff(); e.Sync {
	case log.SyncAlways:
		part.durable = part.end
	case log.SyncPeriodic:
		base := s.activeBase(tp.name, p)
		part.durable = max(part.durable, base) // the rolls synced the segments they sealed
		part.flushLo, part.flushHi = max(part.flushLo, base), max(part.flushHi, base)
		if n := e.FlushMessages; n > 0 {
			switch {
			case part.end-part.flushHi >= n: // due
				part.durable, part.flushLo, part.flushHi = part.end, part.end, part.end
			case part.end-part.flushLo >= n: // maybe due
				part.flushHi = part.end
			}
			part.durable = max(part.durable, part.end-n+1)
		}
	}
}

// activeBase is the base offset of the active segment of partition p of
// topic, the largest of its segment files' (read from the memory FS
// itself, whatever the disk's injector does).
func (s *sim) activeBase(topic string, p int) int64 {
	dir := filepath.Join(s.cfg.Dir, topic+"-"+strconv.Itoa(p))
	names, err := s.mem.List(dir)
	if err != nil {
		s.failf("listing %s: %v", dir, err)
	}
	return largestSegmentBase(names)
}

// retryLast sends an idempotent producer's last batch on a partition
// again: a duplicate, answered with its offset.
func (s *sim) retryLast() {
	prod := s.prods[s.rng.IntN(len(s.prods))]
	keys := slices.Sorted(mapKeys(prod.last))
	if len(keys) == 0 {
		return
	}
	key := keys[s.rng.IntN(len(keys))]
	last := prod.last[key]
	tp, p := s.splitKey(key)
	s.logf("retry pid %d seq %d on %s", prod.pid, last.seq, key)
	resp, err := s.b.Produce(s.ctx, &api.ProduceRequest{Topic: tp.name, Partition: int32(p), Acks: api.AcksAll, Batches: encodeSim(last.recs, prod.pid, last.seq, last.codec)})
	if err != nil && s.dying {
		s.logf("retry on a dying disk: %v", err)
		return
	}
	if err != nil || !resp.Duplicate || resp.BaseOffset != last.base {
		s.failf("retry of pid %d seq %d on %s: %+v, %v; want a duplicate at %d", prod.pid, last.seq, key, resp, err, last.base)
	}
}

func (s *sim) splitKey(key string) (*simTopic, int) {
	for _, tp := range s.topics {
		for p := range tp.parts {
			if pkey(tp.name, p) == key {
				return tp, p
			}
		}
	}
	s.failf("no partition %s", key)
	return nil, 0
}

// consume makes one consumer fetch from one partition, now and then after
// a seek.
func (s *sim) consume() {
	c := s.cons[s.rng.IntN(len(s.cons))]
	tp, p := s.pickPart()
	part := tp.parts[p]
	key := pkey(tp.name, p)
	if id, ok := c.ids[key]; ok && id != tp.id {
		// Its topic was deleted and created again: a fetch by the old
		// ID finds nothing of the new one.
		resp, err := s.b.Fetch(s.ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: tp.name, TopicID: id, Partition: int32(p), Offset: c.pos[key]}}})
		if err != nil || !errors.Is(resp.Partitions[0].Err, runnel.ErrUnknownTopicID) || len(resp.Partitions[0].Records) > 0 {
			s.failf("Fetch %s by the ID of a deleted incarnation: %v, %+v; want ErrUnknownTopicID", key, err, resp.Partitions)
		}
		s.logf("consumer of %s's old incarnation: ErrUnknownTopicID", key)
		delete(c.pos, key)
		delete(c.seen, key)
	}
	c.ids[key] = tp.id
	pos, ok := c.pos[key]
	if !ok || s.rng.IntN(5) == 0 {
		switch s.rng.IntN(3) {
		case 0:
			pos = part.start
		case 1:
			pos = part.hw
		default:
			pos = part.start + s.rng.Int64N(part.hw-part.start+1)
		}
		s.logf("consumer seeks %s to %d", key, pos)
	}
	resp, err := s.b.Fetch(s.ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: tp.name, TopicID: tp.id, Partition: int32(p), Offset: pos, MaxBytes: 1 + s.rng.IntN(600)}}})
	if err != nil {
		s.failf("Fetch %s at %d: %v", key, pos, err)
	}
	fp := resp.Partitions[0]
	if errors.Is(fp.Err, log.ErrOffsetOutOfRange) {
		if pos >= fp.LogStartOffset && pos <= fp.HighWatermark {
			s.failf("Fetch %s at %d: out of range in [%d, %d]", key, pos, fp.LogStartOffset, fp.HighWatermark)
		}
		s.logf("consumer at %d out of range on %s: reset to %d", pos, key, fp.LogStartOffset)
		c.pos[key] = fp.LogStartOffset
		return
	}
	if fp.Err != nil {
		s.failf("Fetch %s at %d: %v", key, pos, fp.Err)
	}
	seen := c.seen[key]
	if seen == nil {
		seen = map[int64]int64{}
		c.seen[key] = seen
	}
	n := 0
	s.eachRecord(key, fp.Records, func(off int64, r *record.Record) {
		if off < pos {
			return
		}
		if off >= fp.HighWatermark {
			s.failf("consumer of %s read offset %d at or past the high watermark %d", key, off, fp.HighWatermark)
		}
		want := s.checkRecord(tp, part, off, r)
		if was, ok := seen[want.id]; ok && was != off {
			s.failf("consumer saw record %d of %s at %d and at %d", want.id, key, was, off)
		}
		seen[want.id] = off
		pos = off + 1
		n++
	})
	c.pos[key] = pos
	s.logf("consumer read %d records of %s, now at %d", n, key, pos)
}

// eachRecord decodes fetched batches, checking that offsets strictly
// increase.
func (s *sim) eachRecord(key string, data []byte, f func(off int64, r *record.Record)) {
	last := int64(-1)
	for b, err := range record.Batches(data) {
		if err != nil {
			s.failf("%s: batches: %v", key, err)
		}
		for r, err := range b.Records() {
			if err != nil {
				s.failf("%s: records: %v", key, err)
			}
			if r.Offset <= last {
				s.failf("%s: offset %d after %d", key, r.Offset, last)
			}
			last = r.Offset
			f(r.Offset, r)
		}
	}
}

// checkRecord checks that r is the record acknowledged at off.
func (s *sim) checkRecord(tp *simTopic, part *simPart, off int64, r *record.Record) *simRec {
	key := tp.name
	want := part.recs[off]
	if want == nil {
		s.failf("%s: a record at %d that was never acknowledged there (headers %q)", key, off, r.Headers)
	}
	if !bytes.Equal(r.Key, want.key) || !bytes.Equal(r.Value, want.value) || (r.Value == nil) != (want.value == nil) ||
		!slices.EqualFunc(r.Headers, want.headers, func(a, b record.Header) bool { return a.Key == b.Key && bytes.Equal(a.Value, b.Value) }) {
		s.failf("%s: at %d %q=%q %q, want record %d %q=%q %q", key, off, r.Key, r.Value, r.Headers, want.id, want.key, want.value, want.headers)
	}
	if !want.appendTime && r.Timestamp.UnixMilli() != want.ts {
		s.failf("%s: record %d at %d has timestamp %d, want %d", key, want.id, off, r.Timestamp.UnixMilli(), want.ts)
	}
	return want
}

func (s *sim) deleteRecords() {
	tp, p := s.pickPart()
	part := tp.parts[p]
	off := part.start + s.rng.Int64N(part.hw-part.start+1)
	arg := off
	if s.rng.IntN(6) == 0 {
		arg, off = api.Latest, part.hw // everything up to the high watermark
	}
	s.logf("DeleteRecords %s before %d", pkey(tp.name, p), off)
	start, err := s.b.DeleteRecords(s.ctx, tp.name, int32(p), arg)
	if tp.eff().CleanupPolicy&log.Delete == 0 {
		if !errors.Is(err, runnel.ErrPolicyViolation) {
			s.failf("DeleteRecords on compacted %s: %v, want ErrPolicyViolation", tp.name, err)
		}
		return
	}
	if err != nil && s.dying {
		s.logf("DeleteRecords on a dying disk: %v", err)
		part.maybeStart = max(part.maybeStart, off)
		return
	}
	if err != nil {
		s.failf("DeleteRecords %s before %d: %v", pkey(tp.name, p), off, err)
	}
	if start < off {
		s.failf("DeleteRecords %s before %d: start %d", pkey(tp.name, p), off, start)
	}
	part.minStart = max(part.minStart, off)
}

func (s *sim) alter() {
	tp := s.topics[s.names[s.rng.IntN(len(s.names))]]
	c := s.randomConfig()
	s.logf("AlterTopicConfig %s %+v", tp.name, c)
	if err := s.b.AlterTopicConfig(s.ctx, tp.name, c); err != nil {
		if !s.dying {
			s.failf("AlterTopicConfig %s: %v", tp.name, err)
		}
		s.logf("AlterTopicConfig on a dying disk: %v", err)
		s.doubtAlter, s.doubtCfg = tp, c
		old := tp.cfg
		tp.cfg = c
		s.noteConfig(tp) // what it may have had
		tp.cfg = old
		return
	}
	tp.cfg = c
	s.noteConfig(tp)
	for _, part := range tp.parts {
		part.flushHi = part.end // its logs opened again, Close syncing them (unless the change needed no reopen)
	}
}

func (s *sim) grow() {
	tp := s.topics[s.names[s.rng.IntN(len(s.names))]]
	if len(tp.parts) >= 4 {
		return
	}
	n := len(tp.parts) + 1
	s.logf("CreatePartitions %s %d", tp.name, n)
	if err := s.b.CreatePartitions(s.ctx, tp.name, n); err != nil {
		if !s.dying {
			s.failf("CreatePartitions %s %d: %v", tp.name, n, err)
		}
		s.logf("CreatePartitions on a dying disk: %v", err)
		s.doubtGrow = tp
		return
	}
	tp.parts = append(tp.parts, &simPart{recs: map[int64]*simRec{}})
}

// recreate deletes a topic and creates it again: nothing of the old one
// may show in the new one.
func (s *sim) recreate() {
	tp := s.topics[s.names[s.rng.IntN(len(s.names))]]
	s.logf("DeleteTopic %s", tp.name)
	if err := s.b.DeleteTopic(s.ctx, tp.name); err != nil {
		s.failf("DeleteTopic %s: %v", tp.name, err)
	}
	for p := range tp.parts {
		key := pkey(tp.name, p)
		for _, prod := range s.prods {
			delete(prod.seq, key)
			delete(prod.last, key)
		}
	}
	s.createTopic(tp.name)
}

func (s *sim) restart() {
	s.logf("Close and Open")
	if err := s.b.Close(); err != nil {
		s.failf("Close: %v", err)
	}
	s.b = nil
	s.open()
	for _, name := range s.names {
		for _, part := range s.topics[name].parts {
			part.durable, part.flushLo, part.flushHi = part.end, part.end, part.end
		}
	}
	s.checkTopics()
	for _, name := range s.names {
		tp := s.topics[name]
		info := s.describe(tp)
		for p, part := range tp.parts {
			pi := info.Partitions[p]
			if pi.LogEndOffset != part.end || pi.HighWatermark != part.end {
				s.failf("%s after a clean reopen: log end %d, high watermark %d, want both %d", pkey(name, p), pi.LogEndOffset, pi.HighWatermark, part.end)
			}
		}
	}
}

// crash cuts the power and opens what the disk kept.
func (s *sim) crash() {
	opts := vfs.CrashOptions{
		Tail:    []vfs.TailMode{vfs.TailDrop, vfs.TailTorn, vfs.TailZeros, vfs.TailGarbage}[s.rng.IntN(4)],
		Rand:    rand.New(rand.NewPCG(s.seed, uint64(s.step))),
		Reorder: s.rng.IntN(2) == 0,
	}
	s.logf("crash (%s, reorder %v)", opts.Tail, opts.Reorder)
	clone := s.mem.CrashClone(opts)
	if err := s.b.Close(); err != nil && !s.dying {
		s.failf("Close before the crash: %v", err)
	}
	s.mem, s.cfg.FS = clone, s.disk(clone)
	for s.rng.IntN(4) == 0 {
		// The power goes again during the Open after the crash, its
		// recovery part done, its disk dying first now and then.
		k := s.rng.Int64N(80)
		s.logf("Open, and the disk dies after %d operations, and the power goes", k)
		s.die.Store(k)
		if b, err := runnel.Open(s.cfg); err == nil {
			b.Close() // on a dead disk: fails, or not
		}
		s.die.Store(-1)
		clone = s.mem.CrashClone(vfs.CrashOptions{
			Tail: []vfs.TailMode{vfs.TailDrop, vfs.TailTorn, vfs.TailZeros, vfs.TailGarbage}[s.rng.IntN(4)],
			Rand: rand.New(rand.NewPCG(s.seed, uint64(s.step)<<8|uint64(k))), Reorder: s.rng.IntN(2) == 0,
		})
		s.mem, s.cfg.FS = clone, s.disk(clone)
	}
	s.die.Store(-1)
	s.b = nil
	s.open()
	s.dying = false
	s.checkTopics()
	if tp := s.doubtAlter; tp != nil {
		s.doubtAlter = nil
		if info, err := s.b.DescribeTopic(s.ctx, tp.name); err == nil && info.Overrides == s.doubtCfg {
			tp.cfg = s.doubtCfg
		}
	}
	if tp := s.doubtGrow; tp != nil {
		s.doubtGrow = nil
		if info, err := s.b.DescribeTopic(s.ctx, tp.name); err == nil && len(info.Partitions) == len(tp.parts)+1 {
			tp.parts = append(tp.parts, &simPart{recs: map[int64]*simRec{}})
		}
	}
	lost := map[int64]bool{}
	recovered := map[string]int64{} // partition key → its log end after the crash
	// emptied: partitions whose log start the model does not know to be
	// durable below: a crash may have left their log ending below their
	// log start, which Open empties, forgetting the producers (see
	// log.Open).
	emptied := map[string]bool{}
	for _, name := range s.names {
		tp := s.topics[name]
		info := s.describe(tp)
		for p, part := range tp.parts {
			key := pkey(name, p)
			pi := info.Partitions[p]
			if pi.LogEndOffset > part.end {
				s.failf("%s after the crash: log end %d past the acknowledged %d", key, pi.LogEndOffset, part.end)
			}
			if pi.LogEndOffset < part.durable {
				s.failf("%s after the crash: log end %d, but records up to %d were acknowledged durable", key, pi.LogEndOffset, part.durable)
			}
			if pi.LogStartOffset < part.minStart || pi.LogStartOffset > pi.LogEndOffset {
				s.failf("%s after the crash: log start %d, end %d; DeleteRecords moved it to %d", key, pi.LogStartOffset, pi.LogEndOffset, part.minStart)
			}
			for off, r := range part.recs {
				if off >= pi.LogEndOffset {
					lost[r.id] = true
					delete(part.recs, off)
				}
			}
			if pi.LogEndOffset < part.end {
				s.logf("%s: the crash took %d..%d", key, pi.LogEndOffset, part.end)
			}
			emptied[key] = part.durable < pi.LogStartOffset
			part.end, part.flushLo, part.flushHi = pi.LogEndOffset, pi.LogEndOffset, pi.LogEndOffset
			recovered[key] = pi.LogEndOffset
			part.start, part.hw = pi.LogStartOffset, pi.HighWatermark
		}
	}
	// Each idempotent producer retries its last batch on each partition.
	var keep []*simProducer
	for _, prod := range s.prods {
		stale := false
		for _, key := range slices.Sorted(mapKeys(prod.last)) {
			last := prod.last[key]
			tp, p := s.splitKey(key)
			part := tp.parts[p]
			resp, err := s.b.Produce(s.ctx, &api.ProduceRequest{Topic: tp.name, Partition: int32(p), Acks: api.AcksAll, Batches: encodeSim(last.recs, prod.pid, last.seq, last.codec)})
			// (Against the log end the crash left: a retry before this
			// one may have appended since.)
			kept := last.base+int64(len(last.recs)) <= recovered[key]
			dup := err == nil && resp.Duplicate && resp.BaseOffset == last.base
			again := err == nil && !resp.Duplicate && resp.BaseOffset == part.end
			switch {
			case kept && !emptied[key]:
				if !dup {
					s.failf("after the crash, retry of pid %d seq %d on %s (kept at %d): %+v, %v; want a duplicate", prod.pid, last.seq, key, last.base, resp, err)
				}
			case dup && kept:
				// Below the log start: the log kept the producer.
			case errors.Is(err, api.ErrOutOfOrderSequence):
				s.logf("after the crash, retry of pid %d seq %d on %s: out of sequence", prod.pid, last.seq, key)
				stale = true
			case again:
				s.logf("after the crash, retry of pid %d seq %d on %s: appended again at %d", prod.pid, last.seq, key, resp.BaseOffset)
				for _, r := range last.recs {
					lost[r.id] = true // seen at its old offset, if at all
				}
				s.acked(tp, p, last.recs, resp)
				last.base = resp.BaseOffset
			default:
				s.failf("after the crash, retry of pid %d seq %d on %s (at %d, lost or below the log start %d): %+v, %v; want it appended at %d", prod.pid, last.seq, key, last.base, part.start, resp, err, part.end)
			}
		}
		// A producer goes on with its id and sequences, but one whose
		// sequence the log no longer follows, which takes a new id.
		if !stale && s.rng.IntN(4) > 0 {
			keep = append(keep, prod)
		}
	}
	for _, c := range s.cons {
		for _, seen := range c.seen {
			for id := range seen {
				if lost[id] {
					delete(seen, id)
				}
			}
		}
	}
	s.prods = keep
	for len(s.prods) < 2 {
		s.newProducer()
	}
}

func (s *sim) describe(tp *simTopic) runnel.TopicInfo {
	info, err := s.b.DescribeTopic(s.ctx, tp.name)
	if err != nil {
		s.failf("DescribeTopic %s: %v", tp.name, err)
	}
	if info.ID != tp.id {
		s.failf("topic %s has ID %v, want %v", tp.name, info.ID, tp.id)
	}
	if len(info.Partitions) != len(tp.parts) {
		s.failf("topic %s has %d partitions, want %d", tp.name, len(info.Partitions), len(tp.parts))
	}
	if info.Overrides != tp.cfg {
		s.failf("topic %s has config %+v, want %+v", tp.name, info.Overrides, tp.cfg)
	}
	return info
}

func (s *sim) checkTopics() {
	got := s.b.Topics()
	slices.Sort(got)
	want := slices.Sorted(mapKeys(s.topics))
	if !slices.Equal(got, want) {
		s.failf("topics %v, want %v", got, want)
	}
}

// check reads every partition from its log start to its high watermark
// and compares it with the model.
func (s *sim) check(when string) {
	s.t.Helper()
	for _, name := range s.names {
		tp := s.topics[name]
		info := s.describe(tp)
		for p, part := range tp.parts {
			s.checkPart(when, tp, p, part, info.Partitions[p])
		}
	}
}

func (s *sim) checkPart(when string, tp *simTopic, p int, part *simPart, pi runnel.PartitionInfo) {
	key := pkey(tp.name, p)
	if pi.LogEndOffset != part.end {
		s.failf("%s %s: log end %d, want %d", key, when, pi.LogEndOffset, part.end)
	}
	if pi.HighWatermark < part.durable || pi.HighWatermark > pi.LogEndOffset {
		s.failf("%s %s: high watermark %d, durable %d, log end %d", key, when, pi.HighWatermark, part.durable, pi.LogEndOffset)
	}
	if pi.HighWatermark < part.hw {
		s.failf("%s %s: high watermark %d went back from %d", key, when, pi.HighWatermark, part.hw)
	}
	if pi.LogStartOffset < part.start || pi.LogStartOffset < part.minStart || pi.LogStartOffset > pi.HighWatermark {
		s.failf("%s %s: log start %d (was %d, DeleteRecords %d, high watermark %d)", key, when, pi.LogStartOffset, part.start, part.minStart, pi.HighWatermark)
	}
	if !tp.everRetention && (pi.LogStartOffset < part.minStart || pi.LogStartOffset > max(part.minStart, part.maybeStart)) {
		s.failf("%s %s: log start %d, but only DeleteRecords (to %d) may move it", key, when, pi.LogStartOffset, part.minStart)
	}
	part.start, part.hw = pi.LogStartOffset, pi.HighWatermark
	for _, q := range [][2]int64{{api.Earliest, pi.LogStartOffset}, {api.Latest, pi.HighWatermark}} {
		lo, err := s.b.ListOffset(s.ctx, tp.name, int32(p), q[0])
		if err != nil || lo.Offset != q[1] || lo.TopicID != tp.id {
			s.failf("%s %s: ListOffset %d: %+v, %v; want %d", key, when, q[0], lo, err, q[1])
		}
	}
	read := map[int64]bool{}
	for off := pi.LogStartOffset; off < pi.HighWatermark; {
		resp, err := s.b.Fetch(s.ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: tp.name, Partition: int32(p), Offset: off}}})
		if err != nil || resp.Partitions[0].Err != nil {
			s.failf("%s %s: Fetch at %d: %v %v", key, when, off, err, resp.Partitions)
		}
		next := off
		s.eachRecord(key, resp.Partitions[0].Records, func(o int64, r *record.Record) {
			if o < off || o >= pi.HighWatermark {
				return
			}
			s.checkRecord(tp, part, o, r)
			read[o] = true
			next = o + 1
		})
		if next == off {
			// Nothing at off: a batch emptied by compaction, or the
			// records of the fetched batches all below off.
			last := off
			for b, err := range record.Batches(resp.Partitions[0].Records) {
				if err == nil {
					last = max(last, b.NextOffset())
				}
			}
			if last == off {
				s.failf("%s %s: Fetch at %d below the high watermark %d returned nothing", key, when, off, pi.HighWatermark)
			}
			next = last
		}
		off = next
	}
	// Every acknowledged record in [start, hw) is there, but those
	// compaction may have removed: a tombstone, or a record whose key has
	// a later record. And the latest record of every key is there.
	latest := map[string]int64{}
	for off, r := range part.recs {
		if off >= pi.LogStartOffset && off < pi.HighWatermark {
			if l, ok := latest[string(r.key)]; !ok || off > l {
				latest[string(r.key)] = off
			}
		}
	}
	for off, r := range part.recs {
		if off < pi.LogStartOffset || off >= pi.HighWatermark || read[off] {
			continue
		}
		if !tp.everCompact {
			s.failf("%s %s: acknowledged record %d at %d is missing (log start %d)", key, when, r.id, off, pi.LogStartOffset)
		}
		if r.value != nil && latest[string(r.key)] == off {
			s.failf("%s %s: the last value of key %s (record %d at %d) is missing", key, when, r.key, r.id, off)
		}
	}
}
