package log

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/vfs"
)

// TestMaintainJoinsRetentionErrorToLaterSteps: a retention that fails
// without fencing the log (no room for its checkpoint) lets the steps
// after it run, and when one of those fails too — the SyncNever fsync of
// the rolled segments, or the compaction — Maintain's error holds both
// failures, the retention's as well, as Maintain's doc says.
func TestMaintainJoinsRetentionErrorToLaterSteps(t *testing.T) {
	errRetention := errors.New("no room for the log start checkpoint")
	errLater := errors.New("the later step's fault")
	for _, tc := range []struct {
		name  string
		sync  SyncPolicy
		later func(op vfs.Op, name string) bool
	}{
		{"flush", SyncNever, func(op vfs.Op, name string) bool {
			return op == vfs.OpSync && strings.HasSuffix(name, ".log")
		}},
		{"compaction", SyncAlways, func(op vfs.Op, name string) bool {
			return op == vfs.OpCreate && strings.HasSuffix(name, cleanerFile+tmpSuffix)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			var on atomic.Bool
			var laterFailed atomic.Int32
			e.fs = vfs.WithFaults(e.fs, vfs.InjectorFunc(func(op vfs.Op, name string) error {
				if !on.Load() {
					return nil
				}
				if op == vfs.OpCreate && strings.HasSuffix(name, logStartFile+tmpSuffix) {
					return errRetention
				}
				if tc.later(op, name) {
					laterFailed.Add(1)
					return errLater
				}
				return nil
			}))
			cfg := Config{Sync: tc.sync, SegmentBytes: 200, RetentionTime: time.Minute, CleanupPolicy: Compact | Delete}
			l := e.open(cfg)
			defer l.Close()
			for range 6 {
				appendOK(t, l, keyedBatch(t, "k"))
			}
			e.clock.Advance(2 * time.Hour) // those segments past retention
			for range 4 {
				appendOK(t, l, valueBatch(t, e.clock.Now().UnixMilli(), "recent"))
			}
			require.Greater(t, len(*l.segs.Load()), 4, "rolled")

			on.Store(true)
			err := l.Maintain(context.Background())
			require.Positive(t, laterFailed.Load(), "the %s ran after the failed retention", tc.name)
			require.ErrorIs(t, err, errRetention, "the retention's failure")
			require.ErrorIs(t, err, errLater, "the %s's failure", tc.name)
		})
	}
}
