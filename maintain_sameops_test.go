package runnel

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestMaintainSameOpsEachRun: a Maintain call maintains the partitions in
// the same order each time, so that on the same state it does the same
// file-system operations, in the same order: a fault sweep over them
// (TestLeakFailedAdminCalls' "maintain" case) counts them on one run and
// fails the k-th on another.
func TestMaintainSameOpsEachRun(t *testing.T) {
	ctx := context.Background()
	trace := func() []string {
		var rec testkit.OpTrace
		fsys := vfs.WithFaults(vfs.NewMem(), &rec)
		cfg := crashConfig(fsys)
		cfg.Clock = fixedClock{time.UnixMilli(1_700_000_000_000)}
		b, err := Open(cfg)
		require.NoError(t, err)
		defer func() { require.NoError(t, b.Close()) }()
		seg := log.Config{SegmentBytes: 2 << 10, Sync: log.SyncNever}
		compacted, retention := seg, seg
		compacted.CleanupPolicy, compacted.MinCleanableDirtyRatio = log.Compact, -1
		retention.RetentionBytes = 4 << 10
		val := make([]byte, 300)
		for _, tc := range []struct {
			name string
			cfg  log.Config
		}{{"plain", seg}, {"compacted", compacted}, {"retention", retention}, {"zeta", retention}} {
			require.NoError(t, b.CreateTopic(ctx, tc.name, log.TopicConfig{Partitions: 2, Config: tc.cfg}))
			for i := range 40 {
				var bl record.Builder
				bl.Append(1_700_000_000_000+int64(i), fmt.Appendf(nil, "k%d", i%5), val, nil)
				data, err := bl.AppendTo(nil, compression.None)
				require.NoError(t, err)
				_, err = b.Produce(ctx, &api.ProduceRequest{Topic: tc.name, Partition: int32(i % 2), Acks: api.AcksLeader, Batches: data})
				require.NoError(t, err)
			}
		}
		rec.SetOn(true)
		require.NoError(t, b.Maintain(ctx))
		rec.SetOn(false)
		return rec.Ops()
	}
	want := trace()
	require.NotEmpty(t, want)
	for i := range 10 {
		testkit.RequireSameOps(t, want, trace(), i+1)
	}
}
