package consumer_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func bubbleBroker(t *testing.T) *runnel.Broker {
	b, err := runnel.Open(runnel.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1}))
	return b
}

// syncProduce produces vals to topic "t" one at a time; it may run on a
// goroutine of the test's (it does not stop the test).
func syncProduce(t *testing.T, b *runnel.Broker, vals ...string) {
	p, err := producer.New(b)
	if !assert.NoError(t, err) {
		return
	}
	defer p.Close()
	for _, v := range vals {
		assert.NoError(t, p.ProduceSync(t.Context(), &record.Record{Topic: "t", Value: []byte(v)}))
	}
}

func TestSynctestPollMaxWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bubbleBroker(t)
		c, err := consumer.New(b, consumer.FetchMaxWait(300*time.Millisecond))
		require.NoError(t, err)
		defer c.Close()
		c.Assign("t", 0, consumer.Start())
		t0 := time.Now()
		fs, err := c.Poll(t.Context())
		require.NoError(t, err)
		require.Zero(t, fs.NumRecords())
		require.Equal(t, t0.Add(300*time.Millisecond), time.Now())
	})
}

func TestSynctestPollWokenByAppend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bubbleBroker(t)
		c, err := consumer.New(b, consumer.FetchMaxWait(300*time.Millisecond))
		require.NoError(t, err)
		defer c.Close()
		c.Assign("t", 0, consumer.Start())
		t0 := time.Now()
		go func() {
			time.Sleep(100 * time.Millisecond)
			syncProduce(t, b, "a")
		}()
		fs, err := c.Poll(t.Context())
		require.NoError(t, err)
		recs := records(t, fs)
		require.Len(t, recs, 1)
		require.Equal(t, t0.Add(100*time.Millisecond), time.Now())
		require.True(t, t0.Add(100*time.Millisecond).Equal(recs[0].Timestamp), "stamped %v", recs[0].Timestamp)
	})
}

// A Poll waiting for FetchMinBytes, for as long as FetchMaxWait allows,
// from a position that DeleteRecords leaves below the log start returns
// at once: under ResetNone with the offset out of range, under
// ResetEarliest having reset the position quietly (the next Poll looks
// the log start up). Before the broker woke such a fetch (log.Log.OnCut),
// the Poll waited the hour out.
func TestSynctestPollWokenByDeleteRecords(t *testing.T) {
	for _, reset := range []consumer.ResetPolicy{consumer.ResetNone, consumer.ResetEarliest} {
		t.Run(reset.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := bubbleBroker(t)
				syncProduce(t, b, "a", "b", "c")
				c, err := consumer.New(b, consumer.FetchMaxWait(time.Hour), consumer.FetchMinBytes(1<<20), consumer.ResetOffset(reset))
				require.NoError(t, err)
				defer c.Close()
				require.NoError(t, c.Assign("t", 0, consumer.At(1)))
				t0 := time.Now()
				go func() {
					synctest.Wait() // the Poll's fetch waits for MinBytes
					_, err := b.DeleteRecords(t.Context(), "t", 0, 2)
					assert.NoError(t, err)
				}()
				fs, err := c.Poll(t.Context())
				require.NoError(t, err)
				require.Equal(t, t0, time.Now(), "the Poll waited for FetchMaxWait")
				require.Zero(t, fs.NumRecords())
				_, ok := c.Position("t", 0)
				if reset == consumer.ResetNone {
					require.Len(t, fs, 1)
					require.ErrorIs(t, fs[0].Err, log.ErrOffsetOutOfRange)
					require.True(t, ok)
				} else {
					require.Empty(t, fs)
					require.False(t, ok, "the position was not reset")
				}
			})
		})
	}
}

