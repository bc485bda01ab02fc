// Package runneltest is to runnel what net/http/httptest is to net/http.
// It offers an in-memory broker for unit tests, closed by t.Cleanup, and
// helpers that create topics, make producers, and produce and consume
// records, failing the test on any error.
//
//	b := runneltest.NewBroker(t, runneltest.Topic("orders", 3))
//	runneltest.Produce(t, b, "orders", &record.Record{Key: k, Value: v})
//	recs := runneltest.ConsumeAll(t, b, "orders") // exactly what is there
//
// There are two ways to read what a test produced. Both return records
// ordered by partition, then offset.
//
//   - [ConsumeAll] returns every record there is when it is called, at
//     once, so a test can assert "exactly these" and "nothing else".
//   - [Consume] waits until n records are there, for code that produces in
//     the background. It waits for [DefaultWait] (10 s) unless [Timeout]
//     says otherwise, then fails the test saying how many came.
//
// It sits with the clients above the broker. Tests of code that takes a
// producer.Client or consumer.Client can hand it the *runnel.Broker. The
// helpers that produce and consume take those interfaces too: the broker,
// a [Faults] over it, or a client of the test's own.
//
// # Injecting failures
//
// To see how code under test copes with a broker's errors, hand it a
// Faults over the broker instead, and add rules that fail, or hold, the
// requests they match (ExampleFaults):
//
//	f := runneltest.NewFaults(t, b)
//	p := runneltest.NewProducer(t, f)
//	r := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Topic: "orders", Err: api.ErrNotLeader, Count: 2})
//
// Consume and ConsumeAll read through a Faults handed to them as a
// consumer does: errors Kafka's table calls retriable are retried without
// a word (ExampleFaults):
//
//	f.Add(runneltest.Fault{Op: runneltest.OpFetch, Topic: "orders", Err: api.ErrNotLeader, Count: 2})
//	recs := runneltest.ConsumeAll(t, f, "orders")
//
// What a rule does to the requests it matches:
//
//   - [FailRequest] fails a request before the broker sees it. For a
//     fetch, [FailPartitions] fails some of its partitions.
//   - [LoseResponse] lets a produce request be appended and then loses the
//     answer: what idempotence is for.
//   - [FailAck] lets a produce request be appended and then fails its
//     acknowledgement.
//   - [HoldRequest] holds the request until the rule is removed or the
//     request's ctx ends.
//
// A request still held when the test ends holds up the flush of
// NewProducer's cleanup, which reports it after DefaultWait. Remove a
// HoldRequest rule (or close the client) before the test ends.
//
// A rule's Match picks requests by their content, as kfake's ControlKey
// function does. It can pick the produce request that carries a record
// with key "poison" (ExampleFault_match), or the fetch of a partition from
// an offset on:
//
//	f.Add(runneltest.Fault{Op: runneltest.OpFetch, Action: runneltest.FailPartitions, Err: api.ErrNotLeader, Count: 1,
//		Match: func(req runneltest.Request) bool { return req.FetchPartition.Offset >= 100 }})
//
// # Cleanup order
//
// Clients must close before the broker they use: consumers first, then
// producers, then the broker. Cleanup functions run in the reverse order
// of their registration, so make the broker first. With [NewBroker], then
// [NewProducer], the producer is flushed and closed before the broker
// closes, and so is a consumer made with [NewConsumer].
//
// A consumer the test makes itself closes first with a defer (deferred
// calls run before any cleanup) or with a t.Cleanup registered after
// NewBroker. NewBroker's cleanup closes the broker even if a client is
// still open; such a client then fails with runnel.ErrClosed.
//
// A goroutine leak check runs after the cleanups only if it is registered
// as one before NewBroker: t.Cleanup(func() { goleak.VerifyNone(t) }) as
// the test's first line, or goleak.VerifyTestMain in TestMain. The usual
// defer goleak.VerifyNone(t) runs before any cleanup, while the broker
// (and the helpers' clients) are still open. It reports the broker's
// maintenance goroutine as a leak.
//
// In tests that call t.Parallel, use goleak.VerifyTestMain only. A test's
// goleak.VerifyNone sees the goroutines of the tests that run beside it
// (theirs, and their brokers'), and reports them as its leaks.
//
// # Goroutines
//
// The helpers fail the test with t.Fatalf. So, like t.Fatalf, call them
// from the goroutine running the test:
//
//   - Called on another goroutine, a failing helper ends only that
//     goroutine (runtime.Goexit), and the test goes on without it.
//   - On a producer's goroutine (in a promise), it stops the test binary
//     with a panic instead (see producer.Producer).
//
// Code under test may use the broker, and the clients the helpers made,
// from any goroutine.
//
// # Fake time
//
// A test can run inside a testing/synctest bubble (synctest.Test). A
// broker, producers and consumers made there keep all their goroutines in
// it. So these count on the bubble's fake clock:
//
//   - a producer's Linger and DeliveryTimeout;
//   - a consumer's FetchMaxWait;
//   - the broker's MaintenanceInterval and retention.ms (with the default
//     runnel.Config.Clock);
//   - the helpers' own waits (Timeout, DefaultWait).
//
// A test of code that waits for minutes runs at once and to the
// nanosecond. There the test's deadline does not bound the helpers'
// waits: a *testing.T has none to give inside a bubble.
//
// Make the broker in the bubble that uses it (NewBroker inside
// synctest.Test's function, one per bubble). A broker made outside a
// bubble and used inside one (one broker of a parent test shared with its
// synctest subtests, say) does one of two things, and the scheduling
// decides which:
//
//   - It stops the test binary, the runtime failing one of the broker's
//     goroutines with "fatal error: select on synctest channel from
//     outside bubble".
//   - Or it hangs the test until go test's -timeout: the bubble's
//     goroutines wait on channels of the broker's that are not the
//     bubble's, so that its clock stops.
//
// Likewise, hand the calls made in a bubble a ctx of the bubble's (the
// t.Context() of synctest.Test's t, or context.Background()), not the
// parent test's t.Context(). A context makes its Done channel when first
// asked for it, and the broker and its clients ask. So a context made
// outside a bubble and first asked inside gets a channel of the bubble's.
// Cancelled outside (the parent test's t.Context() is, as the parent
// ends), it stops the test binary with "fatal error: close of synctest
// channel from outside bubble".
//
// Every codec works in bubbles and out of them, in any order. The
// compressors and decompressors are shared by the whole process (see
// package compression), and none keeps a channel of the bubble that first
// used it. (Until 2026-12-06, zstd's did: a zstd produce or fetch outside
// the bubble of the test binary's first stopped the binary.)
//
// What a broker is given may be shared by the brokers of several bubbles,
// and of none:
//
//   - a vfs.MemFS or a directory, made in a bubble or outside (a broker
//     closed in one bubble, and another opened on the same files in the
//     next, or outside, as a restart test does);
//   - a vfs.WithFaults over it;
//   - a Config's Logger.
//
// So may what runnel keeps for the whole process: the codecs, package
// vfs's table of the directories locked, and package log's memory of the
// logs whose fsync failed. None of it holds a channel, a timer, a
// WaitGroup or a goroutine of the bubble that made it or first used it,
// but what the test's own code in it holds: a Logger's handler, a
// vfs.Injector.
//
// Mind the clock, though: a bubble's starts at midnight UTC on
// 2000-01-01. So the records a bubble's producers stamped are decades old
// outside it, where a topic's retention.ms (runnel's default is 7 days;
// NewBroker's topics have none) deletes them at the next maintenance run.
//
// # Coming from kfake
//
// franz-go's kfake is a fake Kafka cluster that code under test reaches
// with its own *kgo.Client, over the loopback. runnel speaks no Kafka wire
// protocol. Code tested with runneltest produces and consumes through
// runnel's producer and consumer (or an interface of its own that they
// satisfy), and gets the *runnel.Broker itself.
//
// What kfake calls map to (each pair is exercised side by side by the
// Migrate tests of the benchmarks/peers module):
//
//	kfake / kgo                                  runneltest / runnel
//	kfake.NewCluster(kfake.NumBrokers(1), ...)   b := NewBroker(t, ...)  (closed by t.Cleanup)
//	one cluster in TestMain for a package's      runnel.Open(runnel.Config{TopicDefaults: log.Config{
//	  tests                                        RetentionTime: -1}}) there (NewBroker needs a t, and
//	                                               sets that), b.Close() after m.Run(); the helpers
//	                                               take it as NewBroker's (a topic per test)
//	kfake.SeedTopics(3, "a", "b")                Topic("a", 3), Topic("b", 3)  (name first)
//	kfake.AllowAutoTopicCreation(),              Config(runnel.Config{AutoCreateTopics: true,
//	  kfake.DefaultNumPartitions(3)                DefaultPartitions: 3})  (default 1; kfake's 10)
//	kfake.BrokerConfigs({"log.retention.ms"})    runnel.Config{TopicDefaults: log.Config{RetentionTime: d}}
//	c.ApplyRetention()                           b.Maintain(ctx)  (with a RetentionTime set: kfake's
//	                                               applies its default of 7 days, and NewBroker's
//	                                               topics have none; see NewBroker)
//	kfake.DataDir(dir), and a new cluster on it  Config(runnel.Config{Dir: dir}); b.Close(), and a new
//	                                               NewBroker on that Dir (its Topic options skip the
//	                                               topics it finds there, as kfake seeds none then),
//	                                               with new clients: the old broker's fail with
//	                                               runnel.ErrClosed, where a kgo client reconnects
//	kgo.NewClient(kgo.SeedBrokers(addrs...))     NewProducer(t, b), NewConsumer(t, b)
//	cl.ProduceSync(ctx, recs...).FirstErr()      p.ProduceSync(ctx, recs...), or Produce(t, b, topic, recs...)
//	kgo.ConsumeTopics + a PollFetches loop       Consume(t, b, topic, n, Timeout(d))
//	  under context.WithTimeout
//	(end offsets, then poll up to them)          ConsumeAll(t, b, topic)
//	ListOffsets / kadm.ListEndOffsets            b.DescribeTopic(ctx, topic) (LogStartOffset, HighWatermark),
//	                                               b.ListOffset(ctx, topic, p, api.Latest)
//	kgo.ConsumePartitions(... At(o))             c.Assign(topic, p, consumer.At(o))
//	c.Fault(kfake.Fault{Keys: Produce,           f := NewFaults(t, b); NewProducer(t, f)
//	  Topic: "a", Err: kerr.X, Count: 2})          r := f.Add(Fault{Op: OpProduce, Topic: "a",
//	                                                 Err: api.ErrX, Count: 2})  (api.ForCode(kerr.X.Code)
//	                                                 finds api.ErrX, or where api has none
//	                                                 (kerr.LeaderNotAvailable) an *api.UnknownCodeError
//	                                                 with Kafka's code and retriability; kfake's Count 0,
//	                                                 one request, is Count: 1, its -1 Count: Unlimited;
//	                                                 Add refuses 0)
//	  Partitions: []int32{1}                       Partitions: []int32{1}
//	  Keys: Fetch (TopLevel: false, true)          Op: OpFetch, Action: FailPartitions (FailRequest);
//	                                                 NewConsumer(t, f)
//	  Keys: ListOffsets, InitProducerID            Op: OpListOffset, OpInitProducerID; OpPartitions
//	                                                 for the clients' look-up of a partition count
//	  h.Hits(), h.Wait(ctx, n), h.Remove()         r.Hits(), r.Wait(ctx, n), r.Remove()
//	  Count counts requests, and kgo's produce     Count counts a partition's requests: the producer
//	    request carries each partition it has        sends one per partition, so Count: 1 fails one
//	    records for: Count 1 fails them all once     partition's batch (to fail N partitions once, Count: N)
//	  Keys: Produce, Err: kerr.RequestTimedOut     Op: OpProduce, Action: LoseResponse, Err:
//	    or NotEnoughReplicasAfterAppend (kfake       api.ErrRequestTimedOut or api.ForCode(20) (FailAck: the
//	    appends the batch, then fails it, as         acknowledgement fails); FailRequest never appends,
//	    Kafka's broker times out acks=all)           whatever its Err
//	  When: func(kmsg.Request) bool,               Skip: N-1, Count: 1 (the first N-1 requests the rule
//	    a ControlKey + KeepControl that              matches go on untouched and uncounted)
//	    counts (fail only the Nth request)
//	  When, or c.ControlKey(key, fn) whose fn      Match: func(Request) bool (ExampleFault_match): the
//	    looks at the request: a record's key,        request as the rule sees it, after Topic and
//	    a fetch's offset, a ListOffsets              Partitions and before Skip and Count: req.Records()
//	    timestamp                                    decodes a produce request's records,
//	                                                   req.FetchPartition.Offset (called once per partition
//	                                                   of a fetch), req.Timestamp
//	  DropControl in a kept control, the           r.Remove() in Match, which then returns false
//	    request then handled as usual                (the request goes on; Match may call Remove)
//	  Observe: true, a ControlKey that counts      Action: Observe (counted by Hits and Wait; the
//	    and returns (nil, nil, false)                request goes on, and later rules may still apply)
//	c.SleepControl, a control that blocks        Fault{Op: ..., Action: HoldRequest, Count: Unlimited}: until r.Remove()
//	                                               or the request's ctx ends
//	a kgo consumer polled under c.Fault          Consume(t, f, topic, n), ConsumeAll(t, f, topic): read
//	                                               through f, retrying retriable errors quietly
//	                                               but those the consumer reports (see Consume:
//	                                               inject api.ErrNotLeader, not kerr's
//	                                               UnknownTopicOrPartition, into a fetch to be
//	                                               ridden out); handed b, they read past the faults
//	c.ControlKey(kmsg.Metadata, fn) whose        f.Add(Fault{Op: OpUnwritablePartitions, Topic: "a",
//	  answer gives partition 1 an error (no        Action: ReportUnwritable, Partitions: []int32{1},
//	  leader, KAFKA_STORAGE_ERROR)                 Count: Unlimited}): from the producer's next look-up
//	                                               (see producer.HealthClient), its records without a
//	                                               key go to the other partitions; with a rule failing
//	                                               partition 1's produce requests with api.ErrStorage,
//	                                               a partition on a full disk (api.ErrNotLeader: one
//	                                               without a leader)
//	c.ControlKey(key, fn) with any other         a producer.Client or consumer.Client of the test's
//	  answer (a made-up response)                  own that embeds b (see producer.AsyncClient)
//
// Keys land on the partitions kgo's default partitioner picks (Kafka's
// murmur2), through the producer and through Produce. A record without a
// key goes, through Produce, to its Partition field. Through the producer
// it goes, as kgo's, to a sticky partition unless the
// producer.ManualPartitioner is asked for.
//
// Auto-creation is off by default, as in kfake. An unknown topic fails at
// once (runnel.ErrUnknownTopic), where kgo retries it first (until the
// record's context ends, or kgo.UnknownTopicRetries). Records with old
// timestamps stay (see NewBroker).
//
// consumer.End, like kgo's AtEnd, is looked up by the first poll. To read
// what the code under test produces from now on, Assign At the high
// watermark taken before it runs.
//
// What runnel does not offer (yet):
//
//   - the Kafka wire protocol: code that holds a *kgo.Client, sarama or
//     confluent-kafka-go client cannot be pointed at a runnel broker.
//   - consumer groups and committed offsets, so no group lag (a consumer's
//     lag is the high watermark minus its Position).
//   - transactions.
//   - several brokers and leader moves (kfake.NumBrokers above 1,
//     MoveTopicPartition, AddNode).
//   - intercepting any request at the broker (kfake's Control,
//     KeepControl, SleepControl, Fault). Faults intercepts what the
//     producer and consumer ask of it: produce, fetch, offset look-ups,
//     partition counts, producer ids, which partitions refuse appends. It
//     does not intercept the admin calls the code under test makes on the
//     *runnel.Broker itself, nor requests made up to answer anything (a
//     Client of the test's own does that).
//   - SASL, TLS, ACLs, and older protocol versions (MaxVersions).
package runneltest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
)

