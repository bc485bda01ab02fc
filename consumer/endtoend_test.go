package consumer_test

// End-to-end tests of the read side against a real *runnel.Broker, in
// memory and on disk: every codec, compaction, retention and
// DeleteRecords under a consumer, seeks by time, long polls, changes of
// assignment inside a Records loop, cancellation and Close, and the
// lifetime of records' bytes.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
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
	"github.com/stretchr/testify/require"
)

var allCodecs = []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd}

// eachFS runs f with an in-memory broker and one on the OS file system
// (testkit.FastTempDir: /dev/shm where there is room).
func eachFS(t *testing.T, f func(t *testing.T, cfg runnel.Config)) {
	for _, name := range []string{"mem", "os"} {
		t.Run(name, func(t *testing.T) {
			cfg := runnel.Config{}
			if name == "os" {
				// On /dev/shm where there is room: the OS file system,
				// without a disk's fsyncs, which were most of its time.
				cfg.Dir = testkit.FastTempDir(t)
			}
			f(t, cfg)
		})
	}
}

func openCfg(t *testing.T, cfg runnel.Config) *runnel.Broker {
	t.Helper()
	b, err := runnel.Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	return b
}

// Records produced by the producer with each codec come back whole.
func TestEveryCodecThroughTheProducer(t *testing.T) {
	eachFS(t, func(t *testing.T, cfg runnel.Config) {
		b := openCfg(t, cfg)
		ctx := testCtx(t)
		for _, codec := range allCodecs {
			topic := "t-" + codec.String()
			require.NoError(t, b.CreateTopic(ctx, topic, log.TopicConfig{Partitions: 1}))
			p, err := producer.New(b, producer.Compression(codec), producer.RecordPartitioner(producer.ManualPartitioner()), producer.BatchMaxBytes(4096))
			require.NoError(t, err)
			var recs []*record.Record
			for i := range 300 {
				r := &record.Record{Topic: topic, Key: []byte(fmt.Sprint("k", i%7)), Value: bytes.Repeat([]byte{byte(i)}, i%50)}
				if i%3 == 0 {
					r.Headers = hdr("i", fmt.Sprint(i))
				}
				if i%11 == 0 {
					r.Value = nil
				}
				recs = append(recs, r)
			}
			require.NoError(t, p.ProduceSync(ctx, recs...))
			require.NoError(t, p.Close())

			c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond), consumer.FetchMaxPartitionBytes(1000))
			require.NoError(t, c.Assign(topic, 0, consumer.Start()))
			got := readN(t, c, len(recs))
			for i, r := range got {
				require.EqualValues(t, i, r.Offset, codec)
				require.Equal(t, recs[i].Key, r.Key)
				if recs[i].Value == nil {
					require.Nil(t, r.Value, "%v: a null value stays null", codec)
				} else {
					require.Equal(t, recs[i].Value, r.Value)
				}
				require.Equal(t, recs[i].Headers, r.Headers)
				require.Equal(t, recs[i].Timestamp.UnixMilli(), r.Timestamp.UnixMilli())
			}
		}
	})
}

// One partition holding batches of every codec, in turn, read with every
// fetch size.
func TestMixedCodecsInOnePartition(t *testing.T) {
	eachFS(t, func(t *testing.T, cfg runnel.Config) {
		b := openCfg(t, cfg)
		require.NoError(t, b.CreateTopic(testCtx(t), "t", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 2000}}))
		var want []string
		for round := range 4 {
			for _, codec := range allCodecs {
				var recs []rec
				for i := range 1 + round*3 {
					v := fmt.Sprintf("%s-%d-%d", codec, round, i)
					recs = append(recs, rec{value: v, key: []byte(v)})
					want = append(want, v)
				}
				produce(t, b, "t", 0, codec, recs...)
			}
		}
		for _, max := range []int{1, 100, 500, 1 << 20} {
			for _, start := range []int64{0, 1, 7, 23, int64(len(want) - 1)} {
				c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond), consumer.FetchMaxPartitionBytes(max), consumer.FetchMaxBytes(max))
				require.NoError(t, c.Assign("t", 0, consumer.At(start)))
				got := readN(t, c, len(want)-int(start))
				require.Equal(t, want[start:], vals(got), "max %d start %d", max, start)
				for i, r := range got {
					require.EqualValues(t, start+int64(i), r.Offset)
				}
				require.NoError(t, c.Close())
			}
		}
	})
}

