package runneltest_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// The Faults rules' finer points: a rule keeps its own copy of what it
// matches, is counted, refunded and removed exactly, and leaves to the
// broker what it does not fault. Each pins a behaviour the other tests of
// the rules let change unnoticed.

// Add keeps a copy of the Fault's Partitions: the caller changing its
// slice afterwards does not change which partitions the rule matches.
func TestFaultsAddCopiesPartitions(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 2))
	f := runneltest.NewFaults(t, b)
	parts := []int32{0}
	r := f.Add(runneltest.Fault{Op: runneltest.OpListOffset, Partitions: parts, Err: api.ErrNotLeader, Count: runneltest.Unlimited})
	parts[0] = 1

	_, err := f.ListOffset(t.Context(), "orders", 0, api.Earliest)
	require.ErrorIs(t, err, api.ErrNotLeader)
	_, err = f.ListOffset(t.Context(), "orders", 1, api.Earliest)
	require.NoError(t, err)
	require.Equal(t, 1, r.Hits())
}

// A LoseResponse or FailAck rule with an Unlimited Count goes on applying
// after the broker refused a request it matched: the refusal gives back
// no Count, as there is no limit to give it back to.
func TestFaultsUnlimitedRuleAfterRefusal(t *testing.T) {
	for _, action := range []runneltest.Action{runneltest.LoseResponse, runneltest.FailAck} {
		t.Run(action.String(), func(t *testing.T) {
			b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
			f := runneltest.NewFaults(t, b)
			r := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: action, Err: api.ErrRequestTimedOut, Count: runneltest.Unlimited})

			for _, async := range []bool{false, true} {
				produce := func(req *api.ProduceRequest) error {
					if !async {
						_, err := f.Produce(t.Context(), req)
						return err
					}
					_, ack, err := f.ProduceAsync(t.Context(), req)
					if err == nil && ack != nil {
						err = ack.Wait(t.Context())
					}
					return err
				}
				err := produce(produceRequest(t, "orders", 7, "k", "v")) // no such partition
				require.ErrorIs(t, err, api.ErrUnknownTopicOrPartition)
				require.NotErrorIs(t, err, api.ErrRequestTimedOut)
				err = produce(produceRequest(t, "orders", 0, "k", "v"))
				require.ErrorIs(t, err, api.ErrRequestTimedOut, "async %v", async)
			}
			require.Equal(t, 2, r.Hits())
		})
	}
}

// Two requests whose Match runs at once, for a rule with a Count of 1:
// the rule applies to one of them only, the other finding it spent.
func TestFaultsCountOneConcurrentMatch(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
	f := runneltest.NewFaults(t, b)
	var inMatch sync.WaitGroup
	inMatch.Add(2)
	r := f.Add(runneltest.Fault{Op: runneltest.OpListOffset, Err: api.ErrNotLeader, Count: 1,
		Match: func(runneltest.Request) bool {
			inMatch.Done()
			inMatch.Wait() // both requests are past the rule's look-up
			return true
		}})
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { _, errs[i] = f.ListOffset(t.Context(), "orders", 0, api.Earliest) })
	}
	wg.Wait()
	failed := 0
	for _, err := range errs {
		if err != nil {
			require.ErrorIs(t, err, api.ErrNotLeader)
			failed++
		}
	}
	require.Equal(t, 1, failed)
	require.Equal(t, 1, r.Hits())
}

// faultySyncBroker returns a broker with topic "orders" whose syncs of
// segment files fail while fail is set: the acknowledgements of its
// appends fail. fail is cleared before the broker closes.
func faultySyncBroker(t *testing.T) (*runnel.Broker, *atomic.Bool) {
	var fail atomic.Bool
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && strings.HasSuffix(name, ".log") && fail.Load() {
			return vfs.ErrInjected
		}
		return nil
	}))
	b := runneltest.NewBroker(t, runneltest.Config(runnel.Config{FS: fsys}), runneltest.Topic("orders", 1))
	t.Cleanup(func() { fail.Store(false) })
	return b, &fail
}

