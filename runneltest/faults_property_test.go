package runneltest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
)

// TestFaultsProperty checks the idempotent producer's delivery guarantees
// end to end, under faults a Faults injects at random: for each seed, 1–3
// producers of random options write a few hundred records each to a
// topic of 1–4 partitions through a Faults over a real broker, with
// Produce and its promises, ProduceSync, and records whose ctx is
// cancelled, while rules fail requests (retriable errors, and now and
// then one that is not), lose answers after the append, fail
// acknowledgements and hold requests for a while, and tell some of the
// producers' look-ups that partitions refuse appends (their records
// without a key then go elsewhere for a while). Once flushed, the
// topic is read from the broker itself, and:
//
//  1. a record whose outcome was nil is in the log once, at the partition
//     and offset it was told;
//  2. no record is in the log twice, and none whose error says it was not
//     written (its ctx's error, an error before it was partitioned, the
//     broker's refusals without producer.ErrMaybeWritten: see
//     producer.ProduceSync) is there at all;
//  3. within a partition each producer's records are in its produce
//     order, and so are the promises of each producer's records of a
//     partition;
//  4. every promise runs once, every failure has a cause the test
//     injected (retriable errors are retried until they pass: see
//     explained), Flush returns, and no goroutine is left (TestMain's
//     goleak).
//
// A few seeds run by default (fewer under -short). For a long run:
//
//	RUNNEL_FAULTS_PROP=2000 go test -run TestFaultsProperty ./runneltest
//
// RUNNEL_FAULTS_PROP=N runs N seeds from one the test picks and logs;
// RUNNEL_FAULTS_PROP_BASE=S makes S the first (with N=1, replays seed S);
// RUNNEL_FAULTS_PROP_LOG=1 logs the rules added and the producers' own
// logs (debug level), to see what happened to a seed that fails.
func TestFaultsProperty(t *testing.T) {
	testkit.Seeds(t, "RUNNEL_FAULTS_PROP", 30, 6, func(t *testing.T, seed uint64) { runFaultsProperty(t, seed, false) })
}

// TestFaultsPropertyAcks is TestFaultsProperty with producers that are
// not idempotent mixed in, each seed's producers drawn among four modes
// (propMode): idempotent (acks all), acks all with DisableIdempotence,
// acks 1 (with or without DisableIdempotence) and acks 0; those without
// idempotence take any MaxInFlight, 1 and above 5 (up to 100) among
// them. Now and then the topic's max.message.bytes is small, so that the
// broker itself refuses batches as too large (and the producer splits
// them) and records larger than it; now and then the topic is compacted,
// so that the broker refuses the batches with a record without a key
// (log.ErrInvalidRecord: split too); and a few records name a topic that
// does not exist. Same records for a seed as TestFaultsProperty's: the
// modes, and the rest, are drawn from a generator of their own.
//
// What the producer's docs promise without idempotence (see
// producer.Acks, producer.MaxInFlight, producer.Producer), checked
// beside TestFaultsProperty's properties:
//
//  1. a record whose outcome was nil is in the log at the partition and
//     offset it was told, the last of its copies; with acks 0 the offset
//     may be -1 (the Client reported none), the record still there;
//
//  2. a retry may append a batch again (with acks 1 or all), so a record
//     may be there more than once, but no record is there twice with
//     acks 0 (never retried); no record whose error says it was not
//     written is there at all;
//
//  3. order: a partition sends one batch at a time, and a batch's
//     attempts all come before the next batch's first, with any
//     MaxInFlight ("later batches of the partition wait, so order is
//     kept"), so each producer's records of a partition are in the log as
//     a run of whole requests it sent, in the order it sent them (the
//     requests are observed with an Observe rule); promises run in
//     produce order;
//
//  4. every promise runs once, every failure has a cause the test made
//     (with acks 0 every injected error is final: nothing is retried),
//     Flush and Close return, no goroutine is left.
//
//     RUNNEL_FAULTS_PROP_ACKS=1000 go test -run TestFaultsPropertyAcks ./runneltest
//
// RUNNEL_FAULTS_PROP_ACKS_BASE and RUNNEL_FAULTS_PROP_LOG are as for
// TestFaultsProperty.
func TestFaultsPropertyAcks(t *testing.T) {
	testkit.Seeds(t, "RUNNEL_FAULTS_PROP_ACKS", 30, 6, func(t *testing.T, seed uint64) { runFaultsProperty(t, seed, true) })
}

// propMode is how a property-test producer acknowledges, and whether it
// is idempotent.
type propMode int

const (
	modeIdempotent propMode = iota // the default: acks all, idempotent
	modeAllPlain                   // acks all, DisableIdempotence
	modeLeader                     // acks 1: not idempotent (see producer.Acks)
	modeNone                       // acks 0: not idempotent, never retried
	numModes
)

func (m propMode) String() string {
	return [...]string{"idempotent", "acks=all without idempotence", "acks=1", "acks=0"}[m]
}

