package runneltest_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/runneltest"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// Tests of session 40's coverage pass: each drives a statement of
// runneltest that no test ran, and checks what it must do.

// runCleanups runs c's cleanups (see cleanupT in synctest_test.go) as
// testing does: last registered first.
func (c *cleanupT) runCleanups() {
	for i := len(c.cleanups) - 1; i >= 0; i-- {
		c.cleanups[i]()
	}
	c.cleanups = nil
}

// TestReview40NewBrokerCloseFailureReported: NewBroker's cleanup closes
// the broker; a Close that fails (its closing writes refused by the
// disk) fails the test with a message that says what failed, with the
// file system's error.
func TestReview40NewBrokerCloseFailureReported(t *testing.T) {
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

// TestReview40ConsumeAssignFailureReported: Consume of a topic whose
// partitions the consumer cannot assign (a Client of the test's own that
// answers a count for an empty name) fails the test with a message that
// names the partition and says why, rather than hang or panic.
func TestReview40ConsumeAssignFailureReported(t *testing.T) {
	b := runneltest.NewBroker(t)
	ft := fails(t, func(ft *fakeT) {
		runneltest.Consume(ft, partitionsFor{Broker: b, n: 1}, "", 1)
	})
	require.True(t, ft.failed)
	require.True(t, strings.HasPrefix(ft.msg, "runneltest: consume -0: "), ft.msg)
	require.Contains(t, ft.msg, "topic")
}

// TestReview40FaultsNilRequestsAreTheBrokers: a nil produce or fetch
// request through Faults gets the broker's answer (an invalid request),
// matches no rule, and costs none its Count.
func TestReview40FaultsNilRequestsAreTheBrokers(t *testing.T) {
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

// TestReview40FailPartitionsBrokerErrorReturned: under FailPartitions, the
// partitions the rule does not match are fetched from the broker; when
// that fetch fails (the broker closed), the call fails with the broker's
// error, as Fetch's doc says, not with a response of the rule's errors;
// and the rule has counted the fetch, as FailPartitions' doc says.
func TestReview40FailPartitionsBrokerErrorReturned(t *testing.T) {
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
