package producer_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// keyOrManual partitions a keyed record by its key (KeyPartition) and
// another by its Partition field.
var keyOrManual = producer.PartitionerFunc(func(r *record.Record, n int) int32 {
	if r.Key != nil {
		return producer.KeyPartition(r.Key, n)
	}
	return r.Partition
})

// keyOn returns the first of key0, key1, ... that KeyPartition maps to
// want among n partitions.
func keyOn(t *testing.T, n int, want int32) []byte {
	for i := range 10000 {
		if k := []byte(fmt.Sprint("key", i)); producer.KeyPartition(k, n) == want {
			return k
		}
	}
	t.Fatal("no such key")
	return nil
}

// keyFor returns a key that KeyPartition maps to want among n partitions
// and to another than want among m.
func keyFor(t *testing.T, n int, want int32, m int) []byte {
	for i := range 10000 {
		k := []byte(fmt.Sprint("k", i))
		if producer.KeyPartition(k, n) == want && producer.KeyPartition(k, m) != want {
			return k
		}
	}
	t.Fatal("no such key")
	return nil
}

// countRig returns a broker whose topic "t" has parts partitions, a
// countClient of it, the test's ctx, and a producer (partitioner
// keyOrManual, look-ups only when needed) that has produced to "t" once,
// and so knows its partitions.
func countRig(t *testing.T, parts int) (*runnel.Broker, *countClient, context.Context, *producer.Producer) {
	b := newBroker(t, runneltest.Topic("t", parts))
	c := &countClient{Broker: b}
	ctx := testCtx(t)
	p := newProducer(t, c, producer.DefaultTopic("t"), producer.MetadataMaxAge(time.Hour),
		producer.RecordPartitioner(keyOrManual))
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Partition: 0, Value: []byte("x")}))
	return b, c, ctx, p
}

// heldLookUp makes the next look-up of c read the count at once and
// answer only once release is closed; held is closed once it has read.
func heldLookUp(c *countClient) (held, release chan struct{}) {
	held, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	c.setHook(func(ctx context.Context, topic string, next func() (int, error)) (int, error) {
		first := false
		once.Do(func() { first = true })
		if !first {
			return next()
		}
		n, err := next()
		close(held)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return n, err
	})
	return held, release
}

// topicChange changes topic t on the broker.
type topicChange func(t *testing.T, ctx context.Context, b *runnel.Broker)

// recreate deletes topic t and creates it again with n partitions.
func recreate(n int) topicChange {
	return func(t *testing.T, ctx context.Context, b *runnel.Broker) {
		require.NoError(t, b.DeleteTopic(ctx, "t"))
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: n}))
	}
}

// grow grows topic t to n partitions.
func grow(n int) topicChange {
	return func(t *testing.T, ctx context.Context, b *runnel.Broker) {
		require.NoError(t, b.CreatePartitions(ctx, "t", n))
	}
}

// requireStaleCountNotFollowed runs the race of the stale count
// tests. A producer knows topic t's parts partitions; before (if not nil)
// changes the topic; a look-up of the count then reads stale partitions,
// and answers only after during changed the topic to now partitions and
// a look-up begun later (for a record past the count) read those. The
// stale answer, coming last, must not be followed: a keyed record that
// the two counts place apart, produced then, goes where now places it,
// and is delivered.
func requireStaleCountNotFollowed(t *testing.T, parts int, before, during topicChange, stale, now int) {
	t.Helper()
	b, c, ctx, p := countRig(t, parts)
	if before != nil {
		before(t, ctx, b)
	}
	held, release := heldLookUp(c)
	first := make(chan error, 1)
	go func() { first <- p.ProduceSync(ctx, &record.Record{Partition: 7, Value: []byte("7")}) }()
	testkit.AwaitHold(t, held, first, "the ProduceSync of 7") // it read stale

	during(t, ctx, b)
	// A look-up begun now, for a record past every count, reads now.
	past := int32(max(parts, stale, now))
	require.ErrorIs(t, p.ProduceSync(ctx, &record.Record{Partition: past, Value: []byte("later")}), producer.ErrInvalidPartition)
	close(release) // the first look-up's answer, stale, comes last
	require.ErrorIs(t, testkit.Await(t, first, "ProduceSync's answer"), producer.ErrInvalidPartition)

	k := keyFor(t, max(stale, now), int32(max(stale, now)-1), min(stale, now))
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Key: k, Value: []byte("k")}),
		"a record for the topic's %d partitions, produced once a look-up read them", now)
	require.Equal(t, []string{"k"}, values(readRecords(t, b, "t", producer.KeyPartition(k, now))),
		"where %d partitions place the key, not %d", now, stale)
}