// Errors the property test injects: the acknowledgement failures (the
// batch is in the log) and a connection lost after the append, which
// Kafka's table does not know (not retriable: the batch fails, and may
// have been written).
var (
	errPropAckTimedOut = fmt.Errorf("runneltest: acknowledgement timed out: %w", api.ErrRequestTimedOut)
	errPropAckFenced   = fmt.Errorf("runneltest: acknowledgement failed: %w", log.ErrLogFenced)
	errPropConnLost    = errors.New("runneltest: connection lost")
)

const propTopic = "prop"

// propRec is one record a property-test producer wrote, and its outcome.
type propRec struct {
	rec     *record.Record
	ctx     context.Context // the record's ctx, cancelled for some
	big     bool            // larger than the topic's max.message.bytes
	missing bool            // to a topic that does not exist
	calls   int             // promise calls (ProduceSync: 1 once it returned)
	err     error
	part    int32
	off     int64
	pid     int64 // the ProducerID it was told, if written
}

// propProducer is one producer of a property-test seed, and its records.
type propProducer struct {
	id       int
	mode     propMode
	p        *producer.Producer
	opts     string
	recs     []*propRec
	progress *atomic.Int64 // records produced by the seed's producers
	closeAt  int           // the record before which the plan closes the producer; -1: never
	closed   atomic.Bool   // closed before the test's Flush
	timeout  time.Duration // its DeliveryTimeout

	mu       sync.Mutex // guards recs' outcomes and lastProm
	lastProm map[int32]int
	problems []string
}

// propMissingTopic is the topic, never created, that a few records of
// TestFaultsPropertyAcks name.
const propMissingTopic = "prop-missing"

