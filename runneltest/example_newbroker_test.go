package runneltest_test

import (
	"fmt"
	"testing"

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
