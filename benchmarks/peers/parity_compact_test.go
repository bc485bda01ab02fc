// TestParityCompaction: TestParitySegments (parity_segments_test.go) on
// compacted logs. Topics are cleanup.policy=compact or compact,delete
// (now and then delete, changed to a compacted one later), with keys that
// repeat, tombstones, headers, idempotent producers (and retries of their
// last batch), LogAppendTime, small segment.bytes (so that the cleaner
// merges segments into groups), delete.retention.ms,
// min.compaction.lag.ms, max.compaction.lag.ms and
// min.cleanable.dirty.ratio, and config changes mid-stream
// (segment.index.bytes, index.interval.bytes, segment.bytes, segment.ms,
// message.timestamp.type, the cleanup policy and the compaction configs).
// At chosen steps runnel's maintenance runs (Broker.Maintain: retention,
// then compaction when the dirty ratio or max.compaction.lag.ms calls for
// it), and the model runs Kafka's retention and a pass of its LogCleaner
// (LogCleanerManager.grabFilthiestCompactedLog's choice, cleanableOffsets,
// Cleaner.doClean: buildOffsetMap, groupSegmentsBySize, cleanSegments,
// cleanInto's filter, MemoryRecords.filterTo); then the whole log as a
// fetch from the log start returns it (batch boundaries, sizes, max
// timestamps, delete horizons, producer ids and sequences, and each
// record's offset, key, value, headers and timestamp), the log start,
// the segment files' base offsets and ListOffsets (earliest, latest,
// MAX_TIMESTAMP, by time) are compared with the model's.
//
// The same variables as TestParitySegments set a long run:
//
//	RUNNEL_PARITY_RUNS=300 RUNNEL_PARITY_OPS=1000 RUNNEL_PARITY_SEED=random go test -run TestParityCompaction .
//
// RUNNEL_PARITY_TRACE=1 logs each operation, and RUNNEL_PARITY_LOG=1
// runnel's own log (compactions, segment deletions) on stderr.

package peers

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// TestParityCompaction runs random operation sequences on compacted
// multi-segment logs against the model of Kafka (see the file's comment).
func TestParityCompaction(t *testing.T) { paritySeeds(t, 300, runCompaction) }

func runCompaction(t *testing.T, seed uint64, ops int, known map[string]int) {
	runSegmentsMode(t, seed, ops, known, true, false)
}

// cmeta is what the cleaner needs of a modelled batch beyond mbatch.
type cmeta struct {
	pid     int64 // -1: none
	epoch   int16
	seq     int32
	horizon int64 // the delete horizon (KIP-534), 0: none
	codec   compression.Codec
	lat     bool   // stamped LogAppendTime
	src     []grec // the records as they were produced
}

// sprod is an idempotent producer's state in a modelled partition.
type sprod struct {
	epoch    int16
	next     int32  // its next sequence
	last     []byte // its last batch as sent
	lastBase int64  // where it went
	lastEnd  int64  // its last offset (lastRecordsOfActiveProducers)
	keyless  bool   // its last batch has a record without a key
}

// genCompaction draws the compaction configs: mostly compacted topics.
func (s *sstate) genCompaction(c *scfg) {
	switch s.rng.IntN(6) {
	case 0:
	case 1, 2:
		c.compactDelete = true
	default:
		c.compact = true
	}
	c.delRetMs = []int64{0, 1000, 3600 * 1000, 24 * 3600 * 1000}[s.rng.IntN(4)]
	c.minLagMs = []int64{0, 0, 60 * 1000, 3600 * 1000}[s.rng.IntN(4)]
	c.maxLagMs = []int64{0, 0, 3600 * 1000, 24 * 3600 * 1000}[s.rng.IntN(4)]
	if c.maxLagMs > 0 && c.minLagMs > c.maxLagMs {
		c.minLagMs = c.maxLagMs
	}
	c.ratio = []float64{0, 0.1, 0.5, 0.5, 0.9, 1}[s.rng.IntN(6)]
	switch s.rng.IntN(4) {
	case 0:
		c.sync = log.SyncNever
	case 1:
		c.sync, c.flushMsgs = log.SyncPeriodic, 1+s.rng.Int64N(5)
	}
	// Smaller segments: the cleaner's groups are what is compared.
	c.segBytes = []int64{14, 150, 300, 600, 1500, 1 << 20}[s.rng.IntN(6)]
	if s.rng.IntN(3) == 0 {
		c.retBytes = -1
	}
}

