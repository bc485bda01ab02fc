package log

import (
	"fmt"
	"strings"
	"testing"

	"github.com/runnel/runnel/compression"
)

// TestTimeIndexRollsAsKafkas checks where a log whose time index fills
// first rolls its segments: Kafka's TimeIndex.isFull is entries >=
// maxEntries - 1, holding the last slot for the entry of the max
// timestamp that LogSegment.onBecomeInactiveSegment writes as the segment
// rolls (skipFullCheck), and LogSegment.shouldRoll rolls on it. With
// index.interval.bytes 0 (1 here) and a new timestamp each batch, each
// batch but a segment's first adds an index point; segment.index.bytes
// holds bytes/12 time entries. The want column is Kafka's layout: the
// roll's entry is written only when the max timestamp grew since the last
// index point (TimeIndex.maybeAppend), so only where a segment's last
// batch was no index point, its first.
func TestTimeIndexRollsAsKafkas(t *testing.T) {
	for _, c := range []struct {
		idxBytes, batches int
		want              string
	}{
		// 1 time slot, none for appends: each batch rolls a segment.
		{12, 4, "[0,1)/1 [1,2)/1 [2,3)/1 [3,4)/1"},
		{23, 3, "[0,1)/1 [1,2)/1 [2,3)/1"},
		// 2 slots, 1 for appends: the second batch takes it.
		{24, 9, "[0,2)/1 [2,4)/1 [4,6)/1 [6,8)/1 [8,9)/1"},
		// 10 slots, 9 for appends: 10 batches a segment.
		{120, 25, "[0,10)/9 [10,20)/9 [20,25)/4"},
	} {
		t.Run(fmt.Sprint(c.idxBytes), func(t *testing.T) {
			e := newEnv(t)
			l := e.open(Config{SegmentIndexBytes: c.idxBytes, IndexIntervalBytes: 1, RetentionTime: -1})
			base := e.clock.Now().UnixMilli()
			for i := range c.batches {
				appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("k"), value: []byte(fmt.Sprint(i)), ts: base + int64(i)}))
			}
			if err := l.Close(); err != nil { // the active segment's final time entry too
				t.Fatal(err)
			}
			l = e.open(Config{SegmentIndexBytes: c.idxBytes, IndexIntervalBytes: 1, RetentionTime: -1})
			defer l.Close()
			var got []string
			for _, s := range *l.segs.Load() {
				got = append(got, fmt.Sprintf("[%d,%d)/%d", s.Base(), s.NextOffset(), s.TimeIndexEntries()))
			}
			if g := strings.Join(got, " "); g != c.want {
				t.Errorf("segments [base,next)/time entries:\n got %s\nwant %s", g, c.want)
			}
		})
	}
}
