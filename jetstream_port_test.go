package runnel_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// A NATS JetStream user's port. These tests pin what README.md's
// JetStream table says a port must know.

// TestJetStreamMaxBytesNeedsSmallSegments: JetStream's MaxBytes bounds a
// stream at each publish; RetentionBytes deletes whole segments only, never
// the active one. So a topic with a RetentionBytes far below its
// SegmentBytes (1 GiB by default) keeps everything written to it, and one
// with segments a fraction of it keeps about RetentionBytes plus a segment;
// and a batch larger than SegmentBytes makes a segment of its own, which
// may leave the log that batch's size, over RetentionBytes plus
// SegmentBytes. In memory, as on disk.
func TestJetStreamMaxBytesNeedsSmallSegments(t *testing.T) {
	ctx := context.Background()
	const retention = 64 << 10
	const segment = 16 << 10
	b := runneltest.NewBroker(t,
		runneltest.TopicConfig("big-segments", log.TopicConfig{Partitions: 1, Config: log.Config{RetentionBytes: retention}}),
		runneltest.TopicConfig("small-segments", log.TopicConfig{Partitions: 1, Config: log.Config{RetentionBytes: retention, SegmentBytes: segment}}))
	size := func(topic string) int64 {
		t.Helper()
		info, err := b.DescribeTopic(ctx, topic)
		require.NoError(t, err)
		return info.Partitions[0].Size
	}
	// 256 KiB in batches of about 4 KiB.
	p := runneltest.NewProducer(t, b, producer.BatchMaxBytes(4<<10), producer.Linger(time.Minute))
	value := bytes.Repeat([]byte("v"), 1000)
	for _, topic := range []string{"big-segments", "small-segments"} {
		for range 256 {
			p.Produce(ctx, &record.Record{Topic: topic, Value: value}, nil)
		}
	}
	require.NoError(t, p.Flush(ctx))
	require.NoError(t, b.Maintain(ctx))

	require.Greater(t, size("big-segments"), int64(256<<10), "RetentionBytes deleted from the active segment")
	small := size("small-segments")
	require.GreaterOrEqual(t, small, int64(retention))
	require.LessOrEqual(t, small, int64(retention+segment))

	// One batch of about 200 KiB after the small ones: the segments
	// before it go, the batch, over RetentionBytes plus SegmentBytes, stays.
	big := runneltest.NewProducer(t, b, producer.Linger(time.Minute))
	var first *record.Record
	for i := range 200 {
		r := &record.Record{Topic: "small-segments", Value: value}
		if i == 0 {
			first = r
		}
		big.Produce(ctx, r, nil)
	}
	require.NoError(t, big.Flush(ctx))
	require.NoError(t, b.Maintain(ctx))
	require.Greater(t, size("small-segments"), int64(retention+segment))
	info, err := b.DescribeTopic(ctx, "small-segments")
	require.NoError(t, err)
	require.Equal(t, first.Offset, info.Partitions[0].LogStartOffset, "the big batch is not its segment's first")
}

// TestJetStreamPublishAsyncCtx: JetStream's PublishAsync takes no ctx;
// Produce does, and a record whose ctx ends before its batch is sent is
// dropped, unwritten, with ctx's error: a port that produces with an HTTP
// request's ctx loses the record once the handler returns, unless it
// gives the record a ctx that outlives it (context.WithoutCancel).
func TestJetStreamPublishAsyncCtx(t *testing.T) {
	ctx := context.Background()
	b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
	p := runneltest.NewProducer(t, b, producer.DefaultTopic("orders"), producer.Linger(time.Minute))

	var dropped, kept error
	reqCtx, handlerReturned := context.WithCancel(ctx)
	p.Produce(reqCtx, &record.Record{Value: []byte("dropped")}, func(_ *record.Record, err error) { dropped = err })
	p.Produce(context.WithoutCancel(reqCtx), &record.Record{Value: []byte("kept")}, func(_ *record.Record, err error) { kept = err })
	handlerReturned()
	require.NoError(t, p.Flush(ctx))

	require.True(t, errors.Is(dropped, context.Canceled), "got %v", dropped)
	require.False(t, producer.MayBeWritten(dropped))
	require.NoError(t, kept)
	recs := runneltest.ConsumeAll(t, b, "orders")
	require.Len(t, recs, 1)
	require.Equal(t, "kept", string(recs[0].Value))
}

