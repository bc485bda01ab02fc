package runnel_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/leakcheck"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
)

// What an embedded service does over weeks, on disk, cycle after cycle:
// producers and consumers made and closed (a request handler's, a batch
// job's), the config of a topic replaced (AlterTopicConfig, which reopens
// its partitions' logs), topics created and deleted, segments rolled and
// deleted by retention. The open file descriptors and memory mappings,
// the goroutines and the live heap return after each cycle to about
// their level after the first few (see leakcheck.Bounded):
// RUNNEL_LEAK_CYCLES sets the number of cycles for a longer run. Skipped
// under -short: a cycle's fsyncs (the reopens, a topic's creation) on a
// VM's disk. (Its cycles took half a second each until its consumer's
// Poll waited 1 ms rather than the default FetchMaxWait; now about 25 ms.)
func TestLeakClientAndConfigChurnOnDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("a cycle's fsyncs on disk")
	}
	skipWithoutProcFD(t)
	ctx := context.Background()
	base := openFiles(t) + mappings(t)
	b, err := runnel.Open(runnel.Config{Dir: t.TempDir()})
	require.NoError(t, err)
	defer b.Close()
	cfg := log.Config{SegmentBytes: 4 << 10, RetentionBytes: 8 << 10, Sync: log.SyncNever}
	require.NoError(t, b.CreateTopic(ctx, "events", log.TopicConfig{Partitions: 3, Config: cfg}))
	val := make([]byte, 300)
	m0, m1 := leakcheck.Bounded(t, leakcheck.Cycles(t, 50), 10, true, func() int64 { return openFiles(t) + mappings(t) - base }, func(i int) {
		p, err := producer.New(b, producer.Linger(time.Millisecond))
		require.NoError(t, err)
		recs := make([]*record.Record, 12)
		for k := range recs {
			recs[k] = &record.Record{Topic: "events", Key: []byte(fmt.Sprint(k)), Value: val}
		}
		require.NoError(t, p.ProduceSync(ctx, recs...))
		require.NoError(t, p.Close())

		// A Poll at the end waits FetchMaxWait for records (500 ms by
		// default: most of a cycle's time); a millisecond is enough.
		c, err := consumer.New(b, consumer.FetchMaxWait(time.Millisecond))
		require.NoError(t, err)
		require.NoError(t, c.AssignTopic(ctx, "events", consumer.End()))
		_, err = c.Poll(ctx) // looks the end up
		require.NoError(t, err)
		require.NoError(t, c.Close())

		// Replaced, back and forth: each reopens the partitions' logs.
		alt := cfg
		alt.FlushMessages = int64(i%2 + 1)
		require.NoError(t, b.AlterTopicConfig(ctx, "events", alt))
		require.NoError(t, b.Maintain(ctx))

		if i%10 == 0 { // fsyncs: every tenth cycle
			name := fmt.Sprint("scratch", i)
			require.NoError(t, b.CreateTopic(ctx, name, log.TopicConfig{Partitions: 2, Config: cfg}))
			require.NoError(t, b.DeleteTopic(ctx, name))
		}
	})
	require.LessOrEqual(t, m1, m0+20, "open files or mappings grew with the cycles")
}