// TestStaleLargerCountAfterRecreate: a look-up of the partition
// count that read the old topic's 4 partitions answers only after the
// topic was deleted and created again with 2, and after a later look-up
// brought those 2 to the producer. The stale answer must not take the
// producer back to 4 partitions: a keyed record that the topic's 2
// partitions take, produced once the producer knew them, must be
// delivered. It went to partition 3, which the topic no longer has, and
// failed with ErrUnknownTopicOrPartition.
func TestStaleLargerCountAfterRecreate(t *testing.T) {
	requireStaleCountNotFollowed(t, 4, nil, recreate(2), 4, 2)
}

// TestStaleSmallerCountAfterRecreateAndGrowth: the topic of 4
// partitions is deleted and created again with 2; a look-up reads those 2
// and answers only after the topic grew to 3 and a later look-up brought
// the 3 to the producer. The stale answer must not take the producer
// back to 2: a keyed record goes where the topic's 3 partitions put it.
// It went where 2 put it (until MetadataMaxAge).
func TestStaleSmallerCountAfterRecreateAndGrowth(t *testing.T) {
	requireStaleCountNotFollowed(t, 4, recreate(2), grow(3), 2, 3)
}

// TestLargerCountOfALaterLookUpAfterRecreate: the topic of 4
// partitions is deleted and created again with 2; a look-up reads those
// 2; a look-up begun after it reads the count once the topic grew to 6,
// and answers last. Its larger count is the newer (it began after the
// look-up that read the new topic), and is followed: its record, for
// partition 5, is delivered. (A guard that ignored every larger count of
// a look-up begun before the smaller count was followed refused it with
// ErrInvalidPartition.)
func TestLargerCountOfALaterLookUpAfterRecreate(t *testing.T) {
	b, c, ctx, p := countRig(t, 4)
	require.NoError(t, b.DeleteTopic(ctx, "t"))
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))

	// The first look-up reads at once and answers once releaseA is
	// closed; the second reads once readB is closed and answers once
	// releaseB is.
	heldA, releaseA, readB, heldB, releaseB := make(chan struct{}), make(chan struct{}), make(chan struct{}), make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	calls := 0
	c.setHook(func(ctx context.Context, topic string, next func() (int, error)) (int, error) {
		mu.Lock()
		calls++
		call := calls
		mu.Unlock()
		wait := func(ch chan struct{}) {
			select {
			case <-ch:
			case <-ctx.Done():
			}
		}
		switch call {
		case 1:
			n, err := next()
			close(heldA)
			wait(releaseA)
			return n, err
		case 2:
			wait(readB)
			n, err := next()
			close(heldB)
			wait(releaseB)
			return n, err
		}
		return next()
	})
	first, second := make(chan error, 1), make(chan error, 1)
	go func() { first <- p.ProduceSync(ctx, &record.Record{Partition: 7, Value: []byte("7")}) }()
	testkit.AwaitHold(t, heldA, first, "the ProduceSync of 7") // it read 2
	go func() { second <- p.ProduceSync(ctx, &record.Record{Partition: 5, Value: []byte("5")}) }()
	require.NoError(t, b.CreatePartitions(ctx, "t", 6))
	close(readB)
	testkit.Await(t, heldB, "the look-up that reads 6") // it read 6
	close(releaseA)
	require.ErrorIs(t, testkit.Await(t, first, "ProduceSync's answer"), producer.ErrInvalidPartition) // 2 followed
	close(releaseB)
	require.NoError(t, testkit.Await(t, second, "ProduceSync's answer"), "the later look-up's 6 is the newer count")
	require.Equal(t, []string{"5"}, values(readRecords(t, b, "t", 5)))
}

