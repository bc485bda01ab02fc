package runnel_test

import (
	"bytes"
	"context"
	"math"
	"testing"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/runneltest"
)

// fetchCapClients opens a broker on disk with a cap of 64 KiB
// (Config.FetchMaxBytes) and a topic t of three partitions of 1 MiB
// (64 batches of 16 KiB each), and returns it with the size of a batch.
func fetchCapClients(t *testing.T) (*runnel.Broker, int) {
	t.Helper()
	b := runneltest.NewBroker(t, runneltest.Config(runnel.Config{Dir: t.TempDir(), FetchMaxBytes: 64 << 10}),
		runneltest.TopicConfig("t", log.TopicConfig{Partitions: 3, Config: log.Config{Sync: log.SyncNever}}))
	batch := memBatch(t, 4, nil, bytes.Repeat([]byte("v"), 4<<10), compression.None)
	for p := range int32(3) {
		memProduce(t, b, "t", p, batch, 64)
	}
	return b, len(batch)
}

// A consumer's FetchMaxBytes stays a client-side setting (Kafka's
// consumer fetch.max.bytes): a consumer that asks for math.MaxInt32, over
// partitions of MaxInt32, gets at most the broker's cap a poll, and reads
// on. Before: its first poll answered the 3 MiB the partitions held.
func TestConsumerTakesTheFetchCap(t *testing.T) {
	b, one := fetchCapClients(t)
	c, err := consumer.New(b, consumer.FetchMaxBytes(math.MaxInt32), consumer.FetchMaxPartitionBytes(math.MaxInt32))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for p := range int32(3) {
		if err := c.Assign("t", p, consumer.Start()); err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for polls := 0; total < 3*64*one; polls++ {
		if polls > 3*64 {
			t.Fatalf("%d polls read %d bytes of %d", polls, total, 3*64*one)
		}
		fs, err := c.Poll(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, f := range fs {
			if f.Err != nil {
				t.Fatal(f.Err)
			}
			got += len(f.Batches)
		}
		if got > 64<<10 {
			t.Fatalf("poll %d: %d bytes, past the broker's cap of %d", polls, got, 64<<10)
		}
		total += got
	}
}

// runneltest's Faults hands a fetch on to the broker, which caps it: the
// partitions a FailPartitions rule leaves are fetched within the cap.
// Before: the 2 MiB they held.
func TestFaultsTakeTheFetchCap(t *testing.T) {
	b, _ := fetchCapClients(t)
	f := runneltest.NewFaults(t, b)
	f.Add(runneltest.Fault{Op: runneltest.OpFetch, Topic: "t", Partitions: []int32{1}, Action: runneltest.FailPartitions,
		Err: api.ErrNotLeader, Count: runneltest.Unlimited})
	for _, reqMax := range []int{math.MaxInt32, 0} {
		resp, err := f.Fetch(context.Background(), &api.FetchRequest{MaxBytes: reqMax, Partitions: []api.FetchPartition{
			{Topic: "t", MaxBytes: math.MaxInt32}, {Topic: "t", Partition: 1}, {Topic: "t", Partition: 2, MaxBytes: math.MaxInt32}}})
		if err != nil {
			t.Fatal(err)
		}
		got := len(resp.Partitions[0].Records) + len(resp.Partitions[2].Records)
		if got == 0 || got > 64<<10 {
			t.Fatalf("MaxBytes %d: %d bytes answered, want some and at most the cap of %d", reqMax, got, 64<<10)
		}
		if resp.Partitions[1].Err == nil {
			t.Fatal("the rule's partition was fetched")
		}
	}
}