// runFaultsProperty runs one seed of TestFaultsProperty, or with mixed
// of TestFaultsPropertyAcks.
func runFaultsProperty(t *testing.T, seed uint64, mixed bool) {
	verbose := os.Getenv("RUNNEL_FAULTS_PROP_LOG") != ""
	rng := rand.New(rand.NewPCG(seed, 0x6661756c7473))
	parts := 1 + rng.IntN(4)
	// mrng draws what TestFaultsPropertyAcks adds, so that a seed's other
	// draws are TestFaultsProperty's.
	var mrng *rand.Rand
	maxMsg := 0 // the topic's max.message.bytes, when small
	var cleanup log.CleanupPolicy
	if mixed {
		mrng = rand.New(rand.NewPCG(seed, 0x61636b73))
		if mrng.IntN(3) == 0 {
			maxMsg = 300 + mrng.IntN(1200)
		}
		if rand.New(rand.NewPCG(seed, 0x636f6d70)).IntN(4) == 0 { // of its own: mrng's draws stay as they were
			// The broker refuses a batch with a record without a key
			// (log.ErrInvalidRecord): the producer splits it.
			cleanup = log.Compact
		}
	}
	b := runneltest.NewBroker(t, runneltest.TopicConfig(propTopic, log.TopicConfig{Partitions: parts,
		Config: log.Config{MaxMessageBytes: maxMsg, CleanupPolicy: cleanup}}))
	f := runneltest.NewFaults(t, b)
	obs := observeRequests(f)
	t.Logf("seed %d: %d partitions, max.message.bytes %d (0: default), cleanup.policy %v", seed, parts, maxMsg, cleanup)

	var progress atomic.Int64
	// crng draws each producer's codec, of its own: the other draws stay
	// as they were before producers compressed (half of them do not).
	crng := rand.New(rand.NewPCG(seed, 0x636f646563))
	prods := make([]*propProducer, 1+rng.IntN(3))
	for i := range prods {
		linger := time.Duration(0)
		if rng.IntN(2) == 0 {
			linger = time.Duration(rng.IntN(2001)) * time.Microsecond
		}
		batchMax := 1 << 20
		if rng.IntN(3) == 0 {
			batchMax = 256 + rng.IntN(768)
		}
		inFlight := 1 + rng.IntN(5)
		backoff := time.Duration(100+rng.IntN(900)) * time.Microsecond
		mode, modeOpts := modeIdempotent, []producer.Opt(nil)
		if mixed {
			mode = propMode(mrng.IntN(int(numModes)))
			if mode != modeIdempotent {
				switch mrng.IntN(4) {
				case 0:
					inFlight = 1
				case 1:
					inFlight = 6 + mrng.IntN(95) // past the idempotent bound, and past the acker's queue
				}
			}
			switch mode {
			case modeAllPlain:
				modeOpts = []producer.Opt{producer.DisableIdempotence()}
			case modeLeader:
				modeOpts = []producer.Opt{producer.Acks(producer.AcksLeader)}
				if mrng.IntN(2) == 0 {
					modeOpts = append(modeOpts, producer.DisableIdempotence())
				}
			case modeNone:
				modeOpts = []producer.Opt{producer.Acks(producer.AcksNone)}
			}
		}
		timeout := propDeliveryTimeout
		if mixed && mrng.IntN(8) == 0 {
			// Shorter than some holds: batches time out, some in flight.
			timeout = time.Duration(1000+mrng.IntN(9000)) * time.Microsecond
			linger = min(linger, timeout/2)
		}
		codec := compression.None
		if crng.IntN(2) == 0 {
			codec = compression.Codec(1 + crng.IntN(int(compression.Zstd)))
		}
		n := 100 + rng.IntN(300)
		closeAt := -1
		if mixed && mrng.IntN(6) == 0 {
			closeAt = mrng.IntN(n)
		}
		pp := &propProducer{id: i, mode: mode, lastProm: map[int32]int{}, progress: &progress, closeAt: closeAt, timeout: timeout,
			opts: fmt.Sprintf("%v, Linger %v, BatchMaxBytes %d, MaxInFlight %d, RetryBackoff %v, DeliveryTimeout %v, Compression %v, closed before record %d",
				mode, linger, batchMax, inFlight, backoff, timeout, codec, closeAt)}
		opts := append([]producer.Opt{producer.DefaultTopic(propTopic), producer.Linger(linger),
			producer.BatchMaxBytes(batchMax), producer.MaxInFlight(inFlight), producer.RetryBackoff(backoff),
			producer.DeliveryTimeout(timeout), producer.Compression(codec)}, modeOpts...)
		if verbose {
			opts = append(opts, producer.Logger(slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})).With("producer", i)))
		}
		pp.p = runneltest.NewProducer(t, f, opts...)
		for j := range n {
			var key []byte
			if rng.IntN(4) > 0 {
				key = fmt.Appendf(nil, "p%d-k%d", i, rng.IntN(8))
			}
			value := fmt.Appendf(nil, "p%d-%d.%s", i, j, strings.Repeat("x", rng.IntN(100)))
			pp.recs = append(pp.recs, &propRec{rec: &record.Record{Key: key, Value: value, Partition: -1}})
		}
		if mixed {
			for _, pr := range pp.recs {
				if maxMsg > 0 && mrng.IntN(60) == 0 {
					pr.rec.Value, pr.big = append(pr.rec.Value, strings.Repeat("y", maxMsg)...), true
				}
				if mrng.IntN(80) == 0 {
					pr.rec.Topic, pr.missing = propMissingTopic, true
				}
			}
		}
		t.Logf("producer %d: %d records; %s", i, n, pp.opts)
		prods[i] = pp
	}

	// The plans are drawn before anything runs, so that a seed's choices
	// are the same each time (the timing is not).
	plans := make([]func(), len(prods))
	for i, pp := range prods {
		plans[i] = pp.plan(t, rand.New(rand.NewPCG(seed, uint64(i))))
	}
	inj := newPropInjector(f, parts, &progress, rand.New(rand.NewPCG(seed, 0x696e6a)), rand.New(rand.NewPCG(seed, 0x6865616c7468)))
	if verbose {
		inj.log = t.Logf
	}

	injDone := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(injDone)
		inj.run(t.Context(), stop)
	}()
	var wg sync.WaitGroup
	for _, plan := range plans {
		wg.Go(plan)
	}
	wg.Wait()
	close(stop)
	testkit.Await(t, injDone, "the injector's return") // the held requests are released
	t.Logf("rules added: %s", inj.summary())

	ctx, cancel := context.WithTimeout(t.Context(), 2*propDeliveryTimeout)
	defer cancel()
	for _, pp := range prods {
		if err := pp.p.Flush(ctx); err != nil && !(pp.closed.Load() && errors.Is(err, producer.ErrClosed)) {
			t.Fatalf("producer %d: flush: %v (%d records still buffered)", pp.id, err, pp.p.BufferedRecords())
		}
		// Flush waits for every promise (and Close, for one closed
		// early: its plan waited for it, and its Produce calls after it
		// failed at once).
		if n := pp.p.BufferedRecords(); n != 0 {
			t.Errorf("producer %d: %d records still buffered after Flush", pp.id, n)
		}
		pp.mu.Lock()
		for j, pr := range pp.recs {
			if pr.calls == 0 {
				t.Errorf("p%d-%d: no outcome once Flush returned (closed early: %v)", pp.id, j, pp.closed.Load())
			}
		}
		pp.mu.Unlock()
	}
	for _, pp := range prods {
		if err := pp.p.Close(); err != nil {
			t.Errorf("producer %d: close: %v", pp.id, err)
		}
	}
	checkFaultsProperty(t, prods, runneltest.ConsumeAll(t, b, propTopic), obs, propRefusals{maxMsg, cleanup == log.Compact})
}

// propObserver keeps the produce requests the producers sent, attempts
// that failed included: for each producer and partition, the numbers of
// each request's records, in the order sent.
type propObserver struct {
	mu   sync.Mutex
	reqs map[[2]int][][]int // {producer, partition} -> requests
	bad  []string           // requests it could not read
}