// The acknowledgement of a FailAck request whose append the broker
// fails to acknowledge (its fsync failed) fails with the broker's error,
// not the rule's, and never succeeds.
func TestFaultsFailAckBrokerAckFails(t *testing.T) {
	b, fail := faultySyncBroker(t)
	f := runneltest.NewFaults(t, b)
	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.FailAck, Err: api.ErrRequestTimedOut, Count: 1})
	fail.Store(true)
	_, ack, err := f.ProduceAsync(t.Context(), produceRequest(t, "orders", 0, "k", "v"))
	require.NoError(t, err)
	require.NotNil(t, ack)
	err = ack.Wait(t.Context())
	require.Error(t, err)
	require.NotErrorIs(t, err, api.ErrRequestTimedOut, "the broker's error comes first")
}

// A LoseResponse request through ProduceAsync waits for the broker's
// acknowledgement before it loses the answer: when that fails, the error
// says so.
func TestFaultsLoseResponseBrokerAckFails(t *testing.T) {
	b, fail := faultySyncBroker(t)
	f := runneltest.NewFaults(t, b)
	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.LoseResponse, Err: api.ErrRequestTimedOut, Count: 1})
	fail.Store(true)
	_, ack, err := f.ProduceAsync(t.Context(), produceRequest(t, "orders", 0, "k", "v"))
	require.ErrorIs(t, err, api.ErrRequestTimedOut)
	require.Nil(t, ack)
	require.Contains(t, err.Error(), "the acknowledgement, lost too, failed")
}

// Records stops at the first error, even when it is a record's, in a
// batch whose framing holds and that later batches follow.
func TestFaultsRequestRecordsStopAtRecordError(t *testing.T) {
	var bld record.Builder
	bld.Append(1000, []byte("k1"), []byte("v1"), nil)
	data, err := bld.AppendTo(nil, compression.None)
	require.NoError(t, err)
	const recordsAt = 61   // the size of a batch's header
	data[recordsAt] = 0x7e // the first record's length: 63 bytes, past the batch's end (CRCs are unchecked)
	bld.Reset()
	bld.Append(1001, []byte("k2"), []byte("v2"), nil)
	data, err = bld.AppendTo(data, compression.None)
	require.NoError(t, err)
	req := runneltest.Request{Op: runneltest.OpProduce, Topic: "orders", Produce: &api.ProduceRequest{Topic: "orders", Batches: data}}

	var vals []string
	var errs []error
	for r, err := range req.Records() {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		vals = append(vals, string(r.Value))
	}
	require.Len(t, errs, 1)
	var ce *record.CorruptError
	require.ErrorAs(t, errs[0], &ce)
	require.Empty(t, vals, "nothing after the error")
}

// A fetch a FailPartitions rule fails in part fetches its other
// partitions without waiting, whatever MaxWait it asked for: a broker
// answers at once when a partition fails. On the bubble's fake clock, no
// time passes.
func TestFaultsFailPartitionsFetchesTheRestAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("orders", 2))
		f := runneltest.NewFaults(t, b)
		f.Add(runneltest.Fault{Op: runneltest.OpFetch, Action: runneltest.FailPartitions, Partitions: []int32{0},
			Err: api.ErrNotLeader, Count: 1})
		t0 := time.Now()
		resp, err := f.Fetch(t.Context(), &api.FetchRequest{MinBytes: 1, MaxWait: time.Hour, MaxBytes: 1 << 20,
			Partitions: []api.FetchPartition{{Topic: "orders", Partition: 0}, {Topic: "orders", Partition: 1}}})
		require.NoError(t, err)
		require.Equal(t, t0, time.Now(), "no wait for the partition with nothing to fetch")
		require.Len(t, resp.Partitions, 2)
		require.ErrorIs(t, resp.Partitions[0].Err, api.ErrNotLeader)
		require.NoError(t, resp.Partitions[1].Err)
	})
}

