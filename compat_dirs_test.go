package runnel

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
)

// compatRec, compatPart and compatManifest are what
// testdata/compat/gen.go.txt writes beside each directory: the records an
// older runnel acknowledged, and what it said of each partition.
type compatRec struct {
	Offset int64
	Key    string
	Value  *string
	TS     int64
}

type compatPart struct {
	Topic      string
	Partition  int32
	Records    []compatRec
	LogStart   int64
	HW, LEO    int64
	PID        int64
	Epoch      int16
	NextSeq    int32
	LastBatch  string
	LastOffset int64
	LastAppend int64
	DupAtOld   bool
	Recent     []struct {
		Batch    string
		Offset   int64
		DupAtOld bool
	}

	// lost is the number of the producer's last batches a power cut took
	// (powercut mode, on the SyncNever topic), lostRecs their records.
	lost     int64
	lostRecs []compatRec
}

type compatManifest struct {
	Commit   string
	Mode     string
	Clock    time.Time
	TopicIDs map[string]string
	Configs  map[string]json.RawMessage
	Parts    []*compatPart
	Gone     []*compatPart
	Odd      *compatPart
}

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

// TestOpenDirsOfOlderRunnels opens data directories that older runnels
// wrote (testdata/compat: each released shape of the on-disk files,
// closed cleanly and left without a Close, as after a kill; README.md
// there says which commit wrote which) and checks that today's code finds
// every topic, ID, config, record, log start and leader epoch, and each
// idempotent producer's state (its last batch answered as a duplicate, a
// gap refused), and that it goes on: appends, compaction, Close and a
// second Open.
func TestOpenDirsOfOlderRunnels(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "compat", "*-*"))
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	for _, src := range dirs {
		if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
			continue
		}
		t.Run(filepath.Base(src), func(t *testing.T) {
			if testing.Short() && strings.HasSuffix(src, "-kill") {
				// A power cut's shape covers a kill's (and more) where
				// there is one.
				t.Skip("-short: the -powercut directory of the commit covers it")
			}
			data, err := os.ReadFile(filepath.Join(src, "manifest.json"))
			require.NoError(t, err)
			var m compatManifest
			require.NoError(t, json.Unmarshal(data, &m))
			if _, ok := m.Configs["wide"]; ok && strconv.IntSize == 32 {
				t.Skip("a topic record with ints past 32 bits, which a 32-bit runnel never wrote nor reads")
			}
			dir := testkit.FastTempDir(t)
			require.NoError(t, os.CopyFS(dir, os.DirFS(filepath.Join(src, "data"))))
			checkCompatDir(t, dir, filepath.Join(src, "data"), &m)
		})
	}
}

// snapshotRows3 tells which of the Gone producers' logs in the older
// runnel's directory src have snapshots with append-time rows (-3).
func snapshotRows3(t *testing.T, src string, m *compatManifest) map[string]bool {
	rows3 := map[string]bool{}
	for _, g := range m.Gone {
		snaps, err := filepath.Glob(filepath.Join(src, g.Topic+"-0", "*.snapshot"))
		require.NoError(t, err)
		for _, f := range snaps {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			rows3[g.Topic] = rows3[g.Topic] || strings.Contains("\n"+string(data), "\n-3 ")
		}
	}
	return rows3
}