// A Poll whose ctx ends while its fetch waits for FetchMinBytes returns
// the records found by then (fewer bytes than FetchMinBytes) with a nil
// error, its positions past them, as a Kafka consumer's poll(timeout)
// returns what it has when the timeout passes: a ctx with a timeout
// bounds a Poll's wait without losing what it found. A Poll that found
// nothing returns ctx's error. A Records loop whose ctx ends then yields
// none of them, only ctx's error: they are the next Poll's.
func TestSynctestPollCtxEndsWithPartialFetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bubbleBroker(t)
		syncProduce(t, b, "a", "b")
		c, err := consumer.New(b, consumer.FetchMaxWait(time.Hour), consumer.FetchMinBytes(1<<20))
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.Assign("t", 0, consumer.At(0)))

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		for r, err := range c.Records(ctx) {
			if !ctxEnd(ctx, err) {
				t.Fatalf("the loop yielded %v, %v after its ctx ended", r, err)
			}
		}
		pos, ok := c.Position("t", 0)
		require.True(t, ok)
		require.Zero(t, pos, "the loop moved the position")

		t0 := time.Now()
		ctx, cancel = context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		fs, err := c.Poll(ctx)
		require.NoError(t, err)
		require.Equal(t, t0.Add(time.Second), time.Now())
		var got []string
		for _, r := range records(t, fs) {
			got = append(got, string(r.Value))
		}
		require.Equal(t, []string{"a", "b"}, got)
		pos, ok = c.Position("t", 0)
		require.True(t, ok)
		require.EqualValues(t, 2, pos)

		ctx, cancel = context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		fs, err = c.Poll(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Empty(t, fs)
		require.Equal(t, t0.Add(2*time.Second), time.Now())
	})
}

func TestSynctestPollMinBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bubbleBroker(t)
		c, err := consumer.New(b, consumer.FetchMaxWait(time.Second), consumer.FetchMinBytes(250))
		require.NoError(t, err)
		defer c.Close()
		c.Assign("t", 0, consumer.Start())
		t0 := time.Now()
		go func() {
			for range 10 {
				time.Sleep(10 * time.Millisecond)
				syncProduce(t, b, string(make([]byte, 50)))
			}
		}()
		fs, err := c.Poll(t.Context())
		require.NoError(t, err)
		n := fs.NumRecords()
		require.Less(t, n, 10)
		require.Equal(t, t0.Add(time.Duration(n)*10*time.Millisecond), time.Now())
		// The rest came meanwhile: more than MinBytes, returned at once.
		time.Sleep(time.Second)
		t1 := time.Now()
		fs, err = c.Poll(t.Context())
		require.NoError(t, err)
		require.Equal(t, 10-n, fs.NumRecords())
		require.Equal(t, t1, time.Now())
		// Nothing more comes: the wait ends at MaxWait, empty-handed.
		fs, err = c.Poll(t.Context())
		require.NoError(t, err)
		require.Zero(t, fs.NumRecords())
		require.Equal(t, t1.Add(time.Second), time.Now())
	})
}

// A fetch that fails with a retriable error is retried after
// RetryBackoff, without a word: each Poll in between returns nothing
// once the backoff ends.
func TestSynctestFetchRetryBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bubbleBroker(t)
		syncProduce(t, b, "a")
		f := runneltest.NewFaults(t, b)
		fail := f.Add(runneltest.Fault{Op: runneltest.OpFetch, Topic: "t", Err: api.ErrNotLeader, Count: 2})
		c, err := consumer.New(f, consumer.RetryBackoff(200*time.Millisecond))
		require.NoError(t, err)
		defer c.Close()
		c.Assign("t", 0, consumer.Start())
		t0 := time.Now()
		var polls []time.Duration
		ctx := testCtx(t) // on the bubble's clock: a retry that never ends fails the test
		for {
			fs, err := c.Poll(ctx)
			require.NoError(t, err)
			polls = append(polls, time.Since(t0))
			if fs.NumRecords() > 0 {
				break
			}
		}
		require.Equal(t, []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 400 * time.Millisecond}, polls)
		require.Equal(t, 2, fail.Hits())
	})
}

func records(t *testing.T, fs consumer.Fetches) []*record.Record {
	var out []*record.Record
	for r, err := range fs.Records() {
		require.NoError(t, err)
		out = append(out, r)
	}
	return out
}

func TestSynctestCloseEndsPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bubbleBroker(t)
		c, err := consumer.New(b, consumer.FetchMaxWait(time.Hour))
		require.NoError(t, err)
		requireCloseEndsPoll(t, c, func() { c.Close() }, consumer.ErrClosed)
	})
}

func TestSynctestBrokerCloseEndsPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := runnel.Open(runnel.Config{})
		require.NoError(t, err)
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1}))
		c, err := consumer.New(b, consumer.FetchMaxWait(time.Hour))
		require.NoError(t, err)
		defer c.Close()
		requireCloseEndsPoll(t, c, func() { b.Close() }, runnel.ErrClosed)
	})
}

