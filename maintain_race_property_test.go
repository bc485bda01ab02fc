package runnel_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"go.uber.org/goleak"
)

// TestMaintenanceRacesDataPath races log maintenance — the
// broker's own (every millisecond) and Maintain calls, under a fake clock
// that the Maintain goroutine moves by seconds to minutes (retention by
// time and size, segment.ms rolls, compaction with tombstones and delete
// retention in several passes, producer id expiry, checkpoints) — against
// idempotent producers (raw batches with their ids and sequences, sent
// again now and then, and a producer.Producer with five requests in
// flight) and plain ones, each codec; fetchers that long-poll and seek by
// offset, by time, to the start and the end; a consumer.Consumer that
// seeks; DescribeTopic and ListOffset; DeleteRecords; UpdateTopicConfig
// (cleanup policy, retention, segment size and time, timestamp type,
// fsync policy, delete retention); CreatePartitions; and, on a second
// topic, DeleteTopic and CreateTopic again; in memory and on disk. Odd
// seeds close the broker in the middle of it; even ones (and multiples of
// 5) make a third of the partition logs' opens fail, so that config
// changes leave partitions fenced until the maintenance reopens them.
// Topic "m" is never deleted, and a model of it is checked:
//
//   - every error (produce, fetch, admin, maintenance) is a typed one, but
//     the injected ones an admin call or Maintain returns;
//   - a reader sees offsets only go up between its seeks, every record
//     at the offset it was acknowledged at (one whose produce failed
//     anywhere, or nowhere), none that was never sent, and never two
//     records at one offset;
//   - the log start and high watermark a reader sees never go back, and
//     log start ≤ high watermark ≤ log end; ListOffset's earliest and
//     latest lie between two DescribeTopics' around them, and a look-up by
//     time answers a record no older than asked;
//   - a raw batch sent again while its producer id cannot have expired
//     (by the fake clock) is a duplicate at its offset, and a record the
//     producer.Producer delivered so is in the log once;
//   - the Key and Value of records read are unchanged at the end (in
//     memory they are views of the log), after compactions swapped and
//     retention deleted their segments;
//   - at the end, every acknowledged record at or past the log start is
//     there, unless compaction may have removed it (a tombstone older than
//     the shortest delete retention set, or a record with a later one of
//     its key); the log start is past every DeleteRecords answered; and,
//     after a Close and Open, the same (less what the maintenance removed
//     since).
//
// The default run is small; RUNNEL_MAINT_RACE=N runs N seeds on each file
// system (RUNNEL_MAINT_RACE_BASE sets the first; a seed fixes the random
// choices, not the interleaving).
func TestMaintenanceRacesDataPath(t *testing.T) {
	for _, disk := range []bool{false, true} {
		t.Run(fmt.Sprintf("disk=%v", disk), func(t *testing.T) {
			testkit.Seeds(t, "RUNNEL_MAINT_RACE", 2, 1, func(t *testing.T, seed uint64) { runMaintRace(t, disk, seed) })
		})
	}
}

type maintRaceClock struct{ ms atomic.Int64 }

func (c *maintRaceClock) Now() time.Time { return time.UnixMilli(c.ms.Load()) }

// maintRaceRec is one record a producer sent.
type maintRaceRec struct {
	id    int64
	key   []byte
	value []byte // nil: a tombstone
	clock int64  // the fake clock (ms) when it was acknowledged
}

// maintRaceKept is a record a fetcher keeps, to look at its bytes at the end.
type maintRaceKept struct {
	key, value         []byte // the record's own slices
	keyCopy, valueCopy []byte
	part               int32
	offset, id         int64
	valueNil           bool
}

type maintRace struct {
	t     *testing.T
	b     *runnel.Broker
	clock *maintRaceClock
	ctx   context.Context
	id    atomic.Int64

	mu sync.Mutex
	// acked: partition → offset → record, as answered.
	acked map[int32]map[int64]*maintRaceRec
	// doubt: the ids of records whose produce failed (maybe written).
	doubt map[int64]*maintRaceRec
	// seen: partition → offset → the id fetched there.
	seen map[int32]map[int64]int64
	// deleted: partition → the largest offset a DeleteRecords answered.
	deleted map[int32]int64
	kept    []maintRaceKept
	// once: the ids of records a producer.Producer delivered while its id
	// could not expire: the log holds each at most once.
	once map[int64]bool
	// twice: the other ids it delivered, which a retry may have written
	// again after the id expired (as in Kafka).
	twice map[int64]bool
	errs  []string
	// everCompact: a config with compaction was asked for; minDeleteRet:
	// the shortest delete retention asked for.
	everCompact  bool
	minDeleteRet time.Duration
	// faults: reopens fail now and then (a file system error), which the
	// admin calls and Maintain return as they are.
	faults bool
}