// checkCompatDir checks dir, a copy of an older runnel's directory (src
// the original), against m.
func checkCompatDir(t *testing.T, dir, src string, m *compatManifest) {
	rows3 := snapshotRows3(t, src, m)
	ctx := context.Background()
	now := m.Clock.Add(time.Minute)
	open := func() *Broker {
		b, err := Open(Config{Dir: dir, Clock: fixedClock{now}, MaintenanceInterval: time.Hour})
		require.NoError(t, err)
		return b
	}
	epochsBefore := map[string][]string{}
	cleanerBefore := map[string]string{}
	for _, p := range m.Parts {
		pd := filepath.Join(dir, p.Topic+"-"+strconv.Itoa(int(p.Partition)))
		epochsBefore[pd] = readCheckpointEntries(t, filepath.Join(pd, "leader-epoch-checkpoint"))
		if e := readCheckpointEntries(t, filepath.Join(pd, "cleaner-checkpoint")); len(e) > 0 {
			cleanerBefore[pd] = e[0]
		}
	}

	b := open()
	if m.Mode == "powercut" {
		adjustPowerCut(t, b, m)
	}
	ids := checkCompatTopics(t, b, m, false)
	if m.Odd != nil {
		// The batches Kafka refuses from a client, which the older runnel
		// took, read as it wrote them.
		checkCompatRecords(t, b, m.Odd, m.Odd.LEO)
	}
	checkCompatGone(t, b, m, now, rows3)
	for _, p := range m.Parts {
		checkCompatRecords(t, b, p, p.LEO)
	}

	// Each of the producer's last 5 batches that the older runnel still
	// answered as a duplicate at its end is one after the restart too
	// (the snapshots keep all 5), but for those a power cut took.
	for _, p := range m.Parts {
		for _, r := range p.Recent {
			if !r.DupAtOld || r.Offset >= p.LEO {
				continue
			}
			batch, err := hex.DecodeString(r.Batch)
			require.NoError(t, err)
			resp, err := b.Produce(ctx, &api.ProduceRequest{Topic: p.Topic, Partition: p.Partition, Acks: api.AcksAll, Batches: batch})
			require.NoError(t, err, "%s-%d: retry of the batch at %d", p.Topic, p.Partition, r.Offset)
			require.True(t, resp.Duplicate, "%s-%d: retry of the batch at %d", p.Topic, p.Partition, r.Offset)
			require.Equal(t, r.Offset, resp.BaseOffset, "%s-%d: retry of the batch at %d", p.Topic, p.Partition, r.Offset)
		}
	}

	// A new producer id is none the older runnel handed out.
	newPID, _, err := b.InitProducerID(ctx)
	require.NoError(t, err)
	for _, p := range append(slices.Clone(m.Parts), m.Gone...) {
		require.Greater(t, newPID, p.PID, "a new producer id after the older runnel's")
	}

	// The old producer's last batch is a duplicate, with its offset (and
	// append time); a gap is refused; the next batch goes at the end.
	lat := func(p *compatPart) bool { return p.Topic == "lat" }
	for _, p := range m.Parts {
		batch, err := hex.DecodeString(p.LastBatch)
		require.NoError(t, err)
		resp, err := b.Produce(ctx, &api.ProduceRequest{Topic: p.Topic, Partition: p.Partition, Acks: api.AcksAll, Batches: batch})
		switch p.lost {
		case 0:
			require.NoError(t, err, "%s-%d: retry of the last batch", p.Topic, p.Partition)
			require.True(t, resp.Duplicate, "%s-%d: retry of the last batch", p.Topic, p.Partition)
			require.Equal(t, p.LastOffset, resp.BaseOffset, "%s-%d: the duplicate's offset", p.Topic, p.Partition)
			if lat(p) {
				require.Equal(t, p.LastAppend, resp.LogAppendTime, "%s-%d: the duplicate's append time", p.Topic, p.Partition)
			}
		case 1:
			// The power cut took it: the retry appends it again.
			require.NoError(t, err, "%s-%d: retry of the lost last batch", p.Topic, p.Partition)
			require.False(t, resp.Duplicate, "%s-%d: retry of the lost last batch", p.Topic, p.Partition)
			require.Equal(t, p.LEO, resp.BaseOffset, "%s-%d: the lost batch appended again at the end", p.Topic, p.Partition)
			for i, r := range p.lostRecs {
				r.Offset = p.LEO + int64(i)
				p.Records = append(p.Records, r)
			}
			p.LEO += int64(len(p.lostRecs))
			p.LastOffset = resp.BaseOffset
		default:
			// More than one: the retry of the last is a gap.
			require.ErrorIs(t, err, api.ErrOutOfOrderSequence, "%s-%d: retry of the last of %d lost batches", p.Topic, p.Partition, p.lost)
			t.Logf("%s-%d: %d batches lost; the producer's later checks skipped", p.Topic, p.Partition, p.lost)
			p.LastBatch = ""
			continue
		}
		_, err = b.Produce(ctx, compatBatch(t, p, p.NextSeq+10, now))
		require.ErrorIs(t, err, api.ErrOutOfOrderSequence, "%s-%d: a gap after the old producer's sequence", p.Topic, p.Partition)
		req := compatBatch(t, p, p.NextSeq, now)
		resp, err = b.Produce(ctx, req)
		require.NoError(t, err)
		require.False(t, resp.Duplicate)
		require.Equal(t, p.LEO, resp.BaseOffset, "%s-%d: the next batch at the log end", p.Topic, p.Partition)
		if lat(p) {
			require.Equal(t, now.UnixMilli(), resp.LogAppendTime)
		}
		v := "today-" + p.Topic
		p.Records = append(p.Records, compatRec{Offset: resp.BaseOffset, Key: "k0", Value: &v, TS: now.UnixMilli()})
		p.NextSeq++
		p.LastOffset, p.LastAppend = resp.BaseOffset, resp.LogAppendTime
		p.LEO++
	}
	if _, ok := m.Configs["wide"]; ok {
		// The topic whose config an older runnel took past a Java int works.
		var bl record.Builder
		bl.Append(now.UnixMilli(), []byte("k"), []byte("wide"), nil)
		batch, err := bl.Finish(0)
		require.NoError(t, err)
		resp, err := b.Produce(ctx, &api.ProduceRequest{Topic: "wide", Acks: api.AcksAll, Batches: batch})
		require.NoError(t, err)
		require.Equal(t, int64(0), resp.BaseOffset)
		checkCompatRecords(t, b, &compatPart{Topic: "wide", Records: []compatRec{{Key: "k", Value: ptr("wide")}}}, 1)
	}
	// A config change rewrites each older record as today's: the
	// second Open must find the same config (checkCompatTopics).
	for n := range m.Configs {
		require.NoError(t, b.UpdateTopicConfig(ctx, n, func(c *log.Config) { c.SegmentTime = 30 * 24 * time.Hour }), n)
	}
	require.NoError(t, b.Maintain(ctx))
	for _, p := range m.Parts {
		// Retention may move the log start on; nothing else.
		info, err := b.DescribeTopic(ctx, p.Topic)
		require.NoError(t, err)
		start := info.Partitions[p.Partition].LogStartOffset
		require.GreaterOrEqual(t, start, p.LogStart, "%s-%d: log start", p.Topic, p.Partition)
		if p.Topic != "ret" {
			require.Equal(t, p.LogStart, start, "%s-%d: log start", p.Topic, p.Partition)
		}
		p.LogStart = start
		checkCompatRecords(t, b, p, p.LEO)
	}
	require.NoError(t, b.Close())

	for _, p := range m.Parts {
		// Each old epoch is kept, from the log start at the earliest (as
		// Kafka's cache is truncated from the start).
		pd := filepath.Join(dir, p.Topic+"-"+strconv.Itoa(int(p.Partition)))
		before := epochsBefore[pd]
		after := readCheckpointEntries(t, filepath.Join(pd, "leader-epoch-checkpoint"))
		for i, e := range before {
			f := strings.Fields(e)
			require.Len(t, f, 2, "%s: %q", pd, e)
			if i+1 < len(before) && atoi(t, strings.Fields(before[i+1])[1]) <= p.LogStart {
				continue
			}
			want := f[0] + " " + strconv.FormatInt(max(atoi(t, f[1]), p.LogStart), 10)
			require.Contains(t, after, want, "%s: a leader epoch of the old log", pd)
		}
		names, err := os.ReadDir(pd)
		require.NoError(t, err)
		for _, n := range names {
			require.NotEqual(t, "producer-state-checkpoint", n.Name(), "%s: the older runnel's snapshot is replaced", pd)
			require.NotEqual(t, "cleaner-offset-checkpoint", n.Name(), "%s: the older runnel's cleaner checkpoint is removed", pd)
		}
		if old, ok := cleanerBefore[pd]; ok {
			now := readCheckpointEntries(t, filepath.Join(pd, "cleaner-checkpoint"))
			require.NotEmpty(t, now, "%s: the cleaner checkpoint", pd)
			require.GreaterOrEqual(t, atoi(t, now[0]), atoi(t, old), "%s: the cleaner checkpoint", pd)
		}
	}

	// A second Open finds it all again, today's batches too.
	b = open()
	defer func() { require.NoError(t, b.Close()) }()
	require.Equal(t, ids, checkCompatTopics(t, b, m, true))
	if m.Odd != nil {
		checkCompatRecords(t, b, m.Odd, m.Odd.LEO)
	}
	checkCompatGone(t, b, m, now, rows3)
	for _, p := range m.Parts {
		checkCompatRecords(t, b, p, p.LEO)
		if p.LastBatch == "" {
			continue
		}
		resp, err := b.Produce(ctx, compatBatch(t, p, p.NextSeq-1, now))
		require.NoError(t, err)
		require.True(t, resp.Duplicate, "%s-%d: today's batch after a restart", p.Topic, p.Partition)
		require.Equal(t, p.LastOffset, resp.BaseOffset)
		_, err = b.Produce(ctx, compatBatch(t, p, p.NextSeq+10, now))
		require.ErrorIs(t, err, api.ErrOutOfOrderSequence, "%s-%d: a gap after a restart", p.Topic, p.Partition)
	}
}

