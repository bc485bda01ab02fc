package runneltest_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
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
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

func TestThreeLines(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 3))
	runneltest.ProduceValues(t, b, "orders", "a", "b", "c")
	recs := runneltest.ConsumeAll(t, b, "orders")

	require.Len(t, recs, 3)
	for i, r := range recs {
		require.Equal(t, []string{"a", "b", "c"}[i], string(r.Value))
		require.EqualValues(t, i, r.Offset)
		require.Equal(t, "orders", r.Topic)
	}
	require.Equal(t, recs, runneltest.Consume(t, b, "orders", 3))
}

func TestKeyedSpread(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("events", 4))
	var recs []*record.Record
	for i := range 40 {
		recs = append(recs, &record.Record{Key: fmt.Appendf(nil, "user-%d", i%8), Value: fmt.Appendf(nil, "%d", i)})
	}
	runneltest.Produce(t, b, "events", recs...)
	byKey := map[string]int32{}
	for _, r := range recs {
		if p, ok := byKey[string(r.Key)]; ok {
			require.Equal(t, p, r.Partition, "a key stays on its partition")
		}
		byKey[string(r.Key)] = r.Partition
	}
	got := runneltest.Consume(t, b, "events", 40)
	require.Len(t, got, 40)

	// The producer puts a key where runneltest.Produce did.
	p := runneltest.NewProducer(t, b)
	for key, part := range byKey {
		r := &record.Record{Topic: "events", Key: []byte(key)}
		require.NoError(t, p.ProduceSync(context.Background(), r))
		require.Equal(t, part, r.Partition, key)
	}
}

func TestProduceToMissingPartitionFails(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("one", 1))
	ft := fails(t, func(ft *fakeT) {
		runneltest.Produce(ft, b, "one", &record.Record{Partition: 3, Value: []byte("x")})
	})
	require.True(t, ft.failed)
	require.Contains(t, ft.msg, "one-3")
}

// Bad records fail the test with a message that says which, and nothing
// is produced, not even the good records before them.
func TestProduceRefusesBadRecords(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1), runneltest.Topic("other", 1))
	good := func() *record.Record { return &record.Record{Value: []byte("ok")} }

	ft := fails(t, func(ft *fakeT) { runneltest.Produce(ft, b, "t", good(), nil) })
	require.True(t, ft.failed)
	require.Contains(t, ft.msg, "record 1 is nil")

	r := good()
	r.Topic = "other"
	ft = fails(t, func(ft *fakeT) { runneltest.Produce(ft, b, "t", good(), r) })
	require.True(t, ft.failed)
	require.Contains(t, ft.msg, `record 1 names topic "other"`)
	require.Equal(t, "other", r.Topic, "left as it was")

	require.Empty(t, runneltest.ConsumeAll(t, b, "t"))
	require.Empty(t, runneltest.ConsumeAll(t, b, "other"))

	// A record that already names the topic, or none, is fine.
	r = good()
	r.Topic = "t"
	empty := good()
	runneltest.Produce(t, b, "t", r, empty)
	require.Equal(t, "t", empty.Topic)
	require.Len(t, runneltest.ConsumeAll(t, b, "t"), 2)
}

// ConsumeAll returns what is there when it is called — every partition,
// ordered by partition then offset — and waits for nothing.
func TestConsumeAll(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 3), runneltest.Topic("empty", 2))
	require.Empty(t, runneltest.ConsumeAll(t, b, "empty"))

	var recs []*record.Record
	for i := range 12 {
		recs = append(recs, &record.Record{Partition: int32(2 - i%3), Value: fmt.Appendf(nil, "%d", i)})
	}
	runneltest.Produce(t, b, "t", recs...)
	got := runneltest.ConsumeAll(t, b, "t")
	require.Len(t, got, 12, "exactly what was produced")
	for i, r := range got {
		require.EqualValues(t, i/4, r.Partition, "by partition")
		require.EqualValues(t, i%4, r.Offset, "then offset")
		require.Equal(t, "t", r.Topic)
	}
	var want []string
	for p := range int32(3) {
		for _, r := range recs {
			if r.Partition == p {
				want = append(want, string(r.Value))
			}
		}
	}
	require.Equal(t, want, values(got))

	// Records deleted below the log start are not there to return; later
	// ones are, the next time.
	_, err := b.DeleteRecords(context.Background(), "t", 1, 3)
	require.NoError(t, err)
	runneltest.ProduceValues(t, b, "t", "late")
	got = runneltest.ConsumeAll(t, b, "t")
	require.Len(t, got, 12-3+1)
	require.Equal(t, "late", string(got[4].Value))
	require.EqualValues(t, 4, got[4].Offset)
	require.EqualValues(t, 1, got[5].Partition)
	require.EqualValues(t, 3, got[5].Offset)

	ft := fails(t, func(ft *fakeT) { runneltest.ConsumeAll(ft, b, "missing") })
	require.True(t, ft.failed)
	require.Contains(t, ft.msg, "missing")
}

