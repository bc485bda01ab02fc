package runneltest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// produceOrders makes a broker with topic "orders" of 2 partitions, two
// records in each, and a Faults over it.
func produceOrders(t *testing.T) *runneltest.Faults {
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 2))
	runneltest.Produce(t, b, "orders",
		&record.Record{Partition: 0, Value: []byte("a0")}, &record.Record{Partition: 0, Value: []byte("b0")},
		&record.Record{Partition: 1, Value: []byte("a1")}, &record.Record{Partition: 1, Value: []byte("b1")})
	return runneltest.NewFaults(t, b)
}

var allOrders = []string{"a0", "b0", "a1", "b1"}

// Consume and ConsumeAll handed a Faults read through it as a consumer
// does: a retriable error — of a whole Fetch, of a partition's answer,
// of the look-ups of the partition count and of the offsets — is
// retried without a word, and every record comes, once, in order. The
// rule applied as often as its Count says: the requests went through the
// Faults.
func TestConsumeThroughFaultsRetriable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault runneltest.Fault
	}{
		{"fetch", runneltest.Fault{Op: runneltest.OpFetch, Topic: "orders", Err: api.ErrRequestTimedOut, Count: 3}},
		{"fetch partition", runneltest.Fault{Op: runneltest.OpFetch, Topic: "orders", Partitions: []int32{1},
			Action: runneltest.FailPartitions, Err: api.ErrNotLeader, Count: 3}},
		{"list offset", runneltest.Fault{Op: runneltest.OpListOffset, Topic: "orders", Partitions: []int32{0}, Err: api.ErrNotLeader, Count: 2}},
		{"partitions", runneltest.Fault{Op: runneltest.OpPartitions, Topic: "orders", Err: api.ErrRequestTimedOut, Count: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := produceOrders(t)
			r := f.Add(tc.fault)
			require.Equal(t, allOrders, values(runneltest.Consume(t, f, "orders", 4)))
			require.Equal(t, tc.fault.Count, r.Hits())

			r = f.Add(tc.fault)
			require.Equal(t, allOrders, values(runneltest.ConsumeAll(t, f, "orders")))
			require.Equal(t, tc.fault.Count, r.Hits())
		})
	}
}

// An error that is not retriable, injected into a request Consume or
// ConsumeAll makes through a Faults, fails the test (t.Fatalf, seen here
// by a fake testing.TB), with the injected error in the message.
func TestConsumeThroughFaultsNotRetriable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault runneltest.Fault
	}{
		{"fetch", runneltest.Fault{Op: runneltest.OpFetch, Topic: "orders", Err: api.ErrPolicyViolation, Count: runneltest.Unlimited}},
		{"fetch partition", runneltest.Fault{Op: runneltest.OpFetch, Topic: "orders", Partitions: []int32{1},
			Action: runneltest.FailPartitions, Err: api.ErrPolicyViolation, Count: runneltest.Unlimited}},
		{"list offset", runneltest.Fault{Op: runneltest.OpListOffset, Topic: "orders", Err: api.ErrPolicyViolation, Count: runneltest.Unlimited}},
		{"partitions", runneltest.Fault{Op: runneltest.OpPartitions, Topic: "orders", Err: api.ErrPolicyViolation, Count: runneltest.Unlimited}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := produceOrders(t)
			r := f.Add(tc.fault)
			want := "runneltest: injected into " + tc.fault.Op.String() + " orders"
			for name, call := range map[string]func(ft *fakeT){
				"Consume":    func(ft *fakeT) { runneltest.Consume(ft, f, "orders", 4) },
				"ConsumeAll": func(ft *fakeT) { runneltest.ConsumeAll(ft, f, "orders") },
			} {
				ft := fails(t, call)
				require.True(t, ft.failed, name)
				require.Contains(t, ft.msg, want, name)
				require.Contains(t, ft.msg, api.ErrPolicyViolation.Error(), name)
			}
			require.Positive(t, r.Hits())
			r.Remove()
			require.Equal(t, allOrders, values(runneltest.ConsumeAll(t, f, "orders")), "read once the rule is gone")
		})
	}
}

