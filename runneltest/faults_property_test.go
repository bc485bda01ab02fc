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
// acknowledgements and hold requests for a while. Once flushed, the
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
	testkit.Seeds(t, "RUNNEL_FAULTS_PROP", 30, 6, runFaultsProperty)
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
	rec   *record.Record
	ctx   context.Context // the record's ctx, cancelled for some
	calls int             // promise calls (ProduceSync: 1 once it returned)
	err   error
	part  int32
	off   int64
}

// propProducer is one producer of a property-test seed, and its records.
type propProducer struct {
	id       int
	p        *producer.Producer
	opts     string
	recs     []*propRec
	progress *atomic.Int64 // records produced by the seed's producers

	mu       sync.Mutex // guards recs' outcomes and lastProm
	lastProm map[int32]int
	problems []string
}

// runFaultsProperty runs one seed of TestFaultsProperty.
func runFaultsProperty(t *testing.T, seed uint64) {
	verbose := os.Getenv("RUNNEL_FAULTS_PROP_LOG") != ""
	rng := rand.New(rand.NewPCG(seed, 0x6661756c7473))
	parts := 1 + rng.IntN(4)
	b := runneltest.NewBroker(t, runneltest.Topic(propTopic, parts))
	f := runneltest.NewFaults(t, b)
	t.Logf("seed %d: %d partitions", seed, parts)

	var progress atomic.Int64
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
		pp := &propProducer{id: i, lastProm: map[int32]int{}, progress: &progress,
			opts: fmt.Sprintf("Linger %v, BatchMaxBytes %d, MaxInFlight %d, RetryBackoff %v", linger, batchMax, inFlight, backoff)}
		opts := []producer.Opt{producer.DefaultTopic(propTopic), producer.Linger(linger),
			producer.BatchMaxBytes(batchMax), producer.MaxInFlight(inFlight), producer.RetryBackoff(backoff),
			producer.DeliveryTimeout(propDeliveryTimeout)}
		if verbose {
			opts = append(opts, producer.Logger(slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})).With("producer", i)))
		}
		pp.p = runneltest.NewProducer(t, f, opts...)
		n := 100 + rng.IntN(300)
		for j := range n {
			var key []byte
			if rng.IntN(4) > 0 {
				key = fmt.Appendf(nil, "p%d-k%d", i, rng.IntN(8))
			}
			value := fmt.Appendf(nil, "p%d-%d.%s", i, j, strings.Repeat("x", rng.IntN(100)))
			pp.recs = append(pp.recs, &propRec{rec: &record.Record{Key: key, Value: value, Partition: -1}})
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
	inj := newPropInjector(f, parts, &progress, rand.New(rand.NewPCG(seed, 0x696e6a)))
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
	<-injDone // the held requests are released
	t.Logf("rules added: %s", inj.summary())

	ctx, cancel := context.WithTimeout(t.Context(), 2*propDeliveryTimeout)
	defer cancel()
	for _, pp := range prods {
		if err := pp.p.Flush(ctx); err != nil {
			t.Fatalf("producer %d: flush: %v (%d records still buffered)", pp.id, err, pp.p.BufferedRecords())
		}
	}
	for _, pp := range prods {
		if err := pp.p.Close(); err != nil {
			t.Errorf("producer %d: close: %v", pp.id, err)
		}
	}
	checkFaultsProperty(t, prods, runneltest.ConsumeAll(t, b, propTopic))
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
		pr.err, pr.part, pr.off = err, r.Partition, r.Offset
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
		pr.part, pr.off = pr.rec.Partition, pr.rec.Offset
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
	kinds    map[string]int                   // rules added, by kind
	log      func(format string, args ...any) // each rule added, if not nil
}

