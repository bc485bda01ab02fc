package consumer_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// listHookClient is a broker whose next ListOffset runs a hook: before
// asking the broker, or after the broker answered and before the consumer
// sees the answer. What an after hook does thus happens between the
// consumer's look-up of a position and its first fetch from it (Poll
// resolves positions, then fetches, in one call). Its next Fetch may run
// a hook too, before asking the broker, which it does not ask if the hook
// returns an error: it returns the error (fetchNext).
type listHookClient struct {
	*runnel.Broker
	mu            sync.Mutex
	before, after func()
	fetch         func() error
}

// fetchNext sets the hook for the next Fetch only.
func (h *listHookClient) fetchNext(f func() error) { h.mu.Lock(); h.fetch = f; h.mu.Unlock() }

func (h *listHookClient) Fetch(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
	h.mu.Lock()
	f := h.fetch
	h.fetch = nil
	h.mu.Unlock()
	if f != nil {
		if err := f(); err != nil {
			return api.FetchResponse{}, err
		}
	}
	return h.Broker.Fetch(ctx, req)
}

// beforeNext and afterNext set the hook for the next ListOffset only.
func (h *listHookClient) beforeNext(f func()) { h.mu.Lock(); h.before = f; h.mu.Unlock() }
func (h *listHookClient) afterNext(f func())  { h.mu.Lock(); h.after = f; h.mu.Unlock() }

func (h *listHookClient) ListOffset(ctx context.Context, topic string, p int32, ts int64) (api.ListedOffset, error) {
	h.mu.Lock()
	before, after := h.before, h.after
	h.before, h.after = nil, nil
	h.mu.Unlock()
	if before != nil {
		before()
	}
	lo, err := h.Broker.ListOffset(ctx, topic, p, ts)
	if after != nil {
		after()
	}
	return lo, err
}

// recreate deletes topic t and creates it again, with one partition
// holding n records new0..new(n-1), and returns the new topic's ID.
func recreate(t *testing.T, b *runnel.Broker, n int) log.TopicID {
	t.Helper()
	ctx := testCtx(t)
	require.NoError(t, b.DeleteTopic(ctx, "t"))
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	values(t, b, "t", 0, seq("new", 0, n)...)
	return topicID(t, b)
}

func topicID(t *testing.T, b *runnel.Broker) log.TopicID {
	t.Helper()
	info, err := b.DescribeTopic(testCtx(t), "t")
	require.NoError(t, err)
	return info.ID
}

// pollUntilErr polls until a Poll reports a partition error, which it
// returns as a *PartitionError; no Poll before it may return records.
func pollUntilErr(t *testing.T, c *consumer.Consumer) *consumer.PartitionError {
	t.Helper()
	for range 10 { // two Polls at most here: a reset, then the error
		fs, err := c.Poll(testCtx(t))
		require.NoError(t, err)
		require.Zero(t, fs.NumRecords(), "no records of the new topic from the old topic's offset")
		if err := fs.Err(); err != nil {
			var pe *consumer.PartitionError
			require.ErrorAs(t, err, &pe)
			return pe
		}
	}
	t.Fatal("no partition error")
	return nil
}

