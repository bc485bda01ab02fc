package log

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestMaintainFlushesPastAFailedCompaction: flush.ms (SyncPeriodic) is
// due at Maintain whatever failed before it in the same call. A
// compaction that fails at every pass (a disk with no room for the
// cleaned segment) kept an idle partition's appends unsynced past
// flush.ms, where Kafka's flush scheduler flushes a log whatever its
// cleaner does (from a review).
func TestMaintainFlushesPastAFailedCompaction(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	noRoom := errors.New("no room for a cleaned segment")
	e.fs = vfs.WithFaults(e.fs, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpCreate && strings.HasSuffix(name, cleanedSuffix) {
			return noRoom
		}
		return nil
	}))
	l := e.open(Config{Sync: SyncPeriodic, FlushInterval: time.Minute, CleanupPolicy: Compact,
		MinCleanableDirtyRatio: 0.01, RetentionTime: -1})
	defer l.Close()
	for range 4 { // four values of one key, each in its own segment: dirty
		appendOK(t, l, keyedBatch(t, "k"))
		require.NoError(t, l.Roll())
	}
	require.NoError(t, l.Flush(ctx))
	appendOK(t, l, keyedBatch(t, "k"))
	require.EqualValues(t, 4, l.DurableOffset())

	e.clock.Advance(2 * time.Minute) // flush.ms past the last flush
	require.ErrorIs(t, l.Maintain(ctx), noRoom, "the compaction failed")
	require.EqualValues(t, 5, l.DurableOffset(), "flush.ms was due: flushed all the same")
}
