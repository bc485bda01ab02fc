package runnel_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// Review 45obs: an SRE wiring an embedded broker into metrics and health
// checks, with the public API only. obsExporter is the exporter such
// a user writes (docs/details.md, "Monitoring an embedded broker"); the
// tests check that its numbers are right, consistent and cheap.

// obsSample is one partition's gauges as an exporter reads them.
type obsSample struct {
	Topic     string
	ID        log.TopicID // a topic deleted and created again has a new one
	Partition int32
	LogStart  int64
	HW        int64
	LEO       int64
	Size      int64
	// Err is PartitionInfo.Err: nil while the partition takes appends.
	// An exporter's gauge is its being nil or not, labelled by its
	// api.Name (KAFKA_STORAGE_ERROR).
	Err error
}

// obsKey names a partition's series: by the topic's ID too, so that a
// topic created again under its name is a new series, not a counter reset.
type obsKey struct {
	ID        log.TopicID
	Partition int32
}

// obsExporter is the exporter: gauges of every partition, from
// Topics and DescribeTopic, and a health check.
type obsExporter struct {
	b *runnel.Broker
	// perTopic bounds each DescribeTopic: a topic whose partition a
	// DeleteTopic or a config change holds, or waits for behind an append
	// stuck on a disk that hangs, is reported stuck rather than holding up
	// the other topics' gauges.
	perTopic time.Duration
}

// Scrape reads every partition's gauges: Topics, then DescribeTopic of
// each with a deadline of its own. A topic deleted between the two is
// skipped; one not described in time is listed in stuck. err is
// ErrClosed once the broker is closed, or scrapeCtx's error.
func (e obsExporter) Scrape(scrapeCtx context.Context) (ss []obsSample, stuck []string, err error) {
	for _, name := range e.b.Topics() {
		ctx, cancel := context.WithTimeout(scrapeCtx, e.perTopic)
		info, err := e.b.DescribeTopic(ctx, name)
		cancel()
		switch {
		case errors.Is(err, runnel.ErrUnknownTopic):
			continue // deleted since Topics
		case err != nil && scrapeCtx.Err() == nil && ctx.Err() != nil:
			stuck = append(stuck, name)
			continue
		case err != nil:
			return ss, stuck, err
		}
		for _, p := range info.Partitions {
			ss = append(ss, obsSample{Topic: name, ID: info.ID, Partition: p.Partition,
				LogStart: p.LogStartOffset, HW: p.HighWatermark, LEO: p.LogEndOffset, Size: p.Size, Err: p.Err})
		}
	}
	return ss, stuck, nil
}

// Healthz reports whether the broker is open: DescribeTopic of a name no
// topic has answers ErrUnknownTopic from an open broker and ErrClosed
// from a closed one (Topics answers an empty list either way). It touches
// no partition, so an admin call or a disk that hangs does not hold it up.
func (e obsExporter) Healthz(ctx context.Context) error {
	_, err := e.b.DescribeTopic(ctx, "healthz-probe-no-such-topic")
	if errors.Is(err, runnel.ErrUnknownTopic) {
		return nil
	}
	if err == nil {
		return errors.New("a topic is named like the probe")
	}
	return err
}

// obsScrape is the exporter's Scrape for tests: with a long
// deadline per topic, and an error for a topic stuck past it.
func obsScrape(ctx context.Context, b *runnel.Broker) ([]obsSample, error) {
	ss, stuck, err := obsExporter{b: b, perTopic: 30 * time.Second}.Scrape(ctx)
	if err == nil && len(stuck) > 0 {
		err = fmt.Errorf("topics stuck: %q", stuck)
	}
	return ss, err
}

// obsCheck is what an exporter's alerts assume of each sample, and of
// a partition's samples over time (prev, nil for its first): 0 <= log
// start <= high watermark <= log end, a size not negative, and offsets that
// never go back.
func obsCheck(s obsSample, prev *obsSample) error {
	if s.LogStart < 0 || s.LogStart > s.HW || s.HW > s.LEO || s.Size < 0 {
		return fmt.Errorf("%s-%d: inconsistent %+v", s.Topic, s.Partition, s)
	}
	if prev != nil && (s.LogStart < prev.LogStart || s.HW < prev.HW || s.LEO < prev.LEO) {
		return fmt.Errorf("%s-%d: went back from %+v to %+v", s.Topic, s.Partition, *prev, s)
	}
	return nil
}

// obsLogBytes is the size of a partition's .log files on disk.
func obsLogBytes(t *testing.T, dir, topic string, partition int32) int64 {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, fmt.Sprintf("%s-%d", topic, partition)))
	require.NoError(t, err)
	var n int64
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".log") {
			fi, err := e.Info()
			require.NoError(t, err)
			n += fi.Size()
		}
	}
	return n
}

// obsProduce writes n records of 100 bytes to topic's partition,
// keyed key (nil for none), ten a batch.
func obsProduce(t *testing.T, p *producer.Producer, topic string, partition int32, n int, key func(i int) []byte) {
	t.Helper()
	for i := 0; i < n; i += 10 {
		var recs []*record.Record
		for j := i; j < i+10 && j < n; j++ {
			var k []byte
			if key != nil {
				k = key(j)
			}
			recs = append(recs, &record.Record{Topic: topic, Partition: partition, Key: k, Value: []byte(strings.Repeat("v", 100))})
		}
		require.NoError(t, p.ProduceSync(context.Background(), recs...))
	}
}

// obsFind returns topic's partition's sample.
func obsFind(t *testing.T, ss []obsSample, topic string, partition int32) obsSample {
	t.Helper()
	for _, s := range ss {
		if s.Topic == topic && s.Partition == partition {
			return s
		}
	}
	require.Failf(t, "no sample", "%s-%d in %+v", topic, partition, ss)
	return obsSample{}
}

