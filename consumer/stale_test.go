package consumer_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// A Seek to the offset the partition is already at, made while a fetch
// from it is in flight, still makes that fetch's answer stale: Seek takes
// the offset in the topic there now (it forgets the topic ID), so an
// answer about the old topic (api.ErrUnknownTopicID: deleted and created
// again) must not reset or stop the position the application just gave.
func TestSeekToSameOffsetDuringFetchDropsItsError(t *testing.T) {
	for _, policy := range []consumer.ResetPolicy{consumer.ResetEarliest, consumer.ResetNone} {
		t.Run(policy.String(), func(t *testing.T) {
			oldID, newID := log.NewTopicID(), log.NewTopicID()
			var c *consumer.Consumer
			var fetches atomic.Int32
			var third api.FetchPartition
			client := &fakeClient{t: t,
				listOffset: func(context.Context, string, int32, int64) (api.ListedOffset, error) {
					return api.ListedOffset{}, fmt.Errorf("unexpected ListOffset: the position was reset")
				},
				fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
					p := req.Partitions[0]
					switch fetches.Add(1) {
					case 1: // the old topic: records 10 and 11
						return api.FetchResponse{Partitions: []api.FetchedPartition{{Topic: "t", TopicID: oldID,
							HighWatermark: 12, Records: batchAt(t, 10, "a", "b")}}}, nil
					case 2: // the topic is created again; the application seeks meanwhile
						require.Equal(t, oldID, p.TopicID)
						require.NoError(t, c.Seek("t", 0, consumer.At(12)))
						return api.FetchResponse{Partitions: []api.FetchedPartition{{Topic: "t",
							Err: fmt.Errorf("%w: recreated", api.ErrUnknownTopicID)}}}, nil
					default:
						third = p
						return api.FetchResponse{Partitions: []api.FetchedPartition{{Topic: "t", TopicID: newID,
							HighWatermark: 13, Records: batchAt(t, 12, "new")}}}, nil
					}
				},
			}
			c = newConsumer(t, client, consumer.ResetOffset(policy), consumer.FetchMaxWait(time.Millisecond),
				consumer.RetryBackoff(time.Hour))
			require.NoError(t, c.Assign("t", 0, consumer.At(10)))
			fs, err := c.Poll(testCtx(t))
			require.NoError(t, err)
			require.Equal(t, 2, fs.NumRecords())

			fs, err = c.Poll(testCtx(t))
			require.NoError(t, err)
			require.NoError(t, fs.Err(), "the error answered a fetch made before the Seek")
			pos, ok := c.Position("t", 0)
			require.True(t, ok)
			require.EqualValues(t, 12, pos)

			fs, err = c.Poll(testCtx(t))
			require.NoError(t, err)
			require.NoError(t, fs.Err())
			g := &got{}
			g.add(fs)
			require.Equal(t, []string{"new"}, g.values("t", 0))
			require.EqualValues(t, 12, third.Offset)
			require.True(t, third.TopicID.IsZero(), "Seek forgets the old topic's ID")
		})
	}
}

// The same inside a Records loop: after a Seek to the offset the loop is
// at, the rest of the fetch made before is not yielded.
func TestSeekToSameOffsetInsideRecordsRefetches(t *testing.T) {
	oldID := log.NewTopicID()
	var fetches atomic.Int32
	var second api.FetchPartition
	client := &fakeClient{t: t, fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
		if fetches.Add(1) == 1 {
			return api.FetchResponse{Partitions: []api.FetchedPartition{{Topic: "t", TopicID: oldID,
				HighWatermark: 13, Records: batchAt(t, 10, "old-a", "old-b", "old-c")}}}, nil
		}
		second = req.Partitions[0]
		return api.FetchResponse{Partitions: []api.FetchedPartition{{Topic: "t", TopicID: log.NewTopicID(),
			HighWatermark: 12, Records: batchAt(t, 11, "new")}}}, nil
	}}
	c := newConsumer(t, client, consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.At(10)))
	var got []string
	for r, err := range c.Records(testCtx(t)) {
		require.NoError(t, err)
		got = append(got, string(r.Value))
		if len(got) == 1 {
			require.NoError(t, c.Seek("t", 0, consumer.At(11)))
		}
		if len(got) == 2 {
			break
		}
	}
	require.Equal(t, []string{"old-a", "new"}, got)
	require.EqualValues(t, 11, second.Offset)
	require.True(t, second.TopicID.IsZero())
	pos, _ := c.Position("t", 0)
	require.EqualValues(t, 12, pos)
}

