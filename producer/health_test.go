package producer

import (
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
)

// healthClient is a broker of n partitions in memory that refuses, with
// KAFKA_STORAGE_ERROR, every batch to the partitions in refuse, and says
// which refuse appends: down, which a test sets apart from refuse to
// play a HealthClient that has not seen a failure yet, or a stale answer.
type healthClient struct {
	n int

	mu       sync.Mutex
	refuse   map[int32]bool
	down     []int32
	appended map[int32]int // batches appended, by partition
	refused  map[int32]int // batches refused, by partition
	asked    int           // UnwritablePartitions calls
	counts   int           // Partitions calls
	deleted  bool          // the topic is unknown
	lookErr  error         // UnwritablePartitions' error, if any
	// refuseErr is what the partitions in refuse refuse batches with:
	// api.ErrStorage when nil.
	refuseErr error
}

func newHealthClient(n int, down ...int32) *healthClient {
	c := &healthClient{n: n, refuse: map[int32]bool{}, appended: map[int32]int{}, refused: map[int32]int{}}
	c.fence(down...)
	return c
}

// fence makes partitions refuse appends, and say so.
func (c *healthClient) fence(ps ...int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range ps {
		c.refuse[p] = true
		if !slices.Contains(c.down, p) {
			c.down = append(c.down, p)
		}
	}
	slices.Sort(c.down)
}

// heal makes every partition take appends again, and say so.
func (c *healthClient) heal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.refuse)
	c.down = nil
}

func (c *healthClient) Partitions(context.Context, string) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts++
	if c.deleted {
		return 0, api.ErrUnknownTopicOrPartition
	}
	return c.n, nil
}

func (*healthClient) InitProducerID(context.Context) (int64, int16, error) { return 1, 0, nil }

func (c *healthClient) Produce(_ context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deleted {
		return api.ProduceResponse{BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1}, api.ErrUnknownTopicOrPartition
	}
	if c.refuse[req.Partition] {
		c.refused[req.Partition]++
		err := c.refuseErr
		if err == nil {
			err = api.ErrStorage
		}
		return api.ProduceResponse{BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1}, err
	}
	c.appended[req.Partition]++
	return api.ProduceResponse{LogAppendTime: -1}, nil
}

func (c *healthClient) UnwritablePartitions(context.Context, string) ([]int32, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked++
	if c.lookErr != nil {
		return nil, c.lookErr
	}
	return slices.Clone(c.down), nil
}

func (c *healthClient) stats() (appended, refused map[int32]int, asked, counts int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.appended), maps.Clone(c.refused), c.asked, c.counts
}

func healthCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func newHealthProducer(t *testing.T, c Client, opts ...Opt) *Producer {
	t.Helper()
	// A record that would wait for a partition that refuses appends
	// fails after a while, not the default two minutes.
	p, err := New(c, append([]Opt{DefaultTopic("t"), DisableIdempotence(), DeliveryTimeout(10 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// partitionsOf produces records one ProduceSync at a time (a batch each)
// and returns where each went.
func partitionsOf(t *testing.T, p *Producer, recs ...*record.Record) []int32 {
	t.Helper()
	var got []int32
	for _, r := range recs {
		if err := p.ProduceSync(healthCtx(t), r); err != nil {
			t.Fatalf("record %q: %v", r.Key, err)
		}
		got = append(got, r.Partition)
	}
	return got
}

func keyless(n int) []*record.Record {
	recs := make([]*record.Record, n)
	for i := range recs {
		recs[i] = &record.Record{Value: []byte("v")}
	}
	return recs
}

// The HealthClient's answer on the first look at a topic is taken before
// the first record is partitioned: round-robin goes over the partitions
// that take appends only, in turn, and no batch goes to the others.
func TestHealthRoundRobinSkipsUnwritable(t *testing.T) {
	c := newHealthClient(4, 1, 3)
	p := newHealthProducer(t, c, RecordPartitioner(RoundRobinPartitioner()))
	got := partitionsOf(t, p, keyless(6)...)
	if want := []int32{0, 2, 0, 2, 0, 2}; !slices.Equal(got, want) {
		t.Fatalf("partitions %v, want %v", got, want)
	}
	_, refused, asked, _ := c.stats()
	if len(refused) != 0 || asked != 1 {
		t.Fatalf("refused %v, asked %d: want none refused, one look", refused, asked)
	}
}

// The default partitioner: records without a key stick to partitions that
// take appends; a keyed record goes to its key's partition all the same,
// and waits there (retried) — here until its DeliveryTimeout. In a
// synctest bubble: on the real clock, a loaded machine could miss the
// 300 ms DeliveryTimeout with a record that must be written.
func TestHealthStickyKeepsKeysInPlace(t *testing.T) {
	synctest.Test(t, testHealthStickyKeepsKeysInPlace)
}

func testHealthStickyKeepsKeysInPlace(t *testing.T) {
	const n = 3
	c := newHealthClient(n)
	// A key of each partition.
	keyOf := map[int32][]byte{}
	for i := 0; len(keyOf) < n; i++ {
		k := []byte{byte(i)}
		if _, ok := keyOf[KeyPartition(k, n)]; !ok {
			keyOf[KeyPartition(k, n)] = k
		}
	}
	c.fence(1)
	p := newHealthProducer(t, c, DeliveryTimeout(300*time.Millisecond), RetryBackoff(10*time.Millisecond))
	for i, part := range partitionsOf(t, p, keyless(40)...) {
		if part == 1 {
			t.Fatalf("record %d without a key went to partition 1, which refuses appends", i)
		}
	}
	if got := partitionsOf(t, p, &record.Record{Key: keyOf[0]}, &record.Record{Key: keyOf[2]}); !slices.Equal(got, []int32{0, 2}) {
		t.Fatalf("keyed records went to %v, want their keys' partitions 0 and 2", got)
	}
	r := &record.Record{Key: keyOf[1]}
	err := p.ProduceSync(healthCtx(t), r)
	if !errors.Is(err, ErrDeliveryTimeout) || !errors.Is(err, api.ErrStorage) || r.Partition != 1 {
		t.Fatalf("keyed record for the refusing partition: partition %d, %v; want 1, a delivery timeout after KAFKA_STORAGE_ERROR", r.Partition, err)
	}
}

// A partition that refuses a batch with KAFKA_STORAGE_ERROR is taken for
// refusing at once, and the HealthClient is asked about every partition:
// the records without a key produced after go elsewhere; the refused
// batch itself stays on its partition, retried, and is appended once the
// partition takes appends again, which makes the partition writable
// again for the producer at once, without waiting for another look.
func TestHealthRefusalCallsForALook(t *testing.T) {
	c := newHealthClient(2)
	p := newHealthProducer(t, c, RecordPartitioner(RoundRobinPartitioner()), RetryBackoff(5*time.Millisecond))
	if got := partitionsOf(t, p, keyless(2)...); !slices.Equal(got, []int32{0, 1}) {
		t.Fatalf("partitions %v, want [0 1]", got)
	}
	if _, _, asked, _ := c.stats(); asked != 1 {
		t.Fatalf("asked %d times, want once (the first look)", asked)
	}
	c.fence(0)
	stuck := &record.Record{Value: []byte("stuck")}
	done := make(chan error, 1)
	p.Produce(healthCtx(t), stuck, func(_ *record.Record, err error) { done <- err })
	waitFor(t, func() bool { _, refused, asked, _ := c.stats(); return refused[0] >= 1 && asked >= 2 })
	if down := downOf(p, "t"); !slices.Equal(down, []int32{0}) {
		t.Fatalf("down %v after a refusal, want [0]", down)
	}
	for i, part := range partitionsOf(t, p, keyless(5)...) {
		if part != 1 {
			t.Fatalf("record %d went to partition %d, which refuses appends", i, part)
		}
	}
	select {
	case err := <-done:
		t.Fatalf("the refused record finished while its partition refused appends: %v", err)
	default:
	}
	c.heal() // takes appends again; the producer knows once the retry is appended
	if err := testkit.Await(t, done, "the stuck record's promise"); err != nil || stuck.Partition != 0 {
		t.Fatalf("the refused record: partition %d, %v; want 0, nil", stuck.Partition, err)
	}
	if down := downOf(p, "t"); down != nil {
		t.Fatalf("down %v after an append to it, want none", down)
	}
	if got := partitionsOf(t, p, keyless(2)...); !slices.Contains(got, 0) {
		t.Fatalf("partitions %v: partition 0 is never chosen again", got)
	}
}

// A batch refused with an error that says its partition's leader moved
// or is not known calls for a look, as Kafka's producers refresh their
// metadata on it: the records without a key go to the other partitions
// once the answer lists it, where before the producer learned it only at
// the next MetadataMaxAge. Unlike KAFKA_STORAGE_ERROR, the refusal does
// not take the partition for refusing before the answer. Another
// retriable error (a timeout, NOT_ENOUGH_REPLICAS) calls for none.
func TestHealthLeaderErrorCallsForALook(t *testing.T) {
	for _, tc := range []struct {
		err   error
		looks bool
	}{
		{api.ErrNotLeader, true},
		{api.ForCode(5), true},   // LEADER_NOT_AVAILABLE
		{api.ForCode(74), true},  // FENCED_LEADER_EPOCH
		{api.ForCode(75), false}, // UNKNOWN_LEADER_EPOCH: retriable, no InvalidMetadataException in Java
		{api.ErrRequestTimedOut, false},
		{api.ErrNotEnoughReplicas, false},
	} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			c := newHealthClient(2)
			c.refuseErr = tc.err
			p := newHealthProducer(t, c, RecordPartitioner(RoundRobinPartitioner()), RetryBackoff(5*time.Millisecond))
			if got := partitionsOf(t, p, keyless(2)...); !slices.Equal(got, []int32{0, 1}) {
				t.Fatalf("partitions %v, want [0 1]", got)
			}
			c.fence(0) // refuses with tc.err, and says so
			stuck := &record.Record{Value: []byte("stuck")}
			done := make(chan error, 1)
			p.Produce(healthCtx(t), stuck, func(_ *record.Record, err error) { done <- err })
			if !tc.looks {
				waitFor(t, func() bool { _, refused, _, _ := c.stats(); return refused[0] >= 3 })
				c.heal()
				if err := testkit.Await(t, done, "the stuck record's promise"); err != nil {
					t.Fatalf("the refused record: %v", err)
				}
				p.Close() // waits for any look it started
				if _, _, asked, _ := c.stats(); asked != 1 {
					t.Fatalf("asked %d times, want once (the first look)", asked)
				}
				return
			}
			waitFor(t, func() bool { return slices.Equal(downOf(p, "t"), []int32{0}) })
			for i, part := range partitionsOf(t, p, keyless(5)...) {
				if part != 1 {
					t.Fatalf("record %d went to partition %d, which has no leader", i, part)
				}
			}
			c.heal()
			if err := testkit.Await(t, done, "the stuck record's promise"); err != nil || stuck.Partition != 0 {
				t.Fatalf("the refused record: partition %d, %v; want 0, nil", stuck.Partition, err)
			}
		})
	}
}

// When every partition refuses appends, the records go to all of them,
// as Kafka's and franz-go's producers send them when none is available
// (retried there until one takes them or their DeliveryTimeout). In a
// synctest bubble: on the real clock, a loaded machine could reach the
// 200 ms DeliveryTimeout before a partition's first attempt, whose
// refusal the test counts.
func TestHealthAllDownUsesEvery(t *testing.T) {
	synctest.Test(t, testHealthAllDownUsesEvery)
}

func testHealthAllDownUsesEvery(t *testing.T) {
	c := newHealthClient(3, 0, 1, 2)
	p := newHealthProducer(t, c, RecordPartitioner(RoundRobinPartitioner()), DeliveryTimeout(200*time.Millisecond))
	var wg sync.WaitGroup
	for _, r := range keyless(3) {
		wg.Add(1)
		p.Produce(healthCtx(t), r, func(r *record.Record, err error) {
			defer wg.Done()
			if !errors.Is(err, api.ErrStorage) {
				t.Errorf("record: %v, want KAFKA_STORAGE_ERROR", err)
			}
		})
	}
	wg.Wait()
	if _, refused, _, _ := c.stats(); len(refused) != 3 {
		t.Fatalf("refused batches by partition %v, want some on each of the 3", refused)
	}
}

// A partitioner without RequiresConsistency chooses among every partition,
// whatever the HealthClient says, as before it had one; and one with it
// gets the count of those that take appends, its choice an index among
// them, and OnNewBatch that index too.
func TestHealthPartitionerSees(t *testing.T) {
	c := newHealthClient(5, 1, 2)
	plain := newHealthProducer(t, c, RecordPartitioner(ManualPartitioner()))
	r := &record.Record{Value: []byte("v"), Partition: 2}
	c.mu.Lock()
	clear(c.refuse)
	c.mu.Unlock()
	if err := plain.ProduceSync(healthCtx(t), r); err != nil || r.Partition != 2 {
		t.Fatalf("manual partition 2: partition %d, %v", r.Partition, err)
	}

	c = newHealthClient(5, 1, 2)
	rec := &recordingPartitioner{choice: 2}
	p := newHealthProducer(t, c, RecordPartitioner(rec))
	r = &record.Record{Value: []byte("v")}
	if err := p.ProduceSync(healthCtx(t), r); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	// Partitions 0, 3, 4 take appends: the third is 4. The record starts
	// a batch there: the partitioner hears of it with its own choice, 2,
	// not 4, and is asked again.
	if r.Partition != 4 || !slices.Equal(rec.ns, []int{3, 3}) || !slices.Equal(rec.newBatch, []int32{2}) {
		t.Fatalf("partition %d, counts %v, OnNewBatch %v; want 4, [3 3], [2]", r.Partition, rec.ns, rec.newBatch)
	}
	rec.mu.Unlock()
	// A choice past those that take appends fails, without a look-up of
	// the partition count (which a choice past the topic's would make).
	_, _, _, before := c.stats()
	rec.mu.Lock()
	rec.choice = 3
	rec.mu.Unlock()
	err := p.ProduceSync(healthCtx(t), &record.Record{Value: []byte("v")})
	if _, _, _, after := c.stats(); !errors.Is(err, ErrInvalidPartition) || after != before {
		t.Fatalf("choice 3 of 3: %v, %d count look-ups; want ErrInvalidPartition, none", err, after-before)
	}
}

// recordingPartitioner chooses choice for every record, which may go
// anywhere, and records what it is told.
type recordingPartitioner struct {
	mu       sync.Mutex
	choice   int32
	ns       []int
	newBatch []int32
}

func (r *recordingPartitioner) ForTopic(string) TopicPartitioner { return r }
func (r *recordingPartitioner) Partition(_ *record.Record, n int) int32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ns = append(r.ns, n)
	return r.choice
}
func (r *recordingPartitioner) OnNewBatch(p int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.newBatch = append(r.newBatch, p)
}
func (*recordingPartitioner) RequiresConsistency(*record.Record) bool { return false }

// The periodic refresh (MetadataMaxAge) asks the HealthClient too: a
// partition down since the last look is skipped after it, and one back
// is used again.
func TestHealthRefreshedWithTheCount(t *testing.T) {
	c := newHealthClient(2)
	p := newHealthProducer(t, c, RecordPartitioner(RoundRobinPartitioner()), MetadataMaxAge(time.Hour))
	var mono atomic.Int64
	p.testMono = mono.Load
	partitionsOf(t, p, keyless(2)...)
	c.mu.Lock()
	c.down = []int32{1} // says so, still takes appends (no refusal to call for a look)
	c.mu.Unlock()
	mono.Add(int64(2 * time.Hour))
	// The next batch's goroutine looks after it.
	partitionsOf(t, p, keyless(1)...)
	waitFor(t, func() bool { return slices.Equal(downOf(p, "t"), []int32{1}) })
	for i, part := range partitionsOf(t, p, keyless(4)...) {
		if part != 0 {
			t.Fatalf("record %d went to partition %d", i, part)
		}
	}
	c.heal()
	mono.Add(int64(2 * time.Hour))
	partitionsOf(t, p, keyless(1)...)
	waitFor(t, func() bool { return downOf(p, "t") == nil })
}

// An answer begun before another that answered first is not taken, nor
// one begun before an append that said otherwise.
func TestHealthStaleAnswers(t *testing.T) {
	p, tp := writtenTopic(t, 3)
	first, second := tp.healthLooks.Add(1), tp.healthLooks.Add(1)
	tp.setDown([]int32{2}, second)
	tp.setDown([]int32{1}, first) // older: ignored
	if got := downOf(p, "t"); !slices.Equal(got, []int32{2}) {
		t.Fatalf("down %v, want [2]", got)
	}
	// A look-up under way (begun before the append) says 1 and 2 refuse
	// appends: 2 was appended since, 1 is news.
	tp.looking.Add(1)
	third := tp.healthLooks.Add(1)
	tp.writableAgain((*tp.all.Load())[2])
	tp.looking.Add(-1)
	if got := downOf(p, "t"); got != nil {
		t.Fatalf("down %v after an append, want none", got)
	}
	tp.setDown([]int32{1, 2}, third)
	if got := downOf(p, "t"); !slices.Equal(got, []int32{1}) {
		t.Fatalf("down %v, want [1]", got)
	}
	// A later look-up's answer about 2 is taken.
	tp.setDown([]int32{1, 2}, tp.healthLooks.Add(1))
	if got := downOf(p, "t"); !slices.Equal(got, []int32{1, 2}) {
		t.Fatalf("down %v, want [1 2]", got)
	}
}

// A keyed record that starts a batch tells OnNewBatch its partition among
// those that take appends (the numbering of the sticky partition), or
// nothing if it refuses appends: the sticky partition stays where it is
// while keyed records start batches elsewhere. It moved when a keyed
// record's partition, numbered among all, matched the sticky one's number
// among those that take appends.
func TestHealthStickyAndKeyedBatches(t *testing.T) {
	for round := range 20 {
		c := newHealthClient(3, 0)
		p := newHealthProducer(t, c, Linger(time.Minute), DeliveryTimeout(time.Hour))
		ctx := healthCtx(t)
		r1 := &record.Record{Value: []byte("a")}
		p.Produce(ctx, r1, nil)
		// A key of each partition, produced one after the other, each
		// starting a batch there (or joining the one open: r1's).
		for part := int32(0); part < 3; part++ {
			var key []byte
			for i := 0; key == nil; i++ {
				if k := []byte{byte(i)}; KeyPartition(k, 3) == part {
					key = k
				}
			}
			p.Produce(ctx, &record.Record{Key: key, Value: []byte("k")}, nil)
		}
		// Two more without a key: the second may join r1's batch
		// without the topic's lock (see markHotLocked), which is to find
		// the sticky partition's batch as the first did, not the batch
		// of the partition whose index among all is the sticky
		// partition's among those that take appends.
		r2, r3 := &record.Record{Value: []byte("b")}, &record.Record{Value: []byte("c")}
		p.Produce(ctx, r2, nil)
		if r2.Partition != r1.Partition {
			t.Fatalf("round %d: the sticky partition moved from %d to %d under keyed records", round, r1.Partition, r2.Partition)
		}
		p.Produce(ctx, r3, nil)
		if r3.Partition != r1.Partition {
			t.Fatalf("round %d: a record without a key went to %d, the sticky partition being %d", round, r3.Partition, r1.Partition)
		}
	}
}

// Once the producer learns that the sticky partition refuses appends,
// the next record without a key goes to one that takes them, though the
// sticky partition's batch is open: that batch is no longer one that
// records without a key join without the topic's lock (unhotLocked).
func TestHealthStickyLeavesAPartitionMarkedDown(t *testing.T) {
	c := newHealthClient(3)
	p := newHealthProducer(t, c, Linger(time.Minute), DeliveryTimeout(time.Hour))
	ctx := healthCtx(t)
	r1, r2, r3 := &record.Record{Value: []byte("a")}, &record.Record{Value: []byte("b")}, &record.Record{Value: []byte("c")}
	p.Produce(ctx, r1, nil)
	p.Produce(ctx, r2, nil) // joins r1's batch
	if r2.Partition != r1.Partition {
		t.Fatalf("r2 went to %d, r1 to %d: the sticky partition moved", r2.Partition, r1.Partition)
	}
	p.knownTopic("t").markDown(r1.Partition)
	p.Produce(ctx, r3, nil)
	if r3.Partition == r1.Partition {
		t.Fatalf("a record without a key went to partition %d, which refuses appends", r3.Partition)
	}
}

// The first look at which partitions take appends ends by the deadline of
// the look-up of the topic's partition count, DeliveryTimeout after it
// began, rather than start one of its own after it.
func TestHealthFirstLookBySameDeadline(t *testing.T) {
	c := &deadlineHealth{healthClient: newHealthClient(2)}
	p := newHealthProducer(t, c, DeliveryTimeout(time.Hour))
	// A ctx without a deadline, which would be the look's.
	if err := p.ProduceSync(context.Background(), &record.Record{Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lookDeadline.IsZero() || c.lookDeadline.After(c.countAsked.Add(time.Hour)) {
		t.Fatalf("the first look's deadline %v, past the count's look-up (%v) and an hour", c.lookDeadline, c.countAsked)
	}
}

// deadlineHealth is a healthClient that notes when the partition count was
// first asked for and the deadline of the first look at which partitions
// take appends.
type deadlineHealth struct {
	*healthClient
	countAsked, lookDeadline time.Time
}

func (c *deadlineHealth) Partitions(ctx context.Context, topic string) (int, error) {
	c.mu.Lock()
	if c.countAsked.IsZero() {
		c.countAsked = time.Now()
	}
	c.mu.Unlock()
	return c.healthClient.Partitions(ctx, topic)
}

func (c *deadlineHealth) UnwritablePartitions(ctx context.Context, topic string) ([]int32, error) {
	d, _ := ctx.Deadline()
	c.mu.Lock()
	if c.lookDeadline.IsZero() {
		c.lookDeadline = d
	}
	c.mu.Unlock()
	return c.healthClient.UnwritablePartitions(ctx, topic)
}

// A partitioner that cannot use the answer (no RequiresConsistency) is not
// asked for one: not at the first record, at the refresh, nor on a
// refusal. In a synctest bubble: on the real clock, a loaded machine
// could miss the 100 ms DeliveryTimeout with the first record, which
// must be written, or reach it before the second's first attempt.
func TestHealthNotAskedForAPartitionerWithoutUse(t *testing.T) {
	synctest.Test(t, testHealthNotAskedForAPartitionerWithoutUse)
}

func testHealthNotAskedForAPartitionerWithoutUse(t *testing.T) {
	c := newHealthClient(3, 2)
	p := newHealthProducer(t, c, RecordPartitioner(ManualPartitioner()), MetadataMaxAge(time.Hour),
		DeliveryTimeout(100*time.Millisecond), RetryBackoff(time.Millisecond))
	var mono atomic.Int64
	p.testMono = mono.Load
	if err := p.ProduceSync(healthCtx(t), &record.Record{Value: []byte("v"), Partition: 1}); err != nil {
		t.Fatal(err)
	}
	mono.Add(int64(2 * time.Hour))
	if err := p.ProduceSync(healthCtx(t), &record.Record{Value: []byte("v"), Partition: 2}); !errors.Is(err, api.ErrStorage) {
		t.Fatalf("a record for the refusing partition: %v", err)
	}
	// The refresh runs on the partition's goroutine after the batch.
	waitFor(t, func() bool { _, _, _, counts := c.stats(); return counts >= 2 })
	if _, _, asked, counts := c.stats(); asked != 0 || counts < 2 {
		t.Fatalf("asked %d times (counts %d), want never (and the count refreshed)", asked, counts)
	}
}

// A batch retried on a partition the producer already takes for refusing
// asks no more: the look that listed it (here the first, when the
// producer first wrote to the topic) is the answer. So with a leader's
// error (see TestHealthLeaderErrorCallsForALook).
func TestHealthRetriesOfAKnownRefusalAskNoMore(t *testing.T) {
	for _, refuseErr := range []error{api.ErrStorage, api.ErrNotLeader} {
		// In a bubble: the retries within DeliveryTimeout are counted on
		// fake time, which a loaded machine does not make fewer (on the
		// wall clock, under -race beside valgrind, a run in 700 saw one
		// refusal in the 200 ms).
		t.Run(refuseErr.Error(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newHealthClient(2, 1)
				c.refuseErr = refuseErr
				p := newHealthProducer(t, c, DeliveryTimeout(200*time.Millisecond), RetryBackoff(time.Millisecond))
				var key []byte
				for i := 0; key == nil; i++ {
					if k := []byte{byte(i)}; KeyPartition(k, 2) == 1 {
						key = k
					}
				}
				if err := p.ProduceSync(healthCtx(t), &record.Record{Key: key, Value: []byte("v")}); !errors.Is(err, refuseErr) {
					t.Fatalf("a keyed record for the refusing partition: %v", err)
				}
				p.Close() // waits for any look it started
				if _, refused, asked, _ := c.stats(); asked != 1 || refused[1] < 2 {
					t.Fatalf("asked %d times over %d refusals, want once (the first look)", asked, refused[1])
				}
			})
		})
	}
}

// What the producer knew of partitions the topic no longer has goes: a
// partition added again later is a new one, taken as taking appends.
func TestHealthForgetsPartitionsGone(t *testing.T) {
	p, tp := writtenTopic(t, 3)
	tp.setDown([]int32{2}, tp.healthLooks.Add(1))
	if n, _ := tp.follow(2, tp.looks.Add(1)); n != 2 {
		t.Fatalf("count %d, want 2", n)
	}
	if n, _ := tp.follow(3, tp.looks.Add(1)); n != 3 {
		t.Fatalf("count %d, want 3", n)
	}
	if got := downOf(p, "t"); got != nil {
		t.Fatalf("down %v, want none: partition 2 is a new one", got)
	}
}

// writtenTopic returns a producer over a healthClient of n partitions
// that takes appends on all, which has written a record to its topic "t",
// and the topic's state.
func writtenTopic(t *testing.T, n int) (*Producer, *topicState) {
	t.Helper()
	p := newHealthProducer(t, newHealthClient(n))
	partitionsOf(t, p, keyless(1)...)
	return p, p.knownTopic("t")
}

func downOf(p *Producer, topic string) []int32 {
	t := p.knownTopic(topic)
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.downList())
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testkit.HangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", testkit.HangGuard)
		}
		time.Sleep(time.Millisecond)
	}
}

