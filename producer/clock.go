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
// clockRenew. A timestamp therefore differs from time.Now's, rounded down
// to the millisecond (see clockBase.at), by at most the wall clock's own
// adjustment (NTP) within clockRenew — well under Kafka's millisecond
// precision — but after the machine sleeps (a suspend, a VM
// paused): the monotonic clock stops meanwhile (CLOCK_MONOTONIC on
// Linux), so for up to clockRenew after the resume records may be
// stamped with the time before the sleep. The times it returns carry no
// monotonic reading.
// It is safe for concurrent use.
type wallClock struct {
	base atomic.Pointer[clockBase]
	read func() time.Time // time.Now; tests set another
}

// clockBase is a time.Now reading, and its wall time alone as Unix
// seconds and nanoseconds (the monotonic reading left out). Not Unix
// nanoseconds in one int64, which holds only from 1677 to 2262-04-11:
// past that they wrapped, and a record was stamped some 584 years off.
// Nor a time.Time that now adds the elapsed time to: time.Unix of the
// seconds and the nanoseconds plus the elapsed time tells the same
// instant in fewer instructions than Time.Add (BenchmarkClock).
type clockBase struct {
	t    time.Time
	sec  int64 // t.Unix()
	nsec int64 // t's nanoseconds within sec, [0, 1e9)
}

// newClockBase returns the base of reading t.
func newClockBase(t time.Time) *clockBase {
	return &clockBase{t: t, sec: t.Unix(), nsec: int64(t.Nanosecond())}
}

// at returns the wall time d after the base's reading, in whole
// milliseconds (rounded down), without a monotonic reading. d is under
// clockRenew, so nsec+d cannot overflow, and is not negative.
//
// Whole milliseconds, as kgo truncates its stamp: a batch carries
// milliseconds, so that a stamped record's Timestamp is the one a consumer
// reads back, Equal to it.
func (b *clockBase) at(d time.Duration) time.Time {
	ns := b.nsec + int64(d)
	return time.Unix(b.sec, ns-ns%int64(time.Millisecond))
}

func (c *wallClock) now() time.Time {
	if b := c.base.Load(); b != nil {
		if d := time.Since(b.t); d >= 0 && d < clockRenew {
			return b.at(d)
		}
	}
	var t time.Time
	if c.read != nil {
		t = c.read()
	} else {
		t = time.Now()
	}
	b := newClockBase(t)
	c.base.Store(b)
	return b.at(0)
}
