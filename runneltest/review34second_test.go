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

// TestReview34PipelinedRefusalsWithoutSentinel: an idempotent producer
// (MaxInFlight 5, small batches) whose produce requests are refused
// before the append (FailRequest) several times in a row delivers every
// record once, in order, whether the refusal is api.ErrNotLeader or a
// retriable code api has no sentinel for (LEADER_NOT_AVAILABLE,
// FENCED_LEADER_EPOCH: kfake's kerr.X ported as api.ForCode, as the
// README says; kgo retries them and delivers).
func TestReview34PipelinedRefusalsWithoutSentinel(t *testing.T) {
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
