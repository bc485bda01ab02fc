package runnel_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// TestOffsetViewsProperty interleaves produces, DeleteRecords, retention,
// compaction, config changes, restarts, crashes and CreatePartitions, and
// after each step checks the offsets every view gives (DescribeTopic,
// ListOffset, a fetch, a consumer's Lag) against Kafka's invariants: log
// start <= HW <= LEO, the views agree at rest, earliest = log start,
// latest = HW, a fetch below log start or past LEO is out of range, a
// fetch at HW answers nothing, no batch wholly below log start is served,
// and the log start never goes back, across a restart or a crash too.
// Seeds as testkit.Seeds says (RUNNEL_OFFSET_VIEWS=N, RUNNEL_OFFSET_VIEWS_BASE=S);
// a seed's store is seed%3 (a MemFS, in memory, on the OS file system:
// FastTempDir, /dev/shm where it has room) unless
// RUNNEL_OFFSET_VIEWS_MODE says which; RUNNEL_OFFSET_VIEWS_DUMP=1 prints
// the steps. Its seeds run side by side, 6 at once: a seed's time is
// mostly its fetches' waits (a MaxWait of 1 ms at the HW and past it,
// several a partition a step), its CPU a tenth of it.
func TestOffsetViewsProperty(t *testing.T) {
	testkit.SeedsSideBySide(t, "RUNNEL_OFFSET_VIEWS", 12, 4, 6, runOffsetViews)
}

type offsetViews struct {
	t      *testing.T
	rng    *rand.Rand
	mem    *vfs.MemFS
	clock  *maintRaceClock
	b      *runnel.Broker
	cfg    log.Config
	parts  int32
	minLS  map[int32]int64 // the largest log start seen
	minHW  map[int32]int64 // the largest HW seen, under SyncAlways (durable)
	nextID int64
	trace  []string
	acks   []api.Ack
	failAt atomic.Int64 // while > 0, the file-system ops counted down to a failure from then on
	cons   *consumer.Consumer
	cparts int32
	mode   int // 0: a MemFS, 1: in memory (no restart), 2: on disk (no crash)
	dir    string
}

func (h *offsetViews) logf(format string, args ...any) {
	h.trace = append(h.trace, fmt.Sprintf(format, args...))
}

func (h *offsetViews) fatalf(format string, args ...any) {
	h.t.Helper()
	h.t.Fatalf("%s\ntrace:\n  %s", fmt.Sprintf(format, args...), strings.Join(h.trace, "\n  "))
}

func (h *offsetViews) open() {
	h.failAt.Store(0)
	cfg := runnel.Config{FS: vfs.WithFaults(h.mem, vfs.InjectorFunc(func(vfs.Op, string) error {
		if h.failAt.Load() > 0 && h.failAt.Add(-1) <= 0 {
			h.failAt.Store(-1)
		}
		if h.failAt.Load() < 0 {
			return vfs.ErrInjected
		}
		return nil
	})), Clock: h.clock, MaintenanceInterval: time.Hour}
	switch h.mode {
	case 1:
		cfg.FS = nil
	case 2:
		cfg.FS, cfg.Dir = nil, h.dir
	}
	b, err := runnel.Open(cfg)
	if err != nil {
		h.fatalf("open: %v", err)
	}
	h.b = b
}

func (h *offsetViews) randomConfig() log.Config {
	c := log.Config{SegmentBytes: int64(200 + h.rng.IntN(600)), TimestampAfterMax: -1,
		MinCleanableDirtyRatio: 0.01, DeleteRetentionTime: time.Minute}
	switch h.rng.IntN(3) {
	case 0:
		c.CleanupPolicy = log.Delete
	case 1:
		c.CleanupPolicy = log.Compact
	case 2:
		c.CleanupPolicy = log.Compact | log.Delete
	}
	switch h.rng.IntN(3) {
	case 0:
		c.Sync = log.SyncAlways
	case 1:
		c.Sync = log.SyncNever
	case 2:
		c.Sync = log.SyncPeriodic
		c.FlushMessages = int64(1 + h.rng.IntN(5))
		c.FlushInterval = time.Hour
	}
	if h.rng.IntN(3) == 0 {
		c.TimestampType = log.LogAppendTime
	} else {
		c.TimestampType = log.CreateTime
	}
	if h.rng.IntN(3) == 0 {
		c.SegmentTime = time.Duration(1+h.rng.IntN(5)) * time.Minute
	}
	if h.rng.IntN(3) == 0 {
		c.MinCompactionLag = time.Duration(h.rng.IntN(4)) * time.Minute
	}
	if c.Sync == log.SyncPeriodic && h.rng.IntN(2) == 0 {
		c.FlushInterval = time.Duration(1+h.rng.IntN(3)) * time.Minute
	}
	if h.rng.IntN(2) == 0 {
		c.RetentionBytes = int64(500 + h.rng.IntN(2000))
	} else {
		c.RetentionBytes = -1
	}
	if h.rng.IntN(2) == 0 {
		c.RetentionTime = time.Duration(1+h.rng.IntN(10)) * time.Minute
	} else {
		c.RetentionTime = -1
	}
	return c
}

