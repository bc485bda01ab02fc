package runnel_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// A service that used Kafka's Java clients (KafkaProducer,
// KafkaConsumer, AdminClient, Spring Kafka) ported to Go with runnel
// embedded. These tests pin where runnel's answer differs from what the
// Java clients' configs and methods lead such a user to expect; README.md's
// Java table (TestReadmeJavaRowsSayIt) tells them.

// TestJavaBatchSizeIsNotBatchMaxBytes: Java's batch.size (16 KiB)
// only sizes batches, and a larger record goes in a batch of its own, up
// to max.request.size (1 MiB). BatchMaxBytes is both: a record that does
// not fit a batch of BatchMaxBytes fails, before it is partitioned, with
// ErrRecordTooLarge. So batch.size=16384 ported as BatchMaxBytes(16384)
// fails every record over 16 KiB; the default (1 MiB, max.request.size)
// takes it.
func TestJavaBatchSizeIsNotBatchMaxBytes(t *testing.T) {
	ctx := context.Background()
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	big := func() *record.Record { return &record.Record{Value: bytes.Repeat([]byte("x"), 20000)} }

	p := runneltest.NewProducer(t, b, producer.DefaultTopic("t"), producer.BatchMaxBytes(16384))
	err := p.ProduceSync(ctx, big())
	require.ErrorIs(t, err, producer.ErrRecordTooLarge)
	errs := producer.RecordErrors(err)
	require.Len(t, errs, 1)
	require.Equal(t, producer.UnknownPartition, errs[0].Partition, "failed before it was partitioned, as Java's send() fails it")
	require.False(t, producer.MayBeWritten(err))

	p = runneltest.NewProducer(t, b, producer.DefaultTopic("t"))
	require.NoError(t, p.ProduceSync(ctx, big()))
}

// TestJavaLingerPastDeliveryTimeout: Java's producer, given a
// linger.ms past the default delivery.timeout.ms (and no
// delivery.timeout.ms), raises the delivery timeout to linger.ms plus
// request.timeout.ms; New refuses a Linger not shorter than
// DeliveryTimeout, whether DeliveryTimeout was given or not.
func TestJavaLingerPastDeliveryTimeout(t *testing.T) {
	b := runneltest.NewBroker(t)
	_, err := producer.New(b, producer.Linger(3*time.Minute))
	require.ErrorIs(t, err, producer.ErrInvalidOption)
	p, err := producer.New(b, producer.Linger(3*time.Minute), producer.DeliveryTimeout(4*time.Minute))
	require.NoError(t, err)
	require.NoError(t, p.Close())
}

// TestJavaBufferMemorySmallerThanRecord: Java's send() fails a
// record larger than buffer.memory with RecordTooLargeException; a
// MaxBufferedBytes below a record's size takes it when nothing else is
// buffered.
func TestJavaBufferMemorySmallerThanRecord(t *testing.T) {
	ctx := context.Background()
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	p := runneltest.NewProducer(t, b, producer.DefaultTopic("t"), producer.MaxBufferedBytes(1000))
	r := &record.Record{Value: bytes.Repeat([]byte("x"), 5000)}
	require.NoError(t, p.ProduceSync(ctx, r))
	require.EqualValues(t, 0, r.Offset)
}

