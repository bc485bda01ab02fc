package runneltest

import (
	"testing"
	"testing/synctest"
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
// deadline that comes sooner bounds it, with a second to spare, or half
// the time left when that is under two seconds. In a synctest bubble,
// whose clock stands still: on the real clock, a test descheduled for a
// second between its start and the call with 3 s left found under 2 s
// left, and a deadline half way to it, not a second before it.
func TestWaitIsShortWhateverTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
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

		// With less than twice the grace left, half way to the deadline: a
		// wait that began over would fail what takes no time.
		start = time.Now()
		last := deadlineTB{t, start.Add(600 * time.Millisecond)}
		ctx, cancel, limit = waitContext(last, 0)
		defer cancel()
		deadline, _ = ctx.Deadline()
		require.False(t, deadline.Before(start.Add(300*time.Millisecond)), "half the time left at the call, at least")
		require.False(t, deadline.After(last.deadline), "never past the test's deadline")
		require.Equal(t, "before the test's deadline", limit)
	})
}

// panickyTB is a testing.TB whose Deadline panics with v, as a
// *testing.T's does inside a synctest bubble.
type panickyTB struct {
	testing.TB
	v any
}

func (p panickyTB) Deadline() (time.Time, bool) { panic(p.v) }

// The panic of t.Deadline inside a synctest bubble reads as no deadline
// (the helpers wait DefaultWait on the bubble's clock); any other panic
// of a Deadline goes on.
func TestTestDeadlineInsideSynctestBubble(t *testing.T) {
	ctx, cancel, limit := waitContext(panickyTB{t, "testing: t.Deadline called inside synctest bubble"}, 0)
	defer cancel()
	deadline, ok := ctx.Deadline()
	require.True(t, ok)
	require.False(t, deadline.After(time.Now().Add(DefaultWait)))
	require.Equal(t, "within 10s", limit)
	require.PanicsWithValue(t, "other", func() { testDeadline(panickyTB{t, "other"}) })
}
