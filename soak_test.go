package runnel_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
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
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestSoak runs runnel as a durable event log inside one long-running
// service, for as long as RUNNEL_SOAK says (a time.Duration: "2m"), to find
// what breaks or leaks over time that short tests miss. It is skipped
// under -short and when RUNNEL_SOAK is not set:
//
//	RUNNEL_SOAK=2m go test -run TestSoak -v -timeout 30m .
//	RUNNEL_SOAK=2m go test -race -run TestSoak/disk -v -timeout 30m .
//
// The scenario, on disk ("disk") and on a vfs.MemFS kept across reopens
// ("mem", a third of the time): a broker with small segments and a short
// maintenance interval; a topic with time retention and SyncAlways that
// grows its partitions, one with size retention and SyncNever, and a
// compacted one with keys and tombstones under SyncPeriodic; producers
// (idempotent and not, each with its codec) producing continuously;
// consumers tailing every partition, and laggards that retention
// overtakes: two on the time-retained topic (one with ResetEarliest, which
// also seeks to a time now and then, one with ResetNone) and one with
// ResetLatest on the size-retained topic; an admin loop (DescribeTopic, DeleteRecords,
// CreatePartitions, UpdateTopicConfig and AlterTopicConfig, a scratch
// topic created, written and deleted); and every epoch, every client
// closed, the broker closed cleanly and opened again.
//
// It asserts correctness and the absence of leaks, never speed:
//
//   - every acknowledged record that retention or DeleteRecords did not
//     legitimately remove is in the log at its offset, with its bytes, at
//     the end of each epoch and after each reopen, and the log holds
//     nothing else; the log start offset never passes a record that time
//     retention must keep, and size retention never leaves less than
//     retention.bytes behind;
//   - compacted topic: the latest value of every key is there; a key whose
//     latest record is a tombstone never comes back with an older value;
//     tombstones older than delete.retention.ms (plus the time to roll and
//     clean) are gone by the end;
//   - consumers see each partition's offsets strictly increasing, and skip
//     offsets only below the log start offset (a reset, never a silent
//     skip of records that still exist), except the ResetLatest laggard,
//     which skips only from a position below the log start; the ResetNone
//     laggard gets log.ErrOffsetOutOfRange for positions below the log
//     start offset; a seek to a time lands on the first record at least
//     that recent;
//   - after each Close, no goroutine of the broker or its clients is left
//     (goleak), no descriptor or memory mapping of the data directory;
//   - with the broker open and idle: descriptors into the data directory
//     are what its live segments explain (three each plus the lock), none
//     is of a deleted file; mappings are at most two per sealed segment,
//     none of a deleted file; the process's descriptors and mappings,
//     less what the segments explain, do not grow from the second reopen
//     (after a warm-up epoch) to the last; neither does the heap after runtime.GC beyond
//     twice its warm-up size plus 32 MiB; a time-retained partition keeps
//     no sealed segment older than retention.ms, and a size-retained one
//     no more than retention.bytes plus a segment.
//
// It logs the figures it measured (descriptors and mappings per segment,
// heap and RSS at warm-up and at the end) with -v.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the soak test runs only when asked for (RUNNEL_SOAK=2m)")
	}
	spec := os.Getenv("RUNNEL_SOAK")
	if spec == "" {
		t.Skip("set RUNNEL_SOAK to a duration (RUNNEL_SOAK=2m) to run the soak test")
	}
	d, err := time.ParseDuration(spec)
	require.NoError(t, err, "RUNNEL_SOAK")
	require.Greater(t, d, time.Duration(0), "RUNNEL_SOAK")
	t.Run("disk", func(t *testing.T) { runSoak(t, d, false) })
	t.Run("mem", func(t *testing.T) { runSoak(t, d/3, true) })
}

// The soak's topics.
const (
	soakEvents  = "events"  // time retention, SyncAlways, grows
	soakMetrics = "metrics" // size retention, SyncNever, LogAppendTime, small indexes
	soakState   = "state"   // compacted, SyncPeriodic
	soakScratch = "scratch" // created, written and deleted by the admin

	soakRetention    = 3 * time.Second // events' retention.ms, toggled with soakRetentionAlt
	soakRetentionAlt = 5 * time.Second
	soakRetBytes     = 384 << 10 // metrics' retention.bytes
	soakSegBig       = 128 << 10 // metrics' segment.bytes, toggled with soakSegSmall
	soakSegSmall     = 96 << 10
	soakDeleteRet    = 2 * time.Second // state's delete.retention.ms
	soakSegTime      = 2 * time.Second // state's segment.ms
	soakMaint        = 250 * time.Millisecond
	soakKeys         = 300
	soakMaxParts     = 5 // events grows from 3 to this
)

func soakTopics() map[string]log.TopicConfig {
	return map[string]log.TopicConfig{
		soakEvents: {Partitions: 3, Config: log.Config{
			SegmentBytes: 64 << 10, RetentionTime: soakRetention, Sync: log.SyncAlways, IndexIntervalBytes: 1024,
		}},
		soakMetrics: metricsConfig(soakSegBig),
		soakState: {Partitions: 2, Config: log.Config{
			CleanupPolicy: log.Compact, SegmentBytes: 64 << 10, SegmentTime: soakSegTime,
			DeleteRetentionTime: soakDeleteRet, MinCleanableDirtyRatio: 0.1,
			Sync: log.SyncPeriodic, FlushMessages: 200, FlushInterval: 500 * time.Millisecond,
		}},
	}
}

func metricsConfig(seg int64) log.TopicConfig {
	return log.TopicConfig{Partitions: 2, Config: log.Config{
		SegmentBytes: seg, RetentionBytes: soakRetBytes, RetentionTime: -1, Sync: log.SyncNever,
		// Rolls when its indexes fill (80 time entries), before its size.
		IndexIntervalBytes: 1024, SegmentIndexBytes: 960,
		TimestampType: log.LogAppendTime,
	}}
}

// soakRec is what the model keeps of an acknowledged record: its producer
// and sequence (from which its value is made again), timestamp and key.
type soakRec struct {
	id   uint64
	ts   int64
	key  int32 // -1: none
	tomb bool
}