// requireCloseEndsPoll assigns partition t-0 to c, whose FetchMaxWait is
// longer than the test, and checks that a Poll waiting on it ends with
// wantErr, a second in, when closeFn closes what it reads (called then on
// another goroutine).
func requireCloseEndsPoll(t *testing.T, c *consumer.Consumer, closeFn func(), wantErr error) {
	t.Helper()
	c.Assign("t", 0, consumer.Start())
	t0 := time.Now()
	go func() {
		time.Sleep(time.Second)
		closeFn()
	}()
	_, err := c.Poll(t.Context())
	require.ErrorIs(t, err, wantErr)
	require.Equal(t, t0.Add(time.Second), time.Now())
}

// Under FetchMaxWait(0) a Records loop over an idle partition waits
// 500 ms a fetch (idleWait), and a record appended meanwhile comes at once.
func TestSynctestRecordsIdleWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bubbleBroker(t)
		f := runneltest.NewFaults(t, b)
		obs := f.Add(runneltest.Fault{Op: runneltest.OpFetch, Action: runneltest.Observe, Count: runneltest.Unlimited})
		c, err := consumer.New(f, consumer.FetchMaxWait(0))
		require.NoError(t, err)
		defer c.Close()
		c.Assign("t", 0, consumer.Start())
		t0 := time.Now()
		go func() {
			time.Sleep(1200 * time.Millisecond)
			syncProduce(t, b, "a")
		}()
		for r, err := range c.Records(testCtx(t)) {
			require.NoError(t, err)
			require.Equal(t, "a", string(r.Value))
			break
		}
		require.Equal(t, t0.Add(1200*time.Millisecond), time.Now())
		// One fetch answered at once, then one each 500 ms, the third woken by the append.
		require.Equal(t, 4, obs.Hits())
	})
}

// Records waits RetryBackoff after a Poll's error that is not permanent.
func TestSynctestRecordsBackoffAfterPollError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bubbleBroker(t)
		syncProduce(t, b, "a")
		f := runneltest.NewFaults(t, b)
		errNet := errors.New("network down")
		f.Add(runneltest.Fault{Op: runneltest.OpFetch, Err: errNet, Count: 2})
		c, err := consumer.New(f, consumer.RetryBackoff(300*time.Millisecond))
		require.NoError(t, err)
		defer c.Close()
		c.Assign("t", 0, consumer.Start())
		t0 := time.Now()
		var errs []time.Duration
		for r, err := range c.Records(testCtx(t)) {
			if err != nil {
				require.ErrorIs(t, err, errNet)
				errs = append(errs, time.Since(t0))
				continue
			}
			require.Equal(t, "a", string(r.Value))
			break
		}
		require.Equal(t, []time.Duration{0, 300 * time.Millisecond}, errs)
		require.Equal(t, t0.Add(600*time.Millisecond), time.Now())
	})
}

// Records waits RetryBackoff after a record that does not decode also
// when the fetch yielded records before it: the partition's position
// moved past them to the bad record, and the backoff is set from there.
func TestSynctestRecordsBackoffAfterDecodingErrorPastRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The second record's header count (the batch's last byte)
		// announces a header that is not there.
		data := batchAt(t, 0, "a", "b")
		data[len(data)-1] = 2 // zigzag 1
		record.Batch(data).UpdateCRC()
		client := &fakeClient{t: t, fetch: func(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
			return api.FetchResponse{Partitions: []api.FetchedPartition{{Topic: "t", Partition: 0, HighWatermark: 2, Records: data}}}, nil
		}}
		c := newConsumer(t, client, consumer.RetryBackoff(300*time.Millisecond))
		require.NoError(t, c.Assign("t", 0, consumer.At(0)))
		t0 := time.Now()
		var vals []string
		var errs []time.Duration
		for r, err := range c.Records(testCtx(t)) {
			if err != nil {
				require.ErrorIs(t, err, record.ErrCorrupt)
				errs = append(errs, time.Since(t0))
				if len(errs) == 2 {
					break
				}
				continue
			}
			vals = append(vals, string(r.Value))
		}
		require.Equal(t, []string{"a"}, vals)
		require.Equal(t, []time.Duration{0, 300 * time.Millisecond}, errs)
	})
}

type failingPartitions struct {
	*runnel.Broker
	calls []time.Time
}

func (c *failingPartitions) Partitions(ctx context.Context, topic string) (int, error) {
	c.calls = append(c.calls, time.Now())
	return 0, api.ErrNotLeader
}