// adminErr checks an admin call's or Maintain's error: a typed one, or,
// with faults, an injected one.
func (s *maintRace) adminErr(what string, err error) {
	if s.faults && errors.Is(err, vfs.ErrInjected) {
		return
	}
	s.typed(what, err)
}

func (s *maintRace) errorf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errorfLocked(format, args...)
}

func (s *maintRace) errorfLocked(format string, args ...any) {
	if len(s.errs) < 30 {
		s.errs = append(s.errs, fmt.Sprintf(format, args...))
	}
}

// closedOr reports err unless it is the broker's ErrClosed.
func (s *maintRace) closedOr(err error, what string) {
	if !errors.Is(err, runnel.ErrClosed) {
		s.errorf("%s: %v", what, err)
	}
}

func (s *maintRace) typed(what string, err error) {
	if !adminRaceTyped(err) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		s.errorf("%s: untyped error %v", what, err)
	}
}

const maintRaceTopic = "m"

func runMaintRace(t *testing.T, disk bool, seed uint64) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rng := rand.New(rand.NewPCG(seed, 0x34))
	clock := &maintRaceClock{}
	clock.ms.Store(1_700_000_000_000)
	cfg := runnel.Config{
		MaintenanceInterval:  time.Millisecond,
		ProducerIDExpiration: time.Hour,
		Clock:                clock,
		CleanerMapBytes:      4096, // several passes now and then
	}
	if os.Getenv("RUNNEL_MAINT_RACE_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if disk {
		cfg.Dir = t.TempDir()
	} else {
		cfg.FS, cfg.Dir = vfs.NewMem(), "/r34"
	}
	// Even seeds (and those divisible by 5) fail a third of the listings of "m"'s partition
	// directories while the calls run (the first thing a log's Open
	// reads): a config change's reopen fails then, and the partition
	// answers log.ErrLogFenced until the maintenance (or the next change)
	// opens it again.
	var faulty atomic.Bool
	faults := seed%2 == 0 || seed%5 == 0
	if faults {
		var n atomic.Int64
		fsys := cfg.FS
		if fsys == nil {
			fsys = vfs.OS
		}
		cfg.FS = vfs.WithFaults(fsys, vfs.InjectorFunc(func(op vfs.Op, name string) error {
			if op == vfs.OpList && faulty.Load() && strings.Contains(filepath.Base(name), maintRaceTopic+"-") && n.Add(1)%3 == 0 {
				return vfs.ErrInjected
			}
			return nil
		}))
	}
	b, err := runnel.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s := &maintRace{t: t, b: b, clock: clock, ctx: ctx, faults: faults, acked: map[int32]map[int64]*maintRaceRec{}, doubt: map[int64]*maintRaceRec{},
		seen: map[int32]map[int64]int64{}, once: map[int64]bool{}, twice: map[int64]bool{}, deleted: map[int32]int64{}, minDeleteRet: time.Minute}
	start := log.Config{CleanupPolicy: log.Delete, SegmentBytes: 1024, DeleteRetentionTime: time.Minute, MinCleanableDirtyRatio: 0.01}
	if err := b.CreateTopic(ctx, maintRaceTopic, log.TopicConfig{Partitions: 2, Config: start}); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateTopic(ctx, "d", log.TopicConfig{Partitions: 1}); err != nil {
		t.Fatal(err)
	}

	faulty.Store(faults)
	stop := make(chan struct{})
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	var wg sync.WaitGroup
	for w := range 4 {
		idem := w%2 == 0
		codec := simCodecs[(int(seed)+w)%len(simCodecs)]
		wrng := rand.New(rand.NewPCG(seed, uint64(w)))
		wg.Go(func() { s.writer(wrng, idem, codec, stopped) })
	}
	prng := rand.New(rand.NewPCG(seed, 400))
	wg.Go(func() { s.producer(prng, simCodecs[int(seed)%len(simCodecs)], stopped) })
	for f := range 2 {
		frng := rand.New(rand.NewPCG(seed, uint64(100+f)))
		wg.Go(func() { s.fetcher(frng, stopped) })
	}
	wg.Go(func() { s.describer(stopped) })
	crng := rand.New(rand.NewPCG(seed, 300))
	wg.Go(func() { s.consume(crng, stopped) })
	mrng := rand.New(rand.NewPCG(seed, 200))
	wg.Go(func() { // Maintain calls, and the clock
		for !stopped() {
			clock.ms.Add(int64(1000 + mrng.IntN(120_000)))
			s.adminErr("Maintain", b.Maintain(ctx))
			time.Sleep(100 * time.Microsecond) // pace the clock
		}
	})
	wg.Go(func() { s.churnD(stopped) })

	// The admin calls on "m", from this goroutine.
	ops := 60
	if disk {
		ops = 15
	}
	// Odd seeds close the broker in the middle of it all.
	closeAt := -1
	if seed%2 == 1 {
		closeAt = rng.IntN(ops)
	}
	for i := range ops {
		if i == closeAt {
			if err := b.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			break
		}
		switch rng.IntN(4) {
		case 0:
			s.alter(rng)
		case 1:
			s.deleteRecords(rng)
		case 2:
			if n, err := b.Partitions(ctx, maintRaceTopic); err == nil && n < 4 {
				s.adminErr("CreatePartitions", b.CreatePartitions(ctx, maintRaceTopic, n+1))
			}
		case 3:
			time.Sleep(time.Duration(1+rng.IntN(3)) * time.Millisecond)
		}
		_ = i
	}
	close(stop)
	wg.Wait()
	faulty.Store(false)
	if closeAt >= 0 {
		if b, err = runnel.Open(cfg); err != nil {
			t.Fatalf("Open: %v", err)
		}
		s.b = b
		s.check("after a Close in flight and Open")
		s.summary()
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		for _, e := range s.errs {
			t.Error(e)
		}
		return
	}

	// A partition whose reopen failed is opened by the next maintenance.
	if err := b.Maintain(ctx); err != nil {
		t.Errorf("Maintain, the faults over: %v", err)
	}
	final := s.check("at the end")
	s.summary()
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	b, err = runnel.Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	s.b = b
	// Maintenance may have compacted or cut the log since the read, but
	// put nothing back.
	again := s.check("after Close and Open")
	if diff := maintRaceDiff(final, again); diff != "" {
		t.Errorf("after Close and Open: %s", diff)
	}
	if err := b.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	for _, e := range s.errs {
		t.Error(e)
	}
}