// alterCompaction changes one of the configs the segments test keeps.
func (s *sstate) alterCompaction(c *scfg, next scfg) {
	switch s.rng.IntN(8) {
	case 7:
		c.sync, c.flushMsgs = next.sync, next.flushMsgs
	case 0:
		c.idxBytes = next.idxBytes
	case 1:
		c.idxInterval = next.idxInterval
	case 2:
		c.compact, c.compactDelete = next.compact, next.compactDelete
	case 3:
		c.delRetMs = next.delRetMs
	case 4:
		c.minLagMs = next.minLagMs
	case 5:
		c.maxLagMs = next.maxLagMs
	default:
		c.ratio = next.ratio
	}
	if c.maxLagMs > 0 && c.minLagMs > c.maxLagMs {
		c.minLagMs = c.maxLagMs
	}
}

func (s *sstate) compactStep() {
	if len(s.pids) == 0 {
		for range 3 {
			id, _, err := s.b.InitProducerID(s.ctx)
			if err != nil {
				s.t.Fatal(err)
			}
			s.pids = append(s.pids, id)
		}
	}
	switch r := s.rng.IntN(100); {
	case r < 4 || len(s.topics) == 0:
		s.createTopic()
	case r < 5:
		s.deleteTopic()
	case r < 10:
		s.alterConfig()
	case r < 42:
		s.produceKeyed()
	case r < 45:
		s.retryLast()
	case r < 55:
		s.advance()
	case r < 63:
		s.fetch()
	case r < 72:
		s.listOffsets()
	case r < 76:
		s.deleteRecords()
	case r < 97:
		s.maintain()
	default:
		s.restart()
		// What the broker opens again is what it closed.
		for _, name := range slices.Sorted(maps.Keys(s.topics)) {
			p := s.topics[name]
			got, err := s.b.ListOffset(s.ctx, name, 0, tsEarliest)
			segs := s.runnelSegments(name)
			all, ferr := s.fetchAll(name, got.Offset)
			// runnel removes at once (DeleteRecords, but for the active
			// segment) some of the segments wholly below the log start
			// that Kafka's next retention check removes.
			k := len(p.segs) - len(segs)
			if k < 0 || k > 0 && p.segs[k].base > p.logStart || err != nil || ferr != nil || got.Offset != p.logStart ||
				!slices.Equal(segs, p.bases()[k:]) || !slices.Equal(s.segmentSizes(name, segs), p.sizes()[k:]) {
				s.fail(p, "after the restart runnel's log start %d (%v), segments %v of %v bytes (%v)", got.Offset, err, segs, s.segmentSizes(name, segs), ferr)
			} else if why := s.sameFetch(p, all); why != "" {
				s.fail(p, "after the restart: %s", why)
			}
		}
	}
}