// compatBatch is a one-record batch of p's producer at seq.
func compatBatch(t *testing.T, p *compatPart, seq int32, now time.Time) *api.ProduceRequest {
	var bl record.Builder
	bl.SetProducer(p.PID, p.Epoch, seq)
	bl.Append(now.UnixMilli(), []byte("k0"), []byte("today-"+p.Topic), nil)
	batch, err := bl.Finish(0)
	require.NoError(t, err)
	return &api.ProduceRequest{Topic: p.Topic, Partition: p.Partition, Acks: api.AcksAll, Batches: batch}
}

// checkCompatTopics checks the topics, their configs and IDs against the
// manifest, and returns the IDs.
func checkCompatTopics(t *testing.T, b *Broker, m *compatManifest, rewritten bool) map[string]log.TopicID {
	ctx := context.Background()
	names := b.Topics()
	slices.Sort(names)
	want := slices.Sorted(maps.Keys(m.Configs))
	require.Equal(t, want, names)
	ids := map[string]log.TopicID{}
	for _, n := range names {
		info, err := b.DescribeTopic(ctx, n)
		require.NoError(t, err)
		require.False(t, info.ID.IsZero(), "%s: an ID", n)
		if want, ok := m.TopicIDs[n]; ok {
			require.Equal(t, want, info.ID.String(), "%s: the ID the old runnel gave", n)
		}
		ids[n] = info.ID
		var old struct {
			Partitions             int
			SegmentBytes           int64
			SegmentIndexBytes      int
			IndexIntervalBytes     int
			MaxMessageBytes        int
			RetentionTime          time.Duration
			RetentionBytes         int64
			MinCleanableDirtyRatio float64
			DeleteRetentionTime    time.Duration
		}
		require.NoError(t, json.Unmarshal(m.Configs[n], &old))
		c := info.Config
		require.Equal(t, old.Partitions, c.Partitions, n)
		require.Len(t, info.Partitions, old.Partitions, n)
		if old.SegmentBytes != 0 {
			require.Equal(t, old.SegmentBytes, c.SegmentBytes, n)
		}
		require.Equal(t, old.RetentionTime, c.RetentionTime, n)
		require.Equal(t, old.RetentionBytes, info.Overrides.RetentionBytes, n)
		if n == "wide" {
			// Values past a Java int, which older runnels took, are read
			// as the largest.
			require.Greater(t, old.MaxMessageBytes, math.MaxInt32)
			require.Greater(t, old.IndexIntervalBytes, math.MaxInt32)
			require.Equal(t, math.MaxInt32, c.MaxMessageBytes)
			require.Equal(t, math.MaxInt32, c.IndexIntervalBytes)
		} else {
			require.Equal(t, old.SegmentIndexBytes, c.SegmentIndexBytes, n)
		}
		wantPolicy, wantTS, wantSync := log.Delete, log.CreateTime, log.SyncAlways
		switch n {
		case "compact":
			wantPolicy = log.Compact
			require.Equal(t, old.MinCleanableDirtyRatio, c.MinCleanableDirtyRatio, n)
			require.Equal(t, old.DeleteRetentionTime, c.DeleteRetentionTime, n)
		case "lat":
			wantTS, wantSync = log.LogAppendTime, log.SyncNever
		case "odd":
			require.Equal(t, m.Odd.LEO, info.Partitions[0].LogEndOffset, "odd-0: log end")
		}
		require.Equal(t, wantPolicy, c.CleanupPolicy, n)
		require.Equal(t, wantTS, c.TimestampType, n)
		require.Equal(t, wantSync, c.Sync, n)
		if rewritten {
			require.Equal(t, 30*24*time.Hour, c.SegmentTime, n)
		}
		for _, p := range m.Parts {
			if p.Topic == n {
				pi := info.Partitions[p.Partition]
				require.Equal(t, p.LogStart, pi.LogStartOffset, "%s-%d: log start", n, p.Partition)
				require.Equal(t, p.LEO, pi.LogEndOffset, "%s-%d: log end", n, p.Partition)
				require.Equal(t, p.LEO, pi.HighWatermark, "%s-%d: high watermark", n, p.Partition)
			}
		}
	}
	return ids
}

