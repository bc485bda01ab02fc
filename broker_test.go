package runnel

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func batch(t testing.TB, values ...string) []byte {
	t.Helper()
	return batchAt(t, time.Now().UnixMilli(), values...)
}

// batchAt is batch with its records stamped ts (Unix ms), for a test that
// does the same operations on every run (a log's close writes a last
// time-index entry or not by its records' timestamps).
func batchAt(t testing.TB, ts int64, values ...string) []byte {
	t.Helper()
	var b record.Builder
	b.Reset()
	for _, v := range values {
		b.Append(ts, []byte("k-"+v), []byte(v), nil)
	}
	out, err := b.AppendTo(nil, compression.None)
	require.NoError(t, err)
	return out
}

func produce(t testing.TB, b *Broker, topic string, p int32, values ...string) api.ProduceResponse {
	t.Helper()
	resp, err := b.Produce(context.Background(), &api.ProduceRequest{Topic: topic, Partition: p, Acks: api.AcksAll, Batches: batch(t, values...)})
	require.NoError(t, err)
	return resp
}

func values(t testing.TB, data []byte) []string {
	t.Helper()
	var out []string
	for b, err := range record.Batches(data) {
		require.NoError(t, err)
		for r, err := range b.Records() {
			require.NoError(t, err)
			out = append(out, string(r.Value))
		}
	}
	return out
}

func open(t testing.TB, cfg Config) *Broker {
	t.Helper()
	b, err := Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	return b
}

func TestProduceFetchInMemory(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "orders", log.TopicConfig{Partitions: 3}))
	require.Equal(t, []string{"orders"}, b.Topics())
	n, err := b.Partitions(ctx, "orders")
	require.NoError(t, err)
	require.Equal(t, 3, n)

	r := produce(t, b, "orders", 1, "a", "b")
	require.EqualValues(t, 0, r.BaseOffset)
	r = produce(t, b, "orders", 1, "c")
	require.EqualValues(t, 2, r.BaseOffset)

	resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "orders", Partition: 1, Offset: 0}, {Topic: "orders", Partition: 0}}})
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b", "c"}, values(t, resp.Partitions[0].Records))
	require.EqualValues(t, 3, resp.Partitions[0].HighWatermark)
	require.Empty(t, resp.Partitions[1].Records)

	info, err := b.DescribeTopic(ctx, "orders")
	require.NoError(t, err)
	require.Equal(t, 3, info.Config.Partitions)
	require.EqualValues(t, 3, info.Partitions[1].LogEndOffset)
	require.EqualValues(t, log.DefaultSegmentBytes, info.Config.SegmentBytes, "defaults filled in")

	off, err := b.ListOffset(ctx, "orders", 1, api.Earliest)
	require.NoError(t, err)
	require.EqualValues(t, 0, off.Offset)
	off, err = b.ListOffset(ctx, "orders", 1, api.Latest)
	require.NoError(t, err)
	require.EqualValues(t, 3, off.Offset)
	off, err = b.ListOffset(ctx, "orders", 1, time.Now().Add(time.Hour).UnixMilli())
	require.NoError(t, err)
	require.EqualValues(t, 3, off.Offset, "nothing that new: the high watermark")
}