// A batch larger than every fetch limit is returned whole, so that the
// consumer makes progress (Kafka's KIP-74), for every codec: batches of 3
// MiB, 1.5 MiB under the race detector (whose cost follows the bytes
// copied), past the largest limit, 1 MiB, either way.
func TestBatchLargerThanFetchLimits(t *testing.T) {
	eachFS(t, func(t *testing.T, cfg runnel.Config) {
		b := openCfg(t, cfg)
		max := 3 << 20
		if testkit.RaceEnabled {
			max = 3 << 19
		}
		require.NoError(t, b.CreateTopic(testCtx(t), "t", log.TopicConfig{Partitions: 2, Config: log.Config{MaxMessageBytes: max}}))
		big := make([]byte, max-4096)
		_, _ = rand.Read(big)
		for _, codec := range allCodecs {
			// Random bytes do not compress: each batch is near the topic's
			// max.message.bytes, past every fetch limit below.
			produce(t, b, "t", 0, codec, rec{value: string(big[:len(big)/2])}, rec{value: string(big[len(big)/2:])})
			values(t, b, "t", 0, "small-"+codec.String())
			values(t, b, "t", 1, "other-"+codec.String())
		}
		for _, lim := range []int{1, 4096, 1 << 20} {
			c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond), consumer.FetchMaxPartitionBytes(lim), consumer.FetchMaxBytes(lim))
			require.NoError(t, c.AssignTopic(testCtx(t), "t", consumer.Start()))
			g := pollUntil(t, c, 3*len(allCodecs)+len(allCodecs))
			p0 := g.values("t", 0)
			require.Len(t, p0, 3*len(allCodecs))
			for i, codec := range allCodecs {
				require.Equal(t, string(big[:len(big)/2]), p0[3*i], "lim %d %v", lim, codec)
				require.Equal(t, string(big[len(big)/2:]), p0[3*i+1])
				require.Equal(t, "small-"+codec.String(), p0[3*i+2])
			}
			require.Len(t, g.values("t", 1), len(allCodecs))
			require.NoError(t, c.Close())
		}
	})
}

// Compacted topics: offsets with gaps, tombstones with a nil Value, and
// positions inside a removed range.
func TestCompactedTopic(t *testing.T) {
	for _, codec := range allCodecs {
		t.Run(codec.String(), func(t *testing.T) {
			eachFS(t, func(t *testing.T, cfg runnel.Config) {
				b := openCfg(t, cfg)
				ctx := testCtx(t)
				require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{
					CleanupPolicy: log.Compact, SegmentBytes: 300, MinCleanableDirtyRatio: -1,
				}}))
				latest := map[string]int64{}
				lastVal := map[string]*string{}
				var off int64
				for round := range 6 {
					var recs []rec
					for k := range 4 {
						key := fmt.Sprint("k", k)
						v := fmt.Sprintf("%s@%d", key, round)
						recs = append(recs, rec{key: []byte(key), value: v})
					}
					base := produce(t, b, "t", 0, codec, recs...)
					for i, r := range recs {
						latest[string(r.key)] = base + int64(i)
						v := r.value
						lastVal[string(r.key)] = &v
					}
					off = base + int64(len(recs))
				}
				// A tombstone for k1 (a raw batch: rec cannot say null).
				var bld record.Builder
				bld.Append(time.Now().UnixMilli(), []byte("k1"), nil, nil)
				data, err := bld.AppendTo(nil, codec)
				require.NoError(t, err)
				resp, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: 0, Acks: api.AcksAll, Batches: data})
				require.NoError(t, err)
				latest["k1"] = resp.BaseOffset
				lastVal["k1"] = nil
				// Roll past it so that it is compacted too.
				produce(t, b, "t", 0, compression.None, rec{key: []byte("tail"), value: "tail"})
				off = resp.BaseOffset + 2
				require.NoError(t, b.Maintain(ctx))

				c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
				require.NoError(t, c.Assign("t", 0, consumer.Start()))
				var got []*record.Record
				for r, err := range c.Records(ctx) {
					require.NoError(t, err)
					got = append(got, r)
					if pos, _ := c.Position("t", 0); pos >= off {
						break
					}
				}
				require.Less(t, len(got), 26, "compaction removed records")
				seen := map[string]bool{}
				prev := int64(-1)
				for _, r := range got {
					require.Greater(t, r.Offset, prev)
					prev = r.Offset
					if string(r.Key) == "tail" {
						continue
					}
					k := string(r.Key)
					if r.Offset == latest[k] {
						seen[k] = true
						if lastVal[k] == nil {
							require.Nil(t, r.Value, "a tombstone has a nil Value")
						} else {
							require.Equal(t, *lastVal[k], string(r.Value))
						}
					}
				}
				require.Len(t, seen, 4, "every key's latest record is there")

				// A position inside a removed range: the next record kept.
				for o := int64(0); o < off; o++ {
					want := -1
					for i, r := range got {
						if r.Offset >= o {
							want = i
							break
						}
					}
					c2 := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond), consumer.ResetOffset(consumer.ResetNone))
					require.NoError(t, c2.Assign("t", 0, consumer.At(o)))
					r := readN(t, c2, 1)[0]
					require.Equal(t, got[want].Offset, r.Offset, "from %d", o)
					require.NoError(t, c2.Close())
				}
			})
		})
	}
}

