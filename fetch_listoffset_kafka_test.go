package runnel

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// listCase is one ListOffset look-up and the answer Kafka's broker gives
// (or the one runnel documents where it differs).
type listCase struct {
	ts, off, at int64
	what        string
}

func checkListed(t *testing.T, b *Broker, topic string, cases []listCase) {
	t.Helper()
	for _, c := range cases {
		lo, err := b.ListOffset(context.Background(), topic, 0, c.ts)
		require.NoError(t, err, c.what)
		require.Equal(t, c.off, lo.Offset, "offset: %s", c.what)
		require.Equal(t, c.at, lo.Timestamp, "timestamp: %s", c.what)
	}
}

// TestListOffsetByTimeFromLogStartMidBatch: after DeleteRecords moved the
// log start into the middle of a batch, a look-up by timestamp answers
// the first record at or after the log start whose timestamp is at least
// the one asked for, with that record's timestamp (Kafka's
// findOffsetByTimestamp(ts, logStartOffset) skips the records below the
// log start), never an offset below the log start, where a fetch is out
// of range.
func TestListOffsetByTimeFromLogStartMidBatch(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: stamped(t, 100, 200, 300, 400)}) // 0-3
	require.NoError(t, err)
	_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: stamped(t, 500, 50)}) // 4-5
	require.NoError(t, err)
	low, err := b.DeleteRecords(ctx, "t", 0, 2)
	require.NoError(t, err)
	require.EqualValues(t, 2, low)
	checkListed(t, b, "t", []listCase{
		{50, 2, 300, "every record is recent enough: the first from the log start"},
		{150, 2, 300, "the record stamped 200 is below the log start"},
		{300, 2, 300, "exactly"},
		{301, 3, 400, "the next"},
		{450, 4, 500, "in the next batch"},
		{501, 6, -1, "none: the high watermark"},
		{api.MaxTimestamp, 4, 500, "the largest"},
		{api.Earliest, 2, -1, "the log start"},
		{api.Latest, 6, -1, "the high watermark"},
	})

	// What the answer names, a fetch reads: the batch that holds it.
	resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Offset: 2}}})
	require.NoError(t, err)
	require.NoError(t, resp.Partitions[0].Err)
	bt, err := firstBatch(resp.Partitions[0].Records)
	require.NoError(t, err)
	require.EqualValues(t, 0, bt.BaseOffset(), "the whole batch, from before the offset")

	// Below the log start, though in the same batch: out of range.
	resp, err = b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Offset: 1}, {Topic: "t", Offset: 4}}})
	require.NoError(t, err)
	require.ErrorIs(t, resp.Partitions[0].Err, log.ErrOffsetOutOfRange)
	require.EqualValues(t, 2, resp.Partitions[0].LogStartOffset)
	require.NoError(t, resp.Partitions[1].Err, "the other partition is answered")
	require.Len(t, values(t, resp.Partitions[1].Records), 2)
}

func firstBatch(data []byte) (record.Batch, error) {
	for bt, err := range record.Batches(data) {
		return bt, err
	}
	return record.Batch{}, errors.New("no batch")
}

// TestListOffsetByTimeNonMonotonic: with CreateTime timestamps that go
// backwards, Kafka's look-up (the segment whose largest timestamp is at
// least t, its time index's entry at or below t — entries hold the largest
// timestamp so far — then the batches from there) answers the first
// record in offset order whose timestamp is at least t, not the record
// whose timestamp is closest to t.
func TestListOffsetByTimeNonMonotonic(t *testing.T) {
	ctx := context.Background()
	for _, seg := range []int64{0, 100} { // one segment; or a segment a batch
		t.Run(fmt.Sprint("segment.bytes=", seg), func(t *testing.T) {
			b := open(t, Config{})
			cfg := log.TopicConfig{Partitions: 1}
			if seg > 0 {
				cfg.Config.SegmentBytes = seg
			}
			require.NoError(t, b.CreateTopic(ctx, "t", cfg))
			for _, tss := range [][]int64{{500}, {100}, {300, 50}, {700, 600}, {200}} { // 0; 1; 2-3; 4-5; 6
				_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: stamped(t, tss...)})
				require.NoError(t, err)
			}
			checkListed(t, b, "t", []listCase{
				{0, 0, 500, "the first record"},
				{200, 0, 500, "the first in offset order, though later ones are closer"},
				{501, 4, 700, "the first past 500"},
				{650, 4, 700, "the first of its batch at least 650"},
				{700, 4, 700, "exactly the largest"},
				{701, 7, -1, "none"},
				{api.MaxTimestamp, 4, 700, "the largest"},
			})
			// Once the first batches are gone, the look-up starts at the log
			// start.
			_, err := b.DeleteRecords(ctx, "t", 0, 3)
			require.NoError(t, err)
			checkListed(t, b, "t", []listCase{
				{0, 3, 50, "the log start"},
				{60, 4, 700, "past the log start's record"},
				{200, 4, 700, "the record stamped 200 comes after 700"},
			})
		})
	}
}