func TestTopicAdminErrors(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	for _, name := range []string{"", ".", "..", "a/b", "with space", strings.Repeat("x", 250), "ünïcode"} {
		require.ErrorIs(t, b.CreateTopic(ctx, name, log.TopicConfig{Partitions: 1}), ErrInvalidTopic, "%q", name)
	}
	require.NoError(t, b.CreateTopic(ctx, strings.Repeat("x", 249), log.TopicConfig{Partitions: 1}))
	require.ErrorIs(t, b.CreateTopic(ctx, "t", log.TopicConfig{}), ErrInvalidPartitions)
	require.ErrorIs(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: -2}), ErrInvalidPartitions)
	require.ErrorIs(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{MinCleanableDirtyRatio: 3}}), log.ErrInvalidConfig)
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))
	require.ErrorIs(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}), ErrTopicExists)
	require.ErrorIs(t, b.CreatePartitions(ctx, "t", 2), ErrInvalidPartitions)
	require.ErrorIs(t, b.CreatePartitions(ctx, "nope", 5), ErrUnknownTopic)
	require.ErrorIs(t, b.DeleteTopic(ctx, "nope"), ErrUnknownTopic)
	_, err := b.DescribeTopic(ctx, "nope")
	require.ErrorIs(t, err, ErrUnknownTopic)
	_, err = b.Partitions(ctx, "")
	require.ErrorIs(t, err, ErrInvalidTopic)

	_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: 2, Acks: api.AcksAll, Batches: batch(t, "x")})
	require.ErrorIs(t, err, ErrUnknownTopic)
	_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: -1, Acks: api.AcksAll, Batches: batch(t, "x")})
	require.ErrorIs(t, err, ErrUnknownTopic)
	_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: 0, Acks: 5, Batches: batch(t, "x")})
	require.ErrorIs(t, err, api.ErrInvalidRequiredAcks)
	_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "nope", Partition: 0, Acks: api.AcksAll, Batches: batch(t, "x")})
	require.ErrorIs(t, err, ErrUnknownTopic)
	require.EqualValues(t, 3, api.Code(err))

	// Too large for the topic's max.message.bytes: nothing is written.
	require.NoError(t, b.AlterTopicConfig(ctx, "t", log.Config{MaxMessageBytes: 200}))
	_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: 0, Acks: api.AcksAll, Batches: batch(t, strings.Repeat("v", 300))})
	require.ErrorIs(t, err, log.ErrRecordTooLarge)
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, 200, info.Config.MaxMessageBytes)
	require.EqualValues(t, 0, info.Partitions[0].LogEndOffset)

	require.NoError(t, b.CreatePartitions(ctx, "t", 4))
	produce(t, b, "t", 3, "in the new partition")
	require.NoError(t, b.DeleteTopic(ctx, "t"))
	resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}}})
	require.NoError(t, err)
	require.ErrorIs(t, resp.Partitions[0].Err, ErrUnknownTopic)
	_, err = b.ListOffset(ctx, "t", 0, api.Latest)
	require.ErrorIs(t, err, ErrUnknownTopic)
}

func TestPersistenceAndLock(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	b, err := Open(Config{Dir: dir, TopicDefaults: log.Config{SegmentBytes: 4096}})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(ctx, "events", log.TopicConfig{Partitions: 2, Config: log.Config{RetentionTime: time.Hour}}))
	for i := range 50 {
		produce(t, b, "events", int32(i%2), fmt.Sprint(i))
	}
	pid, _, err := b.InitProducerID(ctx)
	require.NoError(t, err)

	_, err = Open(Config{Dir: dir})
	require.ErrorIs(t, err, vfs.ErrLocked, "a second broker on the same directory")
	require.NoError(t, b.Close())
	require.NoError(t, b.Close())
	_, err = b.Partitions(ctx, "events")
	require.ErrorIs(t, err, ErrClosed)

	b = open(t, Config{Dir: dir, TopicDefaults: log.Config{SegmentBytes: 4096}})
	info, err := b.DescribeTopic(ctx, "events")
	require.NoError(t, err)
	require.Equal(t, time.Hour, info.Config.RetentionTime)
	require.EqualValues(t, 4096, info.Config.SegmentBytes)
	require.EqualValues(t, 25, info.Partitions[0].LogEndOffset)
	resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "events", Partition: 1}}})
	require.NoError(t, err)
	require.Equal(t, "1", values(t, resp.Partitions[0].Records)[0])
	pid2, _, err := b.InitProducerID(ctx)
	require.NoError(t, err)
	require.Greater(t, pid2, pid, "producer ids are never reused")
}

