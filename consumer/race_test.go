package consumer_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// A change made by another goroutine while a Records loop is between its
// checks and the move of its position, at the record at offset 2 (a test
// hook runs it there): once the change has returned, the loop yields no
// record of the fetch it had, not even the one in hand. For a Seek (or
// Assign) to the very offset the loop is at, the old and the new position
// are the same number: the fetch's answer is told stale by the change
// itself, not by the offset. The client answers with other records once
// the change is made, as a topic deleted and created again would (a Seek
// forgets the topic ID), so that a record of the old fetch shows.
func TestChangeRacingRecordsLoop(t *testing.T) {
	tp := api.TopicPartition{Topic: "t", Partition: 0}
	for _, tc := range []struct {
		name   string
		change func(*consumer.Consumer) error
		ends   bool     // the test ends the loop after the change
		want   []string // what the loop yields
		pos    int64    // the position afterwards
	}{
		{"seek to the same offset", func(c *consumer.Consumer) error { return c.Seek("t", 0, consumer.At(2)) },
			false, []string{"a0", "a1", "b2", "b3"}, 4},
		{"assign at the same offset", func(c *consumer.Consumer) error { return c.Assign("t", 0, consumer.At(2)) },
			false, []string{"a0", "a1", "b2", "b3"}, 4},
		{"seek back", func(c *consumer.Consumer) error { return c.Seek("t", 0, consumer.At(1)) },
			false, []string{"a0", "a1", "b1", "b2", "b3"}, 4},
		{"pause", func(c *consumer.Consumer) error { c.Pause(tp); return nil },
			true, []string{"a0", "a1"}, 2},
		{"close", func(c *consumer.Consumer) error { return c.Close() },
			true, []string{"a0", "a1"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := batchAt(t, 0, "a0", "a1", "a2", "a3")
			after := batchAt(t, 0, "b0", "b1", "b2", "b3")
			var changed atomic.Bool
			client := &fakeClient{t: t, fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
				data := before
				if changed.Load() {
					data = after
				}
				return api.FetchResponse{Partitions: []api.FetchedPartition{{Topic: "t", Partition: 0, HighWatermark: 4, Records: data}}}, nil
			}}
			c := newConsumer(t, client)
			require.NoError(t, c.Assign("t", 0, consumer.At(0)))
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			consumer.SetBeforeAdvance(c, func(r *record.Record) {
				if r.Offset != 2 || changed.Load() {
					return
				}
				changed.Store(true)
				require.NoError(t, recv(t, async(func() error { return tc.change(c) })))
				if tc.ends {
					cancel()
				}
			})
			var got []string
			for r, err := range c.Records(ctx) {
				if tc.ends && ctxEnd(ctx, err) {
					continue // the last (not after a Close)
				}
				require.NoError(t, err)
				got = append(got, string(r.Value))
				if !tc.ends && len(got) == len(tc.want) {
					break
				}
			}
			require.Equal(t, tc.want, got)
			pos, ok := c.Position("t", 0)
			require.True(t, ok)
			require.Equal(t, tc.pos, pos)
		})
	}
}
