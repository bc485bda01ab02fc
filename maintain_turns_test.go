package runnel

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// turnsBroker opens a broker (its own maintenance an hour away) with the
// topics named, of two partitions each, whose every partition holds more
// than its retention.bytes: a maintenance of the partition deletes its
// first segments.
func turnsBroker(t *testing.T, topics ...string) *Broker {
	t.Helper()
	return turnsBrokerWith(t, Config{MaintenanceInterval: time.Hour}, topics...)
}

// turnsBrokerWith is turnsBroker opening the broker with cfg.
func turnsBrokerWith(t *testing.T, cfg Config, topics ...string) *Broker {
	t.Helper()
	ctx := context.Background()
	b := open(t, cfg)
	tcfg := log.Config{SegmentBytes: 2 << 10, RetentionBytes: 4 << 10}
	val := strings.Repeat("v", 300)
	for _, topic := range topics {
		require.NoError(t, b.CreateTopic(ctx, topic, log.TopicConfig{Partitions: 2, Config: tcfg}))
		for p := range int32(2) {
			for range 30 {
				produce(t, b, topic, p, val)
			}
		}
	}
	return b
}

// maintainCut runs a Maintain whose ctx ends once the maintenance of its
// n-th partition has begun (never for n = 0), and returns the partitions
// whose maintenance began, in order.
func maintainCut(t *testing.T, b *Broker, n int) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var begun []string
	testHookMaintainBegins = func(p *log.Partition) {
		begun = append(begun, fmt.Sprintf("%s-%d", p.Topic(), p.ID()))
		if len(begun) == n {
			cancel()
		}
	}
	defer func() { testHookMaintainBegins = nil }()
	err := b.Maintain(ctx)
	if n == 0 {
		require.NoError(t, err)
	} else {
		require.ErrorIs(t, err, context.Canceled)
	}
	return begun
}

// logStarts returns the log start offset of each partition of b's topics.
func logStarts(t *testing.T, b *Broker, topics ...string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, topic := range topics {
		info, err := b.DescribeTopic(context.Background(), topic)
		require.NoError(t, err)
		for _, p := range info.Partitions {
			out[fmt.Sprintf("%s-%d", topic, p.Partition)] = p.LogStartOffset
		}
	}
	return out
}

// TestMaintainCutShortGoesOnWhereItStopped: Maintain calls that each
// run out of time after one partition (maintenance in short slices) take
// the partitions in turn, each call beginning with the partition the one
// before was cut short on: every partition is maintained (its retention
// run) within as many calls as there are partitions. Before, each call
// began again with the first topic, and the later topics were never
// maintained by such calls.
func TestMaintainCutShortGoesOnWhereItStopped(t *testing.T) {
	topics := []string{"a", "b", "c"}
	b := turnsBroker(t, topics...)
	for part, start := range logStarts(t, b, topics...) {
		require.Zero(t, start, "%s before any maintenance", part)
	}
	var calls [][]string
	for range 6 {
		calls = append(calls, maintainCut(t, b, 2))
	}
	require.Equal(t, [][]string{
		{"a-0", "a-1"}, {"a-1", "b-0"}, {"b-0", "b-1"},
		{"b-1", "c-0"}, {"c-0", "c-1"}, {"c-1", "a-0"},
	}, calls, "each call begins with the partition the one before was cut short on")
	for part, start := range logStarts(t, b, topics...) {
		require.Positive(t, start, "%s: its retention ran in one of the calls", part)
	}
}

// TestMaintainCutShortOnItsFirstPartitionGoesPastIt: a call cut short
// on the partition it began with (a partition whose maintenance outlasts
// every call's time) has the next call begin past that partition, not
// with it again: it holds up no other.
func TestMaintainCutShortOnItsFirstPartitionGoesPastIt(t *testing.T) {
	b := turnsBroker(t, "a", "b")
	var calls [][]string
	for range 5 {
		calls = append(calls, maintainCut(t, b, 1))
	}
	require.Equal(t, [][]string{{"a-0"}, {"a-1"}, {"b-0"}, {"b-1"}, {"a-0"}}, calls)
}