// checkCompatRecords reads p from its log start to end and checks every
// record against what was acknowledged: all of them on a topic that is
// not compacted, the latest of each key on the compacted one.
func checkCompatRecords(t *testing.T, b *Broker, p *compatPart, end int64) {
	ctx := context.Background()
	want := map[int64]compatRec{}
	latest := map[string]int64{}
	for _, r := range p.Records {
		want[r.Offset] = r
		latest[r.Key] = r.Offset
	}
	got := map[int64]bool{}
	var times [][2]int64 // offset, timestamp of each record read
	next := p.LogStart
	for next < end {
		resp, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{{Topic: p.Topic, Partition: p.Partition, Offset: next, MaxBytes: 1 << 20}}})
		require.NoError(t, err)
		fp := resp.Partitions[0]
		require.NoError(t, fp.Err, "%s-%d at %d", p.Topic, p.Partition, next)
		require.NotEmpty(t, fp.Records, "%s-%d at %d: nothing below %d", p.Topic, p.Partition, next, end)
		for bt, err := range record.Batches(fp.Records) {
			require.NoError(t, err)
			if p.Topic == "lat" {
				require.Equal(t, record.LogAppendTime, bt.TimestampType(), "%s-%d: a batch's timestamp type", p.Topic, p.Partition)
			}
			next = max(next, bt.LastOffset()+1)
			if bt.IsControl() {
				// A transaction marker (topic odd): consumers skip it, but
				// a look-up by time may answer its offset, as Kafka's does.
				for r, err := range bt.Records() {
					require.NoError(t, err)
					times = append(times, [2]int64{r.Offset, r.Timestamp.UnixMilli()})
				}
				continue
			}
			for r, err := range bt.Records() {
				require.NoError(t, err)
				if r.Offset < p.LogStart {
					continue
				}
				w, ok := want[r.Offset]
				require.True(t, ok, "%s-%d: a record at %d that was not produced", p.Topic, p.Partition, r.Offset)
				require.Equal(t, w.Key, string(r.Key), "%s-%d at %d", p.Topic, p.Partition, r.Offset)
				if w.Value == nil {
					require.Nil(t, r.Value, "%s-%d at %d: a tombstone", p.Topic, p.Partition, r.Offset)
				} else {
					require.Equal(t, *w.Value, string(r.Value), "%s-%d at %d", p.Topic, p.Partition, r.Offset)
				}
				got[r.Offset] = true
				times = append(times, [2]int64{r.Offset, r.Timestamp.UnixMilli()})
			}
		}
	}
	for _, r := range p.Records {
		if r.Offset < p.LogStart || r.Offset >= end {
			continue
		}
		if p.Topic == "compact" && latest[r.Key] != r.Offset {
			continue
		}
		require.True(t, got[r.Offset], "%s-%d: the record at %d (key %s) is missing", p.Topic, p.Partition, r.Offset, r.Key)
	}
	checkCompatTimes(t, b, p, times, end)
}

