package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestSynctestConsumerTimingModel is a randomized model of the consumer's
// timing on the fake clock. Each seed runs, in a synctest bubble, either a
// Poll loop (each Poll started a random gap after the last returned) or
// Records loops (each breaking after a few yields, or ended by its ctx or
// Close; the body taking a random time after some records) over 1–3
// partitions of an in-memory broker, with random FetchMaxWait,
// FetchMinBytes, byte limits, ResetOffset and RetryBackoff; for some
// seeds every batch is a segment of its own (a read returns one batch)
// under a RetentionTime, and for some the Client takes a few milliseconds
// to pass each ListOffset and Fetch to the broker. Events come at random
// times: appends of batches (through the broker, or a producer), Seek to
// each kind of Offset, Pause, Resume, Unassign, Assign, DeleteRecords
// (maybe past the position), retention (Broker.Maintain), the topic
// deleted and created again (maybe with another partition count),
// CreatePartitions, a fetch failing with api.ErrNotLeader (whole, or for
// one partition), the ctx cancelled, the broker closed, and at the end
// the consumer closed. The model (tmModel) says, to the nanosecond, when
// each Poll returns and with what — the records of each partition (by
// offset, and of which incarnation of the topic), each partition's
// error, Poll's error, every partition's Position and Lag afterwards —
// or when a Records loop yields each record (with Position and Lag in
// the body) and error, and when it ends. It follows the package's docs
// and Kafka's long poll: a fetch answers at once when FetchMinBytes are
// there (counted as the broker counts them, up to each partition's max
// bytes), when a partition fails, or with nothing to wait for; it waits
// for an append to one of its partitions, not a timer tick, and
// otherwise answers at FetchMaxWait; a change of the assignment, a ctx,
// Close end the wait; records come below the high watermark, in offset
// order, none twice and none skipped but by a reset.
//
// The times never tie but where one causes the other: events at random
// fractions of a millisecond, the waits off whole milliseconds by a few
// micro- or nanoseconds.
//
// 150 seeds run by default (30 under -short), in well under a second;
// for a long run:
//
//	RUNNEL_CONSUMER_TIMING_SEEDS=5000 go test -run TestSynctestConsumerTimingModel ./consumer
//
// A failing seed S repeats with RUNNEL_CONSUMER_TIMING_SEEDS=1
// RUNNEL_CONSUMER_TIMING_SEEDS_BASE=S (the failure prints the command).
//
// The model takes a retention event (Broker.Maintain) as one step, but
// Maintain moves the log starts partition by partition, segment by
// segment, while a fetch its first move woke reads the partitions on
// another goroutine: a read may see a log start not yet moved (or moved
// halfway), and records Maintain then deletes, or a look-up made at once
// after it a start not yet final. Which comes first is the scheduler's
// choice, not the fake clock's, so a run where an answer at a retention
// event's instant gave a log start below the one Maintain left (see
// cutWatch) is run again, up to 20 times, until Maintain won the race.
func TestSynctestConsumerTimingModel(t *testing.T) {
	testkit.Seeds(t, "RUNNEL_CONSUMER_TIMING_SEEDS", 150, 30, func(t *testing.T, seed uint64) {
		sc := newTimingScenario(seed)
		got, gotYields, raced := sc.run(t)
		for try := 1; raced && try < 20; try++ {
			got, gotYields, raced = sc.run(t)
		}
		if raced {
			t.Skipf("seed %d: in every run, a fetch or look-up read a log start that a retention event had not finished moving (see cutWatch)", seed)
		}
		d := ""
		if sc.records {
			d = diffLines(sc.modelRecords(), gotYields)
		} else {
			d = diffPolls(sc.model(), got)
		}
		if d != "" {
			t.Log(sc.String())
			t.Errorf("seed %d: %s\nrepeat: RUNNEL_CONSUMER_TIMING_SEEDS=1 RUNNEL_CONSUMER_TIMING_SEEDS_BASE=%d go test -run 'TestSynctestConsumerTimingModel' ./consumer", seed, d, seed)
		}
	})
}

const tmTopic = "tm"

// Event kinds.
const (
	evAppend = iota
	evSeek
	evPause
	evResume
	evUnassign
	evAssign
	evDeleteRecords
	evDeleteTopic
	evCreateTopic
	evCancel
	evCloseBroker
	evClose
	evFault
	evRetention
	evAddPartitions
	evAssignTopic
)

var evNames = []string{"append", "seek", "pause", "resume", "unassign", "assign", "delete-records", "delete-topic", "create-topic", "cancel", "close-broker", "close", "fault", "retention", "add-partitions", "assign-topic"}

// tmSpec is an Offset: kind is mStart, mEnd, mTime (v in ms since the
// bubble's start) or mAt.
type tmSpec struct {
	kind int
	v    int64
}

// tmT0 is the bubble's start, in Unix ms.
var tmT0 = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

func (s tmSpec) tmOffset() consumer.Offset {
	switch s.kind {
	case mEnd:
		return consumer.End()
	case mTime:
		return consumer.AtTime(time.UnixMilli(tmT0 + s.v))
	case mAt:
		return consumer.At(s.v)
	}
	return consumer.Start()
}

type tmEvent struct {
	at   time.Duration
	kind int
	p    int32
	spec tmSpec  // seek, assign
	vals []int   // append: the value lengths of the batch's records
	prod bool    // append through the producer (one record)
	frac float64 // delete-records: where between the log start and end
	// fault: the next fetch naming p fails with api.ErrNotLeader, whole
	// or for p (runneltest's FailRequest, FailPartitions)
	whole bool
	n     int // create-topic, add-partitions: the topic's partitions
}

type timingScenario struct {
	count0            int // the topic's partitions at first (the consumer may assign up to parts)
	seed              uint64
	parts             int
	maxWait           time.Duration
	minBytes          int
	maxBytes, maxPart int
	reset             consumer.ResetPolicy
	backoff           time.Duration
	gaps              []time.Duration // before each Poll after the first (cycled)
	initial           []tmSpec        // of each partition; kind -1: not assigned
	events            []tmEvent
	producer          bool
	records           bool // a Records loop rather than a Poll loop
	mixed             bool // records, and a Poll after each Records loop
	// oneSeg makes every batch a segment of its own (SegmentBytes(14)),
	// so that a read returns one batch, and retention (RetentionTime
	// retention, run by retention events: Broker.Maintain) deletes batches
	oneSeg    bool
	retention time.Duration
	// latency is how long each ListOffset and Fetch takes to reach the
	// broker (see slowCalls)
	latency time.Duration
	breaks  []int // a Records loop breaks after so many yields (cycled; 0: never)
	// thinks are how long a Records loop's body takes after each yield
	// (cycled): the events meanwhile (a Seek, Pause, Close...) take
	// effect at the next record
	thinks []time.Duration
	// sizes are the sizes of the batches appended, by event index: set
	// by run, for the model to count bytes.
	sizes map[int]int
	// starts are the log starts of each partition after a retention
	// event, by event index: set by run, the model applies them
	starts   map[int][]int64
	maxPolls int
}

