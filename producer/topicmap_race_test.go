package producer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
)

// newTopicsClient answers at once from topics of parts partitions,
// yielding first so that the first records to a topic race each other
// and Close, and counts the look-ups of each topic.
type newTopicsClient struct {
	parts int
	asked sync.Map // topic → *atomic.Int32
}

func (c *newTopicsClient) Partitions(_ context.Context, topic string) (int, error) {
	v, _ := c.asked.LoadOrStore(topic, new(atomic.Int32))
	v.(*atomic.Int32).Add(1)
	runtime.Gosched()
	return c.parts, nil
}
func (*newTopicsClient) InitProducerID(context.Context) (int64, int16, error) { return 1, 0, nil }
func (*newTopicsClient) Produce(context.Context, *api.ProduceRequest) (api.ProduceResponse, error) {
	runtime.Gosched()
	return api.ProduceResponse{BaseOffset: 0, LogAppendTime: -1}, nil
}

// countingPartitioner counts the states made for each topic (ForTopic
// calls): the producer makes one a topic, however many records race to
// be its first.
type countingPartitioner struct{ made sync.Map } // topic → *atomic.Int32

func (c *countingPartitioner) ForTopic(topic string) TopicPartitioner {
	v, _ := c.made.LoadOrStore(topic, new(atomic.Int32))
	v.(*atomic.Int32).Add(1)
	return PartitionerFunc(func(r *record.Record, n int) int32 { return int32(len(r.Value) % n) })
}

// Many goroutines produce the first records of many topics at once,
// with a buffer so small that Produce calls wait for space (and wake the
// lingering partitions through wakeAll's walk of the topic map), while
// Close comes at a random moment: every record's promise runs once, with
// nil or ErrClosed, each topic gets one state, and the closed producer
// keeps none of them (nor any buffer space, waiter, running
// partition goroutine or batch in them). RUNNEL_TOPICMAP_ROUNDS sets the
// rounds (a few with -short); a round's seed (in its name; from the
// clock, or RUNNEL_TOPICMAP_SEED's for every round) fixes the order of
// the topics and the moment of Close, not the interleaving. A failed
// round logs its replay.
func TestTopicMapNewTopicsRaceClose(t *testing.T) {
	rounds := 40
	if testing.Short() {
		rounds = 8
	}
	if s := os.Getenv("RUNNEL_TOPICMAP_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		rounds = n
	}
	var fixed *uint64
	if s := os.Getenv("RUNNEL_TOPICMAP_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("RUNNEL_TOPICMAP_SEED=%q: %v", s, err)
		}
		fixed = &n
	}
	for round := range rounds {
		seed := uint64(time.Now().UnixNano())
		if fixed != nil {
			seed = *fixed
		}
		closeAfter := -1 // no Close while producing: every record is delivered
		if round%4 >= 2 {
			closeAfter = 1 + rand.New(rand.NewPCG(seed, 2)).IntN(300)
		}
		// A linger of an hour (DeliveryTimeout longer): the records go only because a Produce
		// waits for space (wakeAll), or Flush or Close comes; a partition
		// that wakeAll missed would hold them, and the test hang.
		linger := time.Millisecond
		if round%2 == 1 {
			linger = time.Hour
		}
		if !t.Run(fmt.Sprintf("round=%d/seed=%d/closeAfter=%d/linger=%v", round, seed, closeAfter, linger), func(t *testing.T) {
			defer testkit.ReplayOnFailure(t, fmt.Sprintf("RUNNEL_TOPICMAP_ROUNDS=%d", round+1), fmt.Sprintf("RUNNEL_TOPICMAP_SEED=%d", seed))()
			topicMapRound(t, seed, closeAfter, linger)
		}) {
			return
		}
	}
}

