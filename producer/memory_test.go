package producer

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"weak"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/leakcheck"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
)

// manyClient answers every request at once, from topics of n partitions,
// storing nothing: the heap a test measures is the producer's.
type manyClient struct{ n int }

func (c *manyClient) Partitions(context.Context, string) (int, error) { return c.n, nil }
func (*manyClient) InitProducerID(context.Context) (int64, int16, error) {
	return 1, 0, nil
}
func (*manyClient) Produce(context.Context, *api.ProduceRequest) (api.ProduceResponse, error) {
	return api.ProduceResponse{BaseOffset: 0, LogAppendTime: -1}, nil
}

// A partition that has sent its batch keeps no buffer sized by it while
// it waits — for records (idleKeep), or for its next batch's linger —:
// the memory a producer holds follows what it buffers (MaxBufferedBytes,
// MaxBufferedRecords), not the number of partitions it wrote to lately.
// Each partition's goroutine kept its record.Builder (grown to the
// largest batch it encoded, up to BatchMaxBytes) and a spare batch (a
// slot per record of the largest batch) until it ended, a second after
// its last batch: 200 partitions sent a 1 MB batch each, one after
// another, with 4 MiB buffered at most, and the producer held 177 MiB
// (the heap measured after the collector, the goroutines waiting; the
// test fails so on the code before the fix). Under the race detector, 50
// partitions: the old code's growth, about a quarter of the figures
// below, is still past each bound.
func TestMemoryDoesNotGrowWithPartitionsSentTo(t *testing.T) {
	parts := 200
	if testkit.RaceEnabled {
		parts = 50
	}
	big := make([]byte, 60<<10) // 16 a partition: a batch of about 1 MB
	for _, tc := range []struct {
		name string
		opts []Opt
		// per partition: records produced, then flushed
		recs func(part int32) []*record.Record
		// then, with linger, one small record per partition that lingers
		linger bool
		// the growth allowed, which the old code passed many times over
		bound int64
	}{
		{
			name: "big batches, then idle",
			recs: func(part int32) []*record.Record {
				rs := make([]*record.Record, 16)
				for i := range rs {
					rs[i] = &record.Record{Topic: "t", Partition: part, Value: big}
				}
				return rs
			},
			bound: 24 << 20, // old code: 177 MiB
		},
		{
			name:   "big batches, then lingering ones",
			opts:   []Opt{Linger(time.Minute)},
			linger: true,
			recs: func(part int32) []*record.Record {
				rs := make([]*record.Record, 16)
				for i := range rs {
					rs[i] = &record.Record{Topic: "t", Partition: part, Value: big}
				}
				return rs
			},
			bound: 24 << 20, // old code: 190 MiB
		},
		{
			name: "batches of many records, then idle",
			opts: []Opt{Linger(time.Minute)},
			recs: func(part int32) []*record.Record {
				rs := make([]*record.Record, 8000) // in one batch: it lingers until Flush
				for i := range rs {
					rs[i] = &record.Record{Topic: "t", Partition: part}
				}
				return rs
			},
			bound: 8 << 20, // old code: 53 MiB (a spare batch of 8,000 slots a partition)
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := append([]Opt{RecordPartitioner(ManualPartitioner()), MaxBufferedBytes(4 << 20)}, tc.opts...)
			p, err := New(&manyClient{n: parts}, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			// The goroutines stay while the heap is measured, as they do
			// for a producer writing to each partition at least once a
			// second.
			p.idleKeep.Store(int64(time.Hour))
			ctx := context.Background()
			var failed sync.Map
			promise := func(r *record.Record, err error) {
				if err != nil {
					failed.Store(r, err)
				}
			}
			before := leakcheck.HeapInUse()
			for part := range int32(parts) {
				for _, r := range tc.recs(part) {
					p.Produce(ctx, r, promise)
				}
				if err := p.Flush(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if tc.linger {
				for part := range int32(parts) {
					p.Produce(ctx, &record.Record{Topic: "t", Partition: part, Value: []byte("x")}, promise)
				}
			}
			grown := leakcheck.HeapInUse() - before
			t.Logf("%d partitions: the heap grew by %.1f MiB (bound %d MiB)", parts, float64(grown)/(1<<20), tc.bound>>20)
			if grown > tc.bound {
				t.Errorf("the heap grew by %.1f MiB over %d partitions, more than %d MiB, with MaxBufferedBytes 4 MiB",
					float64(grown)/(1<<20), parts, tc.bound>>20)
			}
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			failed.Range(func(_, v any) bool {
				t.Errorf("a record failed: %v", v)
				return false
			})
		})
	}
}

// What the Producer's Memory doc says a topic costs: about 500 bytes for
// each of its partitions, written to or not, once a record was produced
// to it (510 B measured with a topic of 100,000 partitions; 627 B through
// an AsyncClient, whose partitions have a pipeline each; 372 B and 488 B
// before b26f2d9a, 2026-12-04, which gave each partition its run of
// failed batches for the log).
func TestMemoryPerPartitionOfATopic(t *testing.T) {
	const parts = 50_000
	p, err := New(&manyClient{n: parts}, RecordPartitioner(ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	before := leakcheck.HeapInUse()
	if err := p.ProduceSync(context.Background(), &record.Record{Topic: "t", Partition: 0}); err != nil {
		t.Fatal(err)
	}
	per := (leakcheck.HeapInUse() - before) / parts
	t.Logf("one record to a topic of %d partitions: %d B of heap a partition", parts, per)
	if per > 768 {
		t.Errorf("one record to a topic of %d partitions: %d B of heap a partition, more than 768", parts, per)
	}
}

// A closed producer holds no batch buffers. Close fails the batches that
// a partition's goroutine has not sent (lingering, or queued behind a
// full one) after the goroutine handed its spare batch and builder back
// (dropSpareLocked), and each failed batch went through reuse, the first
// kept as the partition's spare, the others pooled: a closed producer
// that the application still referenced held a batch per partition
// written to, grown to the largest it had sent (the test fails so on
// the code before the fix: spare set on every partition). What the pool
// holds (batches done before Close, say) the collector frees within two
// cycles, as any sync.Pool's: a spare it never frees.
func TestClosedProducerHoldsNoBatch(t *testing.T) {
	for _, codec := range []compression.Codec{compression.None, compression.Gzip} {
		t.Run(codec.String(), func(t *testing.T) {
			const parts = 4
			p, err := New(&manyClient{n: parts}, RecordPartitioner(ManualPartitioner()),
				Linger(time.Minute), BatchMaxBytes(1<<10), Compression(codec))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			var closed, other sync.Map // a record failed with ErrClosed, or otherwise
			promise := func(r *record.Record, err error) {
				switch {
				case errors.Is(err, ErrClosed):
					closed.Store(r, err)
				case err != nil:
					other.Store(r, err)
				}
			}
			value := make([]byte, 300) // 3 a batch: the 8 records of a partition make 2 full batches (queued) and 1 lingering
			for part := range int32(parts) {
				for range 8 {
					p.Produce(ctx, &record.Record{Topic: "t", Partition: part, Value: value}, promise)
				}
			}
			top := p.knownTopic("t") // Close lets go of it
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			n := 0
			closed.Range(func(_, _ any) bool { n++; return true })
			other.Range(func(_, v any) bool { t.Errorf("a record failed: %v", v); return false })
			if n == 0 {
				t.Fatal("no record failed with ErrClosed: Close found no batch to fail")
			}
			for _, pp := range *top.all.Load() {
				pp.mu.Lock()
				spare, bld, comp := pp.spare, pp.bld, pp.comp
				pp.mu.Unlock()
				if spare != nil {
					t.Errorf("partition %d keeps a spare batch (%d record slots) once closed", pp.id, cap(spare.recs))
				}
				if bld != nil {
					t.Errorf("partition %d keeps its builder once closed", pp.id)
				}
				if comp != nil {
					t.Errorf("partition %d keeps its compressed batch's buffer once closed", pp.id)
				}
			}
		})
	}
}

// A closed producer that the application still references holds none of
// its topics' state: Close, once it has waited for the producer's
// goroutines, lets go of every topic's partitions (what each learnt,
// its batches' room), some 53 KB for one that wrote to 64 partitions
// (the test fails so with Close keeping them). A record produced after
// Close still fails with ErrClosed, for a topic it wrote to as for one
// it did not, and asks the Client nothing.
func TestClosedProducerHoldsNoTopic(t *testing.T) {
	const parts = 64
	c := &countingClient{manyClient: manyClient{n: parts}}
	p, err := New(c, RecordPartitioner(ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for part := range int32(parts) {
		if err := p.ProduceSync(ctx, &record.Record{Topic: "t", Partition: part, Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	top := p.knownTopic("t")
	wt, wp := weak.Make(top), weak.Make((*top.all.Load())[parts-1])
	top = nil
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	// Two collections: a sync.Pool's victim cache lasts one.
	runtime.GC()
	runtime.GC()
	if wt.Value() != nil || wp.Value() != nil {
		t.Errorf("a closed producer still referenced holds its topic's state (topic kept %v, a partition kept %v)", wt.Value() != nil, wp.Value() != nil)
	}
	looks := c.partitions.Load()
	for _, topic := range []string{"t", "other"} {
		if err := p.ProduceSync(ctx, &record.Record{Topic: topic, Partition: 0}); !errors.Is(err, ErrClosed) {
			t.Errorf("a record to %q after Close: %v, want ErrClosed", topic, err)
		}
	}
	// A Produce under way as Close began goes on to look its topic up
	// (past its own closed check): none is made either.
	for _, topic := range []string{"t", "other"} {
		if _, err := p.topic(ctx, topic, true); !errors.Is(err, ErrClosed) {
			t.Errorf("a look-up of %q after Close: %v, want ErrClosed", topic, err)
		}
	}
	if n := c.partitions.Load() - looks; n != 0 {
		t.Errorf("records after Close asked the Client for partition counts %d times", n)
	}
	runtime.KeepAlive(p)
}

// countingClient is a manyClient that counts its Partitions calls.
type countingClient struct {
	manyClient
	partitions atomic.Int64
}

func (c *countingClient) Partitions(ctx context.Context, topic string) (int, error) {
	c.partitions.Add(1)
	return c.manyClient.Partitions(ctx, topic)
}

// A Produce whose look-up of a new topic's partition count answers after
// Close has returned makes no state for the topic (newTopic refuses it,
// closed): stored once Close had let go of the others, the closed
// producer would keep it. Its record fails with ErrClosed.
func TestProduceRacingCloseStoresNoTopic(t *testing.T) {
	c := &heldPartitionsClient{manyClient: manyClient{n: 4}, asked: make(chan struct{}), answer: make(chan struct{})}
	p, err := New(c, RecordPartitioner(ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		p.Produce(context.Background(), &record.Record{Topic: "t", Partition: 0}, func(_ *record.Record, err error) { got <- err })
	}()
	testkit.AwaitHold(t, c.asked, got, "the Produce")
	if err := p.Close(); err != nil { // the Produce's caller is no goroutine of the producer's: not waited for
		t.Fatal(err)
	}
	close(c.answer)
	if err := testkit.Await(t, got, "the record's promise"); !errors.Is(err, ErrClosed) {
		t.Errorf("the record: %v, want ErrClosed", err)
	}
	if p.knownTopic("t") != nil || p.lastTop.Load() != nil {
		t.Error("a topic whose count came after Close is kept by the closed producer")
	}
}

// heldPartitionsClient is a manyClient whose Partitions says it was
// asked (asked), then answers once answer is closed, whatever its ctx.
type heldPartitionsClient struct {
	manyClient
	asked, answer chan struct{}
}

func (c *heldPartitionsClient) Partitions(ctx context.Context, topic string) (int, error) {
	close(c.asked)
	<-c.answer
	return c.manyClient.Partitions(ctx, topic)
}

// A Close that comes while a Produce makes a new topic's state (its
// partitioner's ForTopic runs, under the topic map's lock, after
// newTopic found the producer open) lets go of that state too: it waits
// for the lock before it clears the map, and the Produce's record fails
// with ErrClosed. Clearing the map without the lock, Close returned
// first, and the state stored after it stayed with the closed producer.
func TestCloseDuringNewTopicLetsGoOfIt(t *testing.T) {
	guard, cancel := context.WithTimeout(context.Background(), testkit.HangGuard)
	defer cancel()
	part := &heldForTopic{in: make(chan struct{}), release: make(chan struct{})}
	p, err := New(&manyClient{n: 2}, RecordPartitioner(part))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		p.Produce(context.Background(), &record.Record{Topic: "t", Partition: 0}, func(_ *record.Record, err error) { got <- err })
	}()
	testkit.AwaitHold(t, part.in, got, "the Produce")
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	}()
	// Until Close waits for the map's lock, or returns.
	buf := make([]byte, 1<<20)
wait:
	for {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if strings.Contains(g, "[sync.Mutex.Lock") && strings.Contains(g, "producer.(*Producer).dropTopics(") {
				break wait
			}
		}
		select {
		case <-closed:
			break wait
		case <-guard.Done():
			t.Fatal("Close neither returns nor waits for the topic map's lock")
		default:
			runtime.Gosched()
		}
	}
	close(part.release)
	testkit.Await(t, closed, "Close's return")
	if err := testkit.Await(t, got, "the record's promise"); !errors.Is(err, ErrClosed) {
		t.Errorf("the record: %v, want ErrClosed", err)
	}
	if p.knownTopic("t") != nil || p.lastTop.Load() != nil {
		t.Error("a topic made as Close let go of the others is kept by the closed producer")
	}
}

// heldForTopic is a ManualPartitioner whose ForTopic says it was called
// (in), then returns once release is closed.
type heldForTopic struct{ in, release chan struct{} }

func (h *heldForTopic) ForTopic(topic string) TopicPartitioner {
	close(h.in)
	<-h.release
	return ManualPartitioner().ForTopic(topic)
}

// With values that compress, a batch being sent holds its compressed
// copy only: its records' encoding goes back to the pool once the batch
// is compressed (it is not needed again: a retry sends the compressed
// bytes, and a batch sealed again is encoded again from its records).
// Before, a sending partition's record.Builder held both, so that
// a codec held more than no codec, whatever the values: 64 partitions
// held by a slow broker, a 64 KiB batch of text-like 4 KiB values each
// (go test -run TestCompressedBatchHoldsItsCompressedCopy -v
// ./producer).
func TestCompressedBatchHoldsItsCompressedCopy(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes 4 MiB five times")
	}
	const maxBytes = bufRunMaxBytes
	for _, codec := range []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd} {
		t.Run(codec.String(), func(t *testing.T) {
			c := newSlowBrokerClient(bufRunParts)
			p, grown, finish := bufferRun(t, c, codec, func() bool { return c.held.Load() == bufRunParts }, func(part int32, i int) []byte {
				v := make([]byte, 0, bufRunValSize)
				for len(v) < bufRunValSize {
					v = fmt.Appendf(v, `{"partition":%d,"record":%d,"len":%d,"status":"ok"}`+"\n", part, i, len(v))
				}
				return v[:bufRunValSize]
			})
			buffered := p.BufferedRecords()
			// No codec: the records encoded, up to MaxBufferedBytes. A
			// codec: their compressed copy alone, well under it, but for
			// snappy, which reserves its worst case (a sixth more than
			// the records encoded) for each batch. Less the codec's
			// coders that outlive the producer: zstd's encoders that the
			// run made, one for each batch compressed at once after the
			// first (1.9 MB each here: since 2026-12-06 they are made as
			// encodes overlap, not all at the first).
			var bound int64
			switch codec {
			case compression.None:
				bound = maxBytes + 1<<20
			case compression.Snappy:
				bound = maxBytes + maxBytes/4 + 1<<20
			default:
				bound = maxBytes / 2
			}
			close(c.release)
			kept := finish(t) // zstd's encoders the run made: they stay
			t.Logf("%v: %d records buffered, the heap grew by %.2f MB, %.2f MB of it the codec's coders the run made", codec, buffered, float64(grown)/1e6, float64(kept)/1e6)
			if grown-kept > bound {
				t.Errorf("the heap grew by %d bytes (%d of them coders kept), more than the batches' %v encoding takes (%d, with slack)", grown, kept, codec, bound)
			}
		})
	}
}

// ackWaitClient is slowBrokerClient as an AsyncClient: ProduceAsync
// appends at once, and each Ack waits until release is closed (an fsync
// that hangs).
type ackWaitClient struct {
	*slowBrokerClient
	waiting atomic.Int64 // Ack.Wait calls
}

type waitedAck struct{ c *ackWaitClient }

func (c *ackWaitClient) ProduceAsync(context.Context, *api.ProduceRequest) (api.ProduceResponse, api.Ack, error) {
	return api.ProduceResponse{BaseOffset: 0, LogAppendTime: -1}, waitedAck{c}, nil
}

func (a waitedAck) Wait(ctx context.Context) error {
	a.c.waiting.Add(1)
	a.c.notify()
	select {
	case <-a.c.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// What a partition sending small batches costs, which the docs count as
// about 1 KiB (its state) and 5 KiB (its goroutine's) besides the
// records' encoding, with a Client and with an AsyncClient whose
// acknowledgements wait (the embedded broker's, for an fsync): there a
// second goroutine per partition, the acker, waits for them while the
// partition's goroutine goes on. 1000 partitions, three records each in
// batches of one (the third lingering), the heap and the goroutines'
// stacks after the collector, a partition: Client 2.8 KB of heap and
// 4.1 KB of stack, AsyncClient 4.1 KB and 7.9 KB: the acker and what it
// is handed take some 5 KB a partition that the docs did not count (go
// test -run TestMemoryPerSendingPartitionWithAcker -v ./producer).
func TestMemoryPerSendingPartitionWithAcker(t *testing.T) {
	const parts = 1000
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprintf("async=%v", async), func(t *testing.T) {
			base := newSlowBrokerClient(parts)
			var c Client = base
			ac := &ackWaitClient{slowBrokerClient: base}
			if async {
				c = ac
			}
			p, err := New(c, RecordPartitioner(ManualPartitioner()), BatchMaxBytes(200), Linger(time.Minute), MaxBufferedRecords(1<<20))
			if err != nil {
				t.Fatal(err)
			}
			v := make([]byte, 100) // one a batch
			var recs []*record.Record
			for part := range int32(parts) {
				for range 3 {
					recs = append(recs, &record.Record{Topic: "t", Partition: part, Value: v})
				}
			}
			heap0, stack0 := heapAndStacks()
			finish := produceAllHeld(context.Background(), p, recs)
			if async {
				base.waitFor(t, "every partition's first acknowledgement waited for", func() bool { return ac.waiting.Load() >= parts })
			} else {
				base.waitFor(t, "every partition's batch held", func() bool { return base.held.Load() == parts })
			}
			heap1, stack1 := heapAndStacks()
			heap, stack := (heap1-heap0)/parts, (stack1-stack0)/parts
			t.Logf("async %v: %d B of heap, %d B of stack a partition", async, heap, stack)
			if heap+stack > 24<<10 {
				t.Errorf("%d B a partition sending, more than 24 KiB", heap+stack)
			}
			close(base.release)
			finish(t)
		})
	}
}

// heapAndStacks returns the live heap and the goroutines' stacks after two
// collections.
func heapAndStacks() (heap, stack int64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc), int64(ms.StackInuse)
}