// TestJavaNoMaxBlock: there is no max.block.ms. A Produce on a
// full buffer waits until its ctx ends, and then fails with ctx's error
// (Java: TimeoutException after max.block.ms, 60 s); TryProduce fails at
// once with ErrMaxBuffered. A topic that does not exist fails a record at
// once with ErrUnknownTopic (Java's send() waits max.block.ms for its
// metadata). And a ctx used to bound the wait governs the record until
// its batch is sent: cancelled as soon as Produce returns, it drops a
// record still lingering, unwritten.
func TestJavaNoMaxBlock(t *testing.T) {
	ctx := context.Background()
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	f := runneltest.NewFaults(t, b)
	hold := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.HoldRequest, Count: runneltest.Unlimited})
	p := runneltest.NewProducer(t, f, producer.DefaultTopic("t"), producer.MaxBufferedRecords(1))

	var firstErr error
	first := &record.Record{Value: []byte("first")}
	p.Produce(ctx, first, func(_ *record.Record, err error) { firstErr = err })
	require.NoError(t, hold.Wait(ctx, 1)) // its request is held: the buffer stays full

	var tryErr error
	p.TryProduce(ctx, &record.Record{Value: []byte("try")}, func(_ *record.Record, err error) { tryErr = err })
	require.ErrorIs(t, tryErr, producer.ErrMaxBuffered)

	// This Produce waits for space until its ctx ends, however long that is.
	blockCtx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	var blockedErr error
	p.Produce(blockCtx, &record.Record{Value: []byte("blocked")}, func(_ *record.Record, err error) { blockedErr = err })
	cancel()
	require.ErrorIs(t, blockedErr, context.DeadlineExceeded)
	require.False(t, errors.Is(blockedErr, producer.ErrDeliveryTimeout))
	require.False(t, producer.MayBeWritten(blockedErr))

	hold.Remove()
	require.NoError(t, p.Flush(ctx))
	require.NoError(t, firstErr)

	// A ctx that bounds the wait for space, cancelled once Produce
	// returned, drops the record it governs while it lingers.
	q := runneltest.NewProducer(t, b, producer.DefaultTopic("t"), producer.Linger(time.Minute))
	sendCtx, cancel := context.WithCancel(ctx)
	var droppedErr error
	q.Produce(sendCtx, &record.Record{Value: []byte("dropped")}, func(_ *record.Record, err error) { droppedErr = err })
	cancel()
	require.NoError(t, q.Flush(ctx))
	require.ErrorIs(t, droppedErr, context.Canceled)

	var unknownErr error
	q.Produce(ctx, &record.Record{Topic: "not-created", Value: []byte("x")}, func(_ *record.Record, err error) { unknownErr = err })
	require.ErrorIs(t, unknownErr, runnel.ErrUnknownTopic, "given before Produce returned, without a wait")

	require.Equal(t, []string{"first"}, recordValues(runneltest.ConsumeAll(t, b, "t")))
}

// recordValues returns the records' values as strings.
func recordValues(recs []*record.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, string(r.Value))
	}
	return out
}

// TestJavaCloseIsCloseZero: Java's close() waits for every record
// sent to be delivered (close(Duration) up to the duration); Close is
// close(Duration.ZERO): a record still buffered fails with ErrClosed.
// Flush, then Close, is Java's close().
func TestJavaCloseIsCloseZero(t *testing.T) {
	ctx := context.Background()
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))

	p, err := producer.New(b, producer.DefaultTopic("t"), producer.Linger(time.Minute))
	require.NoError(t, err)
	var lostErr error
	p.Produce(ctx, &record.Record{Value: []byte("lost")}, func(_ *record.Record, err error) { lostErr = err })
	require.NoError(t, p.Close())
	require.ErrorIs(t, lostErr, producer.ErrClosed)

	p, err = producer.New(b, producer.DefaultTopic("t"), producer.Linger(time.Minute))
	require.NoError(t, err)
	var keptErr error
	p.Produce(ctx, &record.Record{Value: []byte("kept")}, func(_ *record.Record, err error) { keptErr = err })
	require.NoError(t, p.Flush(ctx))
	require.NoError(t, p.Close())
	require.NoError(t, keptErr)

	require.Equal(t, []string{"kept"}, recordValues(runneltest.ConsumeAll(t, b, "t")))
}

// TestJavaExplicitPartition: Java's ProducerRecord with a
// partition goes to that partition whatever the partitioner. Under the
// default partitioner a record's Partition is overwritten: a keyed one
// goes where murmur2 puts its key. ManualPartitioner takes Partition as
// it is, for every record: a port that mixes explicit and keyed records
// sets Partition itself with producer.KeyPartition for the keyed ones.
func TestJavaExplicitPartition(t *testing.T) {
	ctx := context.Background()
	b := runneltest.NewBroker(t, runneltest.Topic("t", 4))
	key := []byte("order-1")
	byKey := producer.KeyPartition(key, 4)
	explicit := (byKey + 1) % 4

	p := runneltest.NewProducer(t, b, producer.DefaultTopic("t"))
	r := &record.Record{Key: key, Partition: explicit, Value: []byte("v")}
	require.NoError(t, p.ProduceSync(ctx, r))
	require.Equal(t, byKey, r.Partition, "the default partitioner overwrote the explicit partition")

	m := runneltest.NewProducer(t, b, producer.DefaultTopic("t"), producer.RecordPartitioner(producer.ManualPartitioner()))
	r = &record.Record{Key: key, Partition: explicit, Value: []byte("v")}
	require.NoError(t, m.ProduceSync(ctx, r))
	require.Equal(t, explicit, r.Partition)
	r = &record.Record{Key: key, Partition: producer.KeyPartition(key, 4), Value: []byte("v")}
	require.NoError(t, m.ProduceSync(ctx, r))
	require.Equal(t, byKey, r.Partition)
}