// produceKeyed appends one batch of records with keys from a small set,
// tombstones and headers, idempotent or not.
func (s *sstate) produceKeyed() {
	name := segTopics[s.rng.IntN(len(segTopics))]
	p := s.topics[name]
	n := 1 + s.rng.IntN(4)
	if s.rng.IntN(8) == 0 {
		n = 5 + s.rng.IntN(10)
	}
	keyless := p != nil && !p.cfg.compacted() || s.rng.IntN(30) == 0
	shared := s.genTS()
	recs := make([]grec, n)
	for i := range recs {
		r := &recs[i]
		r.ts = shared
		if s.rng.IntN(3) == 0 {
			r.ts = s.genTS()
		}
		if s.rng.IntN(40) == 0 {
			r.ts = -2 - s.rng.Int64N(1000) // below -1: LogValidator takes it
		}
		if !keyless || s.rng.IntN(3) > 0 {
			r.key = []byte("k" + strconv.Itoa(s.rng.IntN(6)))
			if s.rng.IntN(20) == 0 {
				r.key = []byte{} // empty, not null: a key
			}
		}
		if s.rng.IntN(4) > 0 {
			r.value = []byte(strings.Repeat("v", s.rng.IntN(40)))
		}
		if s.rng.IntN(3) == 0 {
			for j := range 1 + s.rng.IntN(2) {
				h := record.Header{Key: "h" + strconv.Itoa(j)}
				if s.rng.IntN(4) > 0 {
					h.Value = []byte(strconv.Itoa(s.rng.IntN(1000)))
				}
				r.headers = append(r.headers, h)
			}
		}
	}
	pid := int64(-1)
	var prod *sprod
	var bl record.Builder
	if s.rng.IntN(2) == 0 {
		pid = s.pids[s.rng.IntN(len(s.pids))]
		prod = &sprod{}
		if p != nil && p.prods[pid] != nil {
			prod = p.prods[pid]
		}
		bl.SetProducer(pid, prod.epoch, prod.next)
	}
	for _, r := range recs {
		bl.Append(r.ts, r.key, r.value, r.headers)
	}
	codec := []compression.Codec{compression.None, compression.None, compression.LZ4}[s.rng.IntN(3)]
	batch, err := bl.AppendTo(nil, codec)
	if err != nil {
		s.t.Fatal(err)
	}
	s.desc = fmt.Sprintf("produce to %s: %d bytes, producer %d, %d records", name, len(batch), pid, n)
	resp, err := s.b.Produce(s.ctx, &api.ProduceRequest{Topic: name, Acks: api.AcksAll, Batches: slices.Clone(batch)})
	if p == nil {
		if api.Code(err) != codeUnknownTopic {
			s.fail(nil, "runnel code %d, Kafka %d", api.Code(err), codeUnknownTopic)
		}
		return
	}
	if p.cfg.compacted() && slices.ContainsFunc(recs, func(r grec) bool { return r.key == nil }) {
		// LogValidator: a compacted topic takes only records with a key.
		if api.Code(err) != codeInvalidRecord {
			s.fail(p, "runnel code %d (%v), Kafka %d", api.Code(err), err, codeInvalidRecord)
		}
		return
	}
	if err != nil {
		s.fail(p, "runnel: %v", err)
		return
	}
	s.checkAppended(p, resp)
	mb := mbatch{base: p.end, last: p.end + int64(n) - 1, size: len(batch), maxTS: -1,
		meta: &cmeta{pid: pid, seq: -1, codec: codec, lat: p.cfg.lat, src: recs}}
	for _, r := range decode(s.t, batch, 0) {
		r.Offset += p.end
		if p.cfg.lat {
			r.TS, r.TSType = s.now(), record.LogAppendTime
		}
		mb.maxTS = max(mb.maxTS, r.TS)
		mb.recs = append(mb.recs, r)
	}
	if prod != nil {
		mb.meta.epoch, mb.meta.seq = prod.epoch, prod.next
		prod.next += int32(n)
		prod.last, prod.lastBase, prod.lastEnd = batch, mb.base, mb.last
		prod.keyless = slices.ContainsFunc(recs, func(r grec) bool { return r.key == nil })
		if p.prods == nil {
			p.prods = map[int64]*sprod{}
		}
		p.prods[pid] = prod
	}
	s.append(p, mb)
}

// retryLast sends an idempotent producer's last batch again: Kafka answers
// it as a duplicate with its first base offset (a producer's last batch
// stays in its state, across restarts too, and compaction keeps it in the
// log), and appends nothing.
func (s *sstate) retryLast() {
	name, p := s.pickPart()
	if p == nil {
		return
	}
	for _, pid := range s.pids {
		prod := p.prods[pid]
		if prod == nil {
			continue
		}
		s.desc = fmt.Sprintf("retry producer %d's last batch to %s (at %d)", pid, name, prod.lastBase)
		resp, err := s.b.Produce(s.ctx, &api.ProduceRequest{Topic: name, Acks: api.AcksAll, Batches: slices.Clone(prod.last)})
		if prod.keyless && p.cfg.compacted() {
			// Written before the topic was compacted: LogValidator
			// refuses it before the producer state is looked at.
			if api.Code(err) != codeInvalidRecord {
				s.fail(p, "runnel: %v; Kafka code %d", err, codeInvalidRecord)
			}
			return
		}
		if err != nil || !resp.Duplicate || resp.BaseOffset != prod.lastBase {
			s.fail(p, "runnel: %v, duplicate %t, base offset %d; Kafka a duplicate at %d", err, resp.Duplicate, resp.BaseOffset, prod.lastBase)
		}
		return
	}
}