// A removed rule is out of the matching: its Match is not called on
// later requests.
func TestFaultsRemovedRuleMatchNotCalled(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
	f := runneltest.NewFaults(t, b)
	var calls atomic.Int64
	r := f.Add(runneltest.Fault{Op: runneltest.OpListOffset, Err: api.ErrNotLeader, Count: runneltest.Unlimited,
		Match: func(runneltest.Request) bool { calls.Add(1); return false }})
	_, err := f.ListOffset(t.Context(), "orders", 0, api.Earliest)
	require.NoError(t, err)
	require.EqualValues(t, 1, calls.Load())
	r.Remove()
	_, err = f.ListOffset(t.Context(), "orders", 0, api.Earliest)
	require.NoError(t, err)
	require.EqualValues(t, 1, calls.Load(), "Match called after Remove")
}

// A LoseResponse rule spent by a request the broker refused applies
// again in its place among the rules: after one added before it, not
// ahead of it.
func TestFaultsRefundedRuleKeepsItsPlace(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
	f := runneltest.NewFaults(t, b)
	first := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Partitions: []int32{0}, Err: api.ErrNotLeader, Count: runneltest.Unlimited})
	lose := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.LoseResponse, Err: api.ErrRequestTimedOut, Count: 1})

	_, err := f.Produce(t.Context(), produceRequest(t, "orders", 7, "k", "v")) // refused: lose is refunded
	require.ErrorIs(t, err, api.ErrUnknownTopicOrPartition)
	_, err = f.Produce(t.Context(), produceRequest(t, "orders", 0, "k", "v"))
	require.ErrorIs(t, err, api.ErrNotLeader, "the rule added first applies first")
	require.Equal(t, 1, first.Hits())
	require.Zero(t, lose.Hits())
}

// A fetch that names no partition is the broker's to answer: a closed
// broker's ErrClosed.
func TestFaultsEmptyFetchIsTheBrokers(t *testing.T) {
	b, err := runnel.Open(runnel.Config{})
	require.NoError(t, err)
	require.NoError(t, b.Close())
	f := runneltest.NewFaults(t, b)
	_, err = f.Fetch(t.Context(), &api.FetchRequest{})
	require.ErrorIs(t, err, runnel.ErrClosed)
}

// A rule whose Count the broker's refusal gave back, spent later, is out
// of the matching: its Match is not called on later requests.
func TestFaultsSpentAfterRefundMatchNotCalled(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
	f := runneltest.NewFaults(t, b)
	var calls atomic.Int64
	r := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.LoseResponse, Err: api.ErrRequestTimedOut, Count: 2,
		Match: func(runneltest.Request) bool { calls.Add(1); return true }})
	_, err := f.Produce(t.Context(), produceRequest(t, "orders", 7, "k", "v")) // refused: the Count is given back
	require.ErrorIs(t, err, api.ErrUnknownTopicOrPartition)
	for range 2 {
		_, err = f.Produce(t.Context(), produceRequest(t, "orders", 0, "k", "v"))
		require.ErrorIs(t, err, api.ErrRequestTimedOut)
	}
	require.Equal(t, 2, r.Hits())
	require.EqualValues(t, 3, calls.Load())
	_, err = f.Produce(t.Context(), produceRequest(t, "orders", 0, "k", "v"))
	require.NoError(t, err)
	require.EqualValues(t, 3, calls.Load(), "Match of a spent rule called")
}