func newTimingScenario(seed uint64) *timingScenario {
	rng := rand.New(rand.NewPCG(seed, 23))
	sc := &timingScenario{seed: seed, parts: 1 + rng.IntN(3), maxPolls: 400}
	sc.count0 = sc.parts
	if rng.IntN(4) == 0 {
		sc.count0 = 1 + rng.IntN(sc.parts)
	}
	switch rng.IntN(4) {
	case 0:
		sc.maxWait = 0
	default:
		sc.maxWait = time.Duration(20+rng.IntN(400))*time.Millisecond + 3*time.Microsecond
	}
	switch rng.IntN(4) {
	case 0:
		sc.minBytes = 0
	case 1:
		sc.minBytes = 1
	default:
		sc.minBytes = 60 + rng.IntN(400)
	}
	sc.maxBytes, sc.maxPart = 50<<20, 1<<20
	if rng.IntN(2) == 0 {
		sc.maxPart = 40 + rng.IntN(300)
	}
	if rng.IntN(2) == 0 {
		sc.maxBytes = 40 + rng.IntN(500)
	}
	sc.reset = consumer.ResetPolicy(rng.IntN(3))
	sc.backoff = time.Duration(30+rng.IntN(300))*time.Millisecond + 170*time.Nanosecond
	for range 5 {
		g := time.Duration(0)
		if sc.maxWait == 0 || sc.minBytes == 0 || rng.IntN(2) == 0 {
			g = time.Duration(1+rng.IntN(80))*time.Millisecond + 11*time.Nanosecond
		}
		sc.gaps = append(sc.gaps, g)
	}
	randSpec := func(now int64) tmSpec {
		switch rng.IntN(5) {
		case 0:
			return tmSpec{kind: mStart}
		case 1:
			return tmSpec{kind: mEnd}
		case 2:
			return tmSpec{kind: mTime, v: rng.Int64N(now + 2)}
		}
		return tmSpec{kind: mAt, v: rng.Int64N(12)}
	}
	for range sc.parts {
		if rng.IntN(5) == 0 {
			sc.initial = append(sc.initial, tmSpec{kind: -1})
		} else {
			sc.initial = append(sc.initial, randSpec(0))
		}
	}
	sc.producer = rng.IntN(3) == 0
	sc.records = rng.IntN(2) == 0
	sc.mixed = sc.records && rng.IntN(2) == 0
	if rng.IntN(3) == 0 {
		sc.latency = time.Duration(1+rng.IntN(40))*time.Millisecond + 5*time.Nanosecond
	}
	if rng.IntN(3) == 0 {
		sc.oneSeg, sc.retention = true, time.Duration(200+rng.IntN(1500))*time.Millisecond
	}
	for range 4 {
		b := 0
		if rng.IntN(2) == 0 {
			b = 1 + rng.IntN(8)
		}
		sc.breaks = append(sc.breaks, b)
	}
	for range 7 {
		d := time.Duration(0)
		if rng.IntN(3) == 0 {
			d = time.Duration(1+rng.IntN(60))*time.Millisecond + 13*time.Nanosecond
		}
		sc.thinks = append(sc.thinks, d)
	}
	if sc.records {
		for i, g := range sc.gaps { // a Records loop that ends at once is not started again at once
			if g == 0 {
				sc.gaps[i] = time.Duration(1+rng.IntN(30))*time.Millisecond + 11*time.Nanosecond
			}
		}
	}
	n := 10 + rng.IntN(30)
	if rng.IntN(4) == 0 { // dense
		n = 40 + rng.IntN(80)
	}
	ms := rng.Perm(3000)[:n]
	slices.Sort(ms)
	closeBroker := rng.IntN(6) == 0
	for i, m := range ms {
		// Off the whole millisecond by a random fraction, so that no wait
		// from one event (idleWait is 500 ms) ends at another.
		e := tmEvent{at: time.Duration(m+1)*time.Millisecond + time.Duration(rng.IntN(1e6)), p: int32(rng.IntN(sc.parts))}
		r := rng.IntN(100)
		switch {
		case r < 40:
			e.kind = evAppend
			e.vals = make([]int, 1+rng.IntN(3))
			for k := range e.vals {
				e.vals[k] = 5 + rng.IntN(40)
			}
			if sc.producer && rng.IntN(2) == 0 {
				e.prod, e.vals = true, e.vals[:1]
			}
		case r < 50:
			e.kind, e.spec = evSeek, randSpec(int64(m+1))
		case r < 56:
			e.kind = evPause
		case r < 62:
			e.kind = evResume
		case r < 66:
			e.kind = evUnassign
		case r < 70:
			e.kind, e.spec = evAssign, randSpec(int64(m+1))
		case r < 71:
			e.kind, e.spec = evAssignTopic, randSpec(int64(m+1))
		case r < 79:
			e.kind, e.frac = evDeleteRecords, rng.Float64()*1.2
		case r < 83 && !sc.producer:
			e.kind = evDeleteTopic
		case r < 88 && !sc.producer:
			e.kind, e.n = evCreateTopic, sc.parts
			if rng.IntN(3) == 0 {
				e.n = 1 + rng.IntN(sc.parts)
			}
		case r < 92:
			e.kind = evCancel
		case r < 96:
			e.kind, e.whole = evFault, rng.IntN(2) == 0
		case r < 99 && sc.oneSeg:
			e.kind = evRetention
		case r < 99:
			e.kind, e.n = evAddPartitions, 1+rng.IntN(sc.parts)
		default:
			e.kind = evAppend
			e.vals = []int{5}
		}
		if closeBroker && i == n-3 {
			e.kind = evCloseBroker
		}
		sc.events = append(sc.events, e)
	}
	sc.events = append(sc.events, tmEvent{at: time.Duration(ms[n-1]+2) * time.Millisecond, kind: evClose})
	return sc
}