// soakPart is the model of one partition.
type soakPart struct {
	recs   map[int64]soakRec // acknowledged records by offset (not of the compacted topic)
	latest map[int32]int64   // compacted topic: key -> offset of its latest record
	keyRec map[int32]soakRec // compacted topic: key -> its latest record
	tombs  map[int64]soakRec // compacted topic: tombstones by offset, until gone
	floor  int64             // the highest offset DeleteRecords was asked to delete below
	lso    int64             // the log start offset last seen
}

// soakSample is what one measurement saw.
type soakSample struct {
	phase                   string
	segments, sealed        int
	fds, fdsDir, fdsDeleted int
	maps, mapsDir, mapsDel  int
	heap                    uint64
	rssKB                   int64
	goroutines              int
	diskBytes               int64
}

type soakRun struct {
	t    *testing.T
	mem  bool
	fs   vfs.FS
	root string
	cfg  runnel.Config

	mu       sync.Mutex
	parts    map[api.TopicPartition]*soakPart
	seen     map[string]map[api.TopicPartition]int64 // consumer name -> last offset it saw
	atTime   map[api.TopicPartition]int64            // lag-earliest's Seek(AtTime(ms)) not yet met by a record
	nParts   map[string]int
	produced atomic.Int64
	resets   map[string]int // consumer name -> skips that the log start offset explained (mu)
	oor      atomic.Int64   // ErrOffsetOutOfRange seen by the ResetNone laggard
	seeks    atomic.Int64   // Seek(AtTime) of lag-earliest
	coldKeys atomic.Int64   // the last key written once (from soakKeys up)
	admin    atomic.Int64
	errs     atomic.Int64
	nextTag  uint64
	stopped  time.Time // when the producers of the last epoch stopped

	peakFds, peakSegs atomic.Int64
	samples           []soakSample
}

// runSoak runs the scenario for total, in epochs of about 20 s (at least
// three), each ended by a clean Close and Open of the broker.
func runSoak(t *testing.T, total time.Duration, mem bool) {
	baseline := goleak.IgnoreCurrent()
	s := &soakRun{t: t, mem: mem, parts: map[api.TopicPartition]*soakPart{},
		seen: map[string]map[api.TopicPartition]int64{}, nParts: map[string]int{}, resets: map[string]int{}, atTime: map[api.TopicPartition]int64{}}
	if mem {
		s.fs, s.root = vfs.NewMem(), "/soak"
	} else {
		s.fs, s.root = vfs.OS, t.TempDir()
	}
	s.cfg = runnel.Config{Dir: s.root, FS: s.fs, MaintenanceInterval: soakMaint}
	s.coldKeys.Store(soakKeys)
	epochs := max(3, int(total/(20*time.Second)))
	epoch := total / time.Duration(epochs)
	ctx := context.Background()

	before := s.measure("before open")
	b, err := runnel.Open(s.cfg)
	require.NoError(t, err)
	for name, cfg := range soakTopics() {
		require.NoError(t, b.CreateTopic(ctx, name, cfg))
		s.nParts[name] = cfg.Partitions
	}
	for e := range epochs {
		s.work(b, e, epoch)
		if t.Failed() {
			b.Close()
			return
		}
		ends := s.verify(b, fmt.Sprintf("end of epoch %d", e), e == epochs-1)
		require.NoError(t, b.Close())
		// Closed: no goroutine left, nothing of the data directory open.
		if err := goleak.Find(baseline); err != nil {
			t.Fatalf("after Close of epoch %d: %v", e, err)
		}
		closed := s.measure(fmt.Sprintf("closed after epoch %d", e))
		if !mem && runtime.GOOS == "linux" {
			require.Zero(t, closed.fdsDir, "descriptors into the data directory after Close")
			require.Zero(t, closed.mapsDir, "mappings of the data directory after Close")
			require.LessOrEqual(t, closed.fds, before.fds+2, "descriptors after Close, against before the first Open")
		}
		b, err = runnel.Open(s.cfg)
		require.NoError(t, err)
		again := s.verify(b, fmt.Sprintf("reopen after epoch %d", e), false)
		for tp, x := range ends {
			// Retention may have moved the start between the check and Close.
			if y := again[tp]; y.end != x.end || y.start < x.start {
				s.errorf("reopen after epoch %d: %v: log [%d, %d) before Close, [%d, %d) after Open", e, tp, x.start, x.end, y.start, y.end)
			}
		}
		require.NoError(t, b.Maintain(ctx))
		s.checkDisk(b)
		s.samples = append(s.samples, s.measure(fmt.Sprintf("open after epoch %d", e)))
		s.checkOpen(s.samples[len(s.samples)-1])
		if t.Failed() {
			break
		}
	}
	require.NoError(t, b.Close())
	if err := goleak.Find(baseline); err != nil {
		t.Fatalf("after the last Close: %v", err)
	}
	s.report(before)
}

