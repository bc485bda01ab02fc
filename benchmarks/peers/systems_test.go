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
	for _, sys := range systems() {
		for _, c := range []e2e.Case{
			{Store: e2e.Mem, Size: 100, Partitions: 8, Acks: e2e.AcksAll},
			{Store: e2e.Disk, Size: 1024, Partitions: 1, Acks: e2e.AcksLeader, Sync: true},
		} {
			t.Run(sys.Name+"/"+c.Name(), func(t *testing.T) {
				e2e.CheckWorkloads(t, sys, c, 300)
			})
		}
	}
}

// TestNoSyncInMemory: a system without SyncInMemory (every peer) asked to
// fsync in memory refuses.
func TestNoSyncInMemory(t *testing.T) {
	peers := 0
	for _, sys := range systems() {
		if sys.SyncInMemory {
			continue
		}
		peers++
		_, err := e2e.Produce(context.Background(), e2e.NoTimer{}, sys, e2e.Case{Store: e2e.Mem, Size: 100, Partitions: 1, Acks: e2e.AcksAll, Sync: true}, 10)
		if !errors.Is(err, ErrNoSync) {
			t.Errorf("%s: %v, want ErrNoSync", sys.Name, err)
		}
	}
	if peers != 2 {
		t.Errorf("%d systems without SyncInMemory, want 2 (kfake and JetStream)", peers)
	}
}

// TestSystemsCompressed runs the workloads with a codec against the
// systems that have one, and checks that both put the codec's batches on
// their logs (log/value well under codec=none's, with the same values);
// JetStream refuses a codec with ErrNoCodec.
func TestSystemsCompressed(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx := context.Background()
	for _, sys := range compressedSystems() {
		for _, c := range []e2e.Case{
			{Store: e2e.Mem, Size: 100, Partitions: 8, Acks: e2e.AcksAll, Codec: "zstd"},
			{Store: e2e.Mem, Size: 1024, Partitions: 1, Acks: e2e.AcksLeader, Codec: "snappy"},
		} {
			t.Run(sys.Name+"/"+c.Name(), func(t *testing.T) {
				e2e.CheckWorkloads(t, sys, c, 300)
				res, err := e2e.Produce(ctx, e2e.NoTimer{}, sys, c, 3000)
				if err != nil {
					t.Fatal(err)
				}
				none := c
				none.Codec = "none"
				base, err := e2e.Produce(ctx, e2e.NoTimer{}, sys, none, 3000)
				if err != nil {
					t.Fatal(err)
				}
				if r, b := res.LogPerValue(), base.LogPerValue(); r <= 0 || b < 1 || r > b/2 {
					t.Fatalf("log/value %.3f with %s, %.3f without: want under half", r, c.Codec, b)
				}
			})
		}
	}
	c := e2e.Case{Store: e2e.Mem, Size: 100, Partitions: 1, Acks: e2e.AcksAll, Codec: "lz4"}
	if _, err := e2e.Produce(ctx, e2e.NoTimer{}, JetStream(), c, 10); !errors.Is(err, ErrNoCodec) {
		t.Errorf("JetStream with lz4: %v, want ErrNoCodec", err)
	}
}