// checkCompatTimes checks ListOffset by time against the records read
// (the time indexes the older runnel wrote, and today's on top): a look-up
// answers the first record at or past the log start stamped at or after
// the time, else the high watermark (end); MAX_TIMESTAMP the first record
// of the largest timestamp.
func checkCompatTimes(t *testing.T, b *Broker, p *compatPart, times [][2]int64, end int64) {
	ctx := context.Background()
	if len(times) == 0 {
		return
	}
	var queries []int64
	maxAt := 0
	for i, ot := range times {
		queries = append(queries, ot[1], ot[1]-1, ot[1]+1)
		if ot[1] > times[maxAt][1] {
			maxAt = i
		}
	}
	for _, q := range queries {
		if q < 0 {
			continue
		}
		want, wantTS := end, int64(-1)
		for _, ot := range times {
			if ot[1] >= q {
				want, wantTS = ot[0], ot[1]
				break
			}
		}
		got, err := b.ListOffset(ctx, p.Topic, p.Partition, q)
		require.NoError(t, err)
		require.Equal(t, want, got.Offset, "%s-%d: ListOffset(%d)", p.Topic, p.Partition, q)
		require.Equal(t, wantTS, got.Timestamp, "%s-%d: ListOffset(%d)'s timestamp", p.Topic, p.Partition, q)
	}
	got, err := b.ListOffset(ctx, p.Topic, p.Partition, api.MaxTimestamp)
	require.NoError(t, err)
	require.Equal(t, times[maxAt][0], got.Offset, "%s-%d: MAX_TIMESTAMP", p.Topic, p.Partition)
	require.Equal(t, times[maxAt][1], got.Timestamp, "%s-%d: MAX_TIMESTAMP's timestamp", p.Topic, p.Partition)
}

