package peers

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/runnel/runnel/benchmarks/internal/e2e"
)

// TestSystems runs every workload on a few hundred records against every
// system, in memory and on disk, checking the outcome each workload checks
// (every record on the broker, every record consumed once) and that
// nothing is left running.
func TestSystems(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx := context.Background()
	for _, sys := range systems() {
		for _, c := range []e2e.Case{
			{Store: e2e.Mem, Size: 100, Partitions: 8, Acks: e2e.AcksAll},
			{Store: e2e.Disk, Size: 1024, Partitions: 1, Acks: e2e.AcksLeader, Sync: true},
		} {
			t.Run(sys.Name+"/"+c.Name(), func(t *testing.T) {
				check := func(what string, res e2e.Result, err error, n int) {
					t.Helper()
					if err != nil {
						t.Fatalf("%s: %v", what, err)
					}
					if res.Records != int64(n) || res.Elapsed <= 0 {
						t.Fatalf("%s: %d records in %v, want %d", what, res.Records, res.Elapsed, n)
					}
				}
				res, err := e2e.Produce(ctx, e2e.NoTimer{}, sys, c, 300)
				check("produce", res, err, 300)
				res, err = e2e.Consume(ctx, e2e.NoTimer{}, sys, c, 300)
				check("consume", res, err, 300)
				res, err = e2e.GroupCommit(ctx, e2e.NoTimer{}, sys, c, 3, 300)
				check("group commit", res, err, 300)
				res, err = e2e.Latency(ctx, e2e.NoTimer{}, sys, c, 30, 5000)
				check("latency", res, err, 30)
				if len(res.Latencies) != 30 || res.Percentile(99) < res.Percentile(50) {
					t.Fatalf("latency: %d latencies, p50 %v, p99 %v", len(res.Latencies), res.Percentile(50), res.Percentile(99))
				}
			})
		}
	}
}

// TestNoSyncInMemory: a peer asked to fsync in memory refuses.
func TestNoSyncInMemory(t *testing.T) {
	for _, sys := range []e2e.System{Kfake(), JetStream()} {
		_, err := e2e.Produce(context.Background(), e2e.NoTimer{}, sys, e2e.Case{Store: e2e.Mem, Size: 100, Partitions: 1, Acks: e2e.AcksAll, Sync: true}, 10)
		if !errors.Is(err, ErrNoSync) {
			t.Errorf("%s: %v, want ErrNoSync", sys.Name, err)
		}
	}
}