// Consume waits for records produced later, and gives up at the test's
// deadline when the TB has one.
func TestConsumeWaitsUntilTheDeadline(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 2))
	p := runneltest.NewProducer(t, b, producer.Linger(time.Millisecond), producer.RecordPartitioner(producer.ManualPartitioner()))
	done := make(chan []*record.Record)
	go func() { done <- runneltest.Consume(t, b, "t", 2) }()
	p.Produce(context.Background(), &record.Record{Topic: "t", Partition: 1, Value: []byte("x")}, nil)
	p.Produce(context.Background(), &record.Record{Topic: "t", Partition: 0, Value: []byte("y")}, nil)
	got := testkit.Await(t, done, "Consume's answer")
	require.Equal(t, []string{"y", "x"}, values(got), "by partition, not by arrival")

	// A test whose deadline has passed: Consume fails at once, saying so,
	// rather than after its own 10 s.
	ft := fails(t, func(ft *fakeT) {
		runneltest.Consume(deadlineT{ft, time.Now()}, b, "t", 3)
	})
	require.True(t, ft.failed)
	require.Contains(t, ft.msg, `consume "t": got`)
	require.Contains(t, ft.msg, "of 3 records before the test's deadline")

	ft = fails(t, func(ft *fakeT) { runneltest.Consume(ft, b, "t", -1) })
	require.True(t, ft.failed)
}

func TestNewProducer(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	var p *producer.Producer
	var promised error
	t.Run("test", func(t *testing.T) {
		p = runneltest.NewProducer(t, b, producer.Linger(time.Minute))
		// Produced and never waited for: the cleanup flushes it.
		p.Produce(context.Background(), &record.Record{Topic: "t", Value: []byte("v")},
			func(_ *record.Record, err error) { promised = err })
	})
	require.NoError(t, promised, "delivered at cleanup")
	require.ErrorIs(t, p.Flush(context.Background()), producer.ErrClosed, "closed at cleanup")
	require.Equal(t, []string{"v"}, values(runneltest.ConsumeAll(t, b, "t")))

	ft := fails(t, func(ft *fakeT) { runneltest.NewProducer(ft, b, producer.Acks(7)) })
	require.True(t, ft.failed)
	require.Contains(t, ft.msg, "producer")
}

func values(recs []*record.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Value)
	}
	return out
}

func TestNewConsumer(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	runneltest.ProduceValues(t, b, "t", "a", "b")
	var c *consumer.Consumer
	t.Run("test", func(t *testing.T) {
		c = runneltest.NewConsumer(t, b)
		require.NoError(t, c.Assign("t", 0, consumer.Start()))
		fs, err := c.Poll(context.Background())
		require.NoError(t, err)
		require.NoError(t, fs.Err())
		require.Equal(t, 2, fs.NumRecords())
	})
	_, err := c.Poll(context.Background())
	require.ErrorIs(t, err, consumer.ErrClosed, "closed at cleanup")

	ft := fails(t, func(ft *fakeT) { runneltest.NewConsumer(ft, b, consumer.FetchMaxWait(-1)) })
	require.True(t, ft.failed)
	require.Contains(t, ft.msg, "consumer")
}

