package consumer_test

import (
	"context"
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// Tests that close gaps a mutation-testing pass over the consumer (poll.go,
// fetch.go, records.go, consumer.go, offset.go) and the broker's fetch path
// found: each fails with a mutant of the code that the rest of the suite
// let through.

// TestBatchAtHighWatermarkCut: a batch that begins exactly at the high
// watermark is past it, and is not in Fetch.Batches (a Client may send
// it; its records are not readable yet).
func TestBatchAtHighWatermarkCut(t *testing.T) {
	below := batchAt(t, 0, "a", "b", "c")
	var n atomic.Int32
	c := newConsumer(t, serve(t, 3, cat(below, batchAt(t, 3, "d")), &n))
	require.NoError(t, c.Assign("t", 0, consumer.At(1)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Len(t, fs, 1)
	require.Equal(t, below, fs[0].Batches)
	pos, _ := c.Position("t", 0)
	require.EqualValues(t, 3, pos)
}

// TestBatchEndingAtPositionSkipped: a batch whose last record is just
// below the position (its next offset is the position) holds nothing to
// return, and Fetch.Batches begins after it.
func TestBatchEndingAtPositionSkipped(t *testing.T) {
	first := batchAt(t, 0, "a", "b")
	rest := batchAt(t, 2, "c")
	var n atomic.Int32
	c := newConsumer(t, serve(t, 3, cat(first, rest), &n))
	require.NoError(t, c.Assign("t", 0, consumer.At(2)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Len(t, fs, 1)
	require.Equal(t, rest, fs[0].Batches)
	require.Equal(t, 1, fs.NumRecords())
}

// TestPositionAtHighWatermarkReturnsNothing: from a position at the high
// watermark nothing is readable, whatever the Client sends (here a batch
// that straddles it): Poll returns no Fetch for the partition.
func TestPositionAtHighWatermarkReturnsNothing(t *testing.T) {
	var n atomic.Int32
	c := newConsumer(t, serve(t, 2, batchAt(t, 0, "a", "b", "c", "d"), &n))
	require.NoError(t, c.Assign("t", 0, consumer.At(2)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Empty(t, fs)
	pos, _ := c.Position("t", 0)
	require.EqualValues(t, 2, pos)
}

// TestTopicIDKeptWhenFetchesGiveNone: the topic ID ListOffset gave with a
// resolved position is named by every fetch from it, also when the
// Client's fetch answers carry no ID (a zero one does not replace it).
func TestTopicIDKeptWhenFetchesGiveNone(t *testing.T) {
	id := log.TopicID{1, 2, 3}
	var ids []log.TopicID
	client := &fakeClient{t: t,
		listOffset: func(context.Context, string, int32, int64) (api.ListedOffset, error) {
			return api.ListedOffset{Offset: 0, TopicID: id}, nil
		},
		fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
			p := req.Partitions[0]
			ids = append(ids, p.TopicID)
			return api.FetchResponse{Partitions: []api.FetchedPartition{{
				Topic: "t", Partition: 0, HighWatermark: 2, Records: batchAt(t, p.Offset, "x"),
			}}}, nil
		}}
	c := newConsumer(t, client)
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	for range 2 {
		fs, err := c.Poll(testCtx(t))
		require.NoError(t, err)
		require.Equal(t, 1, fs.NumRecords())
	}
	require.Equal(t, []log.TopicID{id, id}, ids)
}

// TestErrorForPositionMovedMeanwhileDropped: a partition's error answered
// to a fetch from a position that another Poll moved on from meanwhile
// (its records read) is about a position left: it is dropped, and does not
// stop the partition, as a stale answer with records is dropped.
func TestErrorForPositionMovedMeanwhileDropped(t *testing.T) {
	var c *consumer.Consumer
	var fetches atomic.Int32
	client := &fakeClient{t: t, fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
		if fetches.Add(1) == 1 {
			// Another Poll reads from 0 to 2 while this fetch is in flight,
			// then this one fails for the old position.
			type res struct {
				fs  consumer.Fetches
				err error
			}
			r := recv(t, async(func() res { fs, err := c.Poll(testCtx(t)); return res{fs, err} }))
			require.NoError(t, r.err)
			require.Equal(t, 2, r.fs.NumRecords())
			return api.FetchResponse{Partitions: []api.FetchedPartition{{Topic: "t", Partition: 0, Err: api.ErrInvalidRequest}}}, nil
		}
		p := req.Partitions[0]
		return api.FetchResponse{Partitions: []api.FetchedPartition{{
			Topic: "t", Partition: 0, HighWatermark: p.Offset + 2, Records: batchAt(t, p.Offset, "a", "b"),
		}}}, nil
	}}
	c = newConsumer(t, client)
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Empty(t, fs, "the error is the old position's")
	fs, err = c.Poll(testCtx(t))
	require.NoError(t, err)
	require.NoError(t, fs.Err())
	require.Equal(t, 2, fs.NumRecords(), "the partition is not stopped")
	pos, _ := c.Position("t", 0)
	require.EqualValues(t, 4, pos)
}

// TestLagUnknownAfterReset: a reset after an offset out of range forgets
// the high watermark the old position was read with: Lag reports false
// until a fetch answers for the new position.
func TestLagUnknownAfterReset(t *testing.T) {
	var fetches atomic.Int32
	client := &fakeClient{t: t,
		listOffset: func(_ context.Context, _ string, _ int32, ts int64) (api.ListedOffset, error) {
			require.EqualValues(t, api.Earliest, ts)
			return api.ListedOffset{Offset: 5}, nil
		},
		fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
			fp := api.FetchedPartition{Topic: "t", Partition: 0}
			switch fetches.Add(1) {
			case 1:
				fp.HighWatermark, fp.Records = 2, batchAt(t, 0, "a", "b")
			case 2:
				fp.Err, fp.LogStartOffset, fp.HighWatermark = log.ErrOffsetOutOfRange, 5, 9
			default:
				fp.Err = api.ErrNotLeader // retried: no high watermark
			}
			return api.FetchResponse{Partitions: []api.FetchedPartition{fp}}, nil
		}}
	c := newConsumer(t, client, consumer.RetryBackoff(time.Hour), consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Equal(t, 2, fs.NumRecords())
	lag, ok := c.Lag("t", 0)
	require.True(t, ok)
	require.Zero(t, lag)
	for fetches.Load() < 3 {
		fs, err := c.Poll(testCtx(t))
		require.NoError(t, err)
		require.Empty(t, fs)
	}
	pos, ok := c.Position("t", 0)
	require.True(t, ok)
	require.EqualValues(t, 5, pos, "reset to the log start")
	_, ok = c.Lag("t", 0)
	require.False(t, ok, "no fetch answered for the new position")
}

// TestFetchHurriesWithErrorsInHand: a Poll that has errors to report
// already (a position whose look-up failed) does not make its fetch wait
// for FetchMinBytes: the fetch asks the Client to answer at once.
func TestFetchHurriesWithErrorsInHand(t *testing.T) {
	var waits []time.Duration
	client := &fakeClient{t: t,
		listOffset: func(context.Context, string, int32, int64) (api.ListedOffset, error) {
			return api.ListedOffset{}, api.ErrInvalidRequest // reported, and stops partition 1
		},
		fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
			waits = append(waits, req.MaxWait)
			return api.FetchResponse{Partitions: []api.FetchedPartition{{Topic: "t", Partition: 0}}}, nil
		}}
	c := newConsumer(t, client, consumer.FetchMaxWait(time.Hour))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	require.NoError(t, c.Assign("t", 1, consumer.Start()))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.ErrorIs(t, fs.Err(), api.ErrInvalidRequest)
	require.Equal(t, []time.Duration{0}, waits)
}

// TestReplacedTopicFetchedAtOnce: a position reset after an offset out of
// range, whose look-up finds the topic created again (another ID), is
// reported as api.ErrUnknownTopicID, and the position found in the new
// topic is fetched by the same Poll, not after RetryBackoff.
func TestReplacedTopicFetchedAtOnce(t *testing.T) {
	oldID, newID := log.TopicID{1}, log.TopicID{2}
	var fetches atomic.Int32
	client := &fakeClient{t: t,
		listOffset: func(context.Context, string, int32, int64) (api.ListedOffset, error) {
			return api.ListedOffset{Offset: 0, TopicID: newID}, nil
		},
		fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
			fp := api.FetchedPartition{Topic: "t", Partition: 0}
			switch fetches.Add(1) {
			case 1:
				fp.TopicID, fp.HighWatermark, fp.Records = oldID, 5, batchAt(t, 4, "old")
			case 2:
				fp.Err, fp.HighWatermark = log.ErrOffsetOutOfRange, 1
			default:
				require.Equal(t, newID, req.Partitions[0].TopicID)
				fp.TopicID, fp.HighWatermark, fp.Records = newID, 1, batchAt(t, 0, "new")
			}
			return api.FetchResponse{Partitions: []api.FetchedPartition{fp}}, nil
		}}
	c := newConsumer(t, client, consumer.RetryBackoff(time.Hour), consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.At(4)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Equal(t, 1, fs.NumRecords())
	fs, err = c.Poll(testCtx(t)) // out of range: reset to the start
	require.NoError(t, err)
	require.Empty(t, fs)
	fs, err = c.Poll(testCtx(t))
	require.NoError(t, err)
	require.ErrorIs(t, fs.Err(), api.ErrUnknownTopicID)
	g := &got{}
	g.add(fs)
	require.Equal(t, []string{"new"}, g.values("t", 0), "the new topic's position is fetched at once")
}

// TestUndecodableBatchAfterGapNamesItsBase: a batch whose records cannot
// be decompressed, after a gap in the offsets (compaction), is reported at
// its own base offset, not at the offset after the previous record.
func TestUndecodableBatchAfterGapNamesItsBase(t *testing.T) {
	bad := batchAt(t, 5, "x", "y")
	binary.BigEndian.PutUint16(bad[21:], uint16(record.Batch(bad).Attributes())|uint16(compression.Gzip))
	record.Batch(bad).UpdateCRC()
	var n atomic.Int32
	c := newConsumer(t, serve(t, 7, cat(batchAt(t, 0, "a"), bad), &n))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	g := &got{}
	g.add(fs)
	require.Equal(t, []string{"a"}, g.values("t", 0))
	require.Len(t, g.errs, 1)
	require.ErrorIs(t, g.errs[0], record.ErrCorrupt)
	var pe *consumer.PartitionError
	require.ErrorAs(t, g.errs[0], &pe)
	require.EqualValues(t, 5, pe.Offset)
}

// TestEachRecordKeepsTheFirstDecodingError: of several batches of a
// partition whose records do not decode, EachRecord keeps the first error
// for Fetches.Err (the later ones Records yields).
func TestEachRecordKeepsTheFirstDecodingError(t *testing.T) {
	undecodable := func(base int64) []byte {
		b := batchAt(t, base, "x", "y")
		b[len(b)-1] = 2 // the second record announces a header that is not there
		record.Batch(b).UpdateCRC()
		return b
	}
	var n atomic.Int32
	c := newConsumer(t, serve(t, 6, cat(undecodable(0), batchAt(t, 2, "c"), undecodable(3)), &n))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	var each []string
	fs.EachRecord(func(r *record.Record) { each = append(each, string(r.Value)) })
	require.Equal(t, []string{"x", "c", "x"}, each)
	var pe *consumer.PartitionError
	require.ErrorAs(t, fs.Err(), &pe)
	require.EqualValues(t, 1, pe.Offset, "the first batch's error")
}

// TestFetchesRecordsBreakAtDecodingError: a loop over Fetches.Records
// that breaks at a decoding error ends there: the next Fetch is not
// iterated (which would call the loop body after it broke, a panic).
func TestFetchesRecordsBreakAtDecodingError(t *testing.T) {
	bad := batchAt(t, 0, "x", "y")
	bad[len(bad)-1] = 2 // the second record announces a header that is not there
	record.Batch(bad).UpdateCRC()
	var n atomic.Int32
	c := newConsumer(t, serve(t, 2, bad, &n))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	require.NoError(t, c.Assign("t", 1, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Len(t, fs, 2)
	var vals []string
	require.NotPanics(t, func() {
		for r, err := range fs.Records() {
			if err != nil {
				break
			}
			vals = append(vals, string(r.Value))
		}
	})
	require.Equal(t, []string{"x"}, vals)
}

// TestSeekDropsHeldError: the error of a partition found gone, which a
// Records loop ended before yielding (held for the next Poll), is dropped
// by a Seek of the partition in between: it is about a position left.
func TestSeekDropsHeldError(t *testing.T) {
	var fetches atomic.Int32
	client := &fakeClient{t: t,
		listOffset: func(context.Context, string, int32, int64) (api.ListedOffset, error) {
			return api.ListedOffset{Offset: 0, TopicID: log.NewTopicID()}, nil
		},
		fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
			n := fetches.Add(1)
			return abcOr(t, req, log.TopicID{}, func(p api.FetchPartition) error {
				if p.Partition == 0 && n == 1 {
					return api.ErrUnknownTopicID
				}
				return nil
			}), nil
		},
	}
	c := newConsumer(t, client, consumer.FetchMaxWait(time.Millisecond), consumer.RetryBackoff(time.Hour))
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	require.NoError(t, c.Assign("t", 1, consumer.At(0)))
	require.Empty(t, firstRecordThenStop(t, c, "break"))
	require.NoError(t, c.Seek("t", 0, consumer.At(1)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.NoError(t, fs.Err(), "the held error went with the Seek")
	g := &got{}
	g.add(fs)
	require.Equal(t, []string{"b", "c"}, g.values("t", 0))
	require.Equal(t, []string{"b", "c"}, g.values("t", 1))
}
