package runneltest_test

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// matchCall makes one request of an Op through f, as its caller would,
// and returns its error.
type matchCall struct {
	op   runneltest.Op
	call func(t *testing.T, f *runneltest.Faults) error
	// want checks the Request the rule's Match was handed.
	want func(t *testing.T, req runneltest.Request)
}

// matchCalls makes one request of each Op; b has topic "orders" with
// partition 0 holding three records.
var matchCalls = []matchCall{
	{runneltest.OpProduce,
		func(t *testing.T, f *runneltest.Faults) error {
			_, err := f.Produce(t.Context(), produceRequest(t, "orders", 0, "k", "v"))
			return err
		},
		func(t *testing.T, req runneltest.Request) {
			require.Equal(t, "orders", req.Topic)
			require.EqualValues(t, 0, req.Partition)
			require.NotNil(t, req.Produce)
			require.Equal(t, []string{"v"}, requestValues(t, req))
		}},
	{runneltest.OpFetch,
		func(t *testing.T, f *runneltest.Faults) error {
			_, err := f.Fetch(t.Context(), &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "orders", Partition: 0, Offset: 1}}})
			return err
		},
		func(t *testing.T, req runneltest.Request) {
			require.Equal(t, "orders", req.Topic)
			require.NotNil(t, req.Fetch)
			require.EqualValues(t, 1, req.FetchPartition.Offset)
		}},
	{runneltest.OpListOffset,
		func(t *testing.T, f *runneltest.Faults) error {
			_, err := f.ListOffset(t.Context(), "orders", 0, api.Earliest)
			return err
		},
		func(t *testing.T, req runneltest.Request) {
			require.Equal(t, runneltest.Request{Op: runneltest.OpListOffset, Topic: "orders", Partition: 0, Timestamp: api.Earliest}, req)
		}},
	{runneltest.OpPartitions,
		func(t *testing.T, f *runneltest.Faults) error {
			_, err := f.Partitions(t.Context(), "orders")
			return err
		},
		func(t *testing.T, req runneltest.Request) {
			require.Equal(t, runneltest.Request{Op: runneltest.OpPartitions, Topic: "orders", Partition: -1}, req)
		}},
	{runneltest.OpInitProducerID,
		func(t *testing.T, f *runneltest.Faults) error {
			_, _, err := f.InitProducerID(t.Context())
			return err
		},
		func(t *testing.T, req runneltest.Request) {
			require.Equal(t, runneltest.Request{Op: runneltest.OpInitProducerID, Partition: -1}, req)
		}},
	{runneltest.OpUnwritablePartitions,
		func(t *testing.T, f *runneltest.Faults) error {
			_, err := f.UnwritablePartitions(t.Context(), "orders")
			return err
		},
		func(t *testing.T, req runneltest.Request) {
			require.Equal(t, runneltest.Request{Op: runneltest.OpUnwritablePartitions, Topic: "orders", Partition: -1}, req)
		}},
}

// produceRequest is a produce request of one uncompressed batch holding
// a record per key and value pair.
func produceRequest(t *testing.T, topic string, partition int32, kvs ...string) *api.ProduceRequest {
	t.Helper()
	var bld record.Builder
	for i := 0; i < len(kvs); i += 2 {
		bld.Append(0, []byte(kvs[i]), []byte(kvs[i+1]), nil)
	}
	batches, err := bld.AppendTo(nil, compression.None)
	require.NoError(t, err)
	return &api.ProduceRequest{Topic: topic, Partition: partition, Acks: api.AcksAll, Batches: batches}
}

// requestValues is what req.Records yields: the records' values.
func requestValues(t *testing.T, req runneltest.Request) []string {
	var vals []string
	for r, err := range req.Records() {
		require.NoError(t, err)
		vals = append(vals, string(r.Value))
	}
	return vals
}