func runOffsetViews(t *testing.T, seed uint64) {
	ctx := context.Background()
	h := &offsetViews{t: t, rng: rand.New(rand.NewPCG(seed, 7)), mem: vfs.NewMem(), clock: &maintRaceClock{},
		minLS: map[int32]int64{}, minHW: map[int32]int64{}, mode: int(seed % 3)}
	if m := os.Getenv("RUNNEL_OFFSET_VIEWS_MODE"); m != "" {
		h.mode, _ = strconv.Atoi(m)
	}
	if h.mode == 2 {
		h.dir = testkit.FastTempDir(t) // its fsyncs were most of a seed's time on a disk
	}
	h.clock.ms.Store(1_700_000_000_000)
	h.open()
	defer func() { h.b.Close() }()
	h.cfg = h.randomConfig()
	h.parts = 1
	h.logf("create %+v", h.cfg)
	if err := h.b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: h.cfg}); err != nil {
		h.fatalf("create: %v", err)
	}
	defer func() {
		if h.cons != nil {
			h.cons.Close()
		}
	}()
	for step := range 120 {
		h.step(ctx, step)
		h.check(ctx, step)
		h.follow(ctx, step)
	}
	if os.Getenv("RUNNEL_OFFSET_VIEWS_DUMP") != "" {
		t.Logf("trace:\n  %s", strings.Join(h.trace, "\n  "))
	}
}

