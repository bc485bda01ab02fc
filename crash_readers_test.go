package runnel

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestCrashReadersSee checks the promise docs/details.md's `log` section
// makes to readers — "That rewrite cuts nothing a consumer read and
// hands no offset out again" — and the high watermark's durability per sync policy, by recording
// what readers saw before a power cut and checking it after. The other
// crash tests check what producers were acknowledged; this one checks
// what fetches, ListOffset latest and DescribeTopic reported.
//
// Producers (acks=all, acks=1, an idempotent one), a fetching reader, an
// observer of the high watermarks and an admin (AlterTopicConfig reopens,
// DeleteRecords, retention, compaction through Maintain, a clean Close and
// Open of the broker, which rewrites a fenced log's tail) run concurrently
// on a delete topic and a compacted one, under one sync policy, or with
// the delete topic's changed by each config change. Now and then one
// fsync fails (of a segment, the fence and the rewrite path, or of any
// file), and now and then the disk dies in the Open after it. The disk
// dies at file-system operation k; the broker is reopened on the crash
// clone of the in-memory FS, and then
//
//   - a SyncAlways log's high watermark is its durable offset: the log end
//     is at or past every high watermark a call served by one reported,
//     and every record a reader saw below one, at or past the log start,
//     is there at its offset, the same (compaction may have removed it,
//     never replaced it);
//   - under SyncPeriodic and SyncNever the high watermark is the log end,
//     which a power cut may take back (see log.SyncPeriodic): the log end
//     is at or past every durable offset the log reported, and every
//     record a reader saw below the recovered log end and at or past its
//     start is there, the same (a power cut takes a suffix, never a record
//     in the middle nor one swapped for another);
//   - the log start is at most the largest DeleteRecords sent, or the log
//     end after a Maintain (retention).
//
// Before the crash, two reads of an offset must agree, and a record is
// never seen at or past the high watermark its fetch reported.
//
// go test runs 6 seeds from 1 (3 in -short); RUNNEL_CRASH_READERS=N
// runs N seeds from one picked from the clock, RUNNEL_CRASH_READERS_BASE
// sets the first (testkit.Seeds); the goroutines interleave as the
// scheduler has them, so a seed replays the scenario, not its order.
// Until 2026-12-07 a long run started at seed 1 unless told otherwise,
// and so mostly ran again the seeds of the last.
func TestCrashReadersSee(t *testing.T) {
	testkit.Seeds(t, "RUNNEL_CRASH_READERS", 6, 3, runReadersCrash)
}

// seenRec is what a reader saw of a record.
type seenRec struct {
	key, value string
	ts         int64
}

// readersModel is what the calls before the crash reported, per
// partition.
type readersModel struct {
	mu   sync.Mutex
	seen map[api.TopicPartition]map[int64]seenRec
	hw   map[api.TopicPartition]int64 // the largest high watermark reported
	// durHW is the largest high watermark reported by a SyncAlways log:
	// a durable offset.
	durHW   map[api.TopicPartition]int64
	durable map[api.TopicPartition]int64 // the largest durable offset the log reported
	// startCap is an offset the log start may have been moved to: the
	// targets of DeleteRecords (sent, whether or not it succeeded), and
	// the log end after each Maintain (retention moves the start to a
	// segment's base below the high watermark).
	startCap map[api.TopicPartition]int64
	errs     []string // contradictions seen before the crash
}

func (m *readersModel) fail(format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.errs = append(m.errs, fmt.Sprintf(format, args...))
}

// sawHW records a high watermark of tp reported by a call, by a SyncAlways
// log when durable.
func (m *readersModel) sawHW(tp api.TopicPartition, hw int64, durable bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hw[tp] = max(m.hw[tp], hw)
	if durable {
		m.durHW[tp] = max(m.durHW[tp], hw)
	}
}

// alwaysLog returns the log of tp on b if it is a SyncAlways one, else nil.
func alwaysLog(b *Broker, tp api.TopicPartition) *log.Log {
	p, err := b.partition(context.Background(), tp.Topic, tp.Partition, false)
	if err != nil {
		return nil
	}
	if l := p.Log(); l.Config().Sync == log.SyncAlways {
		return l
	}
	return nil
}