// TestObservabilityAtRestOnDisk: at rest, on disk, the gauges say what the
// data directory holds: the high watermark and log end are the records
// produced, the log start what DeleteRecords and retention left, and
// Size the bytes of the partition's .log files, after each of produce,
// DeleteRecords, retention, compaction, a restart and a topic deleted and
// created again (a new ID, its offsets from 0).
func TestObservabilityAtRestOnDisk(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	lines := newObsLines()
	b, err := runnel.Open(runnel.Config{Dir: dir, Logger: slog.New(lines)})
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	seg := log.Config{SegmentBytes: 4096}
	require.NoError(t, b.CreateTopic(ctx, "events", log.TopicConfig{Partitions: 2, Config: seg}))
	compacted := seg
	compacted.CleanupPolicy = log.Compact
	compacted.MinCleanableDirtyRatio = 0.01
	require.NoError(t, b.CreateTopic(ctx, "state", log.TopicConfig{Partitions: 1, Config: compacted}))
	p, err := producer.New(b, producer.RecordPartitioner(producer.ManualPartitioner()))
	require.NoError(t, err)
	defer func() { require.NoError(t, p.Close()) }()

	check := func(step string, want map[string][3]int64) []obsSample {
		t.Helper()
		ss, err := obsScrape(ctx, b)
		require.NoError(t, err, step)
		require.Len(t, ss, 3, step)
		for _, s := range ss {
			require.NoError(t, obsCheck(s, nil), step)
			require.NoError(t, s.Err, step)
			k := fmt.Sprintf("%s-%d", s.Topic, s.Partition)
			if w, ok := want[k]; ok {
				require.Equal(t, w, [3]int64{s.LogStart, s.HW, s.LEO}, "%s: %s start, hw, leo", step, k)
			}
			require.Equal(t, obsLogBytes(t, dir, s.Topic, s.Partition), s.Size, "%s: %s Size against its .log files", step, k)
		}
		return ss
	}

	obsProduce(t, p, "events", 0, 300, nil)
	obsProduce(t, p, "events", 1, 10, nil)
	obsProduce(t, p, "state", 0, 200, func(i int) []byte { return []byte{byte(i % 5)} })
	check("produced", map[string][3]int64{"events-0": {0, 300, 300}, "events-1": {0, 10, 10}, "state-0": {0, 200, 200}})

	low, err := b.DeleteRecords(ctx, "events", 0, 150)
	require.NoError(t, err)
	require.EqualValues(t, 150, low)
	check("deleted", map[string][3]int64{"events-0": {150, 300, 300}})

	before := obsFind(t, check("before compaction", nil), "state", 0)
	require.NoError(t, b.UpdateTopicConfig(ctx, "events", func(c *log.Config) { c.RetentionBytes = 8192 }))
	require.NoError(t, b.Maintain(ctx))
	ss := check("maintained", map[string][3]int64{"events-1": {0, 10, 10}, "state-0": {0, 200, 200}})
	e0 := obsFind(t, ss, "events", 0)
	require.Greater(t, e0.LogStart, int64(150), "retention moved the log start")
	require.Less(t, obsFind(t, ss, "state", 0).Size, before.Size, "compaction shrank the log")

	// A restart finds the same numbers.
	require.NoError(t, b.Close())
	b, err = runnel.Open(runnel.Config{Dir: dir, Logger: slog.New(lines)})
	require.NoError(t, err)
	again := check("reopened", nil)
	// The lines an exporter counts name their partition.
	for _, kind := range []string{"INFO log opened events-0", "INFO log opened state-0", "INFO compacted state-0",
		"INFO deleting segment events-0"} {
		require.Positive(t, lines.count(kind), kind)
	}
	require.Equal(t, ss, again, "the gauges after a clean restart")

	// A topic deleted and created again: a new ID, offsets from 0.
	require.NoError(t, b.DeleteTopic(ctx, "events"))
	require.NoError(t, b.CreateTopic(ctx, "events", log.TopicConfig{Partitions: 2, Config: seg}))
	re := check("created again", map[string][3]int64{"events-0": {0, 0, 0}, "events-1": {0, 0, 0}})
	require.NotEqual(t, e0.ID, obsFind(t, re, "events", 0).ID)
}

// TestObservabilityUnderLoad: scraped while producers write to topics of
// every fsync policy and a compacted one, DeleteRecords and retention move
// log starts, compaction shrinks a log, config
// changes reopen the logs and a topic is deleted and created again, each
// sample is consistent (log start <= high watermark <= log end) and no
// partition's offsets go back between two scrapes: an alert on an offset
// that decreased fires only for a new topic ID.
func TestObservabilityUnderLoad(t *testing.T) {
	for _, disk := range []bool{false, true} {
		t.Run(fmt.Sprintf("disk=%v", disk), func(t *testing.T) {
			ctx := context.Background()
			lines := newObsLines()
			cfg := runnel.Config{Logger: slog.New(lines)}
			if disk {
				cfg.Dir = testkit.FastTempDir(t) // SyncAlways's fsyncs were most of its time on a disk
			}
			b, err := runnel.Open(cfg)
			require.NoError(t, err)
			defer func() { require.NoError(t, b.Close()) }()
			topics := map[string]log.Config{
				"always":   {Sync: log.SyncAlways, SegmentBytes: 4096},
				"periodic": {Sync: log.SyncPeriodic, FlushMessages: 7, SegmentBytes: 4096},
				"never":    {Sync: log.SyncNever, SegmentBytes: 4096},
				"compact":  {CleanupPolicy: log.Compact, MinCleanableDirtyRatio: 0.01, SegmentBytes: 4096},
			}
			for name, c := range topics {
				require.NoError(t, b.CreateTopic(ctx, name, log.TopicConfig{Partitions: 2, Config: c}))
			}
			require.NoError(t, b.CreateTopic(ctx, "churn", log.TopicConfig{Partitions: 1}))

			wctx, stop := context.WithCancel(ctx)
			var wg sync.WaitGroup
			var produced, steps atomic.Int64
			errs := make(chan error, 16)
			fail := func(err error) {
				select {
				case errs <- err:
				default:
				}
			}
			for _, name := range []string{"always", "periodic", "never", "compact", "churn"} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					p, err := producer.New(b, producer.RecordPartitioner(producer.RoundRobinPartitioner()))
					if err != nil {
						fail(err)
						return
					}
					defer p.Close()
					for wctx.Err() == nil {
						recs := make([]*record.Record, 5)
						for i := range recs {
							recs[i] = &record.Record{Topic: name, Key: []byte{byte(i)}, Value: []byte(strings.Repeat("x", 200))}
						}
						if err := p.ProduceSync(wctx, recs...); err != nil && wctx.Err() == nil && name != "churn" {
							fail(fmt.Errorf("produce to %s: %w", name, err))
							return
						}
						produced.Add(1)
					}
				}()
			}
			wg.Add(1)
			go func() { // the admin side
				defer wg.Done()
				for i := 0; wctx.Err() == nil; i++ {
					name := []string{"always", "periodic", "never"}[i%3]
					var err error
					switch i % 4 {
					case 0:
						_, err = b.DeleteRecords(wctx, name, int32(i%2), api.Latest)
					case 1:
						err = b.Maintain(wctx)
					case 2:
						err = b.UpdateTopicConfig(wctx, name, func(c *log.Config) { c.RetentionBytes = int64(8192 * (1 + i%2)) })
						if err == nil && name == "never" {
							// The policy changes too: the high watermark is the
							// log end, then the durable offset, then again the end.
							err = b.UpdateTopicConfig(wctx, "never", func(c *log.Config) {
								c.Sync = []log.SyncPolicy{log.SyncAlways, log.SyncNever}[i/4%2]
							})
						}
					case 3:
						if err = b.DeleteTopic(wctx, "churn"); err == nil {
							err = b.CreateTopic(wctx, "churn", log.TopicConfig{Partitions: 1})
						}
					}
					if err != nil && wctx.Err() == nil {
						fail(fmt.Errorf("admin step %d: %w", i, err))
						return
					}
					steps.Add(1)
				}
			}()

			c, err := consumer.New(b, consumer.FetchMaxWait(10*time.Millisecond))
			require.NoError(t, err)
			defer func() { require.NoError(t, c.Close()) }()
			read := []string{"always", "periodic", "never", "compact"}
			for _, name := range read {
				for i := range int32(2) {
					require.NoError(t, c.Assign(name, i, consumer.Start()))
				}
			}
			wg.Add(1)
			go func() { // the application reads
				defer wg.Done()
				for _, err := range c.Records(wctx) {
					if err != nil && !errors.Is(err, log.ErrOffsetOutOfRange) && wctx.Err() == nil {
						fail(fmt.Errorf("consume: %w", err))
						return
					}
				}
			}()

			last := map[obsKey]obsSample{}
			// Scrape until the others have done enough (not for a time).
			// Compactions need the compacted topic's segments to roll first.
			// The admin side's steps go through each call on each topic
			// every 12 steps, and "never"'s policy changes at steps 2, 14,
			// 26 and 38 (to SyncAlways, SyncNever, again and again): 40
			// steps do it all over three times, 28 (-short) twice.
			minSteps := int64(40)
			if testing.Short() {
				minSteps = 28
			}
			for i := 0; i < 200 || produced.Load() < 400 || steps.Load() < minSteps ||
				lines.count("INFO compacted") < 3 && i < 100000; i++ {
				select {
				case err := <-errs:
					require.NoError(t, err)
				default:
				}
				// The consumer's positions first, then the high watermarks:
				// these are then at least the positions.
				pos := map[string]int64{}
				for _, name := range read {
					for i := range int32(2) {
						if p, ok := c.Position(name, i); ok {
							pos[fmt.Sprintf("%s-%d", name, i)] = p
						}
						if l, ok := c.Lag(name, i); ok {
							require.GreaterOrEqual(t, l, int64(0), "Lag of %s-%d", name, i)
						}
					}
				}
				ss, err := obsScrape(ctx, b)
				require.NoError(t, err)
				for _, s := range ss {
					if p, ok := pos[fmt.Sprintf("%s-%d", s.Topic, s.Partition)]; ok {
						require.GreaterOrEqual(t, s.HW, p, "%s-%d: high watermark less position", s.Topic, s.Partition)
					}
					k := obsKey{s.ID, s.Partition}
					var prev *obsSample
					if p, ok := last[k]; ok {
						prev = &p
					}
					require.NoError(t, obsCheck(s, prev), "scrape %d", i)
					require.NoError(t, s.Err, "scrape %d: a config change under way is waited for, not reported", i)
					last[k] = s
				}
			}
			stop()
			wg.Wait()
			t.Logf("%d produces, %d admin steps, %d compactions, %d config changes", produced.Load(), steps.Load(),
				lines.count("INFO compacted"), lines.count("INFO log opened"))
			require.Positive(t, lines.count("INFO compacted"))
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
		})
	}
}