// TestJavaCallbacksRunConcurrentlyAcrossPartitions: Java runs
// every callback on its one I/O thread, so callbacks never overlap, and
// a callback that counts into a plain field works. Promises run on one
// goroutine per partition: two partitions' promises run at once. Here
// the first partition's promise waits for the second's, which could not
// run if they shared a goroutine.
func TestJavaCallbacksRunConcurrentlyAcrossPartitions(t *testing.T) {
	ctx := context.Background()
	b := runneltest.NewBroker(t, runneltest.Topic("t", 2))
	p := runneltest.NewProducer(t, b, producer.DefaultTopic("t"), producer.RecordPartitioner(producer.ManualPartitioner()))

	secondRan := make(chan struct{})
	var firstSaw error
	p.Produce(ctx, &record.Record{Partition: 0, Value: []byte("a")}, func(_ *record.Record, err error) {
		select {
		case <-secondRan:
			firstSaw = err
		case <-time.After(testkit.HangGuard): // bounded: serialized promises never get here otherwise
			firstSaw = errors.New("partition 1's promise did not run while partition 0's did")
		}
	})
	p.Produce(ctx, &record.Record{Partition: 1, Value: []byte("b")}, func(*record.Record, error) { close(secondRan) })
	require.NoError(t, p.Flush(ctx))
	require.NoError(t, firstSaw)
}

// TestJavaCallbackOrderAcrossASplit: as with Java's producer, the
// promises of one partition run in the order its records were produced,
// also when the broker refuses their batch as too large and the producer
// splits it, so that the one record over max.message.bytes fails alone
// (RecordTooLargeException) and the others are written in order.
func TestJavaCallbackOrderAcrossASplit(t *testing.T) {
	ctx := context.Background()
	b := runneltest.NewBroker(t, runneltest.TopicConfig("t", log.TopicConfig{Partitions: 1,
		Config: log.Config{MaxMessageBytes: 1000}}))
	p := runneltest.NewProducer(t, b, producer.DefaultTopic("t"), producer.Linger(time.Minute))
	var mu sync.Mutex
	var got []string
	for i, n := range []int{10, 10, 2000, 10, 10} {
		name := string(rune('a' + i))
		p.Produce(ctx, &record.Record{Value: bytes.Repeat([]byte(name), n)}, func(r *record.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, producer.ErrRecordTooLarge):
				got = append(got, name+" too large")
			case err != nil:
				got = append(got, fmt.Sprint(name, " ", err))
			default:
				got = append(got, fmt.Sprint(name, "@", r.Offset))
			}
		})
	}
	require.NoError(t, p.Flush(ctx))
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"a@0", "b@1", "c too large", "d@2", "e@3"}, got)
}

// TestJavaInvalidRecordFailsAlone: Java's producer fails every
// record of a batch the broker refuses as INVALID_RECORD (its neighbours
// with "part of a batch which had one or more invalid records"); runnel's
// producer splits the batch, as both split one refused as too large, so
// that only the record at fault fails: here a record without a key on a
// compacted topic, its neighbours written.
func TestJavaInvalidRecordFailsAlone(t *testing.T) {
	ctx := context.Background()
	b := runneltest.NewBroker(t, runneltest.TopicConfig("c", log.TopicConfig{Partitions: 1,
		Config: log.Config{CleanupPolicy: log.Compact}}))
	p := runneltest.NewProducer(t, b, producer.DefaultTopic("c"), producer.Linger(time.Minute))
	var errs [3]error
	for i, k := range []string{"a", "", "b"} {
		r := &record.Record{Value: []byte("v")}
		if k != "" {
			r.Key = []byte(k)
		}
		p.Produce(ctx, r, func(_ *record.Record, err error) { errs[i] = err })
	}
	require.NoError(t, p.Flush(ctx))
	require.NoError(t, errs[0])
	require.ErrorIs(t, errs[1], log.ErrInvalidRecord)
	require.NoError(t, errs[2])
	require.Len(t, runneltest.ConsumeAll(t, b, "c"), 2)
}

