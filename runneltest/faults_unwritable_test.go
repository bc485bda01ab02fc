package runneltest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// What UnwritablePartitions answers under ReportUnwritable rules: the
// broker's answer with every rule's partitions added, sorted and each
// once; each rule counted, and spent, like another; a later rule still
// fails the request; an unknown topic gets the broker's error.
func TestFaultsReportUnwritable(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 4), runneltest.Topic("other", 2))
	f := runneltest.NewFaults(t, b)
	ask := func(topic string) []int32 {
		t.Helper()
		down, err := f.UnwritablePartitions(t.Context(), topic)
		require.NoError(t, err)
		return down
	}
	require.Empty(t, ask("orders"), "no rule: the broker's answer")

	orders := f.Add(runneltest.Fault{Op: runneltest.OpUnwritablePartitions, Topic: "orders",
		Action: runneltest.ReportUnwritable, Partitions: []int32{3, 1}, Count: runneltest.Unlimited})
	require.Equal(t, []int32{1, 3}, ask("orders"))
	require.Empty(t, ask("other"), "the rule names another topic")

	once := f.Add(runneltest.Fault{Op: runneltest.OpUnwritablePartitions,
		Action: runneltest.ReportUnwritable, Partitions: []int32{2, 1}, Count: 1})
	require.Equal(t, []int32{1, 2, 3}, ask("orders"), "both rules' partitions, each once")
	require.Equal(t, []int32{1, 3}, ask("orders"), "the second rule is spent")
	require.Equal(t, 3, orders.Hits())
	require.Equal(t, 1, once.Hits())

	seen := f.Add(runneltest.Fault{Op: runneltest.OpUnwritablePartitions, Action: runneltest.Observe, Count: runneltest.Unlimited})
	fail := f.Add(runneltest.Fault{Op: runneltest.OpUnwritablePartitions, Err: api.ErrRequestTimedOut, Count: 1})
	down, err := f.UnwritablePartitions(t.Context(), "orders")
	require.ErrorIs(t, err, api.ErrRequestTimedOut, "a later rule fails the request")
	require.Nil(t, down)
	var injected *runneltest.InjectedError
	require.ErrorAs(t, err, &injected)
	require.Equal(t, runneltest.InjectedError{Op: runneltest.OpUnwritablePartitions, Topic: "orders", Partition: -1, Err: api.ErrRequestTimedOut}, *injected)
	require.Equal(t, "runneltest: injected into unwritable partitions orders: "+api.ErrRequestTimedOut.Error(), err.Error())
	require.Equal(t, 4, orders.Hits(), "counted before the later rule failed the request")
	require.Equal(t, 1, seen.Hits())
	require.Equal(t, 1, fail.Hits())

	anyTopic := f.Add(runneltest.Fault{Op: runneltest.OpUnwritablePartitions,
		Action: runneltest.ReportUnwritable, Partitions: []int32{0}, Count: runneltest.Unlimited})
	_, err = f.UnwritablePartitions(t.Context(), "nope")
	require.ErrorIs(t, err, api.ErrUnknownTopicOrPartition, "the broker's error")
	require.Equal(t, 1, anyTopic.Hits())
	require.Equal(t, []int32{0}, ask("other"))

	orders.Remove()
	anyTopic.Remove()
	require.Empty(t, ask("orders"), "the rules removed: the broker's answer again")
}