// A Records loop that breaks (or whose ctx ends, or whose body panics,
// the panic recovered by the caller) before it yielded a partition's
// error that stops the partition (ResetNone) must not lose it: the
// partition would stay stopped with nothing ever reporting why. The next
// Poll reports it. (A panic lost it: the loop ended without keeping the
// errors it had not yielded.)
func TestRecordsBreakKeepsStoppingErrors(t *testing.T) {
	for _, how := range []string{"break", "cancel", "panic"} {
		t.Run(how, func(t *testing.T) {
			var fetches atomic.Int32
			client := &fakeClient{t: t, fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
				fetches.Add(1)
				return abcOr(t, req, log.TopicID{}, func(p api.FetchPartition) error {
					if p.Partition == 0 {
						return fmt.Errorf("%w: offset %d", log.ErrOffsetOutOfRange, p.Offset)
					}
					return nil
				}), nil
			}}
			c := newConsumer(t, client, consumer.ResetOffset(consumer.ResetNone), consumer.FetchMaxWait(time.Millisecond))
			require.NoError(t, c.Assign("t", 0, consumer.At(7)))
			require.NoError(t, c.Assign("t", 1, consumer.At(0)))
			require.Empty(t, firstRecordThenStop(t, c, how))
			require.EqualValues(t, 1, fetches.Load(), "one fetch, whose records came first")

			fs, err := c.Poll(testCtx(t))
			require.NoError(t, err)
			require.ErrorIs(t, fs.Err(), log.ErrOffsetOutOfRange, "the error the loop did not yield")
			pos, _ := c.Position("t", 0)
			require.EqualValues(t, 7, pos)
			g := &got{}
			g.add(fs)
			require.Equal(t, []string{"b", "c"}, g.values("t", 1))
		})
	}
}

