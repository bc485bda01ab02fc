package runnel

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// Admin calls and a steady stream of appends to the topics they touch
// do not starve each other: each admin call completes while appends run
// flat out, and the appends of each partition go on between the admin
// calls (the fsyncs of one partition, SyncAlways included, do not starve
// the other's).
func TestFairAdminVsAppends(t *testing.T) {
	for _, policy := range []log.SyncPolicy{log.SyncDefault, log.SyncAlways} {
		t.Run(fmt.Sprint(policy), func(t *testing.T) {
			b, err := Open(Config{Dir: t.TempDir()})
			require.NoError(t, err)
			defer b.Close()
			require.NoError(t, b.CreateTopic(t.Context(), "a", log.TopicConfig{Partitions: 2, Config: log.Config{Sync: policy}}))
			ctx, cancel := context.WithCancel(t.Context())
			var appends [2]atomic.Int64
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Go(func() {
					for ctx.Err() == nil {
						_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "a", Partition: int32(g % 2), Acks: api.AcksAll, Batches: batch(t, "v")})
						if err == nil {
							appends[g%2].Add(1)
						}
					}
				})
			}
			guard, stop := context.WithTimeout(t.Context(), time.Minute) // a hang guard, not a timing assertion
			defer stop()
			seen := [2]int64{appends[0].Load(), appends[1].Load()}
			for i := range 10 {
				require.NoError(t, b.CreateTopic(guard, "b", log.TopicConfig{Partitions: 2}))
				require.NoError(t, b.DeleteTopic(guard, "b"))
				require.NoError(t, b.UpdateTopicConfig(guard, "a", func(c *log.Config) { c.RetentionBytes = int64(1<<30 + i) }))
				for p := range appends { // each partition's appends go on between admin calls
					for appends[p].Load() == seen[p] {
						time.Sleep(time.Millisecond)
						require.NoError(t, guard.Err())
					}
					seen[p] = appends[p].Load()
				}
			}
			cancel()
			wg.Wait()
		})
	}
}