// Every Op: a rule whose Match accepts the request applies to it, one
// whose Match refuses it does not (nor counts it), and Match sees the
// request as its caller made it.
func TestFaultsMatchEachOp(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
	runneltest.ProduceValues(t, b, "orders", "a", "b", "c")
	for _, tc := range matchCalls {
		for _, accept := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/%v", tc.op, accept), func(t *testing.T) {
				f := runneltest.NewFaults(t, b)
				var seen []runneltest.Request
				r := f.Add(runneltest.Fault{Op: tc.op, Err: api.ErrPolicyViolation, Count: runneltest.Unlimited,
					Match: func(req runneltest.Request) bool {
						seen = append(seen, req)
						return accept
					}})
				err := tc.call(t, f)
				require.Len(t, seen, 1, "Match is called once")
				require.Equal(t, tc.op, seen[0].Op)
				tc.want(t, seen[0])
				if accept {
					require.ErrorIs(t, err, api.ErrPolicyViolation)
					require.Equal(t, 1, r.Hits())
				} else {
					require.NoError(t, err)
					require.Zero(t, r.Hits())
				}
			})
		}
	}
}

// A fetch is matched partition by partition: Match sees each partition
// the rule's Topic and Partitions take, once, and the rule fails those
// Match accepts (here, those fetched from offset 2 on); FailRequest names
// the first of them.
func TestFaultsMatchFetchByPartition(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 3), runneltest.Topic("other", 1))
	for p := range int32(3) {
		runneltest.Produce(t, b, "orders", &record.Record{Partition: p, Value: []byte("x")},
			&record.Record{Partition: p, Value: []byte("y")}, &record.Record{Partition: p, Value: []byte("z")})
	}
	runneltest.ProduceValues(t, b, "other", "o")
	req := &api.FetchRequest{Partitions: []api.FetchPartition{
		{Topic: "orders", Partition: 0, Offset: 2},
		{Topic: "other", Partition: 0, Offset: 0},
		{Topic: "orders", Partition: 1, Offset: 0},
		{Topic: "orders", Partition: 2, Offset: 2},
	}}
	from2 := func(seen *[]string) func(runneltest.Request) bool {
		return func(r runneltest.Request) bool {
			*seen = append(*seen, fmt.Sprintf("%s-%d@%d", r.Topic, r.Partition, r.FetchPartition.Offset))
			return r.FetchPartition.Offset >= 2
		}
	}

	t.Run("FailPartitions", func(t *testing.T) {
		f := runneltest.NewFaults(t, b)
		var seen []string
		r := f.Add(runneltest.Fault{Op: runneltest.OpFetch, Topic: "orders", Action: runneltest.FailPartitions,
			Err: api.ErrNotLeader, Count: 1, Match: from2(&seen)})
		resp, err := f.Fetch(t.Context(), req)
		require.NoError(t, err)
		require.Equal(t, []string{"orders-0@2", "orders-1@0", "orders-2@2"}, seen, "once per partition of its topic")
		require.Len(t, resp.Partitions, 4)
		for i, want := range []error{api.ErrNotLeader, nil, nil, api.ErrNotLeader} {
			got := resp.Partitions[i]
			require.Equal(t, req.Partitions[i].Topic, got.Topic)
			require.Equal(t, req.Partitions[i].Partition, got.Partition)
			if want != nil {
				require.ErrorIs(t, got.Err, want, "partition %d", i)
			} else {
				require.NoError(t, got.Err, "partition %d", i)
				require.NotEmpty(t, got.Records, "partition %d read from the broker", i)
			}
		}
		require.Equal(t, 1, r.Hits(), "one fetch")
	})
	t.Run("FailRequest", func(t *testing.T) {
		f := runneltest.NewFaults(t, b)
		var seen []string
		r := f.Add(runneltest.Fault{Op: runneltest.OpFetch, Partitions: []int32{1, 2}, Err: api.ErrNotLeader,
			Count: 1, Match: from2(&seen)})
		_, err := f.Fetch(t.Context(), req)
		var ie *runneltest.InjectedError
		require.ErrorAs(t, err, &ie)
		require.Equal(t, runneltest.InjectedError{Op: runneltest.OpFetch, Topic: "orders", Partition: 2, Err: api.ErrNotLeader}, *ie,
			"the first partition Match accepted")
		require.Equal(t, []string{"orders-1@0", "orders-2@2"}, seen)
		require.Equal(t, 1, r.Hits())
	})
	t.Run("no partition accepted", func(t *testing.T) {
		f := runneltest.NewFaults(t, b)
		r := f.Add(runneltest.Fault{Op: runneltest.OpFetch, Partitions: []int32{1}, Err: api.ErrNotLeader,
			Count: 1, Match: func(r runneltest.Request) bool { return r.FetchPartition.Offset >= 2 }})
		resp, err := f.Fetch(t.Context(), req)
		require.NoError(t, err)
		for _, fp := range resp.Partitions {
			require.NoError(t, fp.Err)
		}
		require.Zero(t, r.Hits())
	})
}

