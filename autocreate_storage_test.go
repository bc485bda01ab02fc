package runnel

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// fullTopicFS is a fullFS on which creating the files of topic's
// partitions fails.
func fullTopicFS(topic string, full *atomic.Bool, failed chan<- struct{}) vfs.FS {
	return fullFS(full, failed, func(op vfs.Op, name string) bool {
		return (op == vfs.OpCreate || op == vfs.OpMkdir) && strings.HasPrefix(filepath.Base(name), topic+"-")
	})
}

// A topic that AutoCreateTopics cannot create for a full disk fails the
// look-up (and the produce) with KAFKA_STORAGE_ERROR, retriable, the file
// system's error beside it, as InitProducerID's counter and a partition's
// failed append do: a producer retries until its delivery timeout, and its
// records go once room is freed. The error was syscall.ENOSPC alone, which
// no error table calls retriable, so the producer failed its records at
// once. (Kafka's producer waits for the topic's metadata, which answers a
// partition whose log directory failed with a retriable error.)
func TestAutoCreateFullDiskRetried(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var full atomic.Bool
	failed := make(chan struct{}, 1)
	b := open(t, Config{FS: fullTopicFS("orders", &full, failed), AutoCreateTopics: true})
	full.Store(true)

	_, err := b.Partitions(ctx, "orders")
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.ErrorIs(t, err, ErrStorage)
	require.True(t, api.IsRetriable(err), "retriable: %v", err)
	_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "orders", Acks: api.AcksAll})
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.ErrorIs(t, err, ErrStorage)
	require.Empty(t, b.Topics())
	testkit.Await(t, failed, "the full disk's refusal of the auto-create")

	p, err := producer.New(b, producer.DefaultTopic("orders"), producer.RetryBackoff(time.Millisecond),
		producer.DeliveryTimeout(time.Minute))
	require.NoError(t, err)
	defer p.Close()
	done := make(chan error, 1)
	// Produce waits for the topic's partition count (the look-up that
	// creates it) before it buffers the record.
	go p.Produce(ctx, &record.Record{Value: []byte("a")}, func(_ *record.Record, err error) { done <- err })
	for range 2 { // the producer's look-up, and a retry
		select {
		case <-failed:
		case err := <-done:
			t.Fatalf("the record failed on the full disk without a retry: %v", err)
		case <-time.After(testkit.HangGuard):
			t.Fatalf("the auto-create's write did not fail on the full disk, nor the record's promise come, within %v", testkit.HangGuard)
		}
	}
	full.Store(false) // room freed
	require.NoError(t, testkit.Await(t, done, "the record's promise"))
	require.Equal(t, []string{"orders"}, b.Topics())
}

// What another try of an auto-creation would meet again is not made
// ErrStorage: a directory of the partition's name holding foreign files
// (log.ErrNotLogDir), a name too long for the file system
// (vfs.ErrNameTooLong), a refusal with a Kafka code (ErrInvalidTopic),
// ctx's error.
func TestAutoCreatePermanentErrorsStay(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	long := vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpMkdir && strings.HasPrefix(filepath.Base(name), "long-") {
			return fmt.Errorf("mkdir %s: %w", name, vfs.ErrNameTooLong)
		}
		return nil
	})
	b := open(t, Config{FS: vfs.WithFaults(mem, long), AutoCreateTopics: true})
	require.NoError(t, mem.MkdirAll(filepath.Join(b.root, "foreign-0"), 0o755))
	f, err := mem.Create(filepath.Join(b.root, "foreign-0", "notes.txt"))
	require.NoError(t, err)
	require.NoError(t, f.Close())

	_, err = b.Partitions(ctx, "foreign")
	require.ErrorIs(t, err, log.ErrNotLogDir)
	require.NotErrorIs(t, err, ErrStorage)
	require.False(t, api.IsRetriable(err))
	_, err = b.Partitions(ctx, "long")
	require.ErrorIs(t, err, vfs.ErrNameTooLong)
	require.NotErrorIs(t, err, ErrStorage)
	require.False(t, api.IsRetriable(err))
	_, err = b.Partitions(ctx, "CON") // a Kafka-coded refusal: ErrInvalidTopic
	require.ErrorIs(t, err, ErrInvalidTopic)
	require.NotErrorIs(t, err, ErrStorage)
	done, cancel := context.WithCancel(ctx)
	cancel()
	_, err = b.Partitions(done, "orders")
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, ErrStorage)
}

// TestAutoCreateLogsOnceForConcurrentCallers: two produces to a
// topic that does not exist, under AutoCreateTopics, both waiting for
// the admin token to create it: the first creates it and logs
// "auto-created topic", the second finds it created and logs nothing;
// both append. Kills the mutant that logs the line whether or not the
// call created the topic (two lines for one topic).
func TestAutoCreateLogsOnceForConcurrentCallers(t *testing.T) {
	ctx := context.Background()
	var lines atomic.Int32
	b := open(t, Config{AutoCreateTopics: true, Logger: slog.New(testkit.LineFunc(func(r slog.Record) {
		if r.Message == "auto-created topic" {
			lines.Add(1)
		}
	}))})
	b.admin <- struct{}{} // the two wait for it
	held := sync.OnceFunc(func() { <-b.admin })
	defer held()
	errs := make(chan error, 2)
	for _, batches := range [][]byte{batch(t, "a"), batch(t, "b")} {
		go func() {
			_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "auto", Acks: api.AcksAll, Batches: batches})
			errs <- err
		}()
	}
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(testkit.HangGuard); strings.Count(string(buf[:runtime.Stack(buf, true)]), "runnel.(*Broker).autoCreate(") < 2; runtime.Gosched() {
		require.False(t, time.Now().After(deadline), "the two produces did not both wait to auto-create the topic")
	}
	held()
	for range 2 {
		require.NoError(t, testkit.Await(t, errs, "Produce's answer"))
	}
	require.Equal(t, []string{"auto"}, b.Topics())
	require.EqualValues(t, 1, lines.Load(), "auto-created topic lines for one topic")
}