// Option configures NewBroker.
type Option func(*options)

type options struct {
	cfg    runnel.Config
	topics []topic
}

type topic struct {
	name string
	cfg  log.TopicConfig
}

// Config sets the broker's configuration (Dir "" keeps it in memory).
func Config(cfg runnel.Config) Option { return func(o *options) { o.cfg = cfg } }

// Topic creates a topic with that many partitions when the broker opens.
// A topic the broker found in its Dir (a broker opened again on the Dir
// of an earlier one) is left as it is, as kfake seeds no topics on a
// cluster that loaded its DataDir.
func Topic(name string, partitions int) Option {
	return TopicConfig(name, log.TopicConfig{Partitions: partitions})
}

// TopicConfig creates a topic with a configuration when the broker
// opens, unless the broker found it in its Dir (see Topic).
func TopicConfig(name string, cfg log.TopicConfig) Option {
	return func(o *options) { o.topics = append(o.topics, topic{name, cfg}) }
}

// NewBroker opens an in-memory broker (unless Config says otherwise), with
// the topics the options ask for, and closes it when the test ends. A nil
// Option is skipped.
//
// It fails the test (t.Fatalf) if:
//
//   - the broker does not open (runnel.Open's errors);
//   - or a topic cannot be created (runnel.Broker.CreateTopic's: a name
//     given twice gives runnel.ErrTopicExists).
//
// An error of the Close at cleanup is reported with t.Errorf. The other
// helpers fail the test (t.Fatalf) when given a nil *runnel.Broker (or,
// for those that take a client, a nil client).
//
// Unlike a broker of runnel.Open, its topics keep their records whatever
// their timestamps unless a retention time is configured (Config's
// TopicDefaults.RetentionTime, or a topic's). Kafka's default of 7 days,
// which runnel.Open applies, would delete the records a test stamps with
// a fixed old time (time.Unix(0, 0), say) at the first maintenance run,
// 30 s after the broker opens. kfake never does so on its own: it applies
// retention when asked to, with Cluster.ApplyRetention, or once a topic
// has a retention of its own (b.Maintain is the first).
//
// Its topics do refuse a record stamped more than an hour ahead of the
// clock, as Kafka 4's broker and runnel.Open's do (log.Config's
// TimestampAfterMax), where kfake takes it. A test that stamps records
// ahead sets TopicDefaults.TimestampAfterMax (or its topic's) to -1.
func NewBroker(t testing.TB, opts ...Option) *runnel.Broker {
	t.Helper()
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.cfg.TopicDefaults.RetentionTime == 0 {
		o.cfg.TopicDefaults.RetentionTime = -1 // unlimited; see above
	}
	b, err := runnel.Open(o.cfg)
	if err != nil {
		t.Fatalf("runneltest: open broker: %v", err)
	}
	t.Cleanup(func() {
		b := dropRef(&b)
		if err := b.Close(); err != nil {
			t.Errorf("runneltest: close broker: %v", err)
		}
	})
	found := b.Topics() // from Dir: a restart's, left as they are (see Topic)
	for _, tp := range o.topics {
		if !slices.Contains(found, tp.name) {
			CreateTopic(t, b, tp.name, tp.cfg)
		}
	}
	return b
}