// The kfake patterns: a consumer reading through a rule that fails only
// its fetches from offset 2 on retries (the error being retriable) and
// reads everything; an offset look-up by timestamp fails where Latest
// does not.
func TestFaultsMatchConsumer(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
	for _, v := range []string{"a", "b", "c", "d"} {
		runneltest.ProduceValues(t, b, "orders", v) // a batch each: a fetch each, below
	}
	f := runneltest.NewFaults(t, b)
	r := f.Add(runneltest.Fault{Op: runneltest.OpFetch, Action: runneltest.FailPartitions, Err: api.ErrNotLeader, Count: 2,
		Match: func(r runneltest.Request) bool { return r.FetchPartition.Offset >= 2 }})
	c := runneltest.NewConsumer(t, f, consumer.RetryBackoff(time.Millisecond), consumer.FetchMaxWait(10*time.Millisecond),
		consumer.FetchMaxPartitionBytes(1))
	require.NoError(t, c.Assign("orders", 0, consumer.Start()))
	var got []string
	for rec, err := range c.Records(waitCtx(t)) {
		require.NoError(t, err)
		if got = append(got, string(rec.Value)); len(got) == 4 {
			break
		}
	}
	require.Equal(t, []string{"a", "b", "c", "d"}, got)
	require.Equal(t, 2, r.Hits())

	byTime := f.Add(runneltest.Fault{Op: runneltest.OpListOffset, Err: api.ErrPolicyViolation, Count: runneltest.Unlimited,
		Match: func(r runneltest.Request) bool { return r.Timestamp >= 0 }})
	_, err := f.ListOffset(t.Context(), "orders", 0, api.Latest)
	require.NoError(t, err)
	_, err = f.ListOffset(t.Context(), "orders", 0, 0)
	require.ErrorIs(t, err, api.ErrPolicyViolation)
	require.Equal(t, 1, byTime.Hits())
}

// A request Match refuses is neither skipped nor counted: Skip and Count
// are of the requests it accepts. Once the rule is spent, its Match is
// no longer called.
func TestFaultsMatchSkipAndCount(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("a", 1), runneltest.Topic("b", 1))
	f := runneltest.NewFaults(t, b)
	calls := 0
	r := f.Add(runneltest.Fault{Op: runneltest.OpPartitions, Err: api.ErrNotLeader, Skip: 1, Count: 2,
		Match: func(req runneltest.Request) bool {
			calls++
			return req.Topic == "a"
		}})
	var failed []string
	for i, topic := range []string{"b", "a", "b", "b", "a", "b", "a", "a", "b"} {
		if _, err := f.Partitions(t.Context(), topic); err != nil {
			require.ErrorIs(t, err, api.ErrNotLeader)
			failed = append(failed, fmt.Sprintf("%d:%s", i, topic))
		}
	}
	require.Equal(t, []string{"4:a", "6:a"}, failed, "the first a skipped, the next two failed, the b's untouched")
	require.Equal(t, 2, r.Hits())
	require.Equal(t, 7, calls, "up to the request that spent the rule")
}