func (sc *timingScenario) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario: %d partitions (%d at first), FetchMaxWait(%v) FetchMinBytes(%d) FetchMaxBytes(%d) FetchMaxPartitionBytes(%d) ResetOffset(%v) RetryBackoff(%v) gaps %v producer %v records %v mixed %v breaks %v thinks %v one-batch segments %v retention %v latency %v\n",
		sc.parts, sc.count0, sc.maxWait, sc.minBytes, sc.maxBytes, sc.maxPart, sc.reset, sc.backoff, sc.gaps, sc.producer, sc.records, sc.mixed, sc.breaks, sc.thinks, sc.oneSeg, sc.retention, sc.latency)
	for p, s := range sc.initial {
		fmt.Fprintf(&b, "  assign p%d %v (kind -1: not)\n", p, s)
	}
	for _, e := range sc.events {
		fmt.Fprintf(&b, "  %v: %s p%d", e.at, evNames[e.kind], e.p)
		switch e.kind {
		case evAppend:
			fmt.Fprintf(&b, " vals %v prod %v", e.vals, e.prod)
		case evSeek, evAssign, evAssignTopic:
			fmt.Fprintf(&b, " %v", e.spec)
		case evDeleteRecords:
			fmt.Fprintf(&b, " frac %.2f", e.frac)
		case evFault:
			fmt.Fprintf(&b, " whole %v", e.whole)
		case evCreateTopic, evAddPartitions:
			fmt.Fprintf(&b, " n %d", e.n)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// tmBatch is a batch in the model's log.
type tmBatch struct {
	base, n int64
	size    int
	ts      int64 // ms since the bubble's start, of every record
}

type tmPart struct {
	batches    []tmBatch
	start, end int64 // log start, and end (the high watermark)
}

// deleteTo is the offset a delete-records event deletes up to.
func (p *tmPart) deleteTo(frac float64) int64 {
	return min(p.end, p.start+int64(frac*float64(p.end-p.start)))
}

// timeOffset is ListOffset's answer for a timestamp: the first record at
// or after it, not below the log start; the end when none is.
func (p *tmPart) timeOffset(ms int64) int64 {
	for _, b := range p.batches {
		if b.base+b.n > p.start && b.ts >= ms {
			return max(b.base, p.start)
		}
	}
	return p.end
}

// read is the broker's ReadInto: whole batches from the one holding off,
// as many as fit in limit but at least one, below upTo, and no further
// than the segment's end (oneSeg: the batch's).
func (p *tmPart) read(off int64, limit int, upTo int64, oneSeg bool) (bs []tmBatch, size int) {
	for _, b := range p.batches {
		if b.base+b.n <= off || b.base+b.n > upTo {
			continue
		}
		if len(bs) > 0 && (oneSeg || size+b.size > limit) {
			break // a read stops at the end of a segment
		}
		bs = append(bs, b)
		size += b.size
	}
	return bs, size
}

// Results of a partition in a Poll.
const (
	resRecords = iota
	resOutOfRange
	resTopicID   // api.ErrUnknownTopicID
	resUnknown   // api.ErrUnknownTopicOrPartition, not an ID's
	resNotLeader // api.ErrNotLeader, of a fault
	resOther
)

type tmResult struct {
	p        int32
	kind     int
	from, to int64 // records [from, to), or the error's Offset in from
	gen      int   // the topic's incarnation the records are of
	reset    bool  // the error came with a reset of the position (model only)
	// The partition's cursor the records were fetched at, its assignment
	// and seq when the error was found (model only).
	cur, seq int
	owner    *tmAssign
}

func (r tmResult) String() string {
	if r.kind == resRecords {
		return fmt.Sprintf("p%d[%d,%d)g%d", r.p, r.from, r.to, r.gen)
	}
	return fmt.Sprintf("p%d:err%d@%d", r.p, r.kind, r.from)
}

// tmPoll is what one Poll did.
type tmPoll struct {
	start, end time.Duration
	res        []tmResult
	err        string  // "", "ctx", "closed" (ErrClosed), "broker" (runnel.ErrClosed), or another
	pos        []int64 // Position of each partition afterwards: -1 unresolved, -2 unassigned
	lag        []int64 // Lag of each partition afterwards: -1 when it says false
}

func (p tmPoll) String() string {
	return fmt.Sprintf("poll %v..%v %v err=%q pos=%v lag=%v", p.start, p.end, p.res, p.err, p.pos, p.lag)
}

// diffPolls returns where got parts from want, or "".
func diffPolls(want, got []tmPoll) string {
	for i := range max(len(want), len(got)) {
		if i < len(want) && i < len(got) && want[i].String() == got[i].String() {
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "poll %d differs\n", i)
		for j := max(0, i-6); j < min(i+3, max(len(want), len(got))); j++ {
			w, g := "-", "-"
			if j < len(want) {
				w = want[j].String()
			}
			if j < len(got) {
				g = got[j].String()
			}
			mark := " "
			if w != g {
				mark = "!"
			}
			fmt.Fprintf(&b, "%s%3d model: %s\n%s    real:  %s\n", mark, j, w, mark, g)
		}
		return b.String()
	}
	return ""
}

// diffLines returns where got parts from want, or "".
func diffLines(want, got []string) string {
	for i := range max(len(want), len(got)) {
		if i < len(want) && i < len(got) && want[i] == got[i] {
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "yield %d differs\n", i)
		for j := max(0, i-10); j < min(i+4, max(len(want), len(got))); j++ {
			w, g := "-", "-"
			if j < len(want) {
				w = want[j]
			}
			if j < len(got) {
				g = got[j]
			}
			mark := " "
			if w != g {
				mark = "!"
			}
			fmt.Fprintf(&b, "%s%3d model: %s\n%s    real:  %s\n", mark, j, w, mark, g)
		}
		return b.String()
	}
	return ""
}

// batchBytes builds the batch an append event adds: one record per value,
// valued "g<gen> p<p> o<offset>" padded to its length, stamped ts.
func batchBytes(gen int, p int32, base int64, vals []int, ts int64) []byte {
	var bl record.Builder
	bl.Reset()
	for k, n := range vals {
		bl.Append(ts, nil, tmValue(gen, p, base+int64(k), n), nil)
	}
	data, err := bl.AppendTo(nil, compression.None)
	if err != nil {
		panic(err)
	}
	return data
}

func tmValue(gen int, p int32, off int64, n int) []byte {
	v := fmt.Sprintf("g%d p%d o%d ", gen, p, off)
	if len(v) < n {
		v += strings.Repeat("x", n-len(v))
	}
	return []byte(v)
}

// run runs the scenario in a bubble and returns what each Poll did, or
// what the Records loops yielded, and whether a fetch or look-up raced a
// retention event (see cutWatch).
func (sc *timingScenario) run(t *testing.T) (polls []tmPoll, yields []string, raced bool) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		require.Equal(t, tmT0, t0.UnixMilli())
		b, err := runnel.Open(runnel.Config{})
		require.NoError(t, err)
		brokerClosed := false
		defer func() {
			if !brokerClosed {
				require.NoError(t, b.Close())
			}
		}()
		tcfg := log.TopicConfig{Partitions: sc.count0}
		count := sc.count0
		if sc.oneSeg {
			tcfg.SegmentBytes, tcfg.RetentionTime = 14, sc.retention
		}
		require.NoError(t, b.CreateTopic(t.Context(), tmTopic, tcfg))
		var prod *producer.Producer
		if sc.producer {
			prod, err = producer.New(b, producer.RecordPartitioner(producer.ManualPartitioner()))
			require.NoError(t, err)
		}
		closeProd := func() {
			if prod != nil {
				require.NoError(t, prod.Close())
				prod = nil
			}
		}
		defer closeProd()
		faults := runneltest.NewFaults(t, b)
		watch := &cutWatch{Client: faults, t0: t0}
		var client consumer.Client = watch
		if sc.latency > 0 {
			client = &slowCalls{Client: watch, d: sc.latency}
		}
		c, err := consumer.New(client, consumer.FetchMaxWait(sc.maxWait), consumer.FetchMinBytes(sc.minBytes),
			consumer.FetchMaxBytes(sc.maxBytes), consumer.FetchMaxPartitionBytes(sc.maxPart),
			consumer.ResetOffset(sc.reset), consumer.RetryBackoff(sc.backoff))
		require.NoError(t, err)
		for p, s := range sc.initial {
			if s.kind >= 0 {
				require.NoError(t, c.Assign(tmTopic, int32(p), s.tmOffset()))
			}
		}
		// The Poll loop, with the ctx the events cancel.
		var mu sync.Mutex
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		newCtx := func() {
			mu.Lock()
			ctx, cancel = context.WithCancel(t.Context())
			mu.Unlock()
		}
		// doPoll polls once, with the ctx the events cancel.
		doPoll := func() tmPoll {
			mu.Lock()
			pctx := ctx
			mu.Unlock()
			start := time.Since(t0)
			fs, err := c.Poll(pctx)
			poll := tmPoll{start: start, end: time.Since(t0)}
			for _, f := range fs {
				poll.res = append(poll.res, sc.result(t, f))
			}
			sortResults(poll.res)
			for p := range sc.parts {
				pos, ok := c.Position(tmTopic, int32(p))
				switch {
				case ok:
				case slices.Contains(c.Assigned(), api.TopicPartition{Topic: tmTopic, Partition: int32(p)}):
					pos = -1
				default:
					pos = -2
				}
				poll.pos = append(poll.pos, pos)
				lag, ok := c.Lag(tmTopic, int32(p))
				if !ok {
					lag = -1
				}
				poll.lag = append(poll.lag, lag)
			}
			switch {
			case err == nil:
			case errors.Is(err, consumer.ErrClosed):
				poll.err = "closed"
			case errors.Is(err, runnel.ErrClosed):
				poll.err = "broker"
			case errors.Is(err, context.Canceled):
				poll.err = "ctx"
				newCtx()
			default:
				poll.err = err.Error()
			}
			return poll
		}
		records := func() {
			defer close(done)
			for loop := 0; loop < sc.maxPolls; loop++ {
				if loop > 0 {
					time.Sleep(sc.gaps[(loop-1)%len(sc.gaps)])
				}
				mu.Lock()
				rctx := ctx
				mu.Unlock()
				breakAfter := sc.breaks[loop%len(sc.breaks)]
				n := 0
				for rec, err := range c.Records(rctx) {
					now := time.Since(t0)
					switch {
					case rec != nil:
						pos, _ := c.Position(tmTopic, rec.Partition)
						var gen int
						fmt.Sscanf(string(rec.Value), "g%d", &gen)
						lag, ok := c.Lag(tmTopic, rec.Partition)
						if !ok {
							lag = -1
						}
						yields = append(yields, fmt.Sprintf("%v p%d o%d g%d pos %d lag %d", now, rec.Partition, rec.Offset, gen, pos, lag))
					case errors.Is(err, runnel.ErrClosed):
						yields = append(yields, fmt.Sprintf("%v err broker", now))
					default:
						var pe *consumer.PartitionError
						if !errors.As(err, &pe) {
							yields = append(yields, fmt.Sprintf("%v err %v", now, err))
							break
						}
						yields = append(yields, fmt.Sprintf("%v %v", now, sc.result(t, consumer.Fetch{Partition: pe.Partition, Err: err})))
					}
					if n++; n == breakAfter {
						break
					}
					time.Sleep(sc.thinks[len(yields)%len(sc.thinks)])
				}
				now := time.Since(t0)
				if rctx.Err() != nil {
					newCtx()
				}
				// Assign refuses a negative offset, but first a closed consumer.
				if err := c.Assign(tmTopic, 0, consumer.At(-1)); errors.Is(err, consumer.ErrClosed) {
					yields = append(yields, fmt.Sprintf("%v end closed", now))
					return
				}
				yields = append(yields, fmt.Sprintf("%v end", now))
				if sc.mixed {
					// A Poll between two Records loops.
					poll := doPoll()
					yields = append(yields, poll.String())
					if poll.err == "closed" {
						return
					}
				}
			}
		}
		if sc.records {
			go records()
		} else {
			go func() {
				defer close(done)
				for i := 0; i < sc.maxPolls; i++ {
					if i > 0 {
						time.Sleep(sc.gaps[(i-1)%len(sc.gaps)])
					}
					poll := doPoll()
					polls = append(polls, poll)
					if poll.err == "closed" {
						return
					}
				}
			}()
		}
		gen := 1
		deleted := false
		for i, e := range sc.events {
			time.Sleep(time.Until(t0.Add(e.at)))
			tp := api.TopicPartition{Topic: tmTopic, Partition: e.p}
			switch e.kind {
			case evAppend:
				if deleted || brokerClosed || int(e.p) >= count {
					continue
				}
				lo, err := b.ListOffset(t.Context(), tmTopic, e.p, api.Latest)
				require.NoError(t, err)
				ts := time.Now().UnixMilli()
				if e.prod {
					require.NoError(t, prod.ProduceSync(t.Context(), &record.Record{Topic: tmTopic, Partition: e.p,
						Value: tmValue(gen, e.p, lo.Offset, e.vals[0]), Timestamp: time.UnixMilli(ts)}))
					require.Equal(t, e.at, time.Since(t0), "the producer took time")
				} else {
					_, err = b.Produce(t.Context(), &api.ProduceRequest{Topic: tmTopic, Partition: e.p, Acks: api.AcksAll,
						Batches: batchBytes(gen, e.p, lo.Offset, e.vals, ts)})
					require.NoError(t, err)
				}
				// The batch's size, as the model counts bytes.
				resp, err := b.Fetch(t.Context(), &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: tmTopic, Partition: e.p, Offset: lo.Offset, MaxBytes: 1}}})
				require.NoError(t, err)
				if sc.sizes == nil {
					sc.sizes = map[int]int{}
				}
				sc.sizes[i] = len(resp.Partitions[0].Records)
			case evSeek:
				err := c.Seek(tmTopic, e.p, e.spec.tmOffset())
				if err != nil {
					require.ErrorIs(t, err, consumer.ErrNotAssigned)
				}
			case evPause:
				c.Pause(tp)
			case evResume:
				c.Resume(tp)
			case evUnassign:
				c.Unassign(tmTopic, e.p)
			case evAssign:
				require.NoError(t, c.Assign(tmTopic, e.p, e.spec.tmOffset()))
			case evAssignTopic:
				err := c.AssignTopic(t.Context(), tmTopic, e.spec.tmOffset())
				switch {
				case brokerClosed:
					require.ErrorIs(t, err, runnel.ErrClosed)
				case deleted:
					require.ErrorIs(t, err, api.ErrUnknownTopicOrPartition)
				default:
					require.NoError(t, err)
				}
			case evDeleteRecords:
				if deleted || brokerClosed || int(e.p) >= count {
					continue
				}
				lo, err := b.ListOffset(t.Context(), tmTopic, e.p, api.Earliest)
				require.NoError(t, err)
				hi, err := b.ListOffset(t.Context(), tmTopic, e.p, api.Latest)
				require.NoError(t, err)
				to := min(hi.Offset, lo.Offset+int64(e.frac*float64(hi.Offset-lo.Offset)))
				_, err = b.DeleteRecords(t.Context(), tmTopic, e.p, to)
				require.NoError(t, err)
			case evDeleteTopic:
				if deleted || brokerClosed {
					continue
				}
				require.NoError(t, b.DeleteTopic(t.Context(), tmTopic))
				deleted = true
			case evCreateTopic:
				if !deleted || brokerClosed {
					continue
				}
				tcfg.Partitions, count = e.n, e.n
				require.NoError(t, b.CreateTopic(t.Context(), tmTopic, tcfg))
				deleted = false
				gen++
			case evCancel:
				mu.Lock()
				cancel()
				mu.Unlock()
			case evCloseBroker:
				closeProd()
				require.NoError(t, b.Close())
				brokerClosed = true
			case evClose:
				require.NoError(t, c.Close())
			case evRetention:
				if deleted || brokerClosed {
					continue
				}
				require.NoError(t, b.Maintain(t.Context()))
				var starts []int64
				for p := range count {
					lo, err := b.ListOffset(t.Context(), tmTopic, int32(p), api.Earliest)
					require.NoError(t, err)
					starts = append(starts, lo.Offset)
				}
				if sc.starts == nil {
					sc.starts = map[int][]int64{}
				}
				sc.starts[i] = starts
			case evAddPartitions:
				if deleted || brokerClosed || e.n <= count {
					continue
				}
				require.NoError(t, b.CreatePartitions(t.Context(), tmTopic, e.n))
				count = e.n
			case evFault:
				f := runneltest.Fault{Op: runneltest.OpFetch, Partitions: []int32{e.p}, Err: api.ErrNotLeader, Count: 1}
				if !e.whole {
					f.Action = runneltest.FailPartitions
				}
				faults.Add(f)
			}
		}
		<-done
		cancel()
		raced = watch.raced(sc)
	})
	return polls, yields, raced
}