func topicMapRound(t *testing.T, seed uint64, closeAfter int, linger time.Duration) {
	const (
		goroutines = 16
		topics     = 40
		perTopic   = 3 // records of each goroutine to each topic
	)
	rng := rand.New(rand.NewPCG(seed, 1))
	c := &newTopicsClient{parts: 3}
	part := &countingPartitioner{}
	p, err := New(c, RecordPartitioner(part), Linger(linger), DeliveryTimeout(2*time.Hour),
		MaxBufferedBytes(600), BatchMaxBytes(400), RetryBackoff(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var waits atomic.Int32
	p.testWaiting = func() { waits.Add(1) }
	var made sync.Map // topic → *topicState, as newTopic stored them (Close lets go of them)
	p.testTopicMade = func(st *topicState) { made.Store(st.name, st) }

	var (
		outcomes sync.Map // *record.Record → error
		done     atomic.Int32
		unwanted atomic.Value
		closing  sync.WaitGroup
	)
	closeAt := make(chan struct{})
	var closeOnce sync.Once
	if closeAfter >= 0 {
		closing.Go(func() {
			<-closeAt
			if err := p.Close(); err != nil {
				unwanted.Store(err)
			}
		})
	}
	promise := func(r *record.Record, err error) {
		if _, dup := outcomes.LoadOrStore(r, err); dup {
			unwanted.Store(fmt.Errorf("a promise ran twice for %s/%q", r.Topic, r.Value))
		}
		if err != nil && !errors.Is(err, ErrClosed) {
			unwanted.Store(fmt.Errorf("%s/%q failed: %w", r.Topic, r.Value, err))
		}
		if int(done.Add(1)) == closeAfter {
			closeOnce.Do(func() { close(closeAt) })
		}
	}
	orders := make([][]int, goroutines)
	for g := range orders {
		orders[g] = rng.Perm(topics)
	}
	var producers sync.WaitGroup
	var produced atomic.Int32
	for g := range goroutines {
		producers.Go(func() {
			ctx := context.Background()
			for _, i := range orders[g] {
				for k := range perTopic {
					value := make([]byte, 20+(g+k)%7)
					p.Produce(ctx, &record.Record{Topic: fmt.Sprintf("t%d", i), Value: value}, promise)
					produced.Add(1)
				}
			}
		})
	}
	produced2 := make(chan struct{})
	go func() {
		producers.Wait()
		close(produced2)
	}()
	select {
	case <-produced2:
	case <-time.After(time.Minute): // a guard against a hang, not a timing check
		t.Fatalf("Produce calls still waiting after a minute: %d of %d promises ran, %d bytes buffered, %d waiters",
			done.Load(), goroutines*topics*perTopic, p.bufBytes.Load(), p.space.n.Load())
	}
	if closeAfter >= 0 {
		closeOnce.Do(func() { close(closeAt) }) // fewer promises than closeAfter ran by now
		closing.Wait()
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a guard against a hang
		defer cancel()
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err, _ := unwanted.Load().(error); err != nil {
		t.Fatal(err)
	}
	if n, want := done.Load(), produced.Load(); n != want {
		t.Fatalf("%d promises ran for %d records produced", n, want)
	}
	if closeAfter < 0 {
		outcomes.Range(func(k, v any) bool {
			if v != nil {
				t.Errorf("%s failed without Close: %v", k.(*record.Record).Topic, v)
			}
			return true
		})
	}
	if n := p.BufferedRecords(); n != 0 || p.bufBytes.Load() != 0 || p.space.n.Load() != 0 {
		t.Fatalf("closed with %d records, %d bytes buffered, %d waiters", n, p.bufBytes.Load(), p.space.n.Load())
	}
	states := 0
	part.made.Range(func(k, v any) bool {
		name := k.(string)
		if n := v.(*atomic.Int32).Load(); n != 1 {
			t.Errorf("topic %s: %d states made, want 1", name, n)
		}
		v, ok := made.Load(name)
		if !ok {
			t.Errorf("topic %s: a state made, none stored", name)
			return true
		}
		st := v.(*topicState)
		states++
		for _, pp := range *st.all.Load() {
			pp.mu.Lock()
			if pp.draining || pp.cur != nil || len(pp.queue) > 0 || pp.spare != nil || pp.bld != nil || pp.comp != nil {
				t.Errorf("%s/%d once closed: draining %v, open batch %v, %d queued, spare %v, builder %v, compressed buffer %v",
					name, pp.id, pp.draining, pp.cur != nil, len(pp.queue), pp.spare != nil, pp.bld != nil, pp.comp != nil)
			}
			pp.mu.Unlock()
		}
		return true
	})
	inMap := 0
	p.topics.Range(func(k, v any) bool {
		inMap++
		return true
	})
	if inMap != 0 || p.lastTop.Load() != nil {
		t.Errorf("the closed producer keeps %d topic states in the map (the first topic's %v)", inMap, p.lastTop.Load() != nil)
	}
	outcomes.Range(func(k, v any) bool {
		r := k.(*record.Record)
		if _, ok := made.Load(r.Topic); v == nil && !ok {
			t.Errorf("%s delivered, no state of its topic stored", r.Topic)
		}
		return true
	})
	if closeAfter < 0 && states != topics {
		t.Errorf("%d topic states, want %d", states, topics)
	}
	t.Logf("%d records, %d topics, %d waits for space", produced.Load(), states, waits.Load())
}