// fixedClock is a log.Clock a test sets.
type fixedClock struct{ ms atomic.Int64 }

func (c *fixedClock) Now() time.Time { return time.UnixMilli(c.ms.Load()) }

// DeleteRecords moves the log start under a consumer: each reset policy
// does what it says, and ResetNone reports a typed error once, without
// skipping anything and without spinning.
func TestDeleteRecordsUnderConsumer(t *testing.T) {
	eachFS(t, func(t *testing.T, cfg runnel.Config) {
		for _, policy := range []consumer.ResetPolicy{consumer.ResetEarliest, consumer.ResetLatest, consumer.ResetNone} {
			t.Run(policy.String(), func(t *testing.T) {
				if cfg.Dir != "" {
					cfg.Dir = t.TempDir()
				}
				b := openCfg(t, cfg)
				ctx := testCtx(t)
				require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2, Config: log.Config{SegmentBytes: 200}}))
				for i := 0; i < 20; i += 2 {
					values(t, b, "t", 0, seq("v", i, 2)...)
				}
				c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond), consumer.ResetOffset(policy))
				require.NoError(t, c.Assign("t", 0, consumer.Start()))
				require.NoError(t, c.Assign("t", 1, consumer.Start()))
				require.Equal(t, seq("v", 0, 3), vals(readN(t, c, 3)))
				low, err := b.DeleteRecords(ctx, "t", 0, 11)
				require.NoError(t, err)
				require.EqualValues(t, 11, low)
				values(t, b, "t", 1, "other")

				var got []string
				var errs []error
				if policy == consumer.ResetLatest {
					for {
						fs, err := c.Poll(ctx)
						require.NoError(t, err)
						require.NoError(t, fs.Err())
						for r := range fs.Records() {
							got = append(got, string(r.Value))
						}
						if pos, ok := c.Position("t", 0); ok && pos == 20 {
							break
						}
					}
					values(t, b, "t", 0, "after")
				}
				for r, err := range c.Records(ctx) {
					if err != nil {
						errs = append(errs, err)
					} else {
						got = append(got, string(r.Value))
					}
					if len(got)+len(errs) >= 2 && (policy != consumer.ResetEarliest || len(got) >= 10) {
						break
					}
				}
				switch policy {
				case consumer.ResetEarliest:
					require.Empty(t, errs)
					require.ElementsMatch(t, append(seq("v", 11, 9), "other"), got)
				case consumer.ResetLatest:
					require.Empty(t, errs)
					require.Equal(t, []string{"other", "after"}, got)
				case consumer.ResetNone:
					require.Len(t, errs, 1, "%v", errs)
					require.ErrorIs(t, errs[0], log.ErrOffsetOutOfRange)
					var pe *consumer.PartitionError
					require.ErrorAs(t, errs[0], &pe)
					require.EqualValues(t, 3, pe.Offset)
					pos, _ := c.Position("t", 0)
					require.EqualValues(t, 3, pos, "nothing skipped silently")
				}
			})
		}
	})
}