// slowCalls is a Client whose ListOffset and Fetch take d to reach the
// broker (a ctx that ends meanwhile ends them).
type slowCalls struct {
	consumer.Client
	d time.Duration
}

func (c *slowCalls) wait(ctx context.Context) error {
	t := time.NewTimer(c.d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *slowCalls) ListOffset(ctx context.Context, topic string, partition int32, timestamp int64) (api.ListedOffset, error) {
	if err := c.wait(ctx); err != nil {
		return api.ListedOffset{}, err
	}
	return c.Client.ListOffset(ctx, topic, partition, timestamp)
}

func (c *slowCalls) Fetch(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
	if err := c.wait(ctx); err != nil {
		return api.FetchResponse{}, err
	}
	return c.Client.Fetch(ctx, req)
}

// cutWatch is the Client under slowCalls' latency: it notes the log
// starts the broker's answers give (a fetch's LogStartOffset for a
// partition read; a look-up by Earliest or by time, whose offset is not
// below the log start), and when, for raced.
type cutWatch struct {
	consumer.Client
	t0   time.Time
	mu   sync.Mutex
	seen []cutSeen
}

type cutSeen struct {
	at    time.Duration
	p     int32
	start int64
}

func (w *cutWatch) note(p int32, start int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = append(w.seen, cutSeen{at: time.Since(w.t0), p: p, start: start})
}

// ChecksCRCs passes on the Client's answer (see consumer.CRCChecker), so
// that the consumer checks CRCs as it would without the watch.
func (w *cutWatch) ChecksCRCs() bool {
	cc, ok := w.Client.(consumer.CRCChecker)
	return ok && cc.ChecksCRCs()
}

func (w *cutWatch) ListOffset(ctx context.Context, topic string, partition int32, timestamp int64) (api.ListedOffset, error) {
	lo, err := w.Client.ListOffset(ctx, topic, partition, timestamp)
	if err == nil && timestamp != api.Latest {
		w.note(partition, lo.Offset)
	}
	return lo, err
}

func (w *cutWatch) Fetch(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
	resp, err := w.Client.Fetch(ctx, req)
	for _, fp := range resp.Partitions {
		if fp.Err == nil {
			w.note(fp.Partition, fp.LogStartOffset)
		}
	}
	return resp, err
}

// raced reports whether an answer given at the instant of a retention
// event saw a log start below the one Maintain left (sc.starts): it read
// the partition before Maintain was done with it. (An offset out of range
// then is out of range after it too: starts only grow.)
func (w *cutWatch) raced(sc *timingScenario) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, starts := range sc.starts {
		for _, s := range w.seen {
			if s.at == sc.events[i].at && int(s.p) < len(starts) && s.start < starts[s.p] {
				return true
			}
		}
	}
	return false
}