func (s *maintRace) newRecs(rng *rand.Rand, n int) []*maintRaceRec {
	var recs []*maintRaceRec
	for range n {
		id := s.id.Add(1)
		r := &maintRaceRec{id: id, key: []byte("k" + strconv.Itoa(rng.IntN(12)))}
		if rng.IntN(6) != 0 {
			r.value = fmt.Appendf(nil, "v%d-%s", id, bytes.Repeat([]byte{'x'}, rng.IntN(80)))
		}
		recs = append(recs, r)
	}
	return recs
}

func maintRaceEncode(recs []*maintRaceRec, pid int64, seq int32, ts int64, codec compression.Codec) []byte {
	var bl record.Builder
	bl.Reset()
	if pid >= 0 {
		bl.SetProducer(pid, 0, seq)
	}
	for _, r := range recs {
		bl.Append(ts, r.key, r.value, []record.Header{{Key: "id", Value: strconv.AppendInt(nil, r.id, 10)}})
	}
	data, err := bl.AppendTo(nil, codec)
	if err != nil {
		panic(err)
	}
	return data
}

// writer produces batches to "m", an idempotent producer's with its id
// and sequences, and sends some of them again.
func (s *maintRace) writer(rng *rand.Rand, idem bool, codec compression.Codec, stopped func() bool) {
	pid := int64(-1)
	seqs := map[int32]int32{}
	newPID := func() {
		if !idem {
			return
		}
		id, _, err := s.b.InitProducerID(s.ctx)
		if err != nil {
			s.closedOr(err, "InitProducerID")
			return
		}
		pid, seqs = id, map[int32]int32{}
	}
	newPID()
	for !stopped() {
		n, err := s.b.Partitions(s.ctx, maintRaceTopic)
		if err != nil {
			s.closedOr(err, "Partitions")
			return
		}
		p := int32(rng.IntN(n))
		recs := s.newRecs(rng, 1+rng.IntN(6))
		seq := seqs[p]
		ts := s.clock.ms.Load() - int64(rng.IntN(60_000))
		data := maintRaceEncode(recs, pid, seq, ts, codec)
		sent := s.clock.ms.Load() // the append is at this time or after
		var resp api.ProduceResponse
		ok := false
		for try := 0; try < 5 && !ok; try++ {
			resp, err = s.b.Produce(s.ctx, &api.ProduceRequest{Topic: maintRaceTopic, Partition: p, Acks: api.AcksAll, Batches: bytes.Clone(data)})
			s.typed("Produce", err)
			ok = err == nil
			if !ok && (!idem || !api.IsRetriable(err)) {
				break
			}
		}
		s.mu.Lock()
		if !ok {
			for _, r := range recs {
				s.doubt[r.id] = r
			}
		} else {
			if s.acked[p] == nil {
				s.acked[p] = map[int64]*maintRaceRec{}
			}
			for i, r := range recs {
				r.clock = sent
				s.acked[p][resp.BaseOffset+int64(i)] = r
			}
		}
		s.mu.Unlock()
		if !ok {
			newPID() // the batch's fate is unknown: start a new sequence
			continue
		}
		if !idem {
			continue
		}
		seqs[p] = seq + int32(len(recs))
		if rng.IntN(3) != 0 {
			continue
		}
		// Sent again, after a moment: a duplicate, whatever maintenance
		// did meanwhile, while the id cannot have expired.
		time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
		again, err := s.b.Produce(s.ctx, &api.ProduceRequest{Topic: maintRaceTopic, Partition: p, Acks: api.AcksAll, Batches: bytes.Clone(data)})
		// The id expires an hour (by the fake clock) after its last
		// append, which was at sent or after.
		after := s.clock.ms.Load()
		s.typed("Produce again", err)
		switch {
		case err != nil && (api.IsRetriable(err) || errors.Is(err, runnel.ErrClosed)):
		case after-sent >= (59 * time.Minute).Milliseconds():
			if err == nil && !again.Duplicate {
				s.copied(p, recs, again.BaseOffset) // expired: appended again, as Kafka does
			}
		case err != nil || !again.Duplicate || again.BaseOffset != resp.BaseOffset:
			s.errorf("pid %d seq %d on %d sent again, %ds (fake) after it was sent: %+v, %v; want a duplicate at %d",
				pid, seq, p, (after-sent)/1000, again, err, resp.BaseOffset)
		}
		if err != nil || !again.Duplicate {
			newPID()
		}
	}
}