// maintain runs runnel's maintenance, and Kafka's retention and a pass of
// its cleaner on the model, and compares the logs whole.
func (s *sstate) maintain() {
	s.desc = "maintain"
	if err := s.b.Maintain(s.ctx); err != nil {
		s.fail(nil, "runnel maintain: %v", err)
	}
	now := s.now()
	for _, name := range slices.Sorted(maps.Keys(s.topics)) {
		p := s.topics[name]
		before := p.dump()
		// Kafka's rules first, then runnel's documented ones (retention's
		// and each of docRules'), the fewest that make the model match.
		type cand struct {
			p     spart
			ret   bool
			rules docRules
		}
		got, err := s.b.ListOffset(s.ctx, name, 0, tsEarliest)
		segs := s.runnelSegments(name)
		sizes := s.segmentSizes(name, segs)
		all, ferr := s.fetchAll(name, got.Offset)
		checkpoint := s.cleanerCheckpoint(name)
		var cands []cand
		match := -1
	search:
		for _, ret := range []bool{false, true} {
			for _, rules := range docRuleSets {
				c := *p
				c.segs = slices.Clone(p.segs)
				c.applyRetention(now, ret)
				c.clean(now, rules, s.cfg.CleanerMapBytes)
				cands = append(cands, cand{p: c, ret: ret, rules: rules})
				if err == nil && ferr == nil && got.Offset == c.logStart && slices.Equal(segs, c.bases()) && checkpoint == c.cleanedTo &&
					slices.Equal(sizes, c.sizes()) && s.sameFetch(&c, all) == "" {
					match = len(cands) - 1
					break search
				}
			}
		}
		if match < 0 {
			k, d := &cands[0].p, &cands[len(cands)-1].p
			why := s.sameFetch(k, all)
			if ferr != nil {
				why = ferr.Error()
			}
			s.fail(k, "runnel's log start %d (%v), segments %v of %v bytes, cleaned to %d; Kafka %d, %v of %v, %d (runnel's documented rules: %d, %v of %v, %d; fetched: %s); fetched: %s; before:%s",
				got.Offset, err, segs, sizes, checkpoint, k.logStart, k.bases(), k.sizes(), k.cleanedTo, d.logStart, d.bases(), d.sizes(), d.cleanedTo, s.sameFetch(d, all), why, before)
			*p = *k
			return
		}
		c := cands[match]
		if c.ret {
			s.knownDivergence("time retention takes a rolled segment with no timestamp above -1 as past retention.ms, and keeps an active one until it rolls (Kafka ages both by the file's modification time)")
		}
		for r, what := range docRuleNames {
			if c.rules&r != 0 {
				s.knownDivergence(what)
			}
		}
		*p = c.p
		// ListOffsets on the cleaned log.
		for _, ts := range []int64{tsEarliest, tsLatest, tsMaxTimestamp} {
			s.checkListOffset(name, p, ts)
		}
		for _, g := range p.segs {
			for _, b := range g.batches {
				for _, r := range b.recs {
					if s.rng.IntN(8) == 0 && r.TS >= 0 {
						s.checkListOffset(name, p, r.TS)
					}
				}
			}
		}
	}
}

// docRules is a set of runnel's documented cleaning rules (docs/details.md,
// "The log cleaner's rules") where they differ from Kafka's.
type docRules uint8

const (
	docGroupEnd   docRules = 1 << iota // the last batch of each group stays, emptied if need be
	docBelowStart                      // the records below the log start go
	docIndexFit                        // groups by the most index entries their size may need
	docLagNoTS                         // min.compaction.lag.ms: a segment without a timestamp has no age
	docRatio                           // the dirty ratio counts the segment holding the log start once
	docMapFull                         // a full key map takes keys it holds, and ends at the first it cannot
	docOverdue                         // max.compaction.lag.ms: only the dirty segments the pass may clean count
)

var docRuleNames = map[docRules]string{
	docGroupEnd:   "compaction keeps the last batch of each group of segments it rewrites, emptied if need be (Kafka's cleaner keeps the last of the cleaning round only, KAFKA-17076)",
	docBelowStart: "compaction drops the records below the log start (Kafka's cleaner keeps the latest of each key)",
	docIndexFit:   "compaction merges segments only if the indexes the size of the merged one may need fit segment.index.bytes (Kafka: the sum of their entries)",
	docLagNoTS:    "min.compaction.lag.ms takes a segment with no timestamp above -1 as past it (Kafka ages it by its file's modification time)",
	docMapFull:    "a full key map still takes the keys it holds, the pass cleans up to the first record whose key did not fit, also inside a batch, sets no delete horizon past it (nor on a batch holding a tombstone past it) and drops the records without a key there too (Kafka's ends at the last batch it mapped whole, keeps every record past it, and starts the delete horizon of the tombstones it keeps there)",
	docOverdue:    "max.compaction.lag.ms calls for a pass only for a dirty segment the pass may clean (Kafka: any dirty segment but the active one, past min.compaction.lag.ms or the high watermark too)",
	docRatio:      "the dirty ratio counts a segment the log start lies in, past the cleaner's checkpoint, as dirty (Kafka counts it as clean and as dirty)",
}

