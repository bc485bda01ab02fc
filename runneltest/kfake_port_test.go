package runneltest_test

// A kfake-based test suite as a kgo user writes it, ported to
// runneltest: each test names the kfake/kgo behaviour it keeps, and
// asserts runnel's. The kgo and kfake side of the behaviours that differ
// from what a user might guess is in benchmarks/peers (migrate_test.go).

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// Kafka error codes of kerr that package api has no sentinel for.
const (
	codeLeaderNotAvailable = 5  // kerr.LeaderNotAvailable
	codeNetworkException   = 13 // kerr.NetworkException
	codeOffsetNotAvailable = 78 // kerr.OffsetNotAvailable
)

// TestKfakeRetriableCodesWithoutSentinel: a kfake test injects
// c.Fault(kfake.Fault{Keys: Produce, Err: kerr.LeaderNotAvailable,
// Count: 2}) and expects kgo to retry and deliver. Ported as the godoc
// says, with api.ForCode(kerr.X.Code), the rule's error is an
// *api.UnknownCodeError (api has no ErrLeaderNotAvailable): the producer,
// a consumer and Consume must retry it as they retry api.ErrNotLeader.
// On the old code the producer failed the record at once (not
// retriable, Code -1), the consumer's Records yielded the error, and
// Consume failed the test.
func TestKfakeRetriableCodesWithoutSentinel(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 2))
	f := runneltest.NewFaults(t, b)

	prod := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Topic: "orders",
		Err: api.ForCode(codeLeaderNotAvailable), Count: 2})
	p := runneltest.NewProducer(t, f, producer.RetryBackoff(time.Millisecond))
	rec := &record.Record{Topic: "orders", Key: []byte("ada"), Value: []byte("book")}
	require.NoError(t, p.ProduceSync(context.Background(), rec), "retried, as kgo retries LEADER_NOT_AVAILABLE")
	require.Equal(t, 2, prod.Hits())

	// A partition's error of a fetch: retried without a word.
	fetch := f.Add(runneltest.Fault{Op: runneltest.OpFetch, Action: runneltest.FailPartitions,
		Err: api.ForCode(codeOffsetNotAvailable), Count: 2})
	c := runneltest.NewConsumer(t, f, consumer.RetryBackoff(time.Millisecond), consumer.FetchMaxWait(10*time.Millisecond))
	require.NoError(t, c.Assign("orders", rec.Partition, consumer.Start()))
	ctx, cancel := context.WithTimeout(context.Background(), runneltest.DefaultWait)
	defer cancel()
	for got, err := range c.Records(ctx) {
		require.NoError(t, err, "OFFSET_NOT_AVAILABLE is retriable")
		require.Equal(t, "book", string(got.Value))
		break
	}
	require.Equal(t, 2, fetch.Hits())

	// A whole fetch failed: Consume rides it out, as its doc says of a
	// retriable error.
	whole := f.Add(runneltest.Fault{Op: runneltest.OpFetch, Err: api.ForCode(codeNetworkException), Count: 2})
	require.Len(t, runneltest.Consume(t, f, "orders", 1), 1)
	require.Equal(t, 2, whole.Hits())
}

// TestKfakeRecordFields: what a kgo consumer gets back from
// kfake, field by field: a nil key or value stays nil (a null, -1 on the
// wire) and an empty one stays empty and non-nil; headers keep their
// order, repeats and nil values; through the producer and through
// Produce alike.
func TestKfakeRecordFields(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	p := runneltest.NewProducer(t, b)
	hs := []record.Header{{Key: "b", Value: nil}, {Key: "a", Value: []byte{}}, {Key: "b", Value: []byte("2")}, {Key: "", Value: []byte("x")}}
	fields := func() []*record.Record {
		return []*record.Record{
			{Key: nil, Value: nil},
			{Key: []byte{}, Value: []byte{}},
			{Key: []byte("k"), Value: nil, Headers: hs},
		}
	}
	sent := fields()
	for _, r := range sent {
		r.Topic = "t"
	}
	require.NoError(t, p.ProduceSync(context.Background(), sent...))
	runneltest.Produce(t, b, "t", fields()...)

	got := runneltest.ConsumeAll(t, b, "t")
	require.Len(t, got, 6)
	for i, r := range got {
		want := fields()[i%3]
		require.Equal(t, want.Key == nil, r.Key == nil, "record %d: key nil", i)
		require.Equal(t, want.Value == nil, r.Value == nil, "record %d: value nil", i)
		require.Equal(t, string(want.Key), string(r.Key))
		require.Len(t, r.Headers, len(want.Headers))
		for j, h := range r.Headers {
			require.Equal(t, want.Headers[j].Key, h.Key, "record %d header %d", i, j)
			require.Equal(t, want.Headers[j].Value == nil, h.Value == nil, "record %d header %d: nil", i, j)
			require.Equal(t, string(want.Headers[j].Value), string(h.Value))
		}
	}
}