// CreateTopic creates a topic or fails the test.
func CreateTopic(t testing.TB, b *runnel.Broker, name string, cfg log.TopicConfig) {
	t.Helper()
	notNil(t, b, "create topic "+name)
	if err := b.CreateTopic(context.Background(), name, cfg); err != nil {
		t.Fatalf("runneltest: create topic %q: %v", name, err)
	}
}

// NewProducer returns a producer.Producer on c, made with opts, or fails
// the test (an option out of range, say). c is the *runnel.Broker of
// NewBroker, a Faults over it to inject failures, or a producer.Client
// of the test's own that wraps it.
//
// When the test ends, its cleanup flushes the producer, then closes it.
// So records the test produced and did not wait for are delivered (or
// fail), and their promises run while the test can still report from
// them.
//
//   - The flush waits for DefaultWait at most, and never past the test's
//     deadline (see Consume). A flush that does not finish by then is
//     reported with t.Errorf, and the producer is closed all the same.
//   - Close waits for every promise to return. A promise that blocks (on
//     a channel the test no longer reads, say) is reported with t.Errorf
//     after DefaultWait (or before the test's deadline). The cleanup goes
//     on, leaving the goroutine that waits in Close behind.
//
// A producer the test closed itself is left as it is.
//
// The flush does not deliver a record produced with t.Context() that is
// still buffered (lingering, say) when the test function returns. testing
// cancels t.Context() before the cleanups run, and a record's ctx governs
// it until its batch is sent (see producer.Producer.Produce). So it fails
// with context.Canceled, unwritten. Produce what the cleanup is to deliver
// with a ctx that outlives the test function (context.Background()), or
// wait for it in the test (ProduceSync, Flush).
//
// Call NewBroker before NewProducer: cleanups run last-registered first,
// and the producer must close before its broker (see the package doc).
func NewProducer(t testing.TB, c producer.Client, opts ...producer.Opt) *producer.Producer {
	t.Helper()
	p, err := producer.New(c, opts...)
	if err != nil {
		t.Fatalf("runneltest: new producer: %v", err)
	}
	t.Cleanup(func() {
		p := dropRef(&p)
		ctx, cancel, limit := waitContext(t, DefaultWait)
		defer cancel()
		if err := p.Flush(ctx); err != nil && !errors.Is(err, producer.ErrClosed) {
			t.Errorf("runneltest: flush producer at cleanup: %d records not delivered %s: %v", p.BufferedRecords(), limit, err)
		}
		// Close waits for every promise to return: one that never does (a
		// send on a channel the test no longer reads, say) would hold the
		// test binary until go test's -timeout. The wait is bounded as
		// the flush's, and the test told.
		closed := make(chan error, 1)
		go func() { closed <- p.Close() }()
		cctx, ccancel, climit := waitContext(t, DefaultWait)
		defer ccancel()
		select {
		case err := <-closed:
			if err != nil {
				t.Errorf("runneltest: close producer: %v", err)
			}
		case <-cctx.Done():
			t.Errorf("runneltest: close producer: its goroutines did not end %s: a promise that does not return? (Close waits for every promise)", climit)
		}
	})
	return p
}

