package consumer_test

import (
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/stretchr/testify/require"
)

// TestAssignedSorted pins Assigned's doc: the partitions come sorted (by
// topic, then partition), whatever the order they were assigned in.
func TestAssignedSorted(t *testing.T) {
	b := openBroker(t, map[string]int{"a": 12, "b": 2})
	c := newConsumer(t, b)
	for _, tp := range []api.TopicPartition{{Topic: "b", Partition: 1}, {Topic: "a", Partition: 10}, {Topic: "a", Partition: 2}, {Topic: "b", Partition: 0}} {
		require.NoError(t, c.Assign(tp.Topic, tp.Partition, consumer.Start()))
	}
	require.Equal(t, []api.TopicPartition{{Topic: "a", Partition: 2}, {Topic: "a", Partition: 10}, {Topic: "b", Partition: 0}, {Topic: "b", Partition: 1}}, c.Assigned())
}