// Under churn — partitions refusing appends and taking them again, the
// partition count growing, keyed and keyless records from several
// goroutines, look-ups on refusals and on refreshes racing appends —
// every record ends (appended, or refused once its DeliveryTimeout
// ended), and once the churn stops, one look-up later the producer takes
// exactly the partitions that refuse for refusing, and sends no record
// without a key to them. In a synctest bubble: on the real clock, a
// loaded machine could miss the 50 ms DeliveryTimeout with the records
// that must be written once the churn stops.
func TestHealthChurn(t *testing.T) {
	synctest.Test(t, testHealthChurn)
}

func testHealthChurn(t *testing.T) {
	rounds := 30
	if testing.Short() {
		rounds = 8
	}
	rng := rand.New(rand.NewPCG(54, 1))
	c := newHealthClient(4)
	p := newHealthProducer(t, c, MetadataMaxAge(time.Hour), DeliveryTimeout(50*time.Millisecond), RetryBackoff(time.Millisecond))
	var mono atomic.Int64
	p.testMono = mono.Load
	ctx := healthCtx(t)
	for round := range rounds {
		c.mu.Lock()
		if rng.IntN(4) == 0 && c.n < 12 {
			c.n++
		}
		clear(c.refuse)
		c.down = nil
		for id := range int32(c.n) {
			if rng.IntN(3) == 0 {
				c.refuse[id] = true
				if rng.IntN(4) != 0 { // some refuse without saying so yet
					c.down = append(c.down, id)
				}
			}
		}
		n := c.n
		c.mu.Unlock()
		if rng.IntN(2) == 0 {
			mono.Add(int64(2 * time.Hour)) // a refresh after the next batch
		}
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 10 {
					r := &record.Record{Value: []byte("v")}
					if (g+i)%3 == 0 {
						r.Key = []byte{byte(i), byte(g)}
					}
					err := p.ProduceSync(ctx, r)
					switch {
					case err == nil && (r.Partition < 0 || int(r.Partition) >= n):
						t.Errorf("round %d: a record appended to partition %d of %d", round, r.Partition, n)
					case err != nil && !errors.Is(err, api.ErrStorage) && !errors.Is(err, ErrDeliveryTimeout):
						t.Errorf("round %d: %v", round, err)
					}
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
	}
	// The churn stops: partitions 1 and 2 refuse appends, and say so.
	c.mu.Lock()
	clear(c.refuse)
	c.refuse[1], c.refuse[2] = true, true
	c.down = []int32{1, 2}
	c.mu.Unlock()
	mono.Add(int64(2 * time.Hour))
	_ = p.ProduceSync(ctx, &record.Record{Value: []byte("v"), Key: []byte("to 0 or 3+")}) // a batch: its goroutine looks after it
	waitFor(t, func() bool { return slices.Equal(downOf(p, "t"), []int32{1, 2}) })
	for i, part := range partitionsOf(t, p, keyless(50)...) {
		if part == 1 || part == 2 {
			t.Fatalf("record %d without a key went to partition %d, which refuses appends", i, part)
		}
	}
}

// Ids no partition has, in an answer, are ignored: negative ones made
// the producer size a slice below zero, a panic with the topic's lock
// held.
func TestHealthIgnoresIdsNoPartitionHas(t *testing.T) {
	c := newHealthClient(2, -2, -1, 0, 7)
	p := newHealthProducer(t, c, RecordPartitioner(RoundRobinPartitioner()))
	if got := partitionsOf(t, p, keyless(3)...); !slices.Equal(got, []int32{1, 1, 1}) {
		t.Fatalf("partitions %v, want [1 1 1]", got)
	}
	if got := downOf(p, "t"); !slices.Equal(got, []int32{0}) {
		t.Fatalf("down %v, want [0]", got)
	}
}

// An acknowledgement that comes while a look-up is under way, begun
// before it, keeps the partition writable whatever the answer says, also
// when the answer comes while writableAgain looks: it looked at whether
// the partition was down before it looked for a look-up under way, and
// an answer that came between the two left the partition down (found by
// review: one in about 14,000 rounds under -race; here the answer comes
// there every time).
func TestHealthAckDuringALook(t *testing.T) {
	p, tp := writtenTopic(t, 2)
	tp.looking.Add(1)
	ticket := tp.healthLooks.Add(1)
	testHookAcked = func() {
		testHookAcked = nil
		tp.setDown([]int32{0}, ticket) // an answer older than the acknowledgement
		tp.looking.Add(-1)
	}
	defer func() { testHookAcked = nil }()
	tp.writableAgain((*tp.all.Load())[0])
	if got := downOf(p, "t"); got != nil {
		t.Fatalf("down %v after an acknowledgement that came after the look began", got)
	}
}

// An acknowledgement that comes while the answer of a look-up begun before
// it is being taken — after setDown looked at the acknowledgements, before
// it stored the answer — keeps the partition writable too: writableAgain,
// which takes no lock, finds the partition not down yet, and setDown
// looks at the acknowledgements again once it stored the answer.
func TestHealthAckWhileAnAnswerIsStored(t *testing.T) {
	p, tp := writtenTopic(t, 2)
	tp.looking.Add(1)
	ticket := tp.healthLooks.Add(1)
	testHookAnswer = func() {
		testHookAnswer = nil
		tp.writableAgain((*tp.all.Load())[0])
	}
	defer func() { testHookAnswer = nil }()
	tp.setDown([]int32{0}, ticket)
	tp.looking.Add(-1)
	if got := downOf(p, "t"); got != nil {
		t.Fatalf("down %v after an acknowledgement that came after the look began", got)
	}
}

// The acknowledgement of a batch sent before a refusal of the partition
// (an AsyncClient acknowledges in the background) does not make it
// writable again; one sent after does.
func TestHealthAckBeforeARefusal(t *testing.T) {
	// KAFKA_STORAGE_ERROR takes the partition for refusing at once; a
	// leader's error once the look it calls for answers.
	for _, refusal := range []error{api.ErrStorage, api.ErrNotLeader} {
		t.Run(refusal.Error(), func(t *testing.T) {
			c := newHealthClient(2)
			p := newHealthProducer(t, c, RetryBackoff(time.Millisecond))
			partitionsOf(t, p, keyless(1)...)
			pp := (*p.knownTopic("t").parts.Load())[0]
			c.fence(0) // the look-up the refusal calls for says so too
			early := &batch{refusals: pp.refusals.Load()}
			pp.noteRefusal(refusal)
			waitFor(t, func() bool { return slices.Equal(downOf(p, "t"), []int32{0}) })
			pp.acknowledged(early)
			if got := downOf(p, "t"); !slices.Equal(got, []int32{0}) {
				t.Fatalf("down %v after an acknowledgement of a batch sent before the refusal, want [0]", got)
			}
			pp.acknowledged(&batch{refusals: pp.refusals.Load()})
			if got := downOf(p, "t"); got != nil {
				t.Fatalf("down %v after an acknowledgement of a batch sent since, want none", got)
			}
		})
	}
}

// asyncHealth is a healthClient with ProduceAsync, which acknowledges
// every batch of partition 0 with ackErr.
type asyncHealth struct {
	*healthClient
	ackErr error
}

func (c *asyncHealth) ProduceAsync(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, api.Ack, error) {
	resp, err := c.healthClient.Produce(ctx, req)
	if err != nil || req.Partition != 0 {
		return resp, nil, err
	}
	return resp, failedAck{c.ackErr}, nil
}

type failedAck struct{ err error }

func (a failedAck) Wait(context.Context) error { return a.err }

// An acknowledgement that fails with a leader's error calls for a look,
// as a refusal of the append does (the acknowledgement of acks=all, which
// a leader that lost its leadership may not give); one that fails
// otherwise (a timeout) calls for none.
func TestHealthLeaderErrorOfAnAckCallsForALook(t *testing.T) {
	for _, tc := range []struct {
		err   error
		looks int
	}{{api.ErrNotLeader, 2}, {api.ErrRequestTimedOut, 1}} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := &asyncHealth{healthClient: newHealthClient(2), ackErr: tc.err}
				p := newHealthProducer(t, c)
				var key []byte
				for i := 0; key == nil; i++ {
					if k := []byte{byte(i)}; KeyPartition(k, 2) == 0 {
						key = k
					}
				}
				if err := p.ProduceSync(healthCtx(t), &record.Record{Key: key, Value: []byte("v")}); !errors.Is(err, tc.err) {
					t.Fatalf("the record: %v, want %v", err, tc.err)
				}
				time.Sleep(time.Second) // on the bubble's clock: past any look's wait (RetryBackoff)
				synctest.Wait()
				if _, _, asked, _ := c.stats(); asked != tc.looks {
					t.Fatalf("asked %d times, want %d", asked, tc.looks)
				}
			})
		})
	}
}