// Records stamped with a fixed old time stay in a test broker through
// its maintenance, unless the test asks for a retention time.
func TestOldTimestampsAreKept(t *testing.T) {
	ctx := context.Background()
	old := &record.Record{Value: []byte("1970"), Timestamp: time.Unix(1, 0)}

	b := runneltest.NewBroker(t, runneltest.Topic("events", 1))
	runneltest.Produce(t, b, "events", old)
	require.NoError(t, b.Maintain(ctx))
	require.Len(t, runneltest.ConsumeAll(t, b, "events"), 1, "kept: no retention configured")

	b = runneltest.NewBroker(t, runneltest.Config(runnel.Config{TopicDefaults: log.Config{RetentionTime: time.Hour}}), runneltest.Topic("events", 1))
	runneltest.Produce(t, b, "events", &record.Record{Value: []byte("1970"), Timestamp: time.Unix(1, 0)})
	require.NoError(t, b.Maintain(ctx))
	require.Empty(t, runneltest.ConsumeAll(t, b, "events"), "deleted: a retention time was asked for")
}

// Consume that does not get its records fails the test after Timeout's
// time, even with the test's deadline far away (go test's default
// -timeout is 10 minutes), saying how many came of how many and from
// which partitions. A Timeout that is not positive fails the test. (The
// three records there must have been read before the wait ended, which
// a loaded machine may not do within a short wait: see testkit.UntilInTime.)
func TestConsumeTimeout(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 3))
	runneltest.Produce(t, b, "t", &record.Record{Partition: 1, Value: []byte("a")}, &record.Record{Partition: 1, Value: []byte("b")}, &record.Record{Partition: 2, Value: []byte("c")})

	far := func(ft *fakeT) deadlineT { return deadlineT{ft, time.Now().Add(time.Hour)} }
	var ft *fakeT
	testkit.UntilInTime(t, 50*time.Millisecond, func(wait time.Duration) bool {
		ft = fails(t, func(ft *fakeT) {
			runneltest.Consume(far(ft), b, "t", 5, runneltest.Timeout(wait))
		})
		require.True(t, ft.failed)
		// Too slow: fewer of the three read, or the partition count not
		// looked up, when the wait ended.
		tooSlow := regexp.MustCompile(fmt.Sprintf(`^runneltest: consume "t": (got [0-2] of 5 records within %[1]v \(t-0: 0, t-1: [0-2], t-2: [01]\)|no answer within %[1]v: context deadline exceeded)$`,
			regexp.QuoteMeta(wait.String())))
		if tooSlow.MatchString(ft.msg) {
			return false
		}
		require.Equal(t, fmt.Sprintf(`runneltest: consume "t": got 3 of 5 records within %v (t-0: 0, t-1: 2, t-2: 1)`, wait), ft.msg)
		return true
	})

	require.Len(t, runneltest.Consume(t, b, "t", 3, runneltest.Timeout(time.Minute)), 3)
	require.Len(t, runneltest.ConsumeAll(t, b, "t", runneltest.Timeout(time.Minute)), 3)

	for _, d := range []time.Duration{0, -time.Second} {
		ft = fails(t, func(ft *fakeT) { runneltest.Consume(ft, b, "t", 1, runneltest.Timeout(d)) })
		require.True(t, ft.failed)
		require.Contains(t, ft.msg, "not positive")
		ft = fails(t, func(ft *fakeT) { runneltest.ConsumeAll(ft, b, "t", runneltest.Timeout(d)) })
		require.True(t, ft.failed)
		require.Contains(t, ft.msg, "not positive")
	}
}

// faultyBroker fails the first produce request and every fetch with
// err, as a test of code that must survive a broker's errors wraps the
// broker (producer.Client's and consumer.Client's docs invite it).
type faultyBroker struct {
	*runnel.Broker
	err      error
	produced atomic.Int32
}

func (f *faultyBroker) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	if f.produced.Add(1) == 1 {
		return api.ProduceResponse{}, f.err
	}
	return f.Broker.Produce(ctx, req)
}

func (f *faultyBroker) ProduceAsync(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, api.Ack, error) {
	if f.produced.Add(1) == 1 {
		return api.ProduceResponse{}, nil, f.err
	}
	return f.Broker.ProduceAsync(ctx, req)
}

func (f *faultyBroker) Fetch(context.Context, *api.FetchRequest) (api.FetchResponse, error) {
	return api.FetchResponse{}, f.err
}