// Match runs without the Faults' lock: it may add rules, read hits and
// remove rules, its own included. A rule it adds is matched against the
// same request (after it, in the order added); a rule it removes, or
// that is removed while it runs, does not apply.
func TestFaultsMatchCallsFaults(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	f := runneltest.NewFaults(t, b)

	var added *runneltest.Rule
	var hits []int
	var observe *runneltest.Rule
	observe = f.Add(runneltest.Fault{Op: runneltest.OpPartitions, Action: runneltest.Observe, Count: runneltest.Unlimited,
		Match: func(runneltest.Request) bool {
			hits = append(hits, observe.Hits())
			if added == nil {
				added = f.Add(runneltest.Fault{Op: runneltest.OpPartitions, Err: api.ErrNotLeader, Count: 1})
			}
			return true
		}})
	_, err := f.Partitions(t.Context(), "t")
	require.ErrorIs(t, err, api.ErrNotLeader, "the rule added by Match applies to the request")
	require.Equal(t, 1, added.Hits())
	_, err = f.Partitions(t.Context(), "t")
	require.NoError(t, err)
	require.Equal(t, []int{0, 1}, hits)
	require.Equal(t, 2, observe.Hits())
	observe.Remove()

	var self *runneltest.Rule
	self = f.Add(runneltest.Fault{Op: runneltest.OpPartitions, Err: api.ErrNotLeader, Count: runneltest.Unlimited,
		Match: func(runneltest.Request) bool {
			self.Remove()
			return true
		}})
	_, err = f.Partitions(t.Context(), "t")
	require.NoError(t, err, "removed while its Match ran: it does not apply")
	require.Zero(t, self.Hits())
}

// A Match that panics, or ends its goroutine as t.FailNow and require's
// assertions do, fails the test, saying so, and the request: its caller
// gets an error that matches ErrMatchPanicked, which the producer and
// consumer do not retry, and nothing hangs (a Match that ended its
// goroutine used to end the producer's or consumer's, which its caller
// then waited for forever). The rule applied to nothing.
func TestFaultsMatchPanics(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
	runneltest.ProduceValues(t, b, "orders", "a")
	for _, how := range []struct {
		name  string
		match func(runneltest.Request) bool
		says  string // in the error and in the test's report
	}{
		{"panic", func(runneltest.Request) bool { panic("boom") }, "boom"},
		{"Goexit", func(runneltest.Request) bool { runtime.Goexit(); return true }, "ended its goroutine"},
	} {
		t.Run(how.name, func(t *testing.T) {
			for _, tc := range matchCalls {
				t.Run(tc.op.String(), func(t *testing.T) {
					ft := &lockedT{TB: t}
					f := runneltest.NewFaults(ft, b)
					r := f.Add(runneltest.Fault{Op: tc.op, Err: api.ErrPolicyViolation, Count: 1, Match: how.match})
					err := tc.call(t, f)
					require.ErrorIs(t, err, runneltest.ErrMatchPanicked)
					require.ErrorContains(t, err, how.says)
					require.False(t, api.IsRetriable(err))
					require.Zero(t, r.Hits())
					require.Len(t, ft.errors(), 1)
					require.Contains(t, ft.errors()[0], how.says)
					require.Contains(t, ft.errors()[0], "Match of Fault{Op: "+tc.op.String())
				})
			}
			t.Run("producer", func(t *testing.T) {
				ft := &lockedT{TB: t}
				f := runneltest.NewFaults(ft, b)
				f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrPolicyViolation, Count: runneltest.Unlimited, Match: how.match})
				p := runneltest.NewProducer(t, f)
				err := p.ProduceSync(t.Context(), &record.Record{Topic: "orders", Value: []byte("x")})
				require.ErrorIs(t, err, runneltest.ErrMatchPanicked)
				require.Len(t, ft.errors(), 1, "tried once")
			})
			t.Run("consumer", func(t *testing.T) {
				ft := &lockedT{TB: t}
				f := runneltest.NewFaults(ft, b)
				f.Add(runneltest.Fault{Op: runneltest.OpFetch, Err: api.ErrPolicyViolation, Count: runneltest.Unlimited, Match: how.match})
				c := runneltest.NewConsumer(t, f)
				require.NoError(t, c.Assign("orders", 0, consumer.Start()))
				_, err := c.Poll(t.Context())
				require.ErrorIs(t, err, runneltest.ErrMatchPanicked)
				require.NotEmpty(t, ft.errors())
			})
		})
	}
}