// producer writes to "m" with an idempotent producer.Producer (five
// requests in flight): its records are acknowledged at the offsets their
// promises are given, and each is in the log at most once, unless its id
// may have expired meanwhile.
func (s *maintRace) producer(rng *rand.Rand, codec compression.Codec, stopped func() bool) {
	p, err := producer.New(s.b, producer.MaxInFlight(5), producer.Linger(time.Millisecond), producer.Compression(codec),
		producer.RetryBackoff(time.Millisecond), producer.MetadataMaxAge(5*time.Millisecond), producer.RecordPartitioner(producer.RoundRobinPartitioner()))
	if err != nil {
		s.errorf("producer.New: %v", err)
		return
	}
	defer p.Close()
	for !stopped() {
		for _, r := range s.newRecs(rng, 1+rng.IntN(5)) {
			sent := s.clock.ms.Load()
			rec := &record.Record{Topic: maintRaceTopic, Key: r.key, Value: r.value, Headers: []record.Header{{Key: "id", Value: strconv.AppendInt(nil, r.id, 10)}}}
			p.Produce(s.ctx, rec, func(rec *record.Record, err error) {
				done := s.clock.ms.Load()
				s.mu.Lock()
				defer s.mu.Unlock()
				if err != nil {
					if !errors.Is(err, producer.ErrClosed) && !errors.Is(err, runnel.ErrClosed) && !adminRaceTyped(err) {
						s.errorfLocked("producer: untyped error %v", err)
					}
					s.doubt[r.id] = r
					return
				}
				r.clock = sent
				if s.acked[rec.Partition] == nil {
					s.acked[rec.Partition] = map[int64]*maintRaceRec{}
				}
				s.acked[rec.Partition][rec.Offset] = r
				if done-sent < (59 * time.Minute).Milliseconds() {
					s.once[r.id] = true
				} else {
					s.twice[r.id] = true
				}
			})
		}
		time.Sleep(time.Millisecond)
	}
	if err := p.Flush(s.ctx); err != nil && !errors.Is(err, runnel.ErrClosed) {
		s.typed("Flush", err)
	}
}

// copied notes recs, acknowledged before, acknowledged again at base.
func (s *maintRace) copied(p int32, recs []*maintRaceRec, base int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range recs {
		s.acked[p][base+int64(i)] = r
	}
}

