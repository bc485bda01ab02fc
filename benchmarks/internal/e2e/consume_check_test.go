package e2e

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
)

// replaySystem is a one-partition broker in memory whose consumer reads
// the topic in polls of pollRecords records, reading the first poll's
// records twice and never reaching the last poll's: as many records as
// the topic holds, but one poll's worth read twice in place of another.
type replaySystem struct {
	mu     sync.Mutex
	values [][]byte
}

const pollRecords = 10

func (s *replaySystem) system() System {
	return System{Name: "replay", Open: func(context.Context, Config) (Target, error) { return s, nil }}
}

func (s *replaySystem) CreateTopic(context.Context, string, int) error { return nil }
func (s *replaySystem) Close() error                                   { return nil }

func (s *replaySystem) Count(context.Context, string, int) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.values)), nil
}

func (s *replaySystem) NewProducer(ProducerConfig) (Producer, error) { return replayProducer{s}, nil }

type replayProducer struct{ s *replaySystem }

func (p replayProducer) Produce(_ context.Context, _ string, value []byte) error {
	p.s.mu.Lock()
	p.s.values = append(p.s.values, slices.Clone(value))
	p.s.mu.Unlock()
	return nil
}
func (replayProducer) Flush(context.Context) error { return nil }
func (replayProducer) Close() error                { return nil }

func (s *replaySystem) NewConsumer(ConsumerConfig) (Consumer, error) {
	return &replayConsumer{s: s}, nil
}

type replayConsumer struct {
	s     *replaySystem
	polls int
}

func (c *replayConsumer) Poll(_ context.Context, fn func([]byte)) (int, error) {
	from := max(c.polls-1, 0) * pollRecords // polls 0 and 1 both read records [0, pollRecords)
	c.polls++
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	to := min(from+pollRecords, len(c.s.values))
	for _, v := range c.s.values[from:to] {
		fn(v)
	}
	return to - from, nil
}
func (*replayConsumer) Close() error { return nil }

// TestConsumeFailsOnRecordsReadTwice: a consumer that reads some records twice
// and never reads as many others, ending with the topic's count, is a
// wrong outcome. Consume's values were all alike, so it counted records
// and could not tell: the consume rate of a consumer that re-read a batch
// and stopped a batch short would have been reported as a full read.
func TestConsumeFailsOnRecordsReadTwice(t *testing.T) {
	var s replaySystem
	c := Case{Store: Mem, Size: 100, Partitions: 1, Acks: AcksAll}
	_, err := Consume(context.Background(), NoTimer{}, s.system(), c, 10*pollRecords)
	if !errors.Is(err, ErrMismatch) {
		t.Fatalf("Consume: %v, want ErrMismatch", err)
	}
}
