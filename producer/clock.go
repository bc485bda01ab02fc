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
// millisecond precision. The times it returns carry no monotonic reading.
// It is safe for concurrent use.
type wallClock struct {
	base atomic.Pointer[clockBase]
	read func() time.Time // time.Now; tests set another
}

// clockBase is a time.Now reading, and its wall time in ns since the epoch.
type clockBase struct {
	t      time.Time
	unixNs int64
}

func (c *wallClock) now() time.Time {
	if b := c.base.Load(); b != nil {
		if d := time.Since(b.t); d >= 0 && d < clockRenew {
			return time.Unix(0, b.unixNs+int64(d))
		}
	}
	var t time.Time
	if c.read != nil {
		t = c.read()
	} else {
		t = time.Now()
	}
	c.base.Store(&clockBase{t: t, unixNs: t.UnixNano()})
	return time.Unix(0, t.UnixNano()) // without t's monotonic reading, as the others
}