// observeRequests adds the Observe rule, first of all, that sees every
// produce request to the property test's topic. Each producer sends a
// partition's requests one at a time, waiting for the rule's Match, so
// their order is the order sent.
func observeRequests(f *runneltest.Faults) *propObserver {
	o := &propObserver{reqs: map[[2]int][][]int{}}
	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Topic: propTopic, Action: runneltest.Observe, Count: runneltest.Unlimited,
		Match: func(req runneltest.Request) bool {
			var nums []int
			id := -1
			for r, err := range req.Records() {
				if err != nil {
					o.problem("a request to partition %d that does not decode: %v", req.Partition, err)
					return false
				}
				var p, j int
				if _, err := fmt.Sscanf(string(r.Value), "p%d-%d.", &p, &j); err != nil || id >= 0 && p != id {
					o.problem("a request to partition %d with record %.20q after producer %d's", req.Partition, r.Value, id)
					return false
				}
				id = p
				nums = append(nums, j)
			}
			if id >= 0 {
				o.mu.Lock()
				k := [2]int{id, int(req.Partition)}
				o.reqs[k] = append(o.reqs[k], nums)
				o.mu.Unlock()
			}
			return false // observed here; nothing to count
		}})
	return o
}

func (o *propObserver) problem(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.bad = append(o.bad, fmt.Sprintf(format, args...))
}

// TestWholeRequests checks the order check of TestFaultsPropertyAcks on
// logs made by hand.
func TestWholeRequests(t *testing.T) {
	reqs := [][]int{{1, 2}, {1, 2}, {1}, {2}, {3, 4}, {5}}
	for _, c := range []struct {
		log []int
		ok  bool
	}{
		{nil, true},
		{[]int{1, 2, 3, 4, 5}, true},
		{[]int{1, 2, 1, 2, 3, 4}, true},       // a retry appended again
		{[]int{1, 2, 1, 2, 1, 2, 3, 4}, true}, // twice, and the half too
		{[]int{1, 2, 2, 5}, true},
		{[]int{1, 3, 4}, true},
		{[]int{1, 2, 1, 2, 1, 2, 1, 2}, false}, // more copies than attempts
		{[]int{1, 3}, false},                   // part of a request
		{[]int{3, 4, 1, 2}, false},             // out of the order sent
		{[]int{2, 1}, false},
		{[]int{5, 5}, false},
	} {
		if got := wholeRequests(c.log, reqs); got != c.ok {
			t.Errorf("wholeRequests(%v, %v) = %v, want %v", c.log, reqs, got, c.ok)
		}
	}
}

// wholeRequests reports whether log, the numbers of one producer's
// records in one partition in log order, is a run of whole requests of
// reqs, those the producer sent to the partition, in the order sent:
// each request appended whole or not at all, and none after a later one.
func wholeRequests(log []int, reqs [][]int) bool {
	// can[i][pos]: log[pos:] is made of requests among reqs[i:]. 0:
	// unknown, 1: yes, 2: no.
	memo := make([][]uint8, len(reqs)+1)
	for i := range memo {
		memo[i] = make([]uint8, len(log)+1)
	}
	var can func(i, pos int) bool
	can = func(i, pos int) bool {
		switch {
		case pos == len(log):
			return true
		case i == len(reqs):
			return false
		case memo[i][pos] != 0:
			return memo[i][pos] == 1
		}
		r := reqs[i]
		ok := pos+len(r) <= len(log) && slices.Equal(log[pos:pos+len(r)], r) && can(i+1, pos+len(r)) || can(i+1, pos)
		memo[i][pos] = 2
		if ok {
			memo[i][pos] = 1
		}
		return ok
	}
	return can(0, 0)
}

// propDeliveryTimeout outlives any run of retriable faults the injector
// makes (and a held request, released within milliseconds).
const propDeliveryTimeout = 20 * time.Second

// plan draws how producer pp writes its records (Produce with a promise,
// ProduceSync of a few, runs of records with a ctx cancelled a few
// records later) and returns the function that does it, in order, on
// one goroutine.
func (pp *propProducer) plan(t *testing.T, rng *rand.Rand) func() {
	type step struct {
		from, to int   // records [from, to)
		sync     bool  // ProduceSync, else Produce each
		ctx      int   // the cancellable ctx of the run, -1: t.Context()
		cancel   []int // the ctxs to cancel before this step
	}
	var steps []step
	nctx := 0
	var cancelAt []int // by ctx: the record before which it is cancelled
	for i := 0; i < len(pp.recs); {
		s := step{from: i, ctx: -1}
		for c, at := range cancelAt {
			if at >= 0 && at <= i {
				s.cancel, cancelAt[c] = append(s.cancel, c), -1
			}
		}
		switch x := rng.IntN(20); {
		case x < 2:
			s.to, s.sync = min(i+1+rng.IntN(5), len(pp.recs)), true
		case x < 3:
			s.to, s.ctx = min(i+1+rng.IntN(6), len(pp.recs)), nctx
			// Cancelled maybe before its last records are produced, maybe
			// later (or never: past the last record).
			cancelAt = append(cancelAt, max(i+1, s.to-rng.IntN(3)+rng.IntN(8)))
			nctx++
		default:
			s.to = i + 1
		}
		steps = append(steps, s)
		i = s.to
	}
	return func() {
		var closing sync.WaitGroup
		defer closing.Wait()
		ctxs := make([]context.CancelFunc, nctx)
		ctxOf := make([]context.Context, nctx)
		for c := range nctx {
			ctxOf[c], ctxs[c] = context.WithCancel(t.Context())
		}
		defer func() {
			for _, cancel := range ctxs {
				cancel()
			}
		}()
		for _, s := range steps {
			for _, c := range s.cancel {
				ctxs[c]()
			}
			ctx := t.Context()
			if s.ctx >= 0 {
				ctx = ctxOf[s.ctx]
			}
			if pp.closeAt >= 0 && s.from >= pp.closeAt && !pp.closed.Load() {
				// Closed while it produces, without a Flush: what is in
				// flight is cancelled, and the rest fails with ErrClosed.
				pp.closed.Store(true)
				closing.Go(func() { pp.p.Close() })
			}
			pp.progress.Add(int64(s.to - s.from))
			if s.sync {
				pp.produceSync(ctx, pp.recs[s.from:s.to])
				continue
			}
			for j := s.from; j < s.to; j++ {
				pp.produce(ctx, j)
			}
		}
	}
}

