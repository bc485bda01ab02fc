package producer_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// holdZero holds every produce request of partition 0 until its ctx ends
// or gate is closed.
type holdZero struct {
	*runnel.Broker
	gate chan struct{}
}

func (h *holdZero) hold(ctx context.Context, req *api.ProduceRequest) error {
	if req.Partition != 0 {
		return nil
	}
	select {
	case <-h.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *holdZero) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	if err := h.hold(ctx, req); err != nil {
		return api.ProduceResponse{}, err
	}
	return h.Broker.Produce(ctx, req)
}

func (h *holdZero) ProduceAsync(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, api.Ack, error) {
	if err := h.hold(ctx, req); err != nil {
		return api.ProduceResponse{}, nil, err
	}
	return h.Broker.ProduceAsync(ctx, req)
}

// A partition whose requests hang does not hold back the sends of the
// others, whatever MaxInFlight and Linger.
func TestFairHotPartitionDoesNotBlockOthers(t *testing.T) {
	for _, inFlight := range []int{1, 5} {
		for _, linger := range []time.Duration{0, 10 * time.Millisecond} {
			t.Run(fmt.Sprintf("inflight=%d/linger=%v", inFlight, linger), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					b, err := runnel.Open(runnel.Config{})
					require.NoError(t, err)
					defer b.Close()
					require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 4}))
					h := &holdZero{Broker: b, gate: make(chan struct{})}
					p, err := producer.New(h, producer.RecordPartitioner(producer.ManualPartitioner()),
						producer.MaxInFlight(inFlight), producer.Linger(linger), producer.BatchMaxBytes(1024),
						producer.MaxBufferedRecords(1000))
					require.NoError(t, err)
					defer p.Close()
					// partition 0 gets many full batches, all stuck
					for range 200 {
						p.Produce(t.Context(), &record.Record{Topic: "t", Partition: 0, Value: make([]byte, 100)}, nil)
					}
					for part := int32(1); part < 4; part++ {
						require.NoError(t, p.ProduceSync(t.Context(), &record.Record{Topic: "t", Partition: part, Value: []byte("v")}))
					}
					close(h.gate)
					require.NoError(t, p.Flush(t.Context()))
				})
			})
		}
	}
}

// Produce calls waiting for buffer space never wait out a lingering
// batch: every batch that lingers while one waits goes at once, however
// many partitions and producing goroutines.
func TestFairSpaceWaitersCutLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := runnel.Open(runnel.Config{})
		require.NoError(t, err)
		defer b.Close()
		const parts = 8
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: parts}))
		p, err := producer.New(b, producer.RecordPartitioner(producer.ManualPartitioner()),
			producer.Linger(time.Hour), producer.MaxBufferedRecords(3), producer.DeliveryTimeout(10*time.Hour))
		require.NoError(t, err)
		defer p.Close()
		t0 := time.Now()
		done := make(chan struct{})
		for g := range 16 {
			go func() {
				defer func() { done <- struct{}{} }()
				for i := range 20 {
					part := int32((g*7 + i*3) % parts)
					p.Produce(t.Context(), &record.Record{Topic: "t", Partition: part, Value: []byte("v")}, nil)
				}
			}()
		}
		for range 16 {
			<-done
		}
		require.Equal(t, t0, time.Now(), "a Produce waited for a linger")
	})
}
