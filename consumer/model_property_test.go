package consumer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
)

// TestConsumerModelProperty checks the consumer against a model of what
// its docs promise, on a real in-memory broker. For each seed: a topic of
// 1–3 partitions (sometimes a second topic, created later), records
// produced through the broker with known keys, values, headers and
// timestamps (some equal to, or older than, the one before), small
// segments now and then, and one consumer of random options (reset
// policy, fetch byte limits small enough to cut fetches, min bytes, a
// short max wait or a long one that only a ctx or an append ends). A
// random sequence of operations runs: produce; DeleteRecords (sometimes
// past the consumer's position); DeleteTopic and CreateTopic again under
// the name; CreatePartitions; Assign, AssignTopic, Unassign; Seek to each
// kind of Offset (also past the end and below the log start); Pause,
// Resume; Poll; a few records pulled from Records and a break; with a
// long max wait, a Poll woken by an append, or by a Seek or Pause made
// while it waits. The model keeps each partition's log start and records,
// and for each assigned partition where it should be (its position or
// the Offset still to look up, the topic it read, whether it is stopped
// by an error under ResetNone, whether an error is held for the next
// Poll). After each operation:
//
//  1. every record returned is of an assigned, unpaused partition, and
//     each partition's records continue from the position the model
//     expected, or from where the reset policy or a look-up puts it
//     (Start, End, AtTime: the first record at or after the time),
//     without gap or duplicate, equal to what was produced (key, value,
//     timestamp, headers), below the high watermark;
//  2. an offset out of range is reset per ResetOffset without a word, or
//     under ResetNone reported once as a *PartitionError matching
//     log.ErrOffsetOutOfRange with the position kept; a partition whose
//     topic was deleted (and maybe created again) under a position it
//     read is reported, matching api.ErrUnknownTopicID, then reset or,
//     under ResetNone, stopped;
//  3. Position is the offset after the last record returned (inside a
//     Records loop, after the record in hand), and unresolved while an
//     Offset is still to be looked up;
//  4. a Poll returns records when an assigned partition has some, and
//     with a long max wait, one with nothing to read returns only when
//     its ctx ends, an append wakes it (then with the record), or a
//     change does.
//
// Timing is never asserted; where a short ctx may cut a Poll before or
// after a look-up, the model keeps both outcomes and Position tells
// which happened.
//
// A few seeds run by default (fewer under -short). For a long run:
//
//	RUNNEL_CONSUMER_PROP=2000 go test -run TestConsumerModelProperty ./consumer
//
// RUNNEL_CONSUMER_PROP=N runs N seeds from one the test picks and logs;
// RUNNEL_CONSUMER_PROP_BASE=S makes S the first (with N=1, replays seed S);
// RUNNEL_CONSUMER_PROP_LOG=1 logs each operation and the consumer's own
// logs (debug level).
func TestConsumerModelProperty(t *testing.T) {
	total := map[string]int{}
	testkit.Seeds(t, "RUNNEL_CONSUMER_PROP", 8, 3, func(t *testing.T, seed uint64) { runConsumerModel(t, seed, total) })
	t.Logf("in all: %v", total)
}

// The topics of a seed: the first is there from the start, the second
// only once an operation creates it.
var mTopics = []string{"model", "model2"}

// mT0 is where the records' timestamps begin (ms).
const mT0 = int64(1_600_000_000_000)

// mSpec is an Offset the model can resolve.
type mSpec struct {
	kind int // mStart, mEnd, mTime or mAt
	v    int64
}

const (
	mStart = iota
	mEnd
	mTime
	mAt
)

func (s mSpec) offset() consumer.Offset {
	switch s.kind {
	case mEnd:
		return consumer.End()
	case mTime:
		return consumer.AtTime(time.UnixMilli(s.v))
	case mAt:
		return consumer.At(s.v)
	}
	return consumer.Start()
}

func (s mSpec) String() string {
	switch s.kind {
	case mEnd:
		return "End"
	case mTime:
		return fmt.Sprintf("AtTime(T0%+d)", s.v-mT0)
	case mAt:
		return fmt.Sprintf("At(%d)", s.v)
	}
	return "Start"
}

// mRec is a record produced.
type mRec struct {
	ts         int64
	key, value []byte
	headers    []record.Header
}

// mPart is a partition: its log start and every record produced to it,
// at its offset.
type mPart struct {
	start  int64
	recs   []mRec
	lastTS int64
}

func (p *mPart) hw() int64 { return int64(len(p.recs)) }

// inRange reports whether a fetch from o is in range: the log end is.
func (p *mPart) inRange(o int64) bool { return o >= p.start && o <= p.hw() }

// resolve is where s puts a position: Start the log start, End the high
// watermark, AtTime the first record from the log start on whose
// timestamp is at or after the time (the high watermark if none is).
func (p *mPart) resolve(s mSpec) int64 {
	switch s.kind {
	case mStart:
		return p.start
	case mEnd:
		return p.hw()
	case mTime:
		for o := p.start; o < p.hw(); o++ {
			if p.recs[o].ts >= s.v {
				return o
			}
		}
		return p.hw()
	}
	return s.v
}

// mTopic is a topic as created: gen tells it from another of the name.
type mTopic struct {
	gen   int
	parts []*mPart
}

// mState is one possible state of an assigned partition in the consumer.
type mState struct {
	pending bool  // at is still to be looked up
	at      mSpec // when pending
	pos     int64 // the position, when not pending
	// gen is the topic the position is in (it was looked up there, or
	// read from it), or, pending after a reset for an offset out of
	// range, the topic it was read in; 0: none (an offset given with At).
	gen     int
	stopped bool // by an error under ResetNone, until Seek or Assign
	// owed: an error of the partition gone is held for the next Poll (or,
	// found by a look-up, on its way in the Poll that made it).
	owed    bool
	owedOff int64 // the offset that error names
}

func (s mState) String() string {
	var b strings.Builder
	if s.pending {
		fmt.Fprintf(&b, "pending %v", s.at)
		if s.gen != 0 {
			fmt.Fprintf(&b, " (read in topic gen %d)", s.gen)
		}
	} else {
		fmt.Fprintf(&b, "at %d (topic gen %d)", s.pos, s.gen)
	}
	if s.stopped {
		b.WriteString(", stopped")
	}
	if s.owed {
		fmt.Fprintf(&b, ", owes the error of offset %d", s.owedOff)
	}
	return b.String()
}

// initial is the state Assign or Seek to s gives.
func initial(s mSpec) mState {
	if s.kind == mAt {
		return mState{pos: s.v}
	}
	return mState{pending: true, at: s}
}

// mAssign is an assigned partition: its possible states (usually one;
// more where a short ctx may have cut a Poll before or after a step the
// model cannot see, until an observation tells which).
type mAssign struct {
	tp     api.TopicPartition
	paused bool
	cands  []mState
	// starved counts the Polls in a row that returned none of the
	// records the partition had to read (see checkStarved).
	starved int
}

// mItem is one thing the consumer returned: a record or a partition error.
type mItem struct {
	rec *record.Record
	err *consumer.PartitionError
}

func (it mItem) String() string {
	if it.rec != nil {
		return fmt.Sprintf("record %d", it.rec.Offset)
	}
	return fmt.Sprintf("error %v", it.err)
}

func (it mItem) tp() api.TopicPartition {
	if it.rec != nil {
		return api.TopicPartition{Topic: it.rec.Topic, Partition: it.rec.Partition}
	}
	return api.TopicPartition{Topic: it.err.Topic, Partition: it.err.Partition}
}

// mClient is the broker, telling when a Fetch starts to whoever armed it,
// or running an operation before it (after the Poll's look-ups).
type mClient struct {
	*runnel.Broker
	fetching    atomic.Pointer[chan struct{}]
	beforeFetch atomic.Pointer[func()]
}

func (c *mClient) Fetch(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
	if f := c.beforeFetch.Swap(nil); f != nil {
		(*f)()
	}
	if ch := c.fetching.Swap(nil); ch != nil {
		close(*ch)
	}
	return c.Broker.Fetch(ctx, req)
}

