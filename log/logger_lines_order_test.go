package log

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// attr returns the value of key in line, a testkit.LineTally's, and whether it
// has one.
func attr(line, key string) (string, bool) {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v, true
		}
	}
	return "", false
}

// requireLinesInOrder checks the lines whose message is msg: each
// distinct, and, per log (the "log" attribute the test gives each log it
// opens), in increasing order of the number that key's attribute holds
// (a roll's base, a deleted segment's file): a log logs them in that
// order, and hands them on in the order logged (Options.Logger). It
// returns how many there were.
func requireLinesInOrder(t *testing.T, lines []string, msg, key string) int {
	t.Helper()
	seen := map[string]bool{}
	last := map[string]int64{}
	n := 0
	for _, line := range lines {
		if !strings.HasPrefix(line, msg+" ") {
			continue
		}
		n++
		require.False(t, seen[line], "line handed on twice: %s", line)
		seen[line] = true
		v, ok := attr(line, key)
		require.True(t, ok, "no %s in %s", key, line)
		if key == "segment" { // "segment <dir>/<base>.log [from, to) n bytes"
			v = strings.Fields(line[strings.Index(line, "segment=")+len("segment="):])[1]
		}
		at := ordKey(v)
		log, _ := attr(line, "log")
		if prev, ok := last[log]; ok {
			require.Less(t, prev, at, "%q lines of log %s out of the order logged: %s", msg, log, line)
		}
		last[log] = at
	}
	return n
}

// ordKey is the number in v's last path element (a base offset, or a
// segment's file name).
func ordKey(v string) int64 {
	v = v[strings.LastIndexAny(v, `/\`)+1:] // Windows's separator too
	v = strings.TrimSuffix(v, ".log")
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		panic(fmt.Sprintf("no number in %q", v))
	}
	return n
}

// TestLinesEachHandedOnOnce: the lines a partition's log logs
// holding its lock (rolls, retention's deletions, producer ids, a
// fence, the reopen's Close and Open) are queued and handed on later,
// by whichever call releases the lock, by a partition call as it leaves,
// by a HoldLines's release, or by a group commit's round on the goroutine
// Options.Go starts (on a file system other than the bare memory one,
// for an append whose ctx may end). Whatever path a line takes, it is
// handed on once: once every call and goroutine has ended, the lines
// handed are the lines logged, none twice, and a log's rolls and
// deletions come in the order logged. The partition is reopened, and
// closed, while the appends, maintenance (under a HoldLines, as the
// broker's) and reads go on; in one case the fsyncs fail part way, once
// the reopens have stopped (the log is fenced).
func TestLinesEachHandedOnOnce(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fence   bool // an fsync fails part way
		compact bool // a compacted topic: "compacted" lines
		discard bool // the partition is discarded (its topic deleted), not closed
	}{
		{name: "healthy"},
		{name: "an fsync fails", fence: true},
		{name: "compacted", compact: true},
		{name: "discarded", discard: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tally testkit.LineTally
			var failSync atomic.Bool
			fs := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, _ string) error {
				if op == vfs.OpSync && failSync.Load() {
					return errors.New("injected fsync failure")
				}
				return nil
			}))
			var rounds sync.WaitGroup
			opts := Options{FS: fs, Clock: newClock(), Logger: tally.Logger(), Go: func(f func()) {
				rounds.Add(1)
				go func() {
					defer rounds.Done()
					f()
				}()
			}}
			cfg := Config{SegmentBytes: 300, RetentionBytes: 900, RetentionTime: -1}
			if tc.compact {
				cfg = Config{SegmentBytes: 300, CleanupPolicy: Compact, MinCleanableDirtyRatio: 0.01}
			}
			const dir = "/data/t-0"
			var opened atomic.Int32 // tells each log's lines apart (see requireLinesInOrder)
			open := func() (*Log, error) {
				o := opts
				o.Logger = o.Logger.With("log", opened.Add(1))
				return Open(dir, cfg, o)
			}
			l, err := open()
			require.NoError(t, err)
			p := NewPartition("t", 0, l)

			loops := testkit.NewLoops(t)
			for w := range 3 {
				loops.Go(func(i int) {
					ctx, cancel := context.WithCancel(context.Background())
					if i%4 == 0 {
						cancel() // the round starts all the same, on a goroutine of its own
					}
					rec := kv{key: fmt.Appendf(nil, "k%d", i%5), value: fmt.Appendf(nil, "%d-%d", w, i), ts: 1_700_000_000_000}
					_, _ = p.Append(ctx, batchOf(t, compression.None, rec), AppendOptions{})
					cancel()
				})
			}
			loops.Go(func(int) { // the broker's maintenance: its lines held until it is done
				l, err := p.LogContext(context.Background())
				if err != nil {
					time.Sleep(time.Millisecond)
					return
				}
				release := l.HoldLines()
				_ = l.Maintain(context.Background())
				release()
			})
			loops.Go(func(int) {
				_, _ = p.ReadInto(context.Background(), nil, p.LogStartOffset(), 1<<16, p.HighWatermark())
			})
			var reopening sync.Mutex // held by a reopen: none under way once fsyncs fail

			loops.Go(func(int) { // a config change's reopen, its old log's lines held until it is done
				time.Sleep(2 * time.Millisecond)
				reopening.Lock()
				defer reopening.Unlock()
				if failSync.Load() {
					return // so that an append's fsync, not a reopen's (which logs no "log fenced"), fails
				}
				k, _ := p.Lock(context.Background())
				release := k.Log().HoldLines()
				_ = k.Reopen(open)
				k.Unlock()
				release()
			})
			// Under way for a while: a roll handed on (and a compaction),
			// not a fixed time, which -race may leave too short.
			busy := func() bool {
				return tally.Has("rolled segment") && (!tc.compact || tally.Has("compacted"))
			}
			for deadline := time.Now().Add(10 * time.Second); !busy() && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			if tc.fence {
				reopening.Lock()
				failSync.Store(true)
				reopening.Unlock()
				for deadline := time.Now().Add(10 * time.Second); !tally.Has("log fenced") && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
			}
			if tc.discard {
				_ = p.Discard() // while the calls go on
			} else {
				_ = p.Close() // while the calls go on (a fenced log's Close fails)
			}
			loops.Stop()
			rounds.Wait()
			lines := tally.RequireEach(t, "once every call and goroutine had ended")
			if testing.Verbose() {
				for _, l := range lines {
					t.Log(l)
				}
			}
			rolls := requireLinesInOrder(t, lines, "rolled segment", "base")
			require.NotZero(t, rolls, "no roll")
			requireLinesInOrder(t, lines, "deleting segment", "segment")
			if tc.compact {
				require.True(t, tally.Has("compacted"), "no compaction")
			}
			if tc.fence {
				require.Contains(t, strings.Join(lines, "\n"), "log fenced")
			}
			t.Logf("%d lines, %d rolls", len(lines), rolls)
		})
	}
}