// Seeking by time: before the first record, between two, after the last,
// on an empty partition.
func TestSeekAtTime(t *testing.T) {
	eachFS(t, func(t *testing.T, cfg runnel.Config) {
		b := openCfg(t, cfg)
		ctx := testCtx(t)
		// Records stamped in 2030, ahead of the clock: no
		// TimestampAfterMax.
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2, Config: log.Config{SegmentBytes: 200, TimestampAfterMax: -1}}))
		base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range 10 {
			produce(t, b, "t", 0, compression.None, rec{ts: base.Add(time.Duration(i) * 10 * time.Millisecond).UnixMilli(), value: fmt.Sprint(i)})
		}
		for _, tc := range []struct {
			at   time.Time
			want int64 // first offset; 10 = the end
		}{
			{time.Unix(0, 0), 0},
			{base.Add(-time.Hour), 0},
			{base, 0},
			{base.Add(time.Millisecond), 1},
			{base.Add(45 * time.Millisecond), 5},
			{base.Add(90 * time.Millisecond), 9},
			{base.Add(91 * time.Millisecond), 10},
			{base.Add(time.Hour), 10},
		} {
			c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
			require.NoError(t, c.Assign("t", 0, consumer.AtTime(tc.at)))
			require.NoError(t, c.Assign("t", 1, consumer.AtTime(tc.at)))
			if tc.want < 10 {
				got := readN(t, c, 1)
				require.Equal(t, tc.want, got[0].Offset, "at %v", tc.at)
			} else {
				fs, err := c.Poll(ctx)
				require.NoError(t, err)
				require.Zero(t, fs.NumRecords())
				pos, ok := c.Position("t", 0)
				require.True(t, ok)
				require.EqualValues(t, 10, pos, "at %v", tc.at)
			}
			pos1, ok := c.Position("t", 1)
			require.True(t, ok)
			require.Zero(t, pos1, "an empty partition: its end")
			require.NoError(t, c.Close())
		}
	})
}

// LogAppendTime topics: the broker's time decides, for records and for
// seeks.
func TestSeekAtTimeLogAppendTime(t *testing.T) {
	eachFS(t, func(t *testing.T, cfg runnel.Config) {
		clk := &fixedClock{}
		base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
		clk.ms.Store(base)
		cfg.Clock = clk
		b := openCfg(t, cfg)
		ctx := testCtx(t)
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 200, TimestampType: log.LogAppendTime}}))
		for i := range 10 {
			clk.ms.Store(base + int64(i)*10)
			// The producer's timestamps run backwards: they do not count.
			produce(t, b, "t", 0, compression.Zstd, rec{ts: base - int64(i)*1000, value: fmt.Sprint(i)}, rec{ts: 1, value: fmt.Sprint(i, "b")})
		}
		c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
		require.NoError(t, c.Assign("t", 0, consumer.AtTime(time.UnixMilli(base+35))))
		got := readN(t, c, 2)
		require.Equal(t, []string{"4", "4b"}, vals(got))
		for _, r := range got {
			require.Equal(t, record.LogAppendTime, r.TimestampType)
			require.Equal(t, base+40, r.Timestamp.UnixMilli())
		}
		require.NoError(t, c.Seek("t", 0, consumer.AtTime(time.UnixMilli(base+1000))))
		_, err := c.Poll(ctx)
		require.NoError(t, err)
		pos, _ := c.Position("t", 0)
		require.EqualValues(t, 20, pos)
	})
}

