package producer

import (
	"sync/atomic"
	"time"
)

// clockRenew is how often wallClock reads the wall clock again.
const clockRenew = 100 * time.Millisecond

// wallClock stamps records with the time more cheaply than time.Now, which
// reads two clocks (wall and monotonic): it reads only the monotonic clock
// (31 ns against 48 per reading on the development VM: BenchmarkClock),
// and adds the time elapsed to a wall-clock reading it renews every
// clockRenew. A timestamp therefore differs from time.Now's by at most the
// wall clock's own adjustment (NTP) within clockRenew — well under Kafka's
// millisecond precision — but after the machine sleeps (a suspend, a VM
// paused): the monotonic clock stops meanwhile (CLOCK_MONOTONIC on
// Linux), so for up to clockRenew after the resume records may be
// stamped with the time before the sleep. The times it returns carry no
// monotonic reading.
// It is safe for concurrent use.
type wallClock struct {
	base atomic.Pointer[clockBase]
	read func() time.Time // time.Now; tests set another
}

// clockBase is a time.Now reading, and its wall time alone (without the
// monotonic reading). Not Unix nanoseconds, which an int64 holds only
// from 1677 to 2262-04-11: past that they wrapped, and a record was
// stamped some 584 years off.
type clockBase struct {
	t    time.Time
	wall time.Time
}

func (c *wallClock) now() time.Time {
	if b := c.base.Load(); b != nil {
		if d := time.Since(b.t); d >= 0 && d < clockRenew {
			return b.wall.Add(d)
		}
	}
	var t time.Time
	if c.read != nil {
		t = c.read()
	} else {
		t = time.Now()
	}
	b := &clockBase{t: t, wall: t.Round(0)} // without t's monotonic reading
	c.base.Store(b)
	return b.wall
}
