package runnel

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
)

// TestFilesBesideTheLogsOnDisk measures what PartitionInfo.Size leaves
// out, the index, snapshot and checkpoint files beside a partition's
// .log files, against the .log bytes, with 64 KiB segments and batches
// of 100 B and 4 KB records (an idempotent producer's snapshots
// included), after a clean close: the docs (docs/details.md,
// "Monitoring"; PartitionInfo.Size) say well under 1%. Run with -v for
// the figures.
func TestFilesBesideTheLogsOnDisk(t *testing.T) {
	ctx := context.Background()
	dir := testkit.FastTempDir(t) // its time was the fsyncs of 4,600 produces on a disk; sizes are as on one
	b, err := Open(Config{Dir: dir})
	require.NoError(t, err)
	for _, tc := range []struct {
		topic string
		value int
		idem  bool
	}{{"small", 100, false}, {"large", 4000, false}, {"idempotent", 100, true}} {
		require.NoError(t, b.CreateTopic(ctx, tc.topic, log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 64 << 10, RetentionTime: -1}}))
		var pid int64 = -1
		if tc.idem {
			pid, _, err = b.InitProducerID(ctx)
			require.NoError(t, err)
		}
		value := strings.Repeat("v", tc.value)
		seq := int32(0)
		for written := 0; written < 2<<20; written += 10 * tc.value {
			values := make([]string, 10)
			for i := range values {
				values[i] = value
			}
			data, err := crashBatch(values, pid, seq)
			require.NoError(t, err)
			if tc.idem {
				seq += 10
			}
			_, err = b.Produce(ctx, &api.ProduceRequest{Topic: tc.topic, Acks: api.AcksAll, Batches: data})
			require.NoError(t, err)
		}
	}
	require.NoError(t, b.Close())
	for _, topic := range []string{"small", "large", "idempotent"} {
		var logs, beside int64
		entries, err := os.ReadDir(filepath.Join(dir, topic+"-0"))
		require.NoError(t, err)
		for _, e := range entries {
			fi, err := e.Info()
			require.NoError(t, err)
			if filepath.Ext(e.Name()) == ".log" {
				logs += fi.Size()
			} else {
				beside += fi.Size()
			}
		}
		share := float64(beside) / float64(logs)
		t.Logf("%s: %d bytes of .log, %d beside them: %.2f%%", topic, logs, beside, 100*share)
		require.Less(t, share, 0.01, topic)
	}
}