// A Poll whose ctx ends during its fetch returns ctx's error, and with it
// not the errors of the positions it could not resolve: a partition those
// stopped (an error that is not retriable) must be looked up again by the
// next Poll, which reports it, rather than stay stopped unreported.
func TestPollCancelledKeepsStoppingResolveErrors(t *testing.T) {
	var lists atomic.Int32
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	client := &fakeClient{t: t,
		listOffset: func(context.Context, string, int32, int64) (api.ListedOffset, error) {
			lists.Add(1)
			return api.ListedOffset{}, fmt.Errorf("%w: refused", api.ErrInvalidRequest)
		},
		fetch: func(fctx context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
			cancel()
			return api.FetchResponse{}, fctx.Err()
		},
	}
	c := newConsumer(t, client, consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	require.NoError(t, c.Assign("t", 1, consumer.At(0)))
	_, err := c.Poll(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.EqualValues(t, 1, lists.Load())

	c.Unassign("t", 1)
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.ErrorIs(t, fs.Err(), api.ErrInvalidRequest, "the error the cancelled Poll did not return")
	require.EqualValues(t, 2, lists.Load())
}

// Pause and Unassign end a Poll's wait as Assign, Seek and Resume do: the
// partition it long-polls is no longer to be fetched.
func TestPauseAndUnassignDuringPoll(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*consumer.Consumer)
	}{
		{"Pause", func(c *consumer.Consumer) { c.Pause(api.TopicPartition{Topic: "t", Partition: 0}) }},
		{"Unassign", func(c *consumer.Consumer) { c.Unassign("t", 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := openBroker(t, map[string]int{"t": 1})
			sc := newSignalClient(b)
			c := newConsumer(t, sc, consumer.FetchMaxWait(time.Hour))
			require.NoError(t, c.Assign("t", 0, consumer.End()))
			res := async(func() error {
				_, err := c.Poll(testCtx(t))
				return err
			})
			recv(t, sc.fetching) // waiting at the end of t-0
			tc.change(c)
			require.NoError(t, recv(t, res), "the change ended the wait")
		})
	}
}

// An error that does not stop its partition but is not found again — the
// partition gone (its topic deleted, or deleted and created again) under a
// reset policy: the position is reset, and the next fetch reads the new
// position without an error — must not be lost either when a Records loop
// ends before yielding it, nor when the Poll that would report it next is
// cancelled: the next Poll reports it, once.
func TestRecordsBreakKeepsResetErrors(t *testing.T) {
	for _, gone := range []error{api.ErrUnknownTopicOrPartition, api.ErrUnknownTopicID} {
		for _, how := range []string{"break", "cancel", "break then cancelled poll"} {
			t.Run(fmt.Sprintf("%v/%s", gone, how), func(t *testing.T) {
				var fetches atomic.Int32
				var cancelFetch atomic.Pointer[context.CancelFunc]
				client := &fakeClient{t: t,
					listOffset: func(context.Context, string, int32, int64) (api.ListedOffset, error) {
						return api.ListedOffset{Offset: 0, TopicID: log.NewTopicID()}, nil
					},
					fetch: func(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
						if cancel := cancelFetch.Swap(nil); cancel != nil {
							(*cancel)()
							return api.FetchResponse{}, ctx.Err()
						}
						n := fetches.Add(1)
						return abcOr(t, req, log.TopicID{}, func(p api.FetchPartition) error {
							if p.Partition == 0 && n == 1 {
								return gone
							}
							return nil
						}), nil
					},
				}
				c := newConsumer(t, client, consumer.FetchMaxWait(time.Millisecond), consumer.RetryBackoff(time.Hour))
				require.NoError(t, c.Assign("t", 0, consumer.Start())) // looked up: read before
				require.NoError(t, c.Assign("t", 1, consumer.At(0)))
				require.Empty(t, firstRecordThenStop(t, c, how))
				require.EqualValues(t, 1, fetches.Load(), "one fetch, whose records came first")
				_, ok := c.Position("t", 0)
				require.False(t, ok, "partition 0's position was reset")

				if how == "break then cancelled poll" {
					pctx, pcancel := context.WithCancel(testCtx(t))
					cancelFetch.Store(&pcancel)
					_, err := c.Poll(pctx)
					require.ErrorIs(t, err, context.Canceled)
				}
				fs, err := c.Poll(testCtx(t))
				require.NoError(t, err)
				require.ErrorIs(t, fs.Err(), gone, "the error the loop did not yield")
				var pe *consumer.PartitionError
				require.ErrorAs(t, fs.Err(), &pe)
				require.EqualValues(t, 0, pe.Partition)
				g := &got{}
				g.add(fs)
				require.Equal(t, []string{"b", "c"}, g.values("t", 1))

				fs, err = c.Poll(testCtx(t))
				require.NoError(t, err)
				require.NoError(t, fs.Err(), "reported once")
			})
		}
	}
}

// firstRecordThenStop takes the first record ("a") of a Records loop
// and stops it before the loop yields anything else: by breaking, or with
// how "cancel" by cancelling its ctx (the loop then yields ctx's error,
// last, and ends on its own). It returns the other errors the loop
// yielded meanwhile.
func firstRecordThenStop(t *testing.T, c *consumer.Consumer, how string) []error {
	t.Helper()
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	var errs []error
	defer func() {
		if how == "panic" {
			require.Equal(t, "loop body: a", recover())
		}
	}()
	ended := false // ctx's error came
	for r, err := range c.Records(ctx) {
		require.False(t, ended, "yielded after ctx's error: %v, %v", r, err)
		if err != nil {
			if ended = how == "cancel" && ctxEnd(ctx, err); !ended {
				errs = append(errs, err)
			}
			continue
		}
		require.Equal(t, "a", string(r.Value))
		switch how {
		case "cancel":
			cancel()
			continue
		case "panic":
			panic("loop body: a")
		}
		break
	}
	require.Equal(t, how == "cancel", ended, "ctx's error yielded")
	return errs
}

// A partition error that a Records loop fetched but had not yielded yet
// when the loop body unassigned the partition, or gave it another
// position, is dropped, as that partition's records are, and as Poll
// drops the answer of a partition changed during its fetch: it is about a
// position the application has left (the Java consumer discards such a
// stale answer too). A Pause leaves it: the error stopped the partition
// before the Pause, and only the error tells why.
func TestChangeInsideRecordsLoopDropsFetchedError(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  func(*consumer.Consumer) error
		yielded bool // the error of t-1 is yielded all the same
	}{
		{"Unassign", func(c *consumer.Consumer) error { c.Unassign("t", 1); return nil }, false},
		{"Seek", func(c *consumer.Consumer) error { return c.Seek("t", 1, consumer.At(0)) }, false},
		{"Assign", func(c *consumer.Consumer) error { return c.Assign("t", 1, consumer.Start()) }, false},
		{"Pause", func(c *consumer.Consumer) error { c.Pause(api.TopicPartition{Topic: "t", Partition: 1}); return nil }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := openBroker(t, map[string]int{"t": 2})
			values(t, b, "t", 0, "a0", "a1", "a2")
			c := newConsumer(t, b, consumer.ResetOffset(consumer.ResetNone), consumer.FetchMaxWait(time.Millisecond))
			// t-1 out of range, t-0 with records: the first fetch puts
			// t-0 first (partitions take turns from the second assigned),
			// so that t-1's error comes after t-0's records.
			require.NoError(t, c.Assign("t", 1, consumer.At(100)))
			require.NoError(t, c.Assign("t", 0, consumer.At(0)))
			var got []string
			var errs []error
			for r, err := range c.Records(testCtx(t)) {
				if err != nil {
					require.NotEmpty(t, got, "t-0's records come first")
					errs = append(errs, err)
					continue
				}
				got = append(got, string(r.Value))
				if len(got) == 1 {
					require.NoError(t, tc.change(c))
					values(t, b, "t", 0, "a3") // fetched by the next Poll
				}
				if len(got) == 4 {
					break
				}
			}
			require.Equal(t, []string{"a0", "a1", "a2", "a3"}, got)
			if !tc.yielded {
				require.Empty(t, errs, "the error of a position the loop body left")
				return
			}
			require.Len(t, errs, 1)
			require.ErrorIs(t, errs[0], log.ErrOffsetOutOfRange)
		})
	}
}