// produce produces record j with Produce, its promise noting the outcome.
func (pp *propProducer) produce(ctx context.Context, j int) {
	pr := pp.recs[j]
	pr.ctx = ctx
	pp.p.Produce(ctx, pr.rec, func(r *record.Record, err error) {
		pp.mu.Lock()
		defer pp.mu.Unlock()
		pr.calls++
		if pr.calls > 1 {
			pp.problems = append(pp.problems, fmt.Sprintf("promise of p%d-%d ran %d times (now with %v)", pp.id, j, pr.calls, err))
			return
		}
		if r != pr.rec {
			pp.problems = append(pp.problems, fmt.Sprintf("promise of p%d-%d got another record", pp.id, j))
		}
		pr.err, pr.part, pr.off, pr.pid = err, r.Partition, r.Offset, r.ProducerID
		if r.Partition < 0 {
			return // failed before it was partitioned, on this goroutine
		}
		if last, ok := pp.lastProm[r.Partition]; ok && last > j {
			pp.problems = append(pp.problems, fmt.Sprintf("promise of p%d-%d ran after that of p%d-%d, partition %d", pp.id, j, pp.id, last, r.Partition))
		}
		pp.lastProm[r.Partition] = j
	})
}

// produceSync produces prs with one ProduceSync and notes each outcome.
func (pp *propProducer) produceSync(ctx context.Context, prs []*propRec) {
	recs := make([]*record.Record, len(prs))
	for i, pr := range prs {
		recs[i], pr.ctx = pr.rec, ctx
	}
	err := pp.p.ProduceSync(ctx, recs...)
	failed := map[*record.Record]*producer.RecordError{}
	if err != nil {
		joined, ok := err.(interface{ Unwrap() []error })
		if !ok {
			pp.problem("ProduceSync returned %T, not a join of *RecordError: %v", err, err)
			return
		}
		for _, e := range joined.Unwrap() {
			var re *producer.RecordError
			if !errors.As(e, &re) {
				pp.problem("ProduceSync returned %v, not a *RecordError", e)
				continue
			}
			failed[re.Record] = re
		}
	}
	pp.mu.Lock()
	defer pp.mu.Unlock()
	for _, pr := range prs {
		pr.calls++
		if re := failed[pr.rec]; re != nil {
			pr.err, pr.part, pr.off = re, re.Partition, -1
			delete(failed, pr.rec)
			continue
		}
		pr.part, pr.off, pr.pid = pr.rec.Partition, pr.rec.Offset, pr.rec.ProducerID
	}
	for r := range failed {
		pp.problems = append(pp.problems, fmt.Sprintf("ProduceSync failed %q, which it was not given", r.Value))
	}
}

func (pp *propProducer) problem(format string, args ...any) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	pp.problems = append(pp.problems, fmt.Sprintf(format, args...))
}

// propInjector adds random rules to a Faults while the producers write.
type propInjector struct {
	f        *runneltest.Faults
	parts    int
	progress *atomic.Int64 // records produced
	rng      *rand.Rand
	// hrng draws the ReportUnwritable rules, of its own: rng's draws
	// stay as they were before there were any.
	hrng    *rand.Rand
	reports []*runneltest.Rule               // the ReportUnwritable rules added
	kinds   map[string]int                   // rules added, by kind
	log     func(format string, args ...any) // each rule added, if not nil
}

func newPropInjector(f *runneltest.Faults, parts int, progress *atomic.Int64, rng, hrng *rand.Rand) *propInjector {
	return &propInjector{f: f, parts: parts, progress: progress, rng: rng, hrng: hrng, kinds: map[string]int{}}
}