// NewProducer and NewConsumer take a client of the test's own that
// wraps the broker, with the same cleanup as for the broker itself.
func TestNewProducerConsumerWrappedBroker(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	f := &faultyBroker{Broker: b, err: api.ErrNotLeader} // retriable
	t.Run("test", func(t *testing.T) {
		p := runneltest.NewProducer(t, f, producer.RetryBackoff(time.Millisecond))
		require.NoError(t, p.ProduceSync(context.Background(), &record.Record{Topic: "t", Value: []byte("v")}))
		require.Equal(t, int32(2), f.produced.Load(), "failed once, then retried")

		c := runneltest.NewConsumer(t, &faultyBroker{Broker: b, err: api.ErrPolicyViolation}) // not retriable: Poll's error
		require.NoError(t, c.Assign("t", 0, consumer.Start()))
		_, err := c.Poll(context.Background())
		require.ErrorIs(t, err, api.ErrPolicyViolation)
	})
	require.Equal(t, []string{"v"}, values(runneltest.ConsumeAll(t, b, "t")))
}

// TestProduceSetsWhatItsDocSays: Produce gives each record its Topic (if
// empty), Partition, Offset and (if zero) Timestamp; a timestamp before
// 1970 is produced as it is (a negative Kafka timestamp, which the broker
// takes and a producer.Producer refuses), and read back so.
func TestProduceSetsWhatItsDocSays(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 2))
	before := time.Now()
	plain := &record.Record{Partition: 1, Value: []byte("plain")}
	old := &record.Record{Topic: "t", Partition: 1, Value: []byte("old"), Timestamp: time.UnixMilli(-5000)}
	runneltest.Produce(t, b, "t", plain, old)
	require.Equal(t, "t", plain.Topic)
	require.EqualValues(t, 1, plain.Partition)
	require.EqualValues(t, 0, plain.Offset)
	require.False(t, plain.Timestamp.Before(before.Truncate(time.Millisecond)), "a zero Timestamp is set to the time of the call")
	require.EqualValues(t, 1, old.Offset)
	require.Equal(t, int64(-5000), old.Timestamp.UnixMilli(), "kept")

	got := runneltest.ConsumeAll(t, b, "t")
	require.Len(t, got, 2)
	require.Equal(t, plain.Timestamp.UnixMilli(), got[0].Timestamp.UnixMilli())
	require.Equal(t, int64(-5000), got[1].Timestamp.UnixMilli(), "stored before 1970")
}

// TestBrokerClosedUnderAClient pins NewBroker's cleanup (package doc,
// "Cleanup order"): it closes the broker even if a client made outside
// the helpers is still open, and that client then fails with
// runnel.ErrClosed.
func TestBrokerClosedUnderAClient(t *testing.T) {
	var p *producer.Producer
	t.Run("test", func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
		var err error
		p, err = producer.New(b)
		require.NoError(t, err)
		require.NoError(t, p.ProduceSync(t.Context(), &record.Record{Topic: "t", Value: []byte("v")}))
	})
	defer p.Close()
	err := p.ProduceSync(context.Background(), &record.Record{Topic: "t", Value: []byte("after")})
	require.ErrorIs(t, err, runnel.ErrClosed)
}

// Consume of no records returns none, at once.
func TestConsumeZero(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	runneltest.ProduceValues(t, b, "t", "a")
	require.Empty(t, runneltest.Consume(t, b, "t", 0))
}

// Consume returns n records, though more are there.
func TestConsumeReturnsN(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	runneltest.ProduceValues(t, b, "t", "a", "b", "c")
	require.Equal(t, []string{"a", "b"}, values(runneltest.Consume(t, b, "t", 2)))
}

// ConsumeAll of empty partitions reads nothing and waits for nothing: on
// the bubble's fake clock, no time passes.
func TestConsumeAllEmptyWaitsForNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("t", 2))
		t0 := time.Now()
		require.Empty(t, runneltest.ConsumeAll(t, b, "t"))
		require.Equal(t, t0, time.Now())
	})
}

