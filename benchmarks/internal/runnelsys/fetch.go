package runnelsys

import (
	"context"
	"fmt"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/benchmarks/internal/e2e"
	"github.com/runnel/runnel/record"
)

// fetchConsumer reads every partition of a topic from its start with
// (*runnel.Broker).Fetch: what package consumer does, without its
// position tracking and retries (stand-in until it is merged).
type fetchConsumer struct {
	b   *runnel.Broker
	req api.FetchRequest
}

func newFetchConsumer(b *runnel.Broker, cfg e2e.ConsumerConfig) *fetchConsumer {
	c := &fetchConsumer{b: b, req: api.FetchRequest{MaxWait: cfg.MaxWait, MinBytes: 1, MaxBytes: 50 << 20}}
	for p := range cfg.Partitions {
		c.req.Partitions = append(c.req.Partitions, api.FetchPartition{Topic: cfg.Topic, Partition: int32(p), MaxBytes: 1 << 20})
	}
	return c
}

func (c *fetchConsumer) Poll(ctx context.Context, fn func([]byte)) (int, error) {
	resp, err := c.b.Fetch(ctx, &c.req)
	if err != nil {
		return 0, err
	}
	n := 0
	for i, fp := range resp.Partitions {
		if fp.Err != nil {
			return n, fmt.Errorf("%s-%d: %w", fp.Topic, fp.Partition, fp.Err)
		}
		next := &c.req.Partitions[i].Offset
		for b, err := range record.Batches(fp.Records) {
			if err != nil {
				return n, err
			}
			if b.NextOffset() <= *next {
				continue
			}
			for rec, err := range b.Records() {
				if err != nil {
					return n, err
				}
				if rec.Offset < *next {
					continue
				}
				fn(rec.Value)
				n++
			}
			*next = b.NextOffset()
		}
	}
	return n, nil
}

func (c *fetchConsumer) Close() error { return nil }