// readCheckpointEntries returns the entry lines of a checkpoint file (none
// if it is missing).
func readCheckpointEntries(t *testing.T, path string) []string {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) < 2 {
		return nil
	}
	return lines[2:]
}

func atoi(t *testing.T, s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err)
	return n
}

func ptr[T any](v T) *T { return &v }

// TestOpenRecordPastJavaInts: a topic record of an older runnel with
// SegmentIndexBytes, IndexIntervalBytes and MaxMessageBytes past
// math.MaxInt32, which CreateTopic took before 8c436e3, opens with them
// at math.MaxInt32 (Open failed with ErrCorruptMetadata).
func TestOpenRecordPastJavaInts(t *testing.T) {
	if strconv.IntSize == 32 {
		t.Skip("ints past 32 bits")
	}
	for _, version := range []string{``, `"version":1,`} {
		dir := t.TempDir()
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "topics"), 0o755))
		rec := `{` + version + `"name":"big","config":{"Partitions":1,"SegmentIndexBytes":2147483648,"IndexIntervalBytes":1099511627776,"MaxMessageBytes":9223372036854775807}}`
		require.NoError(t, os.WriteFile(filepath.Join(dir, "topics", "big.json"), []byte(rec), 0o644))
		b, err := Open(Config{Dir: dir})
		require.NoError(t, err, rec)
		info, err := b.DescribeTopic(context.Background(), "big")
		require.NoError(t, err)
		for _, c := range []log.Config{info.Config.Config, info.Overrides} {
			require.Equal(t, math.MaxInt32, c.SegmentIndexBytes)
			require.Equal(t, math.MaxInt32, c.IndexIntervalBytes)
			require.Equal(t, math.MaxInt32, c.MaxMessageBytes)
		}
		runneltestProduceOne(t, b, "big")
		require.NoError(t, b.Close())
	}
}