// NewConsumer returns a consumer.Consumer on cl, made with opts, or fails
// the test (an option out of range, say), and closes it when the test
// ends. cl is the *runnel.Broker of NewBroker, a Faults over it to
// inject failures, or a consumer.Client of the test's own that wraps it.
// Call NewBroker first: cleanups run last-registered first, and the
// consumer must close before its broker.
func NewConsumer(t testing.TB, cl consumer.Client, opts ...consumer.Opt) *consumer.Consumer {
	t.Helper()
	c, err := consumer.New(cl, opts...)
	if err != nil {
		t.Fatalf("runneltest: new consumer: %v", err)
	}
	t.Cleanup(func() {
		c := dropRef(&c)
		if err := c.Close(); err != nil {
			t.Errorf("runneltest: close consumer: %v", err)
		}
	})
	return c
}

// dropRef returns *v and sets it to nil: a cleanup takes the client it
// closes out of the variable it captured, which package testing keeps
// as long as the test (a parallel test's until its parent ends), so
// that a closed producer, consumer or broker that the test itself no
// longer references is garbage, its per-partition state too.
func dropRef[T any](v **T) *T {
	x := *v
	*v = nil
	return x
}

// Produce appends records to topic through c, each as its own batch and
// its own request, and fails the test on any error.
//
// A record with a key goes to the partition its key hashes to with
// producer.KeyPartition (Kafka's murmur2), where a producer, a Java client
// or franz-go would put it. One without goes to its Partition field.
//
// Each record gets its Topic (if empty), Partition, Offset and (if zero)
// Timestamp set (the time of the call, in whole milliseconds as stored; a
// Timestamp of the caller's is truncated to the millisecond, as a
// producer truncates it), and its TimestampType as stored. On a topic with
// LogAppendTime, its Timestamp and TimestampType are the broker's;
// elsewhere the type is CreateTime.
//
// c is the *runnel.Broker of NewBroker, a Faults over it, or a
// producer.Client of the test's own. Produce sends each request once:
//
//   - an error a Faults injects fails the test, retriable or not (a
//     producer of NewProducer retries it);
//   - a request it holds fails the test after DefaultWait (or at the
//     test's deadline, if sooner).
//
// These fail the test before anything is produced:
//
//   - a nil record;
//   - one whose Topic names another topic;
//   - one whose Timestamp lies past what an int64 of Unix milliseconds
//     holds (some 292 million years either side of 1970: its UnixMilli
//     would wrap).
//
// Timestamps before 1970 within that range are produced as they are
// (negative Kafka timestamps, which the broker takes and a
// producer.Producer refuses).
func Produce(t testing.TB, c producer.Client, topic string, recs ...*record.Record) {
	t.Helper()
	for i, r := range recs {
		switch {
		case r == nil:
			t.Fatalf("runneltest: produce to %q: record %d is nil", topic, i)
		case r.Topic != "" && r.Topic != topic:
			t.Fatalf("runneltest: produce to %q: record %d names topic %q", topic, i, r.Topic)
		case !record.MillisFit(r.Timestamp):
			// Its UnixMilli would wrap, and the record be stored with
			// another timestamp, any one.
			t.Fatalf("runneltest: produce to %q: record %d has timestamp %v, past what an int64 of Unix milliseconds (a Kafka timestamp) holds",
				topic, i, r.Timestamp)
		}
	}
	notNil(t, c, "produce to "+topic)
	ctx, cancel, _ := waitContext(t, DefaultWait)
	defer cancel()
	n, err := c.Partitions(ctx, topic)
	if err != nil {
		t.Fatalf("runneltest: produce to %q: %v", topic, err)
	}
	if n < 1 || n > math.MaxInt32 {
		// A Client's answer no Kafka topic gives: a key's partition
		// would divide by zero, or be out of an int32.
		t.Fatalf("runneltest: produce to %q: the client says it has %d partitions", topic, n)
	}
	var bld record.Builder
	for _, r := range recs {
		r.Topic = topic
		if r.Key != nil {
			r.Partition = producer.KeyPartition(r.Key, n)
		}
		// Whole milliseconds, as a producer stamps and truncates: what is
		// stored.
		if r.Timestamp.IsZero() {
			r.Timestamp = time.Now().Truncate(time.Millisecond)
		} else if r.Timestamp.Nanosecond()%int(time.Millisecond) != 0 {
			r.Timestamp = r.Timestamp.Truncate(time.Millisecond)
		}
		bld.Reset()
		bld.Add(r)
		data, err := bld.AppendTo(nil, compression.None)
		if err != nil {
			t.Fatalf("runneltest: encode: %v", err)
		}
		resp, err := c.Produce(ctx, &api.ProduceRequest{Topic: topic, Partition: r.Partition, Acks: api.AcksAll, Batches: data})
		if err != nil {
			t.Fatalf("runneltest: produce to %s-%d: %v", topic, r.Partition, err)
		}
		r.Offset = resp.BaseOffset
		if resp.LogAppendTime != record.NoTimestamp {
			// The broker stamped it (a topic with LogAppendTime, at any
			// time but -1, negative before 1970): the timestamp it is
			// stored with, as a producer's promise sees.
			r.Timestamp, r.TimestampType = time.UnixMilli(resp.LogAppendTime), record.LogAppendTime
		} else {
			r.TimestampType = record.CreateTime // whatever r came with
		}
	}
}

