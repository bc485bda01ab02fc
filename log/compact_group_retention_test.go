package log

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestCompactionGroupMergeRacesDeleteRecords: while compaction rewrites a
// group of several segments as one (no record of it removed, since
// c049ccd), DeleteRecordsBefore deletes the group's first segment, or
// moves the log start inside it: the group's swap is skipped or lands
// under the new start; the records at or past the log start stay, the
// cleaner checkpoint does not pass what was left as it was, and the next
// pass merges what is left.
func TestCompactionGroupMergeRacesDeleteRecords(t *testing.T) {
	for _, inside := range []bool{false, true} {
		t.Run(fmt.Sprint("inside=", inside), func(t *testing.T) {
			var hook func(op vfs.Op, name string)
			cfg := Config{SegmentBytes: 4000, CleanupPolicy: Compact}
			l, _ := hookedLog(t, cfg, &hook)
			for i := 0; i < 24; i++ {
				appendOK(t, l, keyedBatch(t, fmt.Sprint("u", i)))
				if i%3 == 2 {
					require.NoError(t, l.Roll())
				}
			}
			require.NoError(t, l.Roll())
			before := l.Segments()
			var bases []int64
			for _, s := range *l.segs.Load() {
				bases = append(bases, s.Base())
			}
			target := bases[1]
			if inside {
				target = bases[0] + 1
			}
			fired := false
			hook = func(op vfs.Op, name string) {
				if !fired && strings.HasSuffix(name, cleanedSuffix) {
					fired = true
					_, err := l.DeleteRecordsBefore(context.Background(), target)
					require.NoError(t, err)
				}
			}
			res, err := l.Compact(context.Background())
			hook = nil
			require.NoError(t, err)
			require.True(t, fired)
			t.Logf("%d segments -> %d, %+v", before, l.Segments(), res)
			start := l.LogStartOffset()
			require.Equal(t, target, start)
			recs := readAll(t, l, start)
			require.Len(t, recs, int(l.LogEndOffset()-start))
			for i, r := range recs {
				require.Equal(t, fmt.Sprint("u", int(start)+i), string(r.Key))
			}
			_, err = l.Compact(context.Background())
			require.NoError(t, err)
			require.Len(t, readAll(t, l, start), int(l.LogEndOffset()-start))
		})
	}
}