// TestJavaSendFromCallback: a Java callback that sends a failed
// record to a dead-letter topic calls send(); a promise must not call
// Produce (it may wait for buffer space that only finished promises
// free), and calls TryProduce instead. Flush waits for what the promises
// produced.
func TestJavaSendFromCallback(t *testing.T) {
	ctx := context.Background()
	b := runneltest.NewBroker(t, runneltest.TopicConfig("t", log.TopicConfig{Partitions: 1,
		Config: log.Config{MaxMessageBytes: 1000}}), runneltest.Topic("dlq", 1))
	p := runneltest.NewProducer(t, b, producer.DefaultTopic("t"))
	var dlqErr error
	p.Produce(ctx, &record.Record{Key: []byte("k"), Value: bytes.Repeat([]byte("x"), 2000)}, func(r *record.Record, err error) {
		if err != nil {
			p.TryProduce(ctx, &record.Record{Topic: "dlq", Key: r.Key, Value: []byte(err.Error())},
				func(_ *record.Record, err error) { dlqErr = err })
		}
	})
	require.NoError(t, p.Flush(ctx))
	require.NoError(t, dlqErr)
	recs := runneltest.ConsumeAll(t, b, "dlq")
	require.Len(t, recs, 1)
	require.Equal(t, "k", string(recs[0].Key))
}

// TestJavaAcksZero: Java's RecordMetadata has offset -1 under
// acks=0; the broker in the process answers every request, so a record
// produced with AcksNone gets its offset, and no producer id (acks other
// than all turn idempotence off, as Java's producer does when
// enable.idempotence is not set).
func TestJavaAcksZero(t *testing.T) {
	ctx := context.Background()
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	p := runneltest.NewProducer(t, b, producer.DefaultTopic("t"), producer.Acks(producer.AcksNone))
	runneltest.ProduceValues(t, b, "t", "before")
	r := &record.Record{Value: []byte("v")}
	require.NoError(t, p.ProduceSync(ctx, r))
	require.EqualValues(t, 1, r.Offset)
	require.EqualValues(t, -1, r.ProducerID)
}

// TestJavaConsumerCalls pins the calls of KafkaConsumer whose
// runnel counterparts differ: assign() replaces the assignment, Assign
// adds one partition (Unassign the rest); position() after seekToEnd()
// looks the end up, Position answers false until the next Poll does;
// poll(Duration) returns empty records when nothing comes, Poll with a
// ctx that ends returns ctx's error; there is no max.poll.records (500):
// one Poll returns what one fetch brought (up to FetchMaxBytes and
// FetchMaxPartitionBytes), and a Records loop takes records one by one.
// In a synctest bubble: the last Poll's ctx (20 ms) must end before the
// broker's wait (FetchMaxWait, 500 ms by default) does; on the real
// clock a fetch descheduled past both found the two ready at once, and
// its select took the timer half the time (an empty answer, no error).
func TestJavaConsumerCalls(t *testing.T) {
	synctest.Test(t, testJavaConsumerCalls)
}

func testJavaConsumerCalls(t *testing.T) {
	ctx := context.Background()
	b := runneltest.NewBroker(t, runneltest.Topic("t", 2))
	vals := make([]string, 1000)
	for i := range vals {
		vals[i] = fmt.Sprint(i)
	}
	runneltest.ProduceValues(t, b, "t", vals...)

	c := runneltest.NewConsumer(t, b)
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	require.NoError(t, c.Assign("t", 1, consumer.End()))
	require.Equal(t, []api.TopicPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1}}, c.Assigned(), "Assign adds")
	_, ok := c.Position("t", 1)
	require.False(t, ok, "End is looked up by the next Poll")
	require.ErrorIs(t, c.Seek("t", 2, consumer.At(0)), consumer.ErrNotAssigned, "Java: IllegalStateException")

	fs, err := c.Poll(ctx)
	require.NoError(t, err)
	require.Greater(t, fs.NumRecords(), 500, "no max.poll.records")
	pos, ok := c.Position("t", 1)
	require.True(t, ok)
	require.EqualValues(t, 0, pos)

	c.Unassign("t", 0)
	pollCtx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	fs, err = c.Poll(pollCtx) // partition 1 has nothing past its end
	require.ErrorIs(t, err, context.DeadlineExceeded, "Java's poll(Duration) returns no records instead")
	require.Zero(t, fs.NumRecords())
}

