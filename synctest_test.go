package runnel

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func logStart(t *testing.T, b *Broker, topic string) int64 {
	t.Helper()
	info, err := b.DescribeTopic(context.Background(), topic)
	require.NoError(t, err)
	return info.Partitions[0].LogStartOffset
}

// sleepTo advances the bubble's clock to at and lets the broker's
// goroutines run to where they block.
func sleepTo(at time.Time) {
	time.Sleep(time.Until(at))
	synctest.Wait()
}

func TestSynctestMaintenanceRetention(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		b := open(t, Config{MaintenanceInterval: time.Minute})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1, Config: log.Config{RetentionTime: time.Hour}}))
		produce(t, b, "t", 0, "a")
		sleepTo(t0.Add(time.Hour))
		require.Zero(t, logStart(t, b, "t"), "deleted at retention.ms, not past it")
		sleepTo(t0.Add(time.Hour + time.Minute - time.Nanosecond))
		require.Zero(t, logStart(t, b, "t"), "deleted between two maintenance runs")
		sleepTo(t0.Add(time.Hour + time.Minute))
		require.EqualValues(t, 1, logStart(t, b, "t"))
	})
}

func TestSynctestLogAppendTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1, Config: log.Config{TimestampType: log.LogAppendTime}}))
		time.Sleep(1234567 * time.Microsecond)
		r := produce(t, b, "t", 0, "a")
		require.Equal(t, time.Now().UnixMilli(), r.LogAppendTime)
		resp, err := b.Fetch(t.Context(), &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t"}}})
		require.NoError(t, err)
		for bt, err := range record.Batches(resp.Partitions[0].Records) {
			require.NoError(t, err)
			require.Equal(t, time.Now().UnixMilli(), bt.MaxTimestamp())
		}
	})
}

// durableRecords is how many records of topic t a crash now would keep.
func durableRecords(t *testing.T, mem *vfs.MemFS) int64 {
	b, err := Open(Config{FS: mem.CrashClone(vfs.CrashOptions{})})
	require.NoError(t, err)
	defer b.Close()
	info, err := b.DescribeTopic(t.Context(), "t")
	require.NoError(t, err)
	return info.Partitions[0].LogEndOffset
}

func TestSynctestFlushMs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		mem := vfs.NewMem()
		b := open(t, Config{FS: mem, MaintenanceInterval: time.Second})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1, Config: log.Config{Sync: log.SyncPeriodic, FlushInterval: 10 * time.Second}}))
		time.Sleep(500 * time.Millisecond)
		produce(t, b, "t", 0, "a")
		sleepTo(t0.Add(10*time.Second - time.Nanosecond))
		require.Zero(t, durableRecords(t, mem), "fsynced before flush.ms")
		sleepTo(t0.Add(10 * time.Second))
		require.EqualValues(t, 1, durableRecords(t, mem), "not fsynced at flush.ms")
	})
}

// idempotentSend returns a function that produces one batch of an
// idempotent producer (a new producer id, sequence 0) to partition 0 of
// topic, the same batch each time it is called: its first call appends
// it, the next ones are its retries, answered as duplicates while the
// broker remembers the producer id.
func idempotentSend(t *testing.T, b *Broker, topic string) func() api.ProduceResponse {
	t.Helper()
	pid, epoch, err := b.InitProducerID(t.Context())
	require.NoError(t, err)
	var bl record.Builder
	bl.Reset()
	bl.SetProducer(pid, epoch, 0)
	bl.Append(time.Now().UnixMilli(), nil, []byte("v"), nil)
	data, err := bl.AppendTo(nil, compression.None)
	require.NoError(t, err)
	return func() api.ProduceResponse {
		r, err := b.Produce(t.Context(), &api.ProduceRequest{Topic: topic, Acks: api.AcksAll, Batches: append([]byte(nil), data...)})
		require.NoError(t, err)
		return r
	}
}

func TestSynctestProducerIDExpiration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		b := open(t, Config{MaintenanceInterval: time.Minute, ProducerIDExpiration: time.Hour})
		ctx := t.Context()
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
		send := idempotentSend(t, b, "t")
		require.False(t, send().Duplicate)
		sleepTo(t0.Add(time.Hour - time.Nanosecond))
		require.True(t, send().Duplicate)
		// The duplicate does not refresh the id's last append.
		sleepTo(t0.Add(time.Hour))
		r := send()
		require.False(t, r.Duplicate, "the producer id outlived its expiration")
		require.EqualValues(t, 1, r.BaseOffset)
	})
}

func TestSynctestFetchMaxWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 2}))
		t0 := time.Now()
		resp, err := b.Fetch(t.Context(), &api.FetchRequest{MaxWait: time.Second, Partitions: []api.FetchPartition{{Topic: "t"}, {Topic: "t", Partition: 1}}})
		require.NoError(t, err)
		require.Empty(t, resp.Partitions[0].Records)
		require.Equal(t, t0.Add(time.Second), time.Now())
		x := batch(t, "x") // stamped with the time now, not at the append
		go func() {
			time.Sleep(300 * time.Millisecond)
			_, err := b.Produce(context.Background(), &api.ProduceRequest{Topic: "t", Partition: 1, Acks: api.AcksAll, Batches: x})
			assert.NoError(t, err)
		}()
		t1 := time.Now()
		resp, err = b.Fetch(t.Context(), &api.FetchRequest{MaxWait: time.Second, Partitions: []api.FetchPartition{{Topic: "t"}, {Topic: "t", Partition: 1}}})
		require.NoError(t, err)
		require.NotEmpty(t, resp.Partitions[1].Records)
		require.Equal(t, t1.Add(300*time.Millisecond), time.Now())
	})
}

func (b *Broker) testLog(t *testing.T, topic string) *log.Log {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.topics[topic].Partitions[0].Log()
}

func keyed(t *testing.T, kv ...string) []byte {
	t.Helper()
	var bl record.Builder
	bl.Reset()
	for i := 0; i < len(kv); i += 2 {
		bl.Append(time.Now().UnixMilli(), []byte(kv[i]), []byte(kv[i+1]), nil)
	}
	data, err := bl.AppendTo(nil, compression.None)
	require.NoError(t, err)
	return data
}

// segment.ms rolls the active segment at the first append more than
// segment.ms after its first batch (by the records' timestamps, here the
// fake clock's), as Kafka's; and max.compaction.lag.ms, shorter, rolls
// it sooner, then makes the next maintenance run compact a log whose
// dirty ratio alone would not.
func TestSynctestSegmentTimeAndCompactionLag(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		b := open(t, Config{MaintenanceInterval: time.Minute})
		require.NoError(t, b.CreateTopic(t.Context(), "s", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentTime: time.Hour}}))
		require.NoError(t, b.CreateTopic(t.Context(), "c", log.TopicConfig{Partitions: 1, Config: log.Config{
			CleanupPolicy: log.Compact, MaxCompactionLag: 10 * time.Minute, MinCleanableDirtyRatio: 1}}))
		put := func(topic string, kv ...string) {
			_, err := b.Produce(t.Context(), &api.ProduceRequest{Topic: topic, Acks: api.AcksAll, Batches: keyed(t, kv...)})
			require.NoError(t, err)
		}
		put("s", "k", "1")
		put("c", "a", "1", "a", "2")
		time.Sleep(10 * time.Minute)
		put("c", "b", "1") // exactly the lag: no roll
		require.Equal(t, 1, b.testLog(t, "c").Segments())
		time.Sleep(time.Millisecond)
		put("c", "b", "2") // past it
		require.Equal(t, 2, b.testLog(t, "c").Segments())
		sleepTo(t0.Add(11*time.Minute - time.Nanosecond))
		fetchFirst := func() int64 {
			resp, err := b.Fetch(t.Context(), &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "c"}}})
			require.NoError(t, err)
			for bt, err := range record.Batches(resp.Partitions[0].Records) {
				require.NoError(t, err)
				for r, err := range bt.Records() {
					require.NoError(t, err)
					return r.Offset
				}
			}
			return -1
		}
		require.Zero(t, fetchFirst(), "compacted before the maintenance run")
		sleepTo(t0.Add(11 * time.Minute))
		require.EqualValues(t, 1, fetchFirst(), "not compacted at the first maintenance run past max.compaction.lag.ms")

		sleepTo(t0.Add(time.Hour))
		put("s", "k", "2")
		require.Equal(t, 1, b.testLog(t, "s").Segments(), "rolled at segment.ms, not past it")
		time.Sleep(time.Millisecond)
		put("s", "k", "3")
		require.Equal(t, 2, b.testLog(t, "s").Segments())
	})
}