// run adds a rule every few records the producers produce (looking every
// millisecond or so), until stop is closed: paced by the records rather
// than the clock, so that rules do not pile up while retries hold the
// producers back. It removes each HoldRequest rule a few milliseconds
// after it added it (and all of them before it returns).
func (in *propInjector) run(ctx context.Context, stop <-chan struct{}) {
	type hold struct {
		r  *runneltest.Rule
		at time.Time
	}
	var holds []hold
	defer func() {
		for _, h := range holds {
			h.r.Remove()
		}
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	next := int64(0) // the progress at which the next rule is added
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		now := time.Now()
		holds = slices.DeleteFunc(holds, func(h hold) bool {
			if now.After(h.at) {
				h.r.Remove()
				return true
			}
			return false
		})
		if n := in.progress.Load(); n >= next {
			next = n + 2 + int64(in.rng.IntN(12))
			fault, kind := in.fault()
			r := in.f.Add(fault)
			in.kinds[kind]++
			if in.log != nil {
				in.log("after %d records: rule %s: %s on %v, %v, Count %d, Skip %d", n, kind, fault.Action, fault.Partitions, fault.Err, fault.Count, fault.Skip)
			}
			if fault.Action == runneltest.HoldRequest {
				holds = append(holds, hold{r, now.Add(time.Duration(500+in.rng.IntN(4500)) * time.Microsecond)})
			}
			if fault, ok := in.report(); ok {
				in.reports = append(in.reports, in.f.Add(fault))
				in.kinds["report unwritable"]++
				if in.log != nil {
					in.log("after %d records: rule report unwritable: %v, Count %d", n, fault.Partitions, fault.Count)
				}
			}
		}
		timer.Reset(time.Duration(200+in.rng.IntN(1800)) * time.Microsecond)
	}
}

// fault draws a rule, and names its kind.
func (in *propInjector) fault() (runneltest.Fault, string) {
	f := runneltest.Fault{Op: runneltest.OpProduce, Topic: propTopic, Count: 1 + in.rng.IntN(3), Skip: in.rng.IntN(4)}
	for p := range int32(in.parts) {
		if in.rng.IntN(2) == 0 {
			f.Partitions = append(f.Partitions, p) // none: any partition
		}
	}
	pick := func(errs ...error) error { return errs[in.rng.IntN(len(errs))] }
	switch x := in.rng.IntN(100); {
	case x < 35:
		f.Err = pick(api.ErrNotLeader, api.ErrNotEnoughReplicas, api.ErrRequestTimedOut, log.ErrLogFenced, api.ErrUnknownTopicOrPartition)
		return f, "retriable"
	case x < 40:
		// Not retriable, but the producer sends the batch again under a
		// new producer id, unless an earlier attempt may have been
		// appended.
		f.Err = pick(api.ErrUnknownProducerID, api.ErrOutOfOrderSequence)
		return f, "new producer id"
	case x < 60:
		f.Action, f.Err = runneltest.LoseResponse, api.ErrRequestTimedOut
		if in.rng.IntN(10) == 0 {
			f.Err = errPropConnLost
		}
		return f, "lose response"
	case x < 75:
		f.Action, f.Err = runneltest.FailAck, pick(errPropAckTimedOut, errPropAckFenced)
		return f, "fail ack"
	case x < 85:
		f.Action, f.Count = runneltest.HoldRequest, 1+in.rng.IntN(2)
		return f, "hold"
	default:
		f.Err, f.Count = pick(api.ErrPolicyViolation, api.ErrInvalidRequest, producer.ErrRecordTooLarge, producer.ErrProducerFenced), 1
		return f, "not retriable"
	}
}

// report draws, now and then, a rule that tells the producers' next few
// look-ups that some partitions refuse appends (they do not, but for the
// other rules): the records without a key go elsewhere for a while,
// which changes no promise the test checks. The producers look when a
// batch is refused with KAFKA_STORAGE_ERROR (log.ErrLogFenced above) or
// NOT_LEADER_OR_FOLLOWER (api.ErrNotLeader), and when they first write.
func (in *propInjector) report() (runneltest.Fault, bool) {
	if in.hrng.IntN(4) > 0 {
		return runneltest.Fault{}, false
	}
	f := runneltest.Fault{Op: runneltest.OpUnwritablePartitions, Topic: propTopic, Action: runneltest.ReportUnwritable,
		Count: 1 + in.hrng.IntN(3)}
	for p := range int32(in.parts) {
		if in.hrng.IntN(2) == 0 {
			f.Partitions = append(f.Partitions, p)
		}
	}
	if len(f.Partitions) == 0 {
		f.Partitions = []int32{int32(in.hrng.IntN(in.parts))}
	}
	return f, true
}

func (in *propInjector) summary() string {
	var s []string
	for _, k := range slices.Sorted(maps.Keys(in.kinds)) {
		s = append(s, fmt.Sprintf("%s %d", k, in.kinds[k]))
	}
	if len(in.reports) > 0 {
		hits := 0
		for _, r := range in.reports {
			hits += r.Hits()
		}
		s = append(s, fmt.Sprintf("(look-ups told of unwritable partitions %d)", hits))
	}
	return strings.Join(s, ", ")
}