// Refusals retried on many partitions ask a look each, but the producer
// begins one no sooner than RetryBackoff after the last, as Kafka's
// producer waits its retry backoff between two metadata requests: here
// 64 partitions refuse with NOT_LEADER_OR_FOLLOWER for a second of the
// bubble's fake clock, and the HealthClient never lists them (a Faults
// rule alone plays that), each partition's batch retried every 10 ms
// and more (its backoff doubling to 1 s).
func TestHealthLooksAtMostOnceARetryBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 64
		c := newHealthClient(n)
		c.refuseErr = api.ErrNotLeader
		p := newHealthProducer(t, c, RecordPartitioner(RoundRobinPartitioner()), RetryBackoff(10*time.Millisecond))
		partitionsOf(t, p, keyless(n)...)
		c.mu.Lock()
		for i := range int32(n) {
			c.refuse[i] = true
		}
		c.mu.Unlock()
		start := time.Now()
		for range n {
			p.Produce(healthCtx(t), &record.Record{Value: []byte("v")}, nil)
		}
		time.Sleep(time.Second)
		c.heal()
		if err := p.Flush(healthCtx(t)); err != nil {
			t.Fatal(err)
		}
		elapsed := time.Since(start)
		_, refused, asked, _ := c.stats()
		total := 0
		for _, r := range refused {
			total += r
		}
		// The first look, then one a RetryBackoff at most.
		t.Logf("%d looks over %d refusals in %v", asked, total, elapsed)
		if limit := 1 + int(elapsed/(10*time.Millisecond)) + 1; asked > limit || total < 2*n {
			t.Fatalf("%d looks over %d refusals in %v, want at most %d", asked, total, elapsed, limit)
		}
	})
}

