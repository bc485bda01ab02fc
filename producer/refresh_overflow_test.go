package producer

import (
	"math"
	"testing"
	"time"
)

// nextRefresh saturates at math.MaxInt64 ("never") where MetadataMaxAge
// past now, on monoNow's clock, does not fit an int64, whatever now is
// (monoNow starts at 0 at New; the test hook may give any origin), and
// adds it otherwise.
func TestNextRefreshSaturates(t *testing.T) {
	for _, tc := range []struct {
		age      time.Duration
		now      int64
		want     int64
		overflow bool
	}{
		{time.Hour, 0, int64(time.Hour), false},
		{time.Hour, 1 << 62, 1<<62 + int64(time.Hour), false},
		{time.Hour, math.MaxInt64 - int64(time.Hour), math.MaxInt64, false},
		{time.Hour, math.MaxInt64 - int64(time.Hour) + 1, math.MaxInt64, true},
		{time.Hour, math.MaxInt64, math.MaxInt64, true},
		{math.MaxInt64, 0, math.MaxInt64, false},
		{math.MaxInt64, 1, math.MaxInt64, true},
		{math.MaxInt64, int64(time.Since(time.Now().Add(-time.Second))), math.MaxInt64, true},
		{math.MaxInt64 / 2, math.MaxInt64/2 + 2, math.MaxInt64, true},
	} {
		p, err := New(&oneClient{}, MetadataMaxAge(tc.age))
		if err != nil {
			t.Fatal(err)
		}
		if got := p.nextRefresh(tc.now); got != tc.want {
			t.Errorf("MetadataMaxAge %v at %d: next refresh at %d, want %d (overflow %v)", tc.age, tc.now, got, tc.want, tc.overflow)
		}
		p.Close()
	}
}