// obsLines is the exporter's slog.Handler: it counts the broker's
// lines by level and message (a counter per kind of line, as an SRE
// alerts on "log fenced"), and by partition where the line names one
// (topic= and partition=, which Config.Logger promises), and logs
// nothing. It is a tree of handlers sharing one count (WithAttrs).
type obsLines struct {
	c     *obsCounts
	attrs []slog.Attr
}

// obsCounts are the counts a obsLines tree shares.
type obsCounts struct {
	mu      sync.Mutex
	n       map[string]int
	changed chan struct{} // a line came (buffered: one wake-up)
}

func newObsLines() *obsLines {
	return &obsLines{c: &obsCounts{n: map[string]int{}, changed: make(chan struct{}, 1)}}
}

func (h *obsLines) Enabled(context.Context, slog.Level) bool { return true }
func (h *obsLines) Handle(_ context.Context, r slog.Record) error {
	var topic, partition string
	see := func(a slog.Attr) bool {
		switch a.Key {
		case "topic":
			topic = a.Value.String()
		case "partition":
			partition = a.Value.String()
		}
		return true
	}
	for _, a := range h.attrs {
		see(a)
	}
	r.Attrs(see)
	kind := r.Level.String() + " " + r.Message
	h.c.mu.Lock()
	h.c.n[kind]++
	if topic != "" && partition != "" {
		h.c.n[kind+" "+topic+"-"+partition]++
	}
	h.c.mu.Unlock()
	select {
	case h.c.changed <- struct{}{}:
	default:
	}
	return nil
}
func (h *obsLines) WithAttrs(as []slog.Attr) slog.Handler {
	return &obsLines{c: h.c, attrs: append(h.attrs[:len(h.attrs):len(h.attrs)], as...)}
}
func (h *obsLines) WithGroup(string) slog.Handler { return h }

// count is how many lines of kind ("ERROR log fenced", or "ERROR log
// fenced orders-0" for one partition's) came.
func (h *obsLines) count(kind string) int {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	return h.c.n[kind]
}

// waitFor waits until n lines of kind came, or fails t after
// testkit.HangGuard.
func (h *obsLines) waitFor(t *testing.T, kind string, n int) {
	t.Helper()
	timeout := time.NewTimer(testkit.HangGuard)
	defer timeout.Stop()
	for h.count(kind) < n {
		select {
		case <-h.c.changed:
		case <-timeout.C:
			t.Fatalf("%d lines %q of %d", h.count(kind), kind, n)
		}
	}
}

// TestObservabilityFencedLog: a failed fsync fences a log. The gauges show
// it only where the high watermark is the durable offset (SyncAlways):
// there the log end stays above the high watermark for as long as the
// broker runs, which an alert on "a high watermark that has not moved for
// a minute below the log end" catches. Under SyncNever (fsynced at the maintenance after a
// roll) the offsets look healthy; only the Logger's "log fenced" line
// (Error, once a log, naming its partition) and the failing produces
// tell. "maintenance failed" comes once while a partition's failure
// lasts, not at each run: an alert counts lines of a kind, not failures.
//
// In a synctest bubble: the produce to the fenced log must be answered
// (ErrLogFenced) within the delivery timeout (500 ms), which on the
// real clock a loaded machine could miss (ErrDeliveryTimeout alone).
func TestObservabilityFencedLog(t *testing.T) {
	synctest.Test(t, testObservabilityFencedLog)
}