// TestKfakeEmptyKeyIsHashed: kgo's default partitioner hashes a
// key that is empty but not nil (only a nil key is sticky), as Kafka's
// does; so do runnel's producer and Produce.
func TestKfakeEmptyKeyIsHashed(t *testing.T) {
	const n = 10
	b := runneltest.NewBroker(t, runneltest.Topic("t", n))
	want := producer.KeyPartition([]byte{}, n)
	require.NotZero(t, want, "the test needs a partition other than Produce's default 0")
	p := runneltest.NewProducer(t, b)
	for range 5 {
		r := &record.Record{Topic: "t", Key: []byte{}, Value: []byte("v")}
		require.NoError(t, p.ProduceSync(context.Background(), r))
		require.Equal(t, want, r.Partition)
	}
	r := &record.Record{Key: []byte{}, Value: []byte("v")}
	runneltest.Produce(t, b, "t", r)
	require.Equal(t, want, r.Partition)
}

// TestKfakeOrderUnderFaults: kfake faults that fail produce
// requests (NOT_LEADER), or append them and lose the answer
// (REQUEST_TIMED_OUT after the append), in the middle of a stream of
// small batches with 5 in flight: an idempotent producer keeps every
// record once, in the order produced, each promise told its offset.
func TestKfakeOrderUnderFaults(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	f := runneltest.NewFaults(t, b)
	refused := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrNotLeader, Count: 3, Skip: 2})
	lost := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.LoseResponse, Err: api.ErrRequestTimedOut, Count: 3, Skip: 4})
	p := runneltest.NewProducer(t, f, producer.RetryBackoff(time.Millisecond), producer.BatchMaxBytes(300))
	const n = 500
	offsets := make([]int64, n)
	errs := make([]error, n)
	for i := range n {
		p.Produce(context.Background(), &record.Record{Topic: "t", Key: []byte("k"), Value: fmt.Appendf(nil, "%05d", i)},
			func(r *record.Record, err error) { offsets[i], errs[i] = r.Offset, err })
	}
	require.NoError(t, p.Flush(context.Background()))
	require.Equal(t, 3, refused.Hits())
	require.Equal(t, 3, lost.Hits())
	got := runneltest.ConsumeAll(t, b, "t")
	require.Len(t, got, n, "each record once")
	for i, r := range got {
		require.NoError(t, errs[i])
		require.Equal(t, fmt.Sprintf("%05d", i), string(r.Value), "in the order produced")
		require.Equal(t, r.Offset, offsets[i], "the promise's offset")
	}
}

// TestKfakeListOffsets: what a kgo user asks with ListOffsets:
// -1 the high watermark, -2 the log start, -3 (KIP-734) the first record
// of the largest timestamp, and a time the first record stamped at or
// after it.
func TestKfakeListOffsets(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	base := time.UnixMilli(10_000)
	runneltest.Produce(t, b, "t",
		&record.Record{Value: []byte("a"), Timestamp: base.Add(2 * time.Second)},
		&record.Record{Value: []byte("b"), Timestamp: base},
		&record.Record{Value: []byte("c"), Timestamp: base.Add(2 * time.Second)},
		&record.Record{Value: []byte("d"), Timestamp: base.Add(time.Second)})
	_, err := b.DeleteRecords(context.Background(), "t", 0, 1)
	require.NoError(t, err)
	for _, tc := range []struct {
		ts     int64
		offset int64
		stamp  int64
	}{
		{api.Latest, 4, -1},
		{api.Earliest, 1, -1},
		{api.MaxTimestamp, 2, 12_000}, // offset 0 shares it, below the log start
		{10_000, 1, 10_000},
		{10_500, 2, 12_000}, // the first at or after, not the nearest
		{11_000, 2, 12_000},
		{12_000, 2, 12_000},
	} {
		lo, err := b.ListOffset(context.Background(), "t", 0, tc.ts)
		require.NoError(t, err)
		require.Equal(t, tc.offset, lo.Offset, "ts %d", tc.ts)
		require.Equal(t, tc.stamp, lo.Timestamp, "ts %d", tc.ts)
	}
}

