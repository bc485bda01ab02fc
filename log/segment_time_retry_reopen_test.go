package log

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSegmentTimeWaitOutlivesRetryReopen: a config change whose reopen
// failed and that RetryReopen (the broker's maintenance) completes later
// keeps the active segment's creation time too, as a Reopen that
// succeeds at once does: segment.ms's wall-clock wait (for a first batch
// without a timestamp) goes on from the segment's creation. Fails on the
// code before the fix: RetryReopen started the wait again, so the next
// append did not roll (1 segment, want 2).
func TestSegmentTimeWaitOutlivesRetryReopen(t *testing.T) {
	e := newEnv(t)
	cfg := Config{SegmentTime: time.Minute, RetentionTime: -1}
	p := NewPartition("t", 0, e.open(cfg))
	t.Cleanup(func() { p.Close() })
	appendOK(t, p.Log(), valueBatch(t, -1, "a")) // no timestamp: the wall clock counts
	e.clock.Advance(40 * time.Second)
	boom := errors.New("boom")
	failing := true
	open := func() (*Log, error) {
		if failing {
			return nil, boom
		}
		return Open(e.dir, cfg, Options{FS: e.fs, Clock: e.clock})
	}
	require.ErrorIs(t, p.Reopen(open), boom)
	failing = false
	e.clock.Advance(40 * time.Second)
	tried, err := p.RetryReopen(context.Background())
	require.True(t, tried)
	require.NoError(t, err)
	appendOK(t, p.Log(), valueBatch(t, -1, "b"))
	require.Equal(t, 2, p.Log().Segments(), "the segment, created 80s ago, rolls (segment.ms 1 minute)")
}