// result summarizes a Fetch, checking its records' values.
func (sc *timingScenario) result(t *testing.T, f consumer.Fetch) tmResult {
	r := tmResult{p: f.Partition, from: -1}
	if f.Err != nil {
		var pe *consumer.PartitionError
		if errors.As(f.Err, &pe) {
			r.from = pe.Offset
		}
		switch {
		case errors.Is(f.Err, log.ErrOffsetOutOfRange):
			r.kind = resOutOfRange
		case errors.Is(f.Err, api.ErrUnknownTopicID):
			r.kind = resTopicID
		case errors.Is(f.Err, api.ErrUnknownTopicOrPartition):
			r.kind = resUnknown
		case errors.Is(f.Err, api.ErrNotLeader):
			r.kind = resNotLeader
		default:
			r.kind = resOther
			t.Logf("other error: %v", f.Err)
		}
		return r
	}
	r.to = -1
	for rec, err := range f.Records() {
		if err != nil {
			t.Errorf("record error: %v", err)
			continue
		}
		if r.from < 0 {
			r.from = rec.Offset
			fmt.Sscanf(string(rec.Value), "g%d", &r.gen)
		} else if rec.Offset != r.to {
			t.Errorf("p%d: offset %d after %d", f.Partition, rec.Offset, r.to-1)
		}
		r.to = rec.Offset + 1
		if want := fmt.Sprintf(" p%d o%d ", f.Partition, rec.Offset); !strings.Contains(string(rec.Value), want) {
			t.Errorf("p%d offset %d: value %q", f.Partition, rec.Offset, rec.Value)
		}
	}
	return r
}

func sortResults(rs []tmResult) {
	slices.SortStableFunc(rs, func(a, b tmResult) int {
		if a.p != b.p {
			return int(a.p - b.p)
		}
		return a.kind - b.kind
	})
}

// tmAssign is an assigned partition in the model (see consumer's
// assignment).
type tmAssign struct {
	pos             int64 // -1: to look up (at)
	at              tmSpec
	paused, stopped bool
	retryAt         time.Duration // 0: none
	seen            bool
	topicID         int   // the topic's gen; 0: none
	cur             int   // bumped when the consumer's cursor is replaced
	seq             int   // bumped when the application sets the position
	hw              int64 // the high watermark last seen (consumer's assignment.hw); -1: none
	hwGen           int   // the topic's gen hw was seen in (assignment.hwTopic); 0: none
	held            []tmResult
}

// tmFault is a fault rule pending: the next fetch naming p fails, whole
// (FailRequest) or for p (FailPartitions), with api.ErrNotLeader.
type tmFault struct {
	p     int32
	whole bool
}

// tmModel is the consumer and the broker as the docs describe them.
type tmModel struct {
	sc                   *timingScenario
	gen                  int
	parts                []*tmPart // nil while the topic is deleted
	brokerClosed, closed bool
	ctxCancelled         bool
	as                   map[int32]*tmAssign
	order                []int32
	rotate               int
	curs                 int
	faults               []tmFault
}

// What an event means for a Poll waiting.
const (
	effNone = iota
	effAppend
	effDelete
	effCut  // records cut: a log start moved (DeleteRecords, retention), which wakes a fetch of the partition
	effWake // a change of the assignment
	effCtx
	effClosed
	effBroker
)

func (m *tmModel) set(a *tmAssign, s tmSpec) {
	a.pos = -1
	if s.kind == mAt {
		a.pos = s.v
	}
	m.curs++
	a.cur = m.curs
	a.seq++
	a.at, a.stopped, a.seen, a.topicID, a.retryAt, a.held = s, false, false, 0, 0, nil
	if a.pos > a.hw {
		a.hw = -1 // kept for a position at or below it, or to look up
	}
}

func (m *tmModel) assign(p int32, s tmSpec) {
	a := m.as[p]
	if a == nil {
		a = &tmAssign{hw: -1}
		m.as[p] = a
		m.order = append(m.order, p)
	}
	m.set(a, s)
}

func (m *tmModel) newParts(n int) {
	m.parts = nil
	for range n {
		m.parts = append(m.parts, &tmPart{})
	}
}

