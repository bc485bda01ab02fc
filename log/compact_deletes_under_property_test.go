package log

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestCompactionUnderDeletionsProperty: compaction passes that
// DeleteRecordsBefore and retention by size cut under them, at random
// groups (from a file-system hook at the group's .cleaned file, so that
// the interleaving is the seed's), never make a key's older value its
// value again: after each pass, the last record of each key at or past
// the log start is the last one appended (or none, when that is a
// tombstone that went, or lies below the log start), or a tombstone when
// that is one. Seeds by testkit.Seeds (RUNNEL_COMPACT_DELETES=N runs N
// new ones): without the fix that TestCompactionSkippedGroupKeepsTombstone
// pins, about 3 seeds in 1,000 brought a deleted key's value back (the
// default 40 seldom do: that test is the regression test, this one
// looks wider).
func TestCompactionUnderDeletionsProperty(t *testing.T) {
	testkit.Seeds(t, "RUNNEL_COMPACT_DELETES", 40, 10, func(t *testing.T, seed uint64) {
		rng := rand.New(rand.NewPCG(seed, 17))
		e := newEnv(t)
		var hook atomic.Pointer[func()]
		e.fs = vfs.WithFaults(e.fs, vfs.InjectorFunc(func(op vfs.Op, name string) error {
			if f := hook.Load(); f != nil && op == vfs.OpCreate && strings.HasSuffix(name, segment.LogSuffix+cleanedSuffix) {
				(*f)()
			}
			return nil
		}))
		seg := int64(300 + rng.IntN(500))
		// Retention runs only from the hook (this test calls no
		// Maintain).
		cfg := Config{SegmentBytes: seg, CleanupPolicy: Compact | Delete, RetentionTime: -1,
			RetentionBytes: seg * int64(2+rng.IntN(4)), DeleteRetentionTime: time.Minute, MinCleanableDirtyRatio: 0.01}
		l := e.open(cfg)
		defer func() { l.Close() }()
		ctx := context.Background()
		type rec struct {
			off   int64
			value string // "" for a tombstone
		}
		last := map[string]rec{}
		for step := range 300 {
			switch n := rng.IntN(20); {
			case n < 10:
				key := fmt.Sprintf("k%d", rng.IntN(6))
				value := fmt.Sprintf("%s@%d", key, step)
				if rng.IntN(4) == 0 {
					value = ""
				}
				var v []byte
				if value != "" {
					v = []byte(value + strings.Repeat(".", rng.IntN(20)))
				}
				res := appendOK(t, l, batchOf(t, compression.None, kv{key: []byte(key), value: v, ts: e.clock.Now().UnixMilli()}))
				last[key] = rec{off: res.FirstOffset, value: value}
			case n < 15:
				require.NoError(t, l.Roll())
			case n < 16:
				e.clock.Advance(time.Duration(rng.IntN(150)) * time.Second)
			default:
				// A pass; now and then cut under one of its groups.
				cuts := rng.IntN(2) + rng.IntN(2)
				f := func() {
					if cuts == 0 {
						return
					}
					cuts--
					if rng.IntN(4) != 0 {
						segs := *l.segs.Load()
						if len(segs) > 1 {
							_, err := l.DeleteRecordsBefore(ctx, segs[1].Base())
							require.NoError(t, err)
						}
						return
					}
					_, err := l.ApplyRetention(ctx)
					require.NoError(t, err)
				}
				hook.Store(&f)
				e.clock.Advance(time.Duration(rng.IntN(90)) * time.Second)
				_, err := l.Compact(ctx)
				hook.Store(nil)
				require.NoError(t, err)
				checkLastValues(t, l, func(key string) (int64, string, bool) {
					r, ok := last[key]
					return r.off, r.value, ok
				}, fmt.Sprintf("after step %d", step))
			}
		}
	})
}

// checkLastValues checks that the last record of each key at or past
// l's log start, if any, is the one want says was appended last, or a
// tombstone when that is one (a key deleted all the same).
func checkLastValues(t *testing.T, l *Log, want func(key string) (int64, string, bool), what string) {
	t.Helper()
	got := map[string]int64{}
	vals := map[string]string{}
	for _, b := range batchesOf(t, l) {
		for r, err := range b.Records() {
			require.NoError(t, err)
			if r.Offset < l.LogStartOffset() {
				continue
			}
			got[string(r.Key)] = r.Offset
			vals[string(r.Key)] = string(r.Value)
		}
	}
	for key, off := range got {
		wantOff, wantValue, ok := want(key)
		require.True(t, ok, "%s: key %s never appended", what, key)
		if off == wantOff || vals[key] == "" && wantValue == "" {
			continue // the last append, or deleted all the same
		}
		require.Failf(t, "a key's older record came back", "%s: key %s's last record is at %d (%q), its last append at %d (%q), log start %d",
			what, key, off, vals[key], wantOff, wantValue, l.LogStartOffset())
	}
}