// mRun is one seed's run.
type mRun struct {
	t         *testing.T
	rng       *rand.Rand
	b         *runnel.Broker
	cl        *mClient
	c         *consumer.Consumer
	policy    consumer.ResetPolicy
	longWait  bool // FetchMaxWait is a minute: only a ctx, an append or a change ends a Poll
	maxBytes  int  // FetchMaxBytes
	partBytes int  // FetchMaxPartitionBytes
	verbose   bool

	topics  map[string]*mTopic // nil: deleted, or not created yet
	gens    int
	assigns map[api.TopicPartition]*mAssign
	seq     int // values are numbered, to tell them apart
	// pausedInLoop holds the partitions a Records loop's body paused:
	// the loop may still yield an error fetched before (see Records).
	pausedInLoop map[api.TopicPartition]bool
	// outInLoop holds the positions out of range when a Records loop's
	// body appended: the loop may still yield the error of one fetched
	// before the append brought it in range.
	outInLoop map[api.TopicPartition]map[int64]bool
	// lookedUp says that the Poll being checked made its look-ups before
	// the broker changed (see interlude): the model made them then too.
	lookedUp bool
	op       int
	trace    []string
	stats    map[string]int
}

// runConsumerModel runs one seed of TestConsumerModelProperty, adding
// what it did to total.
func runConsumerModel(t *testing.T, seed uint64, total map[string]int) {
	r := &mRun{
		t: t, rng: rand.New(rand.NewPCG(seed, 0x636f6e73)), verbose: os.Getenv("RUNNEL_CONSUMER_PROP_LOG") != "",
		topics: map[string]*mTopic{}, assigns: map[api.TopicPartition]*mAssign{}, stats: map[string]int{},
	}
	t.Cleanup(func() {
		if t.Failed() && !r.verbose {
			t.Logf("operations:\n%s", strings.Join(r.trace, "\n"))
		}
	})
	r.b = runneltest.NewBroker(t)
	r.cl = &mClient{Broker: r.b}
	opts, desc := r.options()
	r.c = newConsumer(t, r.cl, opts...)
	r.createTopic(mTopics[0])
	t.Logf("seed %d: %s", seed, desc)
	for range r.rng.IntN(6) {
		r.produce()
	}
	if r.rng.IntN(4) > 0 {
		r.assignTopic()
	}

	ops := 60 + r.rng.IntN(100)
	for r.op = 0; r.op < ops && !t.Failed(); r.op++ {
		r.step()
	}
	if t.Failed() {
		return
	}
	// Close interrupts nothing here; Position still answers after it.
	if err := r.c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	r.checkPositions("after Close")
	if _, err := r.c.Poll(t.Context()); !errors.Is(err, consumer.ErrClosed) {
		t.Fatalf("Poll after Close: %v, want ErrClosed", err)
	}
	t.Logf("%d operations: %v", ops, r.stats)
	for k, n := range r.stats {
		total[k] += n
	}
	total["seeds"]++
	if r.longWait {
		total["seeds with a long max wait"]++
	}
}

