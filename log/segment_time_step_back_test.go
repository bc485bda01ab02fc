package log

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSegmentTimeWaitAcrossReopenAfterClockStepBack: a config change's
// reopen after the wall clock stepped back (an NTP step, a VM restored)
// keeps the active segment's creation time, as Kafka's in-place
// UnifiedLog.updateConfig does: segment.ms's wall-clock wait (for a first
// batch without a timestamp) still counts from the creation, now in the
// clock's future, not from the reopen. Fails on the code before the fix:
// keepActiveCreated (now keepSegmentTimes) kept the old creation time
// only if it was earlier than the reopen's, so after a step back the wait
// counted from the reopen and the segment rolled an hour early (2
// segments, want 1).
// Found by benchmarks/peers' TestParityClockSteps (RUNNEL_PARITY_SEED=80
// RUNNEL_PARITY_RUNS=1 RUNNEL_PARITY_OPS=1500).
func TestSegmentTimeWaitAcrossReopenAfterClockStepBack(t *testing.T) {
	e := newEnv(t)
	cfg := Config{SegmentTime: time.Hour, RetentionTime: -1}
	p := NewPartition("t", 0, e.open(cfg))
	t.Cleanup(func() { p.Close() })
	appendOK(t, p.Log(), valueBatch(t, -1, "a")) // no timestamp: the wall clock counts
	e.clock.Advance(-2 * time.Hour)              // the step back
	cfg.RetentionBytes = 1 << 30                 // a config change: the log reopens
	require.NoError(t, p.Reopen(func() (*Log, error) { return Open(e.dir, cfg, Options{FS: e.fs, Clock: e.clock}) }))
	e.clock.Advance(90 * time.Minute) // 90 minutes after the reopen, 30 before the creation
	appendOK(t, p.Log(), valueBatch(t, -1, "b"))
	require.Equal(t, 1, p.Log().Segments(), "the segment was created 30 minutes in the future: no roll")
	e.clock.Advance(91 * time.Minute) // 61 minutes after the creation
	appendOK(t, p.Log(), valueBatch(t, -1, "c"))
	require.Equal(t, 2, p.Log().Segments(), "61 minutes after the creation: rolled")
}