// TestJetStreamMaxMsgsPerSubjectNeedsMaxCompactionLag: JetStream's
// MaxMsgsPerSubject: 1 keeps a subject's last message at each publish; a
// compacted topic cleans only sealed segments, and its active segment
// rolls at SegmentBytes or SegmentTime (1 GiB, 7 days) unless
// MaxCompactionLag is set: then, at the maintenance after an append past
// that lag, a key's older values go but for its last one in the sealed
// segments (the active segment is never in the cleaner's key map, as in
// Kafka): a key keeps up to that one and those of the active segment.
func TestJetStreamMaxMsgsPerSubjectNeedsMaxCompactionLag(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b := runneltest.NewBroker(t,
			runneltest.TopicConfig("kv", log.TopicConfig{Partitions: 1, Config: log.Config{CleanupPolicy: log.Compact}}),
			runneltest.TopicConfig("kv-lag", log.TopicConfig{Partitions: 1, Config: log.Config{CleanupPolicy: log.Compact, MaxCompactionLag: time.Minute}}))
		put := func(topic, v string) {
			runneltest.Produce(t, b, topic, &record.Record{Key: []byte("k"), Value: []byte(v)})
		}
		values := func(topic string) []string {
			var vs []string
			for _, r := range runneltest.ConsumeAll(t, b, topic) {
				vs = append(vs, string(r.Value))
			}
			return vs
		}
		for _, topic := range []string{"kv", "kv-lag"} {
			put(topic, "1")
			put(topic, "2")
		}
		time.Sleep(2 * time.Minute)
		for _, topic := range []string{"kv", "kv-lag"} {
			put(topic, "3")
		}
		require.NoError(t, b.Maintain(ctx))
		require.Equal(t, []string{"1", "2", "3"}, values("kv"))
		require.Equal(t, []string{"2", "3"}, values("kv-lag")) // the active segment is never in the key map
	})
}

// readmeJetStreamRow returns the row of README.md's JetStream table whose
// first cell holds name.
func readmeJetStreamRow(t *testing.T, name string) string {
	t.Helper()
	return readmeTableRow(t, "**Coming from NATS JetStream embedded in a service.**", "\n## ", name)
}

// readmeTableRow returns the row whose first cell holds name of the
// README.md table that follows heading and ends at until (or at the end
// of the file).
func readmeTableRow(t *testing.T, heading, until, name string) string {
	t.Helper()
	data, err := os.ReadFile("README.md")
	require.NoError(t, err)
	_, table, ok := strings.Cut(string(data), heading)
	require.True(t, ok, "README.md has no %s", heading)
	table, _, _ = strings.Cut(table, until)
	for line := range strings.Lines(table) {
		cells := strings.Split(line, " | ")
		if strings.HasPrefix(line, "| ") && len(cells) >= 2 && strings.Contains(cells[0], name) {
			return line
		}
	}
	t.Fatalf("README.md's table after %s has no row for %s", heading, name)
	return ""
}

// TestReadmeJetStreamRowsSayIt: the README's JetStream table says
// what the tests above pin: that MaxBytes needs segments well below
// RetentionBytes, that a record produced with a ctx that ends first is
// dropped (PublishAsync has none), and that MaxMsgsPerSubject needs
// MaxCompactionLag; and log.Config's RetentionBytes doc, that a batch
// larger than SegmentBytes is a segment of its own.
func TestReadmeJetStreamRowsSayIt(t *testing.T) {
	for _, tc := range []struct{ row, says string }{
		{"`MaxBytes`", "`SegmentBytes`"},
		{"`PublishAsync`", "`context.WithoutCancel("},
		{"`MaxMsgsPerSubject: 1`", "`MaxCompactionLag`"},
		// The rows TestReadmeJetStreamMoreRows runs.
		{"`PublishAsync`", "`p.Flush(ctx)`"},
		{"`PublishAsyncMaxPending`", "`producer.MaxBufferedRecords`"},
		{"`MaxMsgSize`", "`log.Config.MaxMessageBytes`"},
		{"`UpdateStream`", "`b.DescribeTopic`"},
		{"`srv.Shutdown()`", "`vfs.ErrLocked`"},
		// TestJetStreamWorkQueueDeleteIsDurableAtReturn's.
		{"`WorkQueuePolicy`", "fsync"},
		// What a JetStream server bounds and runnel does not, and GetMsg.
		{"`max_file_store`", "`RetentionBytes`"},
		{"`DeliverByStartSequence`", "`GetMsg(seq)`"},
	} {
		require.Contains(t, readmeJetStreamRow(t, tc.row), tc.says, "the row of %s", tc.row)
	}
	// And RetentionBytes's doc, that a segment may be one batch larger
	// than SegmentBytes.
	doc := goDocOf(t, "log/config.go", "\tRetentionBytes int64")
	require.Contains(t, doc, "MaxMessageBytes", "RetentionBytes's doc")
}