// servedByAlways calls f, and reports whether a SyncAlways log of tp
// served the whole call: the partition's log before and after it.
func servedByAlways(b *Broker, tp api.TopicPartition, f func()) bool {
	before := alwaysLog(b, tp)
	f()
	return before != nil && alwaysLog(b, tp) == before
}

func (m *readersModel) mayStart(tp api.TopicPartition, off int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.startCap[tp] = max(m.startCap[tp], off)
}

func (m *readersModel) sawDurable(tp api.TopicPartition, d int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.durable[tp] = max(m.durable[tp], d)
}

// sawRecords records the records of a fetch of tp that reported hw (by
// a SyncAlways log when durable), and checks them against what was seen
// before.
func (m *readersModel) sawRecords(tp api.TopicPartition, hw int64, durable bool, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hw[tp] = max(m.hw[tp], hw)
	if durable {
		m.durHW[tp] = max(m.durHW[tp], hw)
	}
	seen := m.seen[tp]
	if seen == nil {
		seen = map[int64]seenRec{}
		m.seen[tp] = seen
	}
	for bt, err := range record.Batches(data) {
		if err != nil {
			m.errs = append(m.errs, fmt.Sprintf("%v: a fetch answered bad bytes: %v", tp, err))
			return
		}
		for r, err := range bt.Records() {
			if err != nil {
				m.errs = append(m.errs, fmt.Sprintf("%v: a fetch answered a bad record: %v", tp, err))
				return
			}
			if r.Offset >= hw {
				m.errs = append(m.errs, fmt.Sprintf("%v: record %d fetched at or past the high watermark %d", tp, r.Offset, hw))
			}
			s := seenRec{string(r.Key), string(r.Value), r.Timestamp.UnixMilli()}
			if old, ok := seen[r.Offset]; ok && old != s {
				m.errs = append(m.errs, fmt.Sprintf("%v: offset %d read as %+v, then as %+v", tp, r.Offset, old, s))
			}
			seen[r.Offset] = s
		}
	}
}

// readersBroker is the broker of a run, which the admin may close and
// open again: calls hold mu for reading.
type readersBroker struct {
	mu  sync.RWMutex
	b   *Broker
	cfg Config
}

func (rb *readersBroker) do(f func(b *Broker)) {
	rb.mu.RLock()
	defer rb.mu.RUnlock()
	if rb.b != nil {
		f(rb.b)
	}
}

