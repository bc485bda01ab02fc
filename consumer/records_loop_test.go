package consumer_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestPanicInRecordsBodyLosesNothing: a Records loop body that
// panics ends the loop as a break does, the record in hand counting as
// yielded (per Records' doc): a caller that recovers and goes on — with
// Records again, or with Poll — reads every record of every partition
// once, in offset order, whichever record of a batch (first, middle,
// last of a fetch) the panic came at.
func TestPanicInRecordsBodyLosesNothing(t *testing.T) {
	const parts, batches, per = 3, 6, 5
	b := openBroker(t, map[string]int{"t": parts})
	for p := range int32(parts) {
		for k := range batches {
			var rs []rec
			for j := range per {
				rs = append(rs, rec{value: fmt.Sprintf("%d-%02d", p, k*per+j)})
			}
			produce(t, b, "t", p, compression.None, rs...)
		}
	}
	c := newConsumer(t, b, consumer.FetchMaxBytes(1)) // a batch a fetch: many fetches
	for p := range int32(parts) {
		require.NoError(t, c.Assign("t", p, consumer.Start()))
	}
	got := map[int32][]string{}
	n, seen := 0, 0
	// loop runs one Records loop that panics at the record after every
	// 7th, and reports whether it panicked.
	loop := func() (panicked bool) {
		defer func() {
			if v := recover(); v != nil {
				require.Equal(t, "review37", v)
				panicked = true
			}
		}()
		for r, err := range c.Records(testCtx(t)) {
			require.NoError(t, err)
			got[r.Partition] = append(got[r.Partition], string(r.Value))
			n++
			pos, ok := c.Position(r.Topic, r.Partition)
			require.True(t, ok)
			require.Greater(t, pos, r.Offset, "Position inside the body")
			if n == parts*batches*per {
				return false
			}
			if seen++; seen%7 == 0 {
				panic("review37")
			}
		}
		t.Fatal("the Records loop ended")
		return false
	}
	panics := 0
	for i := 0; ; i++ {
		if !loop() {
			break
		}
		panics++
		if i%2 == 1 {
			// Poll after the panic: it goes on from where the loop was.
			fs, err := c.Poll(testCtx(t))
			require.NoError(t, err)
			require.NoError(t, fs.Err())
			fs.EachRecord(func(r *record.Record) {
				got[r.Partition] = append(got[r.Partition], string(r.Value))
				n++
			})
			if n == parts*batches*per {
				break
			}
			require.Less(t, n, parts*batches*per, "more records than there are")
		}
	}
	require.Greater(t, panics, 5)
	for p := range int32(parts) {
		var want []string
		for k := range batches * per {
			want = append(want, fmt.Sprintf("%d-%02d", p, k))
		}
		require.Equal(t, want, got[p], "partition %d", p)
	}
}

// TestChangeWakesABlockedRecordsLoop: a Records loop blocked in a
// long poll (FetchMaxWait of an hour: only a wake-up can end it) with
// nothing to read, is woken by a Seek, an Assign, or a Resume made from
// another goroutine, and reads from the new positions (the package doc:
// such calls "take effect at once: Poll returns early"). Bounded waits
// turn a loop left asleep into a failure.
func TestChangeWakesABlockedRecordsLoop(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(*consumer.Consumer) error
		change func(*consumer.Consumer) error
		want   []string
	}{
		{"seek", func(c *consumer.Consumer) error { return c.Assign("t", 0, consumer.End()) },
			func(c *consumer.Consumer) error { return c.Seek("t", 0, consumer.At(2)) },
			[]string{"0-2", "0-3"}},
		{"assign", func(c *consumer.Consumer) error { return c.Assign("t", 0, consumer.End()) },
			func(c *consumer.Consumer) error { return c.Assign("t", 1, consumer.At(1)) },
			[]string{"1-1", "1-2", "1-3"}},
		{"resume", func(c *consumer.Consumer) error {
			if err := c.Assign("t", 0, consumer.End()); err != nil {
				return err
			}
			if err := c.Assign("t", 1, consumer.At(3)); err != nil {
				return err
			}
			c.Pause(api.TopicPartition{Topic: "t", Partition: 1})
			return nil
		}, func(c *consumer.Consumer) error {
			c.Resume(api.TopicPartition{Topic: "t", Partition: 1})
			return nil
		}, []string{"1-3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := openBroker(t, map[string]int{"t": 2})
			for p := range int32(2) {
				values(t, b, "t", p, seq(fmt.Sprintf("%d-", p), 0, 4)...)
			}
			sc := newSignalClient(b)
			c := newConsumer(t, sc, consumer.FetchMaxWait(time.Hour))
			require.NoError(t, tc.setup(c))
			out := make(chan string, 16)
			done := async(func() error {
				for r, err := range c.Records(testCtx(t)) {
					if err != nil {
						return err
					}
					out <- string(r.Value)
					if len(out) == len(tc.want) {
						return nil
					}
				}
				return nil
			})
			recv(t, sc.fetching) // the loop waits in its long poll
			require.NoError(t, tc.change(c))
			require.NoError(t, recv(t, done))
			close(out)
			var got []string
			for v := range out {
				got = append(got, v)
			}
			require.Equal(t, tc.want, got)
		})
	}
}