func (h *offsetViews) step(ctx context.Context, step int) {
	p := int32(h.rng.IntN(int(h.parts)))
	switch k := h.rng.IntN(20); {
	case k < 8:
		n := 1 + h.rng.IntN(4)
		recs := make([]*maintRaceRec, n)
		for i := range recs {
			h.nextID++
			recs[i] = &maintRaceRec{id: h.nextID, key: []byte(fmt.Sprint(h.rng.IntN(4))), value: []byte(strings.Repeat("v", 20))}
			if h.rng.IntN(10) == 0 {
				recs[i].value = nil
			}
		}
		acks := api.AcksAll
		if h.rng.IntN(2) == 0 {
			acks = api.AcksLeader
		}
		ts := h.clock.ms.Load() - h.rng.Int64N(4)*60_000 + h.rng.Int64N(3)
		data := maintRaceEncode(recs, -1, 0, ts, compression.None)
		req := &api.ProduceRequest{Topic: "t", Partition: p, Acks: acks, Batches: data}
		if h.rng.IntN(3) == 0 {
			resp, ack, err := h.b.ProduceAsync(ctx, req)
			h.logf("%d: produceAsync p%d n=%d ts=%d acks=%d -> %+v %v", step, p, n, ts, acks, resp, err)
			if err != nil {
				h.fatalf("produceAsync: %v", err)
			}
			if ack != nil {
				h.acks = append(h.acks, ack)
			}
			return
		}
		before := h.describe(ctx)[p]
		resp, err := h.b.Produce(ctx, req)
		h.logf("%d: produce p%d n=%d ts=%d acks=%d -> %+v %v", step, p, n, ts, acks, resp, err)
		if err != nil {
			h.fatalf("produce: %v", err)
		}
		after := h.describe(ctx)[p]
		if resp.BaseOffset != before.LogEndOffset || after.LogEndOffset != resp.BaseOffset+int64(n) || resp.LogStartOffset != before.LogStartOffset {
			h.fatalf("produce answered %+v: before %+v, after %+v", resp, before, after)
		}
		if after.HighWatermark != after.LogEndOffset && len(h.acks) == 0 {
			h.fatalf("produce acknowledged, nothing pending, yet hw %d < leo %d", after.HighWatermark, after.LogEndOffset)
		}
	case k < 9 && len(h.acks) > 0:
		for _, a := range h.acks {
			err := a.Wait(ctx)
			h.logf("%d: ack wait -> %v", step, err)
		}
		h.acks = nil
	case k < 10:
		info := h.describe(ctx)[p]
		off := info.LogStartOffset + h.rng.Int64N(info.HighWatermark-info.LogStartOffset+2)
		if h.rng.IntN(4) == 0 {
			off = -1
		}
		ls, err := h.b.DeleteRecords(ctx, "t", p, off)
		h.logf("%d: deleteRecords p%d %d (ls=%d hw=%d leo=%d) -> %d %v", step, p, off, info.LogStartOffset, info.HighWatermark, info.LogEndOffset, ls, err)
		if h.cfg.CleanupPolicy&log.Delete == 0 {
			if err == nil {
				h.fatalf("DeleteRecords on a compact-only topic succeeded")
			}
			return
		}
		switch {
		case off > info.HighWatermark:
			if !errors.Is(err, log.ErrOffsetOutOfRange) {
				h.fatalf("DeleteRecords past HW: %v, want out of range", err)
			}
		case err != nil:
			h.fatalf("DeleteRecords: %v", err)
		case off == -1 && ls != info.HighWatermark:
			h.fatalf("DeleteRecords(-1) -> %d, want HW %d", ls, info.HighWatermark)
		case off >= 0 && ls != max(off, info.LogStartOffset):
			h.fatalf("DeleteRecords(%d) -> %d", off, ls)
		}
	case k < 13:
		d := time.Duration(h.rng.IntN(6)) * time.Minute
		h.clock.ms.Add(d.Milliseconds())
		err := h.b.Maintain(ctx)
		h.logf("%d: +%v maintain -> %v", step, d, err)
		if err != nil {
			h.fatalf("maintain: %v", err)
		}
	case k < 15:
		old := h.cfg
		h.cfg = h.randomConfig()
		if old.CleanupPolicy&log.Delete != 0 && h.cfg.CleanupPolicy&log.Delete == 0 && h.rng.IntN(2) == 0 {
			h.cfg.CleanupPolicy |= log.Delete
		}
		err := h.b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { *c = h.cfg })
		h.logf("%d: config %+v -> %v", step, h.cfg, err)
		if err != nil {
			h.fatalf("config: %v", err)
		}
	case k < 17 && h.mode != 1:
		h.logf("%d: restart", step)
		h.acks = nil
		h.dropConsumer()
		if err := h.b.Close(); err != nil {
			h.fatalf("close: %v", err)
		}
		h.open()
	case k < 18 && h.mode == 0:
		// A crash in the middle of a DeleteRecords, a maintenance run or
		// a config change: file-system ops fail from a random one on.
		info := h.describe(ctx)[p]
		h.failAt.Store(1 + h.rng.Int64N(12))
		floor := int64(-1)
		var err error
		var what string
		switch h.rng.IntN(3) {
		case 0:
			off := info.LogStartOffset + h.rng.Int64N(info.HighWatermark-info.LogStartOffset+1)
			what = fmt.Sprintf("deleteRecords p%d %d", p, off)
			var ls int64
			ls, err = h.b.DeleteRecords(ctx, "t", p, off)
			if err == nil {
				floor = ls
			}
		case 1:
			h.clock.ms.Add(int64(h.rng.IntN(6)) * 60_000)
			what = "maintain"
			err = h.b.Maintain(ctx)
		case 2:
			h.cfg = h.randomConfig()
			what = fmt.Sprintf("config %+v", h.cfg)
			err = h.b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { *c = h.cfg })
		}
		tail := vfs.TailMode(h.rng.IntN(4))
		h.logf("%d: midcrash %s -> %v (failAt %d); crash %v", step, what, err, h.failAt.Load(), tail)
		clone := h.mem.CrashClone(vfs.CrashOptions{Tail: tail, Reorder: h.rng.IntN(2) == 0, Rand: rand.New(rand.NewPCG(uint64(step), 5))})
		h.dropConsumer()
		h.b.Close()
		h.acks = nil
		h.mem = clone
		h.open()
		info2, derr := h.b.DescribeTopic(ctx, "t")
		if derr == nil {
			h.cfg = info2.Config.Config
		}
		h.minHW = map[int32]int64{}
		// What was observed but not acknowledged durable may go: only a
		// successful DeleteRecords's start is kept as a floor.
		h.minLS = map[int32]int64{}
		if floor >= 0 {
			h.minLS[p] = floor
		}
	case k < 19 && h.mode == 0:
		tail := vfs.TailMode(h.rng.IntN(4))
		reorder := h.rng.IntN(2) == 0
		h.logf("%d: crash %v reorder=%v", step, tail, reorder)
		clone := h.mem.CrashClone(vfs.CrashOptions{Tail: tail, Reorder: reorder, Rand: rand.New(rand.NewPCG(uint64(step), 3))})
		h.dropConsumer()
		h.b.Close()
		h.acks = nil
		h.mem = clone
		h.open()
		// A crash may lose what was not synced: the HW floor holds only
		// under SyncAlways, as it was before the crash.
		if h.cfg.Sync != log.SyncAlways {
			h.minHW = map[int32]int64{}
		}
	default:
		if h.parts < 4 {
			err := h.b.CreatePartitions(ctx, "t", int(h.parts)+1)
			h.logf("%d: createPartitions %d -> %v", step, h.parts+1, err)
			if err != nil {
				h.fatalf("createPartitions: %v", err)
			}
			h.parts++
		}
	}
}