// work runs producers, consumers and the admin loop on b for d.
func (s *soakRun) work(b *runnel.Broker, e int, d time.Duration) {
	t := s.t
	ctx, stop := context.WithTimeout(context.Background(), d)
	defer stop()
	// The tailers read on until they have caught up after the producers
	// stopped.
	tailCtx, stopTails := context.WithCancel(context.Background())
	defer stopTails()
	var wg sync.WaitGroup

	// Consumers first, so the producers' first records have readers.
	newConsumer := func(name string, opts ...consumer.Opt) *consumer.Consumer {
		c, err := consumer.New(b, opts...)
		require.NoError(t, err)
		return c
	}
	var consumers []*consumer.Consumer
	tails := map[string]*consumer.Consumer{}
	for _, topic := range []string{soakEvents, soakMetrics, soakState} {
		c := newConsumer("tail-"+topic, consumer.FetchMaxWait(100*time.Millisecond), consumer.ResetOffset(consumer.ResetEarliest), consumer.RetryBackoff(50*time.Millisecond))
		s.assign(c, "tail-"+topic, topic)
		tails[topic] = c
		consumers = append(consumers, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.tail(tailCtx, b, c, "tail-"+topic)
		}()
	}
	lagE := newConsumer("lag-earliest", consumer.FetchMaxWait(50*time.Millisecond), consumer.FetchMaxPartitionBytes(2048), consumer.ResetOffset(consumer.ResetEarliest))
	lagN := newConsumer("lag-none", consumer.FetchMaxWait(50*time.Millisecond), consumer.FetchMaxPartitionBytes(2048), consumer.ResetOffset(consumer.ResetNone))
	lagL := newConsumer("lag-latest", consumer.FetchMaxWait(50*time.Millisecond), consumer.FetchMaxPartitionBytes(2048), consumer.ResetOffset(consumer.ResetLatest))
	s.assign(lagE, "lag-earliest", soakEvents)
	s.assign(lagN, "lag-none", soakEvents)
	s.assign(lagL, "lag-latest", soakMetrics)
	consumers = append(consumers, lagE, lagN, lagL)
	for _, c := range []struct {
		c    *consumer.Consumer
		name string
	}{{lagE, "lag-earliest"}, {lagN, "lag-none"}, {lagL, "lag-latest"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.lag(ctx, b, c.c, c.name)
		}()
	}

	// Producers.
	type prodSpec struct {
		topic string
		rate  int // records per second
		opts  []producer.Opt
	}
	specs := []prodSpec{
		{soakEvents, 600, []producer.Opt{producer.Compression(compression.Zstd), producer.Linger(5 * time.Millisecond)}},
		{soakEvents, 200, []producer.Opt{producer.Compression(compression.Gzip), producer.DisableIdempotence(), producer.Acks(producer.AcksLeader)}},
		{soakMetrics, 600, []producer.Opt{producer.Compression(compression.LZ4), producer.DisableIdempotence(), producer.Acks(producer.AcksLeader), producer.Linger(2 * time.Millisecond)}},
		{soakState, 400, []producer.Opt{producer.Compression(compression.Snappy)}},
	}
	var pwg sync.WaitGroup
	for _, sp := range specs {
		opts := append([]producer.Opt{producer.MetadataMaxAge(time.Second)}, sp.opts...)
		p, err := producer.New(b, opts...)
		require.NoError(t, err)
		s.mu.Lock()
		s.nextTag++
		tag := s.nextTag
		s.mu.Unlock()
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			s.produce(ctx, p, sp.topic, tag, sp.rate)
			fctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := p.Flush(fctx); err != nil {
				s.errorf("flush of producer %d: %v", tag, err)
			}
			if err := p.Close(); err != nil {
				s.errorf("close of producer %d: %v", tag, err)
			}
		}()
	}

	// Admin.
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.adminLoop(ctx, b, e, func(p int32) {
			for _, c := range []*consumer.Consumer{tails[soakEvents], lagE, lagN} {
				if err := c.Assign(soakEvents, p, consumer.Start()); err != nil && !errors.Is(err, consumer.ErrClosed) {
					s.errorf("assign %s-%d: %v", soakEvents, p, err)
				}
			}
		})
	}()

	<-ctx.Done()
	pwg.Wait()
	s.mu.Lock()
	s.stopped = time.Now()
	s.mu.Unlock()
	// The tailers catch up with what was produced before they stop.
	for topic, c := range tails {
		s.catchUp(b, c, "tail-"+topic, topic)
	}
	stopTails()
	for _, c := range consumers {
		require.NoError(t, c.Close())
	}
	wg.Wait()
}

// assign assigns every partition of topic to c, at the offset after the
// last one consumer name saw (in an earlier epoch), or at the start.
func (s *soakRun) assign(c *consumer.Consumer, name, topic string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[name] == nil {
		s.seen[name] = map[api.TopicPartition]int64{}
	}
	for p := range int32(s.nParts[topic]) {
		at := consumer.Start()
		if last, ok := s.seen[name][api.TopicPartition{Topic: topic, Partition: p}]; ok {
			at = consumer.At(last + 1)
		}
		if name == "lag-earliest" {
			// A Seek(AtTime) of the last epoch that no record met
			// before it ended does not carry over: this consumer
			// starts at the offset after the last one seen.
			delete(s.atTime, api.TopicPartition{Topic: topic, Partition: p})
		}
		require.NoError(s.t, c.Assign(topic, p, at))
	}
}

// catchUp waits until consumer name has seen every partition of topic up
// to its high watermark.
func (s *soakRun) catchUp(b *runnel.Broker, c *consumer.Consumer, name, topic string) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		info, err := b.DescribeTopic(context.Background(), topic)
		require.NoError(s.t, err)
		done := true
		for _, pi := range info.Partitions {
			pos, ok := c.Position(topic, pi.Partition)
			if !ok || pos < pi.HighWatermark {
				done = false
			}
		}
		if done {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.errorf("%s did not catch up with %s within a minute", name, topic)
}

// payload is the value of record id: its id, then 80 to 239 bytes made
// from it (compressible, as 16 letters).
func payload(id uint64) []byte {
	n := 80 + int(id%160)
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+n), id)
	x := id*0x9E3779B97F4A7C15 | 1
	for range n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		v = append(v, 'a'+byte(x%16))
	}
	return v
}

// checkPayload returns the id of a value made by payload, or an error.
func checkPayload(v []byte) (uint64, error) {
	if len(v) < 8 {
		return 0, fmt.Errorf("a value of %d bytes", len(v))
	}
	id := binary.BigEndian.Uint64(v)
	if want := payload(id); string(want) != string(v) {
		return id, fmt.Errorf("the value of record %#x is not its bytes", id)
	}
	return id, nil
}

// produce produces to topic at about rate records a second until ctx
// ends. Records of producer tag have ids tag<<40 | sequence.
func (s *soakRun) produce(ctx context.Context, p *producer.Producer, topic string, tag uint64, rate int) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	rng := rand.New(rand.NewPCG(tag, 42))
	var seq uint64
	per := max(1, rate/100)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for range per {
			seq++
			id := tag<<40 | seq
			r := &record.Record{Topic: topic, Value: payload(id)}
			key := int32(-1)
			if topic == soakState {
				key = int32(rng.IntN(soakKeys))
				if rng.IntN(50) == 0 {
					// A cold key, written once: compaction keeps it
					// for good, wherever its segment was.
					key = int32(s.coldKeys.Add(1))
				} else if rng.IntN(10) == 0 {
					r.Value = nil
				}
				r.Key = []byte("k" + strconv.Itoa(int(key)))
			}
			s.produced.Add(1)
			p.Produce(context.Background(), r, func(r *record.Record, err error) {
				if err != nil {
					s.errorf("produce %#x to %s: %v", id, topic, err)
					return
				}
				s.acked(r, soakRec{id: id, ts: r.Timestamp.UnixMilli(), key: key, tomb: r.Value == nil})
			})
		}
	}
}