// TestKfakeLogAppendTime: on a topic with
// message.timestamp.type=LogAppendTime, kgo's promise and consumer see
// the broker's time, not the one produced; so do runnel's.
func TestKfakeLogAppendTime(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.TopicConfig("t", log.TopicConfig{Partitions: 1,
		Config: log.Config{TimestampType: log.LogAppendTime}}))
	p := runneltest.NewProducer(t, b)
	before := time.Now().Truncate(time.Millisecond)
	r := &record.Record{Topic: "t", Value: []byte("a"), Timestamp: time.Unix(1000, 0)}
	require.NoError(t, p.ProduceSync(context.Background(), r))
	require.Equal(t, record.LogAppendTime, r.TimestampType)
	require.False(t, r.Timestamp.Before(before), "the broker's time: %v", r.Timestamp)
	got := runneltest.ConsumeAll(t, b, "t")
	require.Len(t, got, 1)
	require.Equal(t, record.LogAppendTime, got[0].TimestampType)
	require.True(t, r.Timestamp.Equal(got[0].Timestamp))
}

// TestKfakeMessageTooLarge: a record above the topic's
// max.message.bytes fails with MESSAGE_TOO_LARGE (10), which kgo does
// not retry; the records batched with it are delivered.
func TestKfakeMessageTooLarge(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.TopicConfig("t", log.TopicConfig{Partitions: 1,
		Config: log.Config{MaxMessageBytes: 200}}))
	p := runneltest.NewProducer(t, b, producer.Linger(20*time.Millisecond))
	err := p.ProduceSync(context.Background(),
		&record.Record{Topic: "t", Value: []byte("small")},
		&record.Record{Topic: "t", Value: make([]byte, 300)},
		&record.Record{Topic: "t", Value: []byte("small2")})
	require.ErrorIs(t, err, producer.ErrRecordTooLarge)
	require.EqualValues(t, 10, api.Code(err))
	require.False(t, api.IsRetriable(err))
	require.Len(t, producer.RecordErrors(err), 1)
	require.Len(t, runneltest.ConsumeAll(t, b, "t"), 2)
}

// TestKfakeDataDir: kfake.DataDir(dir) reloads what a cluster
// wrote when a new one opens on dir. runneltest's is Config's Dir: a
// broker closed in the middle of the test (a restart of the service
// under test) and a new one on the same Dir find the topics and records,
// and the first broker's cleanup, closing it again, reports nothing.
func TestKfakeDataDir(t *testing.T) {
	dir := t.TempDir()
	b := runneltest.NewBroker(t, runneltest.Config(runnel.Config{Dir: dir}), runneltest.Topic("t", 2))
	runneltest.Produce(t, b, "t", &record.Record{Key: []byte("ada"), Value: []byte("a")})
	require.NoError(t, b.Close())

	b2 := runneltest.NewBroker(t, runneltest.Config(runnel.Config{Dir: dir}))
	got := runneltest.ConsumeAll(t, b2, "t")
	require.Len(t, got, 1)
	require.Equal(t, producer.KeyPartition([]byte("ada"), 2), got[0].Partition)
	runneltest.Produce(t, b2, "t", &record.Record{Key: []byte("ada"), Value: []byte("b")})
	require.Len(t, runneltest.ConsumeAll(t, b2, "t"), 2)
}