// fetcher long-polls "m"'s partitions from its positions and seeks now
// and then.
func (s *maintRace) fetcher(rng *rand.Rand, stopped func() bool) {
	pos := map[int32]int64{}
	last := map[int32]int64{} // the last offset read since the seek: -1 after one
	lso, hw := map[int32]int64{}, map[int32]int64{}
	var topicID log.TopicID
	for !stopped() {
		n, err := s.b.Partitions(s.ctx, maintRaceTopic)
		if err != nil {
			s.closedOr(err, "Partitions")
			return
		}
		if rng.IntN(10) == 0 {
			p := int32(rng.IntN(n))
			ts := []int64{api.Earliest, api.Latest, api.MaxTimestamp, s.clock.ms.Load() - int64(rng.IntN(600_000))}[rng.IntN(4)]
			lo, err := s.b.ListOffset(s.ctx, maintRaceTopic, p, ts)
			s.typed("ListOffset", err)
			if err == nil && ts >= 0 && lo.Timestamp >= 0 && lo.Timestamp < ts {
				s.errorf("ListOffset(%d) of %d: offset %d, whose timestamp %d is older", ts, p, lo.Offset, lo.Timestamp)
			}
			if err == nil {
				pos[p], last[p] = lo.Offset, -1
			}
		}
		req := &api.FetchRequest{MaxWait: 5 * time.Millisecond, MinBytes: 1 + rng.IntN(2000), MaxBytes: 1 + rng.IntN(8000)}
		for p := range int32(n) {
			if _, ok := last[p]; !ok {
				last[p] = -1
			}
			req.Partitions = append(req.Partitions, api.FetchPartition{Topic: maintRaceTopic, TopicID: topicID, Partition: p, Offset: pos[p]})
		}
		resp, err := s.b.Fetch(s.ctx, req)
		s.typed("Fetch", err)
		if err != nil {
			continue
		}
		for _, fp := range resp.Partitions {
			p := fp.Partition
			s.typed("Fetch partition", fp.Err)
			if fp.Err != nil {
				if errors.Is(fp.Err, log.ErrOffsetOutOfRange) {
					pos[p], last[p] = fp.LogStartOffset, -1
					if lo, err := s.b.ListOffset(s.ctx, maintRaceTopic, p, api.Earliest); err == nil {
						pos[p] = lo.Offset
					}
				}
				continue
			}
			if topicID == (log.TopicID{}) {
				topicID = fp.TopicID
			} else if fp.TopicID != topicID {
				s.errorf("fetch: topic ID %v, was %v", fp.TopicID, topicID)
			}
			if fp.LogStartOffset < lso[p] || fp.HighWatermark < hw[p] {
				s.errorf("fetch %d: log start %d, high watermark %d; saw %d, %d before", p, fp.LogStartOffset, fp.HighWatermark, lso[p], hw[p])
			}
			lso[p], hw[p] = max(lso[p], fp.LogStartOffset), max(hw[p], fp.HighWatermark)
			if fp.LogStartOffset > fp.HighWatermark {
				s.errorf("fetch %d: log start %d past the high watermark %d", p, fp.LogStartOffset, fp.HighWatermark)
			}
			for bt, err := range record.Batches(fp.Records) {
				if err != nil {
					s.errorf("fetch %d: batches: %v", p, err)
					break
				}
				for r, err := range bt.Records() {
					if err != nil {
						s.errorf("fetch %d: records: %v", p, err)
						break
					}
					if r.Offset < pos[p] {
						continue
					}
					if r.Offset <= last[p] {
						s.errorf("fetch %d: offset %d after %d", p, r.Offset, last[p])
					}
					if r.Offset >= fp.HighWatermark {
						s.errorf("fetch %d: offset %d at or past the high watermark %d", p, r.Offset, fp.HighWatermark)
					}
					last[p] = r.Offset
					s.saw(p, r, rng)
				}
			}
			if last[p] >= pos[p] {
				pos[p] = last[p] + 1
			}
		}
	}
}

// consume reads "m" with a consumer.Consumer, seeking now and then.
func (s *maintRace) consume(rng *rand.Rand, stopped func() bool) {
	c, err := consumer.New(s.b, consumer.FetchMaxWait(5*time.Millisecond), consumer.FetchMinBytes(1000), consumer.RetryBackoff(time.Millisecond))
	if err != nil {
		s.errorf("consumer.New: %v", err)
		return
	}
	defer c.Close()
	last := map[int32]int64{} // the last offset read since a seek or reset: -1 after one
	for !stopped() {
		n, err := s.b.Partitions(s.ctx, maintRaceTopic)
		if err != nil {
			s.closedOr(err, "Partitions")
			return
		}
		for p := range int32(n) {
			if _, ok := last[p]; !ok {
				last[p] = -1
				if err := c.Assign(maintRaceTopic, p, consumer.Start()); err != nil {
					s.errorf("Assign: %v", err)
				}
			}
		}
		if rng.IntN(8) == 0 {
			p := int32(rng.IntN(n))
			at := []consumer.Offset{consumer.Start(), consumer.End(), consumer.AtTime(time.UnixMilli(s.clock.ms.Load() - int64(rng.IntN(600_000))))}[rng.IntN(3)]
			if err := c.Seek(maintRaceTopic, p, at); err != nil {
				s.errorf("Seek: %v", err)
			}
			last[p] = -1
		}
		// A hang guard: the wait is 5 ms.
		pctx, cancel := context.WithTimeout(s.ctx, time.Minute)
		fs, err := c.Poll(pctx)
		cancel()
		if errors.Is(err, runnel.ErrClosed) || errors.Is(err, consumer.ErrClosed) {
			return
		}
		s.typed("Poll", err)
		for _, f := range fs {
			p := f.Partition
			if f.Err != nil {
				s.typed("Poll partition", f.Err)
				last[p] = -1 // maybe reset
				continue
			}
			for r, err := range f.Records() {
				if err != nil {
					s.errorf("consumer: %v", err)
					break
				}
				if r.Offset <= last[p] {
					s.errorf("consumer %d: offset %d after %d", p, r.Offset, last[p])
				}
				last[p] = r.Offset
				s.saw(p, r, rng)
			}
		}
	}
}