// requireResetToNewTopic checks what a consumer whose position was
// reported gone with ErrUnknownTopicID does next, per its policy: reads
// the new topic (n records, new0..) from its start or from its end, or
// stays stopped, at the old topic's offset stopped, until Seek.
func requireResetToNewTopic(t *testing.T, b *runnel.Broker, c *consumer.Consumer, policy consumer.ResetPolicy, n int, stopped int64) {
	t.Helper()
	switch policy {
	case consumer.ResetEarliest:
		require.Equal(t, seq("new", 0, n), vals(readN(t, c, n)), "from the new topic's start")
	case consumer.ResetLatest:
		for {
			fs, err := c.Poll(testCtx(t))
			require.NoError(t, err)
			require.NoError(t, fs.Err())
			require.Zero(t, fs.NumRecords(), "nothing before the new topic's end")
			if pos, ok := c.Position("t", 0); ok {
				require.EqualValues(t, n, pos, "the new topic's end")
				break
			}
		}
		values(t, b, "t", 0, "after")
		require.Equal(t, []string{"after"}, vals(readN(t, c, 1)))
	case consumer.ResetNone:
		fs, err := c.Poll(testCtx(t))
		require.NoError(t, err)
		require.Empty(t, fs, "stopped until Seek")
		pos, ok := c.Position("t", 0)
		require.True(t, ok)
		require.Equal(t, stopped, pos, "stopped at its old position")
		require.NoError(t, c.Seek("t", 0, consumer.Start()))
		require.Equal(t, seq("new", 0, n), vals(readN(t, c, n)))
	}
}

// TestRecreatedBetweenListOffsetAndFetch: a position resolved by Start or
// End just before its topic is deleted and created again, and first
// fetched from just after, is the old topic's offset: ListOffset's topic
// ID goes with it into the fetch, which the broker answers with
// ErrUnknownTopicID, and the position is reset (or stopped) as for a
// topic created again between two fetches, not read in the new topic.
func TestRecreatedBetweenListOffsetAndFetch(t *testing.T) {
	for _, at := range []consumer.Offset{consumer.Start(), consumer.End()} {
		for _, policy := range []consumer.ResetPolicy{consumer.ResetEarliest, consumer.ResetLatest, consumer.ResetNone} {
			t.Run(at.String()+"/"+policy.String(), func(t *testing.T) {
				b := openBroker(t, map[string]int{"t": 1})
				values(t, b, "t", 0, seq("old", 0, 5)...)
				_, err := b.DeleteRecords(testCtx(t), "t", 0, 3) // Start is 3, End 5
				require.NoError(t, err)
				resolved := map[consumer.Offset]int64{consumer.Start(): 3, consumer.End(): 5}[at]
				h := &listHookClient{Broker: b}
				c := newConsumer(t, h, consumer.FetchMaxWait(time.Millisecond), consumer.RetryBackoff(0), consumer.ResetOffset(policy))
				require.NoError(t, c.Assign("t", 0, at))

				// The new topic holds offset 3, and 5: read there, it would
				// skip new0..new2 (or new0..new4).
				h.afterNext(func() { recreate(t, b, 8) })
				pe := pollUntilErr(t, c)
				require.ErrorIs(t, pe, api.ErrUnknownTopicID)
				require.ErrorIs(t, pe, runnel.ErrUnknownTopicID)
				require.Equal(t, resolved, pe.Offset)
				requireResetToNewTopic(t, b, c, policy, 8, resolved)
			})
		}
	}
}

