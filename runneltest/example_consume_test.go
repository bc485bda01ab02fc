package runneltest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel/runneltest"
)

// Consume waits for n records, and fails the test, saying what came, if
// they do not come in time: 10 s (runneltest.DefaultWait) unless Timeout
// says otherwise, and never past the test's deadline. A test that expects
// records from code running in the background thus needs no sleep and no
// poll loop of its own. (runTest, see Example, stands in for go test: its
// t prints a failure as FAIL: and ends the body, as t.Fatalf does.)
func ExampleConsume() {
	runTest(func(t testing.TB) {
		b := runneltest.NewBroker(t, runneltest.Topic("jobs", 1), runneltest.Topic("emails", 2))
		runneltest.ProduceValues(t, b, "jobs", "resize-1", "resize-2") // to partition 0, without keys

		for _, r := range runneltest.Consume(t, b, "jobs", 2) {
			fmt.Printf("%s-%d@%d %s\n", r.Topic, r.Partition, r.Offset, r.Value)
		}
		// Nothing produces to emails: the record never comes, and the
		// failure says how many came, of each partition.
		runneltest.Consume(t, b, "emails", 1, runneltest.Timeout(50*time.Millisecond))
		fmt.Println("not reached: Consume failed the test")
	})
	// Output:
	// jobs-0@0 resize-1
	// jobs-0@1 resize-2
	// FAIL: runneltest: consume "emails": got 0 of 1 records within 50ms (emails-0: 0, emails-1: 0)
}
