package producer_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
)

// ProduceSync waits for every record and returns nil, or one
// *RecordError per failed record, joined: errors.Is and errors.As see
// through to each. Here one record is stored, one names a topic that does
// not exist (auto-creation is off by default), one is larger than the
// topic's max.message.bytes, and one's ctx has ended: none of the three
// was written (see ProduceSync for the errors after which a record may
// have been).
func ExampleProducer_ProduceSync() {
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{}) // in memory
	if err != nil {
		panic(err)
	}
	defer b.Close()
	small := log.TopicConfig{Partitions: 1, Config: log.Config{MaxMessageBytes: 1000}}
	if err := b.CreateTopic(ctx, "orders", small); err != nil {
		panic(err)
	}
	p, err := producer.New(b)
	if err != nil {
		panic(err)
	}
	defer p.Close()

	ok := &record.Record{Topic: "orders", Key: []byte("ada"), Value: []byte("book")}
	err = p.ProduceSync(ctx, ok,
		&record.Record{Topic: "ordres", Value: []byte("typo")},
		&record.Record{Topic: "orders", Value: make([]byte, 2000)})
	fmt.Printf("stored: %s-%d@%d\n", ok.Topic, ok.Partition, ok.Offset)
	fmt.Println("an unknown topic:", errors.Is(err, runnel.ErrUnknownTopic))
	fmt.Println("too large:", errors.Is(err, producer.ErrRecordTooLarge))
	fmt.Println("may have been written:", errors.Is(err, producer.ErrMaybeWritten))
	for _, re := range producer.RecordErrors(err) { // in the order they failed
		fmt.Printf("%s (partition %d): %v\n", re.Record.Topic, re.Partition, re.Err)
	}

	ended, cancel := context.WithCancel(ctx)
	cancel()
	err = p.ProduceSync(ended, &record.Record{Topic: "orders", Value: []byte("late")})
	fmt.Println("ctx ended:", errors.Is(err, context.Canceled), err)
	// Output:
	// stored: orders-0@0
	// an unknown topic: true
	// too large: true
	// may have been written: false
	// ordres (partition -1): runnel: unknown topic or partition: "ordres"
	// orders (partition 0): runnel/log: record batch too large: 2070 bytes, more than max.message.bytes (1000)
	// ctx ended: true runnel/producer: record for orders not sent: context canceled
}