// apply applies event i, and says what it means for a waiting Poll.
func (m *tmModel) apply(i int) (int, int32) {
	e := m.sc.events[i]
	a := m.as[e.p]
	switch e.kind {
	case evAppend:
		if m.parts == nil || m.brokerClosed || int(e.p) >= len(m.parts) {
			return effNone, 0
		}
		p := m.parts[e.p]
		n := int64(len(e.vals))
		p.batches = append(p.batches, tmBatch{base: p.end, n: n, size: m.sc.sizes[i], ts: int64(e.at / time.Millisecond)})
		p.end += n
		return effAppend, e.p
	case evSeek:
		if a == nil {
			return effNone, 0
		}
		m.set(a, e.spec)
		return effWake, 0
	case evPause:
		if a == nil || a.paused {
			return effNone, 0
		}
		a.paused = true
		m.curs++
		a.cur = m.curs
		return effWake, 0
	case evResume:
		if a == nil || !a.paused {
			return effNone, 0
		}
		a.paused = false
		return effWake, 0
	case evUnassign:
		if a == nil {
			return effNone, 0
		}
		delete(m.as, e.p)
		// As the consumer's: the last partition takes the gap.
		i := slices.Index(m.order, e.p)
		m.order[i] = m.order[len(m.order)-1]
		m.order = m.order[:len(m.order)-1]
		return effWake, 0
	case evAssign:
		m.assign(e.p, e.spec)
		return effWake, 0
	case evAssignTopic:
		if m.parts == nil || m.brokerClosed {
			return effNone, 0 // an error
		}
		for p := range len(m.parts) {
			m.assign(int32(p), e.spec)
		}
		return effWake, 0
	case evDeleteRecords:
		if m.parts == nil || m.brokerClosed || int(e.p) >= len(m.parts) {
			return effNone, 0
		}
		p := m.parts[e.p]
		if to := p.deleteTo(e.frac); to > p.start {
			p.start = to
			return effCut, e.p
		}
		return effNone, 0
	case evDeleteTopic:
		if m.parts == nil || m.brokerClosed {
			return effNone, 0
		}
		m.parts = nil
		return effDelete, 0
	case evCreateTopic:
		if m.parts != nil || m.brokerClosed {
			return effNone, 0
		}
		m.gen++
		m.newParts(e.n)
		return effNone, 0
	case evCancel:
		m.ctxCancelled = true
		return effCtx, 0
	case evCloseBroker:
		m.brokerClosed = true
		return effBroker, 0
	case evClose:
		m.closed = true
		return effClosed, 0
	case evAddPartitions:
		if m.parts == nil || m.brokerClosed {
			return effNone, 0
		}
		for len(m.parts) < e.n {
			m.parts = append(m.parts, &tmPart{})
		}
		return effNone, 0
	case evFault:
		m.faults = append(m.faults, tmFault{p: e.p, whole: e.whole})
		return effNone, 0
	case evRetention:
		if m.parts == nil || m.brokerClosed {
			return effNone, 0
		}
		eff := effNone
		for p, start := range m.sc.starts[i] {
			if start > m.parts[p].start {
				m.parts[p].start = start
				eff = effCut // of several partitions maybe: a fetch of those that did not move finds nothing new
			}
		}
		return eff, -1
	}
	panic(e.kind)
}

// resolve looks up the positions to look up, as Poll does first, each
// look-up a call that takes the Client's latency (call): it stops at an
// event that ends the call, which it returns (effNone: none did).
func (m *tmModel) resolve(now *time.Duration, call func() (int, time.Duration)) (out []tmResult, closed bool, eff int, at time.Duration) {
	var todo []*tmAssign
	var ps []int32
	var curs []int
	for _, p := range m.order {
		a := m.as[p]
		if a.pos == -1 && !a.stopped && a.retryAt <= *now {
			todo, ps, curs = append(todo, a), append(ps, p), append(curs, a.cur)
		}
	}
	for i, a := range todo {
		p := ps[i]
		if eff, at := call(); eff != effNone {
			return out, false, eff, at
		}
		if m.brokerClosed {
			return out, true, effNone, 0
		}
		if m.as[p] != a || a.cur != curs[i] || a.pos != -1 {
			continue // stale
		}
		if m.parts == nil || int(p) >= len(m.parts) {
			if a.topicID != 0 { // the topic read is gone: reported
				out = append(out, tmResult{p: p, kind: resTopicID, from: -1, reset: true, seq: a.seq, owner: a})
				a.topicID, a.hw = 0, -1
			}
			a.retryAt = *now + m.sc.backoff
			continue
		}
		part := m.parts[p]
		off := part.start
		switch a.at.kind {
		case mEnd:
			off = part.end
		case mTime:
			off = part.timeOffset(a.at.v)
		}
		if a.topicID != 0 && a.topicID != m.gen {
			out = append(out, tmResult{p: p, kind: resTopicID, from: -1, reset: true, seq: a.seq, owner: a})
			a.retryAt, a.hw = 0, -1
		}
		a.pos, a.seen, a.topicID = off, true, m.gen
		switch {
		case a.at.kind == mEnd:
			a.hw, a.hwGen = off, m.gen // the end is the high watermark
		case off > a.hw:
			a.hw = -1 // past the one last seen: it tells nothing
		case a.hwGen != 0 && a.hwGen != m.gen:
			a.hw = -1 // seen in the topic before it was created again
		}
	}
	return out, false, effNone, 0
}

type tmSent struct {
	p       int32
	off     int64
	topicID int
	cur     int
}

type tmFetched struct {
	err     int // a result kind; resRecords: none
	batches []tmBatch
	size    int
	hw      int64
	gen     int
}

// waitFor is the consumer's waitFor: how long a fetch waits, for how
// many bytes.
func (m *tmModel) waitFor(idle bool) (time.Duration, int) {
	mw := m.configuredWait()
	if idle && mw == 0 {
		return 500 * time.Millisecond, 1
	}
	return mw, m.sc.minBytes
}

func (m *tmModel) configuredWait() time.Duration {
	if m.sc.minBytes == 0 {
		return 0
	}
	return m.sc.maxWait
}

// request is the fetch a Poll sends, when the next backed off partition
// may be retried (0: none is), and whether a look-up resolve did not make
// is due (the fetch, or the wait, then ends at once).
func (m *tmModel) request(now time.Duration, hurry, idle bool) (sent []tmSent, maxWait time.Duration, minBytes int, nextRetry time.Duration, due bool) {
	maxWait, minBytes = m.waitFor(idle)
	var nextLookUp time.Duration
	for _, p := range m.order {
		a := m.as[p]
		if a.stopped || a.paused && a.pos >= 0 { // a paused look-up's backoff counts
			continue
		}
		if a.retryAt > now {
			if nextRetry == 0 || a.retryAt < nextRetry {
				nextRetry = a.retryAt
			}
			if a.pos < 0 && (nextLookUp == 0 || a.retryAt < nextLookUp) {
				nextLookUp = a.retryAt // a look-up's backoff ends the fetch's wait
			}
			continue
		}
		if a.pos < 0 {
			due = true // a look-up due that resolve did not make: no wait
			continue
		}
		sent = append(sent, tmSent{p: p, off: a.pos, topicID: a.topicID, cur: a.cur})
	}
	if k := len(sent); k > 0 {
		// The rotation runs over the partitions fetched.
		m.rotate = (m.rotate + 1) % k
		sent = append(sent[m.rotate:], sent[:m.rotate]...)
	}
	switch {
	case hurry || due:
		maxWait = 0
	case maxWait > m.configuredWait() && nextRetry != 0:
		maxWait = min(maxWait, max(nextRetry-now, 0))
	case nextLookUp != 0:
		maxWait = min(maxWait, max(nextLookUp-now, 0))
	}
	return sent, maxWait, minBytes, nextRetry, due
}

// fetchOnce is the broker's read of a fetch, and whether the fetch
// answers now. failed marks the partitions a fault fails (their answer
// is resOther, a retriable error).
func (m *tmModel) fetchOnce(sent []tmSent, maxWait time.Duration, minBytes int, failed []bool) (resp []tmFetched, done bool) {
	sc := m.sc
	total, anyFailed := 0, false
	for i, s := range sent {
		f := tmFetched{gen: m.gen}
		switch {
		case failed != nil && failed[i]:
			f.err = resNotLeader
			resp = append(resp, f)
			continue // not the broker's
		case m.parts == nil && s.topicID != 0, m.parts != nil && s.topicID != 0 && s.topicID != m.gen:
			f.err = resTopicID
		case m.parts == nil, int(s.p) >= len(m.parts):
			f.err = resUnknown
		}
		if f.err != resRecords {
			anyFailed = true
			resp = append(resp, f)
			continue
		}
		part := m.parts[s.p]
		f.hw = part.end
		limit := min(sc.maxPart, sc.maxBytes-total)
		upTo := part.end
		if limit <= 0 && total > 0 {
			limit, upTo = 0, s.off
		}
		if s.off < part.start || s.off > part.end {
			f.err, anyFailed = resOutOfRange, true
			resp = append(resp, f)
			continue
		}
		bs, size := part.read(s.off, limit, upTo, sc.oneSeg)
		if !(size > limit && total > 0) {
			f.batches, f.size = bs, size
			total += size
		}
		resp = append(resp, f)
	}
	// The broker waits for MinBytes up to the request's MaxBytes, as
	// Kafka's waits for min(min_bytes, max_bytes, fetch.max.bytes) (the
	// model's maxBytes is below the broker's cap).
	want := min(max(minBytes, 1), sc.maxBytes)
	if total >= want || anyFailed || maxWait <= 0 {
		return resp, true
	}
	if total == 0 {
		return resp, false
	}
	// What the log holds past what was read, up to each partition's max
	// bytes (see the broker's readable).
	more := 0
	for i, s := range sent {
		f := resp[i]
		if f.err != resRecords {
			continue
		}
		end := s.off
		if len(f.batches) > 0 {
			last := f.batches[len(f.batches)-1]
			end = last.base + last.n
		}
		room := sc.maxPart - f.size
		rest := 0
		for _, b := range m.parts[s.p].batches {
			if b.base+b.n > end && b.base+b.n <= f.hw {
				rest += b.size
			}
		}
		if room > 0 {
			more += min(room, rest)
		}
	}
	return resp, total+more >= want
}