// A batch refused for an unknown partition fails at once when the topic,
// looked up again, has exactly as many partitions as the refused
// partition's id: it was deleted and created again with fewer, and
// partition n of a topic of n partitions does not exist. Not retried
// until the delivery timeout, as a transient answer would be.
func TestPartitionIDEqualToTheNewCountIsGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		b, err := runnel.Open(runnel.Config{})
		require.NoError(t, err)
		defer func() { require.NoError(t, b.Close()) }()
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))
		p, err := producer.New(b, producer.DefaultTopic("t"), producer.DeliveryTimeout(time.Minute),
			producer.RecordPartitioner(producer.ManualPartitioner()))
		require.NoError(t, err)
		defer p.Close()
		require.NoError(t, p.ProduceSync(ctx, &record.Record{Partition: 1, Value: []byte("a")}))
		require.NoError(t, b.DeleteTopic(ctx, "t"))
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
		t0 := time.Now()
		err = p.ProduceSync(ctx, &record.Record{Partition: 1, Value: []byte("b")})
		require.ErrorIs(t, err, api.ErrUnknownTopicOrPartition)
		require.NotErrorIs(t, err, producer.ErrDeliveryTimeout)
		require.Equal(t, t0, time.Now(), "failed at once, not retried")
	})
}

// countClient is a broker whose Partitions answers go through a hook.
type countClient struct {
	*runnel.Broker
	mu   sync.Mutex
	hook func(ctx context.Context, topic string, next func() (int, error)) (int, error)
}

func (c *countClient) Partitions(ctx context.Context, topic string) (int, error) {
	c.mu.Lock()
	hook := c.hook
	c.mu.Unlock()
	next := func() (int, error) { return c.Broker.Partitions(ctx, topic) }
	if hook == nil {
		return next()
	}
	return hook(ctx, topic, next)
}

func (c *countClient) setHook(h func(ctx context.Context, topic string, next func() (int, error)) (int, error)) {
	c.mu.Lock()
	c.hook = h
	c.mu.Unlock()
}

// Two look-ups of a topic's partition count under way at once (two
// records for partitions past the count the producer knows, here) may
// be answered out of order: the answer of the one asked first, read by
// the broker before CreatePartitions, comes after that of the one asked
// next, which saw the new partitions. The older answer must not take the
// topic back to its old count: the record whose look-up it answered is
// for a partition the topic has (as the newer answer says), and is
// delivered, not failed with ErrInvalidPartition; and the partitions
// stay known, so that a record for one is buffered without another
// look-up (keyed records, too, stay spread over them all).
func TestStaleCountAnswerDoesNotShrinkTopic(t *testing.T) {
	// The first look-up reads the count (2), and answers only once let go.
	r := newLookUpRace(t, true)
	require.NoError(t, r.b.CreatePartitions(r.ctx, "t", 4))
	r3 := &record.Record{Partition: 3, Value: []byte("3")}
	require.NoError(t, r.p.ProduceSync(r.ctx, r3)) // its look-up answers 4 at once
	close(r.release)                               // then the first one's answer, 2
	require.NoError(t, testkit.Await(t, r.done, "the ProduceSync of 2's answer"))
	b, c, p, ctx := r.b, r.c, r.p, r.ctx

	// The producer still knows partition 3: no further look-up.
	c.setHook(func(context.Context, string, func() (int, error)) (int, error) {
		return 0, errors.New("a look-up, though the producer knew the topic's 4 partitions")
	})
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Partition: 3, Value: []byte("3b")}))
	require.Equal(t, []string{"2"}, values(readRecords(t, b, "t", 2)))
	require.Equal(t, []string{"3", "3b"}, values(readRecords(t, b, "t", 3)))
}