// A retriable error that does not stop, or a request held, fails the
// test when the wait ends, as records that do not come do. The rule must
// have applied before the wait ended (a loaded machine may not get a
// request through it within a short wait: see testkit.UntilInTime).
func TestConsumeThroughFaultsUntilTheWaitEnds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault runneltest.Fault
		call  func(*fakeT, *runneltest.Faults, runneltest.ConsumeOpt)
		want  string // a format with the wait's %[1]v
	}{
		{"fetch retried", runneltest.Fault{Op: runneltest.OpFetch, Err: api.ErrNotLeader, Count: runneltest.Unlimited},
			func(ft *fakeT, f *runneltest.Faults, wait runneltest.ConsumeOpt) {
				runneltest.Consume(ft, f, "orders", 4, wait)
			},
			`runneltest: consume "orders": got 0 of 4 records within %[1]v (orders-0: 0, orders-1: 0)`},
		{"fetch held", runneltest.Fault{Op: runneltest.OpFetch, Action: runneltest.HoldRequest, Count: runneltest.Unlimited},
			func(ft *fakeT, f *runneltest.Faults, wait runneltest.ConsumeOpt) {
				runneltest.Consume(ft, f, "orders", 4, wait)
			},
			`runneltest: consume "orders": got 0 of 4 records within %[1]v (orders-0: 0, orders-1: 0)`},
		{"list offset retried", runneltest.Fault{Op: runneltest.OpListOffset, Err: api.ErrNotLeader, Count: runneltest.Unlimited},
			func(ft *fakeT, f *runneltest.Faults, wait runneltest.ConsumeOpt) {
				runneltest.ConsumeAll(ft, f, "orders", wait)
			},
			"runneltest: consume orders-0: no answer within %[1]v: runneltest: injected into list offset orders-0: " + api.ErrNotLeader.Error()},
		{"partitions held", runneltest.Fault{Op: runneltest.OpPartitions, Action: runneltest.HoldRequest, Count: runneltest.Unlimited},
			func(ft *fakeT, f *runneltest.Faults, wait runneltest.ConsumeOpt) {
				runneltest.ConsumeAll(ft, f, "orders", wait)
			},
			`runneltest: consume "orders": no answer within %[1]v: context deadline exceeded`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.UntilInTime(t, 50*time.Millisecond, func(wait time.Duration) bool {
				f := produceOrders(t)
				r := f.Add(tc.fault)
				ft := fails(t, func(ft *fakeT) { tc.call(ft, f, runneltest.Timeout(wait)) })
				r.Remove()
				if r.Hits() == 0 {
					return false // no request reached the rule within the wait
				}
				require.True(t, ft.failed)
				require.Equal(t, fmt.Sprintf(tc.want, wait), ft.msg)
				return true
			})
		})
	}
}

// Produce handed a Faults sends through it, each request once: an
// Observe rule counts them, and an injected error fails the test,
// retriable or not, with nothing appended.
func TestProduceThroughFaults(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
	f := runneltest.NewFaults(t, b)
	seen := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.Observe, Count: runneltest.Unlimited})
	runneltest.ProduceValues(t, f, "orders", "a", "b")
	require.Equal(t, 2, seen.Hits())

	r := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrNotLeader, Count: 1})
	ft := fails(t, func(ft *fakeT) { runneltest.ProduceValues(ft, f, "orders", "c") })
	require.True(t, ft.failed)
	require.Equal(t, "runneltest: produce to orders-0: runneltest: injected into produce orders-0: "+api.ErrNotLeader.Error(), ft.msg)
	require.Equal(t, 1, r.Hits())
	require.Equal(t, []string{"a", "b"}, values(runneltest.ConsumeAll(t, b, "orders")))
}