func newPropInjector(f *runneltest.Faults, parts int, progress *atomic.Int64, rng *rand.Rand) *propInjector {
	return &propInjector{f: f, parts: parts, progress: progress, rng: rng, kinds: map[string]int{}}
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

func (in *propInjector) summary() string {
	var s []string
	for _, k := range slices.Sorted(maps.Keys(in.kinds)) {
		s = append(s, fmt.Sprintf("%s %d", k, in.kinds[k]))
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
	case errors.Is(err, producer.ErrMaybeWritten):
		return false
	}
	for _, refusal := range []error{api.ErrPolicyViolation, api.ErrInvalidRequest, producer.ErrRecordTooLarge, producer.ErrProducerFenced, api.ErrUnknownProducerID} {
		if errors.Is(err, refusal) {
			return true
		}
	}
	return false
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
func explained(pr *propRec, fenced bool) bool {
	err := pr.err
	if errors.Is(err, context.Canceled) {
		return pr.ctx.Err() != nil
	}
	var ie *runneltest.InjectedError
	switch {
	case !errors.As(err, &ie):
		return fenced && errors.Is(err, producer.ErrOutOfOrderSequence) && errors.Is(err, producer.ErrMaybeWritten)
	case errors.Is(ie.Err, api.ErrUnknownProducerID), errors.Is(ie.Err, api.ErrOutOfOrderSequence):
		return errors.Is(err, producer.ErrMaybeWritten)
	}
	return !api.IsRetriable(ie.Err) || errors.Is(err, errPropAckTimedOut) || errors.Is(err, errPropAckFenced)
}

// checkFaultsProperty checks the outcomes of the producers' records
// against the log (got, as ConsumeAll returns it).
func checkFaultsProperty(t *testing.T, prods []*propProducer, got []*record.Record) {
	type at struct {
		part int32
		off  int64
	}
	inLog := map[string]at{}
	last := map[[2]int]int{} // {producer, partition} -> last record's number
	for _, r := range got {
		var id, j int
		if _, err := fmt.Sscanf(string(r.Value), "p%d-%d.", &id, &j); err != nil {
			t.Errorf("%s-%d@%d: a record the test did not write: %q", r.Topic, r.Partition, r.Offset, r.Value)
			continue
		}
		name := fmt.Sprintf("p%d-%d", id, j)
		if prev, dup := inLog[name]; dup {
			t.Errorf("%s twice in the log: partition %d at %d and partition %d at %d", name, prev.part, prev.off, r.Partition, r.Offset)
			continue
		}
		inLog[name] = at{r.Partition, r.Offset}
		k := [2]int{id, int(r.Partition)}
		if prev, ok := last[k]; ok && prev >= j {
			t.Errorf("partition %d: %s at %d after p%d-%d: out of produce order", r.Partition, name, r.Offset, id, prev)
		}
		last[k] = j
	}

	outcomes := map[string]int{}
	for _, pp := range prods {
		pp.mu.Lock()
		for _, s := range pp.problems {
			t.Error(s)
		}
		fenced := map[int32]bool{} // partitions where a batch that may have been appended was fenced
		for j, pr := range pp.recs {
			name := fmt.Sprintf("p%d-%d", pp.id, j)
			where, there := inLog[name]
			switch {
			case pr.calls != 1:
				t.Errorf("%s: outcome reported %d times", name, pr.calls)
			case pr.err == nil:
				outcomes["written"]++
				if !there || where != (at{pr.part, pr.off}) {
					t.Errorf("%s: written at partition %d offset %d, says its outcome; the log has it: %v at %v", name, pr.part, pr.off, there, where)
				}
			case notWritten(pr):
				outcomes["not written"]++
				if there {
					t.Errorf("%s: failed with %q, which says it was not written; it is at partition %d offset %d", name, pr.err, where.part, where.off)
				}
			default:
				outcomes["may have been written"]++
			}
			if pr.err != nil && !explained(pr, fenced[pr.part]) {
				t.Errorf("%s: failed with %q, which no fault the test injected explains", name, pr.err)
			}
			if errors.Is(pr.err, producer.ErrProducerFenced) && errors.Is(pr.err, producer.ErrMaybeWritten) {
				fenced[pr.part] = true
			}
		}
		pp.mu.Unlock()
	}
	t.Logf("records: %v; in the log: %d", outcomes, len(got))
}