func (s *soakRun) part(tp api.TopicPartition) *soakPart {
	p := s.parts[tp]
	if p == nil {
		p = &soakPart{recs: map[int64]soakRec{}, latest: map[int32]int64{}, keyRec: map[int32]soakRec{}, tombs: map[int64]soakRec{}}
		s.parts[tp] = p
	}
	return p
}

func (s *soakRun) acked(r *record.Record, rec soakRec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.part(api.TopicPartition{Topic: r.Topic, Partition: r.Partition})
	if r.Topic != soakState {
		if _, dup := p.recs[r.Offset]; dup {
			s.errorf("%s-%d: two records acknowledged at offset %d", r.Topic, r.Partition, r.Offset)
		}
		p.recs[r.Offset] = rec
		return
	}
	if old, ok := p.latest[rec.key]; !ok || r.Offset > old {
		p.latest[rec.key], p.keyRec[rec.key] = r.Offset, rec
	}
	if rec.tomb {
		p.tombs[r.Offset] = rec
	}
}

// sawRecord checks a record consumer name read: offsets strictly
// increasing per partition; on a dense (not compacted) partition, a gap
// only below the log start offset; the value is its bytes and, if the
// record is acknowledged already, the one acknowledged at its offset.
func (s *soakRun) sawRecord(b *runnel.Broker, name string, r *record.Record) {
	tp := api.TopicPartition{Topic: r.Topic, Partition: r.Partition}
	var id uint64
	if r.Value != nil {
		var err error
		if id, err = checkPayload(r.Value); err != nil {
			s.errorf("%s read %s-%d at %d: %v", name, r.Topic, r.Partition, r.Offset, err)
			return
		}
	}
	s.mu.Lock()
	last, ok := s.seen[name][tp]
	s.seen[name][tp] = r.Offset
	m := s.part(tp)
	rec, acked := m.recs[r.Offset]
	at, sought := s.atTime[tp]
	var before []soakRec // the acknowledged records just before r
	if sought && name == "lag-earliest" {
		delete(s.atTime, tp)
		// Not below DeleteRecords' floor: the seek answers the log
		// start when the records of that time were deleted.
		for o := max(r.Offset-20, m.floor); o < r.Offset; o++ {
			if rec, ok := m.recs[o]; ok {
				before = append(before, rec)
			}
		}
	} else {
		sought = false
	}
	s.mu.Unlock()
	if acked && rec.id != id {
		s.errorf("%s read %s-%d at %d: record %#x, acknowledged there: %#x", name, r.Topic, r.Partition, r.Offset, id, rec.id)
	}
	if ok && r.Offset <= last && !sought { // a seek to a time may go back
		s.errorf("%s read %s-%d at %d after %d", name, r.Topic, r.Partition, r.Offset, last)
		return
	}
	if sought {
		// The first record after Seek(AtTime(at)) is the first whose
		// timestamp is at least at: every record before it is older.
		for _, p := range before {
			if p.ts >= at {
				s.errorf("%s: seek to time %d of %v gave offset %d, after record %#x of time %d", name, at, tp, r.Offset, p.id, p.ts)
			}
		}
		if r.Timestamp.UnixMilli() >= at {
			return
		}
		// Unless the position was reset (retention overtook it).
	} else if r.Topic == soakState || (ok && r.Offset == last+1) || (!ok && r.Offset == 0) {
		return
	}
	// A gap in a dense log: the offsets skipped must all be gone, so the
	// log start offset (which only grows) is now at least this record's.
	listed, err := b.ListOffset(context.Background(), r.Topic, r.Partition, api.Earliest)
	if err != nil {
		s.errorf("%s: list offset of %s-%d: %v", name, r.Topic, r.Partition, err)
		return
	}
	lso := listed.Offset
	if r.Offset > lso && name == "lag-latest" && (!ok || last+1 < lso) {
		// ResetLatest skips to the end when the position fell below the
		// log start: that is what it is for.
		s.reset(name)
		return
	}
	if r.Offset > lso {
		if sought {
			s.errorf("%s: seek to time %d of %v gave offset %d, a record of time %d", name, at, tp, r.Offset, r.Timestamp.UnixMilli())
			return
		}
		s.errorf("%s read %s-%d at %d after %d (seen before: %v), skipping records that exist: the log starts at %d",
			name, r.Topic, r.Partition, r.Offset, last, ok, lso)
		return
	}
	s.reset(name)
}

func (s *soakRun) reset(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resets[name]++
}

// tail reads with the Records iterator until ctx ends.
func (s *soakRun) tail(ctx context.Context, b *runnel.Broker, c *consumer.Consumer, name string) {
	for r, err := range c.Records(ctx) {
		if err != nil && err == ctx.Err() {
			return // the last: the soak is over
		}
		if err != nil {
			s.errorf("%s: %v", name, err)
			continue
		}
		s.sawRecord(b, name, r)
	}
}

