package runneltest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
)

// The three lines of a unit test, where kfake needs a cluster, a kgo
// client and a poll loop: a broker with its topic (in memory, closed when
// the test ends), a record produced, and every record there is read back
// at once (the key "ada" lands on partition 1 of 2, by Kafka's murmur2,
// as kgo's default partitioner puts it). In a test, t is the test's
// *testing.T; runTest (see Example) stands in for go test here.
func ExampleNewBroker() {
	runTest(func(t testing.TB) {
		b := runneltest.NewBroker(t, runneltest.Topic("signups", 2))
		runneltest.Produce(t, b, "signups", &record.Record{Key: []byte("ada"), Value: []byte("welcome")})
		recs := runneltest.ConsumeAll(t, b, "signups")

		for _, r := range recs {
			fmt.Printf("%s-%d@%d %s=%s\n", r.Topic, r.Partition, r.Offset, r.Key, r.Value)
		}
	})
	// Output:
	// signups-1@0 ada=welcome
}

// A broker configured for the code under test: its own Config (here,
// topics created when first named) and topics with a config of their own
// (here, a compacted one, which refuses records without a key, as Kafka
// does: Produce fails the test, saying why).
func ExampleTopicConfig() {
	runTest(func(t testing.TB) {
		b := runneltest.NewBroker(t,
			runneltest.Config(runnel.Config{AutoCreateTopics: true, DefaultPartitions: 4}),
			runneltest.TopicConfig("prices", log.TopicConfig{Partitions: 1, Config: log.Config{CleanupPolicy: log.Compact}}))

		runneltest.ProduceValues(t, b, "clicks", "/home") // auto-created
		n, err := b.Partitions(context.Background(), "clicks")
		fmt.Println("clicks:", n, "partitions", err)
		runneltest.Produce(t, b, "prices", &record.Record{Key: []byte("apple"), Value: []byte("3")})
		runneltest.ProduceValues(t, b, "prices", "no key")
		fmt.Println("not reached: Produce failed the test")
	})
	// Output:
	// clicks: 4 partitions <nil>
	// FAIL: runneltest: produce to prices-0: runnel/log: invalid record: a compacted topic needs a key on every record (offset delta 0)
}