// TestJavaWakeupIsCancel: KafkaConsumer.wakeup() makes a poll
// throw WakeupException; a Poll's ctx, cancelled from another goroutine,
// ends its wait with context.Canceled, and a Records loop yields it last.
func TestJavaWakeupIsCancel(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	c := runneltest.NewConsumer(t, b, consumer.FetchMaxWait(time.Hour))
	require.NoError(t, c.Assign("t", 0, consumer.End()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Poll(ctx)
		done <- err
	}()
	cancel() // wakeup()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(testkit.HangGuard):
		t.Fatal("Poll did not return after its ctx was cancelled")
	}
}

// TestJavaSeekBackRetries: Spring Kafka's DefaultErrorHandler
// retries a failed record by seeking its partition back to it; a Seek
// inside a Records loop makes the loop yield that record again before
// the rest of its partition.
func TestJavaSeekBackRetries(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testkit.HangGuard)
	defer cancel()
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	runneltest.ProduceValues(t, b, "t", "0", "1", "2")
	c := runneltest.NewConsumer(t, b)
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	var got []string
	failed := false
	for rec, err := range c.Records(ctx) {
		require.NoError(t, err)
		got = append(got, string(rec.Value))
		if string(rec.Value) == "1" && !failed {
			failed = true // the handler failed: retry the record
			require.NoError(t, c.Seek(rec.Topic, rec.Partition, consumer.At(rec.Offset)))
			continue
		}
		if string(rec.Value) == "2" {
			break
		}
	}
	require.Equal(t, []string{"0", "1", "1", "2"}, got)
}

// TestJavaOffsetsForTimes: offsetsForTimes answers null for a
// partition with no record at or after the time; ListOffset answers the
// high watermark, with Timestamp -1, which is how a port tells Java's
// null. listOffsets(OffsetSpec.maxTimestamp()) on an empty partition
// answers offset -1 in Kafka; ListOffset answers the high watermark (0),
// Timestamp -1 too. beginningOffsets and endOffsets are api.Earliest and
// api.Latest (the log start and the high watermark, as Java's
// read_uncommitted endOffsets).
func TestJavaOffsetsForTimes(t *testing.T) {
	ctx := context.Background()
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1), runneltest.Topic("empty", 1))
	t0 := time.UnixMilli(1_700_000_000_000)
	runneltest.Produce(t, b, "t", &record.Record{Value: []byte("a"), Timestamp: t0},
		&record.Record{Value: []byte("b"), Timestamp: t0.Add(time.Second)})

	lo, err := b.ListOffset(ctx, "t", 0, t0.Add(time.Second).UnixMilli())
	require.NoError(t, err)
	require.Equal(t, api.ListedOffset{Offset: 1, Timestamp: t0.Add(time.Second).UnixMilli(), TopicID: lo.TopicID}, lo)

	lo, err = b.ListOffset(ctx, "t", 0, t0.Add(time.Hour).UnixMilli()) // Java: null
	require.NoError(t, err)
	require.EqualValues(t, 2, lo.Offset, "the high watermark")
	require.EqualValues(t, -1, lo.Timestamp, "no record matched")

	for _, ts := range []int64{api.MaxTimestamp, api.Earliest, api.Latest} {
		lo, err = b.ListOffset(ctx, "empty", 0, ts)
		require.NoError(t, err)
		require.EqualValues(t, 0, lo.Offset, "timestamp %d", ts)
		require.EqualValues(t, -1, lo.Timestamp, "timestamp %d", ts)
	}
}