func (h *offsetViews) describe(ctx context.Context) []runnel.PartitionInfo {
	info, err := h.b.DescribeTopic(ctx, "t")
	if err != nil {
		h.fatalf("describe: %v", err)
	}
	if int32(len(info.Partitions)) != h.parts {
		h.fatalf("describe: %d partitions, want %d", len(info.Partitions), h.parts)
	}
	return info.Partitions
}

func (h *offsetViews) fetch(ctx context.Context, p int32, off int64) api.FetchedPartition {
	resp, err := h.b.Fetch(ctx, &api.FetchRequest{MaxWait: time.Millisecond, Partitions: []api.FetchPartition{{Topic: "t", Partition: p, Offset: off}}})
	if err != nil {
		h.fatalf("fetch p%d@%d: %v", p, off, err)
	}
	return resp.Partitions[0]
}

func (h *offsetViews) check(ctx context.Context, step int) {
	h.t.Helper()
	parts := h.describe(ctx)
	for _, pi := range parts {
		p := pi.Partition
		ls, hw, leo := pi.LogStartOffset, pi.HighWatermark, pi.LogEndOffset
		where := fmt.Sprintf("step %d p%d (ls=%d hw=%d leo=%d)", step, p, ls, hw, leo)
		if !(0 <= ls && ls <= hw && hw <= leo) {
			h.fatalf("%s: describe breaks ls <= hw <= leo", where)
		}
		if ls < h.minLS[p] {
			h.fatalf("%s: log start went back from %d", where, h.minLS[p])
		}
		h.minLS[p] = ls
		if h.cfg.Sync == log.SyncAlways {
			if hw < h.minHW[p] {
				h.fatalf("%s: durable HW went back from %d", where, h.minHW[p])
			}
			h.minHW[p] = hw
		}
		for _, c := range []struct {
			ts   int64
			want int64
		}{{api.Earliest, ls}, {api.Latest, hw}, {-4, ls}} {
			lo, err := h.b.ListOffset(ctx, "t", p, c.ts)
			if err != nil || lo.Offset != c.want {
				h.fatalf("%s: ListOffset(%d) = %d %v, want %d", where, c.ts, lo.Offset, err, c.want)
			}
		}
		lo, err := h.b.ListOffset(ctx, "t", p, 0)
		if err != nil || lo.Offset < ls || lo.Offset > hw {
			h.fatalf("%s: ListOffset(0) = %+v %v", where, lo, err)
		}
		// A fetch at the HW answers nothing, and the same offsets.
		f := h.fetch(ctx, p, hw)
		if f.Err != nil || len(f.Records) != 0 || f.HighWatermark != hw || f.LogStartOffset != ls {
			h.fatalf("%s: fetch at hw: err=%v %d bytes hw=%d ls=%d", where, f.Err, len(f.Records), f.HighWatermark, f.LogStartOffset)
		}
		for _, at := range []int64{hw + 1, leo} {
			if at > leo || leo == hw {
				continue
			}
			f := h.fetch(ctx, p, at)
			if f.Err != nil || len(f.Records) != 0 {
				h.fatalf("%s: fetch at %d in (hw, leo]: err=%v %d bytes", where, at, f.Err, len(f.Records))
			}
		}
		if f := h.fetch(ctx, p, leo+1); !errors.Is(f.Err, log.ErrOffsetOutOfRange) {
			h.fatalf("%s: fetch past leo: err=%v %d bytes", where, f.Err, len(f.Records))
		}
		if ls > 0 {
			if f := h.fetch(ctx, p, ls-1); !errors.Is(f.Err, log.ErrOffsetOutOfRange) {
				h.fatalf("%s: fetch below ls: err=%v %d bytes", where, f.Err, len(f.Records))
			}
		}
		// Read everything from the log start: no batch wholly below it,
		// nothing at or past the HW, offsets increasing.
		last := int64(-1)
		type rec struct{ off, ts int64 }
		var recs []rec
		for off := ls; off < hw; {
			f := h.fetch(ctx, p, off)
			if f.Err != nil {
				h.fatalf("%s: fetch at %d: %v", where, off, f.Err)
			}
			if f.HighWatermark != hw || f.LogStartOffset != ls {
				h.fatalf("%s: fetch at %d says hw=%d ls=%d", where, off, f.HighWatermark, f.LogStartOffset)
			}
			next := off
			for bt, err := range record.Batches(f.Records) {
				if err != nil {
					h.fatalf("%s: batches: %v", where, err)
				}
				if bt.LastOffset() < ls || bt.LastOffset() < off {
					h.fatalf("%s: fetch at %d served batch [%d, %d]", where, off, bt.BaseOffset(), bt.LastOffset())
				}
				for r, err := range bt.Records() {
					if err != nil {
						h.fatalf("%s: records: %v", where, err)
					}
					if r.Offset >= hw {
						h.fatalf("%s: served offset %d at or past hw", where, r.Offset)
					}
					if r.Offset >= off && r.Offset >= ls {
						if r.Offset <= last {
							h.fatalf("%s: offset %d after %d", where, r.Offset, last)
						}
						last = r.Offset
						recs = append(recs, rec{r.Offset, r.Timestamp.UnixMilli()})
					}
				}
				next = bt.NextOffset()
			}
			if next == off {
				h.fatalf("%s: fetch at %d < hw answered nothing", where, off)
			}
			off = next
		}
		// ListOffset by max timestamp and by time, against what was read.
		maxTS, maxOff := int64(-1), hw
		for _, r := range recs {
			if r.ts > maxTS {
				maxTS, maxOff = r.ts, r.off
			}
		}
		lo, err = h.b.ListOffset(ctx, "t", p, api.MaxTimestamp)
		if err != nil || lo.Offset != maxOff || lo.Timestamp != maxTS {
			h.fatalf("%s: ListOffset(-3) = %+v %v, want %d ts %d (records %v)", where, lo, err, maxOff, maxTS, recs)
		}
		for range 3 {
			at := h.clock.ms.Load() - h.rng.Int64N(6)*60_000 + h.rng.Int64N(5) - 2
			wantOff, wantTS := hw, int64(-1)
			for _, r := range recs {
				if r.ts >= at {
					wantOff, wantTS = r.off, r.ts
					break
				}
			}
			lo, err := h.b.ListOffset(ctx, "t", p, at)
			if err != nil || lo.Offset != wantOff || lo.Timestamp != wantTS {
				h.fatalf("%s: ListOffset(%d) = %+v %v, want %d ts %d (records %v)", where, at, lo, err, wantOff, wantTS, recs)
			}
		}
		// A fetch at any offset in [ls, hw) answers the records from there.
		for range 3 {
			if hw == ls {
				break
			}
			off := ls + h.rng.Int64N(hw-ls)
			// Follow the batches (an empty one the cleaner kept moves the
			// position on, as Kafka's consumer takes it) to the first record.
			var first int64 = -1
			var f api.FetchedPartition
			for at := off; first < 0 && at < hw; {
				f = h.fetch(ctx, p, at)
				if f.Err != nil {
					h.fatalf("%s: fetch at %d (from %d): %v", where, at, off, f.Err)
				}
				next := at
				for bt, err := range record.Batches(f.Records) {
					if err != nil {
						h.fatalf("%s: batches: %v", where, err)
					}
					for r := range bt.Records() {
						if r.Offset >= off {
							first = r.Offset
							break
						}
					}
					next = bt.NextOffset()
					if first >= 0 {
						break
					}
				}
				if next == at {
					h.fatalf("%s: fetch at %d < hw answered nothing", where, at)
				}
				at = next
			}
			want := int64(-1)
			for _, r := range recs {
				if r.off >= off {
					want = r.off
					break
				}
			}
			if first != want {
				var bs []string
				for bt := range record.Batches(f.Records) {
					var rs []string
					for r, err := range bt.Records() {
						if err != nil {
							rs = append(rs, err.Error())
							break
						}
						rs = append(rs, fmt.Sprint(r.Offset))
					}
					bs = append(bs, fmt.Sprintf("[%d,%d n=%d pid=%d attr=%x %v]", bt.BaseOffset(), bt.LastOffset(), bt.NumRecords(), bt.ProducerID(), bt.Attributes(), rs))
				}
				h.fatalf("%s: fetch at %d: first record %d, want %d; batches %v; recs %v", where, off, first, want, bs, recs)
			}
		}
	}
	// A consumer from the start: its position reaches the HW, its lag 0;
	// one at the log start of a partition with records to read has lag
	// HW - log start after a fetch.
	if step%5 == 0 {
		c, err := consumer.New(h.b, consumer.FetchMaxWait(time.Millisecond))
		if err != nil {
			h.fatalf("consumer: %v", err)
		}
		defer c.Close()
		for _, pi := range parts {
			if err := c.Assign("t", pi.Partition, consumer.Start()); err != nil {
				h.fatalf("assign: %v", err)
			}
		}
		// Until it has caught up: a count of polls (200 of 50 ms, as it
		// was) is a time a loaded machine under -race may not do it in.
		for deadline := time.Now().Add(testkit.HangGuard); time.Now().Before(deadline); {
			pctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			_, err := c.Poll(pctx)
			cancel()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				h.fatalf("poll: %v", err)
			}
			done := true
			for _, pi := range parts {
				pos, _ := c.Position("t", pi.Partition)
				if pos < pi.LogStartOffset {
					h.fatalf("step %d p%d: position %d below ls %d", step, pi.Partition, pos, pi.LogStartOffset)
				}
				if pos != pi.HighWatermark {
					done = false
				}
			}
			if done {
				break
			}
		}
		for _, pi := range parts {
			pos, _ := c.Position("t", pi.Partition)
			lag, ok := c.Lag("t", pi.Partition)
			if pos != pi.HighWatermark || !ok || lag != 0 {
				h.fatalf("step %d p%d: consumer position %d lag %d %v, hw %d", step, pi.Partition, pos, lag, ok, pi.HighWatermark)
			}
		}
	}
}