// A consumer at the end of several partitions is woken by a produce to
// any one of them, not by FetchMaxWait.
func TestEndThenProduceWakesLongPoll(t *testing.T) {
	eachFS(t, func(t *testing.T, cfg runnel.Config) {
		b := openCfg(t, cfg)
		ctx := testCtx(t)
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 3}))
		for p := range int32(3) {
			values(t, b, "t", p, "old")
		}
		sc := newSignalClient(b)
		c := newConsumer(t, sc, consumer.FetchMaxWait(time.Hour))
		require.NoError(t, c.AssignTopic(ctx, "t", consumer.End()))
		for _, p := range []int32{2, 0, 1} {
			res := async(func() consumer.Fetches {
				fs, err := c.Poll(ctx)
				require.NoError(t, err)
				return fs
			})
			recv(t, sc.fetching)
			values(t, b, "t", p, fmt.Sprint("new", p))
			fs := recv(t, res)
			g := &got{}
			g.add(fs)
			require.Equal(t, []string{fmt.Sprint("new", p)}, g.values("t", p))
			require.Len(t, g.recs, 1)
		}
	})
}

// Pause, Resume, Unassign and Assign from inside a Records loop: nothing
// lost, nothing twice, nothing of a paused or unassigned partition.
func TestChangesInsideRecordsLoop(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 2})
	values(t, b, "t", 0, seq("a", 0, 10)...)
	values(t, b, "t", 1, seq("b", 0, 10)...)
	c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.AssignTopic(testCtx(t), "t", consumer.Start()))
	p0 := api.TopicPartition{Topic: "t", Partition: 0}
	var got0, got1 []string
	step := 0
	paused := false
	for r, err := range c.Records(testCtx(t)) {
		require.NoError(t, err)
		require.False(t, paused && r.Partition == 0, "a record of a paused partition")
		if r.Partition == 0 {
			require.Equal(t, fmt.Sprint("a", len(got0)), string(r.Value), "partition 0 in order, no gap, no duplicate")
			got0 = append(got0, string(r.Value))
		} else {
			got1 = append(got1, string(r.Value))
		}
		switch {
		case step == 0 && len(got0) == 3:
			c.Pause(p0)
			paused = true
			values(t, b, "t", 1, "b10")
			step++
		case step == 1 && string(r.Value) == "b10":
			c.Resume(p0)
			c.Pause(p0)
			c.Resume(p0)
			paused = false
			step++
		case step == 2 && len(got0) == 5:
			c.Unassign("t", 1)
			n1 := len(got1)
			require.NoError(t, c.Assign("t", 1, consumer.At(int64(n1))))
			c.Unassign("t", 1)
			require.NoError(t, c.Assign("t", 1, consumer.At(int64(n1))))
			step++
		}
		if len(got0) == 10 && len(got1) == 11 {
			break
		}
	}
	require.Equal(t, seq("a", 0, 10), got0)
	require.Equal(t, seq("b", 0, 11), got1)
}

// A partition added to a topic while a consumer reads it with AssignTopic
// is not read until the application assigns it: AssignTopic assigns the
// partitions there are when it is called (see its doc).
func TestCreatePartitionsWhileConsuming(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	ctx := testCtx(t)
	values(t, b, "t", 0, "a")
	c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.AssignTopic(ctx, "t", consumer.Start()))
	require.Equal(t, []string{"a"}, vals(readN(t, c, 1)))
	require.NoError(t, b.CreatePartitions(ctx, "t", 2))
	values(t, b, "t", 1, "new partition")
	values(t, b, "t", 0, "b")
	require.Equal(t, []string{"b"}, vals(readN(t, c, 1)))
	require.Equal(t, []api.TopicPartition{{Topic: "t", Partition: 0}}, c.Assigned())

	n, err := b.Partitions(ctx, "t")
	require.NoError(t, err)
	for p := len(c.Assigned()); p < n; p++ {
		require.NoError(t, c.Assign("t", int32(p), consumer.Start()))
	}
	values(t, b, "t", 0, "c")
	g := pollUntil(t, c, 2)
	require.Equal(t, []string{"c"}, g.values("t", 0), "partition 0 goes on where it was")
	require.Equal(t, []string{"new partition"}, g.values("t", 1))
}

