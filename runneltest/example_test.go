package runneltest_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
)

// A unit test with runneltest: in a _test.go file, the body below is a
// test's,
//
//	func TestSignups(t *testing.T) { ... }
//
// (an example gets no *testing.T, so this one hands the body a stand-in,
// which runs t.Cleanup's functions when the body returns, as a test does).
func Example() {
	runTest(func(t testing.TB) {
		b := runneltest.NewBroker(t, runneltest.Topic("signups", 2)) // in memory, closed by t.Cleanup
		runneltest.Produce(t, b, "signups", &record.Record{Key: []byte("ada@example.com"), Value: []byte("welcome")})
		recs := runneltest.ConsumeAll(t, b, "signups") // all of it, without waiting
		for _, r := range recs {
			fmt.Printf("ConsumeAll: %s-%d@%d %s %s\n", r.Topic, r.Partition, r.Offset, r.Key, r.Value)
		}

		// Code under test that produces in the background: Consume waits
		// for the records (10 s, runneltest.DefaultWait, unless runneltest.Timeout
		// says otherwise; never past the test's deadline).
		p := runneltest.NewProducer(t, b) // flushed and closed by t.Cleanup
		p.Produce(context.Background(), &record.Record{Topic: "signups", Key: []byte("bob@example.com"), Value: []byte("welcome")}, nil)
		for _, r := range runneltest.Consume(t, b, "signups", 2) {
			fmt.Printf("Consume: %s-%d@%d %s %s\n", r.Topic, r.Partition, r.Offset, r.Key, r.Value)
		}
	})
	// Output:
	// ConsumeAll: signups-1@0 ada@example.com welcome
	// Consume: signups-0@0 bob@example.com welcome
	// Consume: signups-1@0 ada@example.com welcome
}

// runTest runs body as go test runs a test: on a goroutine of its own (a
// failure ends it), then t.Cleanup's functions, last registered first.
func runTest(body func(t testing.TB)) {
	t := &exampleT{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		body(t)
	}()
	<-done
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

// exampleT stands in for a *testing.T in the example: it has what
// runneltest calls.
type exampleT struct {
	testing.TB // nil: a method not below would panic
	cleanups   []func()
}

func (t *exampleT) Helper()          {}
func (t *exampleT) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Errorf(format string, args ...any) {
	fmt.Printf("FAIL: "+format+"\n", args...)
}
func (t *exampleT) Fatalf(format string, args ...any) {
	t.Errorf(format, args...)
	runtime.Goexit()
}