// A rule removed while the broker refuses the request it was reserved
// for is not brought back by the refund: its Match is not called on
// later requests.
func TestFaultsRemovedDuringRefusalStaysOut(t *testing.T) {
	inWrite, release := make(chan struct{}), make(chan struct{})
	var block atomic.Bool
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpWrite && strings.HasSuffix(name, ".log") && block.CompareAndSwap(true, false) {
			close(inWrite)
			<-release
			return vfs.ErrInjected // the broker refuses the request
		}
		return nil
	}))
	b := runneltest.NewBroker(t, runneltest.Config(runnel.Config{FS: fsys}), runneltest.Topic("orders", 1), runneltest.Topic("other", 1))
	f := runneltest.NewFaults(t, b)
	var calls atomic.Int64
	r := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.LoseResponse, Err: api.ErrRequestTimedOut, Count: 1,
		Match: func(runneltest.Request) bool { calls.Add(1); return true }})
	block.Store(true)
	done := make(chan error, 1)
	go func() {
		_, err := f.Produce(t.Context(), produceRequest(t, "orders", 0, "k", "v"))
		done <- err
	}()
	testkit.AwaitHold(t, inWrite, done, "the Produce")
	r.Remove()
	close(release)
	require.ErrorIs(t, testkit.Await(t, done, "the Produce's answer"), vfs.ErrInjected)
	require.EqualValues(t, 1, calls.Load())
	_, err := f.Produce(t.Context(), produceRequest(t, "other", 0, "k", "v"))
	require.NoError(t, err)
	require.EqualValues(t, 1, calls.Load(), "Match of a removed rule called")
	require.Zero(t, r.Hits())
}

// TestFaultsNilRequestsAreTheBrokers: a nil produce or fetch
// request through Faults gets the broker's answer (an invalid request),
// matches no rule, and costs none its Count.
func TestFaultsNilRequestsAreTheBrokers(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	f := runneltest.NewFaults(t, b)
	produce := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrNotLeader, Count: runneltest.Unlimited})
	fetch := f.Add(runneltest.Fault{Op: runneltest.OpFetch, Err: api.ErrNotLeader, Count: runneltest.Unlimited})
	ctx := context.Background()
	_, err := f.Produce(ctx, nil)
	require.ErrorIs(t, err, api.ErrInvalidRequest)
	_, _, err = f.ProduceAsync(ctx, nil)
	require.ErrorIs(t, err, api.ErrInvalidRequest)
	_, err = f.Fetch(ctx, nil)
	require.ErrorIs(t, err, api.ErrInvalidRequest)
	require.Zero(t, produce.Hits())
	require.Zero(t, fetch.Hits())
}

// TestFaultsFailPartitionsBrokerErrorReturned: under FailPartitions, the
// partitions the rule does not match are fetched from the broker; when
// that fetch fails (the broker closed), the call fails with the broker's
// error, as Fetch's doc says, not with a response of the rule's errors;
// and the rule has counted the fetch, as FailPartitions' doc says.
func TestFaultsFailPartitionsBrokerErrorReturned(t *testing.T) {
	b, err := runnel.Open(runnel.Config{})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(context.Background(), "t", log.TopicConfig{Partitions: 2}))
	f := runneltest.NewFaults(t, b)
	rule := f.Add(runneltest.Fault{Op: runneltest.OpFetch, Partitions: []int32{0}, Action: runneltest.FailPartitions,
		Err: api.ErrNotLeader, Count: runneltest.Unlimited})
	require.NoError(t, b.Close())
	_, err = f.Fetch(context.Background(), &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{
		{Topic: "t", Partition: 0, MaxBytes: 1 << 20}, {Topic: "t", Partition: 1, MaxBytes: 1 << 20},
	}})
	require.ErrorIs(t, err, runnel.ErrClosed)
	require.NotErrorIs(t, err, api.ErrNotLeader)
	require.Equal(t, 1, rule.Hits())
}