func testObservabilityFencedLog(t *testing.T) {
	ctx := context.Background()
	var failing atomic.Bool
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && failing.Load() && strings.HasSuffix(name, ".log") {
			return vfs.ErrInjected
		}
		return nil
	}))
	lines := newObsLines()
	b, err := runnel.Open(runnel.Config{FS: fsys, Dir: "/d", Logger: slog.New(lines), MaintenanceInterval: time.Millisecond})
	require.NoError(t, err)
	defer func() { _ = b.Close() }()
	require.NoError(t, b.CreateTopic(ctx, "always", log.TopicConfig{Partitions: 1}))
	require.NoError(t, b.CreateTopic(ctx, "never", log.TopicConfig{Partitions: 1, Config: log.Config{Sync: log.SyncNever, SegmentBytes: 2048}}))
	p, err := producer.New(b, producer.RecordPartitioner(producer.ManualPartitioner()))
	require.NoError(t, err)
	defer func() { _ = p.Close() }()
	obsProduce(t, p, "always", 0, 10, nil)
	obsProduce(t, p, "never", 0, 10, nil)

	failing.Store(true)
	err = p.ProduceSync(ctx, &record.Record{Topic: "always", Value: []byte("x")})
	require.ErrorIs(t, err, log.ErrLogFenced)
	// One append (one record, one batch) that rolls the segment, which
	// holds the first ten records however they were batched: the next
	// maintenance fsyncs it.
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "never", Value: make([]byte, 1000)}))
	// A log's "log fenced" may come after the call that met the failure
	// returned (once its fsync round ended); the broker's own maintenance
	// logs its failures (a Maintain call returns them), at Error when they
	// begin, then at Debug at each round while they last.
	lines.waitFor(t, "ERROR log fenced", 2)
	lines.waitFor(t, "DEBUG maintenance still failing always-0", 3)
	lines.waitFor(t, "DEBUG maintenance still failing never-0", 3)
	require.Equal(t, 1, lines.count("ERROR log fenced always-0"))
	require.Equal(t, 1, lines.count("ERROR log fenced never-0"))
	require.Equal(t, 1, lines.count("ERROR maintenance failed always-0"), "once while it lasts, not at each run")
	require.Equal(t, 1, lines.count("ERROR maintenance failed never-0"), "once while it lasts, not at each run")

	ss, err := obsScrape(ctx, b)
	require.NoError(t, err)
	always, never := obsFind(t, ss, "always", 0), obsFind(t, ss, "never", 0)
	require.Equal(t, [2]int64{10, 11}, [2]int64{always.HW, always.LEO}, "SyncAlways: the fenced append stays above the high watermark")
	require.Equal(t, [2]int64{11, 11}, [2]int64{never.HW, never.LEO}, "SyncNever: the offsets do not tell")
	// PartitionInfo.Err tells, for both: the storage error the next
	// append gets, with its cause.
	for _, s := range []obsSample{always, never} {
		require.ErrorIs(t, s.Err, log.ErrLogFenced, s.Topic)
		require.ErrorIs(t, s.Err, vfs.ErrInjected, s.Topic)
		require.Equal(t, "KAFKA_STORAGE_ERROR", api.Name(s.Err), s.Topic)
	}
	// The produces tell, once their delivery timeout ends: the storage
	// error is retriable (KAFKA_STORAGE_ERROR), so a producer retries it.
	// Its first attempt fails at once, its retries too, until the
	// timeout (was 2 s, all of the test's time).
	q, err := producer.New(b, producer.DeliveryTimeout(500*time.Millisecond), producer.Linger(0))
	require.NoError(t, err)
	defer func() { require.NoError(t, q.Close()) }()
	err = q.ProduceSync(ctx, &record.Record{Topic: "never", Value: []byte("x")})
	t.Logf("%v", err)
	require.ErrorIs(t, err, producer.ErrDeliveryTimeout)
	require.ErrorIs(t, err, log.ErrLogFenced)
}

// TestObservabilityFailedReopen: a config change that cannot open a
// partition's log again leaves it closed, answering the storage error,
// until the broker's maintenance reopens it. Its offsets stay as they
// were (the closed log's); only PartitionInfo.Err, and the "maintenance
// failed" line, tell. Once the maintenance has reopened it, Err is nil
// again. In a synctest bubble: the records written must be written
// within the producer's short delivery timeout, which on the real clock
// a loaded machine could miss.
func TestObservabilityFailedReopen(t *testing.T) {
	synctest.Test(t, testObservabilityFailedReopen)
}

func testObservabilityFailedReopen(t *testing.T) {
	ctx := context.Background()
	var armed atomic.Bool
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if armed.Load() && op == vfs.OpList && filepath.ToSlash(name) == "/d/orders-1" {
			return vfs.ErrInjected
		}
		return nil
	}))
	b, err := runnel.Open(runnel.Config{FS: fsys, Dir: "/d", MaintenanceInterval: time.Hour})
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	require.NoError(t, b.CreateTopic(ctx, "orders", log.TopicConfig{Partitions: 2}))
	// A short delivery timeout: the storage error is retriable.
	p, err := producer.New(b, producer.RecordPartitioner(producer.ManualPartitioner()), producer.DeliveryTimeout(time.Second))
	require.NoError(t, err)
	defer func() { require.NoError(t, p.Close()) }()
	obsProduce(t, p, "orders", 0, 10, nil)
	obsProduce(t, p, "orders", 1, 20, nil)
	before, err := obsScrape(ctx, b)
	require.NoError(t, err)

	armed.Store(true)
	require.ErrorIs(t, b.UpdateTopicConfig(ctx, "orders", func(c *log.Config) { c.MaxMessageBytes = 2 << 20 }), vfs.ErrInjected)
	ss, err := obsScrape(ctx, b)
	require.NoError(t, err)
	healthy, closed := obsFind(t, ss, "orders", 0), obsFind(t, ss, "orders", 1)
	require.NoError(t, healthy.Err)
	require.ErrorIs(t, closed.Err, log.ErrLogFenced)
	require.ErrorIs(t, closed.Err, vfs.ErrInjected, "with its cause")
	require.Equal(t, "KAFKA_STORAGE_ERROR", api.Name(closed.Err))
	was := obsFind(t, before, "orders", 1)
	require.Equal(t, [4]int64{was.LogStart, was.HW, was.LEO, was.Size}, [4]int64{closed.LogStart, closed.HW, closed.LEO, closed.Size}, "the offsets do not tell")
	// Err is the error the partition's appends get.
	err = p.ProduceSync(ctx, &record.Record{Topic: "orders", Partition: 1, Value: []byte("x")})
	require.ErrorIs(t, err, log.ErrLogFenced)
	require.ErrorIs(t, err, vfs.ErrInjected)
	require.ErrorIs(t, b.Maintain(ctx), vfs.ErrInjected, "the maintenance tries again, in vain while the fault lasts")
	ss, err = obsScrape(ctx, b)
	require.NoError(t, err)
	require.ErrorIs(t, obsFind(t, ss, "orders", 1).Err, log.ErrLogFenced)

	armed.Store(false)
	require.NoError(t, b.Maintain(ctx))
	ss, err = obsScrape(ctx, b)
	require.NoError(t, err)
	for _, s := range ss {
		require.NoError(t, s.Err, "reopened")
	}
	require.EqualValues(t, 20, obsFind(t, ss, "orders", 1).LEO)
	obsProduce(t, p, "orders", 1, 10, nil)
}