// TestReadmeJetStreamMoreRows runs the rows of README.md's
// JetStream table that map what an embedded-JetStream service also
// does: PublishAsyncComplete is Flush, and offsets count from 0;
// PublishAsyncMaxPending is MaxBufferedRecords (TryProduce fails at once
// on a full buffer); MaxMsgSize is MaxMessageBytes, which bounds a batch,
// and the producer splits a refused batch, so only a record too large
// alone fails; UpdateStream, DeleteStream and StreamInfo's state are
// AlterTopicConfig, DeleteTopic and DescribeTopic; a shutdown closes the
// clients, then the broker, and an Open of the same directory finds the
// records again, while a second Open of a directory in use fails with
// vfs.ErrLocked.
func TestReadmeJetStreamMoreRows(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := runnel.Open(runnel.Config{Dir: dir})
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	require.NoError(t, b.CreateTopic(ctx, "orders", log.TopicConfig{Partitions: 1,
		Config: log.Config{MaxMessageBytes: 1000}}))

	p, err := producer.New(b, producer.DefaultTopic("orders"), producer.Linger(time.Minute), producer.MaxBufferedRecords(20))
	require.NoError(t, err)
	var firstErr, fullErr error
	first := &record.Record{Value: bytes.Repeat([]byte("a"), 100)}
	p.Produce(ctx, first, func(_ *record.Record, err error) { firstErr = err })
	for range 19 { // 20 records of 100 bytes: one batch over MaxMessageBytes
		p.Produce(ctx, &record.Record{Value: bytes.Repeat([]byte("a"), 100)}, nil)
	}
	p.TryProduce(ctx, &record.Record{Value: []byte("b")}, func(_ *record.Record, err error) { fullErr = err })
	require.ErrorIs(t, fullErr, producer.ErrMaxBuffered)
	require.NoError(t, p.Flush(ctx)) // PublishAsyncComplete
	require.NoError(t, firstErr)
	require.EqualValues(t, 0, first.Offset)
	err = p.ProduceSync(ctx, &record.Record{Value: bytes.Repeat([]byte("c"), 2000)})
	require.ErrorIs(t, err, producer.ErrRecordTooLarge)
	require.NoError(t, p.Close())

	_, err = b.DeleteRecords(ctx, "orders", 0, 5)
	require.NoError(t, err)
	info, err := b.DescribeTopic(ctx, "orders")
	require.NoError(t, err)
	st := info.Partitions[0]
	require.EqualValues(t, 15, st.HighWatermark-st.LogStartOffset) // Msgs
	require.EqualValues(t, 5, st.LogStartOffset)                   // FirstSeq
	require.EqualValues(t, 19, st.HighWatermark-1)                 // LastSeq
	require.Positive(t, st.Size)                                   // Bytes
	require.NoError(t, b.AlterTopicConfig(ctx, "orders", log.Config{MaxMessageBytes: 1000, RetentionTime: -1}))

	_, err = runnel.Open(runnel.Config{Dir: dir})
	require.ErrorIs(t, err, vfs.ErrLocked)
	require.NoError(t, b.Close())
	b, err = runnel.Open(runnel.Config{Dir: dir})
	require.NoError(t, err)
	require.Len(t, runneltest.ConsumeAll(t, b, "orders"), 15)
	info, err = b.DescribeTopic(ctx, "orders")
	require.NoError(t, err)
	require.Equal(t, time.Duration(-1), info.Overrides.RetentionTime)
	require.NoError(t, b.DeleteTopic(ctx, "orders"))
}

// TestJetStreamWorkQueueDeleteIsDurableAtReturn: a port of a WorkQueuePolicy
// stream deletes what its consumer handled with DeleteRecords, which, unlike
// a JetStream ack, writes and fsyncs the log start offset checkpoint before
// it returns (a power cut right after it brings nothing back), so each call
// costs an fsync: the README's row says to call it now and then, not per
// record.
func TestJetStreamWorkQueueDeleteIsDurableAtReturn(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	b, err := runnel.Open(runnel.Config{Dir: "/data", FS: fs})
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.CreateTopic(ctx, "jobs", log.TopicConfig{Partitions: 1}))
	runneltest.ProduceValues(t, b, "jobs", "a", "b", "c")
	_, err = b.DeleteRecords(ctx, "jobs", 0, 2)
	require.NoError(t, err)

	after, err := runnel.Open(runnel.Config{Dir: "/data", FS: fs.CrashClone(vfs.CrashOptions{})})
	require.NoError(t, err)
	defer after.Close()
	info, err := after.DescribeTopic(ctx, "jobs")
	require.NoError(t, err)
	require.EqualValues(t, 2, info.Partitions[0].LogStartOffset)
}

// TestJetStreamGetMsgIsAt: JetStream's GetMsg(seq) is a consumer assigned
// At(offset), its first record (offsets count from 0, sequences from 1).
func TestJetStreamGetMsgIsAt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testkit.HangGuard)
	defer cancel()
	b := runneltest.NewBroker(t, runneltest.Topic("s", 1))
	runneltest.ProduceValues(t, b, "s", "seq1", "seq2", "seq3")
	c := runneltest.NewConsumer(t, b)
	require.NoError(t, c.Assign("s", 0, consumer.At(1)))
	for r, err := range c.Records(ctx) {
		require.NoError(t, err)
		require.Equal(t, "seq2", string(r.Value))
		require.EqualValues(t, 1, r.Offset)
		break
	}
}
