package runneltest

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime/debug"
	"slices"
	"sync"
	"testing"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
)

// Op names the kind of request a Fault matches: one method of
// producer.AsyncClient, producer.HealthClient or consumer.Client.
type Op uint8

// The requests a producer or consumer makes of a broker. The zero Op is
// none: Add refuses it.
const (
	OpProduce              Op = iota + 1 // Produce and ProduceAsync
	OpFetch                              // Fetch
	OpListOffset                         // ListOffset
	OpPartitions                         // Partitions
	OpInitProducerID                     // InitProducerID
	OpUnwritablePartitions               // UnwritablePartitions (producer.HealthClient; see ReportUnwritable)
)

// String returns the Op's name, as error messages give it: "produce", ...
func (o Op) String() string {
	switch o {
	case OpProduce:
		return "produce"
	case OpFetch:
		return "fetch"
	case OpListOffset:
		return "list offset"
	case OpPartitions:
		return "partitions"
	case OpInitProducerID:
		return "init producer id"
	case OpUnwritablePartitions:
		return "unwritable partitions"
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Action is what a Fault does to a request it matches.
type Action uint8

const (
	// FailRequest (the zero Action) fails the call with Err: the request
	// never reaches the broker. A Fetch fails as a whole, as when the
	// connection to a broker fails.
	FailRequest Action = iota
	// FailPartitions (OpFetch only) answers each partition of the fetch
	// that the Fault matches with Err in its api.FetchedPartition, as a
	// broker reports a partition's error. Its HighWatermark and
	// LogStartOffset are -1 when Err says the partition is not there, the
	// partition's own otherwise.
	//
	// It fetches the others from the broker without waiting (a broker
	// answers at once when a partition fails: see runnel.Broker.Fetch).
	// When that fetch of the others fails (the broker closed, ctx ended),
	// the call fails with its error. The rule has counted the fetch all
	// the same (its Count taken, Hits and Wait told), unlike LoseResponse
	// and FailAck, which give their Count back when the broker refuses.
	//
	// What a consumer does with a partition's error, and with a failed
	// Fetch, is consumer.Consumer.Poll's and consumer.Consumer.Records' to
	// say.
	FailPartitions
	// LoseResponse (OpProduce only) lets the broker append the batches
	// and acknowledge them (their fsync, under the topic's policy), then
	// loses the answer: the call fails with Err.
	//
	// The records are in the log. A retry of an idempotent producer is
	// answered as a duplicate, with their original offsets, where one
	// without idempotence appends them again.
	//
	// Err is what the producer takes the answer for. So it is one a broker
	// may give after an append (api.ErrRequestTimedOut,
	// api.ErrBrokerClosed, a network error of your own), not a refusal
	// (api.ErrPolicyViolation, ...), which says that nothing was appended.
	// After a refusal, an idempotent producer gives the batch's sequence
	// numbers to its next batch, which the broker, holding the first,
	// answers as a duplicate without appending it.
	//
	// The broker's own error, when it refuses the request, is returned as
	// it is, and the rule did not apply: the request is no hit, and does
	// not count towards Count.
	LoseResponse
	// FailAck (OpProduce only) lets the broker append the batches and
	// fails their acknowledgement with Err: ProduceAsync returns the
	// broker's response with an api.Ack whose Wait waits for the broker's
	// acknowledgement, then returns Err (an fsync that failed, say).
	// Produce, which answers only once acknowledged, fails with Err after
	// the acknowledgement, as LoseResponse does: the producer calls it
	// under producer.MaxInFlight(1). The broker's own error is returned
	// as it is, and the rule did not apply, as with LoseResponse.
	FailAck
	// HoldRequest holds the request before it reaches the broker until
	// the Rule is removed (Rule.Remove), when it goes on to the broker,
	// or until its ctx ends, when it fails with ctx's error: to test
	// timeouts, and what Close does to calls in flight. Err must be nil.
	HoldRequest
	// Observe lets the request go on unchanged and counts it (Hits,
	// Wait): kfake's Observe, or a ControlKey that only counts. An
	// Observe rule does not end the matching: a later rule may still
	// apply to the request. Err must be nil.
	Observe
	// ReportUnwritable (OpUnwritablePartitions only) adds the Fault's
	// Partitions, which must be given, to the broker's answer of which
	// partitions refuse appends, as a Kafka broker's metadata reports a
	// partition without a leader or whose log directory is offline (what
	// a kfake ControlKey on Metadata makes up). Ids the topic does not
	// have are passed on: the producer ignores them, until the topic
	// grows to have them.
	//
	// A producer sends its records that may go to any partition (see
	// producer.ConsistentPartitioner) to the others from its next look-up,
	// until a batch sent to such a partition is acknowledged (a keyed
	// record's). It looks up (see producer.HealthClient) when it first
	// writes to the topic, each MetadataMaxAge, and when a batch is
	// refused with KAFKA_STORAGE_ERROR or api.ErrNotLeader, say. The rule
	// changes no append.
	//
	// Pair it with an OpProduce rule that fails those partitions' requests
	// with api.ErrStorage. The test then has partitions that refuse
	// appends as on a full disk (with api.ErrNotLeader, partitions without
	// a leader), and that the producer learns of as a broker's.
	//
	// Like Observe, it counts the request and does not end the matching.
	// The Partitions of every ReportUnwritable rule the request reaches are
	// added, but those of a rule removed before the broker answered (while
	// a later rule held the request, say). A later rule may still fail or
	// hold it. When the broker's own answer is an error (an unknown topic),
	// the call fails with it, the rule counted all the same. Err must be
	// nil.
	ReportUnwritable
)

// Unlimited is the Count of a Fault that applies to every request it
// matches, until its Rule is removed.
const Unlimited = -1

// String returns the Action's Go name: "FailRequest", ...
func (a Action) String() string {
	switch a {
	case FailRequest:
		return "FailRequest"
	case FailPartitions:
		return "FailPartitions"
	case LoseResponse:
		return "LoseResponse"
	case FailAck:
		return "FailAck"
	case HoldRequest:
		return "HoldRequest"
	case Observe:
		return "Observe"
	case ReportUnwritable:
		return "ReportUnwritable"
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// Fault says which requests a Rule matches and what it does to them.
//
// A request matches when:
//
//   - it is of Op;
//   - it names Topic (any topic when Topic is "");
//   - it names one of Partitions (any when Partitions is empty, or the
//     Partitions a ReportUnwritable rule reports);
//   - and Match, if set, accepts it.
//
// A Fetch is matched partition by partition, and matches when one of the
// partitions it names does.
type Fault struct {
	// Op is the kind of request the rule matches; it must be set.
	Op Op
	// Topic is the topic the request names; "" matches any. OpInitProducerID
	// names none: Topic must be "".
	Topic string
	// Partitions, unless empty, are the partitions the rule matches: the
	// request must name one of them. Empty matches any.
	//
	// OpPartitions, OpInitProducerID and OpUnwritablePartitions name none:
	// Partitions must be nil. A ReportUnwritable rule is the exception:
	// for it they are those it reports (see ReportUnwritable), and do not
	// narrow what it matches.
	Partitions []int32
	// Action is what the Fault does (FailRequest when not set).
	Action Action
	// Err is the error the request fails with, as the Err of an
	// *InjectedError: a sentinel of package api, say (api.ErrNotLeader
	// is retriable, api.ErrPolicyViolation is not: see api.IsRetriable).
	// It must be set but for HoldRequest, Observe and ReportUnwritable,
	// for which it must be nil.
	Err error
	// Count is how many requests the Fault applies to, at least 1, or
	// Unlimited.
	//
	// It must be set. kfake's Fault takes 0 for one request, and a test
	// ported from it that kept its 0 would otherwise fail more requests
	// than it meant to.
	Count int
	// Skip is how many of the requests the Fault matches go on
	// untouched, and uncounted, before it applies: kfake's When, or a
	// ControlKey that fails only the Nth request (Skip: N-1, Count: 1).
	Skip int
	// Match, unless nil, looks at a request's content, as kfake's
	// ControlKey function or When does. It reports whether the rule
	// matches the request: the produce request that carries a record with
	// key "poison" (Request.Records), the fetch from offset 100 on, the
	// offset look-up by a timestamp.
	//
	// It is called:
	//
	//   - once a request has passed the checks of Op, Topic and
	//     Partitions, and before Skip and Count: a request Match refuses
	//     is neither skipped nor counted;
	//   - only when the request reaches the rule: not when an earlier rule
	//     applied to it.
	//
	// For a Fetch it is called once for each partition Topic and
	// Partitions take, in the request's order. The rule matches the
	// partitions it accepts (FailPartitions fails those; FailRequest names
	// the first). But it matches no partition after the rule was removed
	// or spent, by its Match of an earlier one (a Match that signals once,
	// then removes its rule, as a kfake control calls DropControl) or by
	// another request.
	//
	// It runs on a goroutine of its own, for the producer or consumer that
	// sent the request, which waits for it. So it must be safe for
	// concurrent use. It runs without the Faults' lock, so it may:
	//
	//   - call the Faults' and its rules' methods (Add, Hits, Remove; not
	//     Wait for a hit the request itself would make);
	//   - Close the producer or consumer that sent the request. Close then
	//     returns without waiting for the request, as one called from a
	//     Client's method does (see producer.Producer.Close and
	//     consumer.Consumer.Close), and the request ends after Match.
	//
	// A rule Match adds is matched against the request too, after it. One
	// removed or spent while its Match runs does not apply.
	//
	// A Match that panics, or ends its goroutine (t.FailNow, require's
	// assertions: use assert's, or return false, instead), fails the test
	// (Errorf) and the request. The request fails with an error that
	// matches ErrMatchPanicked and is not retriable (see api.IsRetriable):
	// it goes no further.
	Match func(Request) bool
}

// ErrMatchPanicked is the error a request fails with when a Fault's
// Match panicked on it, or ended its goroutine (see Fault.Match).
var ErrMatchPanicked = errors.New("runneltest: a Fault's Match panicked")

// Request is one request as a Fault's Match sees it: for a Fetch, one of
// its partitions. Its pointers are the request's own: Match must not
// modify what they point to, nor keep them after it returns.
type Request struct {
	// Op is the kind of request.
	Op Op
	// Topic and Partition are those the request names: "" for
	// OpInitProducerID, and -1 for it, OpPartitions and
	// OpUnwritablePartitions.
	Topic     string
	Partition int32
	// Produce is the produce request (OpProduce), as the producer sent it,
	// before the broker has assigned its offsets; see Records.
	Produce *api.ProduceRequest
	// Fetch is the fetch request (OpFetch), of which FetchPartition is the
	// partition being matched: FetchPartition.Offset is the offset it is
	// fetched from.
	Fetch          *api.FetchRequest
	FetchPartition *api.FetchPartition
	// Timestamp is the timestamp an offset is looked up by (OpListOffset):
	// in milliseconds, or api.Latest, api.Earliest, ...
	Timestamp int64
}

// Records iterates over the records of a produce request, decoded from
// its batches with record.Batches and record.Batch.Records (decompressed
// when compressed; CRCs unchecked). Each record is a new *record.Record
// with Topic and Partition set to the request's; its Offset is its place
// in the request as the producer numbered it (from 0 for each batch the
// producer made: the broker assigns offsets later). Its Key, Value and
// headers point into the request's bytes: use them while Match runs,
// copy what is kept. Iteration stops after yielding the first error (a
// *record.CorruptError). A request of another Op yields nothing.
func (r Request) Records() iter.Seq2[*record.Record, error] {
	return func(yield func(*record.Record, error) bool) {
		if r.Produce == nil {
			return
		}
		for b, err := range record.Batches(r.Produce.Batches) {
			if err != nil {
				yield(nil, err)
				return
			}
			for rec, err := range b.Records() {
				if rec != nil {
					rec.Topic, rec.Partition = r.Produce.Topic, r.Produce.Partition
				}
				if !yield(rec, err) || err != nil {
					return
				}
			}
		}
	}
}

// InjectedError is the error a Rule fails a request with: its Err (which
// errors.Is and api.IsRetriable see through it), and where it was
// injected.
type InjectedError struct {
	// Op is the kind of request it failed.
	Op Op
	// Topic and Partition are those of the request (of a Fetch, the first
	// partition the Fault matched); "" and -1 for a request that names
	// none.
	Topic     string
	Partition int32
	// Err is the Fault's Err.
	Err error
}

// Error says what was injected where: "runneltest: injected into
// produce orders-0: " and Err's message.
func (e *InjectedError) Error() string {
	return fmt.Sprintf("runneltest: injected into %s: %v", describe(e.Op, e.Topic, e.Partition), e.Err)
}

// Unwrap returns Err, for errors.Is and errors.As.
func (e *InjectedError) Unwrap() error { return e.Err }

// Faults is a producer.AsyncClient, producer.HealthClient and
// consumer.Client over a *runnel.Broker. It passes every request to the
// broker, but for those its rules match, which it fails, holds or answers
// otherwise, as the rule says. That is what kfake's ControlKey and Fault
// are for, without a Client of the test's own.
//
// Hand it to NewProducer and NewConsumer (or to the code under test that
// takes a producer.Client or consumer.Client) in place of the broker:
//
//	b := runneltest.NewBroker(t, runneltest.Topic("orders", 3))
//	f := runneltest.NewFaults(t, b)
//	r := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Topic: "orders", Err: api.ErrNotLeader, Count: 2})
//	p := runneltest.NewProducer(t, f)
//	// ... the producer retries twice; r.Hits() == 2
//
// Rules can be added and removed at any time, also while requests are in
// flight. A request is matched when it arrives, against the rules in the
// order they were added, and the first that matches applies. That is one
// rule per request, but for Observe and ReportUnwritable rules, which let
// later rules match it too.
//
// Its methods are safe for concurrent use. Faults starts no goroutine that
// outlives a call: a held request waits on its caller's, and a rule's
// Match runs on one of its own that the call waits for (see Fault.Match).
// A Faults is made by NewFaults.
//
// It intercepts what goes through it, not what the test or the code under
// test asks of the *runnel.Broker itself: admin calls, and the helpers of
// this package handed the broker rather than the Faults. Consume and
// ConsumeAll handed the Faults read through it, as a consumer does.
// Produce handed it sends each request once, and fails the test on an
// injected error.
type Faults struct {
	t testing.TB
	b *runnel.Broker

	mu    sync.Mutex
	rules []*Rule // the rules that still apply, in the order added
	added uint64  // the rules added so far: the next Rule's seq
}

var (
	_ producer.AsyncClient  = (*Faults)(nil)
	_ producer.HealthClient = (*Faults)(nil)
	_ consumer.Client       = (*Faults)(nil)
	_ consumer.CRCChecker   = (*Faults)(nil)
	_ error                 = (*InjectedError)(nil)
)

// NewFaults returns a Faults over b, with no rules: every request goes to
// b. It fails the test (t.Fatalf) when b is nil. t is the test's, whose
// Fatalf Add calls on a bad Fault.
func NewFaults(t testing.TB, b *runnel.Broker) *Faults {
	t.Helper()
	notNil(t, b, "new faults")
	return &Faults{t: t, b: b}
}

// Add adds a rule that does what fault says to the requests it matches,
// and returns it.
//
// It fails the test (the Fatalf of NewFaults' t, so call it from that
// test's goroutine) on a Fault that makes no sense:
//
//   - an Op or Action that is none of those above;
//   - an Action for another Op: FailPartitions is for OpFetch only;
//     LoseResponse and FailAck for OpProduce only; ReportUnwritable for
//     OpUnwritablePartitions only;
//   - a nil Err (or one with HoldRequest, Observe or ReportUnwritable);
//   - a Count of 0 or below Unlimited;
//   - a negative Skip or partition;
//   - a Topic for OpInitProducerID;
//   - Partitions for it, OpPartitions or OpUnwritablePartitions (but with
//     ReportUnwritable, which needs them).
func (f *Faults) Add(fault Fault) *Rule {
	f.t.Helper()
	if err := fault.check(); err != nil {
		f.t.Fatalf("runneltest: add fault %+v: %v", fault, err)
	}
	fault.Partitions = slices.Clone(fault.Partitions)
	r := &Rule{f: f, fault: fault, left: fault.Count, skip: fault.Skip, hit: make(chan struct{}), release: make(chan struct{})}
	f.mu.Lock()
	r.seq = f.added
	f.added++
	f.rules = append(f.rules, r)
	f.mu.Unlock()
	return r
}

func (fault *Fault) check() error {
	switch op := fault.Op; {
	case op < OpProduce || op > OpUnwritablePartitions:
		return fmt.Errorf("unknown Op %d", uint8(op))
	case fault.Action > ReportUnwritable:
		return fmt.Errorf("unknown Action %d", uint8(fault.Action))
	case fault.Action == FailPartitions && op != OpFetch:
		return fmt.Errorf("FailPartitions applies to OpFetch only, not %s", op)
	case (fault.Action == LoseResponse || fault.Action == FailAck) && op != OpProduce:
		return fmt.Errorf("%s applies to OpProduce only, not %s", fault.Action, op)
	case fault.Action == ReportUnwritable && op != OpUnwritablePartitions:
		return fmt.Errorf("ReportUnwritable applies to OpUnwritablePartitions only, not %s", op)
	case fault.Action == ReportUnwritable && len(fault.Partitions) == 0:
		return errors.New("ReportUnwritable needs the Partitions it reports")
	case fault.takesNoErr() && fault.Err != nil:
		return fmt.Errorf("%s takes no Err", fault.Action)
	case !fault.takesNoErr() && fault.Err == nil:
		return fmt.Errorf("%s needs an Err", fault.Action)
	case fault.Count < Unlimited:
		return fmt.Errorf("negative Count %d (Unlimited, -1, for no limit)", fault.Count)
	case fault.Skip < 0:
		return fmt.Errorf("negative Skip %d", fault.Skip)
	case op == OpInitProducerID && fault.Topic != "":
		return fmt.Errorf("%s names no topic", op)
	case (op == OpInitProducerID || op == OpPartitions || op == OpUnwritablePartitions) &&
		fault.Partitions != nil && fault.Action != ReportUnwritable:
		return fmt.Errorf("%s names no partition", op)
	}
	for _, p := range fault.Partitions {
		if p < 0 {
			return fmt.Errorf("partition %d is negative", p)
		}
	}
	if fault.Count == 0 {
		return errors.New("a Count of 0: say how many requests, at least 1, or Unlimited (kfake's Fault takes 0 for one: that is Count 1 here)")
	}
	return nil
}

// takesNoErr reports whether the Fault's Action lets requests go on, and
// so has no error to fail them with.
func (fault *Fault) takesNoErr() bool {
	switch fault.Action {
	case HoldRequest, Observe, ReportUnwritable:
		return true
	}
	return false
}

// Rule is a Fault added to a Faults: it applies until its Count is
// spent or it is removed. Its methods are safe for concurrent use. A Rule
// is made by Faults.Add; a zero Rule (one not made by it) is a removed
// rule that never applied: Hits 0, Remove does nothing, and Wait for
// more than 0 hits waits for ctx.
type Rule struct {
	f     *Faults
	fault Fault
	seq   uint64 // its place among the rules of f: the order they were added

	// Guarded by f.mu.
	hits    int
	left    int           // requests it still applies to; -1: no limit
	skip    int           // matching requests still to let through
	removed bool          // Remove was called
	hit     chan struct{} // closed, and replaced, at each hit
	release chan struct{} // closed by Remove: the held requests go on
}

// Hits returns how many requests the rule has applied to so far, not
// those it let through under Skip. It counts the requests:
//
//   - failed;
//   - held (counted when the hold begins);
//   - whose answer it lost or whose acknowledgement it failed (counted
//     once the broker appended them);
//   - observed;
//   - reported to (ReportUnwritable: counted as the request arrives,
//     before the answer, which a later rule or the broker may still fail,
//     and before the producer takes it).
func (r *Rule) Hits() int {
	if r.f == nil {
		return 0 // a zero Rule
	}
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	return r.hits
}

// Wait waits until the rule has applied to n requests in all (Hits), and
// returns nil, or ctx's error if ctx ends first (a rule removed or spent
// applies to no more requests). After a HoldRequest
// rule's Wait(ctx, n) returns nil, n requests have been held, and those
// whose ctx has not ended are still held.
func (r *Rule) Wait(ctx context.Context, n int) error {
	if r.f == nil { // a zero Rule: no hits, ever
		if n <= 0 {
			return nil
		}
		<-ctx.Done()
		return ctx.Err()
	}
	for {
		r.f.mu.Lock()
		hits, hit := r.hits, r.hit
		r.f.mu.Unlock()
		if hits >= n {
			return nil
		}
		select {
		case <-hit:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Remove takes the rule out: it applies to no request from then on, and
// the requests it holds go on to the broker. Hits still answers. Calling
// it again does nothing.
func (r *Rule) Remove() {
	f := r.f
	if f == nil {
		return // a zero Rule
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.removed {
		return
	}
	r.removed = true
	close(r.release)
	f.dropLocked(r)
}

// hitLocked counts a request the rule applied to, waking Wait.
func (r *Rule) hitLocked() {
	r.hits++
	close(r.hit)
	r.hit = make(chan struct{})
}

// applied counts the request a LoseResponse or FailAck rule was
// reserved for (see take): the broker appended it.
func (r *Rule) applied() {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	r.hitLocked()
}

// refund gives back the Count a LoseResponse or FailAck rule was
// reserved with (see take) when the broker refused the request: the rule
// did not apply. A rule that was spent by the reservation and not removed
// since applies again, in its place among the rules.
func (r *Rule) refund() {
	f := r.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.fault.Count == Unlimited {
		return
	}
	r.left++
	if r.left == 1 && !r.removed {
		i := slices.IndexFunc(f.rules, func(o *Rule) bool { return o.seq > r.seq })
		if i < 0 {
			i = len(f.rules)
		}
		f.rules = slices.Insert(f.rules, i, r)
	}
}

func (f *Faults) dropLocked(r *Rule) {
	if i := slices.Index(f.rules, r); i >= 0 {
		f.rules = slices.Delete(f.rules, i, i+1)
	}
}

// take returns the first rule that matches the request reqs describe
// (one Request, or one per partition of a Fetch), counting the request as
// its hit, and which of reqs it matched; nil when no rule applies. A rule
// still skipping lets the request by, and an Observe or ReportUnwritable
// rule counts it and lets later rules match it; the ReportUnwritable ones
// are returned (reporters). A LoseResponse or FailAck rule is only
// reserved (its Count taken): the caller counts the hit with applied
// once the broker has appended the request, or gives the Count back with
// refund. The error is that of a Match that panicked.
//
// The rules are taken in the order they were added, and the lock is let
// go while a rule's Match runs: a rule added meanwhile, after the one
// being matched, is matched next; one removed or spent meanwhile no
// longer applies.
func (f *Faults) take(reqs []Request) (_ *Rule, _ []bool, reporters []*Rule, _ error) {
	op := reqs[0].Op
	var next uint64 // the seq of the next rule to try
	for {
		f.mu.Lock()
		var r *Rule
		if i := slices.IndexFunc(f.rules, func(r *Rule) bool { return r.seq >= next && r.fault.Op == op }); i >= 0 {
			r = f.rules[i]
		}
		f.mu.Unlock()
		if r == nil {
			return nil, nil, reporters, nil
		}
		next = r.seq + 1
		matched, err := r.match(reqs)
		if err != nil {
			return nil, nil, nil, err
		}
		if matched == nil {
			continue
		}
		switch counted, ends := f.count(r); {
		case ends:
			return r, matched, reporters, nil
		case counted && r.fault.Action == ReportUnwritable:
			reporters = append(reporters, r)
		}
	}
}

// count counts a request the rule matched, and reports whether it did
// (not when the rule is removed or spent, or still skipping) and whether
// the rule ends the matching: it applies, and is not Observe nor
// ReportUnwritable.
func (f *Faults) count(r *Rule) (counted, ends bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.removed || r.left == 0 {
		return false, false
	}
	if r.skip > 0 {
		r.skip--
		return false, false
	}
	if a := r.fault.Action; a != LoseResponse && a != FailAck {
		r.hitLocked()
	}
	if r.left > 0 {
		r.left--
		if r.left == 0 {
			f.dropLocked(r) // spent; Remove still releases what it holds
		}
	}
	return true, r.fault.Action != Observe && r.fault.Action != ReportUnwritable
}

// match returns which of reqs the rule matches (its Topic, Partitions and
// Match), or nil when it matches none; the error is that of a Match that
// panicked, which it reports to the test. It must be called without f.mu.
func (r *Rule) match(reqs []Request) (matched []bool, err error) {
	for i, req := range reqs {
		if !r.matches(req.Topic, req.Partition) {
			continue
		}
		if r.fault.Match != nil {
			if r.gone() {
				// Removed or spent since the rule was taken, maybe by
				// its Match of a partition before this one: it no
				// longer applies (count would not count it), and its
				// Match is not called again.
				return nil, nil
			}
			ok, err := r.callMatch(req)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
		}
		if matched == nil {
			matched = make([]bool, len(reqs))
		}
		matched[i] = true
	}
	return matched, nil
}

// gone reports whether the rule was removed or spent.
func (r *Rule) gone() bool {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	return r.removed || r.left == 0
}

// callMatch calls the rule's Match, turning a panic into an error that
// fails the request, and the test. Match runs on a goroutine of its own,
// which callMatch waits for: a Match that ends its goroutine (t.FailNow,
// require's assertions, runtime.Goexit) ends that one, not the client's,
// and fails the request as a panic does, where it would otherwise leave
// the producer or consumer waiting forever on a goroutine that is gone.
func (r *Rule) callMatch(req Request) (bool, error) {
	var (
		ok, returned bool
		panicked     any
		stack        []byte
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if v := recover(); v != nil { // a panic(nil) too: *runtime.PanicNilError
				panicked, stack = v, debug.Stack()
			}
		}()
		ok = r.fault.Match(req)
		returned = true
	}()
	<-done
	var err error
	switch {
	case returned:
		return ok, nil
	case panicked != nil:
		err = fmt.Errorf("%w on %s: %v", ErrMatchPanicked, describe(req.Op, req.Topic, req.Partition), panicked)
	default:
		err = fmt.Errorf("%w on %s: it ended its goroutine (t.FailNow, a require assertion or runtime.Goexit)", ErrMatchPanicked, describe(req.Op, req.Topic, req.Partition))
	}
	r.f.t.Errorf("runneltest: the Match of Fault{Op: %s, Topic: %q, Partitions: %v, Action: %s}: %v\n%s",
		r.fault.Op, r.fault.Topic, r.fault.Partitions, r.fault.Action, err, stack)
	return false, err
}

// describe names a request: "produce orders-0", "partitions orders",
// "init producer id".
func describe(op Op, topic string, partition int32) string {
	switch {
	case topic == "":
		return op.String()
	case partition < 0:
		return fmt.Sprintf("%s %s", op, topic)
	}
	return fmt.Sprintf("%s %s-%d", op, topic, partition)
}

// matches reports whether the rule's topic and partitions take topic and
// partition (-1: the request names none). A ReportUnwritable rule's
// partitions are what it reports, not what it matches.
func (r *Rule) matches(topic string, partition int32) bool {
	if r.fault.Topic != "" && r.fault.Topic != topic {
		return false
	}
	return len(r.fault.Partitions) == 0 || r.fault.Action == ReportUnwritable ||
		slices.Contains(r.fault.Partitions, partition)
}

// err is the error the rule fails a request with.
func (r *Rule) err(topic string, partition int32) error {
	return &InjectedError{Op: r.fault.Op, Topic: topic, Partition: partition, Err: r.fault.Err}
}

// hold waits until the rule is removed (nil) or ctx ends (ctx's error).
func (r *Rule) hold(ctx context.Context) error {
	select {
	case <-r.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// refusedProduce is a produce request's response when it fails, as the
// broker's.
var refusedProduce = api.ProduceResponse{BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1}

// takeProduce returns the rule that applies to a produce request, if
// any, or the error of a Match that panicked.
func (f *Faults) takeProduce(req *api.ProduceRequest) (*Rule, error) {
	if req == nil {
		return nil, nil // the broker's error
	}
	r, _, _, err := f.take([]Request{{Op: OpProduce, Topic: req.Topic, Partition: req.Partition, Produce: req}})
	return r, err
}

// Produce is b.Produce but for the requests a rule of OpProduce matches.
// Errors: b.Produce's; an *InjectedError; ctx's error for a held request;
// one matching ErrMatchPanicked (see Fault.Match).
func (f *Faults) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	r, err := f.takeProduce(req)
	if err != nil {
		return refusedProduce, err
	}
	if r == nil {
		return f.b.Produce(ctx, req)
	}
	switch r.fault.Action {
	case FailRequest:
		return refusedProduce, r.err(req.Topic, req.Partition)
	case HoldRequest:
		if err := r.hold(ctx); err != nil {
			return refusedProduce, err
		}
		return f.b.Produce(ctx, req)
	}
	// LoseResponse, FailAck: appended and acknowledged, then the answer is
	// lost; the broker's refusal is its own.
	if resp, err := f.b.Produce(ctx, req); err != nil {
		r.refund()
		return resp, err
	}
	r.applied()
	return refusedProduce, r.err(req.Topic, req.Partition)
}

// ProduceAsync is b.ProduceAsync but for the requests a rule of OpProduce
// matches. Errors: b.ProduceAsync's; an *InjectedError (also from the
// Ack's Wait, under FailAck); ctx's error for a held request;
// one matching ErrMatchPanicked (see Fault.Match).
func (f *Faults) ProduceAsync(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, api.Ack, error) {
	r, err := f.takeProduce(req)
	if err != nil {
		return refusedProduce, nil, err
	}
	if r == nil {
		return f.b.ProduceAsync(ctx, req)
	}
	switch r.fault.Action {
	case FailRequest:
		return refusedProduce, nil, r.err(req.Topic, req.Partition)
	case HoldRequest:
		if err := r.hold(ctx); err != nil {
			return refusedProduce, nil, err
		}
		return f.b.ProduceAsync(ctx, req)
	}
	resp, ack, err := f.b.ProduceAsync(ctx, req)
	if err != nil {
		r.refund() // the broker's refusal is its own
		return resp, ack, err
	}
	r.applied()
	if r.fault.Action == FailAck {
		return resp, &failedAck{ack: ack, err: r.err(req.Topic, req.Partition)}, nil
	}
	// LoseResponse. The broker acknowledges it before the answer is lost,
	// as Produce's: unacknowledged, the records would stay above the high
	// watermark until a later fsync (see runnel.Broker.ProduceAsync). What
	// the acknowledgement answers is lost with the rest of the answer.
	if ack != nil {
		if err := ack.Wait(ctx); err != nil {
			return refusedProduce, nil, fmt.Errorf("%w (the acknowledgement, lost too, failed: %v)", r.err(req.Topic, req.Partition), err)
		}
	}
	return refusedProduce, nil, r.err(req.Topic, req.Partition)
}

// failedAck is the acknowledgement of a request a FailAck rule matched:
// the broker's, then the rule's error.
type failedAck struct {
	ack api.Ack // nil when the broker had none to wait for
	err error
}

func (a *failedAck) Wait(ctx context.Context) error {
	if a.ack != nil {
		if err := a.ack.Wait(ctx); err != nil {
			return err
		}
	}
	return a.err
}

// Fetch is b.Fetch but for the requests a rule of OpFetch matches: with
// FailRequest, the call fails; with FailPartitions, the partitions the
// rule matches are answered with its error and the others are fetched
// from b with no wait. It does not modify req. Errors: b.Fetch's; an
// *InjectedError; ctx's error for a held request;
// one matching ErrMatchPanicked (see Fault.Match).
func (f *Faults) Fetch(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
	if req == nil {
		return f.b.Fetch(ctx, req)
	}
	reqs := make([]Request, len(req.Partitions))
	for i, fp := range req.Partitions {
		reqs[i] = Request{Op: OpFetch, Topic: fp.Topic, Partition: fp.Partition, Fetch: req, FetchPartition: &req.Partitions[i]}
	}
	if len(reqs) == 0 {
		return f.b.Fetch(ctx, req) // matches no rule: the broker's answer
	}
	r, matched, _, err := f.take(reqs)
	if err != nil {
		return api.FetchResponse{}, err
	}
	if r == nil {
		return f.b.Fetch(ctx, req)
	}
	switch r.fault.Action {
	case FailRequest:
		i := slices.Index(matched, true)
		return api.FetchResponse{}, r.err(req.Partitions[i].Topic, req.Partitions[i].Partition)
	case HoldRequest:
		if err := r.hold(ctx); err != nil {
			return api.FetchResponse{}, err
		}
		return f.b.Fetch(ctx, req)
	}
	// FailPartitions.
	rest := &api.FetchRequest{MinBytes: req.MinBytes, MaxBytes: req.MaxBytes} // MaxWait 0: a partition failed
	for i, fp := range req.Partitions {
		if !matched[i] {
			rest.Partitions = append(rest.Partitions, fp)
		}
	}
	var got api.FetchResponse
	if len(rest.Partitions) > 0 {
		var err error
		if got, err = f.b.Fetch(ctx, rest); err != nil {
			return got, err
		}
	}
	resp := api.FetchResponse{Partitions: make([]api.FetchedPartition, len(req.Partitions))}
	j := 0
	for i, fp := range req.Partitions {
		if matched[i] {
			resp.Partitions[i] = f.failedPartition(ctx, fp, r.err(fp.Topic, fp.Partition))
			continue
		}
		resp.Partitions[i] = got.Partitions[j] // the broker answers in the request's order
		j++
	}
	return resp, nil
}

// failedPartition is the answer for a partition of a fetch that a
// FailPartitions rule fails with err, with the offsets a broker gives
// with a partition's error (see api.FetchedPartition): -1 for both when
// err says the partition is not there, or the broker does not have it
// (nor, for a fetch that names a topic ID, a topic of that ID: it was
// deleted, and maybe created again); else the partition's own, and its
// topic's ID, as the broker reports them now.
func (f *Faults) failedPartition(ctx context.Context, fp api.FetchPartition, err error) api.FetchedPartition {
	out := api.FetchedPartition{Topic: fp.Topic, Partition: fp.Partition, HighWatermark: -1, LogStartOffset: -1, Err: err}
	if errors.Is(err, api.ErrUnknownTopicOrPartition) || errors.Is(err, api.ErrUnknownTopicID) {
		return out
	}
	start, serr := f.b.ListOffset(ctx, fp.Topic, fp.Partition, api.Earliest)
	end, eerr := f.b.ListOffset(ctx, fp.Topic, fp.Partition, api.Latest)
	if serr != nil || eerr != nil || start.TopicID != end.TopicID {
		return out // no such partition (or not one partition of one topic)
	}
	if !fp.TopicID.IsZero() && fp.TopicID != end.TopicID {
		return out // not the topic the fetch names (the broker answers ErrUnknownTopicID)
	}
	out.TopicID, out.HighWatermark, out.LogStartOffset = end.TopicID, end.Offset, start.Offset
	return out
}

// ListOffset is b.ListOffset but for the requests a rule of OpListOffset
// matches. Errors: b.ListOffset's; an *InjectedError; ctx's error for a
// held request; one matching ErrMatchPanicked (see Fault.Match).
func (f *Faults) ListOffset(ctx context.Context, topic string, partition int32, timestamp int64) (api.ListedOffset, error) {
	r, _, _, err := f.take([]Request{{Op: OpListOffset, Topic: topic, Partition: partition, Timestamp: timestamp}})
	if err != nil {
		return api.ListedOffset{}, err
	}
	if r != nil {
		if err := r.apply(ctx, topic, partition); err != nil {
			return api.ListedOffset{}, err
		}
	}
	return f.b.ListOffset(ctx, topic, partition, timestamp)
}

// Partitions is b.Partitions but for the requests a rule of OpPartitions
// matches. Errors: b.Partitions'; an *InjectedError; ctx's error for a
// held request; one matching ErrMatchPanicked (see Fault.Match).
func (f *Faults) Partitions(ctx context.Context, topic string) (int, error) {
	r, _, _, err := f.take([]Request{{Op: OpPartitions, Topic: topic, Partition: -1}})
	if err != nil {
		return 0, err
	}
	if r != nil {
		if err := r.apply(ctx, topic, -1); err != nil {
			return 0, err
		}
	}
	return f.b.Partitions(ctx, topic)
}

// UnwritablePartitions is b.UnwritablePartitions but for the requests a
// rule of OpUnwritablePartitions matches:
//
//   - the partitions of the ReportUnwritable rules are added to the
//     broker's answer (sorted, each once; see ReportUnwritable);
//   - a FailRequest or HoldRequest rule fails or holds the call;
//   - an Observe rule counts it.
//
// Errors: b.UnwritablePartitions'; an *InjectedError; ctx's error for a
// held request; one matching ErrMatchPanicked (see Fault.Match).
func (f *Faults) UnwritablePartitions(ctx context.Context, topic string) ([]int32, error) {
	r, _, reporters, err := f.take([]Request{{Op: OpUnwritablePartitions, Topic: topic, Partition: -1}})
	if err != nil {
		return nil, err
	}
	if r != nil {
		if err := r.apply(ctx, topic, -1); err != nil {
			return nil, err
		}
	}
	down, err := f.b.UnwritablePartitions(ctx, topic)
	if err != nil {
		return down, err
	}
	f.mu.Lock()
	for _, rep := range reporters {
		if !rep.removed { // not removed while the request was held
			down = append(down, rep.fault.Partitions...)
		}
	}
	f.mu.Unlock()
	slices.Sort(down)
	return slices.Compact(down), nil
}

// InitProducerID is b.InitProducerID but for the requests a rule of
// OpInitProducerID matches. Errors: b.InitProducerID's; an
// *InjectedError; ctx's error for a held request;
// one matching ErrMatchPanicked (see Fault.Match).
func (f *Faults) InitProducerID(ctx context.Context) (int64, int16, error) {
	r, _, _, err := f.take([]Request{{Op: OpInitProducerID, Partition: -1}})
	if err != nil {
		return 0, 0, err
	}
	if r != nil {
		if err := r.apply(ctx, "", -1); err != nil {
			return 0, 0, err
		}
	}
	return f.b.InitProducerID(ctx)
}

// apply is what a FailRequest or HoldRequest rule does to a request that
// names at most one partition: nil when it may go on to the broker.
func (r *Rule) apply(ctx context.Context, topic string, partition int32) error {
	if r.fault.Action == HoldRequest {
		return r.hold(ctx)
	}
	return r.err(topic, partition)
}

// ChecksCRCs reports that the broker checked the batches Fetch returns,
// which Faults passes on as they are (see runnel.Broker.ChecksCRCs).
func (f *Faults) ChecksCRCs() bool { return f.b.ChecksCRCs() }