// A ctx cancelled during a Poll's long wait: Poll returns ctx's error,
// nothing moves, and the next Poll goes on at the right offset.
func TestCancelMidPoll(t *testing.T) {
	eachFS(t, func(t *testing.T, cfg runnel.Config) {
		b := openCfg(t, cfg)
		require.NoError(t, b.CreateTopic(testCtx(t), "t", log.TopicConfig{Partitions: 2}))
		values(t, b, "t", 0, "a0", "a1")
		sc := newSignalClient(b)
		c := newConsumer(t, sc, consumer.FetchMaxWait(time.Hour))
		require.NoError(t, c.Assign("t", 0, consumer.Start()))
		require.Equal(t, []string{"a0", "a1"}, vals(readN(t, c, 2)))
		require.NoError(t, c.Assign("t", 1, consumer.Start()))
		for len(sc.fetching) > 0 {
			<-sc.fetching
		}
		for i := range 3 {
			ctx, cancel := context.WithCancel(context.Background())
			res := async(func() error {
				fs, err := c.Poll(ctx)
				if len(fs) > 0 {
					return fmt.Errorf("fetches with %v: %v", err, fs)
				}
				return err
			})
			recv(t, sc.fetching)
			cancel()
			require.ErrorIs(t, recv(t, res), context.Canceled, "round %d", i)
			pos, ok := c.Position("t", 0)
			require.True(t, ok)
			require.EqualValues(t, 2, pos)
		}
		values(t, b, "t", 0, "a2")
		values(t, b, "t", 1, "b0")
		g := pollUntil(t, c, 2)
		require.Equal(t, []string{"a2"}, g.values("t", 0))
		require.Equal(t, []string{"b0"}, g.values("t", 1))
	})
}

// Close while other goroutines Poll and range over Records: every call
// returns, nothing is delivered twice, and no goroutine is left.
func TestCloseConcurrentWithPollAndRecords(t *testing.T) {
	for round := range 20 {
		b := openBroker(t, map[string]int{"t": 2})
		for i := 0; i < 40; i += 10 {
			values(t, b, "t", 0, seq("a", i, 10)...)
			values(t, b, "t", 1, seq("b", i, 10)...)
		}
		c, err := consumer.New(b, consumer.FetchMaxWait(time.Hour), consumer.FetchMaxPartitionBytes(1))
		require.NoError(t, err)
		require.NoError(t, c.AssignTopic(testCtx(t), "t", consumer.Start()))
		var mu sync.Mutex
		seen := map[string]int{}
		started := make(chan struct{}, 4)
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				started <- struct{}{}
				if g%2 == 0 {
					for r, err := range c.Records(context.Background()) {
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						seen[string(r.Value)]++
						mu.Unlock()
					}
					return
				}
				for {
					fs, err := c.Poll(context.Background())
					if err != nil {
						if !errors.Is(err, consumer.ErrClosed) {
							t.Error(err)
						}
						return
					}
					for r := range fs.Records() {
						mu.Lock()
						seen[string(r.Value)]++
						mu.Unlock()
					}
				}
			}()
		}
		for range 4 {
			testkit.Await(t, started, "a polling goroutine's start")
		}
		if round%2 == 0 {
			runtime.Gosched()
		}
		require.NoError(t, c.Close())
		wg.Wait()
		for v, n := range seen {
			require.Equal(t, 1, n, "%s delivered %d times", v, n)
		}
		// A position Close left unresolved (Start not yet looked up) had
		// nothing delivered from it: the log starts at 0.
		pos0, ok0 := c.Position("t", 0)
		pos1, ok1 := c.Position("t", 1)
		if !ok0 {
			pos0 = 0
		}
		if !ok1 {
			pos1 = 0
		}
		n0, n1 := 0, 0
		for v := range seen {
			if v[0] == 'a' {
				n0++
			} else {
				n1++
			}
		}
		require.EqualValues(t, pos0, n0, "the position counts what was delivered")
		require.EqualValues(t, pos1, n1)
	}
}