// TestNewerCountAnswerOfAnOlderLookUpIsFollowed is the mirror of
// TestStaleCountAnswerDoesNotShrinkTopic: a look-up begun first
// but that reads the count last, after CreatePartitions, answers the
// newer count, and it is followed though a look-up begun later was
// followed before it (with the old count). The count of a topic only
// grows while the topic lives: a larger answer is never the staler one.
func TestNewerCountAnswerOfAnOlderLookUpIsFollowed(t *testing.T) {
	// The first look-up waits before it reads the count.
	r := newLookUpRace(t, false)
	// A second look-up, begun later, reads 2 and is followed first: its
	// record is refused, the topic having 2 partitions then.
	err := r.p.ProduceSync(r.ctx, &record.Record{Partition: 2, Value: []byte("early")})
	require.ErrorIs(t, err, producer.ErrInvalidPartition)
	require.NoError(t, r.b.CreatePartitions(r.ctx, "t", 4))
	close(r.release) // the first look-up reads 4 now
	require.NoError(t, testkit.Await(t, r.done, "the ProduceSync of 2's answer"), "the first look-up's answer (4) is the newer")
	require.Equal(t, []string{"2"}, values(readRecords(t, r.b, "t", 2)))
}

// lookUpRace is a producer of manually partitioned records to topic t,
// of 2 partitions, whose record for partition 2 (done: its ProduceSync's
// error) is under way with its look-up of the count held: the look-up
// reads the count before it is held if readFirst, else once release is
// closed.
type lookUpRace struct {
	b       *runnel.Broker
	c       *countClient
	p       *producer.Producer
	ctx     context.Context
	release chan struct{}
	done    chan error
}

func newLookUpRace(t *testing.T, readFirst bool) *lookUpRace {
	b := newBroker(t, runneltest.Topic("t", 2))
	r := &lookUpRace{b: b, c: &countClient{Broker: b}, ctx: testCtx(t),
		release: make(chan struct{}), done: make(chan error, 1)}
	r.p = newProducer(t, r.c, producer.DefaultTopic("t"), producer.MetadataMaxAge(time.Hour),
		producer.RecordPartitioner(producer.ManualPartitioner()))
	require.NoError(t, r.p.ProduceSync(r.ctx, &record.Record{Value: []byte("0")}))
	held := make(chan struct{})
	var once sync.Once
	r.c.setHook(func(ctx context.Context, topic string, next func() (int, error)) (int, error) {
		first := false
		once.Do(func() { first = true })
		if !first {
			return next()
		}
		var n int
		var err error
		if readFirst {
			n, err = next()
		}
		close(held)
		select {
		case <-r.release:
		case <-ctx.Done():
		}
		if !readFirst {
			n, err = next()
		}
		return n, err
	})
	go func() { r.done <- r.p.ProduceSync(r.ctx, &record.Record{Partition: 2, Value: []byte("2")}) }()
	testkit.AwaitHold(t, held, r.done, "the ProduceSync of 2")
	return r
}

// TestStaleLargerCountAfterAnUnchangedAnswer: the producer knows
// the topic's 2 partitions; the topic grows to 4, and a look-up reads
// those 4 but answers only after the topic was deleted and created again
// with 2, and after a look-up begun later read those 2, the count the
// producer knew. The look-ups read in the order they began, so the stale
// answer must not take the producer to 4 partitions: a keyed record
// produced once the later look-up answered goes to the topic's 2
// partitions and is delivered. (The old guard of a shrink, shrunkAt,
// was not set: the later look-up's answer changed nothing. The record
// went to partition 3, which the topic no longer has, and failed with
// ErrUnknownTopicOrPartition.)
func TestStaleLargerCountAfterAnUnchangedAnswer(t *testing.T) {
	requireStaleCountNotFollowed(t, 2, grow(4), recreate(2), 4, 2)
}

// TestStaleSmallerCountAfterAnUnchangedAnswer: the producer knows
// the topic's 4 partitions; the topic is deleted and created again with
// 2, and a look-up reads those 2 but answers only after the topic grew
// back to 4 and a look-up begun later read those 4, the count the
// producer knew. The stale answer must not take the producer to 2
// partitions: a keyed record produced once the later look-up answered
// goes where the topic's 4 partitions put it. (Neither of the old
// guards, grownBy and shrunkBy, was set: the later look-up's answer
// changed nothing. The record went where 2 partitions put it, and would
// have until MetadataMaxAge.)
func TestStaleSmallerCountAfterAnUnchangedAnswer(t *testing.T) {
	requireStaleCountNotFollowed(t, 4, recreate(2), grow(4), 2, 4)
}