// TestRecreatedAfterListOffsetWithIDKnown: a partition whose topic ID the
// consumer knows from earlier fetches gets its position looked up again —
// the application seeks to End, or an offset out of range is reset —
// and the topic is deleted and created again between that look-up and
// the next fetch: the fetch names the ID ListOffset gave with the offset,
// and gets ErrUnknownTopicID.
func TestRecreatedAfterListOffsetWithIDKnown(t *testing.T) {
	t.Run("seek", func(t *testing.T) {
		for _, policy := range []consumer.ResetPolicy{consumer.ResetEarliest, consumer.ResetLatest, consumer.ResetNone} {
			t.Run(policy.String(), func(t *testing.T) {
				b := openBroker(t, map[string]int{"t": 1})
				values(t, b, "t", 0, seq("old", 0, 5)...)
				h := &listHookClient{Broker: b}
				c := newConsumer(t, h, consumer.FetchMaxWait(time.Millisecond), consumer.RetryBackoff(0), consumer.ResetOffset(policy))
				require.NoError(t, c.Assign("t", 0, consumer.Start()))
				require.Equal(t, seq("old", 0, 2), vals(readN(t, c, 2)))

				require.NoError(t, c.Seek("t", 0, consumer.End()))
				h.afterNext(func() { recreate(t, b, 8) })
				pe := pollUntilErr(t, c)
				require.ErrorIs(t, pe, api.ErrUnknownTopicID, "not new5..new7")
				require.EqualValues(t, 5, pe.Offset)
				requireResetToNewTopic(t, b, c, policy, 8, 5)
			})
		}
	})
	t.Run("out of range", func(t *testing.T) {
		// ResetNone stops at an offset out of range: nothing is looked up.
		for _, policy := range []consumer.ResetPolicy{consumer.ResetEarliest, consumer.ResetLatest} {
			t.Run(policy.String(), func(t *testing.T) {
				// Reset to 8 (earliest) or 10 (latest), looked up with
				// ListOffset.
				b, h, c := readThenOutOfRange(t, consumer.ResetOffset(policy))
				h.afterNext(func() { recreate(t, b, 12) })
				pe := pollUntilErr(t, c)
				require.ErrorIs(t, pe, api.ErrUnknownTopicID, "not new8.. or new10..")
				require.EqualValues(t, map[consumer.ResetPolicy]int64{consumer.ResetEarliest: 8, consumer.ResetLatest: 10}[policy], pe.Offset)
				requireResetToNewTopic(t, b, c, policy, 12, -1)
			})
		}
	})
}

// TestRecreatedBeforeListOffsetWithIDKnown: a partition whose topic ID the
// consumer knows gets an offset out of range, and the topic is deleted
// and created again before the reset position is looked up: ListOffset
// answers in the new topic, with its ID. The consumer reports the topic
// gone (ErrUnknownTopicID, once, before any record of the new topic), as
// it would had the look-up come before the delete (the fetch then names
// the old ID: see TestRecreatedAfterListOffsetWithIDKnown), takes the
// new ID (and logs it), and reads the new topic from the position the
// look-up found, per its policy. It read on silently from there: the
// application saw offsets go back with no word.
func TestRecreatedBeforeListOffsetWithIDKnown(t *testing.T) {
	for _, policy := range []consumer.ResetPolicy{consumer.ResetEarliest, consumer.ResetLatest} {
		t.Run(policy.String(), func(t *testing.T) {
			var logs logRecorder
			b, h, c := readThenOutOfRange(t, consumer.ResetOffset(policy), consumer.Logger(logs.logger()))
			oldID := topicID(t, b)
			// The look-up of the reset position finds the new topic
			// (new0..new2), which gets "after" at 3 once looked up.
			var newID log.TopicID
			h.beforeNext(func() { newID = recreate(t, b, 3) })
			h.afterNext(func() { values(t, b, "t", 0, "after") })
			want := map[consumer.ResetPolicy][]string{
				consumer.ResetEarliest: append(seq("new", 0, 3), "after"),
				consumer.ResetLatest:   {"after"},
			}[policy]
			pe, got := readTold(t, c, len(want))
			require.ErrorIs(t, pe, api.ErrUnknownTopicID)
			require.EqualValues(t, -1, pe.Offset, "found while the position was being reset")
			require.Equal(t, want, got, "the new topic, from where the look-up found")
			require.Equal(t, []string{oldID.String() + " " + newID.String()},
				logs.attrs("topic created again: position resolved in the new topic", "old_topic_id", "topic_id"))
		})
	}
}

