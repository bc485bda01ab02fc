package producer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
)

// countClient answers every request at once; its topics have n
// partitions (n may change between look-ups).
type countClient struct{ n atomic.Int64 }

// stickyProducer is a producer to topic t of n partitions (a countClient,
// which only counts them) whose batches linger a minute and whose count
// is not looked up again within the test, closed at the test's end.
func stickyProducer(t *testing.T, n int64, opts ...Opt) *Producer {
	t.Helper()
	c := &countClient{}
	c.n.Store(n)
	p, err := New(c, append([]Opt{DefaultTopic("t"), Linger(time.Minute), MetadataMaxAge(time.Hour)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func (c *countClient) Partitions(context.Context, string) (int, error) {
	return int(c.n.Load()), nil
}
func (*countClient) InitProducerID(context.Context) (int64, int16, error) { return 1, 0, nil }
func (*countClient) Produce(context.Context, *api.ProduceRequest) (api.ProduceResponse, error) {
	return api.ProduceResponse{BaseOffset: 0, LogAppendTime: -1}, nil
}

// scriptedSticky is a KIP-480 partitioner: Partition answers first,
// but right after OnNewBatch, when it answers again(n) (which may
// panic); OnNewBatch runs onNew (which may panic, or close the
// producer).
type scriptedSticky struct {
	first int32
	again func(n int) int32
	onNew func()
	told  bool
}

func (s *scriptedSticky) ForTopic(string) TopicPartitioner { return s }

func (s *scriptedSticky) Partition(_ *record.Record, n int) int32 {
	if s.told {
		s.told = false
		return s.again(n)
	}
	return s.first
}

func (s *scriptedSticky) OnNewBatch(int32) {
	s.told = true
	if s.onNew != nil {
		s.onNew()
	}
}

// A record that addOrAbort turned back counts on its partition
// (placing) only while it is placed again: whatever the partitioner
// does then — choose the same partition or another, panic in OnNewBatch
// or in Partition, choose out of range, past the count (which the
// producer then looks up, and places the record again), Close the
// producer, or the record's ctx ending —, every partition's count is
// back at 0 once the records are done. One left above 0 would have the
// partition's goroutine take every request it appends for one with
// records behind it (see delivered); one below 0, a record being placed
// for none.
func TestPlacingEndsOnEveryPath(t *testing.T) {
	same := func(int) int32 { return 0 }
	other := func(int) int32 { return 1 }
	var p *Producer
	var cancel context.CancelFunc
	cases := []struct {
		name    string
		again   func(n int) int32
		onNew   func()
		grow    bool // the client's count is 3 once the producer knows 2
		want    error
		panics  bool
		closing bool
	}{
		{name: "same partition", again: same},
		{name: "other partition", again: other},
		{name: "OnNewBatch panics", again: same, onNew: func() { panic("onNew") }, panics: true},
		{name: "Partition panics", again: func(int) int32 { panic("again") }, panics: true},
		{name: "negative choice", again: func(int) int32 { return -1 }, want: ErrInvalidPartition},
		{name: "past the count", again: func(n int) int32 { return int32(n) }, want: ErrInvalidPartition},
		{name: "past the count, grown", again: func(int) int32 { return 2 }, grow: true},
		{name: "Close in OnNewBatch", again: same, onNew: func() { p.Close() }, want: ErrClosed, closing: true},
		{name: "Close in OnNewBatch, other partition", again: other, onNew: func() { p.Close() }, want: ErrClosed, closing: true},
		{name: "ctx ends in OnNewBatch", again: same, onNew: func() { cancel() }, want: context.Canceled},
	}
	for _, tc := range cases {
		for _, isSync := range []bool{false, true} {
			name := tc.name
			if isSync {
				name += ", ProduceSync"
			}
			t.Run(name, func(t *testing.T) {
				c := &countClient{}
				c.n.Store(2)
				sp := &scriptedSticky{again: same}
				// One record a batch: the second record finds the first's
				// batch full, and queues it as it is turned back. A
				// ProduceSync does not wait for a linger.
				linger := time.Minute
				if isSync {
					linger = 0
				}
				var err error
				p, err = New(c, DefaultTopic("t"), RecordPartitioner(sp), Linger(linger),
					BatchMaxBytes(record.HeaderSize+150), MetadataMaxAge(time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close()
				// The topic's count is looked up before the scripted
				// records.
				warm := make(chan error, 1)
				p.Produce(context.Background(), &record.Record{}, func(_ *record.Record, err error) { warm <- err })
				if err := p.Flush(context.Background()); err != nil {
					t.Fatal(err)
				}
				if err := testkit.Await(t, warm, "the warm-up record's promise"); err != nil {
					t.Fatal(err)
				}
				top := p.knownTopic("t") // a Close lets go of it
				sp.again, sp.onNew = tc.again, tc.onNew
				if tc.grow {
					c.n.Store(3)
				}
				var wg sync.WaitGroup
				var mu sync.Mutex
				var errs []error
				promise := func(_ *record.Record, err error) {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					wg.Done()
				}
				panicked := 0
				for i := range 3 {
					var ctx context.Context
					ctx, cancel = context.WithCancel(context.Background())
					func() {
						defer func() {
							if recover() != nil {
								panicked++
								if !isSync {
									wg.Done() // its promise does not run
								}
							}
						}()
						r := &record.Record{Value: make([]byte, 100)}
						if isSync {
							err := p.ProduceSync(ctx, r)
							mu.Lock()
							errs = append(errs, err)
							mu.Unlock()
							return
						}
						wg.Add(1)
						if i == 2 {
							p.TryProduce(ctx, r, promise)
						} else {
							p.Produce(ctx, r, promise)
						}
					}()
					if isSync && i == 0 {
						p.Flush(context.Background()) // the next record opens a batch
					}
				}
				if tc.panics != (panicked == 3) || panicked%3 != 0 {
					t.Fatalf("%d of 3 Produce calls panicked", panicked)
				}
				ctx, stop := context.WithTimeout(context.Background(), time.Minute)
				defer stop()
				if ferr := p.Flush(ctx); ferr != nil && !tc.closing {
					t.Fatal(ferr)
				}
				wg.Wait()
				for _, err := range errs {
					switch {
					case tc.want == nil && err != nil:
						t.Errorf("a record failed: %v", err)
					case tc.want != nil && !errors.Is(err, tc.want) && !(tc.closing && err == nil):
						t.Errorf("a record failed with %v, want %v", err, tc.want)
					}
				}
				for _, pp := range *top.all.Load() {
					pp.mu.Lock()
					n := pp.placing
					pp.mu.Unlock()
					if n != 0 {
						t.Errorf("partition %d: placing %d once every record is done", pp.id, n)
					}
				}
			})
		}
	}
}

// Once the producer learns that the topic has fewer partitions, the next
// record without a key goes to one of those it has, though the sticky
// partition, past the count now, has a batch open: that batch is no
// longer one that records without a key join without the topic's lock
// (unhotLocked).
func TestStickyLeavesAPartitionGone(t *testing.T) {
	for {
		p := stickyProducer(t, 4)
		ctx := context.Background()
		r1, r2, r3 := &record.Record{Value: []byte("a")}, &record.Record{Value: []byte("b")}, &record.Record{Value: []byte("c")}
		p.Produce(ctx, r1, nil)
		if r1.Partition == 0 {
			continue // no count leaves it out but 0: draw again
		}
		p.Produce(ctx, r2, nil) // joins r1's batch
		if r2.Partition != r1.Partition {
			t.Fatalf("r2 went to %d, r1 to %d: the sticky partition moved", r2.Partition, r1.Partition)
		}
		tp := p.knownTopic("t")
		if n, ok := tp.follow(int(r1.Partition), tp.looks.Add(1)); !ok || n != int(r1.Partition) {
			t.Fatalf("follow(%d): %d, %v", r1.Partition, n, ok)
		}
		p.Produce(ctx, r3, nil)
		if r3.Partition >= r1.Partition {
			t.Fatalf("a record without a key went to partition %d of a topic of %d", r3.Partition, r1.Partition)
		}
		return
	}
}

// KIP-480 under concurrent Produce calls, records with and without keys
// mixed, small batches: at every moment (the topic's lock and every
// partition's held, as no record is added meanwhile) the only open batch
// that holds a record without a key is the sticky partition's. Records
// without a key join the sticky partition's batch without the topic's
// lock (see markHotLocked): one that joined another partition's batch
// (one a keyed record opened after the sticky partition moved) would
// show here.
func TestStickyBatchUnderConcurrentProduce(t *testing.T) {
	const goroutines, each, n = 4, 1500, 3
	p := stickyProducer(t, n, BatchMaxBytes(record.HeaderSize+200), MaxBufferedRecords(1<<20), MaxBufferedBytes(1<<30))
	ctx := context.Background()
	if err := p.ProduceSync(ctx, &record.Record{}); err != nil {
		t.Fatal(err)
	}
	tp := p.knownTopic("t")
	var bad atomic.Value // the first violation, a string
	check := func() {
		tp.mu.Lock()
		defer tp.mu.Unlock()
		parts := *tp.parts.Load()
		for _, pp := range parts {
			pp.mu.Lock()
			defer pp.mu.Unlock()
		}
		for _, pp := range parts {
			b := pp.cur
			if b == nil || !slices.ContainsFunc(b.recs, func(pr pending) bool { return pr.r.Key == nil }) {
				continue
			}
			if on := tp.sticky.on; on != pp.id {
				bad.CompareAndSwap(nil, fmt.Sprintf("partition %d's open batch holds a record without a key; the sticky partition is %d", pp.id, on))
			}
		}
	}
	stop := make(chan struct{})
	checked := make(chan struct{})
	go func() {
		defer close(checked)
		for {
			select {
			case <-stop:
				return
			default:
			}
			check()
			runtime.Gosched()
		}
	}()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range each {
				r := &record.Record{Value: make([]byte, 10+rng.IntN(50))}
				if rng.IntN(3) == 0 {
					r.Key = []byte{byte(rng.IntN(16))}
				}
				p.Produce(ctx, r, nil)
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-checked
	check()
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if v := bad.Load(); v != nil {
		t.Fatal(v)
	}
}

// A record without a key joins the sticky partition's open batch marked
// hot without the topic's lock (see markHotLocked): it is buffered, on
// the sticky partition, while something else holds that lock.
func TestHotBatchTakesARecordWithoutTheTopicsLock(t *testing.T) {
	p := stickyProducer(t, 3)
	ctx := healthCtx(t)
	r1 := &record.Record{Value: []byte("a")}
	p.Produce(ctx, r1, nil) // marks its batch hot, and starts the partition's goroutine
	tp := p.knownTopic("t")
	r2 := &record.Record{Value: []byte("b")}
	produced := make(chan struct{})
	func() {
		tp.mu.Lock()
		defer tp.mu.Unlock() // also should the wait fail: Produce then goes on
		go func() {
			defer close(produced)
			p.Produce(ctx, r2, nil)
		}()
		testkit.Await(t, produced, "a Produce of a record without a key while the topic's lock is held")
	}()
	if r2.Partition != r1.Partition {
		t.Fatalf("r2 went to %d, r1 to %d", r2.Partition, r1.Partition)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// A record without a key that read the hot partition (topicState.hot)
// before the sticky partition stopped being one its records may go to,
// and takes that partition's lock only after: its batch is no longer
// marked, and addHot declines it (the record is then placed under the
// topic's lock). unhotLocked unmarks the batch, not only the topic's
// hot partition, for such a record already past its read of it.
func TestHotBatchUnmarkedForARecordUnderWay(t *testing.T) {
	for _, change := range []string{"partition count", "partitions that take appends", "health answer"} {
		t.Run(change, func(t *testing.T) {
			for {
				p := stickyProducer(t, 2)
				ctx := healthCtx(t)
				r1 := &record.Record{Value: []byte("a")}
				p.Produce(ctx, r1, nil)
				if change == "partition count" && r1.Partition == 0 {
					continue // no count leaves it out but 0: draw again
				}
				tp := p.knownTopic("t")
				pp := tp.hot.Load() // as a record on the hot path reads it
				if pp == nil || pp.id != r1.Partition {
					t.Fatalf("the hot partition is %v, the sticky one %d", pp, r1.Partition)
				}
				switch change {
				case "partition count":
					if n, ok := tp.follow(int(r1.Partition), tp.looks.Add(1)); !ok || n != int(r1.Partition) {
						t.Fatalf("follow(%d): %d, %v", r1.Partition, n, ok)
					}
				case "partitions that take appends":
					tp.markDown(r1.Partition)
				case "health answer":
					tp.setDown([]int32{r1.Partition}, tp.healthLooks.Add(1))
				}
				r2 := &record.Record{Topic: "t", Value: []byte("b"), Timestamp: time.Now()}
				body := record.BodySize(nil, r2.Value, nil)
				pr := pending{r: r2, promise: noPromise, size: int32(record.SizeWithDeltas(body, 0, 0)), body: int32(body)}
				if pp.addHot(&pr, nil, nil, false, nil) {
					t.Fatalf("a record that read the hot partition before the topic's %s changed joined its batch after", change)
				}
				if err := p.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				return
			}
		})
	}
}

// A health answer that leaves writable nil (see storeDownLocked) leaves
// the hot batch marked: one that says no partition refuses appends, as
// every refresh's does in a healthy cluster (MetadataMaxAge), and one
// that says they all do, when records go to any (the sticky partition
// among all, as before). A record that read the hot partition before it
// still joins its batch without the topic's lock, where the topic's lock
// would put it too.
func TestHotBatchKeptByAnAnswerThatLeavesWritableNil(t *testing.T) {
	p := stickyProducer(t, 3)
	ctx := healthCtx(t)
	r1 := &record.Record{Value: []byte("a")}
	p.Produce(ctx, r1, nil)
	tp := p.knownTopic("t")
	pp := tp.hot.Load()
	if pp == nil || pp.id != r1.Partition {
		t.Fatalf("the hot partition is %v, the sticky one %d", pp, r1.Partition)
	}
	for _, answer := range [][]int32{nil, {0, 1, 2}, nil} {
		tp.setDown(answer, tp.healthLooks.Add(1))
		if got := downOf(p, "t"); !slices.Equal(got, answer) {
			t.Fatalf("answer %v: down is %v", answer, got)
		}
		if tp.hot.Load() != pp {
			t.Fatalf("answer %v: the hot partition is %v, was %d", answer, tp.hot.Load(), pp.id)
		}
		r := &record.Record{Topic: "t", Value: []byte("b"), Timestamp: time.Now()}
		body := record.BodySize(nil, r.Value, nil)
		pr := pending{r: r, promise: noPromise, size: int32(record.SizeWithDeltas(body, 0, 0)), body: int32(body)}
		if !p.tryReserve(int64(pr.size)) { // its space, as produce takes it
			t.Fatal("no buffer space")
		}
		if !pp.addHot(&pr, nil, nil, false, nil) {
			t.Fatalf("answer %v: a record on the hot path was declined by the sticky partition's batch", answer)
		}
		if r.Partition != r1.Partition {
			t.Fatalf("answer %v: the record went to %d, the sticky partition being %d", answer, r.Partition, r1.Partition)
		}
		r3 := &record.Record{Value: []byte("c")}
		p.Produce(ctx, r3, nil) // under the topic's lock, or not: where the lock puts it
		if r3.Partition != r1.Partition {
			t.Fatalf("answer %v: a record without a key went to %d, the sticky partition being %d", answer, r3.Partition, r1.Partition)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// closingCtx is a ctx that may end and that, asked for its error (as
// produce asks once it found the producer open), closes the producer
// without Close: as a Close that came right after produce's own look.
type closingCtx struct {
	context.Context
	p *Producer
}

func (c closingCtx) Err() error {
	c.p.closed.Store(true)
	return c.Context.Err()
}

// awaitHotLinger waits until the goroutine of topic t's hot partition
// waits for its open batch's linger (parked), after which it stays so
// (Linger a minute) until woken: a producer closed without Close
// (closingCtx) leaves the batch open. Its first pass, under load later
// than the producer closed so, failed the batch.
func awaitHotLinger(t *testing.T, p *Producer) {
	t.Helper()
	pp := p.knownTopic("t").hot.Load()
	if pp == nil {
		t.Fatal("no hot partition")
	}
	waitFor(t, func() bool {
		pp.mu.Lock()
		defer pp.mu.Unlock()
		return pp.parked && pp.cur != nil
	})
}

// A record that the hot path stamped and addHot then declined (here the
// producer closed as it came) is given back as it was once it fails
// under the topic's lock: no topic set from DefaultTopic, its zero
// Timestamp with its Location; or its own Timestamp with a part below
// the millisecond, which the hot path truncated, with its nanoseconds
// and monotonic reading.
func TestHotPathDeclinedRecordGivenBack(t *testing.T) {
	ctx := healthCtx(t)
	mono := time.Now() // with a monotonic reading
	mono = mono.Add(time.Duration(123456 - mono.Nanosecond()%int(time.Millisecond)))
	for _, ts := range []time.Time{time.Time{}.In(time.FixedZone("UTC+1", 3600)), mono} {
		p := stickyProducer(t, 3)
		p.Produce(ctx, &record.Record{Value: []byte("a")}, nil) // marks its batch hot, and starts the partition's goroutine
		awaitHotLinger(t, p)
		r := &record.Record{Value: []byte("b"), Timestamp: ts}
		var got error
		p.Produce(closingCtx{ctx, p}, r, func(_ *record.Record, err error) { got = err })
		if !errors.Is(got, ErrClosed) {
			t.Fatalf("the record's promise got %v, not ErrClosed", got)
		}
		if r.Topic != "" || r.Timestamp != ts || r.Timestamp.Location() != ts.Location() {
			t.Fatalf("the failed record was not given back as it was: topic %q, timestamp %v, was %v", r.Topic, r.Timestamp, ts)
		}
		if n := p.BufferedRecords(); n != 1 {
			t.Fatalf("%d records buffered, want the first alone", n)
		}
	}
	// Nor did the declined record join the batch: Close fails the batch,
	// the first record's alone, and the second's promise ran once.
	calls := 0
	p2 := stickyProducer(t, 3)
	p2.Produce(ctx, &record.Record{Value: []byte("a")}, nil)
	awaitHotLinger(t, p2)
	p2.Produce(closingCtx{ctx, p2}, &record.Record{Value: []byte("b")}, func(*record.Record, error) { calls++ })
	p2.Close()
	if calls != 1 {
		t.Fatalf("the declined record's promise ran %d times, want once: it joined the batch all the same", calls)
	}
}

// sameString is == of another length are another string
// (a topic's name and a record's Topic sliced from it), and other bytes
// of the same content the same string.
func TestSameString(t *testing.T) {
	name := "topic"
	other := string([]byte(name)) // other bytes
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{name, name, true},
		{name, other, true},
		{name, name[:3], false},
		{name[:3], name, false},
		{name, "tapic", false},
		{"", "", true},
		{"", name[:0], true},
	} {
		if got := sameString(tc.a, tc.b); got != tc.want {
			t.Errorf("sameString(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// A ProduceSync's record of a topic whose partition count one of its
// records before could not learn by DeliveryTimeout (failed) fails at
// once with that error (see produce), also when the topic is known and
// has a hot batch by then (another goroutine's look-up answered): it
// does not take the hot path.
func TestFailedTopicSkipsTheHotPath(t *testing.T) {
	p := stickyProducer(t, 3)
	ctx := healthCtx(t)
	p.Produce(ctx, &record.Record{Value: []byte("a")}, nil) // marks its batch hot
	if p.knownTopic("t").hot.Load() == nil {
		t.Fatal("no hot partition")
	}
	lookUp := fmt.Errorf("%w: the partition count of t not known", ErrDeliveryTimeout)
	r := &record.Record{Value: []byte("b")}
	var got error
	if p.produce(ctx, r, func(_ *record.Record, err error) { got = err }, true, map[string]error{"t": lookUp}, nil) {
		t.Fatal("a record of a topic whose look-up failed was buffered")
	}
	if !errors.Is(got, lookUp) {
		t.Fatalf("the record's promise got %v, not its topic's look-up error", got)
	}
	if r.Topic != "" || !r.Timestamp.IsZero() {
		t.Fatalf("the failed record was not given back as it was: topic %q, timestamp %v", r.Topic, r.Timestamp)
	}
	if n := p.BufferedRecords(); n != 1 {
		t.Fatalf("%d records buffered, want the first alone", n)
	}
}

// A keyed record goes to its key's partition, not to the batch marked
// hot on the sticky partition, also in a topic other than the
// producer's first, whose records place tries that batch for itself
// (tryHot): only a record without a key may join it.
func TestKeyedRecordSkipsTheHotBatchInASecondTopic(t *testing.T) {
	const n = 3
	p := stickyProducer(t, n)
	ctx := healthCtx(t)
	p.Produce(ctx, &record.Record{Topic: "t", Value: []byte("a")}, nil) // the producer's first topic
	first := &record.Record{Topic: "u", Value: []byte("a")}
	p.Produce(ctx, first, nil)
	if pp := p.knownTopic("u").hot.Load(); pp == nil || pp.id != first.Partition {
		t.Fatalf("the hot partition of u is %v, the sticky one %d", pp, first.Partition)
	}
	if p.hotTopic("u") != nil {
		t.Fatal("the test's premise: produce's hot path does not take u")
	}
	for i := 0; i < 64; i++ {
		k := []byte{byte(i)}
		r := &record.Record{Topic: "u", Key: k, Value: []byte("k")}
		p.Produce(ctx, r, nil)
		if want := KeyPartition(k, n); r.Partition != want {
			t.Fatalf("a record of key %v went to partition %d, its key's being %d (the sticky one %d)", k, r.Partition, want, first.Partition)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}