// ProduceValues produces one record per value, without keys, to partition
// 0, through c, and fails the test on any error, as Produce does.
func ProduceValues(t testing.TB, c producer.Client, topic string, values ...string) {
	t.Helper()
	recs := make([]*record.Record, len(values))
	for i, v := range values {
		recs[i] = &record.Record{Value: []byte(v)}
	}
	Produce(t, c, topic, recs...)
}

// DefaultWait is how long the helpers wait:
//
//   - Consume for its records, when no Timeout is given;
//   - NewProducer's cleanup for its flush;
//   - ConsumeAll for the records it knows are there;
//   - Produce for its requests (a Faults may hold them).
//
// That is long enough for records produced in the background of a unit
// test, and short enough that a test whose records never come fails in
// seconds, not at go test's -timeout (10 minutes by default). A test's
// deadline that comes sooner bounds it.
//
// It is 10 s of the real clock outside a testing/synctest bubble. A
// helper that waits for what never comes (Consume of more records than
// will be produced, a cleanup's flush of a request a Faults holds) takes
// those 10 s of the test's run before it fails it. Give Consume a shorter
// Timeout, or use ConsumeAll, which does not wait for records to come.
//
// Inside a bubble it is on the bubble's fake clock, and costs no real
// time.
const DefaultWait = 10 * time.Second

