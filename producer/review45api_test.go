package producer_test

import (
	"testing"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// Review 45api: the exported API read as a reviewer freezing it for v1.0,
// each godoc claim held against what the code does.

// nilTopicPartitioner is a Partitioner whose ForTopic hands out a nil
// pointer as the topic's TopicPartitioner.
type nilTopicPartitioner struct{}

type ptrPartitioner struct{ p int32 }

func (p *ptrPartitioner) Partition(*record.Record, int) int32 { return p.p }

func (nilTopicPartitioner) ForTopic(string) producer.TopicPartitioner {
	var p *ptrPartitioner
	return p
}

// TestReview45APINilPartitioner: RecordPartitioner says "New returns
// ErrInvalidOption for a nil p", and New refuses a nil *runnel.Broker as
// a nil Client. A nil PartitionerFunc (var f producer.PartitionerFunc,
// left unset on some path) is a nil p too: New took it, and the first
// Produce panicked calling it. So does a ForTopic that returns a nil
// pointer, where the doc promises the record ErrInvalidOption.
func TestReview45APINilPartitioner(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	var f producer.PartitionerFunc
	_, err := producer.New(b, producer.RecordPartitioner(f))
	require.ErrorIs(t, err, producer.ErrInvalidOption, "a nil PartitionerFunc is a nil p")

	p := runneltest.NewProducer(t, b, producer.RecordPartitioner(nilTopicPartitioner{}))
	require.NoError(t, testkit.NoPanic(t, "ProduceSync", func() error {
		err = p.ProduceSync(testCtx(t), &record.Record{Topic: "t"})
		return nil
	}))
	require.ErrorIs(t, err, producer.ErrInvalidOption, "ForTopic returned a nil TopicPartitioner")
}