// TestObservabilityDescribeTopicDeletedWhileItWaits: a DescribeTopic that
// waits for a partition's lock behind a DeleteTopic answers
// ErrUnknownTopic once the deletion is done, as a call made after it
// does, which the exporter skips. It used to answer the offsets of the
// deleted partition's closed log.
func TestObservabilityDescribeTopicDeletedWhileItWaits(t *testing.T) {
	ctx := context.Background()
	b, hang, stuck, release := obsHangingDisk(t)
	require.NoError(t, b.CreateTopic(ctx, "orders", log.TopicConfig{Partitions: 1}))
	p, err := producer.New(b)
	require.NoError(t, err)
	defer func() { require.NoError(t, p.Close()) }()
	defer release() // first: a failed assertion frees the stuck append, or p.Close waits for it
	produced := obsStuckAppend(t, ctx, p, "orders", hang, stuck)
	deleted := make(chan error, 1)
	go func() { deleted <- b.DeleteTopic(ctx, "orders") }()
	testkit.AwaitParked(t, obsLockWait("runnel.(*Broker).DeleteTopic"))
	described := make(chan error, 1)
	go func() { _, err := b.DescribeTopic(ctx, "orders"); described <- err }()
	testkit.AwaitParked(t, obsLockWait("runnel.(*Broker).DescribeTopic"))

	release()
	if err := testkit.Await(t, produced, "the stuck ProduceSync's answer"); err != nil {
		// Written, then the topic deleted before its fsync: its
		// acknowledgement fails.
		require.ErrorIs(t, err, runnel.ErrUnknownTopic)
	}
	require.NoError(t, testkit.Await(t, deleted, "DeleteTopic's answer"))
	require.ErrorIs(t, testkit.Await(t, described, "DescribeTopic's answer"), runnel.ErrUnknownTopic)
	ss, err := obsScrape(ctx, b)
	require.NoError(t, err)
	require.Empty(t, ss)
}

// TestObservabilityDescribeTopicRacingClose: DescribeTopic calls racing
// the broker's Close answer the topic as it was, every partition taking
// appends, or ErrClosed: never the closed logs as partitions that refuse
// appends (Err matching log.ErrClosed), which a partition Close closed
// under a call used to read as.
func TestObservabilityDescribeTopicRacingClose(t *testing.T) {
	ctx := context.Background()
	rounds := 200
	if testing.Short() {
		rounds = 50
	}
	var described, closed int
	for range rounds {
		b, err := runnel.Open(runnel.Config{})
		require.NoError(t, err)
		require.NoError(t, b.CreateTopic(ctx, "orders", log.TopicConfig{Partitions: 64}))
		done := make(chan struct{})
		answers := make(chan error, 1)
		go func() {
			defer close(answers)
			for {
				info, err := b.DescribeTopic(ctx, "orders")
				if err != nil {
					answers <- err
					return
				}
				for _, p := range info.Partitions {
					if p.Err != nil {
						answers <- fmt.Errorf("partition %d: %w", p.Partition, p.Err)
						return
					}
				}
				described++
				select {
				case <-done:
					answers <- nil
					return
				default:
				}
			}
		}()
		runtime.Gosched()
		require.NoError(t, b.Close())
		close(done)
		if err := testkit.Await(t, answers, "the describing goroutine's answer"); err != nil {
			require.ErrorIs(t, err, runnel.ErrClosed)
			require.NotErrorIs(t, err, log.ErrClosed, "no partition read as closed")
			closed++
		}
	}
	t.Logf("%d descriptions, %d rounds ended by ErrClosed", described, closed)
}

// TestObservabilityProducerBufferedReturnsToZero: BufferedRecords and
// BufferedBytes, the gauges of a producer's backlog, come back to 0
// after Flush whatever the records' fate (delivered; failed by the
// broker: unknown topic, too large; failed by the producer: their ctx
// ended, delivery timeout, buffer full for TryProduce), and after Close
// with records held in flight. In a synctest bubble: the ten records
// delivered must be delivered within the delivery timeout (a second)
// that the refused ones wait out, which on the real clock a loaded
// machine could miss (and count 29 failed, not 28).
func TestObservabilityProducerBufferedReturnsToZero(t *testing.T) {
	synctest.Test(t, testObservabilityProducerBufferedReturnsToZero)
}

func testObservabilityProducerBufferedReturnsToZero(t *testing.T) {
	ctx := context.Background()
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 2))
	f := runneltest.NewFaults(t, b)
	lines := newObsLines()
	p, err := producer.New(f, producer.Logger(slog.New(lines)), producer.MaxBufferedRecords(20), producer.DeliveryTimeout(time.Second),
		producer.RetryBackoff(time.Millisecond), producer.Linger(500*time.Millisecond))
	require.NoError(t, err)
	defer func() { require.NoError(t, p.Close()) }() // a second Close is nil
	var failed atomic.Int64
	promise := func(_ *record.Record, err error) {
		if err != nil {
			failed.Add(1)
		}
	}
	flushed := func(step string) {
		t.Helper()
		// Bounded: a backlog that never empties (space not given back)
		// fails the step, on the bubble's clock, rather than hanging.
		fctx, cancel := context.WithTimeout(ctx, testkit.HangGuard)
		defer cancel()
		require.NoError(t, p.Flush(fctx), step)
		require.Zero(t, p.BufferedRecords(), step)
		require.Zero(t, p.BufferedBytes(), step)
	}
	for range 10 {
		p.Produce(ctx, &record.Record{Topic: "orders", Value: []byte("ok")}, promise)
	}
	require.LessOrEqual(t, p.BufferedRecords(), int64(10))
	flushed("delivered")

	p.Produce(ctx, &record.Record{Topic: "nope", Value: []byte("x")}, promise)
	p.Produce(ctx, &record.Record{Topic: "orders", Value: make([]byte, 2<<20)}, promise)
	cctx, cancel := context.WithCancel(ctx)
	p.Produce(cctx, &record.Record{Topic: "orders", Value: []byte("x")}, promise)
	cancel()
	flushed("failed by the broker and by their ctx")

	r := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrNotLeader, Count: runneltest.Unlimited})
	for range 25 {
		p.TryProduce(ctx, &record.Record{Topic: "orders", Value: []byte("x")}, promise)
	}
	flushed("timed out, and refused as the buffer was full")
	require.Positive(t, lines.count("WARN batch failed"), "the lines tell")
	r.Remove()
	require.EqualValues(t, 28, failed.Load())

	require.NoError(t, p.Close())
	require.Zero(t, p.BufferedRecords(), "after Close")
	require.Zero(t, p.BufferedBytes(), "after Close")

	// Close with records held in flight, and a Produce waiting for space
	// (which holds none): a producer of its own, whose records do not
	// time out meanwhile.
	q, err := producer.New(f, producer.MaxBufferedRecords(20))
	require.NoError(t, err)
	defer func() { require.NoError(t, q.Close()) }()
	failed.Store(0)
	hold := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.HoldRequest, Count: runneltest.Unlimited})
	defer hold.Remove()
	for range 5 {
		q.Produce(ctx, &record.Record{Topic: "orders", Value: []byte("x")}, promise)
	}
	flushDone := make(chan error, 1)
	go func() { flushDone <- q.Flush(ctx) }() // sends without lingering; ends with Close
	wctx, wcancel := context.WithTimeout(ctx, testkit.HangGuard)
	defer wcancel()
	require.NoError(t, hold.Wait(wctx, 1))
	require.EqualValues(t, 5, q.BufferedRecords())
	for range 15 {
		q.Produce(ctx, &record.Record{Topic: "orders", Value: []byte("x")}, promise)
	}
	blocked := make(chan struct{})
	go func() {
		defer close(blocked)
		q.Produce(ctx, &record.Record{Topic: "orders", Value: []byte("x")}, promise)
	}()
	testkit.AwaitParked(t, testkit.Wait{State: "select", In: "producer.(*Producer).reserveQueued", Under: []string{"producer.(*Producer).Produce"}})
	require.EqualValues(t, 20, q.BufferedRecords())
	require.NoError(t, q.Close())
	require.ErrorIs(t, <-flushDone, producer.ErrClosed)
	require.Zero(t, q.BufferedRecords(), "after Close")
	require.Zero(t, q.BufferedBytes(), "after Close")
	testkit.Await(t, blocked, "the Produce waiting for space to return after Close")
	require.Zero(t, q.BufferedRecords(), "after the waiting Produce returned")
	require.Zero(t, q.BufferedBytes(), "after the waiting Produce returned")
	require.EqualValues(t, 21, failed.Load())
}