// deadlineGrace is how long before the test's deadline a helper gives up,
// so that it can fail the test with what it got before the test binary
// panics at -timeout; with less than twice that left, it gives up half
// way there, so that a helper called in the test's last second still
// waits for what takes no time (see waitContext).
const deadlineGrace = time.Second

// ConsumeOpt configures Consume and ConsumeAll.
type ConsumeOpt func(*consumeOpts)

type consumeOpts struct {
	timeout time.Duration
	set     bool // Timeout was given
}

// Timeout sets how long Consume waits for its records (and ConsumeAll for
// the records it knows are there) before it fails the test: DefaultWait
// when not given. The test's deadline (go test -timeout) still bounds it:
// the helper gives up shortly before it, so that it fails the test with
// what it got rather than the binary panicking. A d of 0 or less fails
// the test. A nil ConsumeOpt is skipped.
func Timeout(d time.Duration) ConsumeOpt {
	return func(o *consumeOpts) { o.timeout, o.set = d, true }
}

// waitContext returns a context that ends when a helper should stop
// waiting: after wait (DefaultWait if 0), or shortly before t's deadline
// when t has one (*testing.T does: go test -timeout) that comes sooner;
// and how to say so in a message.
func waitContext(t testing.TB, wait time.Duration) (context.Context, context.CancelFunc, string) {
	if wait <= 0 {
		wait = DefaultWait
	}
	if deadline, ok := testDeadline(t); ok {
		stop := deadline.Add(-min(deadlineGrace, max(time.Until(deadline)/2, 0)))
		if time.Until(stop) < wait {
			ctx, cancel := context.WithDeadline(context.Background(), stop)
			return ctx, cancel, "before the test's deadline"
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	return ctx, cancel, fmt.Sprintf("within %v", wait)
}

// testDeadline returns t's deadline (go test -timeout), if t has one. A
// *testing.T inside a testing/synctest bubble has none to give: its
// Deadline panics there, a deadline of the real clock meaning nothing on
// the bubble's fake one, on which the helpers then wait (and which moves
// on at once when every goroutine of the bubble is blocked, so that
// DefaultWait costs no real time). That panic reads as no deadline; any
// other goes on.
func testDeadline(t testing.TB) (deadline time.Time, ok bool) {
	d, has := t.(interface{ Deadline() (time.Time, bool) })
	if !has {
		return time.Time{}, false
	}
	defer func() {
		if r := recover(); r != nil {
			if s, isString := r.(string); !isString || !strings.Contains(s, "synctest") {
				panic(r)
			}
			deadline, ok = time.Time{}, false
		}
	}()
	return d.Deadline()
}

// consumeWait applies opts and returns waitContext's answer, failing the
// test on a bad option.
func consumeWait(t testing.TB, topic string, opts []ConsumeOpt) (context.Context, context.CancelFunc, string) {
	t.Helper()
	var o consumeOpts
	for _, opt := range opts {
		if opt != nil { // skipped, as NewBroker skips a nil Option
			opt(&o)
		}
	}
	if o.set && o.timeout <= 0 {
		t.Fatalf("runneltest: consume %q: Timeout(%v): not positive", topic, o.timeout)
	}
	return waitContext(t, o.timeout)
}

// Consume reads topic's partitions from their start until it has n
// records, and returns n records, ordered by partition then offset: of
// each partition, the first records, from its log start.
//
// It waits for records that are not there yet, for DefaultWait (10 s) or
// as long as Timeout says, and never past shortly before t.Deadline() (go
// test -timeout). It fails the test if n records do not come by then,
// saying how many came of how many and from which partitions, or on any
// error.
//
// When more than n records are there, which partitions the n come from is
// not specified: to assert that nothing else is there, use ConsumeAll.
// Control batches (transaction markers) are not records.
//
// The records' Key, Value and header values are the in-memory broker's
// log itself (see package consumer, "Records and their bytes"): do not
// modify them, or copy them first (bytes.Clone).
//
// cl is the *runnel.Broker of NewBroker, a Faults over it, or a
// consumer.Client of the test's own. Consume reads through it with a
// consumer.Consumer of its own, made for the call.
//
// An error that Kafka's table calls retriable (api.IsRetriable: not the
// leader, a request timed out), of a whole Fetch, of a partition's answer
// or of a look-up, is retried every 10 ms without a word, as a consumer
// retries it, until the wait ends. These fail the test at once:
//
//   - any other error;
//   - a topic that the look-up of its partition count does not know;
//   - the errors of a partition's answer that the consumer reports,
//     retriable in the table though they are (see
//     consumer.Consumer.Poll): a corrupt batch, and an unknown topic or
//     partition of a partition whose position the broker gave (Consume
//     looks each start up), which the consumer takes for its topic
//     deleted.
//
// kgo strips an UNKNOWN_TOPIC_OR_PARTITION of a fetch and fetches again.
// A kfake test that injects one into fetches to be ridden out injects
// api.ErrNotLeader here.
func Consume(t testing.TB, cl consumer.Client, topic string, n int, opts ...ConsumeOpt) []*record.Record {
	t.Helper()
	if n < 0 {
		t.Fatalf("runneltest: consume %q: n = %d", topic, n)
	}
	ctx, cancel, limit := consumeWait(t, topic, opts)
	defer cancel()
	r := newReader(t, ctx, cl, topic, limit)
	defer r.close()
	for p := range r.parts {
		r.assign(t, int32(p), consumer.Start())
	}
	for r.total < n {
		fs, err := r.c.Poll(ctx)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("runneltest: consume %q: got %d of %d records %s (%s)", topic, r.total, n, limit, r.summary())
			}
			t.Fatalf("runneltest: consume %q: got %d of %d records (%s): %v", topic, r.total, n, r.summary(), err)
		}
		r.add(t, fs, nil)
	}
	return r.records()[:n]
}