// An unknown topic, and an error that is not retriable, fail Consume at
// once, not when its wait ends.
func TestConsumeFailsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
		t0 := time.Now()
		ft := fails(t, func(ft *fakeT) { runneltest.Consume(ft, b, "missing", 1) })
		require.True(t, ft.failed)
		require.Equal(t, t0, time.Now(), "unknown topic")

		f := runneltest.NewFaults(t, b)
		f.Add(runneltest.Fault{Op: runneltest.OpPartitions, Err: api.ErrPolicyViolation, Count: runneltest.Unlimited})
		ft = fails(t, func(ft *fakeT) { runneltest.Consume(ft, f, "t", 1) })
		require.True(t, ft.failed)
		require.Contains(t, ft.msg, api.ErrPolicyViolation.Error())
		require.Equal(t, t0, time.Now(), "not retriable")
	})
}

// endClient is the broker, but for the high watermark its ListOffset
// gives: one lower (lower), or of another topic ID (newID), as a topic
// deleted and created again between the look-ups would give.
type endClient struct {
	*runnel.Broker
	lower, newID bool
}

func (c endClient) ListOffset(ctx context.Context, topic string, partition int32, ts int64) (api.ListedOffset, error) {
	lo, err := c.Broker.ListOffset(ctx, topic, partition, ts)
	if err == nil && ts == api.Latest {
		if c.lower {
			lo.Offset--
		}
		if c.newID {
			lo.TopicID[0] ^= 1
		}
	}
	return lo, err
}

// ConsumeAll returns the records below the high watermark it looked up,
// and fails the test when the topic's ID changed between its look-ups.
func TestConsumeAllUpToItsEnd(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	runneltest.ProduceValues(t, b, "t", "a", "b", "c")
	require.Equal(t, []string{"a", "b"}, values(runneltest.ConsumeAll(t, endClient{Broker: b, lower: true}, "t")))

	ft := fails(t, func(ft *fakeT) { runneltest.ConsumeAll(ft, endClient{Broker: b, newID: true}, "t") })
	require.True(t, ft.failed)
	require.Contains(t, ft.msg, "deleted and created again")
}

// TestNewBrokerCloseFailureReported: NewBroker's cleanup closes
// the broker; a Close that fails (its closing writes refused by the
// disk) fails the test with a message that says what failed, with the
// file system's error.
func TestNewBrokerCloseFailureReported(t *testing.T) {
	var armed atomic.Bool
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if !armed.Load() {
			return nil
		}
		switch op {
		case vfs.OpCreate, vfs.OpWrite, vfs.OpSync, vfs.OpSyncDir, vfs.OpRename, vfs.OpTruncate:
			return vfs.ErrInjected
		}
		return nil
	}))
	ct := &cleanupT{fakeT: &fakeT{TB: t}}
	b := runneltest.NewBroker(ct, runneltest.Config(runnel.Config{Dir: "/d", FS: fsys,
		TopicDefaults: log.Config{Sync: log.SyncNever}}), runneltest.Topic("t", 1))
	require.False(t, ct.failed, ct.msg)
	runneltest.ProduceValues(ct, b, "t", "a")
	require.False(t, ct.failed, ct.msg)
	armed.Store(true)
	ct.runCleanups()
	require.True(t, ct.failed, "a failed Close is reported")
	require.True(t, strings.HasPrefix(ct.msg, "runneltest: close broker: "), ct.msg)
	require.Contains(t, ct.msg, vfs.ErrInjected.Error())
}

// partitionsFor is a consumer.Client whose Partitions answers n for any
// name, the empty one too, as no broker does; the rest is b's.
type partitionsFor struct {
	*runnel.Broker
	n int
}

func (p partitionsFor) Partitions(context.Context, string) (int, error) { return p.n, nil }

// TestConsumeAssignFailureReported: Consume of a topic whose
// partitions the consumer cannot assign (a Client of the test's own that
// answers a count for an empty name) fails the test with a message that
// names the partition and says why, rather than hang or panic.
func TestConsumeAssignFailureReported(t *testing.T) {
	b := runneltest.NewBroker(t)
	ft := fails(t, func(ft *fakeT) {
		runneltest.Consume(ft, partitionsFor{Broker: b, n: 1}, "", 1)
	})
	require.True(t, ft.failed)
	require.True(t, strings.HasPrefix(ft.msg, "runneltest: consume -0: "), ft.msg)
	require.Contains(t, ft.msg, "topic")
}