// TestGrowthRacingProducersPastTheCount: goroutines share a
// producer (ManualPartitioner) and produce to partitions the topic does
// not have yet, while another goroutine grows the topic one partition at
// a time. A record produced once the growth that gave it its partition
// has returned (CreatePartitions) is delivered there, whatever look-ups
// of the count the other goroutines' records have under way (Produce's
// doc: a partition past the count the producer knows makes it ask the
// broker again; MetadataMaxAge: a look-up begun once another has answered
// reads the newer count). One produced before may fail with
// ErrInvalidPartition, and nothing else.
func TestGrowthRacingProducersPastTheCount(t *testing.T) {
	const final, goroutines, each = 8, 6, 60
	b := newBroker(t, runneltest.Topic("t", 1))
	p := newProducer(t, b, producer.DefaultTopic("t"), producer.RecordPartitioner(producer.ManualPartitioner()))
	ctx := testCtx(t)
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Value: []byte("first")})) // the producer knows 1 partition
	var grown, invalid, done atomic.Int32
	grown.Store(1)
	var (
		mu       sync.Mutex
		problems []string
		wg       sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 2; n <= final; n++ {
			// Each growth after a share of the records: growth and
			// look-ups interleave.
			for done.Load() < int32((n-1)*goroutines*each/final) {
				runtime.Gosched()
			}
			if err := b.CreatePartitions(ctx, "t", n); err != nil {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("CreatePartitions(%d): %v", n, err))
				mu.Unlock()
				return
			}
			grown.Store(int32(n))
		}
	}()
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				target := int32((g + i) % final)
				known := grown.Load()
				r := &record.Record{Partition: target, Value: fmt.Appendf(nil, "%d-%d", g, i)}
				err := p.ProduceSync(ctx, r)
				done.Add(1)
				if err != nil {
					invalid.Add(1)
				}
				switch {
				case err == nil:
					if r.Partition != target {
						mu.Lock()
						problems = append(problems, fmt.Sprintf("%s went to %d, not %d", r.Value, r.Partition, target))
						mu.Unlock()
					}
				case target < known || !errors.Is(err, producer.ErrInvalidPartition):
					mu.Lock()
					problems = append(problems, fmt.Sprintf("%s to partition %d (the topic had %d when it was produced): %v", r.Value, target, known, err))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	require.Empty(t, problems)
	t.Logf("%d of %d records failed with ErrInvalidPartition, produced before their partition was there", invalid.Load(), goroutines*each)
}

// idleProducer, in a synctest bubble, opens an in-memory broker with
// topic t of one partition, makes a producer over client(b) with
// MetadataMaxAge a minute and opts, writes a record to t (key, and value
// "first"), and lets the producer idle for an hour: its goroutines end
// and the count is due. Both close when the test ends.
func idleProducer(t *testing.T, client func(*runnel.Broker) producer.Client, key []byte, opts ...producer.Opt) (*runnel.Broker, *producer.Producer) {
	t.Helper()
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	p, err := producer.New(client(b), append([]producer.Opt{producer.MetadataMaxAge(time.Minute)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "t", Key: key, Value: []byte("first")}))
	time.Sleep(time.Hour) // idle: its goroutines end
	synctest.Wait()
	return b, p
}