// ConsumeAll returns every record of topic there is when it is called,
// ordered by partition then offset: every partition, from its log start
// up to its high watermark at the time of the call.
//
// It does not wait for more: a test can assert that what it returns is
// exactly what was produced. It fails the test:
//
//   - on any error (an unknown topic, say);
//   - if the records it knows are there cannot be read within DefaultWait
//     (or Timeout's time, bounded by the test's deadline as Consume's
//     wait).
//
// Control batches (transaction markers) are not records.
//
// cl is as Consume's, and read through as Consume reads. The log start
// and high watermark of each partition are looked up with cl's
// ListOffset. A retriable error is retried until the wait ends, an
// unknown topic or partition of these look-ups too, as Consume's consumer
// retries its look-up of Start. The errors Consume's doc names are the
// exception. An unknown topic or partition fails the test once a fetch of
// the partition has answered; its first fetch, from an offset ConsumeAll
// looked up itself, is retried.
func ConsumeAll(t testing.TB, cl consumer.Client, topic string, opts ...ConsumeOpt) []*record.Record {
	t.Helper()
	ctx, cancel, limit := consumeWait(t, topic, opts)
	defer cancel()
	r := newReader(t, ctx, cl, topic, limit)
	defer r.close()
	ends := make([]int64, r.parts)
	left := 0
	for p := range r.parts {
		listOffset := func(ts int64) func() (api.ListedOffset, error) {
			return func() (api.ListedOffset, error) { return cl.ListOffset(ctx, topic, int32(p), ts) }
		}
		var start, end api.ListedOffset
		var err error
		// An unknown topic or partition is retried here, as Consume's
		// consumer retries its look-up of Start: the look-up of the
		// count (newReader) found the topic.
		if start, err = retry(ctx, limit, true, listOffset(api.Earliest)); err == nil {
			end, err = retry(ctx, limit, true, listOffset(api.Latest))
		}
		if err != nil {
			t.Fatalf("runneltest: consume %s-%d: %v", topic, p, err)
		}
		if start.TopicID != end.TopicID {
			t.Fatalf("runneltest: consume %s-%d: the topic was deleted and created again during ConsumeAll", topic, p)
		}
		ends[p] = end.Offset
		if start.Offset < end.Offset {
			r.assign(t, int32(p), consumer.At(start.Offset))
			left++
		}
	}
	for left > 0 {
		fs, err := r.c.Poll(ctx)
		if err != nil {
			t.Fatalf("runneltest: consume %q: got %d records (%s), more are there, not read %s: %v", topic, r.total, r.summary(), limit, err)
		}
		r.add(t, fs, ends)
		for p := range r.parts {
			if pos, ok := r.c.Position(topic, int32(p)); ok && pos >= ends[p] {
				r.c.Unassign(topic, int32(p))
				left--
			}
		}
	}
	return r.records()
}