func TestIdempotentProduce(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	pid, epoch, err := b.InitProducerID(ctx)
	require.NoError(t, err)
	mk := func(seq int32) []byte {
		var bl record.Builder
		bl.Reset()
		bl.SetProducer(pid, epoch, seq)
		bl.Append(1, nil, []byte(fmt.Sprint(seq)), nil)
		out, err := bl.AppendTo(nil, compression.None)
		require.NoError(t, err)
		return out
	}
	send := func(seq int32) (api.ProduceResponse, error) {
		return b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: mk(seq)})
	}
	r, err := send(0)
	require.NoError(t, err)
	require.False(t, r.Duplicate)
	r, err = send(0)
	require.NoError(t, err)
	require.True(t, r.Duplicate)
	require.EqualValues(t, 0, r.BaseOffset)
	_, err = send(5)
	require.ErrorIs(t, err, api.ErrOutOfOrderSequence)
	require.EqualValues(t, 45, api.Code(err))
}

// TestProduceRefusesWhatKafkaRefuses: a produced batch that Kafka's broker
// refuses from a client (LogValidator, UnifiedLog.analyzeAndValidateRecords)
// gets ErrInvalidRecord (INVALID_RECORD, 87), and nothing is appended: a
// base offset other than 0, a control batch (a transaction marker is the
// broker's to write), a transactional batch (no transactions here), and a
// producer id without a sequence number.
func TestProduceRefusesWhatKafkaRefuses(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	pid, epoch, err := b.InitProducerID(ctx)
	require.NoError(t, err)
	setAttr := func(data []byte, bit int16) {
		rb := record.Batch(data)
		binary.BigEndian.PutUint16(data[21:], uint16(rb.Attributes()|bit))
		rb.UpdateCRC()
	}
	for _, tc := range []struct {
		name string
		mod  func([]byte) []byte
	}{
		{"base offset 5", func(d []byte) []byte { record.Batch(d).SetBaseOffset(5); return d }},
		{"a control batch", func(d []byte) []byte { setAttr(d, record.AttrControl); return d }},
		{"a transactional batch", func(d []byte) []byte { setAttr(d, record.AttrTransactional); return d }},
		{"a delete horizon", func(d []byte) []byte { setAttr(d, record.AttrDeleteHorizon); return d }},
		{"a producer id with sequence -1", func([]byte) []byte {
			var bl record.Builder
			bl.Reset()
			bl.SetProducer(pid, epoch, -1)
			bl.Append(1, nil, []byte("x"), nil)
			out, err := bl.AppendTo(nil, compression.None)
			require.NoError(t, err)
			return out
		}},
		{"the second of two batches", func(d []byte) []byte {
			second := batch(t, "y")
			setAttr(second, record.AttrControl)
			return append(d, second...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: tc.mod(batch(t, "x"))})
			require.ErrorIs(t, err, log.ErrInvalidRecord)
			require.EqualValues(t, 87, api.Code(err))
			info, err := b.DescribeTopic(ctx, "t")
			require.NoError(t, err)
			require.Zero(t, info.Partitions[0].LogEndOffset, "nothing appended")
		})
	}
	// The same batches, as a producer encodes them, are taken.
	produce(t, b, "t", 0, "x", "y")
}

// TestDefaultPartitionsOnCreate: CreateTopic with -1 partitions takes the
// broker's DefaultPartitions (Kafka's num.partitions, KIP-464).
func TestDefaultPartitionsOnCreate(t *testing.T) {
	ctx := context.Background()
	for _, n := range []int{0, 3} {
		b := open(t, Config{DefaultPartitions: n})
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: -1}))
		info, err := b.DescribeTopic(ctx, "t")
		require.NoError(t, err)
		require.Len(t, info.Partitions, max(n, 1), "DefaultPartitions %d (0: its default, 1)", n)
		require.Equal(t, max(n, 1), info.Config.Partitions)
	}
}