// lag polls a little now and then, so that retention overtakes it.
func (s *soakRun) lag(ctx context.Context, b *runnel.Broker, c *consumer.Consumer, name string) {
	polls := 0
	for ctx.Err() == nil {
		fs, err := c.Poll(ctx)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, consumer.ErrClosed) {
				s.errorf("%s: poll: %v", name, err)
			}
			return
		}
		for _, f := range fs {
			if f.Err != nil {
				var pe *consumer.PartitionError
				if !errors.Is(f.Err, log.ErrOffsetOutOfRange) || !errors.As(f.Err, &pe) || name != "lag-none" {
					s.errorf("%s: %v", name, f.Err)
					continue
				}
				// Out of range must mean below the log start.
				lso, err := b.ListOffset(ctx, pe.Topic, pe.Partition, api.Earliest)
				if err == nil && pe.Offset >= lso.Offset {
					s.errorf("%s: %v, but the log starts at %d", name, f.Err, lso.Offset)
				}
				s.oor.Add(1)
				if err := c.Seek(pe.Topic, pe.Partition, consumer.Start()); err != nil {
					s.errorf("%s: seek: %v", name, err)
				}
				continue
			}
			for r, err := range f.Records() {
				if err != nil {
					s.errorf("%s: %v", name, err)
					continue
				}
				s.sawRecord(b, name, r)
			}
		}
		if polls++; name == "lag-earliest" && polls%7 == 0 {
			// Now and then, jump to 1.5 s ago, as a reader looking for
			// recent records does.
			s.mu.Lock()
			p := int32(polls/7) % int32(s.nParts[soakEvents])
			at := time.Now().Add(-1500 * time.Millisecond).UnixMilli()
			s.atTime[api.TopicPartition{Topic: soakEvents, Partition: p}] = at
			s.mu.Unlock()
			s.seeks.Add(1)
			if err := c.Seek(soakEvents, p, consumer.AtTime(time.UnixMilli(at))); err != nil {
				s.errorf("%s: seek: %v", name, err)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// adminLoop runs admin calls every 300 ms until ctx ends. grown is
// called with each partition CreatePartitions adds to the events topic.
func (s *soakRun) adminLoop(ctx context.Context, b *runnel.Broker, e int, grown func(int32)) {
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	rng := rand.New(rand.NewPCG(uint64(e), 7))
	// ctx ends the loop; the calls get one that outlives it a little, so
	// that ending the epoch does not fail a call in flight.
	call := context.Background()
	for step := 0; ; step++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s.admin.Add(1)
		s.notePeaks()
		for _, topic := range []string{soakEvents, soakMetrics, soakState} {
			info, err := b.DescribeTopic(call, topic)
			if err != nil {
				s.errorf("describe %s: %v", topic, err)
				continue
			}
			s.checkInfo(info)
		}
		switch {
		case step%5 == 2:
			// Delete records below a quarter of the way to the high
			// watermark of one partition of events.
			info, err := b.DescribeTopic(call, soakEvents)
			if err != nil {
				s.errorf("describe: %v", err)
				continue
			}
			pi := info.Partitions[rng.IntN(len(info.Partitions))]
			to := pi.LogStartOffset + (pi.HighWatermark-pi.LogStartOffset)/4
			tp := api.TopicPartition{Topic: soakEvents, Partition: pi.Partition}
			s.mu.Lock()
			m := s.part(tp)
			m.floor = max(m.floor, to) // before the call: a check may run meanwhile
			s.mu.Unlock()
			low, err := b.DeleteRecords(call, soakEvents, pi.Partition, to)
			if err != nil {
				s.errorf("delete records of %v below %d: %v", tp, to, err)
			} else if low < to {
				s.errorf("delete records of %v below %d: the log starts at %d", tp, to, low)
			}
		case step%40 == 13:
			s.mu.Lock()
			n := s.nParts[soakEvents]
			s.mu.Unlock()
			if n >= soakMaxParts {
				continue
			}
			if err := b.CreatePartitions(call, soakEvents, n+1); err != nil {
				s.errorf("create partitions: %v", err)
				continue
			}
			s.mu.Lock()
			s.nParts[soakEvents] = n + 1
			s.mu.Unlock()
			grown(int32(n))
		case step%25 == 7:
			err := b.UpdateTopicConfig(call, soakEvents, func(c *log.Config) {
				if c.RetentionTime == soakRetention {
					c.RetentionTime = soakRetentionAlt
				} else {
					c.RetentionTime = soakRetention
				}
			})
			if err != nil {
				s.errorf("update config of %s: %v", soakEvents, err)
			}
		case step%25 == 19:
			info, err := b.DescribeTopic(call, soakMetrics)
			if err != nil {
				s.errorf("describe: %v", err)
				continue
			}
			seg := int64(soakSegBig)
			if info.Config.SegmentBytes == soakSegBig {
				seg = soakSegSmall
			}
			if err := b.AlterTopicConfig(call, soakMetrics, metricsConfig(seg).Config); err != nil {
				s.errorf("alter config of %s: %v", soakMetrics, err)
			}
		case step%10 == 4:
			s.scratch(call, b, step)
		}
	}
}

// scratch creates a topic, writes to it, reads it back and deletes it.
func (s *soakRun) scratch(ctx context.Context, b *runnel.Broker, step int) {
	if err := b.CreateTopic(ctx, soakScratch, log.TopicConfig{Partitions: 2, Config: log.Config{SegmentBytes: 4096}}); err != nil {
		s.errorf("create %s: %v", soakScratch, err)
		return
	}
	p, err := producer.New(b, producer.Compression(compression.Codec(step%5)))
	if err != nil {
		s.errorf("producer for %s: %v", soakScratch, err)
		return
	}
	var recs []*record.Record
	for i := range 50 {
		recs = append(recs, &record.Record{Topic: soakScratch, Value: payload(uint64(i))})
	}
	if err := p.ProduceSync(ctx, recs...); err != nil {
		s.errorf("produce to %s: %v", soakScratch, err)
	}
	if err := p.Close(); err != nil {
		s.errorf("close producer of %s: %v", soakScratch, err)
	}
	info, err := b.DescribeTopic(ctx, soakScratch)
	if err != nil {
		s.errorf("describe %s: %v", soakScratch, err)
	} else {
		var n int64
		for _, pi := range info.Partitions {
			n += pi.HighWatermark
		}
		if n != 50 {
			s.errorf("%s holds %d records, not 50", soakScratch, n)
		}
	}
	if err := b.DeleteTopic(ctx, soakScratch); err != nil {
		s.errorf("delete %s: %v", soakScratch, err)
	}
	for i := range 2 {
		if _, err := s.fs.Stat(filepath.Join(s.root, soakScratch+"-"+strconv.Itoa(i))); err == nil {
			s.errorf("%s-%d: its directory is still there after DeleteTopic", soakScratch, i)
		}
	}
}

// checkInfo checks what DescribeTopic says at any time: offsets in order,
// log start offsets that never go back, and size retention that never
// leaves less than retention.bytes behind.
func (s *soakRun) checkInfo(info runnel.TopicInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pi := range info.Partitions {
		tp := api.TopicPartition{Topic: info.Name, Partition: pi.Partition}
		if !(0 <= pi.LogStartOffset && pi.LogStartOffset <= pi.HighWatermark && pi.HighWatermark <= pi.LogEndOffset) {
			s.errorf("%v: log start %d, high watermark %d, log end %d", tp, pi.LogStartOffset, pi.HighWatermark, pi.LogEndOffset)
		}
		m := s.part(tp)
		if pi.LogStartOffset < m.lso {
			s.errorf("%v: the log start offset went back from %d to %d", tp, m.lso, pi.LogStartOffset)
		}
		m.lso = max(m.lso, pi.LogStartOffset)
		if info.Name == soakMetrics && pi.LogStartOffset > 0 && pi.Size < soakRetBytes {
			s.errorf("%v: size retention left %d bytes, below retention.bytes %d (log start %d)", tp, pi.Size, soakRetBytes, pi.LogStartOffset)
		}
	}
}

type soakEnds struct{ start, end int64 }

// verify reads every partition whole and checks it against the model; the
// producers are stopped. final adds the tombstones' check. It returns the
// log start and end offsets of every partition.
func (s *soakRun) verify(b *runnel.Broker, phase string, final bool) map[api.TopicPartition]soakEnds {
	t := s.t
	ctx := context.Background()
	ends := map[api.TopicPartition]soakEnds{}
	for _, topic := range []string{soakEvents, soakMetrics, soakState} {
		info, err := b.DescribeTopic(ctx, topic)
		require.NoError(t, err, phase)
		s.checkInfo(info)
		s.mu.Lock()
		require.Len(t, info.Partitions, s.nParts[topic], phase)
		s.mu.Unlock()
		for _, pi := range info.Partitions {
			tp := api.TopicPartition{Topic: topic, Partition: pi.Partition}
			for attempt := 0; ; attempt++ {
				if pi.HighWatermark != pi.LogEndOffset {
					s.errorf("%s: %v: high watermark %d, log end %d, with the producers stopped", phase, tp, pi.HighWatermark, pi.LogEndOffset)
				}
				var err error
				if topic == soakState {
					err = s.verifyCompacted(b, phase, tp, pi, final)
				} else {
					err = s.verifyDense(b, phase, tp, pi)
				}
				if err == nil {
					break
				}
				// Retention removed the start while it was read: again.
				if !errors.Is(err, log.ErrOffsetOutOfRange) || attempt == 5 {
					s.errorf("%s: %v: reading [%d, %d): %v", phase, tp, pi.LogStartOffset, pi.HighWatermark, err)
					break
				}
				info, err := b.DescribeTopic(ctx, topic)
				require.NoError(t, err, phase)
				pi = info.Partitions[pi.Partition]
			}
			ends[tp] = soakEnds{pi.LogStartOffset, pi.LogEndOffset}
		}
	}
	return ends
}

// readAll calls f with every record of a partition in [from, to).
func readAll(b *runnel.Broker, tp api.TopicPartition, from, to int64, f func(*record.Record)) error {
	for off := from; off < to; {
		resp, err := b.Fetch(context.Background(), &api.FetchRequest{MaxBytes: 1 << 20,
			Partitions: []api.FetchPartition{{Topic: tp.Topic, Partition: tp.Partition, Offset: off, MaxBytes: 1 << 20}}})
		if err != nil {
			return err
		}
		fp := resp.Partitions[0]
		if fp.Err != nil {
			return fmt.Errorf("fetch at %d: %w", off, fp.Err)
		}
		if len(fp.Records) == 0 {
			return fmt.Errorf("fetch at %d below %d: nothing", off, to)
		}
		for bt, err := range record.Batches(fp.Records) {
			if err != nil {
				return err
			}
			for r, err := range bt.Records() {
				if err != nil {
					return err
				}
				if r.Offset >= off && r.Offset < to {
					r.Topic, r.Partition = tp.Topic, tp.Partition
					f(r)
				}
			}
			off = max(off, bt.NextOffset())
		}
	}
	return nil
}

func (s *soakRun) verifyDense(b *runnel.Broker, phase string, tp api.TopicPartition, pi runnel.PartitionInfo) error {
	now := time.Now().UnixMilli()
	s.mu.Lock()
	m := s.part(tp)
	recs := m.recs
	floor := m.floor
	s.mu.Unlock()
	next := pi.LogStartOffset
	bad := 0
	err := readAll(b, tp, pi.LogStartOffset, pi.HighWatermark, func(r *record.Record) {
		if r.Offset != next && bad < 5 {
			bad++
			s.errorf("%s: %v: record at %d where %d was expected", phase, tp, r.Offset, next)
		}
		next = r.Offset + 1
		rec, ok := recs[r.Offset]
		id, err := checkPayload(r.Value)
		switch {
		case err != nil && bad < 5:
			bad++
			s.errorf("%s: %v at %d: %v", phase, tp, r.Offset, err)
		case !ok && bad < 5:
			bad++
			s.errorf("%s: %v: a record at %d that no producer was told of (%#x)", phase, tp, r.Offset, id)
		case ok && rec.id != id && bad < 5:
			bad++
			s.errorf("%s: %v at %d: record %#x, acknowledged there: %#x", phase, tp, r.Offset, id, rec.id)
		}
	})
	if err != nil {
		return err
	}
	if next != pi.HighWatermark {
		s.errorf("%s: %v: read up to %d of [%d, %d)", phase, tp, next, pi.LogStartOffset, pi.HighWatermark)
	}
	// Every acknowledged record at or past the log start is there (the
	// read found each offset up to the high watermark), and none was
	// acknowledged past it; time retention kept what it must keep.
	protected := pi.HighWatermark
	for off, rec := range recs {
		if off >= pi.HighWatermark {
			s.errorf("%s: %v: record %#x acknowledged at %d, past the end %d", phase, tp, rec.id, off, pi.HighWatermark)
		}
		if tp.Topic == soakEvents && rec.ts >= now-soakRetention.Milliseconds() {
			protected = min(protected, off)
		}
	}
	if tp.Topic == soakEvents && pi.LogStartOffset > max(protected, floor) {
		s.errorf("%s: %v: the log starts at %d, past the first record retention.ms keeps (%d) and past DeleteRecords' %d",
			phase, tp, pi.LogStartOffset, protected, floor)
	}
	// The model forgets what the log no longer holds.
	s.mu.Lock()
	for off := range recs {
		if off < pi.LogStartOffset {
			delete(recs, off)
		}
	}
	s.mu.Unlock()
	return nil
}

func (s *soakRun) verifyCompacted(b *runnel.Broker, phase string, tp api.TopicPartition, pi runnel.PartitionInfo, final bool) error {
	t := s.t
	s.mu.Lock()
	m := s.part(tp)
	latest, keyRec, tombs, stopped := m.latest, m.keyRec, m.tombs, s.stopped
	s.mu.Unlock()
	seenLatest := map[int32]bool{}
	seenKey := map[int32]int64{}
	seenTombs := map[int64]bool{}
	last := int64(-1)
	bad := 0
	fail := func(format string, args ...any) {
		if bad < 5 {
			bad++
			s.errorf("%s: %v: "+format, append([]any{phase, tp}, args...)...)
		}
	}
	err := readAll(b, tp, pi.LogStartOffset, pi.HighWatermark, func(r *record.Record) {
		if r.Offset <= last {
			fail("record at %d after %d", r.Offset, last)
		}
		last = r.Offset
		k, err := strconv.Atoi(strings.TrimPrefix(string(r.Key), "k"))
		if err != nil || !strings.HasPrefix(string(r.Key), "k") {
			fail("record at %d with key %q", r.Offset, r.Key)
			return
		}
		key := int32(k)
		var id uint64
		if r.Value != nil {
			if id, err = checkPayload(r.Value); err != nil {
				fail("at %d: %v", r.Offset, err)
				return
			}
		} else {
			seenTombs[r.Offset] = true
		}
		seenKey[key] = r.Offset
		lo, ok := latest[key]
		switch {
		case !ok:
			fail("a record at %d of key %d that no producer was told of", r.Offset, key)
		case r.Offset > lo:
			fail("a record at %d of key %d, whose latest acknowledged record is at %d", r.Offset, key, lo)
		case r.Offset == lo:
			seenLatest[key] = true
			if rec := keyRec[key]; rec.tomb != (r.Value == nil) || (!rec.tomb && rec.id != id) {
				fail("at %d: record %#x (tombstone %v), acknowledged there: %#x (tombstone %v)", r.Offset, id, r.Value == nil, rec.id, rec.tomb)
			}
		}
	})
	if err != nil {
		return err
	}
	for key, off := range latest {
		rec := keyRec[key]
		switch {
		case !rec.tomb && !seenLatest[key]:
			fail("the latest value of key %d, at %d, is gone", key, off)
		case rec.tomb && !seenLatest[key]:
			if o, ok := seenKey[key]; ok {
				fail("key %d came back: its tombstone at %d is gone, a record at %d is not", key, off, o)
			}
		}
	}
	// Tombstones older than delete.retention.ms, plus the time to roll
	// their segment (segment.ms) and clean it twice (once to stamp it,
	// once past its horizon), are gone by the end.
	horizon := stopped.Add(-(soakDeleteRet + 2*soakSegTime + 8*soakMaint + 3*time.Second)).UnixMilli()
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := 0
	for off, rec := range tombs {
		if !seenTombs[off] {
			delete(tombs, off)
			continue
		}
		kept++
		if final && rec.ts < horizon {
			fail("tombstone of key %d at %d, written %v before the producers stopped, is still there",
				rec.key, off, stopped.Sub(time.UnixMilli(rec.ts)).Round(time.Millisecond))
		}
	}
	if final {
		t.Logf("%v: %d keys, %d tombstones still in the log", tp, len(latest), kept)
	}
	return nil
}

// checkDisk checks, after a retention run with the broker idle, that the
// partitions keep no more than retention allows.
func (s *soakRun) checkDisk(b *runnel.Broker) {
	t := s.t
	now := time.Now()
	info, err := b.DescribeTopic(context.Background(), soakEvents)
	require.NoError(t, err)
	for _, pi := range info.Partitions {
		dir := filepath.Join(s.root, soakEvents+"-"+strconv.Itoa(int(pi.Partition)))
		names, err := s.fs.List(dir)
		require.NoError(t, err)
		var logs []string
		for _, n := range names {
			if strings.HasSuffix(n, ".log") {
				logs = append(logs, n)
			}
		}
		sort.Strings(logs)
		if s.mem || len(logs) < 2 {
			continue
		}
		// A sealed segment last written before now - retention.ms holds
		// only records older than that: retention must have deleted it.
		for _, n := range logs[:len(logs)-1] {
			fi, err := os.Stat(filepath.Join(dir, n))
			require.NoError(t, err)
			if age := now.Sub(fi.ModTime()); age > info.Config.RetentionTime+time.Second {
				s.errorf("%s/%s: a sealed segment last written %v ago, retention.ms %v", dir, n, age.Round(time.Millisecond), info.Config.RetentionTime)
			}
		}
	}
	info, err = b.DescribeTopic(context.Background(), soakState)
	require.NoError(t, err)
	for _, pi := range info.Partitions {
		dir := filepath.Join(s.root, soakState+"-"+strconv.Itoa(int(pi.Partition)))
		names, err := s.fs.List(dir)
		require.NoError(t, err)
		segs := 0
		for _, n := range names {
			if strings.HasSuffix(n, ".log") {
				segs++
			}
		}
		t.Logf("%s-%d: %d segments, %d bytes", soakState, pi.Partition, segs, pi.Size)
	}
	info, err = b.DescribeTopic(context.Background(), soakMetrics)
	require.NoError(t, err)
	for _, pi := range info.Partitions {
		if limit := int64(soakRetBytes + soakSegBig); pi.Size > limit {
			s.errorf("%s-%d: %d bytes after retention, retention.bytes %d plus a segment %d", soakMetrics, pi.Partition, pi.Size, soakRetBytes, soakSegBig)
		}
	}
}

// notePeaks records the largest descriptor and segment counts seen.
func (s *soakRun) notePeaks() {
	segs, _ := s.segments()
	if int64(segs) > s.peakSegs.Load() {
		s.peakSegs.Store(int64(segs))
	}
	if fds, _, _ := s.fds(); int64(fds) > s.peakFds.Load() {
		s.peakFds.Store(int64(fds))
	}
}

// segments counts the segments (.log files) of the data directory's
// partitions, and the sealed ones (all but each partition's last).
func (s *soakRun) segments() (all, sealed int) {
	all, sealed, _ = s.segmentsByTopic()
	return all, sealed
}

// segmentsByTopic is segments, with the partitions and segments of each
// topic.
func (s *soakRun) segmentsByTopic() (all, sealed int, byTopic map[string][2]int) {
	byTopic = map[string][2]int{}
	dirs, err := s.fs.List(s.root)
	if err != nil {
		return 0, 0, byTopic
	}
	for _, d := range dirs {
		i := strings.LastIndexByte(d, '-')
		if i < 0 {
			continue
		}
		names, err := s.fs.List(filepath.Join(s.root, d))
		if err != nil {
			continue
		}
		n := 0
		for _, name := range names {
			if strings.HasSuffix(name, ".log") {
				n++
			}
		}
		all += n
		sealed += max(n-1, 0)
		c := byTopic[d[:i]]
		byTopic[d[:i]] = [2]int{c[0] + 1, c[1] + n}
	}
	return all, sealed, byTopic
}

// diskBytes sums the sizes of the files under the data directory.
func (s *soakRun) diskBytes() int64 {
	var total int64
	var walk func(dir string)
	walk = func(dir string) {
		names, err := s.fs.List(dir)
		if err != nil {
			return
		}
		for _, n := range names {
			fi, err := s.fs.Stat(filepath.Join(dir, n))
			if err != nil {
				continue
			}
			if fi.IsDir() {
				walk(filepath.Join(dir, n))
			} else {
				total += fi.Size()
			}
		}
	}
	walk(s.root)
	return total
}

// fds counts the process's open descriptors, those into the data
// directory, and those of deleted files in it (Linux only).
func (s *soakRun) fds() (all, inDir, deleted int) {
	if runtime.GOOS != "linux" {
		return 0, 0, 0
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, 0, 0
	}
	for _, e := range ents {
		all++
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil || s.mem || !strings.HasPrefix(target, s.root+"/") {
			continue
		}
		inDir++
		if strings.HasSuffix(target, " (deleted)") {
			deleted++
		}
	}
	return all, inDir, deleted
}

// maps counts the process's memory mappings, those of files in the data
// directory, and those of deleted files in it (Linux only).
func (s *soakRun) maps() (all, inDir, deleted int) {
	if runtime.GOOS != "linux" {
		return 0, 0, 0
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		all++
		line := sc.Text()
		if s.mem || !strings.Contains(line, " "+s.root+"/") {
			continue
		}
		inDir++
		if strings.HasSuffix(line, " (deleted)") {
			deleted++
		}
	}
	return all, inDir, deleted
}

func rssKB() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

func (s *soakRun) measure(phase string) soakSample {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	x := soakSample{phase: phase, heap: ms.HeapAlloc, rssKB: rssKB(), goroutines: runtime.NumGoroutine(), diskBytes: s.diskBytes()}
	x.segments, x.sealed = s.segments()
	x.fds, x.fdsDir, x.fdsDeleted = s.fds()
	x.maps, x.mapsDir, x.mapsDel = s.maps()
	return x
}

// checkOpen checks one measurement of the open, idle broker, and compares
// it with the first (the warm-up).
func (s *soakRun) checkOpen(x soakSample) {
	if !s.mem && runtime.GOOS == "linux" {
		if x.fdsDeleted > 0 || x.mapsDel > 0 {
			s.errorf("%s: %d descriptors and %d mappings of deleted files in the data directory", x.phase, x.fdsDeleted, x.mapsDel)
		}
		if x.fdsDir > 3*x.segments+1 {
			s.errorf("%s: %d descriptors into the data directory, %d segments explain %d", x.phase, x.fdsDir, x.segments, 3*x.segments+1)
		}
		if x.mapsDir > 2*x.sealed {
			s.errorf("%s: %d mappings of the data directory, %d sealed segments explain %d", x.phase, x.mapsDir, x.sealed, 2*x.sealed)
		}
	}
	// The first epoch and reopen are the warm-up (the race detector's
	// own mappings grow through them): growth counts from the second.
	if len(s.samples) < 2 {
		return
	}
	w := s.samples[1]
	if runtime.GOOS == "linux" {
		// On disk, each segment holds three descriptors and each sealed
		// one maps two indexes; in memory, none.
		fdPer, mapPer := 3, 2
		if s.mem {
			fdPer, mapPer = 0, 0
		}
		if grown := (x.fds - fdPer*x.segments) - (w.fds - fdPer*w.segments); grown > 8 {
			s.errorf("%s: descriptors less %d per segment grew by %d since %s (%d fds, %d segments; then %d, %d)",
				x.phase, fdPer, grown, w.phase, x.fds, x.segments, w.fds, w.segments)
		}
		if grown := (x.maps - mapPer*x.sealed) - (w.maps - mapPer*w.sealed); grown > 32 {
			s.errorf("%s: mappings less %d per sealed segment grew by %d since %s (%d maps, %d sealed; then %d, %d)",
				x.phase, mapPer, grown, w.phase, x.maps, x.sealed, w.maps, w.sealed)
		}
	}
	if limit := 2*w.heap + 32<<20; x.heap > limit {
		s.errorf("%s: heap %d MiB after GC, %d MiB at %s", x.phase, x.heap>>20, w.heap>>20, w.phase)
	}
}

func (s *soakRun) report(before soakSample) {
	t := s.t
	t.Logf("%d records produced, %d admin rounds; consumer skips explained by the log start: %v; %d out-of-range errors (ResetNone), %d seeks to a time",
		s.produced.Load(), s.admin.Load(), s.resets, s.oor.Load(), s.seeks.Load())
	t.Logf("peak during the run: %d descriptors, %d segments", s.peakFds.Load(), s.peakSegs.Load())
	t.Logf("%-22s %5s %6s %5s %6s %5s %5s %8s %8s %5s %9s", "phase", "segs", "sealed", "fds", "fdsDir", "maps", "mDir", "heapKiB", "rssKiB", "gor", "diskKiB")
	for _, x := range append([]soakSample{before}, s.samples...) {
		t.Logf("%-22s %5d %6d %5d %6d %5d %5d %8d %8d %5d %9d", x.phase, x.segments, x.sealed, x.fds, x.fdsDir, x.maps, x.mapsDir,
			x.heap>>10, x.rssKB, x.goroutines, x.diskBytes>>10)
	}
	_, _, byTopic := s.segmentsByTopic()
	for topic, c := range byTopic {
		t.Logf("%s: %d partitions, %d segments", topic, c[0], c[1])
	}
	if !s.mem && len(s.samples) > 0 {
		x := s.samples[len(s.samples)-1]
		if x.segments > 0 {
			t.Logf("descriptors per segment: %.2f; mappings per sealed segment: %.2f",
				float64(x.fdsDir-1)/float64(x.segments), float64(x.mapsDir)/float64(max(x.sealed, 1)))
		}
	}
}

// errorf fails the test, logging the first 30 failures and counting the
// rest.
func (s *soakRun) errorf(format string, args ...any) {
	s.t.Helper()
	if n := s.errs.Add(1); n <= 30 {
		s.t.Errorf(format, args...)
	} else if n == 31 {
		s.t.Errorf("more failures follow, not logged")
	}
}
