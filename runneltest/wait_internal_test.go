package runneltest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// deadlineTB is a testing.TB with a test deadline, as *testing.T has.
type deadlineTB struct {
	testing.TB
	deadline time.Time
}

func (d deadlineTB) Deadline() (time.Time, bool) { return d.deadline, true }

// A helper's wait is DefaultWait (or the Timeout asked for) under go
// test's default -timeout of 10 minutes, not the time left until it; a
// deadline that comes sooner bounds it, with a second to spare.
func TestWaitIsShortWhateverTheDeadline(t *testing.T) {
	start := time.Now()
	far := deadlineTB{t, start.Add(10 * time.Minute)}

	ctx, cancel, limit := waitContext(far, 0)
	defer cancel()
	deadline, ok := ctx.Deadline()
	require.True(t, ok)
	require.False(t, deadline.After(time.Now().Add(DefaultWait)), "waits DefaultWait, not until the test's deadline")
	require.Equal(t, "within 10s", limit)

	ctx, cancel, limit = waitContext(far, time.Minute)
	defer cancel()
	deadline, _ = ctx.Deadline()
	require.False(t, deadline.After(time.Now().Add(time.Minute)))
	require.True(t, deadline.After(start.Add(DefaultWait)), "the Timeout asked for")
	require.Equal(t, "within 1m0s", limit)

	near := deadlineTB{t, start.Add(3 * time.Second)}
	ctx, cancel, limit = waitContext(near, 0)
	defer cancel()
	deadline, _ = ctx.Deadline()
	require.Equal(t, near.deadline.Add(-deadlineGrace), deadline, "never past the test's deadline")
	require.Equal(t, "before the test's deadline", limit)
}