// TestDeleteRecordsCompactedTopic: as in Kafka, DeleteRecords on a topic
// that is compacted only is a POLICY_VIOLATION, and deletes nothing; with
// compact,delete it deletes.
func TestDeleteRecordsCompactedTopic(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "c", log.TopicConfig{Partitions: 1, Config: log.Config{CleanupPolicy: log.Compact}}))
	require.NoError(t, b.CreateTopic(ctx, "cd", log.TopicConfig{Partitions: 1, Config: log.Config{CleanupPolicy: log.Compact | log.Delete}}))
	for _, topic := range []string{"c", "cd"} {
		produce(t, b, topic, 0, "a", "b", "c")
	}
	_, err := b.DeleteRecords(ctx, "c", 0, 2)
	require.ErrorIs(t, err, ErrPolicyViolation)
	require.EqualValues(t, 44, api.Code(err))
	require.False(t, api.IsRetriable(err))
	listed, err := b.ListOffset(ctx, "c", 0, api.Earliest)
	require.NoError(t, err)
	require.Zero(t, listed.Offset, "nothing deleted")
	low, err := b.DeleteRecords(ctx, "cd", 0, 2)
	require.NoError(t, err)
	require.EqualValues(t, 2, low)
}

// TestListOffsetSpecialTimestamps: api.MaxTimestamp (-3, KIP-734) gives
// the first record with the largest timestamp, never one above the high
// watermark; api.EarliestLocal (-4) the log start offset.
func TestListOffsetSpecialTimestamps(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	off, err := b.ListOffset(ctx, "t", 0, api.MaxTimestamp)
	require.NoError(t, err)
	require.Zero(t, off.Offset, "none: the high watermark")
	for _, tss := range [][]int64{{10, 30, 20}, {30, 5}, {25}} {
		var bl record.Builder
		bl.Reset()
		for _, ts := range tss {
			bl.Append(ts, []byte("k"), []byte("v"), nil)
		}
		data, err := bl.AppendTo(nil, compression.None)
		require.NoError(t, err)
		_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: data})
		require.NoError(t, err)
	}
	off, err = b.ListOffset(ctx, "t", 0, api.MaxTimestamp)
	require.NoError(t, err)
	require.EqualValues(t, 1, off.Offset)
	_, err = b.DeleteRecords(ctx, "t", 0, 2)
	require.NoError(t, err)
	off, err = b.ListOffset(ctx, "t", 0, api.MaxTimestamp)
	require.NoError(t, err)
	require.EqualValues(t, 3, off.Offset)
	off, err = b.ListOffset(ctx, "t", 0, api.EarliestLocal)
	require.NoError(t, err)
	require.EqualValues(t, 2, off.Offset)
}

// stepClock is a log.Clock a test moves by hand.
type stepClock struct{ ns atomic.Int64 }