// options draws the consumer's options.
func (r *mRun) options() ([]consumer.Opt, string) {
	rng := r.rng
	r.policy = []consumer.ResetPolicy{consumer.ResetEarliest, consumer.ResetLatest, consumer.ResetNone}[rng.IntN(3)]
	maxBytes, partBytes := 50<<20, 1<<20
	if rng.IntN(2) == 0 {
		maxBytes = 100 + rng.IntN(2000)
	}
	if rng.IntN(2) == 0 {
		partBytes = 80 + rng.IntN(1500)
	}
	r.maxBytes, r.partBytes = maxBytes, partBytes
	var minBytes int
	var maxWait time.Duration
	if rng.IntN(4) == 0 {
		// A long poll that only a ctx, an append or a change ends; an
		// append of one batch is enough to answer it.
		r.longWait = true
		maxWait, minBytes = time.Minute, 1+rng.IntN(60)
	} else {
		maxWait = []time.Duration{0, time.Millisecond, 3 * time.Millisecond}[rng.IntN(3)]
		minBytes = []int{0, 1, 1 + rng.IntN(3000)}[rng.IntN(3)]
	}
	crcs := rng.IntN(2) == 0
	opts := []consumer.Opt{
		consumer.ResetOffset(r.policy), consumer.FetchMaxBytes(maxBytes), consumer.FetchMaxPartitionBytes(partBytes),
		consumer.FetchMinBytes(minBytes), consumer.FetchMaxWait(maxWait), consumer.CheckCRCs(crcs),
		// No wait before a retry: a partition of a topic not there is
		// asked again by the next Poll, so what a Poll does does not
		// depend on the time.
		consumer.RetryBackoff(0),
	}
	if r.verbose {
		opts = append(opts, consumer.Logger(slog.New(slog.NewTextHandler(r.t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	return opts, fmt.Sprintf("ResetOffset %v, FetchMaxBytes %d, FetchMaxPartitionBytes %d, FetchMinBytes %d, FetchMaxWait %v, CheckCRCs %v",
		r.policy, maxBytes, partBytes, minBytes, maxWait, crcs)
}

// logf records an operation, and logs it when asked to.
func (r *mRun) logf(format string, args ...any) {
	s := fmt.Sprintf("%3d: ", r.op) + fmt.Sprintf(format, args...)
	r.trace = append(r.trace, s)
	if r.verbose {
		r.t.Log(s)
	}
}

// fatalf fails the seed, naming the operation.
func (r *mRun) fatalf(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("operation %d: %s", r.op, fmt.Sprintf(format, args...))
}

// ctx is the bound of a call that should return at once.
func (r *mRun) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.t.Context(), wait)
}

// part returns the model's topic and partition of tp (nil when the topic
// or the partition is not there).
func (r *mRun) part(tp api.TopicPartition) (*mTopic, *mPart) {
	t := r.topics[tp.Topic]
	if t == nil || int(tp.Partition) >= len(t.parts) {
		return t, nil
	}
	return t, t.parts[tp.Partition]
}

// sortedAssigns returns the assignments in a fixed order, so that a seed
// draws the same choices each time.
func (r *mRun) sortedAssigns() []*mAssign {
	out := make([]*mAssign, 0, len(r.assigns))
	for _, a := range r.assigns {
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y *mAssign) int {
		return strings.Compare(fmt.Sprint(x.tp), fmt.Sprint(y.tp))
	})
	return out
}

// randomTP picks a partition of one of the topics, sometimes one past
// its partition count, or of a topic not there.
func (r *mRun) randomTP() api.TopicPartition {
	name := mTopics[0]
	if r.rng.IntN(4) == 0 {
		name = mTopics[1]
	}
	n := 1
	if t := r.topics[name]; t != nil {
		n = len(t.parts)
	}
	if r.rng.IntN(8) == 0 {
		n++
	}
	return api.TopicPartition{Topic: name, Partition: int32(r.rng.IntN(n))}
}

// existingPart picks a partition that is there, or returns false.
func (r *mRun) existingPart() (api.TopicPartition, bool) {
	var tps []api.TopicPartition
	for _, name := range mTopics {
		if t := r.topics[name]; t != nil {
			for i := range t.parts {
				tps = append(tps, api.TopicPartition{Topic: name, Partition: int32(i)})
			}
		}
	}
	if len(tps) == 0 {
		return api.TopicPartition{}, false
	}
	return tps[r.rng.IntN(len(tps))], true
}

// step runs one random operation.
func (r *mRun) step() {
	n := r.rng.IntN(100)
	if n < 55 || n >= 75 {
		// Not a Poll: the Polls in a row that checkStarved counts end.
		for _, a := range r.assigns {
			a.starved = 0
		}
	}
	switch {
	case n < 16:
		r.produce()
	case n < 21:
		r.deleteRecords()
	case n < 22:
		r.deleteTopic()
	case n < 25:
		r.replaceReset()
	case n < 28:
		r.createTopic(mTopics[r.rng.IntN(2)])
	case n < 29:
		r.createPartitions()
	case n < 37:
		r.assign()
	case n < 39:
		r.assignTopic()
	case n < 41:
		r.unassign()
	case n < 48:
		r.seek()
	case n < 52:
		r.pause()
	case n < 55:
		r.resume()
	case n < 72:
		r.poll()
	case n < 75:
		for range 2 + r.rng.IntN(len(r.assigns)+2) {
			if r.t.Failed() {
				return
			}
			r.poll()
		}
	case n < 90:
		r.pull()
	case n < 91:
		r.listOffsets()
	case n < 93:
		r.interlude()
	case n < 97:
		r.wakeByAppend()
	default:
		r.wakeByChange()
	}
}

// --- the broker's side ---

func (r *mRun) createTopic(name string) {
	if r.topics[name] != nil {
		return
	}
	n := 1 + r.rng.IntN(3)
	var cfg log.Config
	if r.rng.IntN(3) == 0 {
		cfg.SegmentBytes = int64(200 + r.rng.IntN(2000))
	}
	if r.rng.IntN(3) == 0 {
		cfg.IndexIntervalBytes = r.rng.IntN(300)
	}
	r.logf("CreateTopic(%s, %d partitions, SegmentBytes %d, IndexIntervalBytes %d)", name, n, cfg.SegmentBytes, cfg.IndexIntervalBytes)
	ctx, cancel := r.ctx()
	defer cancel()
	if err := r.b.CreateTopic(ctx, name, log.TopicConfig{Partitions: n, Config: cfg}); err != nil {
		r.fatalf("CreateTopic(%s): %v", name, err)
	}
	r.gens++
	t := &mTopic{gen: r.gens}
	for range n {
		t.parts = append(t.parts, &mPart{lastTS: mT0 + r.rng.Int64N(1000)})
	}
	r.topics[name] = t
	r.stats["create topic"]++
}

func (r *mRun) deleteTopic() {
	name := mTopics[0]
	if r.rng.IntN(3) == 0 {
		name = mTopics[1]
	}
	r.deleteTopicNamed(name)
}

func (r *mRun) deleteTopicNamed(name string) {
	if r.topics[name] == nil {
		return
	}
	r.logf("DeleteTopic(%s)", name)
	ctx, cancel := r.ctx()
	defer cancel()
	if err := r.b.DeleteTopic(ctx, name); err != nil {
		r.fatalf("DeleteTopic(%s): %v", name, err)
	}
	r.topics[name] = nil
	r.stats["delete topic"]++
}

func (r *mRun) createPartitions() {
	name := mTopics[r.rng.IntN(2)]
	t := r.topics[name]
	if t == nil || len(t.parts) >= 4 {
		return
	}
	n := len(t.parts) + 1
	r.logf("CreatePartitions(%s, %d)", name, n)
	ctx, cancel := r.ctx()
	defer cancel()
	if err := r.b.CreatePartitions(ctx, name, n); err != nil {
		r.fatalf("CreatePartitions(%s, %d): %v", name, n, err)
	}
	t.parts = append(t.parts, &mPart{lastTS: mT0 + r.rng.Int64N(1000)})
	r.stats["create partitions"]++
}

// produce appends one to three batches of one to five records to a
// partition; the timestamps mostly grow, but some repeat the one before
// and some are older.
func (r *mRun) produce() {
	tp, ok := r.existingPart()
	if !ok {
		return
	}
	for range 1 + r.rng.IntN(3) {
		r.produceTo(tp, 1+r.rng.IntN(5))
	}
}

func (r *mRun) produceTo(tp api.TopicPartition, n int) {
	t, p := r.part(tp)
	codec := []compression.Codec{compression.None, compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd}[r.rng.IntN(6)]
	var bld record.Builder
	recs := make([]mRec, n)
	for i := range recs {
		switch d := r.rng.IntN(10); {
		case d < 2:
		case d < 4:
			p.lastTS -= 1 + r.rng.Int64N(5)
		default:
			p.lastTS += 1 + r.rng.Int64N(5)
		}
		m := mRec{ts: p.lastTS}
		if r.rng.IntN(3) > 0 {
			m.key = fmt.Appendf(nil, "k%d", r.rng.IntN(10))
		}
		r.seq++
		m.value = fmt.Appendf(nil, "%s-%d-g%d-#%d:%s", tp.Topic, tp.Partition, t.gen, r.seq, strings.Repeat("v", r.rng.IntN(150)))
		for h := range r.rng.IntN(3) {
			m.headers = append(m.headers, record.Header{Key: fmt.Sprintf("h%d", h), Value: fmt.Appendf(nil, "%d", r.seq)})
		}
		bld.Append(m.ts, m.key, m.value, m.headers)
		recs[i] = m
	}
	data, err := bld.AppendTo(nil, codec)
	if err != nil {
		r.fatalf("encode: %v", err)
	}
	ctx, cancel := r.ctx()
	defer cancel()
	resp, err := r.b.Produce(ctx, &api.ProduceRequest{Topic: tp.Topic, Partition: tp.Partition, Acks: api.AcksAll, Batches: data})
	if err != nil {
		r.fatalf("produce to %v: %v", tp, err)
	}
	if resp.BaseOffset != p.hw() {
		r.fatalf("produce to %v: base offset %d, the model's end is %d", tp, resp.BaseOffset, p.hw())
	}
	p.recs = append(p.recs, recs...)
	r.logf("produce %v: %d records (%v) at %d, now [%d, %d)", tp, n, codec, resp.BaseOffset, p.start, p.hw())
	r.stats["produce"]++
}

// deleteRecords moves a partition's log start: often to an assigned
// position or just past it, sometimes to the end.
func (r *mRun) deleteRecords() {
	tp, ok := r.existingPart()
	if !ok {
		return
	}
	_, p := r.part(tp)
	off := r.rng.Int64N(p.hw() + 1)
	if a := r.assigns[tp]; a != nil && len(a.cands) == 1 && !a.cands[0].pending && r.rng.IntN(2) == 0 {
		// At the position, or past it (below the end).
		off = min(a.cands[0].pos, p.hw())
		if off < p.hw() && r.rng.IntN(2) == 0 {
			off += 1 + r.rng.Int64N(p.hw()-off)
		}
	}
	if r.rng.IntN(6) == 0 {
		off = p.hw()
	}
	ctx, cancel := r.ctx()
	defer cancel()
	low, err := r.b.DeleteRecords(ctx, tp.Topic, tp.Partition, off)
	if err != nil {
		r.fatalf("DeleteRecords(%v, %d): %v", tp, off, err)
	}
	if want := max(p.start, off); low != want {
		r.fatalf("DeleteRecords(%v, %d) = %d, want %d", tp, off, low, want)
	}
	p.start = low
	r.logf("DeleteRecords(%v, %d): [%d, %d)", tp, off, p.start, p.hw())
	r.stats["delete records"]++
}

// listOffsets checks the model against the broker's ListOffset, which the
// consumer looks positions up with.
func (r *mRun) listOffsets() {
	tp, ok := r.existingPart()
	if !ok {
		return
	}
	_, p := r.part(tp)
	ctx, cancel := r.ctx()
	defer cancel()
	for _, s := range []mSpec{{kind: mStart}, {kind: mEnd}, r.spec(tp)} {
		ts := int64(api.Earliest)
		switch s.kind {
		case mEnd:
			ts = api.Latest
		case mTime:
			ts = s.v
		case mAt:
			continue
		}
		lo, err := r.b.ListOffset(ctx, tp.Topic, tp.Partition, ts)
		if err != nil {
			r.fatalf("ListOffset(%v, %v): %v", tp, s, err)
		}
		if want := p.resolve(s); lo.Offset != want {
			r.fatalf("ListOffset(%v, %v) = %d, the model says %d (log [%d, %d))", tp, s, lo.Offset, want, p.start, p.hw())
		}
	}
	r.stats["list offsets"]++
}

// --- the consumer's side ---

// spec draws an Offset for tp: each kind, with times around those of its
// records and offsets in range, at its ends, past the end and below the
// log start.
func (r *mRun) spec(tp api.TopicPartition) mSpec {
	_, p := r.part(tp)
	var start, hw int64
	if p != nil {
		start, hw = p.start, p.hw()
	}
	switch n := r.rng.IntN(10); {
	case n < 2:
		return mSpec{kind: mStart}
	case n < 4:
		return mSpec{kind: mEnd}
	case n < 6:
		ts := mT0 - 10 + r.rng.Int64N(1100)
		if p != nil && len(p.recs) > 0 && r.rng.IntN(4) > 0 {
			ts = p.recs[r.rng.IntN(len(p.recs))].ts + r.rng.Int64N(3) - 1
		}
		if r.rng.IntN(8) == 0 {
			ts = mT0 + 1_000_000 // after every record
		}
		return mSpec{kind: mTime, v: ts}
	}
	switch n := r.rng.IntN(10); {
	case n < 5 && hw > start:
		return mSpec{kind: mAt, v: start + r.rng.Int64N(hw-start)}
	case n < 6:
		return mSpec{kind: mAt, v: hw}
	case n < 8:
		return mSpec{kind: mAt, v: hw + 1 + r.rng.Int64N(3)}
	case start > 0:
		return mSpec{kind: mAt, v: r.rng.Int64N(start)}
	}
	return mSpec{kind: mAt, v: start}
}

func (r *mRun) assign() {
	tp := r.randomTP()
	s := r.spec(tp)
	r.logf("Assign(%v, %v)", tp, s)
	before := r.lagBefore(tp)
	if err := r.c.Assign(tp.Topic, tp.Partition, s.offset()); err != nil {
		r.fatalf("Assign(%v, %v): %v", tp, s, err)
	}
	r.setPosition(tp, s)
	r.checkAssigned()
	r.checkPositions("after Assign")
	r.checkLagMoved(tp, s, before, "after Assign")
	r.stats["assign"]++
}

// setPosition is Assign's and Seek's effect: a new position, its error
// state cleared (a held error dropped), paused as it was.
func (r *mRun) setPosition(tp api.TopicPartition, s mSpec) {
	a := r.assigns[tp]
	if a == nil {
		a = &mAssign{tp: tp}
		r.assigns[tp] = a
	}
	a.cands = []mState{initial(s)}
}

func (r *mRun) assignTopic() {
	name := mTopics[0]
	if r.rng.IntN(3) == 0 {
		name = mTopics[1]
	}
	s := r.spec(api.TopicPartition{Topic: name})
	r.logf("AssignTopic(%s, %v)", name, s)
	ctx, cancel := r.ctx()
	defer cancel()
	err := r.c.AssignTopic(ctx, name, s.offset())
	t := r.topics[name]
	if t == nil {
		if !errors.Is(err, api.ErrUnknownTopicOrPartition) {
			r.fatalf("AssignTopic(%s) of a topic not there: %v, want api.ErrUnknownTopicOrPartition", name, err)
		}
		r.checkAssigned()
		return
	}
	if err != nil {
		r.fatalf("AssignTopic(%s, %v): %v", name, s, err)
	}
	for i := range t.parts {
		r.setPosition(api.TopicPartition{Topic: name, Partition: int32(i)}, s)
	}
	r.checkAssigned()
	r.checkPositions("after AssignTopic")
	r.stats["assign topic"]++
}

func (r *mRun) unassign() {
	tp := r.randomTP()
	if as := r.sortedAssigns(); len(as) > 0 && r.rng.IntN(4) > 0 {
		tp = as[r.rng.IntN(len(as))].tp
	}
	r.logf("Unassign(%v)", tp)
	r.c.Unassign(tp.Topic, tp.Partition)
	delete(r.assigns, tp)
	if pos, ok := r.c.Position(tp.Topic, tp.Partition); ok {
		r.fatalf("Position(%v) after Unassign = %d, true", tp, pos)
	}
	r.checkAssigned()
	r.stats["unassign"]++
}

func (r *mRun) seek() {
	tp := r.randomTP()
	if as := r.sortedAssigns(); len(as) > 0 && r.rng.IntN(6) > 0 {
		tp = as[r.rng.IntN(len(as))].tp
	}
	s := r.spec(tp)
	r.logf("Seek(%v, %v)", tp, s)
	before := r.lagBefore(tp)
	err := r.c.Seek(tp.Topic, tp.Partition, s.offset())
	if r.assigns[tp] == nil {
		if !errors.Is(err, consumer.ErrNotAssigned) {
			r.fatalf("Seek(%v) of a partition not assigned: %v, want ErrNotAssigned", tp, err)
		}
		return
	}
	if err != nil {
		r.fatalf("Seek(%v, %v): %v", tp, s, err)
	}
	r.setPosition(tp, s)
	r.checkPositions("after Seek")
	r.checkLagMoved(tp, s, before, "after Seek")
	r.stats["seek"]++
}

// pickAssigned picks some of the assigned partitions, and sometimes one
// that is not assigned.
func (r *mRun) pickAssigned() []api.TopicPartition {
	var tps []api.TopicPartition
	for _, a := range r.sortedAssigns() {
		if r.rng.IntN(2) == 0 {
			tps = append(tps, a.tp)
		}
	}
	if r.rng.IntN(5) == 0 {
		tps = append(tps, r.randomTP())
	}
	return tps
}

func (r *mRun) pause() {
	tps := r.pickAssigned()
	r.logf("Pause(%v)", tps)
	r.c.Pause(tps...)
	for _, tp := range tps {
		if a := r.assigns[tp]; a != nil {
			a.paused = true
			if r.pausedInLoop != nil {
				r.pausedInLoop[tp] = true
			}
		}
	}
	r.checkPositions("after Pause")
	r.stats["pause"]++
}

func (r *mRun) resume() {
	tps := r.pickAssigned()
	r.logf("Resume(%v)", tps)
	r.c.Resume(tps...)
	for _, tp := range tps {
		if a := r.assigns[tp]; a != nil {
			a.paused = false
		}
	}
	r.checkPositions("after Resume")
	r.stats["resume"]++
}

// pollCtx is a Poll's ctx: under a long max wait, short, as only it ends
// a Poll with nothing to read; else mostly long enough never to end
// first, and now and then short enough to end it during its look-ups or
// its fetch. It reports whether it may end first.
func (r *mRun) pollCtx() (context.Context, context.CancelFunc, bool) {
	switch {
	case r.longWait:
		ctx, cancel := context.WithTimeout(r.t.Context(), time.Duration(3+r.rng.IntN(10))*time.Millisecond)
		return ctx, cancel, true
	case r.rng.IntN(5) == 0:
		ctx, cancel := context.WithTimeout(r.t.Context(), time.Duration(r.rng.IntN(2000))*time.Microsecond)
		return ctx, cancel, true
	}
	ctx, cancel := r.ctx()
	return ctx, cancel, false
}

func (r *mRun) poll() {
	ctx, cancel, short := r.pollCtx()
	fs, err := r.c.Poll(ctx)
	cancel()
	items := r.collect(fs)
	r.logf("Poll: %s, %v", summarize(items), err)
	switch {
	case err == nil:
		had := r.hadRecords()
		r.checkPoll(items, false)
		r.checkLag(fs)
		r.checkStarved(had, items)
		r.stats["poll"]++
	case short && errors.Is(err, context.DeadlineExceeded):
		for _, a := range r.assigns {
			a.starved = 0
		}
		if len(fs) > 0 {
			r.fatalf("Poll returned %d fetches with its ctx's error", len(fs))
		}
		r.interrupted()
		r.stats["poll (ctx ended)"]++
	default:
		r.fatalf("Poll: %v", err)
	}
	r.checkPositions("after Poll")
}

// interrupted is the model's side of a Poll that its ctx ended: it may
// have looked up positions before it, and nothing else (a held error is
// held still).
func (r *mRun) interrupted() {
	for _, a := range r.sortedAssigns() {
		var next []mState
		for _, c := range a.cands {
			next = append(next, c)
			if res, ok := r.resolved(a.tp, c); ok {
				next = append(next, res)
			}
		}
		a.cands = dedupe(next)
	}
}

// resolved is c after a Poll's look-up, and whether it looked c up. A
// position reset after an offset out of range remembers the topic it was
// read in: when that topic is gone at the look-up (deleted, and maybe
// created again), the look-up reports it (once, as api.ErrUnknownTopicID
// with Offset -1: the state owes that error, which the Poll returns or,
// cut short, holds) and forgets it; the position is then looked up in the
// topic there, if any.
func (r *mRun) resolved(tp api.TopicPartition, c mState) (mState, bool) {
	t, p := r.part(tp)
	if !c.pending || c.stopped {
		return c, false
	}
	if c.gen != 0 && (p == nil || t.gen != c.gen) {
		if c.owed {
			r.fatalf("%v: the model has a held error and a reset to report at once: %v", tp, c)
		}
		c.gen, c.owed, c.owedOff = 0, true, -1
		if p == nil {
			return c, true
		}
	}
	if p == nil {
		return c, false
	}
	c.pending, c.pos, c.gen, c.at = false, p.resolve(c.at), t.gen, mSpec{}
	return c, true
}

// collect flattens a Poll's fetches into items, checking each fetch: a
// partition error is a *PartitionError of the fetch's partition; a
// fetch's records decode, are of its partition, as many as NumRecords
// says, and its high watermark and log start are the partition's.
func (r *mRun) collect(fs consumer.Fetches) []mItem {
	r.checkBytes(fs)
	var items []mItem
	for i := range fs {
		f := &fs[i]
		tp := api.TopicPartition{Topic: f.Topic, Partition: f.Partition}
		if f.Err != nil {
			var pe *consumer.PartitionError
			if !errors.As(f.Err, &pe) || pe.Topic != f.Topic || pe.Partition != f.Partition {
				r.fatalf("fetch of %v: error %v (%T), want a *PartitionError of the partition", tp, f.Err, f.Err)
			}
			items = append(items, mItem{err: pe})
			continue
		}
		n := 0
		for rec, err := range f.Records() {
			if err != nil {
				r.fatalf("fetch of %v: %v", tp, err)
			}
			if rec.Topic != f.Topic || rec.Partition != f.Partition {
				r.fatalf("fetch of %v holds a record of %s-%d", tp, rec.Topic, rec.Partition)
			}
			items = append(items, mItem{rec: rec})
			n++
		}
		if got := f.NumRecords(); got != n {
			r.fatalf("fetch of %v: NumRecords %d, Records yielded %d", tp, got, n)
		}
		if _, p := r.part(tp); p != nil && (f.HighWatermark != p.hw() || f.LogStartOffset != p.start) {
			r.fatalf("fetch of %v: high watermark %d, log start %d; the model's [%d, %d)", tp, f.HighWatermark, f.LogStartOffset, p.start, p.hw())
		}
	}
	return items
}

// checkLag checks Lag after a Poll: for each partition it returned
// records of, the fetch's high watermark less the position Poll moved to.
func (r *mRun) checkLag(fs consumer.Fetches) {
	for i := range fs {
		f := &fs[i]
		if f.Err != nil || len(f.Batches) == 0 {
			continue
		}
		pos, ok := r.c.Position(f.Topic, f.Partition)
		lag, lok := r.c.Lag(f.Topic, f.Partition)
		if !ok || !lok || lag != f.HighWatermark-pos {
			r.fatalf("after Poll: %s-%d fetched up to %d, Position %d, %v, Lag %d, %v", f.Topic, f.Partition, f.HighWatermark, pos, ok, lag, lok)
		}
	}
}

// mLagBefore is what Lag and Position said of a partition before the
// application moved its position: hw is the high watermark Lag counted
// from, -1 when Lag said false.
type mLagBefore struct {
	assigned bool
	hw       int64
}

func (r *mRun) lagBefore(tp api.TopicPartition) mLagBefore {
	b := mLagBefore{assigned: r.assigns[tp] != nil, hw: -1}
	lag, lok := r.c.Lag(tp.Topic, tp.Partition)
	pos, pok := r.c.Position(tp.Topic, tp.Partition)
	if lok && pok {
		b.hw = pos + lag
	}
	return b
}

// checkLagMoved checks Lag after the application moved tp's position to
// s: the high watermark Lag knew is kept for a position at or below it,
// as the Java consumer's seek keeps it; not known for a partition just
// assigned, a position to look up, or one past it. When Lag did not know
// it before (a position being looked up may hide one), a Lag it knows
// now is at least 0.
func (r *mRun) checkLagMoved(tp api.TopicPartition, s mSpec, before mLagBefore, when string) {
	lag, ok := r.c.Lag(tp.Topic, tp.Partition)
	switch {
	case !before.assigned || s.kind != mAt:
		if ok {
			r.fatalf("%s %v: Lag(%v) = %d, true; want unknown", when, s, tp, lag)
		}
	case before.hw >= 0 && s.v <= before.hw:
		if !ok || lag != before.hw-s.v {
			r.fatalf("%s %v: Lag(%v) = %d, %v; want %d kept from the high watermark %d", when, s, tp, lag, ok, before.hw-s.v, before.hw)
		}
	case before.hw >= 0:
		if ok {
			r.fatalf("%s %v: Lag(%v) = %d, true; want unknown past the high watermark %d", when, s, tp, lag, before.hw)
		}
	case ok && lag < 0:
		r.fatalf("%s %v: Lag(%v) = %d, true; want unknown or at least 0", when, s, tp, lag)
	}
}

// summarize describes items per partition, for the log.
func summarize(items []mItem) string {
	if len(items) == 0 {
		return "nothing"
	}
	var parts []string
	for i := 0; i < len(items); {
		tp := items[i].tp()
		if items[i].err != nil {
			parts = append(parts, fmt.Sprintf("%v: %v", tp, items[i].err))
			i++
			continue
		}
		j := i
		for j < len(items) && items[j].rec != nil && items[j].tp() == tp {
			j++
		}
		parts = append(parts, fmt.Sprintf("%v: %d..%d", tp, items[i].rec.Offset, items[j-1].rec.Offset))
		i = j
	}
	return strings.Join(parts, "; ")
}

// checkPoll checks what a Poll that returned no error returned against
// the model, and moves the model on. woken says that a change ended the
// Poll's fetch (see wakeByChange): it looked positions up and fetched
// nothing.
func (r *mRun) checkPoll(items []mItem, woken bool) {
	r.count(items)
	byTP := map[api.TopicPartition][]mItem{}
	anyRecord := false
	for _, it := range items {
		tp := it.tp()
		if r.assigns[tp] == nil {
			r.fatalf("Poll returned %v of %v, which is not assigned", it, tp)
		}
		byTP[tp] = append(byTP[tp], it)
		anyRecord = anyRecord || it.rec != nil
	}
	immediate := false // a partition's fetch answers at once, with nothing
	for _, a := range r.sortedAssigns() {
		var next []mState
		var why []string
		for _, c := range a.cands {
			res, imm, reason := r.pollStep(a, c, byTP[a.tp], anyRecord, woken)
			next = append(next, res...)
			immediate = immediate || imm
			if reason != "" {
				why = append(why, fmt.Sprintf("from %v: %s", c, reason))
			}
		}
		if len(next) == 0 {
			r.fatalf("Poll returned for %v: %s; the model: %s", a.tp, summarize(byTP[a.tp]), strings.Join(why, "; "))
		}
		a.cands = dedupe(next)
	}
	if r.longWait && !woken && len(items) == 0 && !immediate {
		// Only its ctx (which did not end), an append or a change (none
		// came) ends a long poll with nothing to read.
		r.fatalf("Poll with a max wait of a minute returned nothing, and no error, before its ctx ended")
	}
}

// pollStep is what Poll does to one partition in state c: returns its
// held error, looks its position up, fetches. It returns the states c may
// be in after returning items (none when they are not what Poll should
// return, with the reason), and whether the partition's fetch answers
// at once without records (a long poll then returns at once).
func (r *mRun) pollStep(a *mAssign, c mState, items []mItem, anyRecord, woken bool) (next []mState, immediate bool, why string) {
	t, p := r.part(a.tp)
	i := 0
	if c.owed {
		if i >= len(items) || !isGone(items[i], c.owedOff) {
			return nil, false, "the error held for it first"
		}
		i++
		c.owed = false
	}
	if res, ok := r.resolved(a.tp, c); ok && !r.lookedUp {
		c = res
	}
	if c.owed {
		// The look-up found the topic the position was read in gone.
		if i >= len(items) || !isGone(items[i], c.owedOff) {
			return nil, false, "the error of the look-up that found the topic read gone"
		}
		i++
		c.owed = false
	}
	rest := items[i:]
	if a.paused || c.stopped || c.pending || woken {
		if len(rest) > 0 {
			return nil, false, "nothing (not fetched)"
		}
		// A position whose look-up failed (retried without a word) is
		// due again at once under RetryBackoff(0): the fetch answers
		// at once, for the next Poll to look it up.
		return []mState{c}, c.pending && !c.stopped && !woken, ""
	}
	if c.gen != 0 && (t == nil || t.gen != c.gen) {
		// The topic it read was deleted, and maybe created again.
		if len(rest) != 1 || !isGone(rest[0], c.pos) || (t == nil && !errors.Is(rest[0].err, api.ErrUnknownTopicOrPartition)) {
			return nil, false, "an error matching api.ErrUnknownTopicID alone"
		}
		return []mState{r.gone(c)}, false, ""
	}
	if p == nil {
		// Not there (yet), and not read before: retried without a word.
		if len(rest) > 0 {
			return nil, false, "nothing (not there, retried)"
		}
		return []mState{c}, true, ""
	}
	read := c.gen // the topic it was read in (0: none yet), kept through a reset
	c.gen = t.gen
	if !p.inRange(c.pos) {
		if anyRecord && len(rest) == 0 {
			// Another partition's records took the fetch's bytes: this
			// one was not read (no answer, no error).
			next = append(next, c)
		}
		switch {
		case r.policy != consumer.ResetNone && len(rest) == 0:
			next = append(next, mState{pending: true, at: resetSpec(r.policy), gen: read})
			r.stats[fmt.Sprintf("reset, read %v", read != 0)]++
			immediate = true
		case r.policy == consumer.ResetNone && len(rest) == 1 && isOutOfRange(rest[0], c.pos):
			c.stopped = true
			next = append(next, c)
		}
		if len(next) == 0 {
			return nil, false, fmt.Sprintf("out of range of [%d, %d]: reset per %v", p.start, p.hw(), r.policy)
		}
		return next, immediate, ""
	}
	from := c.pos
	for _, it := range rest {
		if it.rec == nil {
			return nil, false, fmt.Sprintf("records from %d (log [%d, %d))", from, p.start, p.hw())
		}
		if reason := sameRecord(p, c.pos, it.rec); reason != "" {
			return nil, false, reason
		}
		c.pos++
	}
	if c.pos == from && from < p.hw() && !anyRecord {
		return nil, false, fmt.Sprintf("records from %d, below the high watermark %d, and no partition returned any", from, p.hw())
	}
	return []mState{c}, false, ""
}

// gone is the state after the partition's error for a topic deleted
// under its position: stopped under ResetNone, else reset.
func (r *mRun) gone(c mState) mState {
	if r.policy == consumer.ResetNone {
		c.stopped = true
		return c
	}
	return mState{pending: true, at: resetSpec(r.policy)}
}

func resetSpec(p consumer.ResetPolicy) mSpec {
	if p == consumer.ResetLatest {
		return mSpec{kind: mEnd}
	}
	return mSpec{kind: mStart}
}

// isGone reports whether it is the error of a partition whose topic was
// deleted under position off.
func isGone(it mItem, off int64) bool {
	return it.err != nil && errors.Is(it.err, api.ErrUnknownTopicID) && it.err.Offset == off
}

// isOutOfRange reports whether it is the error of position off out of
// range.
func isOutOfRange(it mItem, off int64) bool {
	return it.err != nil && errors.Is(it.err, log.ErrOffsetOutOfRange) && it.err.Offset == off
}

// sameRecord says how rec differs from the record the model has at off,
// or returns "".
func sameRecord(p *mPart, off int64, rec *record.Record) string {
	if rec.Offset != off {
		return fmt.Sprintf("record %d where %d was next", rec.Offset, off)
	}
	if off < p.start || off >= p.hw() {
		return fmt.Sprintf("record %d, outside the readable [%d, %d)", off, p.start, p.hw())
	}
	m := p.recs[off]
	switch {
	case rec.Timestamp.UnixMilli() != m.ts:
		return fmt.Sprintf("record %d has timestamp %d, produced with %d", off, rec.Timestamp.UnixMilli(), m.ts)
	case !bytes.Equal(rec.Value, m.value):
		return fmt.Sprintf("record %d has value %q, produced with %q", off, rec.Value, m.value)
	case !bytes.Equal(rec.Key, m.key) || (rec.Key == nil) != (m.key == nil):
		return fmt.Sprintf("record %d has key %q, produced with %q", off, rec.Key, m.key)
	case len(rec.Headers) != len(m.headers):
		return fmt.Sprintf("record %d has %d headers, produced with %d", off, len(rec.Headers), len(m.headers))
	}
	for i, h := range m.headers {
		if rec.Headers[i].Key != h.Key || !bytes.Equal(rec.Headers[i].Value, h.Value) {
			return fmt.Sprintf("record %d: header %d is %s=%q, produced as %s=%q", off, i, rec.Headers[i].Key, rec.Headers[i].Value, h.Key, h.Value)
		}
	}
	return ""
}

// pull reads a few records (and errors) from Records, then breaks. Now
// and then the loop body changes the assignment (Seek, Assign, Unassign,
// Pause, Resume) or appends, which takes effect at the next record.
func (r *mRun) pull() {
	k := 1 + r.rng.IntN(6)
	if n := r.available(); n > 0 && r.rng.IntN(4) > 0 {
		k = 1 + r.rng.IntN(n)
	}
	d := 20 * time.Millisecond
	if r.longWait {
		d = 10 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(r.t.Context(), d)
	defer cancel()
	// The loop stops with a break, or by the cancellation of its ctx in
	// the body, after which it yields ctx's error and nothing more (as it
	// does when ctx's time is up).
	byCancel, cancelled := r.rng.IntN(3) == 0, false
	broke, ended := false, false // the body broke out; ctx's error came
	var logged []mItem           // since the last line logged
	n := 0
	r.pausedInLoop = map[api.TopicPartition]bool{}
	r.outInLoop = map[api.TopicPartition]map[int64]bool{}
	defer func() { r.pausedInLoop, r.outInLoop = nil, nil }()
	for rec, err := range r.c.Records(ctx) {
		if ended {
			r.fatalf("Records yielded (%v, %v) after ctx's error", rec, err)
		}
		if ctx.Err() != nil && err == ctx.Err() {
			ended = true
			continue
		}
		if cancelled {
			r.fatalf("Records yielded (%v, %v) after its ctx was cancelled in the loop body", rec, err)
		}
		var it mItem
		if err != nil {
			var pe *consumer.PartitionError
			if !errors.As(err, &pe) {
				r.fatalf("Records yielded %v (%T), want a *PartitionError", err, err)
			}
			it.err = pe
		} else {
			it.rec = rec
			if pos, ok := r.c.Position(rec.Topic, rec.Partition); !ok || pos != rec.Offset+1 {
				r.fatalf("Records yielded record %d of %s-%d: Position in the loop body is %d, %v", rec.Offset, rec.Topic, rec.Partition, pos, ok)
			}
			// The fetch that brought the record saw a high watermark
			// past it.
			if lag, ok := r.c.Lag(rec.Topic, rec.Partition); !ok || lag < 0 {
				r.fatalf("Records yielded record %d of %s-%d: Lag in the loop body is %d, %v", rec.Offset, rec.Topic, rec.Partition, lag, ok)
			}
		}
		logged = append(logged, it)
		r.pulled(it)
		if n++; n == k {
			if !byCancel {
				broke = true
				break
			}
			cancel()
			cancelled = true
			continue
		}
		if r.rng.IntN(3) == 0 {
			r.logf("Records, up to %d: %s, and in the loop body:", k, summarize(logged))
			logged = nil
			r.inLoop()
		}
	}
	if !broke && !ended {
		r.fatalf("Records ended without a break and without ctx's error (ctx: %v)", ctx.Err())
	}
	r.logf("Records, up to %d: %s", k, summarize(logged))
	// Fetches the loop made after its last item, unseen.
	for _, a := range r.sortedAssigns() {
		a.cands = r.closure(a, a.cands)
	}
	r.checkPositions("after Records")
	r.stats["records"]++
}

// pulled moves the model on by an item a Records loop yielded.
func (r *mRun) pulled(it mItem) {
	r.count([]mItem{it})
	a := r.assigns[it.tp()]
	if a == nil {
		r.fatalf("Records yielded %v of %v, which is not assigned", it, it.tp())
	}
	var next []mState
	for _, c := range r.closure(a, a.cands) {
		if s, ok := r.pullStep(a, c, it); ok {
			next = append(next, s)
		}
	}
	if len(next) == 0 {
		r.fatalf("Records yielded %v of %v; the model has it in %v (with what a fetch may do unseen: %v)", it, a.tp, a.cands, r.closure(a, a.cands))
	}
	a.cands = dedupe(next)
}

// inLoop runs, in a Records loop's body, an operation that changes the
// assignment or appends. The loop may have fetched (looked up, reset)
// more than it yielded: the model takes that in first.
func (r *mRun) inLoop() {
	for _, a := range r.sortedAssigns() {
		a.cands = r.closure(a, a.cands)
		_, p := r.part(a.tp)
		for _, c := range a.cands {
			if p != nil && !c.pending && !p.inRange(c.pos) {
				if r.outInLoop[a.tp] == nil {
					r.outInLoop[a.tp] = map[int64]bool{}
				}
				r.outInLoop[a.tp][c.pos] = true
			}
		}
	}
	switch r.rng.IntN(6) {
	case 0:
		r.seek()
	case 1:
		r.assign()
	case 2:
		r.unassign()
	case 3:
		r.pause()
	case 4:
		r.resume()
	default:
		r.produce()
	}
	r.stats["in a Records loop"]++
}

// available counts the records the model is sure the assigned, unpaused
// partitions have to read.
func (r *mRun) available() int {
	n := 0
	for _, a := range r.sortedAssigns() {
		if a.paused || len(a.cands) != 1 {
			continue
		}
		c := a.cands[0]
		t, p := r.part(a.tp)
		if c.pending || c.stopped || p == nil || (c.gen != 0 && c.gen != t.gen) || !p.inRange(c.pos) {
			continue
		}
		n += int(p.hw() - c.pos)
	}
	return n
}

// closure is cands with every state a Records loop's fetches may move a
// partition to without yielding anything: a position looked up; a
// position bound to the topic a fetch answered from; an offset out of
// range reset; a partition gone, reset, with its error held because the
// loop ended before yielding it.
func (r *mRun) closure(a *mAssign, cands []mState) []mState {
	seen := map[mState]bool{}
	var out []mState
	queue := slices.Clone(cands)
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if seen[c] {
			continue
		}
		seen[c] = true
		out = append(out, c)
		if res, ok := r.resolved(a.tp, c); ok {
			queue = append(queue, res)
		}
		if c.pending || a.paused || c.stopped {
			continue
		}
		t, p := r.part(a.tp)
		switch {
		case c.gen != 0 && (t == nil || t.gen != c.gen):
			if r.policy != consumer.ResetNone && !c.owed {
				queue = append(queue, mState{pending: true, at: resetSpec(r.policy), owed: true, owedOff: c.pos})
			}
		case p != nil:
			b := c
			b.gen = t.gen
			queue = append(queue, b)
			if !p.inRange(c.pos) && r.policy != consumer.ResetNone {
				queue = append(queue, mState{pending: true, at: resetSpec(r.policy), gen: c.gen, owed: c.owed, owedOff: c.owedOff})
			}
		}
	}
	return out
}

// pullStep is the state after a Records loop yielded it of a partition in
// state c (one of the closure's), if it may.
func (r *mRun) pullStep(a *mAssign, c mState, it mItem) (mState, bool) {
	t, p := r.part(a.tp)
	if c.owed {
		if !isGone(it, c.owedOff) {
			return c, false // the held error comes first
		}
		c.owed = false
		return c, true
	}
	// An error fetched before a Pause in the loop body is yielded after it.
	paused := a.paused && (it.err == nil || !r.pausedInLoop[a.tp])
	if c.pending || paused || c.stopped {
		return c, false
	}
	readsOld := c.gen != 0 && (t == nil || t.gen != c.gen)
	if it.err != nil {
		switch {
		case readsOld && isGone(it, c.pos):
			return r.gone(c), true
		case !readsOld && p != nil && (!p.inRange(c.pos) || r.outInLoop[a.tp][c.pos]) && r.policy == consumer.ResetNone && isOutOfRange(it, c.pos):
			c.stopped = true
			return c, true
		}
		return c, false
	}
	if readsOld || p == nil || sameRecord(p, c.pos, it.rec) != "" {
		return c, false
	}
	c.pos++
	c.gen = t.gen
	return c, true
}

// wakeByAppend, under a long max wait, starts a Poll whose partitions
// have nothing to read, appends to one of them once its Fetch is sent,
// and checks that the Poll returns the records (its ctx would end it
// only after a minute).
func (r *mRun) wakeByAppend() {
	sent, ok := r.waiting()
	if !ok {
		return
	}
	tp := sent[r.rng.IntN(len(sent))]
	// The Poll looks positions up before it fetches, before the append.
	for _, a := range r.sortedAssigns() {
		if res, ok := r.resolved(a.tp, a.cands[0]); ok {
			a.cands[0] = res
		}
	}
	fs, err := r.whileWaiting(func() { r.produceTo(tp, 1+r.rng.IntN(3)) })
	items := r.collect(fs)
	r.logf("Poll woken by the append: %s, %v", summarize(items), err)
	if err != nil {
		r.fatalf("Poll woken by an append to %v: %v", tp, err)
	}
	r.checkPoll(items, false)
	if len(items) == 0 {
		r.fatalf("Poll woken by an append to %v returned nothing", tp)
	}
	r.checkPositions("after a Poll woken by an append")
	r.stats["poll woken by append"]++
}

// wakeByChange, under a long max wait, starts a Poll whose partitions
// have nothing to read, and once its Fetch is sent, Seeks, Pauses,
// Unassigns or Assigns a partition: the Poll returns early (its ctx would
// end it only after a minute), with nothing fetched.
func (r *mRun) wakeByChange() {
	sent, ok := r.waiting()
	if !ok {
		return
	}
	tp := sent[r.rng.IntN(len(sent))]
	var what string
	var call, apply func()
	switch r.rng.IntN(4) {
	case 0:
		s := r.spec(tp)
		what = fmt.Sprintf("Seek(%v, %v)", tp, s)
		call = func() {
			if err := r.c.Seek(tp.Topic, tp.Partition, s.offset()); err != nil {
				r.t.Errorf("%s: %v", what, err)
			}
		}
		apply = func() { r.setPosition(tp, s) }
	case 1:
		what = fmt.Sprintf("Pause(%v)", tp)
		call = func() { r.c.Pause(tp) }
		apply = func() { r.assigns[tp].paused = true }
	case 2:
		what = fmt.Sprintf("Unassign(%v)", tp)
		call = func() { r.c.Unassign(tp.Topic, tp.Partition) }
		apply = func() { delete(r.assigns, tp) }
	default:
		tp = r.randomTP()
		s := r.spec(tp)
		what = fmt.Sprintf("Assign(%v, %v)", tp, s)
		call = func() {
			if err := r.c.Assign(tp.Topic, tp.Partition, s.offset()); err != nil {
				r.t.Errorf("%s: %v", what, err)
			}
		}
		apply = func() { r.setPosition(tp, s) }
	}
	fs, err := r.whileWaiting(call)
	items := r.collect(fs)
	r.logf("Poll woken by %s: %s, %v", what, summarize(items), err)
	if err != nil {
		r.fatalf("Poll woken by %s: %v", what, err)
	}
	r.checkPoll(items, true) // what the Poll did before the change
	apply()
	r.checkAssigned()
	r.checkPositions("after a Poll woken by " + what)
	r.stats["poll woken by change"]++
}

// waiting returns the partitions a Poll would fetch, when there are some
// and the model is sure that a Poll would wait for an append: under a
// long max wait, each at its high watermark, none to look up, no error
// held.
func (r *mRun) waiting() ([]api.TopicPartition, bool) {
	if !r.longWait {
		return nil, false
	}
	var sent []api.TopicPartition
	for _, a := range r.sortedAssigns() {
		if len(a.cands) != 1 {
			return nil, false
		}
		c := a.cands[0]
		if res, ok := r.resolved(a.tp, c); ok {
			c = res // looked up before the Fetch
		}
		if c.pending || c.owed {
			return nil, false
		}
		if a.paused || c.stopped {
			continue
		}
		t, p := r.part(a.tp)
		if p == nil || (c.gen != 0 && c.gen != t.gen) || c.pos != p.hw() {
			return nil, false
		}
		sent = append(sent, a.tp)
	}
	return sent, len(sent) > 0
}

// whileWaiting runs a Poll, calls f once the Poll's Fetch is sent, and
// returns what the Poll returned.
func (r *mRun) whileWaiting(f func()) (consumer.Fetches, error) {
	fetching := make(chan struct{})
	r.cl.fetching.Store(&fetching)
	defer r.cl.fetching.Store(nil)
	ctx, cancel := r.ctx()
	defer cancel()
	type result struct {
		fs  consumer.Fetches
		err error
	}
	done := make(chan result, 1)
	go func() {
		fs, err := r.c.Poll(ctx)
		done <- result{fs, err}
	}()
	select {
	case <-fetching:
	case res := <-done:
		r.fatalf("Poll returned before it fetched: %d fetches, %v", len(res.fs), res.err)
	case <-time.After(testkit.HangGuard):
		r.fatalf("Poll neither fetched nor returned within %v", testkit.HangGuard)
	}
	f()
	res := testkit.Await(r.t, done, "Poll's answer") // within wait: ctx's
	return res.fs, res.err
}

// checkPositions checks Position against the model, keeping the states
// it agrees with.
func (r *mRun) checkPositions(when string) {
	for _, a := range r.sortedAssigns() {
		pos, ok := r.c.Position(a.tp.Topic, a.tp.Partition)
		var keep []mState
		for _, c := range a.cands {
			if (c.pending && !ok) || (!c.pending && ok && pos == c.pos) {
				keep = append(keep, c)
			}
		}
		if len(keep) == 0 {
			r.fatalf("%s: Position(%v) = %d, %v; the model has it %v", when, a.tp, pos, ok, a.cands)
		}
		a.cands = keep
	}
}

// checkAssigned checks Assigned against the model.
func (r *mRun) checkAssigned() {
	var want []api.TopicPartition
	for _, a := range r.assigns {
		want = append(want, a.tp)
	}
	slices.SortFunc(want, func(x, y api.TopicPartition) int {
		if x.Topic != y.Topic {
			return strings.Compare(x.Topic, y.Topic)
		}
		return int(x.Partition - y.Partition)
	})
	if got := r.c.Assigned(); !slices.Equal(got, want) {
		r.fatalf("Assigned() = %v, the model's %v", got, want)
	}
}

// dedupe drops repeated states, keeping the first of each.
func dedupe(cs []mState) []mState {
	out := cs[:0:0]
	for _, c := range cs {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// count adds items to the seed's statistics.
func (r *mRun) count(items []mItem) {
	for _, it := range items {
		switch {
		case it.rec != nil:
			r.stats["record"]++
		case errors.Is(it.err, api.ErrUnknownTopicID) && it.err.Offset < 0:
			r.stats["error: gone, found by a look-up"]++
		case errors.Is(it.err, api.ErrUnknownTopicID):
			r.stats["error: gone"]++
		case errors.Is(it.err, log.ErrOffsetOutOfRange):
			r.stats["error: out of range"]++
		default:
			r.stats["error: other"]++
		}
	}
}

// checkBytes checks a Poll's fetches against FetchMaxBytes and
// FetchMaxPartitionBytes: a partition's batches are within the latter,
// and all of them within the former, but for a first batch too large,
// which comes alone.
func (r *mRun) checkBytes(fs consumer.Fetches) {
	total, batches := 0, 0
	for i := range fs {
		n := 0
		for _, err := range record.Batches(fs[i].Batches) {
			if err != nil {
				r.fatalf("fetch of %s-%d: %v", fs[i].Topic, fs[i].Partition, err)
			}
			n++
		}
		if len(fs[i].Batches) > r.partBytes && n > 1 {
			r.fatalf("fetch of %s-%d: %d batches in %d bytes, over FetchMaxPartitionBytes %d", fs[i].Topic, fs[i].Partition, n, len(fs[i].Batches), r.partBytes)
		}
		total += len(fs[i].Batches)
		batches += n
	}
	if total > r.maxBytes && batches > 1 {
		r.fatalf("Poll: %d batches in %d bytes, over FetchMaxBytes %d", batches, total, r.maxBytes)
	}
}

// hadRecords returns the partitions that the model is sure a Poll will
// fetch from with records to read.
func (r *mRun) hadRecords() map[api.TopicPartition]bool {
	had := map[api.TopicPartition]bool{}
	for _, a := range r.sortedAssigns() {
		if a.paused || len(a.cands) != 1 {
			continue
		}
		c, _ := r.resolved(a.tp, a.cands[0])
		t, p := r.part(a.tp)
		if !c.pending && !c.stopped && p != nil && (c.gen == 0 || c.gen == t.gen) && c.pos >= p.start && c.pos < p.hw() {
			had[a.tp] = true
		}
	}
	return had
}

// checkStarved checks that the partitions take turns at the head of the
// fetch (see Poll): one that had records to read in as many Polls in a
// row as there are partitions assigned was at the head of one of them,
// where it gets a batch whatever FetchMaxBytes says.
func (r *mRun) checkStarved(had map[api.TopicPartition]bool, items []mItem) {
	got := map[api.TopicPartition]bool{}
	for _, it := range items {
		if it.rec != nil {
			got[it.tp()] = true
		}
	}
	for _, a := range r.sortedAssigns() {
		if !had[a.tp] || got[a.tp] {
			a.starved = 0
			continue
		}
		a.starved++
		if a.starved > len(r.assigns) {
			r.fatalf("%v had records to read in %d Polls in a row, and got none (%d partitions assigned)", a.tp, a.starved, len(r.assigns))
		}
	}
}

// interlude runs a Poll during which the broker changes between the
// look-ups of positions (Start, End, AtTime, resets) and the fetch: a
// topic deleted, maybe created again with records; DeleteRecords;
// appends; partitions added. The fetch must see the change: a position
// looked up in the old topic is reported gone, not read in the new one.
// Under a long max wait a Poll may wait for a minute: not there.
func (r *mRun) interlude() {
	if r.longWait {
		return
	}
	// The Poll looks positions up before it fetches, before the change.
	for _, a := range r.sortedAssigns() {
		for i, c := range a.cands {
			if res, ok := r.resolved(a.tp, c); ok {
				a.cands[i] = res
			}
		}
		a.cands = dedupe(a.cands)
	}
	change := func() {
		r.logf("between the look-ups and the fetch of a Poll:")
		switch r.rng.IntN(5) {
		case 0:
			r.deleteTopic()
		case 1:
			name := mTopics[r.rng.IntN(2)]
			r.deleteTopicNamed(name)
			r.createTopic(name)
			for range r.rng.IntN(4) {
				r.produce()
			}
		case 2:
			r.deleteRecords()
		case 3:
			r.produce()
		default:
			r.createPartitions()
		}
	}
	r.cl.beforeFetch.Store(&change)
	ctx, cancel := r.ctx()
	fs, err := r.c.Poll(ctx)
	cancel()
	if r.cl.beforeFetch.Swap(nil) != nil {
		r.logf("(no fetch, no change)")
	}
	items := r.collect(fs)
	r.logf("Poll: %s, %v", summarize(items), err)
	if err != nil {
		r.fatalf("Poll: %v", err)
	}
	r.lookedUp = true
	r.checkPoll(items, false)
	r.lookedUp = false
	r.checkPositions("after a Poll with a change before its fetch")
	r.stats["poll with a change before its fetch"]++
}

// replaceReset makes the position of a partition read in its topic fall
// below the log start (appending if it is at the end, then DeleteRecords
// past it), Polls (which resets it, or under ResetNone reports it), then
// deletes the topic and mostly creates it again with records before the
// next Poll: its look-up of the reset position must report the topic
// read gone rather than read on in the new one without a word.
func (r *mRun) replaceReset() {
	var a *mAssign
	for _, x := range r.sortedAssigns() {
		t, p := r.part(x.tp)
		if len(x.cands) == 1 && !x.cands[0].pending && !x.cands[0].stopped && !x.paused && p != nil && x.cands[0].gen == t.gen {
			a = x
			break
		}
	}
	if a == nil {
		return
	}
	tp := a.tp
	_, p := r.part(tp)
	if a.cands[0].pos >= p.hw() {
		r.produceTo(tp, 1+r.rng.IntN(3))
	}
	r.logf("to replace the topic of a reset:")
	ctx, cancel := r.ctx()
	defer cancel()
	off := p.hw()
	low, err := r.b.DeleteRecords(ctx, tp.Topic, tp.Partition, off)
	if err != nil || low != off {
		r.fatalf("DeleteRecords(%v, %d) = %d, %v", tp, off, low, err)
	}
	p.start = low
	r.logf("DeleteRecords(%v, %d): [%d, %d)", tp, off, p.start, p.hw())
	r.poll()
	if r.t.Failed() {
		return
	}
	r.deleteTopicNamed(tp.Topic)
	if r.rng.IntN(4) > 0 {
		r.createTopic(tp.Topic)
		for range r.rng.IntN(4) {
			r.produce()
		}
	}
	r.poll()
	r.stats["replace the topic of a reset"]++
}