// TestKfakeConsumeFailsOnReportedErrors: kgo strips a fetched
// partition's UNKNOWN_TOPIC_OR_PARTITION (retriable) and fetches again
// without a word (benchmarks/peers' TestMigrateFetchUnknownTopic),
// but runnel's consumer takes it, for a partition whose position the
// broker gave it, for its topic deleted, and reports it, as it reports
// a corrupt batch (CORRUPT_MESSAGE, retriable too): see
// consumer.Consumer.Poll. Consume fails the test on either at once, as
// its doc says, rather than riding them out as it rides out
// api.ErrNotLeader; so does ConsumeAll on a corrupt batch, while an
// unknown topic or partition on its first fetch of a partition, which
// starts at an offset ConsumeAll looked up itself, is waited out.
func TestKfakeConsumeFailsOnReportedErrors(t *testing.T) {
	setup := func(t *testing.T) *runneltest.Faults {
		b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
		runneltest.ProduceValues(t, b, "t", "a", "b")
		return runneltest.NewFaults(t, b)
	}
	once := func(f *runneltest.Faults, err error) *runneltest.Rule {
		return f.Add(runneltest.Fault{Op: runneltest.OpFetch, Action: runneltest.FailPartitions, Err: err, Count: 1})
	}
	for _, err := range []error{api.ErrUnknownTopicOrPartition, record.ErrCorrupt} {
		t.Run(api.Name(err), func(t *testing.T) {
			require.True(t, api.IsRetriable(err))
			f := setup(t)
			calls := map[string]func(ft *fakeT){"Consume": func(ft *fakeT) { runneltest.Consume(ft, f, "t", 2) }}
			if err == record.ErrCorrupt {
				calls["ConsumeAll"] = func(ft *fakeT) { runneltest.ConsumeAll(ft, f, "t") }
			}
			for name, call := range calls {
				r := once(f, err)
				ft := fails(t, call)
				require.True(t, ft.failed, name)
				require.Contains(t, ft.msg, "injected into fetch t-0: "+err.Error(), name)
				require.Equal(t, 1, r.Hits())
			}
			require.Len(t, runneltest.Consume(t, f, "t", 2), 2, "once the rule is spent")
		})
	}
	f := setup(t)
	r := once(f, api.ErrUnknownTopicOrPartition)
	require.Len(t, runneltest.ConsumeAll(t, f, "t"), 2)
	require.Equal(t, 1, r.Hits())
}

// TestKfakeDropControl: a kfake control kept with KeepControl
// that fails requests until a condition, then calls DropControl and
// lets the request go on, is a rule whose Match removes the rule and
// returns false: the request goes on to the broker, and no later one
// sees the rule.
func TestKfakeDropControl(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	f := runneltest.NewFaults(t, b)
	var rule atomic.Pointer[runneltest.Rule]
	var calls atomic.Int32
	r := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrNotLeader, Count: runneltest.Unlimited,
		Match: func(runneltest.Request) bool {
			if calls.Add(1) < 3 {
				return true // KeepControl: fail this one
			}
			rule.Load().Remove() // DropControl: this request goes on
			return false
		}})
	rule.Store(r)
	p := runneltest.NewProducer(t, f, producer.RetryBackoff(time.Millisecond))
	require.NoError(t, p.ProduceSync(context.Background(), &record.Record{Topic: "t", Value: []byte("a")}))
	require.NoError(t, p.ProduceSync(context.Background(), &record.Record{Topic: "t", Value: []byte("b")}))
	require.Equal(t, 2, r.Hits())
	require.EqualValues(t, 3, calls.Load(), "Match not called once the rule is removed")
	require.Len(t, runneltest.ConsumeAll(t, b, "t"), 2)
}

// TestPipelinedRefusalsWithoutSentinel: an idempotent producer
// (MaxInFlight 5, small batches) whose produce requests are refused
// before the append (FailRequest) several times in a row delivers every
// record once, in order, whether the refusal is api.ErrNotLeader or a
// retriable code api has no sentinel for (LEADER_NOT_AVAILABLE,
// FENCED_LEADER_EPOCH: kfake's kerr.X ported as api.ForCode, as the
// README says; kgo retries them and delivers).
func TestPipelinedRefusalsWithoutSentinel(t *testing.T) {
	for _, refusal := range []error{api.ErrNotLeader, api.ForCode(5), api.ForCode(74)} {
		t.Run(api.Name(refusal), func(t *testing.T) {
			b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
			f := runneltest.NewFaults(t, b)
			refused := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: refusal, Count: 8, Skip: 2})
			p := runneltest.NewProducer(t, f, producer.RetryBackoff(time.Millisecond), producer.BatchMaxBytes(300))
			const n = 500
			errs := make([]error, n)
			for i := range n {
				p.Produce(context.Background(), &record.Record{Topic: "t", Key: []byte("k"), Value: fmt.Appendf(nil, "%05d", i)},
					func(r *record.Record, err error) { errs[i] = err })
			}
			require.NoError(t, p.Flush(context.Background()))
			require.Equal(t, 8, refused.Hits())
			for i, err := range errs {
				require.NoError(t, err, "record %d", i)
			}
			got := runneltest.ConsumeAll(t, b, "t")
			require.Len(t, got, n, "each record once")
			for i, r := range got {
				require.Equal(t, fmt.Sprintf("%05d", i), string(r.Value), "in the order produced")
			}
		})
	}
}
