package producer

import (
	"testing"
	"time"
)

// TestWallClockPastTheNanosecondRange: the clock that stamps records
// tells the wall clock's time, as Kafka's producer
// (System.currentTimeMillis) does, also past 2262-04-11T23:47:16Z (and
// before 1677), where Unix nanoseconds no longer fit an int64: it kept
// its readings in UnixNano, which wraps there, and stamped a record
// produced in 2263 with a time in 1677 (negative, which Produce refuses
// in a record's own Timestamp), one from 1600 in 2184. Past 2157 a
// time.Now reading carries no monotonic reading, so each of these is
// read anew.
func TestWallClockPastTheNanosecondRange(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(2263, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		c := wallClock{read: func() time.Time { return at }}
		if got := c.now(); !got.Equal(at) {
			t.Errorf("the wall clock reads %v: stamped %v", at, got)
		}
	}
}