// saw notes that a reader read r at its offset in partition p.
func (s *maintRace) saw(p int32, r *record.Record, rng *rand.Rand) {
	id := maintRaceID(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[p] == nil {
		s.seen[p] = map[int64]int64{}
	}
	if prev, ok := s.seen[p][r.Offset]; ok && prev != id {
		s.errorfLocked("partition %d offset %d holds id %d, and held %d", p, r.Offset, id, prev)
	}
	s.seen[p][r.Offset] = id
	if rng.IntN(20) == 0 && len(s.kept) < 4000 {
		s.kept = append(s.kept, maintRaceKept{key: r.Key, value: r.Value, keyCopy: bytes.Clone(r.Key), valueCopy: bytes.Clone(r.Value),
			part: p, offset: r.Offset, id: id, valueNil: r.Value == nil})
	}
}

func maintRaceID(r *record.Record) int64 {
	for _, h := range r.Headers {
		if h.Key == "id" {
			id, err := strconv.ParseInt(string(h.Value), 10, 64)
			if err == nil {
				return id
			}
		}
	}
	return -1
}

// describer checks DescribeTopic's offsets, and ListOffset's between two.
func (s *maintRace) describer(stopped func() bool) {
	lso, hw := map[int32]int64{}, map[int32]int64{}
	for !stopped() {
		d1, err := s.b.DescribeTopic(s.ctx, maintRaceTopic)
		if err != nil {
			s.closedOr(err, "DescribeTopic")
			return
		}
		p := int32(len(d1.Partitions) - 1)
		e, err1 := s.b.ListOffset(s.ctx, maintRaceTopic, p, api.Earliest)
		l, err2 := s.b.ListOffset(s.ctx, maintRaceTopic, p, api.Latest)
		s.typed("ListOffset", err1)
		s.typed("ListOffset", err2)
		d2, err := s.b.DescribeTopic(s.ctx, maintRaceTopic)
		if err != nil {
			s.closedOr(err, "DescribeTopic")
			return
		}
		for _, d := range []runnel.TopicInfo{d1, d2} {
			for _, pi := range d.Partitions {
				q := pi.Partition
				if !(pi.LogStartOffset <= pi.HighWatermark && pi.HighWatermark <= pi.LogEndOffset) {
					s.errorf("DescribeTopic %d: log start %d, high watermark %d, log end %d", q, pi.LogStartOffset, pi.HighWatermark, pi.LogEndOffset)
				}
				if pi.LogStartOffset < lso[q] || pi.HighWatermark < hw[q] {
					s.errorf("DescribeTopic %d: log start %d, high watermark %d; were %d, %d", q, pi.LogStartOffset, pi.HighWatermark, lso[q], hw[q])
				}
				lso[q], hw[q] = max(lso[q], pi.LogStartOffset), max(hw[q], pi.HighWatermark)
			}
		}
		a, z := d1.Partitions[p], d2.Partitions[p]
		if err1 == nil && (e.Offset < a.LogStartOffset || e.Offset > z.LogStartOffset) {
			s.errorf("ListOffset(Earliest) of %d: %d, DescribeTopic's log start %d then %d", p, e.Offset, a.LogStartOffset, z.LogStartOffset)
		}
		if err2 == nil && (l.Offset < a.HighWatermark || l.Offset > z.HighWatermark) {
			s.errorf("ListOffset(Latest) of %d: %d, DescribeTopic's high watermark %d then %d", p, l.Offset, a.HighWatermark, z.HighWatermark)
		}
		time.Sleep(time.Millisecond)
	}
}

// churnD deletes topic "d" and creates it again, writing to it and
// fetching from it meanwhile: only typed errors.
func (s *maintRace) churnD(stopped func() bool) {
	for i := 0; !stopped(); i++ {
		switch i % 4 {
		case 0:
			s.typed("DeleteTopic", s.b.DeleteTopic(s.ctx, "d"))
		case 1:
			err := s.b.CreateTopic(s.ctx, "d", log.TopicConfig{Partitions: 1, Config: log.Config{CleanupPolicy: log.Compact, SegmentBytes: 512}})
			s.typed("CreateTopic", err)
		default:
			data := maintRaceEncode([]*maintRaceRec{{id: -1, key: []byte("k"), value: []byte("v")}}, -1, 0, s.clock.ms.Load(), compression.None)
			_, err := s.b.Produce(s.ctx, &api.ProduceRequest{Topic: "d", Acks: api.AcksAll, Batches: data})
			s.typed("Produce d", err)
			resp, err := s.b.Fetch(s.ctx, &api.FetchRequest{MaxWait: time.Millisecond, Partitions: []api.FetchPartition{{Topic: "d"}}})
			s.typed("Fetch d", err)
			if err == nil {
				s.typed("Fetch d partition", resp.Partitions[0].Err)
			}
		}
	}
}

func (s *maintRace) alter(rng *rand.Rand) {
	c := log.Config{
		CleanupPolicy:          []log.CleanupPolicy{log.Delete, log.Compact, log.Delete | log.Compact}[rng.IntN(3)],
		SegmentBytes:           []int64{512, 1024, 4096}[rng.IntN(3)],
		SegmentTime:            []time.Duration{0, 2 * time.Minute}[rng.IntN(2)],
		RetentionTime:          []time.Duration{0, 20 * time.Minute, time.Hour}[rng.IntN(3)],
		RetentionBytes:         []int64{0, 8 << 10}[rng.IntN(2)],
		DeleteRetentionTime:    []time.Duration{time.Minute, 10 * time.Minute}[rng.IntN(2)],
		MinCleanableDirtyRatio: 0.01,
		TimestampType:          []log.TimestampType{log.CreateTime, log.LogAppendTime}[rng.IntN(2)],
		Sync:                   []log.SyncPolicy{log.SyncAlways, log.SyncPeriodic, log.SyncNever}[rng.IntN(3)],
	}
	s.mu.Lock()
	if c.CleanupPolicy&log.Compact != 0 {
		s.everCompact = true
	}
	s.minDeleteRet = min(s.minDeleteRet, c.DeleteRetentionTime)
	s.mu.Unlock()
	s.adminErr("UpdateTopicConfig", s.b.UpdateTopicConfig(s.ctx, maintRaceTopic, func(old *log.Config) { *old = c }))
}

func (s *maintRace) deleteRecords(rng *rand.Rand) {
	d, err := s.b.DescribeTopic(s.ctx, maintRaceTopic)
	if err != nil {
		s.errorf("DescribeTopic: %v", err)
		return
	}
	pi := d.Partitions[rng.IntN(len(d.Partitions))]
	if pi.HighWatermark == pi.LogStartOffset {
		return
	}
	off := pi.LogStartOffset + rng.Int64N(min(pi.HighWatermark-pi.LogStartOffset, 20)+1)
	low, err := s.b.DeleteRecords(s.ctx, maintRaceTopic, pi.Partition, off)
	s.typed("DeleteRecords", err)
	if err == nil {
		if low < off {
			s.errorf("DeleteRecords(%d, %d): low watermark %d", pi.Partition, off, low)
		}
		s.mu.Lock()
		s.deleted[pi.Partition] = max(s.deleted[pi.Partition], off)
		s.mu.Unlock()
	}
}

// summary logs what the model holds.
func (s *maintRace) summary() {
	s.mu.Lock()
	defer s.mu.Unlock()
	acked, seen := 0, 0
	for _, m := range s.acked {
		acked += len(m)
	}
	for _, m := range s.seen {
		seen += len(m)
	}
	s.t.Logf("acknowledged %d records (%d by the producer.Producer), %d in doubt, %d read; %d kept", acked, len(s.once)+len(s.twice), len(s.doubt), seen, len(s.kept))
}

// maintRacePart is one partition read from its log start to its high watermark.
type maintRacePart struct {
	start, hw int64
	ids       map[int64]int64 // offset → id
	keys      map[int64]string
}

func (s *maintRace) readAll() map[int32]*maintRacePart {
	d, err := s.b.DescribeTopic(s.ctx, maintRaceTopic)
	if err != nil {
		s.t.Fatalf("DescribeTopic: %v", err)
	}
	out := map[int32]*maintRacePart{}
	for _, pi := range d.Partitions {
		rp := &maintRacePart{start: pi.LogStartOffset, hw: pi.HighWatermark, ids: map[int64]int64{}, keys: map[int64]string{}}
		out[pi.Partition] = rp
		for off := pi.LogStartOffset; off < pi.HighWatermark; {
			resp, err := s.b.Fetch(s.ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: maintRaceTopic, Partition: pi.Partition, Offset: off}}})
			if err == nil {
				err = resp.Partitions[0].Err
			}
			if errors.Is(err, log.ErrOffsetOutOfRange) && resp.Partitions[0].LogStartOffset > off {
				// The broker's maintenance goes on (retention): read on
				// from the log start.
				off, rp.start = resp.Partitions[0].LogStartOffset, resp.Partitions[0].LogStartOffset
				for o := range rp.ids {
					if o < off {
						delete(rp.ids, o)
						delete(rp.keys, o)
					}
				}
				continue
			}
			if err != nil {
				s.t.Fatalf("read %d from %d: %v", pi.Partition, off, err)
			}
			next := off
			for bt, err := range record.Batches(resp.Partitions[0].Records) {
				if err != nil {
					s.t.Fatal(err)
				}
				for r, err := range bt.Records() {
					if err != nil {
						s.t.Fatal(err)
					}
					if r.Offset >= off {
						rp.ids[r.Offset], rp.keys[r.Offset] = maintRaceID(r), string(r.Key)
					}
				}
				next = max(next, bt.NextOffset())
			}
			if next == off {
				break
			}
			off = next
		}
	}
	return out
}

