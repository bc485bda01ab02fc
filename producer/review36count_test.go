package producer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel"
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

// requireStaleCountNotFollowed runs the race of the review36 count
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
	<-held // it read stale

	during(t, ctx, b)
	// A look-up begun now, for a record past every count, reads now.
	past := int32(max(parts, stale, now))
	require.ErrorIs(t, p.ProduceSync(ctx, &record.Record{Partition: past, Value: []byte("later")}), producer.ErrInvalidPartition)
	close(release) // the first look-up's answer, stale, comes last
	require.ErrorIs(t, <-first, producer.ErrInvalidPartition)

	k := keyFor(t, max(stale, now), int32(max(stale, now)-1), min(stale, now))
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Key: k, Value: []byte("k")}),
		"a record for the topic's %d partitions, produced once a look-up read them", now)
	require.Equal(t, []string{"k"}, values(readRecords(t, b, "t", producer.KeyPartition(k, now))),
		"where %d partitions place the key, not %d", now, stale)
}

// TestReview36StaleLargerCountAfterRecreate: a look-up of the partition
// count that read the old topic's 4 partitions answers only after the
// topic was deleted and created again with 2, and after a later look-up
// brought those 2 to the producer. The stale answer must not take the
// producer back to 4 partitions: a keyed record that the topic's 2
// partitions take, produced once the producer knew them, must be
// delivered. It went to partition 3, which the topic no longer has, and
// failed with ErrUnknownTopicOrPartition.
func TestReview36StaleLargerCountAfterRecreate(t *testing.T) {
	requireStaleCountNotFollowed(t, 4, nil, recreate(2), 4, 2)
}

// TestReview36StaleSmallerCountAfterRecreateAndGrowth: the topic of 4
// partitions is deleted and created again with 2; a look-up reads those 2
// and answers only after the topic grew to 3 and a later look-up brought
// the 3 to the producer. The stale answer must not take the producer
// back to 2: a keyed record goes where the topic's 3 partitions put it.
// It went where 2 put it (until MetadataMaxAge).
func TestReview36StaleSmallerCountAfterRecreateAndGrowth(t *testing.T) {
	requireStaleCountNotFollowed(t, 4, recreate(2), grow(3), 2, 3)
}

// TestReview36LargerCountOfALaterLookUpAfterRecreate: the topic of 4
// partitions is deleted and created again with 2; a look-up reads those
// 2; a look-up begun after it reads the count once the topic grew to 6,
// and answers last. Its larger count is the newer (it began after the
// look-up that read the new topic), and is followed: its record, for
// partition 5, is delivered. (A guard that ignored every larger count of
// a look-up begun before the smaller count was followed refused it with
// ErrInvalidPartition.)
func TestReview36LargerCountOfALaterLookUpAfterRecreate(t *testing.T) {
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
	<-heldA // it read 2
	go func() { second <- p.ProduceSync(ctx, &record.Record{Partition: 5, Value: []byte("5")}) }()
	require.NoError(t, b.CreatePartitions(ctx, "t", 6))
	close(readB)
	<-heldB // it read 6
	close(releaseA)
	require.ErrorIs(t, <-first, producer.ErrInvalidPartition) // 2 followed
	close(releaseB)
	require.NoError(t, <-second, "the later look-up's 6 is the newer count")
	require.Equal(t, []string{"5"}, values(readRecords(t, b, "t", 5)))
}