// notNil fails the test when c, a broker or a client, is nil (a nil
// interface, or one that holds a nil pointer), as the helpers' doc says
// they fail it on any error, rather than let the call panic.
func notNil(t testing.TB, c any, what string) {
	t.Helper()
	if c == nil {
		t.Fatalf("runneltest: %s: nil client", what)
	}
	if v := reflect.ValueOf(c); v.Kind() == reflect.Pointer && v.IsNil() {
		t.Fatalf("runneltest: %s: nil %T", what, c)
	}
}

// retryBackoff is how long Consume and ConsumeAll wait before they retry
// a retriable error (retry, and their consumer's RetryBackoff): short, as
// the broker is in memory, and a test's fault is meant to be ridden out.
const retryBackoff = 10 * time.Millisecond

// retry calls ask until it answers, again after retryBackoff while it
// returns an error Kafka's table calls retriable, as a consumer retries
// its look-ups — but an unknown topic or partition, which is an answer
// unless retryUnknown. When ctx ends (a request held until then, say),
// it returns the last error, saying so with limit.
func retry[T any](ctx context.Context, limit string, retryUnknown bool, ask func() (T, error)) (T, error) {
	for {
		v, err := ask()
		if err != nil && ctx.Err() != nil {
			return v, fmt.Errorf("no answer %s: %w", limit, err)
		}
		if err == nil || !api.IsRetriable(err) || !retryUnknown && errors.Is(err, api.ErrUnknownTopicOrPartition) {
			return v, err
		}
		select {
		case <-time.After(retryBackoff):
		case <-ctx.Done():
			return v, fmt.Errorf("no answer %s: %w", limit, err)
		}
	}
}

// reader is what Consume and ConsumeAll read with: a consumer, and the
// records it returned, by partition.
type reader struct {
	topic string
	parts int
	c     *consumer.Consumer
	got   [][]*record.Record
	total int
}

func newReader(t testing.TB, ctx context.Context, cl consumer.Client, topic, limit string) *reader {
	t.Helper()
	notNil(t, cl, "consume "+topic)
	parts, err := retry(ctx, limit, false, func() (int, error) { return cl.Partitions(ctx, topic) })
	if err != nil {
		t.Fatalf("runneltest: consume %q: %v", topic, err)
	}
	if parts < 0 || parts > math.MaxInt32 {
		// A Client's answer no Kafka topic gives (partition ids are
		// int32s): make would panic, or take the memory.
		t.Fatalf("runneltest: consume %q: the client says it has %d partitions", topic, parts)
	}
	// ResetNone: records deleted under the reader fail the test rather
	// than go missing.
	c, err := consumer.New(cl, consumer.ResetOffset(consumer.ResetNone), consumer.FetchMaxWait(100*time.Millisecond),
		consumer.RetryBackoff(retryBackoff))
	if err != nil {
		t.Fatalf("runneltest: consume %q: %v", topic, err)
	}
	return &reader{topic: topic, parts: parts, c: c, got: make([][]*record.Record, parts)}
}

func (r *reader) assign(t testing.TB, p int32, at consumer.Offset) {
	t.Helper()
	if err := r.c.Assign(r.topic, p, at); err != nil {
		t.Fatalf("runneltest: consume %s-%d: %v", r.topic, p, err)
	}
}

// add keeps the records of fs, those below ends[p] when ends is set.
func (r *reader) add(t testing.TB, fs consumer.Fetches, ends []int64) {
	t.Helper()
	for rec, err := range fs.Records() {
		if err != nil {
			t.Fatalf("runneltest: consume %q: %v", r.topic, err)
		}
		if ends != nil && rec.Offset >= ends[rec.Partition] {
			continue
		}
		r.got[rec.Partition] = append(r.got[rec.Partition], rec)
		r.total++
	}
}

// records returns the records read, ordered by partition then offset.
func (r *reader) records() []*record.Record {
	out := make([]*record.Record, 0, r.total)
	for _, recs := range r.got {
		out = append(out, recs...)
	}
	return out
}

// summary says how many records came from each partition, for a failure
// message: "t-0: 2, t-1: 0".
func (r *reader) summary() string {
	var sb strings.Builder
	for p, recs := range r.got {
		if p > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "%s-%d: %d", r.topic, p, len(recs))
	}
	return sb.String()
}

// close closes the consumer; its Close returns nil.
func (r *reader) close() { _ = r.c.Close() }