func (h *offsetViews) dropConsumer() {
	if h.cons != nil {
		h.cons.Close()
		h.cons = nil
	}
}

// follow polls a consumer kept across steps (made again after a restart
// or crash), and checks its position and lag against the offsets at rest.
func (h *offsetViews) follow(ctx context.Context, step int) {
	if h.cons == nil {
		c, err := consumer.New(h.b, consumer.FetchMaxWait(time.Millisecond), consumer.RetryBackoff(time.Millisecond))
		if err != nil {
			h.fatalf("consumer: %v", err)
		}
		h.cons, h.cparts = c, 0
	}
	for ; h.cparts < h.parts; h.cparts++ {
		if err := h.cons.Assign("t", h.cparts, consumer.Start()); err != nil {
			h.fatalf("assign: %v", err)
		}
	}
	for range 1 + h.rng.IntN(3) {
		pctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		_, err := h.cons.Poll(pctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			h.fatalf("step %d: poll: %v", step, err)
		}
	}
	for _, pi := range h.describe(ctx) {
		pos, ok := h.cons.Position("t", pi.Partition)
		lag, lok := h.cons.Lag("t", pi.Partition)
		h.logf("%d: consumer p%d pos=%d %v lag=%d %v (ls=%d hw=%d leo=%d)", step, pi.Partition, pos, ok, lag, lok, pi.LogStartOffset, pi.HighWatermark, pi.LogEndOffset)
		if ok && pos > pi.HighWatermark {
			h.fatalf("step %d p%d: consumer position %d past hw %d", step, pi.Partition, pos, pi.HighWatermark)
		}
		if lok && (lag < 0 || !ok || lag > pi.HighWatermark-pos) {
			h.fatalf("step %d p%d: consumer lag %d at position %d, hw %d", step, pi.Partition, lag, pos, pi.HighWatermark)
		}
	}
}