// lockedT records the Errorf calls made from any goroutine instead of
// failing the test.
type lockedT struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (l *lockedT) Errorf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, fmt.Sprintf(format, args...))
}

func (l *lockedT) errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.errs
}

// Request.Records decodes every batch of a produce request, compressed
// or not, with the request's topic and partition, and stops at the first
// corrupt batch with its error; a request of another Op yields nothing.
func TestFaultsRequestRecords(t *testing.T) {
	var bld record.Builder
	bld.Append(1000, []byte("k1"), []byte("v1"), []record.Header{{Key: "h", Value: []byte("hv")}})
	bld.Append(1001, nil, []byte("v2"), nil)
	data, err := bld.AppendTo(nil, compression.None)
	require.NoError(t, err)
	bld.Reset()
	bld.Append(1002, []byte("k3"), []byte("v3"), nil)
	data, err = bld.AppendTo(data, compression.Gzip)
	require.NoError(t, err)
	req := runneltest.Request{Op: runneltest.OpProduce, Topic: "orders", Partition: 2,
		Produce: &api.ProduceRequest{Topic: "orders", Partition: 2, Batches: data}}

	type rec struct {
		key, value string
		offset     int64
		ts         int64
		headers    []record.Header
	}
	var got []rec
	for r, err := range req.Records() {
		require.NoError(t, err)
		require.Equal(t, "orders", r.Topic)
		require.EqualValues(t, 2, r.Partition)
		got = append(got, rec{string(r.Key), string(r.Value), r.Offset, r.Timestamp.UnixMilli(), r.Headers})
	}
	require.Equal(t, []rec{
		{"k1", "v1", 0, 1000, []record.Header{{Key: "h", Value: []byte("hv")}}},
		{"", "v2", 1, 1001, nil},
		{"k3", "v3", 0, 1002, nil}, // the second batch, numbered from 0 as its producer wrote it
	}, got)

	// Stops after the first record when told to.
	n := 0
	for range req.Records() {
		n++
		break
	}
	require.Equal(t, 1, n)

	// A batch cut short: the records before it, then its error, once.
	req.Produce.Batches = data[:len(data)-1]
	var vals []string
	var errs []error
	for r, err := range req.Records() {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		vals = append(vals, string(r.Value))
	}
	require.Equal(t, []string{"v1", "v2"}, vals)
	require.Len(t, errs, 1)
	require.ErrorIs(t, errs[0], record.ErrCorrupt)

	for range (runneltest.Request{Op: runneltest.OpFetch, Topic: "orders", Fetch: &api.FetchRequest{}}).Records() {
		t.Fatal("a fetch has no records")
	}
}

// Match with the producer, both paths: only the request that carries the
// record with key "poison" fails (not retriable), the others are written,
// and a request Match refuses goes on to a later rule.
func TestFaultsMatchPoisonKey(t *testing.T) {
	for _, path := range producePaths {
		t.Run(path.name, func(t *testing.T) {
			b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
			f := runneltest.NewFaults(t, b)
			poison := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: log.ErrInvalidRecord, Count: runneltest.Unlimited,
				Match: hasKey("poison")})
			p := runneltest.NewProducer(t, f, path.opts...)
			var errs []error
			for _, k := range []string{"a", "poison", "b"} {
				errs = append(errs, p.ProduceSync(t.Context(), &record.Record{Topic: "orders", Key: []byte(k), Value: []byte(k)}))
			}
			require.NoError(t, errs[0])
			require.ErrorIs(t, errs[1], log.ErrInvalidRecord)
			require.NoError(t, errs[2])
			require.Equal(t, 1, poison.Hits())
			require.Equal(t, []string{"a", "b"}, values(runneltest.ConsumeAll(t, b, "orders")))
		})
	}
}

// hasKey is a Match for the produce requests that carry a record with
// that key.
func hasKey(key string) func(runneltest.Request) bool {
	return func(req runneltest.Request) bool {
		for r, err := range req.Records() {
			if err == nil && string(r.Key) == key {
				return true
			}
		}
		return false
	}
}