// A record that does not decode, met by a Records loop after the loop body
// left its partition (Seek, also to the offset it is at; Assign;
// Unassign), or closed the consumer, or cancelled the loop's ctx, on the
// record before it in the same fetch: the error is about bytes fetched
// before the call, and is not yielded after it, as no record of them is,
// nor a partition error fetched before it (Records' doc); nor is anything
// yielded after Close, nor after the end of ctx but ctx's error, once and
// last (the test ends the loop so when the consumer is not closed). A
// Pause leaves it, as it leaves
// a partition error fetched before it. The loop yielded the error in all
// cases: under the doc's advice (Seek past it to skip it), an application
// that had moved would have moved again, from the wrong offset.
func TestChangeInsideRecordsLoopDropsDecodingError(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  func(*consumer.Consumer, context.CancelFunc) error
		yielded bool // the decoding error is yielded all the same
	}{
		{"Seek", func(c *consumer.Consumer, _ context.CancelFunc) error { return c.Seek("t", 0, consumer.At(5)) }, false},
		{"SeekSameOffset", func(c *consumer.Consumer, _ context.CancelFunc) error { return c.Seek("t", 0, consumer.At(1)) }, false},
		{"Assign", func(c *consumer.Consumer, _ context.CancelFunc) error { return c.Assign("t", 0, consumer.At(0)) }, false},
		{"Unassign", func(c *consumer.Consumer, _ context.CancelFunc) error { c.Unassign("t", 0); return nil }, false},
		{"Close", func(c *consumer.Consumer, _ context.CancelFunc) error { return c.Close() }, false},
		{"cancel", func(_ *consumer.Consumer, cancel context.CancelFunc) error { cancel(); return nil }, false},
		{"Pause", func(c *consumer.Consumer, _ context.CancelFunc) error {
			c.Pause(api.TopicPartition{Topic: "t", Partition: 0})
			return nil
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// "a" decodes, "b" does not (see TestUndecodableRecordInRecordsLoop).
			data := batchAt(t, 0, "a", "b")
			data[len(data)-1] = 2
			record.Batch(data).UpdateCRC()
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			var fetches atomic.Int32
			client := &fakeClient{t: t, fetch: func(fctx context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
				if fetches.Add(1) > 1 { // the loop has had its chance: end it
					cancel()
					return api.FetchResponse{}, fctx.Err()
				}
				var resp api.FetchResponse
				for _, p := range req.Partitions {
					resp.Partitions = append(resp.Partitions, api.FetchedPartition{
						Topic: p.Topic, Partition: p.Partition, HighWatermark: 2, Records: data,
					})
				}
				return resp, nil
			}}
			c := newConsumer(t, client, consumer.FetchMaxWait(time.Millisecond), consumer.RetryBackoff(time.Hour))
			consumer.SetIdle(c, func(time.Duration) { cancel() }) // nothing assigned, or all paused
			require.NoError(t, c.Assign("t", 0, consumer.At(0)))
			var got []string
			var errs []error
			ends := 0 // ctx's errors
			for r, err := range c.Records(ctx) {
				require.Zero(t, ends, "yielded (%v, %v) after ctx's error", r, err)
				if ctxEnd(ctx, err) {
					ends++
					continue // the last: the test ends the loop so
				}
				if err != nil {
					errs = append(errs, err)
					continue
				}
				got = append(got, string(r.Value))
				require.NoError(t, tc.change(c, cancel))
			}
			require.Equal(t, []string{"a"}, got)
			if tc.name == "Close" {
				require.Zero(t, ends, "no error after Close, ctx's neither")
			} else {
				require.Equal(t, 1, ends, "ctx's error, last")
			}
			if !tc.yielded {
				require.Empty(t, errs, "an error of bytes fetched before the call")
				return
			}
			require.Len(t, errs, 1)
			require.ErrorIs(t, errs[0], record.ErrCorrupt)
		})
	}
}