// Records kept across later polls keep their bytes, compressed or not,
// while the log they came from (views of it, in memory) is deleted by
// retention.
func TestKeptRecordsAcrossPollsAndRetention(t *testing.T) {
	for _, codec := range allCodecs {
		t.Run(codec.String(), func(t *testing.T) {
			eachFS(t, func(t *testing.T, cfg runnel.Config) {
				clk := &fixedClock{}
				clk.ms.Store(time.Now().UnixMilli())
				cfg.Clock = clk
				b := openCfg(t, cfg)
				ctx := testCtx(t)
				require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 400, RetentionTime: time.Hour}}))
				c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond), consumer.FetchMaxPartitionBytes(1))
				require.NoError(t, c.Assign("t", 0, consumer.Start()))
				type kept struct {
					r          *record.Record
					key, value []byte
					hv         []byte
				}
				var all []kept
				for round := range 6 {
					var recs []rec
					for i := range 5 {
						v := fmt.Sprintf("%s-%d-%d-%s", codec, round, i, bytes.Repeat([]byte{'x'}, i*7))
						recs = append(recs, rec{ts: clk.ms.Load(), key: []byte("key" + v), value: v, headers: hdr("h", "hv"+v)})
					}
					produce(t, b, "t", 0, codec, recs...)
					for _, r := range readN(t, c, 5) {
						all = append(all, kept{r, bytes.Clone(r.Key), bytes.Clone(r.Value), bytes.Clone(r.Headers[0].Value)})
					}
					// Age everything, and delete it.
					clk.ms.Add(2 * time.Hour.Milliseconds())
					require.NoError(t, b.Maintain(ctx))
				}
				info, err := b.DescribeTopic(ctx, "t")
				require.NoError(t, err)
				require.Greater(t, info.Partitions[0].LogStartOffset, int64(0), "retention deleted segments")
				runtime.GC()
				for _, k := range all {
					require.Equal(t, k.key, k.r.Key)
					require.Equal(t, k.value, k.r.Value)
					require.Equal(t, k.hv, k.r.Headers[0].Value)
				}
			})
		})
	}
}

// Compaction empties an idempotent producer's last batch but keeps it:
// a consumer passes over it, from before it and from inside it.
func TestEmptiedProducerBatchPassedOver(t *testing.T) {
	eachFS(t, func(t *testing.T, cfg runnel.Config) {
		b := openCfg(t, cfg)
		ctx := testCtx(t)
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{
			CleanupPolicy: log.Compact, SegmentBytes: 200, MinCleanableDirtyRatio: -1,
		}}))
		for _, codec := range allCodecs {
			for round := range 2 {
				p, err := producer.New(b, producer.Compression(codec), producer.RecordPartitioner(producer.ManualPartitioner()))
				require.NoError(t, err)
				var recs []*record.Record
				for k := range 4 {
					recs = append(recs, &record.Record{Topic: "t", Key: []byte(fmt.Sprint("k", k)), Value: []byte(fmt.Sprint(codec, round, k))})
				}
				require.NoError(t, p.ProduceSync(ctx, recs...))
				require.NoError(t, p.Close())
			}
		}
		p, err := producer.New(b, producer.RecordPartitioner(producer.ManualPartitioner()))
		require.NoError(t, err)
		require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "t", Key: []byte("tail"), Value: []byte("tail")}))
		require.NoError(t, p.Close())
		require.NoError(t, b.Maintain(ctx))
		listed, err := b.ListOffset(ctx, "t", 0, api.Latest)
		require.NoError(t, err)
		hw := listed.Offset

		c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
		require.NoError(t, c.Assign("t", 0, consumer.Start()))
		var all []*record.Record
		for {
			fs, err := c.Poll(ctx)
			require.NoError(t, err)
			n := 0
			for r, err := range fs.Records() {
				require.NoError(t, err)
				all = append(all, r)
				n++
			}
			require.Equal(t, n, fs.NumRecords())
			if pos, _ := c.Position("t", 0); pos >= hw {
				break
			}
		}
		t.Logf("hw %d, %d records left", hw, len(all))
		for o := int64(0); o < hw; o++ {
			var want *record.Record
			for _, r := range all {
				if r.Offset >= o {
					want = r
					break
				}
			}
			c2 := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond), consumer.FetchMaxPartitionBytes(1))
			require.NoError(t, c2.Assign("t", 0, consumer.At(o)))
			got := readN(t, c2, 1)[0]
			require.Equal(t, want.Offset, got.Offset, "from %d", o)
			require.NoError(t, c2.Close())
		}
	})
}