// A producer that wrote to a topic, then was idle for longer than
// MetadataMaxAge while the topic grew, maps its next keyed record by the
// topic's count of now: no goroutine of the topic runs to look the count
// up between batches, so the record has it looked up before it is
// partitioned (see MetadataMaxAge), as Kafka's producer forgets a topic
// idle for metadata.max.idle.ms (5 min) and makes the next send wait for
// its metadata, and kgo's metadata loop refreshes every MetadataMaxAge
// whatever the traffic. It went by the count of before: the look-ups came
// only after a batch (maybeRefresh, after send), never while the
// producer was idle, and Produce did not look at the count's age.
func TestIdleProducerMapsKeysByTheCountOfNow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b, p := idleProducer(t, func(b *runnel.Broker) producer.Client { return b }, []byte("first"))
		require.NoError(t, b.CreatePartitions(ctx, "t", 8))
		time.Sleep(time.Hour) // 60 times MetadataMaxAge after the growth

		var key []byte
		for i := 0; ; i++ {
			key = []byte(fmt.Sprint("k", i))
			if producer.KeyPartition(key, 8) != 0 {
				break
			}
		}
		r := &record.Record{Topic: "t", Key: key}
		require.NoError(t, p.ProduceSync(ctx, r))
		r2 := &record.Record{Topic: "t", Key: key}
		require.NoError(t, p.ProduceSync(ctx, r2))
		t.Logf("key %q: first record after the idle hour in partition %d, the next in %d; KeyPartition of 8: %d",
			key, r.Partition, r2.Partition, producer.KeyPartition(key, 8))
		require.Equal(t, producer.KeyPartition(key, 8), r.Partition,
			"an hour after CreatePartitions (MetadataMaxAge a minute), the key's record went by the count of before")
	})
}

// The same after the topic was deleted and created again with fewer
// partitions while the producer was idle: its next records go to the
// partitions the topic has now. They were partitioned by the old count,
// refused for a partition the topic no longer has, and failed (the
// look-up confirmed that partition gone), though the topic existed and
// took them.
func TestIdleProducerWritesRecordsAfterRecreateWithFewer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b, err := runnel.Open(runnel.Config{})
		require.NoError(t, err)
		defer b.Close()
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 8}))
		p, err := producer.New(b, producer.MetadataMaxAge(time.Minute), producer.Linger(10*time.Millisecond))
		require.NoError(t, err)
		defer p.Close()
		var recs []*record.Record
		for i := range 8 {
			recs = append(recs, &record.Record{Topic: "t", Key: []byte(fmt.Sprint("k", i))})
		}
		require.NoError(t, p.ProduceSync(ctx, recs...))

		time.Sleep(time.Hour)
		synctest.Wait()
		require.NoError(t, b.DeleteTopic(ctx, "t"))
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
		time.Sleep(time.Hour)

		recs = recs[:0]
		for i := range 8 {
			recs = append(recs, &record.Record{Topic: "t", Key: []byte(fmt.Sprint("k", i))})
		}
		recs = append(recs, &record.Record{Topic: "t", Value: []byte("no key")})
		failed := 0
		for _, r := range recs {
			p.Produce(ctx, r, func(r *record.Record, err error) {
				if err != nil {
					failed++
					t.Logf("key %q, partition %d: %v", r.Key, r.Partition, err)
				}
			})
		}
		require.NoError(t, p.Flush(ctx))
		require.Zero(t, failed, "records failed an hour after the topic was created again with 1 partition (MetadataMaxAge a minute)")
	})
}

// The look-up an idle topic's record waits for is bounded as a topic's
// first is (see MetadataMaxAge and Produce): a broker that does not
// answer it fails the record with ErrDeliveryTimeout, unwritten, and the
// other records of the same ProduceSync for the topic with it at once;
// the count stays due, so the next record asks again, and once the broker
// answers it is written. Before, no look-up was made there at all.
func TestIdleProducerLookUpBoundedByDeliveryTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		var c *countingHold
		b, p := idleProducer(t, func(b *runnel.Broker) producer.Client { c = &countingHold{Broker: b}; return c }, nil,
			producer.DeliveryTimeout(10*time.Second))
		c.hold.Store(true)
		err := p.ProduceSync(ctx, &record.Record{Topic: "t", Value: []byte("a")}, &record.Record{Topic: "t", Value: []byte("b")})
		require.ErrorIs(t, err, producer.ErrDeliveryTimeout)
		require.Len(t, producer.RecordErrors(err), 2)
		require.EqualValues(t, 1, c.held.Load(), "one look-up for the ProduceSync's records")
		err = p.ProduceSync(ctx, &record.Record{Topic: "t", Value: []byte("c")})
		require.ErrorIs(t, err, producer.ErrDeliveryTimeout)
		require.EqualValues(t, 2, c.held.Load(), "the count stays due after a failed look-up")

		c.hold.Store(false)
		require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "t", Value: []byte("d")}))
		require.NoError(t, p.Close())
		require.Equal(t, []string{"first", "d"}, values(runneltest.ConsumeAll(t, b, "t")))
	})
}

