package peers

import (
	"context"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/runnel/runnel/benchmarks/internal/e2e"
)

// TestKgoProducerSettings: the kgo producers of kfake's runs get the
// settings every system gets (e2e.ProducerConfig as the workloads fill
// it), at both acks levels. In particular kgo without idempotence
// (acks=1) keeps e2e.MaxInFlight requests in flight, as runnel's producer
// and kgo's idempotent producer do, not its default of 1; and keyless
// records go to a sticky partition that changes with each batch, as
// runnel's default partitioner does, not every 64 KiB (kgo's default).
func TestKgoProducerSettings(t *testing.T) {
	defer goleak.VerifyNone(t)
	tg, err := openKfake(context.Background(), e2e.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	for _, acks := range []e2e.Acks{e2e.AcksLeader, e2e.AcksAll} {
		p, err := tg.NewProducer(e2e.ProducerConfig{Acks: acks, Linger: e2e.ThroughputLinger,
			BatchMaxBytes: e2e.BatchMaxBytes, MaxBuffered: e2e.MaxBuffered, MaxInFlight: e2e.MaxInFlight})
		if err != nil {
			t.Fatal(err)
		}
		cl := p.(*kgoProducer).cl
		idempotent := !cl.OptValue(kgo.DisableIdempotentWrite).(bool)
		if idempotent != (acks == e2e.AcksAll) {
			t.Errorf("acks=%s: idempotent %v", acks, idempotent)
		}
		for _, c := range []struct {
			name      string
			opt, want any
		}{
			{"linger", kgo.ProducerLinger, e2e.ThroughputLinger},
			{"batch max bytes", kgo.ProducerBatchMaxBytes, int32(e2e.BatchMaxBytes)},
			{"max buffered records", kgo.MaxBufferedRecords, int64(e2e.MaxBuffered)},
		} {
			if got := cl.OptValue(c.opt); got != c.want {
				t.Errorf("acks=%s: %s %v (%T), want %v (%T)", acks, c.name, got, got, c.want, c.want)
			}
		}
		if got, want := fmt.Sprintf("%T", cl.OptValue(kgo.RecordPartitioner)), fmt.Sprintf("%T", kgo.StickyKeyPartitioner(nil)); got != want {
			t.Errorf("acks=%s: partitioner %s, want %s (runnel's: producer.StickyKeyPartitioner)", acks, got, want)
		}
		// Idempotent, kgo raises its in-flight limit to 5 by itself after
		// the first response (and refuses the option); otherwise the
		// option is the limit.
		if !idempotent {
			if got := cl.OptValue(kgo.MaxProduceRequestsInflightPerBroker); got != e2e.MaxInFlight {
				t.Errorf("acks=%s: %v requests in flight, want %d", acks, got, e2e.MaxInFlight)
			}
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