// notWritten reports whether a record's error says that the record was
// not written (see producer.ProduceSync): its ctx's error, an error
// before it was partitioned, or one of the broker's refusals the test
// injects, unless producer.ErrMaybeWritten says otherwise.
func notWritten(pr *propRec) bool {
	err := pr.err
	var re *producer.RecordError
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return true
	case errors.As(err, &re) && re.Partition == producer.UnknownPartition:
		return true
	case errors.Is(err, producer.ErrMaybeWritten), errors.Is(err, producer.ErrDeliveryTimeout), errors.Is(err, producer.ErrClosed):
		// A delivery timeout's error matches the last attempt's too, a
		// refusal maybe, after an attempt that may have been appended.
		return false
	}
	// The refusals (see producer.ProduceSync) the test injects, or the
	// broker makes (a batch too large, a topic that does not exist);
	// those the producer retries (api.ErrNotEnoughReplicas, ...) reach a
	// promise only with acks 0, which does not retry. api.ErrNotLeader is
	// none: Kafka's broker answers it after an append too.
	for _, refusal := range []error{api.ErrPolicyViolation, api.ErrInvalidRequest, producer.ErrRecordTooLarge, producer.ErrProducerFenced, api.ErrUnknownProducerID,
		api.ErrUnknownTopicOrPartition, api.ErrNotEnoughReplicas, log.ErrInvalidRecord} {
		if errors.Is(err, refusal) {
			return true
		}
	}
	return false
}

// saysMaybeWritten reports whether an error says that its record may
// have been written, as producer.ProduceSync lists them: ErrMaybeWritten,
// ErrDeliveryTimeout, ErrClosed, log.ErrLogFenced, api.ErrBrokerClosed,
// ErrOutOfOrderSequence, api.ErrNotLeader, and an error the api table
// does not know.
func saysMaybeWritten(err error) bool {
	for _, e := range []error{producer.ErrMaybeWritten, producer.ErrDeliveryTimeout, producer.ErrClosed,
		log.ErrLogFenced, api.ErrBrokerClosed, producer.ErrOutOfOrderSequence, api.ErrNotLeader} {
		if errors.Is(err, e) {
			return true
		}
	}
	return api.Code(err) == -1
}

// propRefusals is what the broker refuses itself in a seed of
// TestFaultsPropertyAcks.
type propRefusals struct {
	maxMsg  int  // batches larger than that (max.message.bytes), when not 0
	keyless bool // records without a key (a compacted topic)
}

// explained reports whether a record's error has a cause the test made:
// its own ctx, cancelled; an injected error that is not retriable; an
// injected acknowledgement failure (final: the batch is in the log). A
// retriable error, or a delivery timeout, is none: the producer retries
// those until the faults have passed; and so is a refusal of the
// producer id or its sequence numbers without producer.ErrMaybeWritten:
// the producer sends the batch again under a new id unless an earlier
// attempt of it may have been appended.
//
// The broker's own ErrOutOfOrderSequence (a gap before the batch) is
// explained only after a fenced batch of the producer on that partition
// that may have been appended (fenced is true): the producer keeps its
// id and goes on after that batch's sequence numbers, a gap if the
// broker does not have it (a fence the test made up, which a broker
// would repeat); then a batch an earlier attempt of which may have been
// appended fails with it, as producer.Producer says.
//
// Without idempotence a refusal of the producer id or its sequence
// numbers is final, as any error that is not retriable; with acks 0 so
// is every error (nothing is retried). The broker's own refusals explain
// the records of TestFaultsPropertyAcks they are about: a record to a
// topic that does not exist; one larger than the topic's small
// max.message.bytes (maxMsg), and any of a batch that the broker refused
// as too large after an earlier attempt of it that may have been
// appended (not split then: see producer.Producer).
func explained(pr *propRec, mode propMode, fenced bool, refusing propRefusals) bool {
	err := pr.err
	if errors.Is(err, context.Canceled) {
		return pr.ctx.Err() != nil
	}
	var ie *runneltest.InjectedError
	switch {
	case pr.missing && errors.Is(err, api.ErrUnknownTopicOrPartition):
		return !errors.As(err, &ie)
	case refusing.maxMsg > 0 && errors.Is(err, producer.ErrRecordTooLarge) && !errors.As(err, &ie):
		return pr.big || errors.Is(err, producer.ErrMaybeWritten)
	case refusing.keyless && errors.Is(err, log.ErrInvalidRecord) && !errors.As(err, &ie):
		return pr.rec.Key == nil || errors.Is(err, producer.ErrMaybeWritten)
	case !errors.As(err, &ie):
		return mode == modeIdempotent && fenced && errors.Is(err, producer.ErrOutOfOrderSequence) && errors.Is(err, producer.ErrMaybeWritten)
	case mode == modeNone:
		return !errors.Is(err, producer.ErrDeliveryTimeout) // failed at once
	case mode != modeIdempotent:
	case errors.Is(ie.Err, api.ErrUnknownProducerID), errors.Is(ie.Err, api.ErrOutOfOrderSequence):
		return errors.Is(err, producer.ErrMaybeWritten)
	}
	return !api.IsRetriable(ie.Err) || errors.Is(err, errPropAckTimedOut) || errors.Is(err, errPropAckFenced)
}