// A topic deleted and created again is a new one: what the producer knew
// of the old one's partitions goes, even when the look at the new one's
// fails.
func TestHealthTopicCreatedAgain(t *testing.T) {
	c := newHealthClient(2, 1)
	p := newHealthProducer(t, c)
	partitionsOf(t, p, keyless(1)...)
	if got := downOf(p, "t"); !slices.Equal(got, []int32{1}) {
		t.Fatalf("down %v, want [1]", got)
	}
	c.mu.Lock()
	c.deleted = true
	c.mu.Unlock()
	if err := p.ProduceSync(healthCtx(t), &record.Record{Value: []byte("v")}); !errors.Is(err, api.ErrUnknownTopicOrPartition) {
		t.Fatalf("a record for the deleted topic: %v", err)
	}
	c.mu.Lock()
	c.deleted = false
	clear(c.refuse)
	c.down = nil
	c.lookErr = api.ErrRequestTimedOut
	c.mu.Unlock()
	if got := partitionsOf(t, p, keyless(1)...); got[0] < 0 {
		t.Fatalf("partition %v", got)
	}
	if got := downOf(p, "t"); got != nil {
		t.Fatalf("down %v for the topic created again, want none", got)
	}
}

// An empty key is a key, as in Kafka's clients and franz-go (only a nil
// one is none): its record stays on the empty key's partition, and waits
// there, when that partition refuses appends, where a record without a
// key goes to one that takes them. In a synctest bubble, as
// TestHealthStickyKeepsKeysInPlace.
func TestHealthStickyKeepsEmptyKeyInPlace(t *testing.T) {
	synctest.Test(t, testHealthStickyKeepsEmptyKeyInPlace)
}