// TryProduce does not wait for the look-up a record of a topic idle past
// MetadataMaxAge makes (see MetadataMaxAge): a retriable error of it
// fails the record at once, with the look-up's error, before TryProduce
// returns, as for a topic's first look-up; the count stays due, and the
// next record's look-up that answers has it written. No test held it: a
// TryProduce that retried the look-up, as Produce does, until it
// answered or DeliveryTimeout passed, passed them all.
func TestIdleProducerTryProduceDoesNotRetryTheLookUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		var f *runneltest.Faults
		b, p := idleProducer(t, func(b *runnel.Broker) producer.Client { f = runneltest.NewFaults(t, b); return f }, nil,
			producer.RetryBackoff(time.Millisecond))
		rule := f.Add(runneltest.Fault{Op: runneltest.OpPartitions, Topic: "t", Err: api.ErrRequestTimedOut, Count: 1})
		var got error
		answered := false
		p.TryProduce(ctx, &record.Record{Topic: "t", Value: []byte("a")}, func(_ *record.Record, err error) { got, answered = err, true })
		require.True(t, answered, "TryProduce returned before the record's promise ran")
		require.ErrorIs(t, got, api.ErrRequestTimedOut)
		require.Equal(t, 1, rule.Hits())

		done := make(chan error, 1)
		p.TryProduce(ctx, &record.Record{Topic: "t", Value: []byte("b")}, func(_ *record.Record, err error) { done <- err })
		require.NoError(t, <-done)
		require.NoError(t, p.Close())
		require.Equal(t, []string{"first", "b"}, values(runneltest.ConsumeAll(t, b, "t")))
	})
}

// While a partition's goroutine of the topic runs (here, its batch
// lingering), a record of the topic does not wait for a look-up of the
// count, however old: the goroutine looks it up after its next batch
// (see MetadataMaxAge), and the record is partitioned by the count of
// before. Only a topic none of whose goroutines runs has its record look
// the count up (TestIdleProducerMapsKeysByTheCountOfNow). No test held
// it: a Produce that looked up every due count, goroutine or not, passed
// them all.
func TestBusyTopicsRecordDoesNotWaitForALookUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b, err := runnel.Open(runnel.Config{})
		require.NoError(t, err)
		defer b.Close()
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
		c := &countingHold{Broker: b}
		p, err := producer.New(c, producer.MetadataMaxAge(time.Minute), producer.Linger(10*time.Minute), producer.DeliveryTimeout(time.Hour))
		require.NoError(t, err)
		defer p.Close()
		var promises sync.WaitGroup
		produce := func(v string) {
			promises.Add(1)
			p.Produce(ctx, &record.Record{Topic: "t", Value: []byte(v)}, func(_ *record.Record, err error) {
				if err != nil {
					t.Errorf("record %s: %v", v, err)
				}
				promises.Done()
			})
		}
		produce("a") // its batch lingers: the partition's goroutine runs
		time.Sleep(5 * time.Minute)
		c.hold.Store(true) // a look-up would wait until its deadline
		produce("b")
		synctest.Wait()
		require.Zero(t, c.held.Load(), "a record of a topic whose goroutine runs looked the count up")
		c.hold.Store(false)
		require.NoError(t, p.Flush(ctx))
		promises.Wait()
	})
}

// The look-up a record of an idle topic makes (its count MetadataMaxAge
// old) makes the count fresh: the partition's goroutine, started for the
// record, does not look it up again after its batch. Without the
// refreshAt the look-up sets, every wake of an idle topic asked twice.
func TestIdleProducerLookUpMakesTheCountFresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		var c *countPartitions
		_, p := idleProducer(t, func(b *runnel.Broker) producer.Client { c = &countPartitions{hookClient: &hookClient{b: b}}; return c }, nil)
		before := c.calls.Load()
		require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "t", Value: []byte("after")}))
		time.Sleep(time.Second) // less than MetadataMaxAge: the goroutine ends meanwhile
		synctest.Wait()
		require.Equal(t, int32(1), c.calls.Load()-before, "look-ups for the first record after the idle hour")
	})
}
