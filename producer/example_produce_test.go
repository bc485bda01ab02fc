package producer_test

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
)

// Produce is asynchronous: it buffers the record and returns, and its
// promise runs once the broker has stored the record (its Partition and
// Offset set) or it failed. Flush waits until every promise so far has
// run; it does not return the records' errors, so a caller that wants
// them keeps them from the promises. The promises of one partition run
// in offset order, on the producer's goroutines: guard what they share.
func ExampleProducer_Produce() {
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{}) // in memory
	if err != nil {
		panic(err)
	}
	defer b.Close()
	if err := b.CreateTopic(ctx, "clicks", log.TopicConfig{Partitions: 1}); err != nil {
		panic(err)
	}
	p, err := producer.New(b)
	if err != nil {
		panic(err)
	}
	defer p.Close()

	var (
		mu     sync.Mutex
		stored []string
		failed []error
	)
	promise := func(r *record.Record, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failed = append(failed, err)
			return
		}
		stored = append(stored, fmt.Sprintf("%s-%d@%d %s", r.Topic, r.Partition, r.Offset, r.Value))
	}
	for _, page := range []string{"/home", "/cart", "/pay"} {
		p.Produce(ctx, &record.Record{Topic: "clicks", Value: []byte(page)}, promise)
	}
	p.Produce(ctx, &record.Record{Topic: "clikcs", Value: []byte("/typo")}, promise)

	if err := p.Flush(ctx); err != nil { // every promise above has run
		panic(err)
	}
	for _, s := range stored {
		fmt.Println("stored:", s)
	}
	for _, err := range failed {
		fmt.Println("failed:", errors.Is(err, runnel.ErrUnknownTopic), err)
	}
	// Output:
	// stored: clicks-0@0 /home
	// stored: clicks-0@1 /cart
	// stored: clicks-0@2 /pay
	// failed: true runnel: unknown topic or partition: "clikcs"
}