// obsPollUntil polls c until cond holds, at most 50 Polls.
func obsPollUntil(t *testing.T, c *consumer.Consumer, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 50 && !cond(); i++ {
		_, _ = c.Poll(context.Background())
	}
	require.True(t, cond(), what)
}

// TestObservabilityConsumerLag: Lag is the lag the last fetch saw
// (KIP-695's currentLag): 0 while records arrive that no fetch has seen,
// frozen while fetches fail, and not there (false) between a reset and
// the next fetch. An exporter that wants the lag now reads the high
// watermark from DescribeTopic and subtracts Position; that can go
// negative for a moment after the topic is deleted and created again (the
// position still the old topic's), so the exporter clamps it at 0.
func TestObservabilityConsumerLag(t *testing.T) {
	ctx := context.Background()
	b := runneltest.NewBroker(t, runneltest.TopicConfig("orders", log.TopicConfig{Partitions: 1}))
	f := runneltest.NewFaults(t, b)
	lines := newObsLines()
	c := runneltest.NewConsumer(t, f, consumer.FetchMaxWait(10*time.Millisecond), consumer.RetryBackoff(time.Millisecond),
		consumer.Logger(slog.New(lines)))
	require.NoError(t, c.Assign("orders", 0, consumer.Start()))
	hwNow := func() int64 {
		info, err := b.DescribeTopic(ctx, "orders")
		require.NoError(t, err)
		return info.Partitions[0].HighWatermark
	}
	lagNow := func() int64 { // the exporter's lag
		pos, ok := c.Position("orders", 0)
		if !ok {
			return -1
		}
		return max(hwNow()-pos, 0)
	}
	lag := func() int64 {
		l, ok := c.Lag("orders", 0)
		if !ok {
			return -1
		}
		return l
	}
	runneltest.ProduceValues(t, b, "orders", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j")
	obsPollUntil(t, c, "read all", func() bool { p, _ := c.Position("orders", 0); return p == 10 })
	require.Zero(t, lag())
	require.Zero(t, lagNow())

	// Records no fetch has seen yet: Lag says 0, the exporter's lag 5.
	runneltest.ProduceValues(t, b, "orders", "k", "l", "m", "n", "o")
	require.Zero(t, lag())
	require.EqualValues(t, 5, lagNow())

	// Fetches failing (retried without a word): Lag stays where it was.
	r := f.Add(runneltest.Fault{Op: runneltest.OpFetch, Err: api.ErrNotLeader, Count: runneltest.Unlimited})
	for range 3 {
		fs, err := c.Poll(ctx)
		require.NoError(t, err)
		require.Zero(t, fs.NumRecords())
	}
	require.Zero(t, lag(), "frozen while fetches fail")
	require.EqualValues(t, 5, lagNow())
	require.Equal(t, 1, lines.count("INFO fetch failed: retrying"), "the lines tell: once at Info, then at Warn every 30 s")
	r.Remove()

	// Deleted under the position: reset to the start, Lag not there until
	// the next fetch, then 0.
	_, err := b.DeleteRecords(ctx, "orders", 0, api.Latest)
	require.NoError(t, err)
	obsPollUntil(t, c, "read to the new start", func() bool { p, _ := c.Position("orders", 0); return p == 15 })
	require.Zero(t, lag())
	require.Equal(t, 1, lines.count("INFO offset out of range: resetting orders-0"), "the records skipped are in its line")

	// Deleted and created again: the position is the old topic's until the
	// consumer finds out; HW - Position is negative then.
	require.NoError(t, b.DeleteTopic(ctx, "orders"))
	require.NoError(t, b.CreateTopic(ctx, "orders", log.TopicConfig{Partitions: 1}))
	runneltest.ProduceValues(t, b, "orders", "x", "y", "z")
	pos, ok := c.Position("orders", 0)
	require.True(t, ok)
	require.EqualValues(t, -12, hwNow()-pos, "HW of the new topic less the old topic's position")
	require.Zero(t, lagNow(), "clamped")
	obsPollUntil(t, c, "read the new topic", func() bool { p, _ := c.Position("orders", 0); return p == 3 })
	require.Zero(t, lag())
	require.Zero(t, lagNow())
}

// TestObservabilityScrapeCost: what a scrape every second costs on 10,000
// partitions (one topic of 10,000, and 1,000 topics of 10): the
// allocations of Topics and DescribeTopic, and no file-system operation
// at all. Lag, Position and BufferedRecords allocate nothing. DescribeTopic grew its
// list of partitions by appending (21 allocations for 10,000 partitions,
// 5 for 10): it now makes it once.
func TestObservabilityScrapeCost(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 20,000 partitions")
	}
	ctx := context.Background()
	ops := vfs.Count()
	b, err := runnel.Open(runnel.Config{FS: vfs.WithFaults(vfs.NewMem(), ops), Dir: "/d", MaintenanceInterval: time.Hour})
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	require.NoError(t, b.CreateTopic(ctx, "wide", log.TopicConfig{Partitions: 10000}))
	for i := range 1000 {
		require.NoError(t, b.CreateTopic(ctx, fmt.Sprintf("t%04d", i), log.TopicConfig{Partitions: 10}))
	}
	p := runneltest.NewProducer(t, b, producer.RecordPartitioner(producer.RoundRobinPartitioner()))
	for range 100 {
		p.Produce(ctx, &record.Record{Topic: "wide", Value: []byte("x")}, nil)
	}
	require.NoError(t, p.Flush(ctx))
	c := runneltest.NewConsumer(t, b)
	require.NoError(t, c.Assign("wide", 7, consumer.Start()))
	obsPollUntil(t, c, "fetched", func() bool { _, ok := c.Lag("wide", 7); return ok })
	// testing.AllocsPerRun counts the whole process's allocations: those
	// of the producer's partition goroutines (100 here), which go on after
	// Flush (their batches' last steps, then a second idle before they
	// end), would count in the runs below. Measure once every goroutine
	// the producer started has ended.
	obsWaitForNoStack(t, "runnel/producer.(*Producer).spawn")

	before := ops.N()
	wide := testing.AllocsPerRun(20, func() {
		if _, err := b.DescribeTopic(ctx, "wide"); err != nil {
			t.Error(err)
		}
	})
	var n int
	all := testing.AllocsPerRun(5, func() {
		ss, err := obsScrape(ctx, b)
		if err != nil {
			t.Error(err)
		}
		n = len(ss)
	})
	topics := testing.AllocsPerRun(20, func() { _ = b.Topics() })
	lag := testing.AllocsPerRun(100, func() { _, _ = c.Lag("wide", 7); _, _ = c.Position("wide", 7) })
	buffered := testing.AllocsPerRun(100, func() { _, _ = p.BufferedRecords(), p.BufferedBytes() })
	t.Logf("allocs: DescribeTopic of 10,000 partitions %.0f, scrape of %d partitions %.0f, Topics of 1,001 %.0f, Lag and Position %.0f, BufferedRecords and BufferedBytes %.0f",
		wide, n, all, topics, lag, buffered)
	require.Equal(t, 20000, n)
	require.LessOrEqual(t, wide, 3.0, "DescribeTopic's allocations, whatever its partition count (2 fill in the config)")
	require.Zero(t, ops.N()-before, "file-system operations of the scrapes")
	require.Zero(t, lag)
	require.Zero(t, buffered)
}