// TestListOffsetByTimeLogAppendTime: on a LogAppendTime topic a look-up by
// timestamp searches, and answers, the broker's append times, not the
// producer's timestamps.
func TestListOffsetByTimeLogAppendTime(t *testing.T) {
	ctx := context.Background()
	clock := &stepClock{}
	clock.ns.Store(1_700_000_000_000 * 1e6)
	b := open(t, Config{Clock: clock})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{TimestampType: log.LogAppendTime}}))
	r, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: stamped(t, 10, 9_000_000_000_000)}) // 0-1
	require.NoError(t, err)
	require.EqualValues(t, int64(1_700_000_000_000), r.LogAppendTime)
	clock.ns.Store(1_700_000_000_010 * 1e6)
	r, err = b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: stamped(t, 20)}) // 2
	require.NoError(t, err)
	require.EqualValues(t, int64(1_700_000_000_010), r.LogAppendTime)
	require.EqualValues(t, 2, r.BaseOffset)
	checkListed(t, b, "t", []listCase{
		{5, 0, 1_700_000_000_000, "the append time, not the producer's 10"},
		{1_700_000_000_001, 2, 1_700_000_000_010, "the second append"},
		{1_700_000_000_011, 3, -1, "the producer's larger timestamp does not count"},
		{api.MaxTimestamp, 2, 1_700_000_000_010, "the latest append"},
	})
}

// TestProduceAsyncAnswers: ProduceAsync's answer carries the batch's base
// offset, -1 for the append time on a CreateTime topic, and the log start
// offset after DeleteRecords; a batch of many records takes as many
// offsets; acks 0 is answered as acks 1.
func TestProduceAsyncAnswers(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	var bl record.Builder
	bl.Reset()
	const n = 1000
	for i := range n {
		bl.Append(int64(1000+i), nil, []byte{byte(i)}, nil)
	}
	many, err := bl.AppendTo(nil, compression.LZ4)
	require.NoError(t, err)
	resp, ack, err := b.ProduceAsync(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: many})
	require.NoError(t, err)
	if ack != nil {
		require.NoError(t, ack.Wait(ctx))
	}
	require.EqualValues(t, 0, resp.BaseOffset)
	require.EqualValues(t, -1, resp.LogAppendTime)
	require.EqualValues(t, 0, resp.LogStartOffset)
	_, err = b.DeleteRecords(ctx, "t", 0, 500)
	require.NoError(t, err)
	for i, acks := range []api.Acks{api.AcksNone, api.AcksLeader} {
		resp, ack, err = b.ProduceAsync(ctx, &api.ProduceRequest{Topic: "t", Acks: acks, Batches: stamped(t, 1, 2)})
		require.NoError(t, err)
		if ack != nil {
			require.NoError(t, ack.Wait(ctx))
		}
		require.EqualValues(t, n+2*i, resp.BaseOffset, "acks %d", acks)
		require.EqualValues(t, 500, resp.LogStartOffset, "acks %d", acks)
		lo, err := b.ListOffset(ctx, "t", 0, api.Latest)
		require.NoError(t, err)
		require.EqualValues(t, n+2*i+2, lo.Offset, "acks %d", acks)
	}
	lo, err := b.ListOffset(ctx, "t", 0, 1500)
	require.NoError(t, err)
	require.EqualValues(t, 500, lo.Offset, "the first record at or after 1500 is the log start's")
	require.EqualValues(t, 1500, lo.Timestamp)
	lo, err = b.ListOffset(ctx, "t", 0, 1999)
	require.NoError(t, err)
	require.EqualValues(t, 999, lo.Offset, "in the middle of the compressed batch")
	require.EqualValues(t, 1999, lo.Timestamp)
}