// process is what the consumer makes of a fetch's answer; advance is
// Poll's (a Records loop moves positions as it yields).
func (m *tmModel) process(now time.Duration, sent []tmSent, resp []tmFetched, advance bool) (out []tmResult) {
	for i, s := range sent {
		a := m.as[s.p]
		if a == nil || a.cur != s.cur || a.pos != s.off || a.paused {
			continue
		}
		f := resp[i]
		if f.err != resRecords {
			if r, ok := m.fetchError(a, s, f, now); ok {
				out = append(out, r)
			}
			continue
		}
		a.seen = true
		if a.topicID == 0 {
			a.topicID = f.gen
		}
		a.hw, a.hwGen = f.hw, f.gen
		if s.off >= f.hw || len(f.batches) == 0 {
			continue
		}
		last := f.batches[len(f.batches)-1]
		next := min(last.base+last.n, f.hw)
		a.retryAt = 0
		if advance {
			a.pos = next
		}
		out = append(out, tmResult{p: s.p, kind: resRecords, from: s.off, to: next, gen: f.gen, cur: a.cur})
	}
	return out
}

func (m *tmModel) fetchError(a *tmAssign, s tmSent, f tmFetched, now time.Duration) (tmResult, bool) {
	kind := f.err
	outOfRange := kind == resOutOfRange
	gone := a.seen && kind == resUnknown || kind == resTopicID
	r := tmResult{p: s.p, kind: kind, from: s.off, seq: a.seq, owner: a}
	switch {
	case kind == resUnknown || kind == resTopicID:
		a.hw = -1 // no such partition: the one seen is gone
	case outOfRange:
		a.hw, a.hwGen = f.hw, f.gen // the partition's own, with the error, whatever the policy
	}
	switch {
	case !outOfRange && !gone:
		a.retryAt = now + m.sc.backoff
		return r, false
	case m.sc.reset == consumer.ResetNone:
		a.stopped = true
		return r, true
	}
	a.pos = -1
	m.curs++
	a.cur = m.curs
	a.at = tmSpec{kind: mStart}
	if m.sc.reset == consumer.ResetLatest {
		a.at = tmSpec{kind: mEnd}
	}
	a.seen = false
	if outOfRange {
		return r, false
	}
	a.topicID = 0
	a.retryAt = now + m.sc.backoff
	r.reset = true
	return r, true
}

// unreported is the consumer's: the errors of rs not yielded are held
// (those that came with a reset) or undo their stop.
func (m *tmModel) unreported(rs []tmResult) {
	for _, r := range rs {
		a := r.owner
		if r.kind == resRecords || m.as[r.p] != a || a.seq != r.seq {
			continue
		}
		switch {
		case r.reset:
			a.held = append(a.held, r)
		case a.stopped:
			a.stopped, a.retryAt = false, 0
		}
	}
}

// lag is Lag's answer, -1 for false.
func (a *tmAssign) lag() int64 {
	if a.hw < 0 || a.pos < 0 {
		return -1
	}
	return a.hw - a.pos
}

func (m *tmModel) lags() []int64 {
	var lags []int64
	for p := range m.sc.parts {
		if a := m.as[int32(p)]; a == nil {
			lags = append(lags, -1)
		} else {
			lags = append(lags, a.lag())
		}
	}
	return lags
}

func (m *tmModel) positions() []int64 {
	var pos []int64
	for p := range m.sc.parts {
		a := m.as[int32(p)]
		if a == nil {
			pos = append(pos, -2)
		} else {
			pos = append(pos, a.pos)
		}
	}
	return pos
}

func newTmModel(sc *timingScenario) *tmModel {
	m := &tmModel{sc: sc, gen: 1, as: map[int32]*tmAssign{}}
	m.newParts(sc.count0)
	for p, s := range sc.initial {
		if s.kind >= 0 {
			a := &tmAssign{hw: -1}
			m.as[int32(p)] = a
			m.order = append(m.order, int32(p))
			m.set(a, s)
		}
	}
	return m
}

// model runs the scenario's model: what each Poll does, and when.
func (sc *timingScenario) model() []tmPoll {
	m := newTmModel(sc)
	var polls []tmPoll
	ev := 0
	var end time.Duration
	for i := 0; i < sc.maxPolls; i++ {
		start := time.Duration(0)
		if i > 0 {
			start = end + sc.gaps[(i-1)%len(sc.gaps)]
		}
		for ev < len(sc.events) && sc.events[ev].at <= start {
			m.apply(ev)
			ev++
		}
		poll := m.poll(start, &ev, false, true)
		poll.pos, poll.lag = m.positions(), m.lags()
		sortResults(poll.res)
		polls = append(polls, poll)
		if poll.err == "closed" {
			break
		}
		end = poll.end
	}
	return polls
}

// modelRecords runs the scenario's model with Records loops: what each
// yields, and when.
func (sc *timingScenario) modelRecords() []string {
	m := newTmModel(sc)
	var out []string
	ev := 0
	now := time.Duration(0)
	// advance lets time pass to t, applying the events meanwhile.
	advance := func(t time.Duration) {
		for ev < len(sc.events) && sc.events[ev].at <= t {
			m.apply(ev)
			ev++
		}
		now = t
	}
	for loop := 0; loop < sc.maxPolls; loop++ {
		if loop > 0 {
			advance(now + sc.gaps[(loop-1)%len(sc.gaps)])
		}
		breakAfter := sc.breaks[loop%len(sc.breaks)]
		yields := 0
		broke, final := false, false // the body broke out; Records ended after a Poll's error
		// yield yields s, and runs the body: a break, or its think time.
		yield := func(s string) bool {
			out = append(out, fmt.Sprintf("%v %s", now, s))
			if yields++; yields == breakAfter {
				broke = true
				return false
			}
			advance(now + sc.thinks[len(out)%len(sc.thinks)])
			return true
		}
		ended := func() bool { return m.ctxCancelled || m.closed }
		// left is the consumer's: the error's partition was unassigned,
		// or given another position, since the error was found.
		left := func(r tmResult) bool { return m.as[r.p] != r.owner || r.owner.seq != r.seq }
		idle := false
	polls:
		for polls := 0; polls < sc.maxPolls && !m.ctxCancelled; polls++ {
			poll := m.poll(now, &ev, idle, false)
			now = poll.end
			switch poll.err {
			case "closed":
				break polls
			case "ctx": // the model's poll took the cancel
				m.unreported(poll.res)
				m.ctxCancelled = true
				break polls
			case "":
			default:
				for i, r := range poll.res {
					if ended() {
						m.unreported(poll.res[i:])
						break polls
					}
					if !left(r) && !yield(r.String()) {
						m.unreported(poll.res[i+1:])
						break polls
					}
				}
				if !ended() {
					yield("err " + poll.err)
					final = true
				}
				break polls // the broker closed: Records ends
			}
			idle = len(poll.res) == 0
		fetches:
			for i, r := range poll.res {
				if ended() {
					m.unreported(poll.res[i:])
					break polls
				}
				if r.kind != resRecords {
					if !left(r) && !yield(r.String()) {
						m.unreported(poll.res[i+1:])
						break polls
					}
					continue
				}
				for off := r.from; off < r.to; off++ {
					if ended() {
						m.unreported(poll.res[i:])
						break polls
					}
					a := m.as[r.p]
					if a == nil || a.cur != r.cur {
						continue fetches // halted: the partition changed
					}
					a.pos = off + 1
					if !yield(fmt.Sprintf("p%d o%d g%d pos %d lag %d", r.p, off, r.gen, a.pos, a.lag())) {
						m.unreported(poll.res[i+1:])
						break polls
					}
				}
			}
		}
		if !broke && !final && m.ctxCancelled && !m.closed {
			yield("err context canceled") // the last
		}
		m.ctxCancelled = false
		if m.closed {
			return append(out, fmt.Sprintf("%v end closed", now))
		}
		out = append(out, fmt.Sprintf("%v end", now))
		if sc.mixed {
			poll := m.poll(now, &ev, false, true)
			poll.pos, poll.lag = m.positions(), m.lags()
			sortResults(poll.res)
			out = append(out, poll.String())
			if poll.err == "closed" {
				return out
			}
			now = poll.end
		}
	}
	return out
}