// docRuleSets is every set of docRules, the smaller first.
var docRuleSets = func() []docRules {
	var out []docRules
	for r := range docRules(128) {
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b docRules) int { return bits.OnesCount8(uint8(a)) - bits.OnesCount8(uint8(b)) })
	return out
}()

// segmentSizes is the sizes of the .log files of runnel's segments.
func (s *sstate) segmentSizes(topic string, bases []int64) []int64 {
	out := make([]int64, len(bases))
	for i, b := range bases {
		fi, err := s.cfg.FS.Stat(fmt.Sprintf("%s/%s-0/%020d.log", s.cfg.Dir, topic, b))
		if err != nil {
			s.t.Fatalf("op %d: %v", s.op, err)
		}
		out[i] = fi.Size()
	}
	return out
}

// cleanerCheckpoint is runnel's cleaner checkpoint of topic's partition
// 0 (the log's cleaner-checkpoint file: version, count, offset), 0 if
// none was written.
func (s *sstate) cleanerCheckpoint(topic string) int64 {
	f, err := s.cfg.FS.Open(s.cfg.Dir + "/" + topic + "-0/cleaner-checkpoint")
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		s.t.Fatalf("op %d: %v", s.op, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		s.t.Fatalf("op %d: %v", s.op, err)
	}
	data, err := vfs.ReadView(f, 0, int(size))
	if err != nil {
		s.t.Fatalf("op %d: %v", s.op, err)
	}
	lines := strings.Fields(string(data))
	if len(lines) < 3 {
		s.t.Fatalf("op %d: cleaner checkpoint %q", s.op, data)
	}
	off, err := strconv.ParseInt(lines[2], 10, 64)
	if err != nil {
		s.t.Fatalf("op %d: cleaner checkpoint %q: %v", s.op, data, err)
	}
	return off
}

// sizes is the model's segment sizes.
func (p *spart) sizes() []int64 {
	out := make([]int64, len(p.segs))
	for i, g := range p.segs {
		out[i] = g.size
	}
	return out
}

// fbatch is a fetched batch.
type fbatch struct {
	base, last, maxTS int64
	size              int
	horizon           int64 // 0: none
	pid               int64
	seq               int32
	recs              []rec
}

func (b fbatch) String() string {
	return fmt.Sprintf("[%d-%d %dB max %d horizon %d pid %d seq %d %v]", b.base, b.last, b.size, b.maxTS, b.horizon, b.pid, b.seq, b.recs)
}

// fetchAll reads runnel's log from off (its log start) to its end, a fetch at a
// time (each reads one segment).
func (s *sstate) fetchAll(name string, off int64) ([]fbatch, error) {
	var out []fbatch
	for range 10000 {
		resp, err := s.b.Fetch(s.ctx, &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{{Topic: name, Offset: off, MaxBytes: 1 << 20}}})
		if err != nil {
			return out, err
		}
		got := resp.Partitions[0]
		if got.Err != nil {
			return out, fmt.Errorf("fetch from %d: %w", off, got.Err)
		}
		if off >= got.HighWatermark {
			return out, nil
		}
		n := len(out)
		for b, err := range record.Batches(got.Records) {
			if err != nil {
				return out, err
			}
			fb := fbatch{base: b.BaseOffset(), last: b.LastOffset(), maxTS: b.MaxTimestamp(), size: len(b), pid: -1, seq: -1}
			if b.HasDeleteHorizon() {
				fb.horizon = b.BaseTimestamp()
			}
			if b.ProducerID() != record.NoProducerID {
				fb.pid, fb.seq = b.ProducerID(), b.BaseSequence()
			}
			fb.recs = decode(s.t, b, off)
			out = append(out, fb)
			off = b.LastOffset() + 1
		}
		if len(out) == n {
			return out, fmt.Errorf("fetch from %d below the high watermark %d: no batch", off, got.HighWatermark)
		}
	}
	return out, fmt.Errorf("fetch did not end")
}