// TestDeletedBeforeListOffsetWithIDKnown: as above, but the topic is only
// deleted when the reset position is looked up: ListOffset answers an
// unknown topic, which for a partition never read is retried without a
// word; for this one, read in the topic whose ID the consumer knows, the
// topic is gone, and the consumer reports it (once), then resolves the
// position in the topic created again, with no further word. It retried
// without a word, and read the new topic when it came.
func TestDeletedBeforeListOffsetWithIDKnown(t *testing.T) {
	for _, policy := range []consumer.ResetPolicy{consumer.ResetEarliest, consumer.ResetLatest} {
		t.Run(policy.String(), func(t *testing.T) {
			b, h, c := readThenOutOfRange(t, consumer.ResetOffset(policy))
			h.beforeNext(func() { require.NoError(t, b.DeleteTopic(testCtx(t), "t")) })
			pe := pollUntilErr(t, c)
			require.ErrorIs(t, pe, api.ErrUnknownTopicID)
			require.ErrorIs(t, pe, runnel.ErrUnknownTopic, "the name is unknown too")
			require.EqualValues(t, -1, pe.Offset)

			require.NoError(t, b.CreateTopic(testCtx(t), "t", log.TopicConfig{Partitions: 1}))
			values(t, b, "t", 0, seq("new", 0, 3)...)
			h.afterNext(func() { values(t, b, "t", 0, "after") })
			want := map[consumer.ResetPolicy][]string{
				consumer.ResetEarliest: append(seq("new", 0, 3), "after"),
				consumer.ResetLatest:   {"after"},
			}[policy]
			require.Equal(t, want, vals(readN(t, c, len(want))), "told once: the new topic is read without a word")
		})
	}
}

// readThenOutOfRange opens a broker with topic t (one partition) and a
// consumer of it through a listHookClient, with opts, which reads
// old0..old4; then old5..old9 are appended and DeleteRecords moves the
// log start to 8: the consumer's position, 5, is out of range at its next
// fetch, and is reset per its policy (looked up with ListOffset).
func readThenOutOfRange(t *testing.T, opts ...consumer.Opt) (*runnel.Broker, *listHookClient, *consumer.Consumer) {
	t.Helper()
	b := openBroker(t, map[string]int{"t": 1})
	values(t, b, "t", 0, seq("old", 0, 5)...)
	h := &listHookClient{Broker: b}
	c := newConsumer(t, h, append([]consumer.Opt{consumer.FetchMaxWait(time.Millisecond), consumer.RetryBackoff(0)}, opts...)...)
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	require.Equal(t, seq("old", 0, 5), vals(readN(t, c, 5)))
	values(t, b, "t", 0, seq("old", 5, 5)...)
	_, err := b.DeleteRecords(testCtx(t), "t", 0, 8)
	require.NoError(t, err)
	return b, h, c
}

// readTold reads n records in a Records loop, which must first yield one
// partition error, and no other: it returns that error and the records'
// values.
func readTold(t *testing.T, c *consumer.Consumer, n int) (*consumer.PartitionError, []string) {
	t.Helper()
	var pe *consumer.PartitionError
	var got []string
	for r, err := range c.Records(testCtx(t)) {
		if err != nil {
			require.Nil(t, pe, "one error: %v", err)
			require.ErrorAs(t, err, &pe)
			continue
		}
		require.NotNil(t, pe, "%q read before the error", r.Value)
		if got = append(got, string(r.Value)); len(got) == n {
			break
		}
	}
	require.Len(t, got, n, "the test's deadline passed")
	return pe, got
}