// TestObservabilityScrapeBesideAHungDisk: a scrape does not wait for the
// data path: with an append stuck in its write to a disk that hangs,
// Topics, DescribeTopic, Lag and BufferedRecords answer at once. The
// stuck append does not show in the offsets (the log end moves only once
// the write returned): what shows it is the producer's backlog.
func TestObservabilityScrapeBesideAHungDisk(t *testing.T) {
	ctx := context.Background()
	b, hang, stuck, release := obsHangingDisk(t)
	require.NoError(t, b.CreateTopic(ctx, "orders", log.TopicConfig{Partitions: 1}))
	p, err := producer.New(b)
	require.NoError(t, err)
	defer func() { require.NoError(t, p.Close()) }()
	defer release() // first: a failed assertion frees the stuck append, or p.Close waits for it
	obsProduce(t, p, "orders", 0, 10, nil)
	// A batch frees its space once its promises have returned, maybe after
	// ProduceSync does (see BufferedRecords): after Flush, the backlog
	// below is the stuck record alone.
	require.NoError(t, p.Flush(ctx))
	c := runneltest.NewConsumer(t, b, consumer.FetchMaxWait(10*time.Millisecond))
	require.NoError(t, c.Assign("orders", 0, consumer.Start()))
	obsPollUntil(t, c, "read all", func() bool { p, _ := c.Position("orders", 0); return p == 10 })

	hang.Store(true)
	done := make(chan error, 1)
	go func() { done <- p.ProduceSync(ctx, &record.Record{Topic: "orders", Value: []byte("x")}) }()
	testkit.AwaitHold(t, stuck, done, "the ProduceSync")
	sctx, cancel := context.WithTimeout(ctx, testkit.HangGuard)
	defer cancel()
	ss, err := obsScrape(sctx, b)
	require.NoError(t, err, "a scrape beside a hung append")
	s := obsFind(t, ss, "orders", 0)
	require.Equal(t, [2]int64{10, 10}, [2]int64{s.HW, s.LEO}, "the stuck append is not in the offsets")
	lag, ok := c.Lag("orders", 0)
	require.True(t, ok)
	require.Zero(t, lag)
	require.EqualValues(t, 1, p.BufferedRecords(), "the backlog shows it")
	hang.Store(false)
	release()
	require.NoError(t, testkit.Await(t, done, "ProduceSync's answer"))
}

// TestObservabilityAcrossACrash: what a power cut does to the gauges, per
// fsync policy. The log start never goes back (DeleteRecords and
// retention are durable when they return), nor does a SyncAlways
// partition's high watermark (it is the durable offset); under SyncNever
// and SyncPeriodic the high watermark is the log end, and the records
// not yet fsynced go with the power, so both come back down: an alert on
// a decrease must not take that for a bug, and a rate of records in
// computed from the log end counts them twice.
func TestObservabilityAcrossACrash(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	b, err := runnel.Open(runnel.Config{FS: mem, Dir: "/d", MaintenanceInterval: time.Hour})
	require.NoError(t, err)
	defer func() { _ = b.Close() }()
	cfgs := map[string]log.Config{
		"always":   {Sync: log.SyncAlways},
		"periodic": {Sync: log.SyncPeriodic, FlushMessages: 1000},
		"never":    {Sync: log.SyncNever},
	}
	for name, c := range cfgs {
		c.SegmentBytes = 2048
		c.RetentionBytes = 4096
		require.NoError(t, b.CreateTopic(ctx, name, log.TopicConfig{Partitions: 1, Config: c}))
	}
	p, err := producer.New(b, producer.RecordPartitioner(producer.ManualPartitioner()))
	require.NoError(t, err)
	defer func() { _ = p.Close() }()
	for name := range cfgs {
		obsProduce(t, p, name, 0, 200, nil)
	}
	require.NoError(t, b.Maintain(ctx)) // retention; flushes nothing under SyncNever
	retained, err := obsScrape(ctx, b)
	require.NoError(t, err)
	obsCrashKeeps(t, ctx, mem, retained, false)
	for name := range cfgs {
		_, err := b.DeleteRecords(ctx, name, 0, 180)
		require.NoError(t, err)
		obsProduce(t, p, name, 0, 20, nil)
	}
	before, err := obsScrape(ctx, b)
	require.NoError(t, err)
	obsCrashKeeps(t, ctx, mem, before, true)
}

// obsCrashKeeps opens a broker on what a crash of mem would leave,
// and checks its gauges against before, scraped just before the crash:
// the log start not back, a SyncAlways partition's high watermark not
// back, and, when unsynced (records were appended since the last fsync of
// the others), the others' back.
func obsCrashKeeps(t *testing.T, ctx context.Context, mem *vfs.MemFS, before []obsSample, unsynced bool) {
	t.Helper()
	b2, err := runnel.Open(runnel.Config{FS: mem.CrashClone(vfs.CrashOptions{}), Dir: "/d", MaintenanceInterval: time.Hour})
	require.NoError(t, err)
	defer func() { require.NoError(t, b2.Close()) }()
	after, err := obsScrape(ctx, b2)
	require.NoError(t, err)
	for _, s := range before {
		a := obsFind(t, after, s.Topic, 0)
		t.Logf("%s: before %+v after %+v", s.Topic, s, a)
		require.NoError(t, obsCheck(a, nil))
		require.GreaterOrEqual(t, a.LogStart, s.LogStart, "%s: log start", s.Topic)
		if s.Topic == "always" {
			require.GreaterOrEqual(t, a.HW, s.HW, "%s: high watermark", s.Topic)
		} else if unsynced {
			require.Less(t, a.HW, s.HW, "%s: high watermark", s.Topic)
		}
	}
}