// TestJavaAutoOffsetReset: auto.offset.reset is latest by default
// in Java, ResetOffset earliest; it applies only to a position out of
// range, since Assign always names where to start (there are no committed
// offsets, so no NoOffsetForPartitionException). Under ResetNone an out
// of range position is a *PartitionError matching log.ErrOffsetOutOfRange
// (OffsetOutOfRangeException), once.
func TestJavaAutoOffsetReset(t *testing.T) {
	ctx := context.Background()
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	runneltest.ProduceValues(t, b, "t", "0", "1", "2", "3")
	_, err := b.DeleteRecords(ctx, "t", 0, 2)
	require.NoError(t, err)

	read := func(opts ...consumer.Opt) ([]string, []error) {
		c := runneltest.NewConsumer(t, b, append(opts, consumer.FetchMaxWait(time.Millisecond))...)
		require.NoError(t, c.Assign("t", 0, consumer.At(0)))
		var got []string
		var errs []error
		for range 3 {
			fs, err := c.Poll(ctx)
			require.NoError(t, err)
			for _, f := range fs {
				if f.Err != nil {
					errs = append(errs, f.Err)
				}
				f.EachRecord(func(r *record.Record) { got = append(got, string(r.Value)) })
			}
		}
		return got, errs
	}
	got, errs := read()
	require.Equal(t, []string{"2", "3"}, got, "the default resets to the earliest")
	require.Empty(t, errs)
	got, errs = read(consumer.ResetOffset(consumer.ResetLatest))
	require.Empty(t, got)
	require.Empty(t, errs)
	got, errs = read(consumer.ResetOffset(consumer.ResetNone))
	require.Empty(t, got)
	require.Len(t, errs, 1, "reported once, then left out of fetches until a Seek")
	var pe *consumer.PartitionError
	require.ErrorAs(t, errs[0], &pe)
	require.ErrorIs(t, pe, log.ErrOffsetOutOfRange)
	require.EqualValues(t, 0, pe.Offset)
}

// TestJavaRecordFields: what a ConsumerRecord carries and
// record.Record does: headers in order, a key repeated, a null header
// value apart from an empty one; the timestamp type, and under
// LogAppendTime the broker's time, which the producer also sets on the
// delivered record (RecordMetadata.timestamp()); the leader epoch (0:
// one node). It has no serializedKeySize: len(Key) is 0 for a null key,
// where Java's size is -1; a null key is a nil Key.
func TestJavaRecordFields(t *testing.T) {
	ctx := context.Background()
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1),
		runneltest.TopicConfig("lat", log.TopicConfig{Partitions: 1, Config: log.Config{TimestampType: log.LogAppendTime}}))
	hs := []record.Header{{Key: "a", Value: nil}, {Key: "a", Value: []byte{}}, {Key: "b", Value: []byte("1")}}
	runneltest.Produce(t, b, "t", &record.Record{Headers: hs})
	recs := runneltest.ConsumeAll(t, b, "t")
	require.Len(t, recs, 1)
	r := recs[0]
	require.Nil(t, r.Key)
	require.Nil(t, r.Value)
	require.Equal(t, hs, r.Headers)
	require.Nil(t, r.Headers[0].Value)
	require.NotNil(t, r.Headers[1].Value)
	require.Equal(t, record.CreateTime, r.TimestampType)
	require.EqualValues(t, 0, r.LeaderEpoch)

	p := runneltest.NewProducer(t, b, producer.DefaultTopic("lat"))
	created := time.UnixMilli(1_000)
	sent := &record.Record{Value: []byte("v"), Timestamp: created}
	require.NoError(t, p.ProduceSync(ctx, sent))
	require.Equal(t, record.LogAppendTime, sent.TimestampType)
	require.NotEqual(t, created, sent.Timestamp, "the broker's time")
	recs = runneltest.ConsumeAll(t, b, "lat")
	require.Len(t, recs, 1)
	require.Equal(t, record.LogAppendTime, recs[0].TimestampType)
	require.True(t, sent.Timestamp.Equal(recs[0].Timestamp))
}