func TestSynctestAssignTopicRetriesFor60s(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := &failingPartitions{Broker: bubbleBroker(t)}
		c, err := consumer.New(cl, consumer.RetryBackoff(7*time.Second))
		require.NoError(t, err)
		defer c.Close()
		t0 := time.Now()
		require.ErrorIs(t, c.AssignTopic(t.Context(), "t", consumer.Start()), api.ErrNotLeader)
		require.Equal(t, t0.Add(60*time.Second), time.Now())
		require.Len(t, cl.calls, 10) // 0, 7, ..., 56, 60
		require.Equal(t, t0.Add(60*time.Second), cl.calls[9])
	})
}

// A partition whose topic does not exist yet is looked up again every
// RetryBackoff, without a word, and read from the first look-up after
// the topic comes.
func TestSynctestTopicCreatedLater(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := runnel.Open(runnel.Config{})
		require.NoError(t, err)
		defer b.Close()
		c, err := consumer.New(b, consumer.RetryBackoff(400*time.Millisecond))
		require.NoError(t, err)
		defer c.Close()
		c.Assign("t", 0, consumer.Start())
		t0 := time.Now()
		go func() {
			time.Sleep(1100 * time.Millisecond)
			assert.NoError(t, b.CreateTopic(context.Background(), "t", log.TopicConfig{Partitions: 1}))
			time.Sleep(100 * time.Millisecond)
			syncProduce(t, b, "a")
		}()
		for r, err := range c.Records(testCtx(t)) {
			require.NoError(t, err)
			require.Equal(t, "a", string(r.Value))
			break
		}
		require.Equal(t, t0.Add(1200*time.Millisecond), time.Now(), "looked up at 0, 0.4, 0.8, 1.2 s: read at once")
	})
}

// AtTime finds the first record stamped at or after the time, by the
// producer's stamps on the fake clock, to the millisecond (Kafka's
// timestamps' precision).
func TestSynctestAtTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bubbleBroker(t)
		t0 := time.Now()
		for _, v := range []string{"a", "b", "c"} {
			syncProduce(t, b, v)
			time.Sleep(time.Second)
		}
		for _, tc := range []struct {
			at   time.Time
			want string
		}{
			{t0.Add(-time.Hour), "a"},
			{t0, "a"},
			{t0.Add(time.Nanosecond), "a"}, // the same millisecond
			{t0.Add(time.Millisecond), "b"},
			{t0.Add(time.Second), "b"},
			{t0.Add(2 * time.Second), "c"},
		} {
			c, err := consumer.New(b, consumer.FetchMaxWait(0))
			require.NoError(t, err)
			c.Assign("t", 0, consumer.AtTime(tc.at))
			fs, err := c.Poll(t.Context())
			require.NoError(t, err)
			recs := records(t, fs)
			require.NotEmpty(t, recs, "at %v", tc.at.Sub(t0))
			require.Equal(t, tc.want, string(recs[0].Value), "at %v", tc.at.Sub(t0))
			require.NoError(t, c.Close())
		}
	})
}

// A change of the assignment wakes a Records loop's wait at once: an
// Assign while it waits with nothing assigned, a Resume while everything
// is paused, a Seek back while it long-polls at the end.
func TestSynctestChangesWakeTheWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bubbleBroker(t)
		syncProduce(t, b, "a", "b")
		c, err := consumer.New(b, consumer.FetchMaxWait(time.Hour))
		require.NoError(t, err)
		defer c.Close()
		t0 := time.Now()
		tp := api.TopicPartition{Topic: "t", Partition: 0}
		go func() {
			time.Sleep(time.Second)
			assert.NoError(t, c.Assign("t", 0, consumer.At(1)))
		}()
		next := func() string {
			for r, err := range c.Records(testCtx(t)) {
				require.NoError(t, err)
				return string(r.Value)
			}
			return ""
		}
		require.Equal(t, "b", next())
		require.Equal(t, t0.Add(time.Second), time.Now(), "Assign did not wake the wait")

		c.Pause(tp)
		go func() {
			time.Sleep(time.Second)
			assert.NoError(t, c.Seek("t", 0, consumer.At(0)))
			time.Sleep(time.Second)
			c.Resume(tp)
		}()
		require.Equal(t, "a", next())
		require.Equal(t, t0.Add(3*time.Second), time.Now(), "Resume did not wake the wait")

		require.Equal(t, "b", next())
		go func() {
			time.Sleep(time.Second)
			assert.NoError(t, c.Seek("t", 0, consumer.At(0)))
		}()
		require.Equal(t, "a", next(), "the long poll at the end was not cut by the Seek")
		require.Equal(t, t0.Add(4*time.Second), time.Now())
	})
}