// A HoldRequest rule of OpUnwritablePartitions holds the call until the
// rule is removed, then asks the broker; or until its ctx ends.
func TestFaultsHoldUnwritablePartitions(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 2))
	f := runneltest.NewFaults(t, b)
	hold := f.Add(runneltest.Fault{Op: runneltest.OpUnwritablePartitions, Action: runneltest.HoldRequest, Count: runneltest.Unlimited})
	f.Add(runneltest.Fault{Op: runneltest.OpUnwritablePartitions, Action: runneltest.ReportUnwritable, Partitions: []int32{1}, Count: runneltest.Unlimited})

	type answer struct {
		down []int32
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		down, err := f.UnwritablePartitions(t.Context(), "orders")
		done <- answer{down, err}
	}()
	require.NoError(t, hold.Wait(t.Context(), 1))
	hold.Remove()
	got := <-done
	require.NoError(t, got.err)
	require.Nil(t, got.down, "the hold applied, the later rule was not reached")

	hold = f.Add(runneltest.Fault{Op: runneltest.OpUnwritablePartitions, Action: runneltest.HoldRequest, Count: runneltest.Unlimited})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := f.UnwritablePartitions(ctx, "orders")
	require.ErrorIs(t, err, context.Canceled)
	hold.Remove()
}

// A full disk's partition made of two rules: partition 1's produce
// requests fail with api.ErrStorage, and UnwritablePartitions says so.
// A producer's records without a key go to the other partitions, the
// first of them too, and none fails; a keyed record of partition 1 still
// goes there under the sticky partitioner, and fails at its delivery
// timeout (round robin ignores keys).
func TestFaultsUnwritableSteersKeylessRecords(t *testing.T) {
	for _, part := range []struct {
		name string
		p    producer.Partitioner
	}{{"sticky", producer.StickyKeyPartitioner()}, {"round robin", producer.RoundRobinPartitioner()}} {
		t.Run(part.name, func(t *testing.T) {
			b := runneltest.NewBroker(t, runneltest.Topic("orders", 3))
			f := runneltest.NewFaults(t, b)
			refuse := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Topic: "orders", Partitions: []int32{1},
				Err: api.ErrStorage, Count: runneltest.Unlimited})
			report := f.Add(runneltest.Fault{Op: runneltest.OpUnwritablePartitions, Topic: "orders",
				Action: runneltest.ReportUnwritable, Partitions: []int32{1}, Count: runneltest.Unlimited})
			// Without the report, a record sent to partition 1 fails at
			// its delivery timeout: this one bounds the test's time then.
			p := runneltest.NewProducer(t, f, producer.RecordPartitioner(part.p),
				producer.DeliveryTimeout(time.Second), producer.RetryBackoff(10*time.Millisecond))

			used := map[int32]int{}
			for i := range 30 {
				r := &record.Record{Topic: "orders", Value: fmt.Appendf(nil, "v%d", i)}
				require.NoError(t, p.ProduceSync(t.Context(), r), "record %d", i)
				used[r.Partition]++
			}
			require.Zero(t, used[1], "no record without a key went to partition 1: %v", used)
			require.NotZero(t, used[0], "%v", used)
			require.NotZero(t, used[2], "%v", used)
			require.Zero(t, refuse.Hits(), "the producer knew before its first record")
			require.NotZero(t, report.Hits())

			keyed := &record.Record{Topic: "orders", Key: keyOf(t, 1, 3), Value: []byte("k")}
			err := p.ProduceSync(t.Context(), keyed)
			if part.name == "round robin" {
				require.NoError(t, err, "round robin puts keyed records anywhere")
				require.NotEqual(t, int32(1), keyed.Partition)
				require.Len(t, runneltest.ConsumeAll(t, b, "orders"), 31)
				return
			}
			require.ErrorIs(t, err, api.ErrStorage, "a keyed record stays on its key's partition")
			require.NotZero(t, refuse.Hits())
			require.Len(t, runneltest.ConsumeAll(t, b, "orders"), 30)
		})
	}
}

// keyOf returns a key that Kafka's key hashing puts on partition p of n.
func keyOf(t *testing.T, p int32, n int) []byte {
	t.Helper()
	for i := range 1000 {
		if k := fmt.Appendf(nil, "key-%d", i); producer.KeyPartition(k, n) == p {
			return k
		}
	}
	t.Fatalf("no key for partition %d of %d", p, n)
	return nil
}