// Seeks by time in a compacted log whose batches carry delete horizons.
func TestAtTimeAfterCompaction(t *testing.T) {
	eachFS(t, func(t *testing.T, cfg runnel.Config) {
		b := openCfg(t, cfg)
		ctx := testCtx(t)
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{
			CleanupPolicy: log.Compact, SegmentBytes: 200, MinCleanableDirtyRatio: -1,
		}}))
		base := time.Now().Add(-time.Hour).UnixMilli()
		for i := range 30 {
			var bld record.Builder
			k := []byte(fmt.Sprint("k", i%5))
			var v []byte
			if i%4 != 3 {
				v = []byte(fmt.Sprint(i))
			}
			bld.Append(base+int64(i)*10, k, v, nil)
			bld.Append(base+int64(i)*10+5, []byte(fmt.Sprint("u", i)), []byte(fmt.Sprint("u", i)), nil)
			data, err := bld.AppendTo(nil, allCodecs[i%5])
			require.NoError(t, err)
			_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: 0, Acks: api.AcksAll, Batches: data})
			require.NoError(t, err)
		}
		require.NoError(t, b.Maintain(ctx))
		all := consumeAllOfT(t, b)
		for ts := base - 1; ts <= base+300; ts += 2 {
			{
				var want *record.Record
				for _, w := range all {
					if w.Timestamp.UnixMilli() >= ts {
						want = w
						break
					}
				}
				c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
				require.NoError(t, c.Assign("t", 0, consumer.AtTime(time.UnixMilli(ts))))
				if want == nil {
					fs, err := c.Poll(ctx)
					require.NoError(t, err)
					require.Zero(t, fs.NumRecords())
					require.NoError(t, c.Close())
					continue
				}
				got := readN(t, c, 1)[0]
				require.Equal(t, want.Offset, got.Offset, "at %d", ts)
				require.NoError(t, c.Close())
			}
		}
	})
}

// consumeAllOfT reads t-0 from its start to its high watermark.
func consumeAllOfT(t *testing.T, b *runnel.Broker) []*record.Record {
	t.Helper()
	c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	listed, err := b.ListOffset(testCtx(t), "t", 0, api.Latest)
	require.NoError(t, err)
	hw := listed.Offset
	var all []*record.Record
	for {
		fs, err := c.Poll(testCtx(t))
		require.NoError(t, err)
		for r, err := range fs.Records() {
			require.NoError(t, err)
			all = append(all, r)
		}
		if pos, _ := c.Position("t", 0); pos >= hw {
			return all
		}
	}
}

// NumRecords and EachRecord agree with Records on every fetch, whatever
// codec the first batch has and wherever in it the fetch begins.
func TestNumRecordsAgreesWithRecords(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	n := 0
	for round := range 3 {
		for _, codec := range allCodecs {
			var recs []rec
			for i := range 2 + round {
				recs = append(recs, rec{value: fmt.Sprint(codec, round, i)})
				n++
			}
			produce(t, b, "t", 0, codec, recs...)
		}
	}
	for start := 0; start < n; start++ {
		for _, lim := range []int{1, 150, 1 << 20} {
			c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond), consumer.FetchMaxPartitionBytes(lim))
			require.NoError(t, c.Assign("t", 0, consumer.At(int64(start))))
			got := 0
			for got < n-start {
				fs, err := c.Poll(testCtx(t))
				require.NoError(t, err)
				k := 0
				for _, err := range fs.Records() {
					require.NoError(t, err)
					k++
				}
				require.Equal(t, k, fs.NumRecords(), "start %d lim %d", start, lim)
				m := 0
				fs.EachRecord(func(r *record.Record) { m++ })
				require.Equal(t, k, m)
				got += k
			}
			require.Equal(t, n-start, got)
			require.NoError(t, c.Close())
		}
	}
}
