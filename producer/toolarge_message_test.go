package producer_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
)

// TestRecordTooLargeNamesItsLimit: a record too large fails with
// ErrRecordTooLarge whichever limit it passes, and the message names the
// one it passed — the producer's BatchMaxBytes, or the topic's
// max.message.bytes — and not the other (the sentinel's text once said
// "larger than max.message.bytes" for both).
func TestRecordTooLargeNamesItsLimit(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.TopicConfig("small", log.TopicConfig{Partitions: 1, Config: log.Config{MaxMessageBytes: 1000}}))
	p := runneltest.NewProducer(t, b, producer.BatchMaxBytes(4096))
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		size      int
		want, not string
	}{
		{"BatchMaxBytes", 8192, "BatchMaxBytes", "max.message.bytes"},
		{"max.message.bytes", 2000, "max.message.bytes (1000)", "BatchMaxBytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.ProduceSync(ctx, &record.Record{Topic: "small", Value: make([]byte, tc.size)})
			if !errors.Is(err, producer.ErrRecordTooLarge) {
				t.Fatalf("got %v, want ErrRecordTooLarge", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, tc.not) {
				t.Fatalf("message %q: want it to name %q and not %q", msg, tc.want, tc.not)
			}
		})
	}
}