// TestRecreatedBeforeListOffsetThenOutOfRange: as
// TestRecreatedBeforeListOffsetWithIDKnown (the topic created again
// before the reset position is looked up: reported once, as
// ErrUnknownTopicID with Offset -1), but the looked-up position, the new
// topic's start, falls below its log start before the first fetch from
// it (DeleteRecords), so that the fetch that follows the report, in the
// same Poll, resets the position again, per the policy, without a word.
// That second reset is no move of the application's: a Records loop
// yields the report all the same, before any record of the new topic,
// as Poll returns it; and so it does when the report was held by a Poll
// whose ctx ended during its fetch (see unreported), and the next Poll's
// fetch resets the position. A Records loop dropped it, as stale (the
// reset had bumped the partition's seq, which ee84be0's check takes for
// a Seek or Assign), and read new2 with no word: the topic was replaced
// under the consumer and nothing said so.
func TestRecreatedBeforeListOffsetThenOutOfRange(t *testing.T) {
	for _, how := range []string{"poll", "records", "held"} {
		t.Run(how, func(t *testing.T) {
			b, h, c := readThenOutOfRange(t, consumer.ResetOffset(consumer.ResetEarliest))
			// The fetch at 5 is out of range: the position is reset to
			// the start, still unresolved, with the old topic's ID kept.
			fs, err := c.Poll(testCtx(t))
			require.NoError(t, err)
			require.Empty(t, fs)
			_, ok := c.Position("t", 0)
			require.False(t, ok, "reset: to be looked up")

			// The look-up finds the new topic (new0..new3) at 0, which
			// DeleteRecords then moves its log start past.
			h.beforeNext(func() { recreate(t, b, 4) })
			deleteTo2 := func() {
				_, err := b.DeleteRecords(testCtx(t), "t", 0, 2)
				require.NoError(t, err)
			}
			switch how {
			case "poll":
				h.afterNext(deleteTo2)
				pe := pollUntilErr(t, c)
				require.ErrorIs(t, pe, api.ErrUnknownTopicID)
				require.EqualValues(t, -1, pe.Offset)
				return
			case "records":
				h.afterNext(deleteTo2)
			case "held":
				// The Poll that looks up the position is cancelled during
				// its fetch: the report is held for the next one, whose
				// fetch then finds the position out of range.
				ctx, cancel := context.WithCancel(testCtx(t))
				h.fetchNext(func() error { cancel(); deleteTo2(); return ctx.Err() })
				_, err := c.Poll(ctx)
				require.ErrorIs(t, err, context.Canceled)
			}
			pe, got := readTold(t, c, 2)
			require.ErrorIs(t, pe, api.ErrUnknownTopicID)
			require.EqualValues(t, -1, pe.Offset)
			require.Equal(t, seq("new", 2, 2), got, "reset again, to the new log start")
		})
	}
}

// TestRecreatedTwiceDuringReset: the topic is created again before the
// reset position is looked up (reported: ErrUnknownTopicID, Offset -1),
// and again between the look-up and the fetch from the position found,
// which the fetch, naming the look-up's topic ID, finds gone (reported:
// ErrUnknownTopicID, at that offset). Two topics were replaced under the
// consumer: Poll and a Records loop report both, in order, before the
// records of the last topic. A Records loop dropped the first (the reset
// after the second had bumped the partition's seq: see
// TestRecreatedBeforeListOffsetThenOutOfRange).
func TestRecreatedTwiceDuringReset(t *testing.T) {
	for _, how := range []string{"poll", "records"} {
		t.Run(how, func(t *testing.T) {
			b, h, c := readThenOutOfRange(t, consumer.ResetOffset(consumer.ResetEarliest))
			fs, err := c.Poll(testCtx(t)) // out of range: reset
			require.NoError(t, err)
			require.Empty(t, fs)
			h.beforeNext(func() { recreate(t, b, 4) })
			h.afterNext(func() { recreate(t, b, 2) })
			var errs []error
			var got []string
			take := func(r *record.Record, err error) {
				if err != nil {
					require.Empty(t, got, "an error after %q", got)
					errs = append(errs, err)
					return
				}
				got = append(got, string(r.Value))
			}
			if how == "poll" {
				for len(got) < 2 {
					fs, err := c.Poll(testCtx(t))
					require.NoError(t, err)
					if fs.Err() != nil {
						// One Poll reports both: two Fetches of t-0 (see
						// Fetches).
						require.Len(t, fs, 2)
						for _, f := range fs {
							require.Equal(t, "t", f.Topic)
							require.Error(t, f.Err)
						}
					}
					for r, err := range fs.Records() {
						take(r, err)
					}
				}
			} else {
				for r, err := range c.Records(testCtx(t)) {
					if take(r, err); len(got) == 2 {
						break
					}
				}
			}
			require.Equal(t, []string{"new0", "new1"}, got, "the last topic, from its start")
			require.Len(t, errs, 2)
			var pe *consumer.PartitionError
			require.ErrorAs(t, errs[0], &pe)
			require.ErrorIs(t, pe, api.ErrUnknownTopicID)
			require.EqualValues(t, -1, pe.Offset, "found by the look-up")
			require.ErrorAs(t, errs[1], &pe)
			require.ErrorIs(t, pe, api.ErrUnknownTopicID)
			require.EqualValues(t, 0, pe.Offset, "found by the fetch from the looked-up position")
		})
	}
}