// runneltestProduceOne appends one plain record to topic's partition 0.
func runneltestProduceOne(t *testing.T, b *Broker, topic string) {
	var bl record.Builder
	bl.Append(0, []byte("k"), []byte("v"), nil)
	batch, err := bl.Finish(0)
	require.NoError(t, err)
	_, err = b.Produce(context.Background(), &api.ProduceRequest{Topic: topic, Acks: api.AcksAll, Batches: batch})
	require.NoError(t, err)
}

// checkCompatGone checks the producers whose batches DeleteRecords removed
// under the older runnel, which still answered a retry of the last one as
// a duplicate (since be4da99, as Kafka since KIP-360): today's does too,
// and refuses a gap.
func checkCompatGone(t *testing.T, b *Broker, m *compatManifest, now time.Time, rows3 map[string]bool) {
	ctx := context.Background()
	for _, g := range m.Gone {
		if !g.DupAtOld {
			continue
		}
		batch, err := hex.DecodeString(g.LastBatch)
		require.NoError(t, err)
		resp, err := b.Produce(ctx, &api.ProduceRequest{Topic: g.Topic, Partition: g.Partition, Acks: api.AcksAll, Batches: batch})
		require.NoError(t, err, "%s-%d: retry of a deleted batch", g.Topic, g.Partition)
		require.True(t, resp.Duplicate, "%s-%d: retry of a deleted batch", g.Topic, g.Partition)
		require.Equal(t, g.LastOffset, resp.BaseOffset, "%s-%d: the deleted duplicate's offset", g.Topic, g.Partition)
		// Its append time: from the snapshot's -3 rows (since 52e1b7f);
		// an older snapshot has none, and the batch is gone from the log
		// to read it from, so -1 (see docs/details.md, "Answers that differ
		// from Kafka's").
		if rows3[g.Topic] {
			require.Equal(t, g.LastAppend, resp.LogAppendTime, "%s-%d: the deleted duplicate's append time", g.Topic, g.Partition)
		} else {
			require.Contains(t, []int64{-1, g.LastAppend}, resp.LogAppendTime, "%s-%d: the deleted duplicate's append time", g.Topic, g.Partition)
		}
		_, err = b.Produce(ctx, compatBatch(t, g, g.NextSeq+10, now))
		require.ErrorIs(t, err, api.ErrOutOfOrderSequence, "%s-%d: a gap after a deleted batch", g.Topic, g.Partition)
	}
}

// adjustPowerCut takes into m what a power cut took from the end of
// the SyncNever topic (lat), whose records were acknowledged before they
// were durable: each partition's end may be lower, never below its log
// start; the other topics, synced before each acknowledgement, lost
// nothing (checkCompatTopics checks their ends).
func adjustPowerCut(t *testing.T, b *Broker, m *compatManifest) {
	for _, p := range m.Parts {
		if p.Topic != "lat" {
			continue
		}
		info, err := b.DescribeTopic(context.Background(), p.Topic)
		require.NoError(t, err)
		leo := info.Partitions[p.Partition].LogEndOffset
		require.LessOrEqual(t, leo, p.LEO, "%s-%d: log end after the power cut", p.Topic, p.Partition)
		require.GreaterOrEqual(t, leo, p.LogStart, "%s-%d: log end after the power cut", p.Topic, p.Partition)
		require.Zero(t, (p.LEO-leo)%2, "%s-%d: whole batches lost (%d to %d)", p.Topic, p.Partition, p.LEO, leo)
		p.lost = (p.LEO - leo) / 2
		var kept []compatRec
		for _, r := range p.Records {
			if r.Offset < leo {
				kept = append(kept, r)
			} else if r.Offset >= p.LastOffset {
				p.lostRecs = append(p.lostRecs, r)
			}
		}
		p.Records, p.LEO, p.HW = kept, leo, leo
	}
}