func runReadersCrash(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	ctx := context.Background()
	policies := []log.SyncPolicy{log.SyncAlways, log.SyncPeriodic, log.SyncNever}
	// SyncDefault: each config change of t picks one of the others.
	policy := append(policies, log.SyncDefault)[rng.IntN(len(policies)+1)]
	pick := func(rng *rand.Rand) log.SyncPolicy {
		if policy == log.SyncDefault {
			return policies[rng.IntN(len(policies))]
		}
		return policy
	}
	tails := []vfs.TailMode{vfs.TailDrop, vfs.TailTorn, vfs.TailZeros, vfs.TailGarbage}
	tail := tails[rng.IntN(len(tails))]
	reorder := rng.IntN(2) == 0
	var dieAt atomic.Int64
	dieAt.Store(int64(200 + rng.IntN(30000)))
	failSync := int64(0) // the .log fsync that fails, 0 for none
	if rng.IntN(2) == 0 {
		failSync = int64(1 + rng.IntN(60))
	}
	// inRewrite: the disk dies instead within the first Open after the
	// failed fsync, that many operations in: in its rewrite of the tail.
	inRewrite := int64(0)
	if failSync > 0 && rng.IntN(3) == 0 {
		inRewrite = int64(1 + rng.IntN(80))
		dieAt.Store(1 << 40)
	}
	// anyFile: the fsync that fails is the failSync-th of any file (an
	// index, a checkpoint, a snapshot, the topic's metadata), not of a
	// segment's .log.
	anyFile := rng.IntN(2) == 0
	t.Logf("policy %s, tail %s, reorder %v, the disk dies at operation %d after the topics' creation (%d into the Open after the failed fsync), fsync %d of a .log (any file: %v) fails", policy, tail, reorder, dieAt.Load(), inRewrite, failSync, anyFile)

	mem := vfs.NewMem()
	var ops, syncs atomic.Int64
	var failedSync atomic.Pointer[string]
	var dead, live atomic.Bool // live: the topics are created, the faults armed
	fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if !live.Load() {
			return nil
		}
		if ops.Add(1) >= dieAt.Load() {
			dead.Store(true)
			return vfs.ErrInjected
		}
		if op == vfs.OpSync && (anyFile || strings.HasSuffix(name, ".log")) && syncs.Add(1) == failSync {
			failedSync.Store(&name)
			return vfs.ErrInjected
		}
		return nil
	}))
	base := log.Config{Sync: pick(rng), SegmentBytes: int64(400 + rng.IntN(1200)), FlushMessages: int64(1 + rng.IntN(8))}
	compacted := base
	compacted.CleanupPolicy = log.Compact | log.Delete
	compacted.MinCleanableDirtyRatio = 0.01
	rb := &readersBroker{cfg: Config{Dir: "/data", FS: fsys, MaintenanceInterval: time.Hour}}
	b, err := Open(rb.cfg)
	require.NoError(t, err)
	rb.b = b
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2, Config: base}))
	require.NoError(t, b.CreateTopic(ctx, "c", log.TopicConfig{Partitions: 1, Config: compacted}))
	live.Store(true)
	tps := []api.TopicPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1}, {Topic: "c", Partition: 0}}
	m := &readersModel{seen: map[api.TopicPartition]map[int64]seenRec{}, hw: map[api.TopicPartition]int64{}, durHW: map[api.TopicPartition]int64{}, durable: map[api.TopicPartition]int64{}, startCap: map[api.TopicPartition]int64{}}

	const steps = 400
	var restarts atomic.Int32
	var wg sync.WaitGroup
	worker := func(id uint64, f func(rng *rand.Rand, i int)) {
		wrng := rand.New(rand.NewPCG(seed, id))
		wg.Go(func() {
			for i := 0; i < steps && !dead.Load(); i++ {
				f(wrng, i)
			}
		})
	}
	payload := func(rng *rand.Rand, tp api.TopicPartition, i int) (key, value string) {
		key = fmt.Sprintf("k%d", rng.IntN(6))
		return key, fmt.Sprintf("%v #%d %s", tp, i, strings.Repeat("x", rng.IntN(60)))
	}
	encode := func(rng *rand.Rand, tp api.TopicPartition, i int, pid int64, seq int32, n int) []byte {
		var bl record.Builder
		bl.Reset()
		if pid >= 0 {
			bl.SetProducer(pid, 0, seq)
		}
		for j := range n {
			k, v := payload(rng, tp, i*10+j)
			bl.Append(time.Now().UnixMilli(), []byte(k), []byte(v), nil)
		}
		data, err := bl.AppendTo(nil, compression.None)
		if err != nil {
			m.fail("encode: %v", err)
		}
		return data
	}
	for w, acks := range []api.Acks{api.AcksAll, api.AcksLeader} {
		worker(uint64(10+w), func(rng *rand.Rand, i int) {
			tp := tps[rng.IntN(len(tps))]
			data := encode(rng, tp, i, -1, 0, 1+rng.IntN(3))
			rb.do(func(b *Broker) {
				b.Produce(ctx, &api.ProduceRequest{Topic: tp.Topic, Partition: tp.Partition, Acks: acks, Batches: data})
			})
		})
	}
	// The idempotent producer, on t-0: a batch it fails on is sent again
	// (a retry of the same sequence) until a new id is needed.
	pid, seq := int64(-1), int32(0)
	var pending []byte
	retried := false
	worker(20, func(rng *rand.Rand, i int) {
		rb.do(func(b *Broker) {
			if pid < 0 {
				id, _, err := b.InitProducerID(ctx)
				if err != nil {
					return
				}
				pid, seq, pending = id, 0, nil
			}
			if pending == nil {
				pending = encode(rng, tps[0], i, pid, seq, 2)
			}
			_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: pending})
			if err == nil {
				seq += 2
				pending = nil
			} else if retried {
				pid = -1
			}
			retried = err != nil
		})
	})
	// The reader: follows each partition from its log start, and now and
	// then fetches from a random offset below what it saw.
	pos := map[api.TopicPartition]int64{}
	worker(30, func(rng *rand.Rand, i int) {
		tp := tps[rng.IntN(len(tps))]
		off := pos[tp]
		if rng.IntN(5) == 0 {
			m.mu.Lock()
			off = rng.Int64N(m.hw[tp] + 1)
			m.mu.Unlock()
		}
		rb.do(func(b *Broker) {
			var resp api.FetchResponse
			var err error
			durable := servedByAlways(b, tp, func() {
				resp, err = b.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 16, Partitions: []api.FetchPartition{{Topic: tp.Topic, Partition: tp.Partition, Offset: off, MaxBytes: 1 << 14}}})
			})
			if err != nil {
				return
			}
			fp := resp.Partitions[0]
			if errors.Is(fp.Err, log.ErrOffsetOutOfRange) {
				pos[tp] = fp.LogStartOffset
				return
			}
			if fp.Err != nil {
				return
			}
			m.sawRecords(tp, fp.HighWatermark, durable, fp.Records)
			for bt, err := range record.Batches(fp.Records) {
				if err == nil {
					pos[tp] = max(pos[tp], bt.NextOffset())
				}
			}
		})
	})
	// The observer: ListOffset latest, DescribeTopic and the logs'
	// durable offsets.
	worker(40, func(rng *rand.Rand, i int) {
		tp := tps[rng.IntN(len(tps))]
		rb.do(func(b *Broker) {
			if p, err := b.partition(ctx, tp.Topic, tp.Partition, false); err == nil {
				m.sawDurable(tp, p.Log().DurableOffset())
			}
			var lo api.ListedOffset
			var err error
			durable := servedByAlways(b, tp, func() { lo, err = b.ListOffset(ctx, tp.Topic, tp.Partition, api.Latest) })
			if err == nil {
				m.sawHW(tp, lo.Offset, durable)
			}
			var info TopicInfo
			durable = servedByAlways(b, tp, func() { info, err = b.DescribeTopic(ctx, tp.Topic) })
			if err == nil {
				for _, p := range info.Partitions {
					if p.Partition == tp.Partition {
						m.sawHW(tp, p.HighWatermark, durable)
					}
				}
			}
		})
	})
	// The admin.
	worker(50, func(rng *rand.Rand, i int) {
		switch rng.IntN(10) {
		case 0, 1:
			cfg := base
			cfg.Sync = pick(rng)
			if rng.IntN(2) == 0 {
				cfg.RetentionBytes = int64(500 + rng.IntN(3000))
			}
			cfg.MaxMessageBytes = 10000 + rng.IntN(1000)
			rb.do(func(b *Broker) { b.AlterTopicConfig(ctx, "t", cfg) })
		case 2:
			cfg := compacted
			cfg.MaxMessageBytes = 10000 + rng.IntN(1000)
			rb.do(func(b *Broker) { b.AlterTopicConfig(ctx, "c", cfg) })
		case 3:
			tp := tps[rng.IntN(2)]
			rb.do(func(b *Broker) {
				start, err1 := b.ListOffset(ctx, tp.Topic, tp.Partition, api.Earliest)
				hw, err2 := b.ListOffset(ctx, tp.Topic, tp.Partition, api.Latest)
				if err1 == nil && err2 == nil && hw.Offset > start.Offset {
					to := start.Offset + rng.Int64N(min(hw.Offset-start.Offset, 10)+1)
					m.mayStart(tp, to)
					b.DeleteRecords(ctx, tp.Topic, tp.Partition, to)
				}
			})
		case 4, 5, 6, 7:
			rb.do(func(b *Broker) {
				b.Maintain(ctx)
				for _, tp := range tps {
					if p, err := b.partition(ctx, tp.Topic, tp.Partition, false); err == nil {
						m.mayStart(tp, p.Log().LogEndOffset())
					}
				}
			})
		case 8:
			// A clean restart, which rewrites a fenced log's tail.
			rb.mu.Lock()
			defer rb.mu.Unlock()
			if rb.b == nil {
				return
			}
			rb.b.Close()
			restarts.Add(1)
			if inRewrite > 0 && syncs.Load() >= failSync {
				dieAt.Store(ops.Load() + inRewrite)
				inRewrite = 0
			}
			b, err := Open(rb.cfg)
			if err != nil {
				rb.b = nil // the disk is dead
				return
			}
			rb.b = b
		}
	})
	wg.Wait()
	require.Empty(t, m.errs, "before the crash")
	t.Logf("%d file-system operations, dead %v, the fsync that failed %q, %d restarts", ops.Load(), dead.Load(), deref(failedSync.Load()), restarts.Load())
	if rb.b != nil {
		// The broker is left as the crash finds it: its close after the
		// clone only frees its resources.
		defer rb.b.Close()
	}
	clone := mem.CrashClone(vfs.CrashOptions{Tail: tail, Reorder: reorder, Rand: rand.New(rand.NewPCG(seed, 7))})
	b2, err := Open(Config{Dir: "/data", FS: clone, MaintenanceInterval: time.Hour})
	require.NoError(t, err, "open after the crash")
	defer func() { require.NoError(t, b2.Close()) }()
	for _, tp := range tps {
		start, end, got := readAll(t, b2, tp)
		seen := m.seen[tp]
		t.Logf("%v: %d records read, high watermark %d (%d of a SyncAlways log), durable %d before; log %d to %d after", tp, len(seen), m.hw[tp], m.durHW[tp], m.durable[tp], start, end)
		require.GreaterOrEqual(t, end, m.durHW[tp], "%v: the log end after the crash is below a high watermark a SyncAlways log reported before it", tp)
		require.LessOrEqual(t, start, m.startCap[tp], "%v: the log start after the crash is past any DeleteRecords or retention before it", tp)
		require.GreaterOrEqual(t, end, m.durable[tp], "%v: the log end after the crash is below a durable offset the log reported", tp)
		for off, s := range seen {
			if off < start || off >= end {
				continue // deleted, or lost past the durable offsets (checked above)
			}
			g, ok := got[off]
			if !ok {
				require.Equal(t, "c", tp.Topic, "%v: record %d read before the crash is missing below the log end %d", tp, off, end)
				continue
			}
			require.Equal(t, s, g, "%v: record %d read before the crash is another after it", tp, off)
		}
	}
}