func (c *stepClock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// TestProducerIDExpiration: the broker's ProducerIDExpiration reaches its
// partitions' logs: once a producer id has been idle that long, the
// broker's maintenance forgets it, and its retry is a new append.
func TestProducerIDExpiration(t *testing.T) {
	clock := &stepClock{}
	clock.ns.Store(time.Now().UnixNano())
	b := open(t, Config{Clock: clock, ProducerIDExpiration: time.Hour})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	// Stamped now (the clock started at time.Now): a record from 1970 is
	// past retention.ms, and retention would delete the log, the
	// producer's state with it.
	send := idempotentSend(t, b, "t")
	require.False(t, send().Duplicate)
	clock.ns.Add(int64(59 * time.Minute))
	require.NoError(t, b.Maintain(ctx))
	require.True(t, send().Duplicate)
	clock.ns.Add(int64(time.Minute))
	require.NoError(t, b.Maintain(ctx))
	r := send()
	require.False(t, r.Duplicate, "the producer id outlived its expiration")
	require.EqualValues(t, 1, r.BaseOffset)
}

func TestFetchLongPoll(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))

	// MaxWait passes with nothing: an empty answer, no error.
	resp, err := b.Fetch(ctx, &api.FetchRequest{MaxWait: 10 * time.Millisecond, Partitions: []api.FetchPartition{{Topic: "t"}}})
	require.NoError(t, err)
	require.Empty(t, resp.Partitions[0].Records)

	// A waiting fetch is woken by an append to any of its partitions.
	got := make(chan api.FetchResponse)
	go func() {
		resp, err := b.Fetch(ctx, &api.FetchRequest{MaxWait: time.Hour, Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1}}})
		if err != nil {
			t.Error(err)
		}
		got <- resp
	}()
	produce(t, b, "t", 1, "wake")
	resp = testkit.Await(t, got, "Fetch's answer")
	require.Equal(t, []string{"wake"}, values(t, resp.Partitions[1].Records))
	// ... and one waiting on a single partition (a plain select).
	go func() {
		resp, err := b.Fetch(ctx, &api.FetchRequest{MaxWait: time.Hour, Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}}})
		if err != nil {
			t.Error(err)
		}
		got <- resp
	}()
	produce(t, b, "t", 0, "wake0")
	resp = testkit.Await(t, got, "Fetch's answer")
	require.Equal(t, []string{"wake0"}, values(t, resp.Partitions[0].Records))

	// ctx ends a wait.
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() {
		_, err := b.Fetch(cctx, &api.FetchRequest{MaxWait: time.Hour, Partitions: []api.FetchPartition{{Topic: "t", Offset: 1}}}) // at the end
		done <- err
	}()
	cancel()
	require.ErrorIs(t, testkit.Await(t, done, "Fetch's answer"), context.Canceled)

	// An offset past the end is out of range, at once.
	resp, err = b.Fetch(ctx, &api.FetchRequest{MaxWait: time.Hour, Partitions: []api.FetchPartition{{Topic: "t", Partition: 1, Offset: 9}}})
	require.NoError(t, err)
	require.ErrorIs(t, resp.Partitions[0].Err, log.ErrOffsetOutOfRange)
}

func TestAutoCreate(t *testing.T) {
	b := open(t, Config{AutoCreateTopics: true, DefaultPartitions: 4})
	ctx := context.Background()
	r := produce(t, b, "auto", 3, "x")
	require.EqualValues(t, 0, r.BaseOffset)
	n, err := b.Partitions(ctx, "auto2")
	require.NoError(t, err)
	require.Equal(t, 4, n)
	require.Equal(t, []string{"auto", "auto2"}, b.Topics())

	off := open(t, Config{})
	_, err = off.Produce(ctx, &api.ProduceRequest{Topic: "auto", Acks: api.AcksAll, Batches: batch(t, "x")})
	require.True(t, errors.Is(err, ErrUnknownTopic), "off by default")
}

// TestFetchStaysBelowItsHighWatermark: every batch a Fetch returns lies
// below the high watermark it reports, also while appends race the fetch
// (an append between reading the watermark and reading the log once
// added batches past it, which a consumer then cut off and never counted
// towards MinBytes).
func TestFetchStaysBelowItsHighWatermark(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{{"memory", Config{}}, {"disk", Config{Dir: t.TempDir()}}} {
		t.Run(tc.name, func(t *testing.T) {
			b := open(t, tc.cfg)
			ctx := context.Background()
			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
			const n = 300
			done := make(chan struct{})
			t.Cleanup(func() { testkit.Await(t, done, "the producing goroutine's return") })
			go func() {
				defer close(done)
				for i := range n {
					_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, fmt.Sprint(i))})
					if err != nil {
						t.Error(err)
						return
					}
				}
			}()
			checked := 0
			for end := false; !end; {
				select {
				case <-done:
					end = true
				default:
				}
				resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t"}}})
				require.NoError(t, err)
				p := resp.Partitions[0]
				require.NoError(t, p.Err)
				for bt, err := range record.Batches(p.Records) {
					require.NoError(t, err)
					require.Less(t, bt.LastOffset(), p.HighWatermark, "a batch past the reported high watermark")
					checked++
				}
			}
			require.Positive(t, checked)
		})
	}
}