// countCtx is a context whose Err reports context.Canceled from its
// limit-th call on: OpenContext looks at it before each partition and
// between segments, so that each limit cuts the Open short at another
// point.
type countCtx struct {
	context.Context
	calls, limit int64
	mu           sync.Mutex
}

func (c *countCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.calls >= c.limit {
		return context.Canceled
	}
	return nil
}

// TestOpenDirsOfOlderRunnelsCutShort: an OpenContext of an older
// runnel's directory cut short at a point where it looks at its ctx
// (having replaced some of the older files, say the single producer-state
// snapshot, and not others) loses nothing: the next Open finds it all, as
// TestOpenDirsOfOlderRunnels checks it. It cuts the -kill directories
// at every twelfth point from the first, and at the last (-short:
// 636bb62-kill's at every fifteenth and the last; RUNNEL_COMPAT_CUT=all:
// every point of every -kill and -powercut directory, some 740 Opens:
// about a minute with /dev/shm on a busy 2-core VM).
func TestOpenDirsOfOlderRunnelsCutShort(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "compat", "*-*"))
	require.NoError(t, err)
	all := os.Getenv("RUNNEL_COMPAT_CUT") == "all"
	step := 12
	switch {
	case all:
		step = 1
	case testing.Short():
		step = 15
	}
	for _, src := range dirs {
		switch {
		case strings.HasSuffix(src, "-clean"):
			continue // the crashed shapes, where Open recovers
		case all:
		case !strings.HasSuffix(src, "-kill"), testing.Short() && !strings.HasSuffix(src, "636bb62-kill"):
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, "manifest.json"))
		require.NoError(t, err)
		manifest := func() *compatManifest {
			var m compatManifest
			require.NoError(t, json.Unmarshal(data, &m))
			return &m
		}
		if _, ok := manifest().Configs["wide"]; ok && strconv.IntSize == 32 {
			continue
		}
		// open opens a copy of src with a ctx that is cut at its
		// limit-th look, and returns how many times the Open looked.
		open := func(limit int64) (dir string, looks int64, err error) {
			dir = testkit.FastTempDir(t)
			require.NoError(t, os.CopyFS(dir, os.DirFS(filepath.Join(src, "data"))))
			ctx := &countCtx{Context: context.Background(), limit: limit}
			b, err := OpenContext(ctx, Config{Dir: dir, Clock: fixedClock{manifest().Clock.Add(time.Minute)}, MaintenanceInterval: time.Hour})
			if err == nil {
				require.NoError(t, b.Close())
			}
			ctx.mu.Lock()
			defer ctx.mu.Unlock()
			return dir, ctx.calls, err
		}
		_, n, err := open(math.MaxInt64)
		require.NoError(t, err, "the Open, not cut")
		limits := make([]int64, n)
		for i := range limits {
			limits[i] = int64(i) + 1
		}
		for _, limit := range testkit.EveryAndLast(limits, step) {
			dir, _, err := open(limit)
			require.ErrorIs(t, err, context.Canceled, "cut at look %d of %d", limit, n)
			m := manifest()
			ok := t.Run(fmt.Sprintf("%s/cut%d", filepath.Base(src), limit), func(t *testing.T) {
				checkCompatDir(t, dir, filepath.Join(src, "data"), m)
			})
			if !ok {
				break
			}
		}
	}
}