// TestFetchLongPollWokenByAnyPartition: a long poll over several
// partitions of several topics is answered when an append reaches any of
// them (here the last one listed), not by MaxWait, and answers that
// partition's records.
func TestFetchLongPollWokenByAnyPartition(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "a", log.TopicConfig{Partitions: 2}))
	require.NoError(t, b.CreateTopic(ctx, "b", log.TopicConfig{Partitions: 1}))
	req := &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1, Partitions: []api.FetchPartition{{Topic: "a"}, {Topic: "a", Partition: 1}, {Topic: "b"}}}
	done := make(chan api.FetchResponse, 1)
	errc := make(chan error, 1)
	go func() {
		resp, err := b.Fetch(ctx, req)
		errc <- err
		done <- resp
	}()
	waitForWaiter(t)
	produce(t, b, "b", 0, "woke")
	require.NoError(t, testkit.Await(t, errc, "Fetch's answer"))
	resp := testkit.Await(t, done, "Fetch's answer")
	require.Empty(t, resp.Partitions[0].Records)
	require.Empty(t, resp.Partitions[1].Records)
	require.Equal(t, []string{"woke"}, values(t, resp.Partitions[2].Records))
	require.EqualValues(t, 1, resp.Partitions[2].HighWatermark)
}

// TestFetchMinBytesAcrossPartitions: MinBytes counts the bytes of every
// partition of the request, as Kafka's delayed fetch sums them: two
// partitions that hold MinBytes between them answer at once, however
// long MaxWait; one that holds less waits until an append on the other
// brings the sum to MinBytes.
func TestFetchMinBytesAcrossPartitions(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 3}))
	produce(t, b, "t", 0, "x")
	produce(t, b, "t", 1, "y")
	one := len(batch(t, "x"))
	parts := []api.FetchPartition{{Topic: "t"}, {Topic: "t", Partition: 1}, {Topic: "t", Partition: 2}}
	resp, err := b.Fetch(ctx, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 2 * one, Partitions: parts})
	require.NoError(t, err)
	require.Equal(t, []string{"x"}, values(t, resp.Partitions[0].Records))
	require.Equal(t, []string{"y"}, values(t, resp.Partitions[1].Records))

	// Three batches' worth: the third partition's append completes it.
	errc := make(chan error, 1)
	done := make(chan api.FetchResponse, 1)
	go func() {
		resp, err := b.Fetch(ctx, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 3 * one, Partitions: parts})
		errc <- err
		done <- resp
	}()
	waitForWaiter(t)
	produce(t, b, "t", 2, "z")
	require.NoError(t, testkit.Await(t, errc, "Fetch's answer"))
	resp = testkit.Await(t, done, "Fetch's answer")
	for i, v := range []string{"x", "y", "z"} {
		require.NoError(t, resp.Partitions[i].Err)
		require.Equal(t, []string{v}, values(t, resp.Partitions[i].Records), "partition %d", i)
	}
}

// TestFetchLongPollEndsWithDeletion: a long poll on a topic that is
// deleted during the wait ends at once with the partition's error:
// ErrUnknownTopicID (and ErrUnknownTopic) for a fetch that names the
// topic's ID, ErrUnknownTopic for one that does not; a fetch that names
// the old ID after the name was created again gets ErrUnknownTopicID, not
// the new topic's records.
func TestFetchLongPollEndsWithDeletion(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	require.NoError(t, b.CreateTopic(ctx, "other", log.TopicConfig{Partitions: 1}))
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	id := info.ID
	errc := make(chan error, 1)
	done := make(chan api.FetchResponse, 1)
	go func() {
		resp, err := b.Fetch(ctx, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1, Partitions: []api.FetchPartition{{Topic: "other"}, {Topic: "t", TopicID: id}, {Topic: "t"}}})
		errc <- err
		done <- resp
	}()
	waitForWaiter(t)
	require.NoError(t, b.DeleteTopic(ctx, "t"))
	require.NoError(t, testkit.Await(t, errc, "Fetch's answer"))
	resp := testkit.Await(t, done, "Fetch's answer")
	require.NoError(t, resp.Partitions[0].Err)
	require.ErrorIs(t, resp.Partitions[1].Err, ErrUnknownTopicID)
	require.ErrorIs(t, resp.Partitions[1].Err, ErrUnknownTopic)
	require.ErrorIs(t, resp.Partitions[2].Err, ErrUnknownTopic)
	require.NotErrorIs(t, resp.Partitions[2].Err, ErrUnknownTopicID)

	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	produce(t, b, "t", 0, "new")
	resp, err = b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", TopicID: id}, {Topic: "t"}}})
	require.NoError(t, err)
	require.ErrorIs(t, resp.Partitions[0].Err, ErrUnknownTopicID)
	require.Empty(t, resp.Partitions[0].Records)
	require.Equal(t, []string{"new"}, values(t, resp.Partitions[1].Records))
	require.NotEqual(t, id, resp.Partitions[1].TopicID)
}