// A partition backed off after a retriable error while another
// partition long-polls: when its backoff ends by itself it joins the next
// fetch, once the long poll under way ends (at FetchMaxWait), as Kafka's
// consumer and franz-go, with one fetch in flight per broker, add a
// partition that became fetchable to the next fetch rather than cut the
// one in flight (see RetryBackoff); but a Seek or Assign of it from
// another goroutine ends the long poll at once, and the next fetch reads
// it from the new position then, as a kgo seek cancels the fetch in
// flight.
func TestSynctestBackedOffPartitionDuringLongPoll(t *testing.T) {
	for _, change := range []string{"none", "seek", "assign"} {
		t.Run(change, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, err := runnel.Open(runnel.Config{})
				require.NoError(t, err)
				defer b.Close()
				require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 2}))
				for _, v := range []string{"a", "b", "c"} {
					_, err = b.Produce(t.Context(), &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: oneRecord(t, v)})
					require.NoError(t, err)
				}
				f := runneltest.NewFaults(t, b)
				f.Add(runneltest.Fault{Op: runneltest.OpFetch, Partitions: []int32{0}, Action: runneltest.FailPartitions, Err: api.ErrNotLeader, Count: 1})
				c, err := consumer.New(f, consumer.FetchMaxWait(10*time.Second), consumer.RetryBackoff(time.Second))
				require.NoError(t, err)
				defer c.Close()
				require.NoError(t, c.AssignTopic(t.Context(), "t", consumer.At(0)))
				t0 := time.Now()
				// Partition 0's answer fails: backed off for a second;
				// partition 1, with nothing, is answered at once.
				fs, err := c.Poll(t.Context())
				require.NoError(t, err)
				require.Empty(t, fs)
				require.Equal(t, t0, time.Now())
				go func() {
					time.Sleep(3 * time.Second)
					switch change {
					case "seek":
						assert.NoError(t, c.Seek("t", 0, consumer.At(1)))
					case "assign":
						assert.NoError(t, c.Assign("t", 0, consumer.At(1)))
					}
				}()
				// Partition 1 alone long-polls.
				fs, err = c.Poll(t.Context())
				require.NoError(t, err)
				require.Empty(t, fs)
				want, at := []string{"a", "b", "c"}, t0.Add(10*time.Second)
				if change != "none" {
					want, at = []string{"b", "c"}, t0.Add(3*time.Second)
				}
				require.Equal(t, at, time.Now(), "when the long poll ended")
				fs, err = c.Poll(t.Context())
				require.NoError(t, err)
				var got []string
				for _, r := range records(t, fs) {
					got = append(got, string(r.Value))
				}
				require.Equal(t, want, got)
				require.Equal(t, at, time.Now())
			})
		})
	}
}

// Under FetchMaxWait(0) a Records loop's wait for a first record (500 ms)
// ends when a partition backed off after an error may be retried.
func TestSynctestIdleWaitEndsAtRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := runnel.Open(runnel.Config{})
		require.NoError(t, err)
		defer b.Close()
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 2}))
		_, err = b.Produce(t.Context(), &api.ProduceRequest{Topic: "t", Partition: 1, Acks: api.AcksAll, Batches: oneRecord(t, "x")})
		require.NoError(t, err)
		f := runneltest.NewFaults(t, b)
		f.Add(runneltest.Fault{Op: runneltest.OpFetch, Partitions: []int32{1}, Action: runneltest.FailPartitions, Err: api.ErrNotLeader, Count: 1})
		c, err := consumer.New(f, consumer.FetchMaxWait(0), consumer.RetryBackoff(200*time.Millisecond))
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.AssignTopic(t.Context(), "t", consumer.Start()))
		t0 := time.Now()
		for r, err := range c.Records(testCtx(t)) {
			require.NoError(t, err)
			require.Equal(t, "x", string(r.Value))
			break
		}
		require.Equal(t, t0.Add(200*time.Millisecond), time.Now())
	})
}

func oneRecord(t *testing.T, v string) []byte {
	var bl record.Builder
	bl.Reset()
	bl.Append(time.Now().UnixMilli(), nil, []byte(v), nil)
	data, err := bl.AppendTo(nil, compression.None)
	require.NoError(t, err)
	return data
}
