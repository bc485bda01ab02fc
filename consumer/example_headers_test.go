package consumer_test

import (
	"context"
	"fmt"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
)

// stoppedClock is a broker's clock stopped at one time, so that the
// LogAppendTime below is the same at every run.
type stoppedClock struct{ t time.Time }

func (c stoppedClock) Now() time.Time { return c.t }

// A record's headers and timestamp, as a consumer reads them. Headers
// come back in order, a key possibly repeated. The timestamp is the
// producer's (CreateTime, the default: the record's own Timestamp, or
// the time Produce buffered it), or, on a topic whose TimestampType is
// LogAppendTime, the broker's at the append.
func Example_headers() {
	ctx := context.Background()
	noon := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	b, err := runnel.Open(runnel.Config{Clock: stoppedClock{noon}}) // in memory
	if err != nil {
		panic(err)
	}
	defer b.Close()
	if err := b.CreateTopic(ctx, "events", log.TopicConfig{Partitions: 1}); err != nil {
		panic(err)
	}
	appendTime := log.TopicConfig{Partitions: 1, Config: log.Config{TimestampType: log.LogAppendTime}}
	if err := b.CreateTopic(ctx, "audit", appendTime); err != nil {
		panic(err)
	}
	p, err := producer.New(b)
	if err != nil {
		panic(err)
	}
	defer p.Close()
	c, err := consumer.New(b)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	for _, topic := range []string{"events", "audit"} {
		r := &record.Record{Topic: topic, Value: []byte("signed in"), Timestamp: noon.Add(-time.Minute),
			Headers: []record.Header{{Key: "trace-id", Value: []byte("7f3a")}, {Key: "tag", Value: []byte("web")}, {Key: "tag", Value: []byte("eu")}}}
		if err := p.ProduceSync(ctx, r); err != nil {
			panic(err)
		}
		if err := c.Assign(topic, 0, consumer.Start()); err != nil {
			panic(err)
		}
	}

	ctx, cancel := context.WithTimeout(ctx, 10*time.Second) // bounds the wait, should records be missing
	defer cancel()
	read := 0
	for rec, err := range c.Records(ctx) {
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s: %s at %s (%v)", rec.Topic, rec.Value, rec.Timestamp.UTC().Format("15:04"), rec.TimestampType)
		for _, h := range rec.Headers {
			fmt.Printf(" %s=%s", h.Key, h.Value)
		}
		fmt.Println()
		if read++; read == 2 {
			break
		}
	}
	// Unordered output:
	// events: signed in at 11:59 (CreateTime) trace-id=7f3a tag=web tag=eu
	// audit: signed in at 12:00 (LogAppendTime) trace-id=7f3a tag=web tag=eu
}