// sameFetch compares the fetched log with the model's ("" if the same).
func (s *sstate) sameFetch(p *spart, got []fbatch) string {
	var want []fbatch
	for _, g := range p.segs {
		for _, b := range g.batches {
			if b.last < p.logStart {
				continue
			}
			fb := fbatch{base: b.base, last: b.last, maxTS: b.maxTS, size: b.size, pid: -1, seq: -1}
			if m := b.meta; m != nil {
				fb.horizon, fb.pid, fb.seq = m.horizon, m.pid, m.seq
			}
			for _, r := range b.recs {
				if r.Offset >= p.logStart {
					fb.recs = append(fb.recs, r)
				}
			}
			want = append(want, fb)
		}
	}
	for i := range max(len(got), len(want)) {
		switch {
		case i >= len(got):
			return fmt.Sprintf("runnel has no batch %d; Kafka %v", i, want[i])
		case i >= len(want):
			return fmt.Sprintf("runnel's batch %d %v; Kafka none", i, got[i])
		}
		g, w := got[i], want[i]
		if g.base != w.base || g.last != w.last || g.maxTS != w.maxTS || g.size != w.size || g.horizon != w.horizon ||
			g.pid != w.pid || g.seq != w.seq || !slices.Equal(g.recs, w.recs) {
			return fmt.Sprintf("batch %d: runnel %v; Kafka %v", i, g, w)
		}
	}
	return ""
}

// clean is a pass of Kafka's LogCleaner on the model, if
// LogCleanerManager would choose the log; with doc, runnel's documented
// rules (docs/details.md): the last batch of each group stays (emptied),
// and the records below the log start go.
func (p *spart) clean(now int64, doc docRules, mapBytes int64) {
	if !p.cfg.compacted() {
		return
	}
	act := p.active()
	// floor is the index of the segment holding off (LogSegments.floor),
	// 0 if none does.
	floor := func(off int64) int {
		i := 0
		for j, g := range p.segs {
			if g.base <= off {
				i = j
			}
		}
		return i
	}
	// LogCleanerManager.cleanableOffsets.
	firstDirty := p.cleanedTo
	if firstDirty < p.logStart || firstDirty > p.end {
		firstDirty = p.logStart
	}
	fu := min(p.end, act.base)
	nonActive := p.segs[floor(firstDirty) : len(p.segs)-1]
	if p.cfg.minLagMs > 0 {
		for _, g := range nonActive {
			lt := g.largestTimestamp()
			if doc&docLagNoTS != 0 {
				lt = g.maxTS()
			}
			if lt > now-p.cfg.minLagMs {
				fu = min(fu, g.base)
				break
			}
		}
	}
	// calculateCleanableBytes.
	fuo := act.base
	if i := floor(fu); i < len(p.segs)-1 && p.segs[i].base <= fu {
		fuo = p.segs[i].base
	}
	var cleanBytes, cleanable int64
	for _, g := range p.segs {
		if g.base < firstDirty {
			cleanBytes += g.size
		}
	}
	for _, g := range p.segs[floor(min(firstDirty, fuo)):] {
		if g.base < fuo {
			cleanable += g.size
		}
	}
	ratio := float64(cleanable) / float64(cleanBytes+cleanable)
	if doc&docRatio != 0 {
		// runnel's Log.DirtyRatio: the segments below the first
		// uncleanable one, dirty those that end past the checkpoint.
		var dirty, total int64
		for _, g := range p.segs {
			if g.base >= fuo {
				break
			}
			total += g.size
			next := g.base
			if n := len(g.batches); n > 0 {
				next = g.batches[n-1].last + 1
			}
			if next > p.cleanedTo {
				dirty += g.size
			}
		}
		ratio = float64(dirty) / float64(total)
	}
	// maxCompactionDelay.
	overdue := false
	if p.cfg.maxLagMs > 0 {
		for _, g := range nonActive {
			if len(g.batches) > 0 && g.batches[0].maxTS > 0 && g.batches[0].maxTS < now-p.cfg.maxLagMs {
				overdue = true
			}
		}
		if doc&docOverdue != 0 {
			// runnel's Log.compactionOverdue: the segments below the
			// first uncleanable one that end past the checkpoint.
			overdue = false
			for _, g := range p.segs {
				if g.base >= fuo {
					break
				}
				next := g.base
				if n := len(g.batches); n > 0 {
					next = g.batches[n-1].last + 1
				}
				if next > p.cleanedTo && len(g.batches) > 0 && g.batches[0].maxTS > 0 && g.batches[0].maxTS < now-p.cfg.maxLagMs {
					overdue = true
				}
			}
		}
	}
	if !(overdue && cleanable > 0 || ratio > p.cfg.ratio) {
		return
	}
	// Cleaner.buildOffsetMap over [firstDirty, fuo), into a map of
	// mapBytes (log.cleaner.dedupe.buffer.size; 0: large enough) of
	// 24-byte slots filled to 90%: full when it holds that many keys,
	// also for a key it holds. The map ends after the last batch mapped
	// whole (endOffset). With docMapFull, runnel's (log.keyMap): at most
	// as many slots as the section has offsets, and full only for a new
	// key, where the map ends (mapEnd).
	latest := map[string]int64{}
	latestOffset := int64(-1)
	limit := 0
	if mapBytes > 0 {
		slots := mapBytes / 24
		if doc&docMapFull != 0 {
			slots = max(min(min(max(fuo-firstDirty, 1), slots)*10/9+1, slots), 2)
			limit = int(max(slots*9/10, 1))
		} else {
			limit = int(float64(slots) * 0.9)
		}
	}
	mapEnd := fuo
	full := false
mapping:
	for _, g := range p.segs[floor(firstDirty):] {
		if g.base >= fuo {
			break
		}
		for _, b := range g.batches {
			for _, r := range b.recs {
				if r.Key == "null" || r.Offset < firstDirty {
					continue
				}
				if _, in := latest[r.Key]; limit > 0 && len(latest) >= limit && (doc&docMapFull == 0 || !in) {
					mapEnd, full = r.Offset, true
					break mapping
				}
				latest[r.Key] = r.Offset
			}
			if b.last >= firstDirty {
				latestOffset = b.last
			}
		}
	}
	endOffset := latestOffset + 1
	if doc&docMapFull != 0 {
		endOffset = mapEnd
	} else if full {
		mapEnd = endOffset
	}
	lastOf := map[int64]int64{}
	for id, pr := range p.prods {
		lastOf[id] = pr.lastEnd
	}
	var segs []*sseg
	for _, g := range p.segs {
		if g.base < endOffset {
			segs = append(segs, g)
		}
	}
	out := slices.Clone(p.segs[len(segs):])
	var cleaned []*sseg
	for _, group := range p.groupBySize(segs, doc) {
		cleaned = append(cleaned, p.cleanGroup(group, latest, endOffset, fuo, lastOf, now, doc))
	}
	p.segs = append(cleaned, out...)
	p.cleanedTo = endOffset
}