// TestFetchOversizedBatchAfterFullRequest: a batch larger than both the
// request's and its partition's MaxBytes is returned whole when its
// partition is the first with data, so a consumer makes progress; listed
// after a partition that filled the request, it returns nothing (no
// error, no partial batch), and comes whole once listed first. A fetch
// from an offset inside it returns it whole too.
func TestFetchOversizedBatchAfterFullRequest(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))
	vals := make([]string, 100)
	for i := range vals {
		vals[i] = fmt.Sprintf("%0100d", i)
	}
	produce(t, b, "t", 0, vals...) // 0-99, one batch
	produce(t, b, "t", 1, vals...)
	size := len(batch(t, vals...))
	for _, off := range []int64{0, 57, 99} {
		resp, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 10, Partitions: []api.FetchPartition{{Topic: "t", Offset: off, MaxBytes: 10}, {Topic: "t", Partition: 1, MaxBytes: 10}}})
		require.NoError(t, err)
		require.Equal(t, vals, values(t, resp.Partitions[0].Records), "offset %d", off)
		require.NoError(t, resp.Partitions[1].Err)
		require.Empty(t, resp.Partitions[1].Records)
		require.EqualValues(t, 100, resp.Partitions[1].HighWatermark)
	}
	resp, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: size, Partitions: []api.FetchPartition{{Topic: "t", Offset: 100}, {Topic: "t", Partition: 1}}})
	require.NoError(t, err)
	require.Empty(t, resp.Partitions[0].Records, "at the high watermark: nothing, no error")
	require.NoError(t, resp.Partitions[0].Err)
	require.Equal(t, vals, values(t, resp.Partitions[1].Records))

	// Past the high watermark: out of range, the other partition answered.
	resp, err = b.Fetch(ctx, &api.FetchRequest{MaxWait: time.Hour, Partitions: []api.FetchPartition{{Topic: "t", Offset: 101}, {Topic: "t", Partition: 1, Offset: 100}}})
	require.NoError(t, err)
	require.ErrorIs(t, resp.Partitions[0].Err, log.ErrOffsetOutOfRange)
	require.EqualValues(t, 100, resp.Partitions[0].HighWatermark)
	require.NoError(t, resp.Partitions[1].Err)
}

// TestListOffsetMaxTimestampFromLogStartMidBatch: MAX_TIMESTAMP answers
// the first record with the largest timestamp among those from the log
// start offset on: a larger one in the same batch but below the log start
// (DeleteRecords into the batch) is not the answer (Kafka's broker would
// answer it, below the log start; runnel documents the difference), nor
// is a later record with a timestamp equal to the largest.
func TestListOffsetMaxTimestampFromLogStartMidBatch(t *testing.T) {
	ctx := context.Background()
	for _, codec := range []compression.Codec{compression.None, compression.Zstd} {
		t.Run(codec.String(), func(t *testing.T) {
			b := open(t, Config{})
			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
			var bl record.Builder
			bl.Reset()
			for _, ts := range []int64{900, 100, 300, 300, 200} { // 0-4
				bl.Append(ts, []byte("k"), []byte("v"), nil)
			}
			data, err := bl.AppendTo(nil, codec)
			require.NoError(t, err)
			_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: data})
			require.NoError(t, err)
			checkListed(t, b, "t", []listCase{{api.MaxTimestamp, 0, 900, "the first record"}})
			_, err = b.DeleteRecords(ctx, "t", 0, 1)
			require.NoError(t, err)
			checkListed(t, b, "t", []listCase{
				{api.MaxTimestamp, 2, 300, "the first of the two largest from the log start"},
				{250, 2, 300, "by time"},
				{901, 5, -1, "the record stamped 900 is gone"},
			})
			_, err = b.DeleteRecords(ctx, "t", 0, 5)
			require.NoError(t, err)
			checkListed(t, b, "t", []listCase{
				{api.MaxTimestamp, 5, -1, "no record left: the high watermark"},
				{0, 5, -1, "no record left"},
				{api.Earliest, 5, -1, "the log start"},
			})
		})
	}
}

// answersWithoutWaiting runs fetch and fails the test if it waits in a
// long poll (see inLongPoll) instead of answering: its data are
// there already. The wait is ended (ctx) before the test fails.
func answersWithoutWaiting(t *testing.T, b *Broker, req *api.FetchRequest) api.FetchResponse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type answer struct {
		resp api.FetchResponse
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := b.Fetch(ctx, req)
		done <- answer{resp, err}
	}()
	buf := make([]byte, 1<<20)
	var a answer
	testkit.SpinUntil(t, func() bool {
		select {
		case a = <-done:
			return true
		default:
		}
		n := runtime.Stack(buf, true)
		if inLongPoll(string(buf[:n])) {
			cancel()
			<-done
			t.Fatal("the fetch waits for an append though the log holds MinBytes within the partitions' limits (Kafka's delayed fetch answers at once)")
		}
		return false
	}, "the fetch neither answered nor waited in its long poll")
	require.NoError(t, a.err)
	return a.resp
}