// A partition a FailPartitions rule fails is answered with offsets as the
// broker answers a partition's error (api.FetchedPartition): -1 for both
// when the error says the partition is not there (an unknown topic,
// partition or topic ID), the partition's own, and its topic's ID,
// otherwise; and -1 for a partition the broker does not have, whatever
// the error. They were 0 and 0, which read as an empty partition's, so
// that a consumer's Fetch of an injected unknown topic did not say -1,
// as its doc says, nor one of an injected out-of-range offset the
// partition's log start and high watermark (what a consumer's reset
// logs).
func TestFaultsFailPartitionsOffsetsAsTheBrokers(t *testing.T) {
	ctx := t.Context()
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 2))
	runneltest.ProduceValues(t, b, "orders", "a", "b", "c")
	_, err := b.DeleteRecords(ctx, "orders", 0, 1)
	require.NoError(t, err)
	info, err := b.DescribeTopic(ctx, "orders")
	require.NoError(t, err)
	for _, tc := range []struct {
		err     error
		part    int32
		hw, lso int64
		id      log.TopicID
	}{
		{api.ErrNotLeader, 0, 3, 1, info.ID},
		{log.ErrOffsetOutOfRange, 0, 3, 1, info.ID},
		{api.ErrNotLeader, 1, 0, 0, info.ID},
		{api.ErrUnknownTopicOrPartition, 0, -1, -1, log.TopicID{}},
		{api.ErrUnknownTopicID, 0, -1, -1, log.TopicID{}},
		{api.ErrNotLeader, 5, -1, -1, log.TopicID{}}, // no such partition
	} {
		f := runneltest.NewFaults(t, b)
		f.Add(runneltest.Fault{Op: runneltest.OpFetch, Action: runneltest.FailPartitions, Err: tc.err, Count: 1})
		resp, err := f.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{{Topic: "orders", Partition: tc.part}}})
		require.NoError(t, err)
		fp := resp.Partitions[0]
		require.ErrorIs(t, fp.Err, tc.err)
		require.Equal(t, tc.hw, fp.HighWatermark, "%v of orders-%d", tc.err, tc.part)
		require.Equal(t, tc.lso, fp.LogStartOffset, "%v of orders-%d", tc.err, tc.part)
		require.Equal(t, tc.id, fp.TopicID, "%v of orders-%d", tc.err, tc.part)
	}
}

// A FailPartitions answer for a fetch that names its topic by an ID the
// topic no longer has (deleted and created again) gives -1 for both
// offsets and no topic ID, as the broker answers a fetch of a partition
// it does not have: the partition the fetch names is not there, whatever
// the injected error. It gave the new topic's offsets and ID, which no
// broker answers for the old ID.
func TestFaultsFailPartitionsOfAReplacedTopic(t *testing.T) {
	ctx := t.Context()
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
	old, err := b.DescribeTopic(ctx, "orders")
	require.NoError(t, err)
	require.NoError(t, b.DeleteTopic(ctx, "orders"))
	require.NoError(t, b.CreateTopic(ctx, "orders", log.TopicConfig{Partitions: 1}))
	runneltest.ProduceValues(t, b, "orders", "a", "b")
	req := &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{{Topic: "orders", TopicID: old.ID, Partition: 0}}}
	want, err := b.Fetch(ctx, req)
	require.NoError(t, err)
	require.ErrorIs(t, want.Partitions[0].Err, api.ErrUnknownTopicID) // the broker's own answer

	f := runneltest.NewFaults(t, b)
	f.Add(runneltest.Fault{Op: runneltest.OpFetch, Action: runneltest.FailPartitions, Err: api.ErrNotLeader, Count: 1})
	resp, err := f.Fetch(ctx, req)
	require.NoError(t, err)
	fp := resp.Partitions[0]
	require.ErrorIs(t, fp.Err, api.ErrNotLeader)
	require.Equal(t, want.Partitions[0].HighWatermark, fp.HighWatermark)
	require.Equal(t, want.Partitions[0].LogStartOffset, fp.LogStartOffset)
	require.Equal(t, want.Partitions[0].TopicID, fp.TopicID)

	// Named by the ID it has now: its own offsets.
	now, err := b.DescribeTopic(ctx, "orders")
	require.NoError(t, err)
	req.Partitions[0].TopicID = now.ID
	f.Add(runneltest.Fault{Op: runneltest.OpFetch, Action: runneltest.FailPartitions, Err: api.ErrNotLeader, Count: 1})
	resp, err = f.Fetch(ctx, req)
	require.NoError(t, err)
	fp = resp.Partitions[0]
	require.Equal(t, [3]any{int64(2), int64(0), now.ID}, [3]any{fp.HighWatermark, fp.LogStartOffset, fp.TopicID})
}