// maintRaceDiff reports how b, read after a, is not what a maintenance may have
// left of a: the same high watermark, a log start at or past a's, and
// records only where a had the same ones.
func maintRaceDiff(a, b map[int32]*maintRacePart) string {
	var d []string
	for p, x := range a {
		y := b[p]
		if y == nil {
			d = append(d, fmt.Sprintf("partition %d gone", p))
			continue
		}
		if y.start < x.start || x.hw != y.hw {
			d = append(d, fmt.Sprintf("partition %d: log start %d, high watermark %d; were %d, %d", p, y.start, y.hw, x.start, x.hw))
		}
		for off, id := range y.ids {
			if x.ids[off] != id {
				d = append(d, fmt.Sprintf("partition %d offset %d: id %d, was %d", p, off, id, x.ids[off]))
			}
		}
	}
	if len(d) > 10 {
		d = d[:10]
	}
	return strings.Join(d, "; ")
}

// check compares the partitions as read now with what was acknowledged
// and seen, and returns what it read.
func (s *maintRace) check(when string) map[int32]*maintRacePart {
	final := s.readAll()
	s.mu.Lock()
	defer s.mu.Unlock()
	type at struct {
		p   int32
		off int64
	}
	byID := map[int64][]at{} // an id may have been appended twice (see copied)
	for p, recs := range s.acked {
		for off, r := range recs {
			byID[r.id] = append(byID[r.id], at{p, off})
		}
	}
	now := s.clock.ms.Load()
	for p, rp := range final {
		if rp.start < s.deleted[p] {
			s.errorfLocked("%s: partition %d starts at %d, below DeleteRecords' %d", when, p, rp.start, s.deleted[p])
		}
		for off, id := range rp.ids {
			if ats, ok := byID[id]; ok && !slices.Contains(ats, at{p, off}) && !s.twice[id] {
				s.errorfLocked("%s: partition %d offset %d holds id %d, acknowledged at %v", when, p, off, id, ats)
			} else if _, doubt := s.doubt[id]; !ok && !doubt {
				s.errorfLocked("%s: partition %d offset %d holds id %d, never sent", when, p, off, id)
			}
		}
		copies := map[int64][]int64{}
		for off, id := range rp.ids {
			if s.once[id] {
				copies[id] = append(copies[id], off)
			}
		}
		for id, offs := range copies {
			if len(offs) > 1 {
				s.errorfLocked("%s: partition %d holds id %d at %v: an idempotent producer's record written twice", when, p, id, offs)
			}
		}
		later := map[string]int64{} // key → its last offset, acknowledged or in the log
		for off, k := range rp.keys {
			later[k] = max(later[k], off)
		}
		for off, r := range s.acked[p] {
			later[string(r.key)] = max(later[string(r.key)], off)
		}
		for off, r := range s.acked[p] {
			if off < rp.start || off >= rp.hw {
				continue
			}
			if id, ok := rp.ids[off]; ok {
				if id != r.id {
					s.errorfLocked("%s: partition %d offset %d holds id %d, acknowledged %d", when, p, off, id, r.id)
				}
				continue
			}
			switch {
			case !s.everCompact:
				s.errorfLocked("%s: partition %d offset %d (id %d) gone, never compacted", when, p, off, r.id)
			case later[string(r.key)] > off:
			case r.value == nil && time.Duration(now-r.clock)*time.Millisecond >= s.minDeleteRet:
			default:
				s.errorfLocked("%s: partition %d offset %d (id %d, key %s, tombstone %v, acked %ds before) gone: the last of its key",
					when, p, off, r.id, r.key, r.value == nil, (now-r.clock)/1000)
			}
		}
		for off, id := range s.seen[p] {
			if got, ok := rp.ids[off]; ok && got != id {
				s.errorfLocked("%s: partition %d offset %d holds id %d, a fetcher saw %d", when, p, off, got, id)
			}
			if ats, ok := byID[id]; ok && !slices.Contains(ats, at{p, off}) && !s.twice[id] {
				s.errorfLocked("%s: partition %d offset %d: a fetcher saw id %d, acknowledged at %v", when, p, off, id, ats)
			}
		}
	}
	for _, k := range s.kept {
		if !bytes.Equal(k.key, k.keyCopy) || !bytes.Equal(k.value, k.valueCopy) || (k.value == nil) != k.valueNil {
			s.errorfLocked("%s: record kept from partition %d offset %d (id %d) changed: key %q value %q, were %q %q",
				when, k.part, k.offset, k.id, k.key, k.value, k.keyCopy, k.valueCopy)
		}
	}
	return final
}