// TestJavaDescribeConfigsDefaults: what describeConfigs answers
// for a topic created without configs, against DescribeTopic's Config:
// the values are Kafka's defaults, but those Kafka gives as -1 or
// Long.MAX_VALUE for "no limit" (retention.bytes, max.compaction.lag.ms,
// flush.messages, flush.ms, message.timestamp.before.max.ms) read 0 here, and 0 or negative means no
// limit (Kafka's retention.bytes=0 would delete every segment); Sync,
// which Kafka has no config for, is SyncAlways (Kafka's flush defaults
// never fsync). Overrides, DYNAMIC_TOPIC_CONFIG, is all zero.
func TestJavaDescribeConfigsDefaults(t *testing.T) {
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{})
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, log.Config{}, info.Overrides)
	const day = 24 * time.Hour
	require.Equal(t, log.Config{
		SegmentBytes:           1073741824,
		SegmentTime:            7 * day,
		SegmentIndexBytes:      10485760,
		IndexIntervalBytes:     4096,
		MaxMessageBytes:        1048588,
		RetentionTime:          7 * day,
		RetentionBytes:         0, // Kafka: -1
		CleanupPolicy:          log.Delete,
		DeleteRetentionTime:    day,
		MinCompactionLag:       0,
		MaxCompactionLag:       0, // Kafka: 9223372036854775807
		MinCleanableDirtyRatio: 0.5,
		Sync:                   log.SyncAlways, // Kafka: none
		FlushMessages:          0,              // Kafka: 9223372036854775807
		FlushInterval:          0,              // Kafka: 9223372036854775807
		TimestampType:          log.CreateTime,
		TimestampBeforeMax:     0,         // Kafka: 9223372036854775807
		TimestampAfterMax:      time.Hour, // Kafka 4: 3600000
	}, info.Config.Config)
}

// TestJavaIncrementalAlterConfigs: UpdateTopicConfig is
// incrementalAlterConfigs; its update gets the topic's own config
// (Overrides), where a field not set is 0. SET is setting a field, DELETE
// setting it back to 0 (the default again). APPEND compact to Kafka's
// default cleanup.policy (delete) gives "delete,compact"; a port that
// ORs log.Compact into the zero field gets compact alone, and must start
// from the built-in default, delete, when the field is 0: Kafka's APPEND
// starts there, not from a broker-wide default
// (ConfigurationControlManager's KafkaConfigSchema.getDefault), so a
// topic that runs compact by the broker's TopicDefaults gets
// "delete,compact" too.
func TestJavaIncrementalAlterConfigs(t *testing.T) {
	ctx := context.Background()
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1), runneltest.Topic("u", 1))

	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.RetentionTime = time.Hour })) // SET
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, time.Hour, info.Overrides.RetentionTime)
	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.RetentionTime = 0 })) // DELETE
	info, err = b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Zero(t, info.Overrides.RetentionTime)
	require.NotEqual(t, time.Hour, info.Config.RetentionTime, "the default again")

	// APPEND, the trap: 0 | Compact is compact alone.
	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.CleanupPolicy |= log.Compact }))
	info, err = b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, log.Compact, info.Config.CleanupPolicy)

	// APPEND, as Kafka's: from the topic's own value, or the built-in
	// default.
	appendCompact := func(c *log.Config) {
		if c.CleanupPolicy == 0 {
			c.CleanupPolicy = log.Delete
		}
		c.CleanupPolicy |= log.Compact
	}
	require.NoError(t, b.UpdateTopicConfig(ctx, "u", appendCompact))
	info, err = b.DescribeTopic(ctx, "u")
	require.NoError(t, err)
	require.Equal(t, log.Delete|log.Compact, info.Config.CleanupPolicy)

	// The same on a broker whose default policy is compact.
	bc := runneltest.NewBroker(t, runneltest.Config(runnel.Config{TopicDefaults: log.Config{CleanupPolicy: log.Compact}}),
		runneltest.Topic("v", 1))
	require.NoError(t, bc.UpdateTopicConfig(ctx, "v", appendCompact))
	info, err = bc.DescribeTopic(ctx, "v")
	require.NoError(t, err)
	require.Equal(t, log.Delete|log.Compact, info.Config.CleanupPolicy)
}