// groupBySize is Cleaner.groupSegmentsBySize; with doc, runnel's rule
// (docs/details.md) for the indexes: a group's time index could hold one
// entry for each more than index.interval.bytes of its size and one more,
// the most a segment of that size may need, rather than the sum of its
// segments' entries (which a merge can pass: a segment's first batch gets
// no entry, the merged segment's gets one).
func (p *spart) groupBySize(segs []*sseg, doc docRules) [][]*sseg {
	var out [][]*sseg
	fit := func(size, idx, tidx int64) bool {
		if doc&docIndexFit != 0 {
			return size/int64(max(1, p.cfg.idxInterval)+1)+1 <= int64(p.cfg.idxBytes/12)
		}
		return idx <= int64(p.cfg.idxBytes) && tidx <= int64(p.cfg.idxBytes)
	}
	for len(segs) > 0 {
		g := segs[0]
		size, idx, tidx := g.size, int64(g.offEntries*8), int64(g.timeEntries*12)
		n := 1
		for n < len(segs) && size+segs[n].size <= p.cfg.segBytes &&
			fit(size+segs[n].size, idx+int64(segs[n].offEntries*8), tidx+int64(segs[n].timeEntries*12)) {
			size += segs[n].size
			idx += int64(segs[n].offEntries * 8)
			tidx += int64(segs[n].timeEntries * 12)
			n++
		}
		out = append(out, segs[:n])
		segs = segs[n:]
	}
	return out
}