// readAll reads partition tp of b whole: its log start, its high
// watermark (the log end, after a reopen) and its records by offset.
func readAll(t *testing.T, b *Broker, tp api.TopicPartition) (start, end int64, recs map[int64]seenRec) {
	t.Helper()
	ctx := context.Background()
	info, err := b.DescribeTopic(ctx, tp.Topic)
	require.NoError(t, err)
	pi := info.Partitions[tp.Partition]
	require.Equal(t, pi.LogEndOffset, pi.HighWatermark, "%v: everything is durable after a reopen", tp)
	recs = map[int64]seenRec{}
	next := pi.LogStartOffset
	for next < pi.HighWatermark {
		resp, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{{Topic: tp.Topic, Partition: tp.Partition, Offset: next, MaxBytes: 1 << 20}}})
		require.NoError(t, err)
		fp := resp.Partitions[0]
		require.NoError(t, fp.Err, "%v at %d", tp, next)
		require.NotEmpty(t, fp.Records, "%v at %d: nothing below the high watermark %d", tp, next, pi.HighWatermark)
		for bt, err := range record.Batches(fp.Records) {
			require.NoError(t, err)
			for r, err := range bt.Records() {
				require.NoError(t, err)
				if r.Offset >= next {
					recs[r.Offset] = seenRec{string(r.Key), string(r.Value), r.Timestamp.UnixMilli()}
				}
			}
			next = max(next, bt.NextOffset())
		}
	}
	return pi.LogStartOffset, pi.HighWatermark, recs
}

// deref is *s, or "" for nil.
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
