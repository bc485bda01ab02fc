package log

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// TestSnapshotDamageKeepsLaterProducerState is a seeded random
// run of one SyncAlways log (compacted and with retention) under three
// idempotent producers' appends, rolls, compactions, DeleteRecordsBefore,
// Maintain with the clock moved on, clean reopens and power cuts (every
// tail mode, with and without Reorder); before a reopen, now and then a
// producer-state snapshot is damaged (garbage, a bit flipped, removed).
// An Open that finds its snapshot damaged may forget what only that
// snapshot held; but from then on what the log's producer state holds
// must survive every reopen without damage, clean or not: each batch the
// state remembered before it is remembered after it. Compaction is what
// could take it: it removes a producer's batches but its last, and a
// crash would then replay the state from a snapshot without them (see
// TestCleanOpenRewritesAnUnreadableEndSnapshot). Producer ids do
// not expire here: a producer that expired is forgotten by the state,
// and then taken back from an older snapshot Open falls back to (as
// documented: a replay counts producers from the Open).
//
// It runs seeds 1 to 300, to 100 with -short, to 40 in the quick race
// run (-race -short); RUNNEL_SNAPSHOT_DAMAGE=N runs N seeds from one
// picked from the clock (RUNNEL_SNAPSHOT_DAMAGE_BASE sets it; a failing
// seed logs its replay), for more:
//
//	RUNNEL_SNAPSHOT_DAMAGE=3000 go test -run TestSnapshotDamageKeepsLaterProducerState ./log
func TestSnapshotDamageKeepsLaterProducerState(t *testing.T) {
	short := 100
	if testkit.RaceEnabled {
		short = 40
	}
	testkit.Seeds(t, "RUNNEL_SNAPSHOT_DAMAGE", 300, short, runSnapshotDamage)
}

// damageBatch is producer pid's (epoch 0) batch of one record at
// sequence seq with the key key.
func damageBatch(t testing.TB, pid int64, seq int32, key string) []byte {
	t.Helper()
	var b record.Builder
	b.Reset()
	b.SetProducer(pid, 0, seq)
	b.Append(1_700_000_000_000, []byte(key), []byte(fmt.Sprint(seq)), nil)
	out, err := b.AppendTo(nil, compression.None)
	require.NoError(t, err)
	return out
}

// producerWindows is what l's producer state remembers, by producer id
// (append times left out).
func producerWindows(l *Log) map[int64][]producerBatch {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[int64][]producerBatch{}
	for id, st := range l.producers {
		for _, b := range st.batches {
			b.appendTime = 0
			out[id] = append(out[id], b)
		}
	}
	return out
}

func runSnapshotDamage(t *testing.T, seed uint64) {
	defer func() {
		if t.Failed() { // a check without the seed in its message
			t.Logf("seed %d failed", seed)
		}
	}()
	rng := rand.New(rand.NewPCG(seed, 7))
	mem := vfs.NewMem()
	clock := newClock()
	const dir = "/d/t-0"
	cfg := Config{Sync: SyncAlways, CleanupPolicy: Compact | Delete, SegmentBytes: int64(300 + rng.IntN(500)),
		RetentionTime: time.Duration(20+rng.IntN(60)) * time.Hour}
	open := func() *Log {
		l, err := Open(dir, cfg, Options{FS: mem, Clock: clock, ProducerExpiration: -1})
		require.NoError(t, err, "seed %d", seed)
		return l
	}
	l := open()
	defer func() { l.Close() }()
	seqs := map[int64]int32{}
	var ops []string
	reopened := func(before map[int64][]producerBatch, damaged bool) {
		t.Helper()
		if damaged {
			return
		}
		after := producerWindows(l)
		for id, bs := range before {
			for _, b := range bs {
				if !slices.Contains(after[id], b) {
					t.Fatalf("seed %d: producer %d forgot %+v after %v\nbefore %v\nafter %v", seed, id, b, ops, before, after)
				}
			}
		}
	}
	for step := range 120 {
		switch r := rng.IntN(100); {
		case r < 55:
			pid := int64(1 + rng.IntN(3))
			if _, err := l.Append(context.Background(), damageBatch(t, pid, seqs[pid], fmt.Sprint("k", rng.IntN(4))), AppendOptions{}); err != nil {
				t.Fatalf("seed %d: producer %d's sequence %d: %v after %v\nstate %v", seed, pid, seqs[pid], err, ops, producerWindows(l))
			}
			seqs[pid]++
			ops = append(ops, fmt.Sprint("append", pid))
		case r < 62:
			require.NoError(t, l.Roll())
			ops = append(ops, "roll")
		case r < 70:
			_, err := l.Compact(context.Background())
			require.NoError(t, err)
			ops = append(ops, "compact")
		case r < 74:
			clock.Advance(time.Duration(rng.IntN(30)) * time.Hour)
			require.NoError(t, l.Maintain(context.Background()))
			ops = append(ops, "maintain")
		case r < 77:
			start, end := l.LogStartOffset(), l.LogEndOffset()
			off := start + rng.Int64N(end-start+1)
			_, err := l.DeleteRecordsBefore(context.Background(), off)
			require.NoError(t, err)
			ops = append(ops, fmt.Sprint("delete", off))
		case r < 84:
			before := producerWindows(l)
			require.NoError(t, l.Close())
			damaged := damageSnapshot(t, rng, mem, dir)
			l = open()
			ops = append(ops, fmt.Sprint("clean damaged=", damaged))
			reopened(before, damaged)
		default:
			before := producerWindows(l)
			crashed := mem.CrashClone(vfs.CrashOptions{Tail: vfs.TailMode(rng.IntN(4)), Reorder: rng.IntN(2) == 0,
				Rand: rand.New(rand.NewPCG(seed, uint64(step)))})
			l.Close()
			mem = crashed
			damaged := damageSnapshot(t, rng, mem, dir)
			l = open()
			ops = append(ops, fmt.Sprint("crash damaged=", damaged))
			reopened(before, damaged)
		}
	}
}

// damageSnapshot, one time in three, damages a producer-state snapshot of
// the log in dir, and reports whether it did.
func damageSnapshot(t *testing.T, rng *rand.Rand, mem *vfs.MemFS, dir string) bool {
	t.Helper()
	if rng.IntN(3) != 0 {
		return false
	}
	names, err := mem.List(dir)
	require.NoError(t, err)
	offs := snapshotOffsets(names)
	if len(offs) == 0 {
		return false
	}
	name := filepath.Join(dir, snapshotName(offs[rng.IntN(len(offs))]))
	switch rng.IntN(3) {
	case 0:
		replaceMemFile(t, mem, name, []byte("garbage"))
	case 1:
		require.NoError(t, mem.Remove(name))
	default:
		data := readWhole(t, mem, name)
		data[rng.IntN(len(data))] ^= 1
		replaceMemFile(t, mem, name, data)
	}
	return true
}