// obsWaitForNoStack returns once no goroutine's stack holds part, or
// fails t after testkit.HangGuard. It looks every 10 ms, not in a spin:
// each look stops the world to dump every stack, and the wait can last
// the producer's idle second.
func obsWaitForNoStack(t *testing.T, part string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	require.Eventually(t, func() bool {
		return !strings.Contains(string(buf[:runtime.Stack(buf, true)]), part)
	}, testkit.HangGuard, 10*time.Millisecond, "a goroutine in %s did not end", part)
}

// obsLockWait is call (a method of the broker's) parked in its wait for
// a partition's lock: in Acquire's select, its waiter queued. A stack
// dump also shows a call in Acquire on its way there, not yet in the
// lock's line, so that a call the test makes next can be served before
// it: under load, TestObservabilityDescribeTopicDeletedWhileItWaits saw
// its DeleteTopic so, and its DescribeTopic took the partition's lock
// shared at once, never to wait.
func obsLockWait(call string) testkit.Wait {
	return testkit.Wait{State: "select", In: "semaphore.(*Weighted).Acquire", Under: []string{call}}
}

// TestObservabilityScrapeBehindAWaitingAdminCall: DescribeTopic waits for a
// partition's lock when a DeleteTopic (or a config change) holds it, and
// also when one waits for it: the lock serves its callers in turn, so a
// DeleteTopic waiting behind an append stuck on a disk that hangs holds
// up the scrape of that topic as long as the disk hangs (or its ctx
// lasts). DescribeTopic's doc said "holds" only. With a deadline per
// topic the exporter reports that topic stuck and the others as usual,
// and its health check answers. In a synctest bubble: on the real clock
// each DescribeTopic of a topic not held ("other", and "orders" once
// released) had to answer within the exporter's 500 ms, which a loaded
// machine could miss and report it stuck; on the bubble's clock the
// deadline passes only once every goroutine waits.
func TestObservabilityScrapeBehindAWaitingAdminCall(t *testing.T) {
	synctest.Test(t, testObservabilityScrapeBehindAWaitingAdminCall)
}

func testObservabilityScrapeBehindAWaitingAdminCall(t *testing.T) {
	ctx := context.Background()
	b, hang, stuck, release := obsHangingDisk(t)
	require.NoError(t, b.CreateTopic(ctx, "orders", log.TopicConfig{Partitions: 1}))
	require.NoError(t, b.CreateTopic(ctx, "other", log.TopicConfig{Partitions: 1}))
	p, err := producer.New(b)
	require.NoError(t, err)
	defer func() { require.NoError(t, p.Close()) }()
	defer release() // first: a failed assertion frees the stuck append, or p.Close waits for it
	produced := obsStuckAppend(t, ctx, p, "orders", hang, stuck)
	dctx, dcancel := context.WithCancel(ctx)
	defer dcancel()
	deleted := make(chan error, 1)
	go func() { deleted <- b.DeleteTopic(dctx, "orders") }()
	testkit.AwaitParked(t, obsLockWait("runnel.(*Broker).DeleteTopic"))

	// The DeleteTopic holds no lock yet (it waits for the only one).
	_, err = b.DescribeTopic(ctx, "other")
	require.NoError(t, err, "another topic")
	described := make(chan error, 1)
	dtctx, dtcancel := context.WithCancel(ctx)
	go func() { _, err := b.DescribeTopic(dtctx, "orders"); described <- err }()
	testkit.AwaitParked(t, obsLockWait("runnel.(*Broker).DescribeTopic"))
	dtcancel()
	require.ErrorIs(t, testkit.Await(t, described, "DescribeTopic's answer"), context.Canceled, "waited behind the waiting DeleteTopic")

	// "other" takes microseconds; "orders" waits out the deadline (was 2 s,
	// all of the test's time).
	e := obsExporter{b: b, perTopic: 500 * time.Millisecond}
	ss, stuckTopics, err := e.Scrape(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"orders"}, stuckTopics)
	require.Equal(t, "other", obsFind(t, ss, "other", 0).Topic)
	require.NoError(t, e.Healthz(ctx))

	dcancel()
	require.ErrorIs(t, testkit.Await(t, deleted, "DeleteTopic's answer"), context.Canceled)
	release()
	require.NoError(t, testkit.Await(t, produced, "the stuck ProduceSync's answer"))
	ss, stuckTopics, err = e.Scrape(ctx)
	require.NoError(t, err)
	require.Empty(t, stuckTopics)
	require.EqualValues(t, 1, obsFind(t, ss, "orders", 0).LEO)

	require.NoError(t, p.Close())
	require.NoError(t, b.Close())
	require.ErrorIs(t, e.Healthz(ctx), runnel.ErrClosed)
	_, _, err = e.Scrape(ctx)
	require.NoError(t, err, "Topics answers nothing once closed: Healthz tells")
}

// obsStuckAppend produces a record to topic with p, on obsHangingDisk's
// broker, and returns once its append hangs in its write (holding the
// partition's lock shared), with the channel that the ProduceSync's error
// comes on once release is closed. Writes after it do not hang.
func obsStuckAppend(t *testing.T, ctx context.Context, p *producer.Producer, topic string, hang *atomic.Bool, stuck <-chan struct{}) <-chan error {
	hang.Store(true)
	produced := make(chan error, 1)
	go func() { produced <- p.ProduceSync(ctx, &record.Record{Topic: topic, Value: []byte("x")}) }()
	testkit.AwaitHold(t, stuck, produced, "the ProduceSync")
	hang.Store(false)
	return produced
}

// obsHangingDisk opens a broker on a memory FS whose writes to a
// .log file hang, once hang is set, until release is called: each
// sends on stuck (if it has room) as it starts to hang. The broker is
// closed at the test's end, after a release (release may be called more
// than once): a test that fails while a write hangs ends, where the
// Close waited for the stuck append for good. A test that defers a
// producer's Close (which waits for its request, stuck in the write)
// defers release after it, so that it runs first.
func obsHangingDisk(t *testing.T) (b *runnel.Broker, hang *atomic.Bool, stuck chan struct{}, release func()) {
	hang = new(atomic.Bool)
	stuck = make(chan struct{}, 1)
	held := make(chan struct{})
	release = sync.OnceFunc(func() { close(held) })
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpWrite && hang.Load() && strings.HasSuffix(name, ".log") {
			select {
			case stuck <- struct{}{}:
			default:
			}
			<-held
		}
		return nil
	}))
	b, err := runnel.Open(runnel.Config{FS: fsys, Dir: "/d"})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	t.Cleanup(release) // run first
	return b, hang, stuck, release
}
