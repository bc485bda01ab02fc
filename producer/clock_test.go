package producer

import (
	"testing"
	"time"
)

// TestWallClock: the clock's readings never run behind a time.Now read
// before them, nor ahead of one read after them, and renew their base.
func TestWallClock(t *testing.T) {
	var c wallClock
	for i := range 2000 {
		before := time.Now()
		got := c.now()
		after := time.Now()
		if got.Before(before) || got.After(after) {
			t.Fatalf("reading %d: %v not within [%v, %v]", i, got, before, after)
		}
	}
	// An old base is renewed by the next reading.
	old := time.Now().Add(-2 * clockRenew)
	c.base.Store(&old)
	before := time.Now()
	if got := c.now(); got.Before(before) {
		t.Fatalf("reading %v before %v", got, before)
	}
	if c.base.Load() == &old {
		t.Fatal("the base was not renewed")
	}
}

var clockSink time.Time

// BenchmarkClock compares a wallClock reading with time.Now:
// go test -run '^$' -bench Clock ./producer
func BenchmarkClock(b *testing.B) {
	b.Run("wallClock", func(b *testing.B) {
		var c wallClock
		for b.Loop() {
			clockSink = c.now()
		}
	})
	b.Run("time.Now", func(b *testing.B) {
		for b.Loop() {
			clockSink = time.Now()
		}
	})
}