// TestJavaCreatePartitionsAndDeleteRecords: createPartitions'
// NewPartitions.increaseTo(n) is CreatePartitions(n), the total count,
// and the same count is refused (InvalidPartitionsException);
// deleteRecords' RecordsToDelete.beforeOffset(-1) is api.Latest, up to the
// high watermark, and an offset past it is refused (OffsetOutOfRange).
func TestJavaCreatePartitionsAndDeleteRecords(t *testing.T) {
	ctx := context.Background()
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	require.NoError(t, b.CreatePartitions(ctx, "t", 3))
	n, err := b.Partitions(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.ErrorIs(t, b.CreatePartitions(ctx, "t", 3), runnel.ErrInvalidPartitions)

	runneltest.ProduceValues(t, b, "t", "0", "1", "2")
	_, err = b.DeleteRecords(ctx, "t", 0, 4)
	require.ErrorIs(t, err, log.ErrOffsetOutOfRange)
	low, err := b.DeleteRecords(ctx, "t", 0, api.Latest)
	require.NoError(t, err)
	require.EqualValues(t, 3, low)
}

// readmeJavaRow returns the row of README.md's Java table whose first
// cell holds name.
func readmeJavaRow(t *testing.T, name string) string {
	t.Helper()
	return readmeTableRow(t, "**Coming from Kafka's Java clients", "**Coming from franz-go's kfake.**", name)
}

// TestReadmeJavaRowsSayIt: README.md's Java table says what the
// tests above pin, and the godoc and docs/details.md say it where a
// reader of them looks: Producer's doc, that two partitions' promises run
// at once; UpdateTopicConfig's, how Kafka's APPEND is made; details.md's
// MAX_TIMESTAMP, that an empty partition answers the high watermark.
func TestReadmeJavaRowsSayIt(t *testing.T) {
	for _, tc := range []struct{ row, says string }{
		{"`batch.size`", "`BatchMaxBytes(16384)` fails every record over 16 KiB"},
		{"`buffer.memory`", "taken when nothing else is buffered"},
		{"`max.block.ms`", "drops a record that lingers"},
		{"`max.block.ms`", "`runnel.ErrUnknownTopic`"},
		{"`close(Duration)`", "`close(Duration.ZERO)`"},
		{"`partitioner.class`", "overwrites a `Record`'s `Partition`"},
		{"`partitioner.class`", "`producer.KeyPartition(key, n)`"},
		{"a `Callback`", "two partitions' promises run at the same time"},
		{"a `Callback`", "`TryProduce`"},
		{"a `Callback`", "only the records at fault fail"},
		{"`assign(partitions)`", "`consumer.ErrNotAssigned`"},
		{"`acks`", "still gets its offset"},
		{"`acks`", "a `Linger` not shorter than `DeliveryTimeout`"},
		{"`acks`", "`log.SyncNever`"}, // TestProduceEveryAcksWaitsForTheFsync
		{"`assign(partitions)`", "adds one partition"},
		{"`assign(partitions)`", "until the next `Poll`"},
		{"`max.poll.records`", "No `max.poll.records`"},
		{"`wakeup()`", "`context.Canceled`"},
		{"`poll(Duration)`", "ctx's error when nothing came"},
		{"`offsetsForTimes`", "which is Java's `null`"},
		{"`auto.offset.reset`", "earliest by default"},
		{"`auto.offset.reset`", "`log.ErrOffsetOutOfRange`"},
		{"`ConsumerRecord`", "`len(Key)` is 0 for a null key"},
		{"`incrementalAlterConfigs`", "(the second alone gives compact alone)"},
		{"`incrementalAlterConfigs`", "`if c.CleanupPolicy == 0 { c.CleanupPolicy = log.Delete }`"},
		{"`createPartitions`", "the total count"},
		{"`describeConfigs`", "read 0"},
		{"`DefaultErrorHandler`", "yields that record again"},
		{"`retries`", "`retries=0` has no counterpart"},
		{"`createPartitions`", "Kafka answers -1"},
	} {
		require.Contains(t, readmeJavaRow(t, tc.row), tc.says, "the row of %s", tc.row)
	}
	require.Contains(t, goDocOf(t, "producer/producer.go", "type Producer struct"),
		"Two partitions' promises may run at the same time")
	require.Contains(t, goDocOf(t, "topics.go", "func (b *Broker) UpdateTopicConfig("),
		"if c.CleanupPolicy == 0 { c.CleanupPolicy = log.Delete }, then")
	details, err := os.ReadFile("docs/details.md")
	require.NoError(t, err)
	_, maxTS, ok := strings.Cut(string(details), "MAX_TIMESTAMP (-3) answers the largest timestamp")
	require.True(t, ok)
	maxTS, _, _ = strings.Cut(maxTS, "\n\n")
	require.Contains(t, strings.Join(strings.Fields(maxTS), " "), "an empty partition say, it answers the high watermark")
}