// TestTwoReportsHeldForOnePartition: one Poll finds two reports for
// t-0 — its reset position's look-up finds the topic created again, and
// the fetch from the position found, the topic created again once more
// (see TestRecreatedTwiceDuringReset) — and a Records loop breaks before
// yielding either (on u-0's report, before them: u, read and reset too,
// was deleted). Both are kept for the next Poll or Records (see
// unreported), and reported there, in order, once each, before the
// records of t's last topic. Only the last was kept: one error held per
// partition, the second written over the first, whose topic replacement
// nothing ever reported.
func TestTwoReportsHeldForOnePartition(t *testing.T) {
	b := openBroker(t, map[string]int{"u": 1, "t": 1})
	values(t, b, "u", 0, "u0", "u1")
	values(t, b, "t", 0, "old0", "old1")
	h := &listHookClient{Broker: b}
	c := newConsumer(t, h, consumer.FetchMaxWait(time.Millisecond), consumer.RetryBackoff(0), consumer.ResetOffset(consumer.ResetEarliest))
	require.NoError(t, c.Assign("u", 0, consumer.Start())) // looked up first
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	require.Len(t, readN(t, c, 4), 4)
	for _, topic := range []string{"u", "t"} { // both positions, 2, out of range
		values(t, b, topic, 0, "x", "y", "z")
		_, err := b.DeleteRecords(testCtx(t), topic, 0, 4)
		require.NoError(t, err)
	}
	fs, err := c.Poll(testCtx(t)) // both reset, the topics' IDs kept
	require.NoError(t, err)
	require.Empty(t, fs)

	require.NoError(t, b.DeleteTopic(testCtx(t), "u"))
	recreate(t, b, 4)
	// After u-0's look-up, t-0's: then t is created again.
	h.afterNext(func() { h.afterNext(func() { recreate(t, b, 2) }) })
	var errs []error
	for _, err := range c.Records(testCtx(t)) {
		require.ErrorIs(t, err, api.ErrUnknownTopicID)
		errs = append(errs, err)
		break
	}
	pe, got := readAfterErrors(t, c, 2)
	require.Equal(t, seq("new", 0, 2), got, "t's last topic, from its start")
	errs = append(errs, pe...)
	require.Len(t, errs, 3, "%v", errs)
	want := []struct {
		partition string
		offset    int64
	}{{"u", -1}, {"t", -1}, {"t", 0}}
	for i, w := range want {
		var pe *consumer.PartitionError
		require.ErrorAs(t, errs[i], &pe)
		require.ErrorIs(t, pe, api.ErrUnknownTopicID)
		require.Equal(t, w.partition, pe.Topic, "error %d", i)
		require.Equal(t, w.offset, pe.Offset, "error %d", i)
	}
}

// readAfterErrors reads n records in a Records loop, which yields errors only
// before the first: it returns the errors and the records' values.
func readAfterErrors(t *testing.T, c *consumer.Consumer, n int) ([]error, []string) {
	t.Helper()
	var errs []error
	var got []string
	for r, err := range c.Records(testCtx(t)) {
		if err != nil {
			require.Empty(t, got, "an error after %q: %v", got, err)
			errs = append(errs, err)
			continue
		}
		if got = append(got, string(r.Value)); len(got) == n {
			break
		}
	}
	require.Len(t, got, n, "the test's deadline passed")
	return errs, got
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