// cleanGroup is Cleaner.cleanSegments: the group's batches filtered into
// one new segment (cleanInto, MemoryRecords.filterTo), appended to it as
// LogSegment.append does, its time index closed, its modification time
// the group's last segment's.
func (p *spart) cleanGroup(group []*sseg, latest map[string]int64, mapped, roundEnd int64, lastOf map[int64]int64, now int64, doc docRules) *sseg {
	last := group[len(group)-1]
	groupEnd := last.base
	if n := len(last.batches); n > 0 {
		groupEnd = last.batches[n-1].last + 1
	}
	ng := &sseg{base: group[0].base, created: now, written: last.written, lastTimeTS: -1}
	for _, g := range group {
		for _, b := range g.batches {
			retainEmpty := b.meta != nil && b.meta.pid >= 0 && lastOf[b.meta.pid] == b.last
			// Cleaner.checkBatchRetention (KAFKA-17076, Kafka 3.9 and 4.0):
			// the batch that ends at upperBoundOffsetOfCleaningRound, the
			// first uncleanable offset, stays even if emptied.
			if b.last+1 == roundEnd {
				retainEmpty = true
			}
			if doc&docGroupEnd != 0 && b.last+1 == groupEnd {
				retainEmpty = true
			}
			var keep []int
			// unmapped: a tombstone kept past where runnel's full map
			// ended, which keeps the batch from a horizon (docMapFull).
			tombstones, unmapped := false, false
			for i, r := range b.recs {
				ok := false
				switch {
				case doc&docBelowStart != 0 && r.Offset < p.logStart:
				case doc&docMapFull != 0 && r.Key == "null":
				case r.Offset >= mapped:
					ok = true
				case r.Key == "null":
				default:
					found, in := latest[r.Key]
					if !in {
						found = -1
					}
					ok = r.Offset >= found && (r.Value != "null" || b.meta == nil || b.meta.horizon == 0 || now < b.meta.horizon)
				}
				if ok {
					keep = append(keep, i)
					tombstones = tombstones || r.Value == "null" && (doc&docMapFull == 0 || r.Offset < mapped)
					unmapped = unmapped || r.Value == "null" && doc&docMapFull != 0 && r.Offset >= mapped
				}
			}
			needHorizon := tombstones && !unmapped && (b.meta == nil || b.meta.horizon == 0)
			var nb mbatch
			switch {
			case len(keep) == len(b.recs) && len(keep) > 0 && !needHorizon:
				nb = b
			case len(keep) > 0:
				horizon := b.meta.horizon
				if needHorizon {
					horizon = now + p.cfg.delRetMs
				}
				nb = rebuild(b, keep, horizon)
			case retainEmpty:
				nb = rebuild(b, nil, 0)
			default:
				continue
			}
			ng.appendBatch(nb, p.cfg.idxInterval) // into the cleaned segment
		}
	}
	ng.finalTimeEntry()
	return ng
}

// rebuild is MemoryRecords.buildRetainedRecordsInto (keep not empty) or
// DefaultRecordBatch.writeEmptyHeader (keep empty): the batch's base and
// last offsets, producer, sequence, timestamp type and codec, its kept
// records, and the delete horizon as its base timestamp; the max
// timestamp the kept records' largest (LogAppendTime and an empty batch:
// the batch's own).
func rebuild(b mbatch, keep []int, horizon int64) mbatch {
	m := *b.meta
	m.horizon = horizon
	var bl record.Builder
	if m.pid >= 0 {
		bl.SetProducer(m.pid, m.epoch, m.seq)
	}
	bl.SetLastOffsetDelta(int32(b.last - b.base))
	codec := m.codec
	nb := mbatch{base: b.base, last: b.last, maxTS: -1, meta: &m}
	if len(keep) == 0 {
		bl.SetEmptyMaxTimestamp(b.maxTS)
		codec = compression.None
		m.codec, m.src, m.horizon = codec, nil, 0
		nb.maxTS = b.maxTS
	} else {
		if horizon != 0 {
			bl.SetDeleteHorizon(horizon)
		}
		m.src = nil
		for _, i := range keep {
			r, src := b.recs[i], b.meta.src[i]
			bl.AppendAt(r.Offset-b.base, r.TS, src.key, src.value, src.headers)
			nb.recs = append(nb.recs, r)
			m.src = append(m.src, src)
			nb.maxTS = max(nb.maxTS, r.TS)
		}
		if m.lat {
			nb.maxTS = b.maxTS
		}
	}
	out, err := bl.Finish(codec)
	if err != nil {
		panic(err)
	}
	nb.size = len(out)
	return nb
}