func testHealthStickyKeepsEmptyKeyInPlace(t *testing.T) {
	const n = 3
	home := KeyPartition([]byte{}, n)
	c := newHealthClient(n)
	c.fence(home)
	p := newHealthProducer(t, c, DeliveryTimeout(300*time.Millisecond), RetryBackoff(10*time.Millisecond))
	for i, part := range partitionsOf(t, p, keyless(20)...) {
		if part == home {
			t.Fatalf("record %d without a key went to partition %d, which refuses appends", i, home)
		}
	}
	r := &record.Record{Key: []byte{}}
	err := p.ProduceSync(healthCtx(t), r)
	if !errors.Is(err, ErrDeliveryTimeout) || !errors.Is(err, api.ErrStorage) || r.Partition != home {
		t.Fatalf("record of the empty key: partition %d, %v; want its key's partition %d, a delivery timeout after KAFKA_STORAGE_ERROR", r.Partition, err, home)
	}
}

// A producer idle past MetadataMaxAge asks the HealthClient again with
// the look-up of the topic's count its next record makes (see
// MetadataMaxAge), before that record is partitioned: records without a
// key skip a partition that began to refuse appends while the producer
// was idle, and go again to one that takes them since. Untested until
// now: without that look the producer went by the answer of before the
// idle time, and sent the first records to the partition now fenced,
// where they waited out their DeliveryTimeout.
func TestHealthIdleProducerLooksAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newHealthClient(4)
		p := newHealthProducer(t, c, RecordPartitioner(RoundRobinPartitioner()), MetadataMaxAge(time.Minute))
		if got, want := partitionsOf(t, p, keyless(4)...), []int32{0, 1, 2, 3}; !slices.Equal(got, want) {
			t.Fatalf("partitions %v, want %v", got, want)
		}

		time.Sleep(time.Hour) // idle: the partitions' goroutines end
		synctest.Wait()
		c.fence(1, 3)
		time.Sleep(time.Hour)
		for i, part := range partitionsOf(t, p, keyless(4)...) {
			if part == 1 || part == 3 {
				t.Fatalf("record %d went to partition %d, fenced while the producer was idle", i, part)
			}
		}
		if _, refused, _, _ := c.stats(); len(refused) != 0 {
			t.Fatalf("refused %v: want none", refused)
		}

		time.Sleep(time.Hour)
		synctest.Wait()
		c.heal()
		time.Sleep(time.Hour)
		got := partitionsOf(t, p, keyless(4)...)
		if slices.Sort(got); !slices.Equal(got, []int32{0, 1, 2, 3}) {
			t.Fatalf("partitions %v after the partitions healed: want each of the 4", got)
		}
	})
}