// TestBreakThenPollAndRecordsMixed: records of a batch after a
// Records loop's break are returned by the next Poll or Records, once.
func TestBreakThenPollAndRecordsMixed(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	values(t, b, "t", 0, seq("v", 0, 6)...)
	c := newConsumer(t, b)
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	require.Equal(t, []string{"v0", "v1"}, vals(readN(t, c, 2)))
	pos, ok := c.Position("t", 0)
	require.True(t, ok)
	require.EqualValues(t, 2, pos)
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	g := &got{}
	g.add(fs)
	require.Equal(t, []string{"v2", "v3", "v4", "v5"}, g.values("t", 0))
	values(t, b, "t", 0, seq("w", 0, 3)...)
	require.Equal(t, []string{"w0"}, vals(readN(t, c, 1)))
	require.Equal(t, []string{"w1", "w2"}, vals(readN(t, c, 2)))
}

// TestDeleteRecordsUnderRecordsLoop: DeleteRecords past the
// position between two Records loops resets it per the policy.
func TestDeleteRecordsUnderRecordsLoop(t *testing.T) {
	for _, tc := range []struct {
		reset consumer.ResetPolicy
		want  []string
	}{{consumer.ResetEarliest, seq("v", 5, 5)}, {consumer.ResetLatest, []string{"n0"}}} {
		b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
		for i := range 10 {
			values(t, b, "t", 0, seq("v", i, 1)...)
		}
		c := newConsumer(t, b, consumer.ResetOffset(tc.reset))
		require.NoError(t, c.Assign("t", 0, consumer.Start()))
		require.Equal(t, seq("v", 0, 3), vals(readN(t, c, 3)))
		_, err := b.DeleteRecords(testCtx(t), "t", 0, 5)
		require.NoError(t, err)
		if tc.reset == consumer.ResetLatest {
			// The reset, then the look-up of End, then an append.
			fs, err := c.Poll(testCtx(t))
			require.NoError(t, err)
			require.Zero(t, fs.NumRecords())
			fs, err = c.Poll(testCtx(t))
			require.NoError(t, err)
			require.Zero(t, fs.NumRecords())
			values(t, b, "t", 0, "n0")
		}
		require.Equal(t, tc.want, vals(readN(t, c, len(tc.want))), tc.reset.String())
	}
}

// TestBreakAtEveryRecordEachCodec: a Records loop broken at each
// record of compressed batches loses and repeats nothing.
func TestBreakAtEveryRecordEachCodec(t *testing.T) {
	for _, codec := range allCodecs {
		b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
		var recs []rec
		for i := range 7 {
			recs = append(recs, rec{value: fmt.Sprint(i)})
		}
		produce(t, b, "t", 0, codec, recs[:4]...)
		produce(t, b, "t", 0, codec, recs[4:]...)
		c := newConsumer(t, b)
		require.NoError(t, c.Assign("t", 0, consumer.Start()))
		for i := range 7 {
			r := readN(t, c, 1)
			require.EqualValues(t, i, r[0].Offset, codec.String())
		}
	}
}

// TestRecordsBodyMayPollAndNest: a Records loop body may call Poll, or
// range over Records again (a nested loop, which it breaks out of), as
// Records says: each goes on from the positions the loop reached, and
// the outer loop goes on past what they returned, so that every record
// of every partition is returned once, in offset order, across the
// three. The body does so at chosen records of several fetches (one
// record a batch, each batch a fetch of its own under
// FetchMaxPartitionBytes, and batches of several records fetched
// whole), with a record produced by the body now and then, to be
// returned by whichever of them comes to it first.
func TestRecordsBodyMayPollAndNest(t *testing.T) {
	for _, small := range []bool{false, true} {
		t.Run(fmt.Sprintf("small fetches=%v", small), func(t *testing.T) {
			b := runneltest.NewBroker(t, runneltest.Topic("t", 2))
			const batches, per = 6, 4
			for p := range int32(2) {
				for i := range batches {
					values(t, b, "t", p, seq(fmt.Sprintf("p%d-b%d-", p, i), 0, per)...)
				}
			}
			var opts []consumer.Opt
			if small {
				opts = append(opts, consumer.FetchMaxPartitionBytes(1))
			}
			c := newConsumer(t, b, opts...)
			require.NoError(t, c.Assign("t", 0, consumer.Start()))
			require.NoError(t, c.Assign("t", 1, consumer.Start()))
			ctx := testCtx(t)
			total := 2 * batches * per
			produced := 0
			seen := map[int32][]int64{}
			take := func(how string, r *record.Record) {
				t.Helper()
				seen[r.Partition] = append(seen[r.Partition], r.Offset)
				// Each partition's offsets so far are 0, 1, 2...: a
				// record returned twice, or skipped, shows at once.
				require.EqualValues(t, len(seen[r.Partition])-1, r.Offset, "%s: partition %d's offsets %v", how, r.Partition, seen[r.Partition])
			}
			done := func() bool { return len(seen[0])+len(seen[1]) == total+produced }
			n := 0
			for r, err := range c.Records(ctx) {
				require.NoError(t, err)
				take("outer loop", r)
				if done() {
					break
				}
				n++
				switch n % 5 {
				case 1: // a nested loop of 3 records
					k := 0
					for r, err := range c.Records(ctx) {
						require.NoError(t, err)
						take("nested loop", r)
						if k++; k == 3 || done() {
							break
						}
					}
				case 3: // a Poll
					fs, err := c.Poll(ctx)
					require.NoError(t, err)
					for r, err := range fs.Records() {
						require.NoError(t, err)
						take("Poll", r)
					}
				case 4: // a record more, for any of them
					values(t, b, "t", int32(n%2), "more")
					produced++
				}
				if done() {
					break
				}
			}
			require.True(t, done())
			for p := range int32(2) {
				pos, ok := c.Position("t", p)
				require.True(t, ok)
				require.EqualValues(t, len(seen[p]), pos, "partition %d's position", p)
			}
		})
	}
}