// TestFetchMinBytesCountsWhatLimitsHoldBack: Kafka's delayed fetch counts,
// for each partition, the bytes it holds from the fetch offset up to the
// high watermark, at most the partition's max bytes, and answers once
// their sum reaches MinBytes: bytes the limits keep out of this answer
// (a batch that does not fit in the partition's room left, a partition
// after one that filled the request's MaxBytes) count, for they are
// there and the next fetch reads them. The broker counted only whole
// batches within the request's room, and waited the whole MaxWait for an
// append where Kafka answers at once: a consumer whose FetchMinBytes is
// its per-partition max bytes (or near the request's) got one answer per
// MaxWait however far behind it was. It failed before the fix.
func TestFetchMinBytesCountsWhatLimitsHoldBack(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))
	for range 4 {
		produce(t, b, "t", 0, "aaaaaaaaaaaaaaaaaaaa")
	}
	one := len(batch(t, "aaaaaaaaaaaaaaaaaaaa"))
	produce(t, b, "t", 1, "bbbbbbbbbbbbbbbbbbbb")

	// One partition: its limit is 2.5 batches, MinBytes that limit. Two
	// batches come back; the third, which does not fit, makes the limit.
	limit := one * 5 / 2
	resp := answersWithoutWaiting(t, b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: limit,
		Partitions: []api.FetchPartition{{Topic: "t", MaxBytes: limit}}})
	require.Len(t, values(t, resp.Partitions[0].Records), 2)

	// Two partitions, MinBytes the request's MaxBytes of 1.5 batches: the
	// second partition's batch does not fit after the first's, and is
	// there.
	resp = answersWithoutWaiting(t, b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: one * 3 / 2, MaxBytes: one * 3 / 2,
		Partitions: []api.FetchPartition{{Topic: "t", Offset: 3}, {Topic: "t", Partition: 1}}})
	require.Len(t, values(t, resp.Partitions[0].Records), 1)
	require.Empty(t, resp.Partitions[1].Records)

	// What is not there still waits: at the high watermark, with less than
	// MinBytes, an append ends the wait.
	type answer struct {
		resp api.FetchResponse
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := b.Fetch(ctx, &api.FetchRequest{MaxWait: time.Hour, MinBytes: one + 1,
			Partitions: []api.FetchPartition{{Topic: "t", Offset: 4}, {Topic: "t", Partition: 1}}})
		done <- answer{resp, err}
	}()
	waitForWaiter(t)
	produce(t, b, "t", 0, "c")
	a := testkit.Await(t, done, "Fetch's answer")
	require.NoError(t, a.err)
	require.Equal(t, []string{"c"}, values(t, a.resp.Partitions[0].Records))
}

// TestFetchOfNoSuchPartitionAnswersNoOffsets: a fetch's partition that
// is not there (an unknown topic, partition or topic ID, or a topic name
// Kafka refuses) answers high
// watermark and log start -1, Kafka's INVALID_HIGH_WATERMARK and
// INVALID_LOG_START_OFFSET (FetchResponse.partitionResponse), beside its
// error; it answered 0 and 0, an empty partition's offsets. The other
// partitions of the fetch answer their own.
func TestFetchOfNoSuchPartitionAnswersNoOffsets(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	resp, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{
		{Topic: "t", Partition: 0},
		{Topic: "t", Partition: 5},
		{Topic: "nope", Partition: 0},
		{Topic: "t", TopicID: log.NewTopicID(), Partition: 0},
		{Topic: "a/b", Partition: 0}, // a name Kafka refuses: ErrInvalidTopic
	}})
	require.NoError(t, err)
	require.Len(t, resp.Partitions, 5)
	got := resp.Partitions[0]
	require.NoError(t, got.Err)
	require.Equal(t, info.ID, got.TopicID)
	require.Equal(t, [2]int64{0, 0}, [2]int64{got.HighWatermark, got.LogStartOffset}, "an empty partition")
	for _, got := range resp.Partitions[1:] {
		require.Error(t, got.Err, "%s-%d", got.Topic, got.Partition)
		require.Equal(t, [2]int64{-1, -1}, [2]int64{got.HighWatermark, got.LogStartOffset}, "%s-%d: %v", got.Topic, got.Partition, got.Err)
	}
	require.ErrorIs(t, resp.Partitions[4].Err, ErrInvalidTopic)
}