// poll is one Poll from start; it applies the events that come while it
// waits. idle and advance are the consumer's poll's.
func (m *tmModel) poll(start time.Duration, ev *int, idle, advance bool) tmPoll {
	ret := func(at time.Duration, res []tmResult, err string) tmPoll {
		return tmPoll{start: start, end: at, res: res, err: err}
	}
	if m.closed { // before a cancelled ctx: a closed consumer says so first
		return ret(start, nil, "closed")
	}
	if m.ctxCancelled {
		m.ctxCancelled = false
		return ret(start, nil, "ctx")
	}
	var out []tmResult
	for _, p := range m.order {
		out = append(out, m.as[p].held...)
		m.as[p].held = nil
	}
	events := m.sc.events
	now := start
	// call lets a call to the Client take its latency: it returns the
	// event that ended it (a change, the ctx, Close), if one did.
	call := func() (int, time.Duration) {
		end := now + m.sc.latency
		for m.sc.latency > 0 && *ev < len(events) && events[*ev].at < end {
			at := events[*ev].at
			eff, _ := m.apply(*ev)
			*ev++
			switch eff {
			case effWake, effCtx, effClosed:
				now = at
				return eff, at
			}
		}
		now = end
		return effNone, end
	}
	// interrupted is the consumer's: what a Poll whose call an event
	// ended returns.
	interrupted := func(eff int, at time.Duration, out []tmResult) tmPoll {
		switch eff {
		case effClosed:
			return ret(at, nil, "closed")
		case effCtx:
			m.ctxCancelled = false
			m.unreported(out)
			return ret(at, nil, "ctx")
		}
		return ret(at, out, "")
	}
	failed, closed, eff, at := m.resolve(&now, call)
	out = append(out, failed...)
	if eff != effNone {
		return interrupted(eff, at, out)
	}
	if closed {
		return ret(now, out, "broker")
	}
	sent, maxWait, minBytes, nextRetry, due := m.request(now, len(out) > 0, idle)
	// wait waits, with nothing to fetch, until deadline or a change.
	wait := func(deadline time.Duration) tmPoll {
		for deadline > now && *ev < len(events) && events[*ev].at < deadline {
			at := events[*ev].at
			eff, _ := m.apply(*ev)
			*ev++
			switch eff {
			case effWake:
				return ret(at, nil, "")
			case effCtx:
				m.ctxCancelled = false
				return ret(at, nil, "ctx")
			case effClosed:
				return ret(at, nil, "closed")
			}
		}
		return ret(max(deadline, now), nil, "")
	}
	if len(sent) == 0 {
		if len(out) > 0 {
			return ret(now, out, "")
		}
		d, _ := m.waitFor(idle)
		if nextRetry != 0 {
			d = min(d, nextRetry-now)
		}
		if due {
			d = 0
		}
		return wait(now + d)
	}
	if eff, at := call(); eff != effNone {
		return interrupted(eff, at, out)
	}
	// The fetch reaches the faults and the broker now.
	// A fault rule takes the fetch if it names the rule's partition.
	var failedParts []bool
	if i := slices.IndexFunc(m.faults, func(f tmFault) bool {
		return slices.ContainsFunc(sent, func(s tmSent) bool { return s.p == f.p })
	}); i >= 0 {
		f := m.faults[i]
		m.faults = slices.Delete(m.faults, i, i+1)
		if f.whole {
			// The consumer backs the fetch's partitions off, and waits
			// as with nothing to fetch.
			for _, s := range sent {
				m.as[s.p].retryAt = now + m.sc.backoff
			}
			if len(out) > 0 {
				return ret(now, out, "")
			}
			d, _ := m.waitFor(idle)
			d = min(d, m.sc.backoff)
			if nextRetry != 0 {
				d = min(d, nextRetry-now) // a partition backed off before comes first
			}
			if due {
				d = 0 // a look-up due that resolve did not make: the next Poll makes it
			}
			return wait(now + d)
		}
		failedParts = make([]bool, len(sent))
		for k, s := range sent {
			failedParts[k] = s.p == f.p
		}
		maxWait = 0 // the rest is fetched at once
	}
	// A closed broker answers the fetch (but for a fault's partitions,
	// which Faults answers without it).
	if m.brokerClosed && (failedParts == nil || slices.Contains(failedParts, false)) {
		return ret(now, out, "broker")
	}
	resp, done := m.fetchOnce(sent, maxWait, minBytes, failedParts)
	if done {
		return ret(now, append(out, m.process(now, sent, resp, advance)...), "")
	}
	total := 0
	for _, f := range resp {
		total += f.size
	}
	deadline := now + maxWait
	for *ev < len(events) && events[*ev].at < deadline {
		at := events[*ev].at
		eff, p := m.apply(*ev)
		*ev++
		switch eff {
		case effAppend, effCut:
			// Only a fetched partition's wakes the fetch (retention's,
			// p < 0, may be of several).
			if p >= 0 && !slices.ContainsFunc(sent, func(s tmSent) bool { return s.p == p }) {
				continue
			}
			fallthrough
		case effDelete:
			if resp, done = m.fetchOnce(sent, maxWait, minBytes, nil); done {
				return ret(at, append(out, m.process(at, sent, resp, advance)...), "")
			}
			total = 0
			for _, f := range resp {
				total += f.size
			}
		case effWake:
			if total > 0 {
				return ret(at, append(out, m.process(at, sent, resp, advance)...), "")
			}
			return ret(at, out, "")
		case effCtx:
			if total > 0 {
				return ret(at, append(out, m.process(at, sent, resp, advance)...), "")
			}
			m.ctxCancelled = false
			return ret(at, nil, "ctx")
		case effClosed:
			return ret(at, nil, "closed")
		case effBroker:
			return ret(at, out, "broker")
		}
	}
	resp, _ = m.fetchOnce(sent, 0, minBytes, nil)
	return ret(deadline, append(out, m.process(deadline, sent, resp, advance)...), "")
}