// TestMaintainCutShortPlaceOutlivesTopicChanges: the place a cut-short
// Maintain stopped at is a partition's name, not an index: once that
// partition's topic is deleted, the next call begins with the first
// partition after it in order (a topic created since included), and
// wraps around to the first when none is after it. A call that ctx does
// not cut short goes over every partition once, from that place, and
// leaves it where it was.
func TestMaintainCutShortPlaceOutlivesTopicChanges(t *testing.T) {
	ctx := context.Background()
	b := turnsBroker(t, "a", "b", "c")
	require.Equal(t, []string{"a-0", "a-1"}, maintainCut(t, b, 2))
	require.Equal(t, []string{"a-1", "b-0"}, maintainCut(t, b, 2))
	require.Equal(t, []string{"b-0", "b-1", "c-0", "c-1", "a-0", "a-1"}, maintainCut(t, b, 0),
		"a whole pass, from where the last call stopped")
	require.Equal(t, []string{"b-0"}, maintainCut(t, b, 1), "the whole pass left the place where it was")
	// The place is now past b-0.
	require.NoError(t, b.DeleteTopic(ctx, "b"))
	require.NoError(t, b.CreateTopic(ctx, "ba", log.TopicConfig{Partitions: 1}))
	require.Equal(t, []string{"ba-0", "c-0"}, maintainCut(t, b, 2))
	// The place is now c-0.
	require.NoError(t, b.DeleteTopic(ctx, "c"))
	require.Equal(t, []string{"a-0", "a-1"}, maintainCut(t, b, 2), "none after c-0: wraps around")
}

// cancelOnLine is a slog.Handler that calls cancel at the first record
// of message msg whose topic and partition attributes are topic and
// partition: a ctx that ends once that partition's maintenance has done
// what the line tells of.
type cancelOnLine struct {
	msg       string
	topic     string
	partition int64
	cancel    context.CancelFunc
	attrs     []slog.Attr // those of WithAttrs
}

func (h *cancelOnLine) Enabled(context.Context, slog.Level) bool { return true }
func (h *cancelOnLine) Handle(_ context.Context, r slog.Record) error {
	if r.Message != h.msg {
		return nil
	}
	topic, part := "", int64(-1)
	see := func(a slog.Attr) bool {
		switch a.Key {
		case "topic":
			topic = a.Value.String()
		case "partition":
			part = a.Value.Int64()
		}
		return true
	}
	for _, a := range h.attrs {
		see(a)
	}
	r.Attrs(see)
	if topic == h.topic && part == h.partition {
		h.cancel()
	}
	return nil
}
func (h *cancelOnLine) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(slices.Clip(h.attrs), as...)
	return &c
}
func (h *cancelOnLine) WithGroup(string) slog.Handler { return h }

// TestMaintainCutShortAfterAPartitionDoneGoesPastIt: a call whose ctx
// ends once a partition's maintenance has done its work (here, as its
// retention's line reaches the Logger), and that did not begin with that
// partition, has the next call begin past it, as one that ended while
// the partition was waiting or under way has the next begin with it.
func TestMaintainCutShortAfterAPartitionDoneGoesPastIt(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := &cancelOnLine{msg: "deleting segment", topic: "b", partition: 0, cancel: func() { cancel() }}
	b := turnsBrokerWith(t, Config{MaintenanceInterval: time.Hour, Logger: slog.New(h)}, "a", "b")
	var begun []string
	testHookMaintainBegins = func(p *log.Partition) {
		begun = append(begun, fmt.Sprintf("%s-%d", p.Topic(), p.ID()))
	}
	defer func() { testHookMaintainBegins = nil }()
	require.ErrorIs(t, b.Maintain(ctx), context.Canceled)
	require.Equal(t, []string{"a-0", "a-1", "b-0"}, begun)
	starts := logStarts(t, b, "b")
	require.Positive(t, starts["b-0"], "b-0's retention ran")
	require.Zero(t, starts["b-1"], "b-1's did not")
	cancel = func() {}
	require.Equal(t, []string{"b-1", "a-0", "a-1", "b-0"}, maintainCut(t, b, 0),
		"b-0 was done: the next call begins past it")
}
