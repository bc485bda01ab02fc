package runnel

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// fullFS returns a broker file system on which the operations full
// matches fail with syscall.ENOSPC while isFull is set, sending on failed
// each time one does.
func fullFS(isFull *atomic.Bool, failed chan<- struct{}, full func(op vfs.Op, name string) bool) vfs.FS {
	return vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if isFull.Load() && full(op, name) {
			select {
			case failed <- struct{}{}:
			default:
			}
			return syscall.ENOSPC
		}
		return nil
	}))
}

// fullCounterFS is a fullFS whose writes of the producer id counter
// (through its temporary file) fail.
func fullCounterFS(full *atomic.Bool, failed chan<- struct{}) vfs.FS {
	return fullFS(full, failed, func(op vfs.Op, name string) bool {
		return op == vfs.OpWrite && filepath.Base(name) == metaTmp
	})
}

// An InitProducerID that cannot write the id counter (a full disk) fails
// with KAFKA_STORAGE_ERROR, retriable, the file system's error beside it,
// as a partition's failed append does (log.ErrLogFenced): an idempotent
// producer asks again until its delivery timeout, and its records go once
// room is freed. The error was syscall.ENOSPC alone, which no error table
// calls retriable: the producer's first records failed at once (the test
// fails so on the code before the fix), where records to a partition that
// a full disk fenced are retried. As Kafka's producer retries an
// InitProducerId that fails with a retriable error (its
// KafkaStorageException is one).
//
// In a synctest bubble: the last record's first attempt must be answered
// (syscall.ENOSPC) within its delivery timeout (200 ms), which on the
// real clock a loaded machine could miss (ErrDeliveryTimeout alone).
func TestInitProducerIDFullDiskRetried(t *testing.T) {
	synctest.Test(t, testInitProducerIDFullDiskRetried)
}

func testInitProducerIDFullDiskRetried(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var full atomic.Bool
	failed := make(chan struct{}, 1)
	b := open(t, Config{FS: fullCounterFS(&full, failed)})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	full.Store(true)

	_, _, err := b.InitProducerID(ctx)
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.ErrorIs(t, err, ErrStorage)
	require.True(t, api.IsRetriable(err), "retriable: %v", err)
	require.Equal(t, "KAFKA_STORAGE_ERROR", api.Name(err))
	<-failed

	p, err := producer.New(b, producer.DefaultTopic("t"), producer.RetryBackoff(time.Millisecond),
		producer.DeliveryTimeout(time.Minute))
	require.NoError(t, err)
	defer p.Close()
	done := make(chan error, 1)
	var pid atomic.Int64
	p.Produce(ctx, &record.Record{Value: []byte("a")}, func(r *record.Record, err error) {
		pid.Store(r.ProducerID)
		done <- err
	})
	for range 2 { // the producer's first InitProducerID, and a retry
		select {
		case <-failed:
		case err := <-done:
			t.Fatalf("the record failed on the full disk without a retry: %v", err)
		}
	}
	full.Store(false) // room freed
	require.NoError(t, <-done)
	require.GreaterOrEqual(t, pid.Load(), int64(0), "written by the idempotent producer, with its id")

	// Room never freed: the record fails at its delivery timeout, with the
	// file system's error.
	full.Store(true)
	p2, err := producer.New(b, producer.DefaultTopic("t"), producer.DeliveryTimeout(200*time.Millisecond))
	require.NoError(t, err)
	defer p2.Close()
	err = p2.ProduceSync(ctx, &record.Record{Value: []byte("b")})
	require.ErrorIs(t, err, producer.ErrDeliveryTimeout)
	require.ErrorIs(t, err, syscall.ENOSPC)
}
