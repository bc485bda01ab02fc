package producer

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestWallClock: the clock's readings never run behind a time.Now read
// before them, nor ahead of one read after them — by more than the wall
// clock may be adjusted while a base is in use (NTP slews by at most
// 500 ppm: 50 µs over clockRenew; the test allows a millisecond, Kafka's
// precision) — and renew their base.
func TestWallClock(t *testing.T) {
	var c wallClock
	const slack = time.Millisecond
	for i := range 2000 {
		before := time.Now().Round(0) // wall clock only, as the readings
		got := c.now()
		after := time.Now().Round(0)
		if got.Before(before.Add(-slack)) || got.After(after.Add(slack)) {
			t.Fatalf("reading %d: %v not within [%v, %v]", i, got, before, after)
		}
	}
	// An old base is renewed by the next reading.
	then := time.Now().Add(-2 * clockRenew)
	old := newClockBase(then)
	c.base.Store(old)
	before := time.Now().Truncate(time.Millisecond) // readings are whole milliseconds
	if got := c.now(); got.Before(before) {
		t.Fatalf("reading %v before %v", got, before)
	}
	if c.base.Load() == old {
		t.Fatal("the base was not renewed")
	}
}

var clockSink time.Time

// BenchmarkClock compares a wallClock reading with time.Now and with the
// monotonic clock read it is built on:
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
	// The monotonic clock read alone: the floor of a wallClock reading.
	b.Run("time.Since", func(b *testing.B) {
		start := time.Now()
		var d time.Duration
		for b.Loop() {
			d += time.Since(start)
		}
		clockSink = start.Add(d)
	})
}

// TestWallClockReadingsCarryNoMonotonicClock: as its doc says, no reading
// carries a monotonic clock reading, not even one that renews the base
// (the first, and one every clockRenew), so that every record's
// Timestamp compares the same way (==, Sub) whichever reading stamped it.
func TestWallClockReadingsCarryNoMonotonicClock(t *testing.T) {
	var c wallClock
	for i := range 3 {
		if i > 0 {
			then := time.Now().Add(-2 * clockRenew) // an old base: renewed
			c.base.Store(newClockBase(then))
		}
		got := c.now() // renews the base
		if got != got.Round(0) {
			t.Fatalf("reading %d carries a monotonic clock reading: %v", i, got)
		}
		if got = c.now(); got != got.Round(0) {
			t.Fatalf("reading %d from the base carries a monotonic clock reading: %v", i, got)
		}
	}
}

// TestWallClockRoundsDown: a reading is the wall time rounded down to the
// millisecond (the batch's precision, as kgo truncates), never up: never
// later than time.Now, nor earlier than time.Now truncated, whether it
// renews its base (the first reading) or adds the time elapsed since.
// In a synctest bubble, whose clock moves only when every goroutine
// waits, so that time.Now and the reading tell the same instant. Rounding
// up (or to the nearest) passed the other tests: TestWallClock allows a
// millisecond either side.
func TestWallClockRoundsDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c wallClock
		// The bubble's clock starts on a whole second: the first reading
		// renews the base 1.5 ms on, then each step adds to it.
		for i, step := range []time.Duration{
			1500 * time.Microsecond,  // renews: 1.5 ms
			time.Millisecond - 1,     // 2.499999 ms
			1,                        // 2.5 ms
			500*time.Microsecond - 1, // 2.999999 ms
			1,                        // 3 ms
			clockRenew,               // renews: 103 ms
			999 * time.Microsecond,   // 103.999 ms
		} {
			time.Sleep(step)
			now := time.Now()
			got := c.now()
			if want := now.Truncate(time.Millisecond); !got.Equal(want) {
				t.Fatalf("reading %d, at %v: %v, want %v", i, now, got, want)
			}
		}
	})
	// A base read with nanoseconds just under a second's end.
	at := time.Date(2026, 12, 7, 21, 30, 59, 999_999_999, time.UTC)
	c := wallClock{read: func() time.Time { return at }}
	if got, want := c.now(), at.Truncate(time.Millisecond); !got.Equal(want) {
		t.Fatalf("the wall clock reads %v: stamped %v, want %v", at, got, want)
	}
}