// A Poll that fails (here its fetch, with an error the table does not
// know, which Records retries) returns with it the errors of the
// positions it could not resolve; a Records loop yields them, then the
// Poll's error. Once the loop body has closed the consumer or cancelled
// the loop's ctx, it yields nothing more but ctx's error after a cancel
// (Records' doc: it then ends, at once); the errors not yielded are left for the next Poll, as a
// break leaves them. It yielded the other partition's error and the
// Poll's after the Close or cancel.
func TestRecordsLoopEndsAtOnceAfterFailedPoll(t *testing.T) {
	for _, how := range []string{"Close", "cancel"} {
		t.Run(how, func(t *testing.T) {
			client, listFail, _ := downClient(t)
			c := newConsumer(t, client, consumer.RetryBackoff(time.Hour))
			require.NoError(t, c.Assign("t", 0, consumer.Start()))
			require.NoError(t, c.Assign("t", 1, consumer.Start()))
			require.NoError(t, c.Assign("t", 2, consumer.At(0)))
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			var errs []error
			for _, err := range c.Records(ctx) {
				errs = append(errs, err)
				if how == "Close" {
					require.NoError(t, c.Close())
				} else {
					cancel()
				}
			}
			if how == "cancel" {
				require.Len(t, errs, 2, "nothing but ctx's error after the cancel: %v", errs)
				require.Equal(t, context.Canceled, errs[1])
				errs = errs[:1]
			}
			require.Len(t, errs, 1, "nothing after the %s: %v", how, errs)
			require.ErrorIs(t, errs[0], listFail)
		})
	}
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

// TestRecordsBreakAtResolveError: a Records loop that breaks at
// the first of the errors a failed Poll brought (positions that could
// not be resolved) ends at once; the errors it did not yield are not
// lost, as unreported's doc says: their partitions were backed off, and
// the Polls after the backoff find them again.
func TestRecordsBreakAtResolveError(t *testing.T) {
	client, listFail, _ := downClient(t)
	c := newConsumer(t, client, consumer.RetryBackoff(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	require.NoError(t, c.Assign("t", 1, consumer.Start()))
	require.NoError(t, c.Assign("t", 2, consumer.At(0)))
	var errs []error
	for _, err := range c.Records(testCtx(t)) {
		errs = append(errs, err)
		break
	}
	require.Len(t, errs, 1)
	require.ErrorIs(t, errs[0], listFail)
	parts := map[int32]bool{}
	for deadline := time.Now().Add(testkit.HangGuard); len(parts) < 2 && time.Now().Before(deadline); {
		fs, err := c.Poll(testCtx(t))
		require.Error(t, err, "the fetch is down")
		for _, f := range fs {
			require.ErrorIs(t, f.Err, listFail)
			parts[f.Partition] = true
		}
	}
	require.Equal(t, map[int32]bool{0: true, 1: true}, parts, "each partition's error, found again")
}
