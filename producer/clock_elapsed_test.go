package producer

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestWallClockAddsTheTimeElapsed: a reading within clockRenew of its
// base is the base's wall time plus the monotonic time elapsed, not the
// base's time again.
func TestWallClockAddsTheTimeElapsed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c wallClock
		first := c.now()
		time.Sleep(clockRenew / 2)
		if got, want := c.now(), first.Add(clockRenew/2); !got.Equal(want) {
			t.Fatalf("reading %v after %v: want %v", got, clockRenew/2, want)
		}
	})
}