// TestProduceAsync: the broker acknowledges in two steps. Under the
// default fsync policy the batch is appended but not below the high
// watermark until its Ack's Wait has fsynced it; a topic that does not
// fsync has no Ack to wait for; errors before the append come at once.
func TestProduceAsync(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "synced", log.TopicConfig{Partitions: 1}))
	require.NoError(t, b.CreateTopic(ctx, "unsynced", log.TopicConfig{Partitions: 1, Config: log.Config{Sync: log.SyncNever}}))

	req := &api.ProduceRequest{Topic: "synced", Acks: api.AcksAll, Batches: batch(t, "a", "b")}
	resp, ack, err := b.ProduceAsync(ctx, req)
	require.NoError(t, err)
	require.EqualValues(t, 0, resp.BaseOffset)
	require.NotNil(t, ack)
	hw, err := b.ListOffset(ctx, "synced", 0, api.Latest)
	require.NoError(t, err)
	require.EqualValues(t, 0, hw.Offset, "readable before its fsync")
	require.NoError(t, ack.Wait(ctx))
	hw, err = b.ListOffset(ctx, "synced", 0, api.Latest)
	require.NoError(t, err)
	require.EqualValues(t, 2, hw.Offset)

	resp, ack, err = b.ProduceAsync(ctx, &api.ProduceRequest{Topic: "unsynced", Acks: api.AcksAll, Batches: batch(t, "c")})
	require.NoError(t, err)
	require.EqualValues(t, 0, resp.BaseOffset)
	require.Nil(t, ack)

	_, ack, err = b.ProduceAsync(ctx, &api.ProduceRequest{Topic: "nope", Acks: api.AcksAll, Batches: batch(t, "d")})
	require.ErrorIs(t, err, ErrUnknownTopic)
	require.Nil(t, ack)
	_, _, err = b.ProduceAsync(ctx, &api.ProduceRequest{Topic: "synced", Acks: 2, Batches: batch(t, "e")})
	require.ErrorIs(t, err, api.ErrInvalidRequiredAcks)

	// Closing the broker fsyncs what waits: its Wait succeeds.
	_, ack, err = b.ProduceAsync(ctx, &api.ProduceRequest{Topic: "synced", Acks: api.AcksAll, Batches: batch(t, "f")})
	require.NoError(t, err)
	require.NoError(t, b.Close())
	require.NoError(t, ack.Wait(ctx))
}

// TestNilRequests: a nil produce or fetch request is refused with
// api.ErrInvalidRequest, not a panic.
func TestNilRequests(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	_, err := b.Produce(ctx, nil)
	require.ErrorIs(t, err, api.ErrInvalidRequest)
	_, ack, err := b.ProduceAsync(ctx, nil)
	require.ErrorIs(t, err, api.ErrInvalidRequest)
	require.Nil(t, ack)
	_, err = b.Fetch(ctx, nil)
	require.ErrorIs(t, err, api.ErrInvalidRequest)
}

// TestProduceAsyncTopicDeleted: a topic deleted while an append waits for
// its fsync takes the records with it: the Wait fails with ErrUnknownTopic
// (as ProduceAsync's doc says; DeleteTopic discards the log without a
// flush), and so does the next produce.
func TestProduceAsyncTopicDeleted(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	_, ack, err := b.ProduceAsync(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, "a")})
	require.NoError(t, err)
	require.NotNil(t, ack)
	require.NoError(t, b.DeleteTopic(ctx, "t"))
	require.ErrorIs(t, ack.Wait(ctx), ErrUnknownTopic)
	_, _, err = b.ProduceAsync(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, "b")})
	require.ErrorIs(t, err, ErrUnknownTopic)
}
