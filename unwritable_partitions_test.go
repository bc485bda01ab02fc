package runnel_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// *runnel.Broker tells producers which partitions refuse appends.
var _ producer.HealthClient = (*runnel.Broker)(nil)

// A partition whose log a failed fsync fenced refuses appends until the
// broker opens again: records without a key go to the topic's other
// partitions, as Kafka's producers send them to the partitions that have
// a leader — with a producer that learns it from the refusal of a batch
// of its own, and with one made afterwards, which learns it before its
// first record. A keyed record of that partition's still goes there, and
// fails once its delivery timeout ends. Before, the sticky partitioner
// chose the fenced partition like any other, and its records failed
// after their delivery timeout (two minutes by default). In a synctest
// bubble: each record written must be written within the delivery
// timeout (a second) that the keyed record waits out, which on the real
// clock a loaded machine could miss.
func TestKeylessRecordsAvoidAFencedPartition(t *testing.T) {
	synctest.Test(t, testKeylessRecordsAvoidAFencedPartition)
}

func testKeylessRecordsAvoidAFencedPartition(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var failing atomic.Bool
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && failing.Load() && strings.Contains(filepath.ToSlash(name), "/t-1/") {
			return vfs.ErrInjected
		}
		return nil
	}))
	b, err := runnel.Open(runnel.Config{FS: fsys, Dir: "/d"})
	require.NoError(t, err)
	defer func() { _ = b.Close() }()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 3}))
	down, err := b.UnwritablePartitions(ctx, "t")
	require.NoError(t, err)
	require.Nil(t, down)

	// Records without a key, spread over every partition (a batch each,
	// the sticky partition moving on after each), until one of them
	// meets the failing fsync.
	first, err := producer.New(b, producer.DeliveryTimeout(time.Second))
	require.NoError(t, err)
	defer func() { require.NoError(t, first.Close()) }()
	keyless := func(p *producer.Producer, n int) (by map[int32]int, failed int) {
		by = map[int32]int{}
		for range n {
			r := &record.Record{Topic: "t", Value: []byte("v")}
			if err := p.ProduceSync(ctx, r); err != nil {
				require.ErrorIs(t, err, log.ErrLogFenced)
				failed++
				continue
			}
			by[r.Partition]++
		}
		return by, failed
	}
	by, failed := keyless(first, 30)
	require.Zero(t, failed)
	require.Len(t, by, 3, "the sticky partitioner moves over all of them")

	failing.Store(true)
	by, failed = keyless(first, 60)
	require.Equal(t, 1, failed, "the batch that met the fenced partition, and no other: %v", by)
	require.Zero(t, by[1])
	require.Positive(t, by[0])
	require.Positive(t, by[2])
	down, err = b.UnwritablePartitions(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, []int32{1}, down)

	// A producer made now asks before its first record.
	second, err := producer.New(b, producer.DeliveryTimeout(time.Second))
	require.NoError(t, err)
	defer func() { require.NoError(t, second.Close()) }()
	by, failed = keyless(second, 60)
	require.Zero(t, failed)
	require.Zero(t, by[1])
	require.Positive(t, by[0])
	require.Positive(t, by[2])

	// A keyed record goes to its key's partition, whatever it says.
	var key []byte
	for i := 0; key == nil; i++ {
		if k := []byte{byte(i)}; producer.KeyPartition(k, 3) == 1 {
			key = k
		}
	}
	r := &record.Record{Topic: "t", Key: key, Value: []byte("v")}
	err = second.ProduceSync(ctx, r)
	require.ErrorIs(t, err, log.ErrLogFenced)
	require.ErrorIs(t, err, producer.ErrDeliveryTimeout)
	require.Equal(t, int32(1), r.Partition)

	// Its errors are DescribeTopic's.
	_, err = b.UnwritablePartitions(ctx, "nope")
	require.ErrorIs(t, err, runnel.ErrUnknownTopic)
	_, err = b.UnwritablePartitions(ctx, "not/valid")
	require.ErrorIs(t, err, runnel.ErrInvalidTopic)
	done, cancelDone := context.WithCancel(ctx)
	cancelDone()
	_, err = b.UnwritablePartitions(done, "t")
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, first.Close())
	require.NoError(t, second.Close())
	require.Error(t, b.Close()) // the fenced log's close fails
	_, err = b.UnwritablePartitions(ctx, "t")
	require.ErrorIs(t, err, runnel.ErrClosed)
}

// UnwritablePartitions waits for no partition: one whose lock a config
// change waits for, behind an append stuck in its write to a disk that
// hangs, is not listed (its appends wait; they are not refused), and the
// answer comes at once, where DescribeTopic waits. A producer's first
// record to the topic is not held by it either.
func TestUnwritablePartitionsDoNotWait(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, hang, stuck, release := obsHangingDisk(t)
	require.NoError(t, b.CreateTopic(ctx, "orders", log.TopicConfig{Partitions: 2}))
	p, err := producer.New(b, producer.RecordPartitioner(producer.ManualPartitioner()))
	require.NoError(t, err)
	defer func() { require.NoError(t, p.Close()) }()
	defer release() // first: a failed assertion frees the stuck append, or p.Close waits for it
	produced := obsStuckAppend(t, ctx, p, "orders", hang, stuck)
	altered := make(chan error, 1)
	go func() {
		altered <- b.AlterTopicConfig(ctx, "orders", log.Config{RetentionTime: time.Hour})
	}()
	testkit.AwaitParked(t, obsLockWait("runnel.(*Broker).AlterTopicConfig"))

	down, err := b.UnwritablePartitions(ctx, "orders")
	require.NoError(t, err)
	require.Nil(t, down)
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	_, err = b.DescribeTopic(short, "orders")
	require.ErrorIs(t, err, context.DeadlineExceeded, "DescribeTopic waits for the partition")
	// A new producer's first look at the topic.
	q, err := producer.New(b, producer.DefaultTopic("orders"))
	require.NoError(t, err)
	defer func() { require.NoError(t, q.Close()) }()
	defer release() // before q.Close too
	queued, returned := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(returned)
		q.Produce(ctx, &record.Record{Value: []byte("y")}, func(_ *record.Record, err error) { queued <- err })
	}()
	select {
	case <-returned:
	case <-time.After(testkit.HangGuard):
		t.Fatal("the first Produce to the topic waits for the partition held")
	}

	release()
	require.NoError(t, testkit.Await(t, produced, "the stuck ProduceSync's answer"))
	require.NoError(t, testkit.Await(t, altered, "AlterTopicConfig's answer"))
	require.NoError(t, testkit.Await(t, queued, "Produce's answer"))
}
