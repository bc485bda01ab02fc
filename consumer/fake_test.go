package consumer_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// batchAt encodes values as one batch with base offset base.
func batchAt(t *testing.T, base int64, vs ...string) []byte {
	recs := make([]rec, len(vs))
	for i, v := range vs {
		recs[i] = rec{ts: 1, value: v}
	}
	data := encode(t, compression.None, recs...)
	record.Batch(data).SetBaseOffset(base)
	return data
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// serve answers every Fetch with data for partition 0 of "t" (whatever
// offset was asked) and counts the fetches.
func serve(t *testing.T, hw int64, data []byte, fetches *atomic.Int32) *fakeClient {
	return &fakeClient{t: t, fetch: func(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
		fetches.Add(1)
		var resp api.FetchResponse
		for _, p := range req.Partitions {
			resp.Partitions = append(resp.Partitions, api.FetchedPartition{
				Topic: p.Topic, Partition: p.Partition, HighWatermark: hw, Records: data,
			})
		}
		return resp, nil
	}}
}

func TestHighWatermarkBoundsRecords(t *testing.T) {
	// A client that sends more than the high watermark allows: the batch
	// at 3 straddles it, the one at 6 is past it.
	data := cat(batchAt(t, 0, "a", "b", "c"), batchAt(t, 3, "d", "e", "f"), batchAt(t, 6, "g"))
	var n atomic.Int32
	c := newConsumer(t, serve(t, 5, data, &n))
	require.NoError(t, c.Assign("t", 0, consumer.At(1)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Len(t, fs, 1)
	require.Equal(t, 4, fs.NumRecords())
	g := &got{}
	g.add(fs)
	require.Equal(t, []string{"b", "c", "d", "e"}, g.values("t", 0))
	require.Len(t, fs[0].Batches, len(data)-len(batchAt(t, 6, "g")), "the batch past the high watermark is cut")
	pos, _ := c.Position("t", 0)
	require.EqualValues(t, 5, pos)
}

func TestBatchesBelowPositionSkipped(t *testing.T) {
	data := cat(batchAt(t, 0, "a"), batchAt(t, 1, "b", "c"), batchAt(t, 3, "d"))
	var n atomic.Int32
	c := newConsumer(t, serve(t, 4, data, &n))
	require.NoError(t, c.Assign("t", 0, consumer.At(2)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Len(t, fs, 1)
	g := &got{}
	g.add(fs)
	require.Equal(t, []string{"c", "d"}, g.values("t", 0))
	require.Equal(t, data[len(batchAt(t, 0, "a")):], fs[0].Batches)
}

func TestTruncatedTailIgnored(t *testing.T) {
	whole := batchAt(t, 0, "a", "b")
	next := batchAt(t, 2, "c")
	data := cat(whole, next[:len(next)-3]) // cut by a byte limit
	var n atomic.Int32
	c := newConsumer(t, serve(t, 3, data, &n))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.NoError(t, fs.Err())
	require.Equal(t, whole, fs[0].Batches)
	pos, _ := c.Position("t", 0)
	require.EqualValues(t, 2, pos)
}

func TestCorruptBatchReported(t *testing.T) {
	good := batchAt(t, 0, "a")
	bad := batchAt(t, 0, "a")
	bad[len(bad)-1] ^= 0xff // the CRC no longer matches
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"crc", bad},
		{"truncated", good[:20]},
		{"garbage", []byte("not a batch at all, not at all")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			c := newConsumer(t, serve(t, 10, tc.data, &n), consumer.RetryBackoff(time.Hour), consumer.FetchMaxWait(time.Millisecond))
			require.NoError(t, c.Assign("t", 0, consumer.At(0)))
			fs, err := c.Poll(testCtx(t))
			require.NoError(t, err)
			require.Len(t, fs, 1)
			require.Empty(t, fs[0].Batches)
			require.ErrorIs(t, fs.Err(), record.ErrCorrupt)
			var pe *consumer.PartitionError
			require.ErrorAs(t, fs.Err(), &pe)
			require.EqualValues(t, 0, pe.Offset)
			pos, _ := c.Position("t", 0)
			require.Zero(t, pos, "nothing skipped")
			// Backed off: the next Poll does not fetch it.
			before := n.Load()
			fs, err = c.Poll(testCtx(t))
			require.NoError(t, err)
			require.Empty(t, fs)
			require.Equal(t, before, n.Load())
		})
	}
}

func TestBatchOutOfOrderNotServed(t *testing.T) {
	var n atomic.Int32
	c := newConsumer(t, serve(t, 10, cat(batchAt(t, 5, "x"), batchAt(t, 2, "y")), &n))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	g := &got{}
	g.add(fs)
	require.Empty(t, g.errs)
	require.Equal(t, []string{"x"}, g.values("t", 0))
	require.Equal(t, batchAt(t, 5, "x"), fs[0].Batches)
}

func TestCRCCheckCanBeOff(t *testing.T) {
	// A record whose bytes changed under a correct frame: without the CRC
	// check it decodes as whatever it now says.
	data := batchAt(t, 0, "abc")
	data[len(data)-2] = 'X' // the value's last byte
	var n atomic.Int32
	c := newConsumer(t, serve(t, 1, data, &n), consumer.CheckCRCs(false))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	g := &got{}
	g.add(fs)
	require.Equal(t, []string{"abX"}, g.values("t", 0))
}

// checkingClient is a Client that says it checked the CRCs itself.
type checkingClient struct{ *fakeClient }

func (checkingClient) ChecksCRCs() bool { return true }

func TestCRCCheckerSkipsTheCheck(t *testing.T) {
	data := batchAt(t, 0, "abc")
	data[len(data)-2] = 'X' // the value's last byte: the CRC no longer matches
	var n atomic.Int32
	poll := func(c *consumer.Consumer) *got {
		require.NoError(t, c.Assign("t", 0, consumer.At(0)))
		fs, err := c.Poll(testCtx(t))
		require.NoError(t, err)
		g := &got{}
		g.add(fs)
		return g
	}
	// The client checked: the consumer trusts it.
	g := poll(newConsumer(t, checkingClient{serve(t, 1, data, &n)}))
	require.Equal(t, []string{"abX"}, g.values("t", 0))
	// CheckCRCs(true) overrides it.
	g = poll(newConsumer(t, checkingClient{serve(t, 1, data, &n)}, consumer.CheckCRCs(true), consumer.RetryBackoff(time.Hour)))
	require.Empty(t, g.values("t", 0))
	require.NotEmpty(t, g.errs)
	require.ErrorIs(t, g.errs[0], record.ErrCorrupt)
}

// The broker is a CRCChecker: it serves only batches it checked.
var _ consumer.CRCChecker = (*runnel.Broker)(nil)

func TestUndecodableRecordInRecordsLoop(t *testing.T) {
	// A batch with a correct CRC whose second record does not decode: its
	// header count (the batch's last byte) announces a header that is not
	// there.
	data := batchAt(t, 0, "a", "b")
	data[len(data)-1] = 2 // zigzag 1
	record.Batch(data).UpdateCRC()
	var n atomic.Int32
	client := serve(t, 2, data, &n)
	c := newConsumer(t, client, consumer.RetryBackoff(time.Hour), consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	var vals []string
	var errs []error
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	for r, err := range c.Records(ctx) {
		if err != nil {
			errs = append(errs, err)
			cancel()
			continue
		}
		vals = append(vals, string(r.Value))
	}
	require.Equal(t, []string{"a"}, vals)
	require.Len(t, errs, 2)
	require.Equal(t, context.Canceled, errs[1], "then ctx's error")
	require.ErrorIs(t, errs[0], record.ErrCorrupt)
	var pe *consumer.PartitionError
	require.ErrorAs(t, errs[0], &pe)
	require.EqualValues(t, 1, pe.Offset)
	pos, _ := c.Position("t", 0)
	require.EqualValues(t, 1, pos, "the partition stays at the bad record")

	// The Poll path reports the same through the Fetch's iterator.
	c2 := newConsumer(t, client)
	require.NoError(t, c2.Assign("t", 0, consumer.At(0)))
	fs, err := c2.Poll(testCtx(t))
	require.NoError(t, err)
	g := &got{}
	g.add(fs)
	require.Equal(t, []string{"a"}, g.values("t", 0))
	require.Len(t, g.errs, 1)
	require.ErrorIs(t, g.errs[0], record.ErrCorrupt)
	require.Equal(t, 2, fs.NumRecords(), "counted from the batch header")
	var each []string
	fs.EachRecord(func(r *record.Record) { each = append(each, string(r.Value)) })
	require.Equal(t, []string{"a"}, each)
}

func TestFetchErrorFromClient(t *testing.T) {
	boom := errors.New("connection reset")
	var calls atomic.Int32
	client := &fakeClient{t: t, fetch: func(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
		calls.Add(1)
		return api.FetchResponse{}, boom
	}}
	c := newConsumer(t, client, consumer.RetryBackoff(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	_, err := c.Poll(testCtx(t))
	require.ErrorIs(t, err, boom)
	pos, _ := c.Position("t", 0)
	require.Zero(t, pos)

	// Records yields it and goes on polling.
	var errs []error
	for _, err := range c.Records(testCtx(t)) {
		require.ErrorIs(t, err, boom)
		if errs = append(errs, err); len(errs) == 3 {
			break
		}
	}
	require.Len(t, errs, 3)
}

func TestListOffsetErrors(t *testing.T) {
	var fetched atomic.Int32
	client := serve(t, 1, batchAt(t, 0, "a"), &fetched)
	client.listOffset = func(ctx context.Context, topic string, p int32, ts int64) (api.ListedOffset, error) {
		if p == 0 {
			return api.ListedOffset{Offset: -7}, nil
		}
		return api.ListedOffset{}, api.ErrNotLeader
	}
	c := newConsumer(t, client, consumer.RetryBackoff(time.Hour), consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.End()))
	require.NoError(t, c.Assign("t", 1, consumer.AtTime(time.Now())))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	// A negative offset breaks the Client's contract, and is reported;
	// not the leader is retried after the backoff, without a word.
	require.Len(t, fs, 1)
	require.ErrorIs(t, fs.Err(), api.ErrInvalidRequest)
	require.NotErrorIs(t, fs.Err(), api.ErrNotLeader)
	require.Zero(t, fetched.Load(), "nothing resolved, nothing fetched")
}

func TestResponsesMatchedByPartition(t *testing.T) {
	// A client that answers in reverse order, and for a partition nobody
	// asked for.
	client := &fakeClient{t: t, fetch: func(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
		var resp api.FetchResponse
		resp.Partitions = append(resp.Partitions, api.FetchedPartition{Topic: "other", HighWatermark: 1, Records: batchAt(t, 0, "?")})
		for i := len(req.Partitions) - 1; i >= 0; i-- {
			p := req.Partitions[i]
			v := []string{"p0", "p1"}[p.Partition]
			resp.Partitions = append(resp.Partitions, api.FetchedPartition{
				Topic: p.Topic, Partition: p.Partition, HighWatermark: 1, Records: batchAt(t, 0, v),
			})
		}
		return resp, nil
	}}
	c := newConsumer(t, client)
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	require.NoError(t, c.Assign("t", 1, consumer.At(0)))
	g := pollUntil(t, c, 2)
	require.Equal(t, []string{"p0"}, g.values("t", 0))
	require.Equal(t, []string{"p1"}, g.values("t", 1))
}

// A fetch answered after its partition's position moved (a Seek while it
// was in flight, which a client may answer all the same) is dropped.
func TestSeekDuringFetchDropsItsAnswer(t *testing.T) {
	data := batchAt(t, 0, "a", "b", "c", "d")
	var c *consumer.Consumer
	var fetches atomic.Int32
	client := &fakeClient{t: t, fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
		if fetches.Add(1) == 1 {
			require.NoError(t, c.Seek("t", 0, consumer.At(2)))
		}
		return api.FetchResponse{Partitions: []api.FetchedPartition{{Topic: "t", Partition: 0, HighWatermark: 4, Records: data}}}, nil
	}}
	c = newConsumer(t, client)
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Empty(t, fs, "fetched from 0, which is no longer the position")
	pos, _ := c.Position("t", 0)
	require.EqualValues(t, 2, pos)
	g := pollUntil(t, c, 2)
	require.Equal(t, []string{"c", "d"}, g.values("t", 0))
}

func TestRecordsAfterUnassign(t *testing.T) {
	data := batchAt(t, 0, "a", "b", "c")
	var n atomic.Int32
	c := newConsumer(t, serve(t, 3, data, &n), consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	var vals []string
	var errs []error
	for r, err := range c.Records(ctx) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		vals = append(vals, string(r.Value))
		c.Unassign("t", 0)
		cancel()
	}
	require.Equal(t, []string{"a"}, vals)
	require.Equal(t, []error{context.Canceled}, errs)
	require.Empty(t, c.Assigned())
}

// downClient is a client whose offset look-ups fail with listFail and
// whose fetches fail with down (errors the table does not know).
func downClient(t *testing.T) (client *fakeClient, listFail, down error) {
	listFail, down = errors.New("list offsets down"), errors.New("fetch down")
	client = &fakeClient{t: t,
		listOffset: func(context.Context, string, int32, int64) (api.ListedOffset, error) {
			return api.ListedOffset{}, listFail
		},
		fetch: func(context.Context, *api.FetchRequest) (api.FetchResponse, error) {
			return api.FetchResponse{}, down
		},
	}
	return client, listFail, down
}

// When the fetch fails as a whole, Poll still reports the partitions whose
// position could not be resolved, and so does Records.
func TestFetchFailureKeepsResolveErrors(t *testing.T) {
	client, listFail, down := downClient(t)
	c := newConsumer(t, client, consumer.RetryBackoff(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	require.NoError(t, c.Assign("t", 1, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.ErrorIs(t, err, down)
	require.Len(t, fs, 1)
	require.ErrorIs(t, fs[0].Err, listFail)
	require.EqualValues(t, 0, fs[0].Partition)

	c2 := newConsumer(t, client, consumer.RetryBackoff(time.Millisecond))
	require.NoError(t, c2.Assign("t", 0, consumer.Start()))
	require.NoError(t, c2.Assign("t", 1, consumer.At(0)))
	var errs []error
	for _, err := range c2.Records(testCtx(t)) {
		errs = append(errs, err)
		if len(errs) == 2 {
			break
		}
	}
	require.ErrorIs(t, errs[0], listFail)
	require.ErrorIs(t, errs[1], down)
}

// A batch whose records do not decode costs only its own records: Poll has
// moved past the whole fetch, so the good batches after it are returned
// with it, and Records reports the bad one.
func TestUndecodableBatchDoesNotHideTheNext(t *testing.T) {
	bad := batchAt(t, 0, "a", "b")
	bad[len(bad)-1] = 2 // the second record announces a header that is not there
	record.Batch(bad).UpdateCRC()
	data := cat(bad, batchAt(t, 2, "c", "d"))
	var n atomic.Int32
	c := newConsumer(t, serve(t, 4, data, &n))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)

	require.NoError(t, fs.Err(), "no partition error, and EachRecord has not run")
	var each []string
	fs.EachRecord(func(r *record.Record) { each = append(each, string(r.Value)) })
	require.Equal(t, []string{"a", "c", "d"}, each)
	// What EachRecord skipped past, Err reports.
	require.ErrorIs(t, fs.Err(), record.ErrCorrupt)
	var skipped *consumer.PartitionError
	require.ErrorAs(t, fs.Err(), &skipped)
	require.EqualValues(t, 1, skipped.Offset)

	var vals []string
	var errs []error
	for r, err := range fs.Records() {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		vals = append(vals, string(r.Value))
	}
	require.Equal(t, []string{"a", "c", "d"}, vals)
	require.Len(t, errs, 1)
	require.ErrorIs(t, errs[0], record.ErrCorrupt)
	var pe *consumer.PartitionError
	require.ErrorAs(t, errs[0], &pe)
	require.EqualValues(t, 1, pe.Offset)

	// NumRecords reads the headers only: the batch that does not decode
	// counts whole (2), where Records yields one of its records and an
	// error (its doc says so; it once said it stopped counting there).
	require.Equal(t, 4, fs.NumRecords(), "the batch that does not decode counts whole, from its header")
}

// An error the Kafka table calls retriable leaves the partition out for
// RetryBackoff, reported only if it is a corrupt batch (Kafka's consumers
// retry the others without a word); one the table does not know is
// reported and retried; one it calls not retriable is reported and stops
// the partition until Seek.
func TestPartitionErrorsStopOrRetryPerTheTable(t *testing.T) {
	for _, tc := range []struct {
		err      error
		stop     bool
		reported bool
	}{
		{api.ErrUnknownTopicOrPartition, false, false}, // not read yet
		{api.ErrNotLeader, false, false},
		{log.ErrLogFenced, false, false},
		{record.ErrCorrupt, false, true},
		{errors.New("unknown to the table"), false, true},
		{api.ErrInvalidRequest, true, true},
		{api.ErrInvalidTopic, true, true}, // a broker whose name rules are stricter
		// api.ErrBrokerClosed is the Client's error, not the partition's:
		// see TestBrokerClosedInAPartitionsAnswer.
	} {
		var fetches atomic.Int32
		client := &fakeClient{t: t, fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
			fetches.Add(1)
			return api.FetchResponse{Partitions: []api.FetchedPartition{{Topic: "t", Partition: 0, Err: tc.err}}}, nil
		}}
		c := newConsumer(t, client, consumer.RetryBackoff(time.Millisecond), consumer.FetchMaxWait(time.Millisecond))
		require.NoError(t, c.Assign("t", 0, consumer.At(0)))
		fs, err := c.Poll(testCtx(t))
		require.NoError(t, err)
		if tc.reported {
			require.ErrorIs(t, fs.Err(), tc.err)
		} else {
			require.Empty(t, fs, "%v retried without a word", tc.err)
		}
		// Past the backoff, a retried partition is fetched again; a
		// stopped one is not, until Seek.
		for fetches.Load() < 2 && !tc.stop {
			_, err := c.Poll(testCtx(t))
			require.NoError(t, err)
		}
		if tc.stop {
			time.Sleep(5 * time.Millisecond) // past RetryBackoff
			_, err := c.Poll(testCtx(t))
			require.NoError(t, err)
			require.EqualValues(t, 1, fetches.Load(), "%v stops the partition", tc.err)
			require.NoError(t, c.Seek("t", 0, consumer.At(0)))
			_, err = c.Poll(testCtx(t))
			require.NoError(t, err)
			require.EqualValues(t, 2, fetches.Load(), "Seek starts it again")
		}
	}
}

// A decoding error names the bad batch's position in the fetched data
// (the consumer does not know the file's), beside its offset.
func TestDecodingErrorNamesItsBatch(t *testing.T) {
	good := batchAt(t, 0, "a")
	bad := batchAt(t, 1, "b", "c")
	bad[len(bad)-1] = 2 // the second record announces a header that is not there
	record.Batch(bad).UpdateCRC()
	var n atomic.Int32
	c := newConsumer(t, serve(t, 3, cat(good, bad), &n))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	fs.EachRecord(func(*record.Record) {})
	var ce *record.CorruptError
	require.ErrorAs(t, fs.Err(), &ce)
	require.EqualValues(t, len(good), ce.Position)
	var pe *consumer.PartitionError
	require.ErrorAs(t, fs.Err(), &pe)
	require.EqualValues(t, 2, pe.Offset)
}