// checkFaultsProperty checks the outcomes of the producers' records
// against the log (got, as ConsumeAll returns it) and the requests obs
// saw; refusing says what the broker refuses itself.
func checkFaultsProperty(t *testing.T, prods []*propProducer, got []*record.Record, obs *propObserver, refusing propRefusals) {
	type at struct {
		part int32
		off  int64
	}
	inLog := map[string][]at{} // a record's copies, in log order
	seq := map[[2]int][]int{}  // {producer, partition} -> its records' numbers, in log order
	last := map[[2]int]int{}   // {producer, partition} -> last record's number
	for _, r := range got {
		var id, j int
		if _, err := fmt.Sscanf(string(r.Value), "p%d-%d.", &id, &j); err != nil || id < 0 || id >= len(prods) || j < 0 || j >= len(prods[id].recs) {
			t.Errorf("%s-%d@%d: a record the test did not write: %.40q", r.Topic, r.Partition, r.Offset, r.Value)
			continue
		}
		name := fmt.Sprintf("p%d-%d", id, j)
		mode := prods[id].mode
		if idem := r.ProducerID >= 0; idem != (mode == modeIdempotent) {
			t.Errorf("%s-%d@%d: %s has producer id %d; its producer is %v", r.Topic, r.Partition, r.Offset, name, r.ProducerID, mode)
		}
		k := [2]int{id, int(r.Partition)}
		seq[k] = append(seq[k], j)
		prev := inLog[name]
		if len(prev) > 0 && (mode == modeIdempotent || mode == modeNone) {
			t.Errorf("%s twice in the log (%v): partition %d at %d and partition %d at %d", name, mode, prev[0].part, prev[0].off, r.Partition, r.Offset)
			continue
		}
		inLog[name] = append(prev, at{r.Partition, r.Offset})
		if len(prev) > 0 {
			continue // a copy: where it may be, wholeRequests says
		}
		if prev, ok := last[k]; ok && prev >= j {
			t.Errorf("partition %d: %s at %d after p%d-%d: out of produce order", r.Partition, name, r.Offset, id, prev)
		}
		last[k] = j
	}
	obs.mu.Lock()
	for _, s := range obs.bad {
		t.Error(s)
	}
	for _, k := range slices.SortedFunc(maps.Keys(seq), func(a, b [2]int) int { return a[0]*64 + a[1] - b[0]*64 - b[1] }) {
		if !wholeRequests(seq[k], obs.reqs[k]) {
			t.Errorf("producer %d (%v), partition %d: the log's records %v are not a run of whole requests in the order sent, %v",
				k[0], prods[k[0]].mode, k[1], seq[k], obs.reqs[k])
		}
	}
	obs.mu.Unlock()

	outcomes := map[string]int{}
	for _, pp := range prods {
		pp.mu.Lock()
		for _, s := range pp.problems {
			t.Error(s)
		}
		fenced := map[int32]bool{} // partitions where a batch that may have been appended was fenced
		for j, pr := range pp.recs {
			name := fmt.Sprintf("p%d-%d", pp.id, j)
			copies := inLog[name]
			if len(copies) > 1 {
				outcomes["written more than once"]++
			}
			switch {
			case pr.calls != 1:
				t.Errorf("%s: outcome reported %d times", name, pr.calls)
			case pr.err == nil:
				outcomes["written"]++
				switch {
				case len(copies) == 0:
					t.Errorf("%s: written at partition %d offset %d, says its outcome; it is not in the log", name, pr.part, pr.off)
				case pr.off == -1 && pp.mode == modeNone && copies[0].part == pr.part:
					outcomes["written, offset -1"]++ // the Client reported none (see producer.Acks)
				case copies[len(copies)-1] != (at{pr.part, pr.off}):
					t.Errorf("%s: written at partition %d offset %d, says its outcome; the log has it at %v", name, pr.part, pr.off, copies)
				}
				if idem := pr.pid >= 0; idem != (pp.mode == modeIdempotent) {
					t.Errorf("%s: written with producer id %d, says its outcome; its producer is %v", name, pr.pid, pp.mode)
				}
			case notWritten(pr):
				outcomes["not written"]++
				if len(copies) > 0 {
					t.Errorf("%s: failed with %q, which says it was not written; it is at %v", name, pr.err, copies)
				}
			default:
				outcomes["may have been written"]++
				if len(copies) > 0 && !saysMaybeWritten(pr.err) {
					t.Errorf("%s: failed with %q, which does not say that it may have been written; it is at %v", name, pr.err, copies)
				}
			}
			switch {
			case pr.err == nil:
			case pp.closed.Load() && errors.Is(pr.err, producer.ErrClosed):
			case pp.timeout < propDeliveryTimeout && errors.Is(pr.err, producer.ErrDeliveryTimeout):
			case !explained(pr, pp.mode, fenced[pr.part], refusing):
				t.Errorf("%s (%v): failed with %q, which no fault the test injected explains", name, pp.mode, pr.err)
			}
			if errors.Is(pr.err, producer.ErrProducerFenced) && errors.Is(pr.err, producer.ErrMaybeWritten) {
				fenced[pr.part] = true
			}
		}
		pp.mu.Unlock()
	}
	t.Logf("records: %v; in the log: %d", outcomes, len(got))
}
