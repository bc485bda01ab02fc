package producer_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
)

// TestStickyFirstDrawReachesEveryPartition: a topic's first sticky
// partition, with no last one to avoid, is drawn from all n partitions,
// partition 0 among them. Over 3,000 fresh partitioners of 3 partitions
// each one misses a partition with a probability of about 3·(2/3)^3000:
// never by chance.
func TestStickyFirstDrawReachesEveryPartition(t *testing.T) {
	const n = 3
	r := &record.Record{Value: []byte("no key")}
	var counts [n]int
	for range 3000 {
		p := producer.StickyKeyPartitioner().ForTopic("t").Partition(r, n)
		require.GreaterOrEqual(t, p, int32(0))
		require.Less(t, p, int32(n))
		counts[p]++
	}
	for p, c := range counts {
		require.Positive(t, c, "partition %d was never the first sticky partition: %v", p, counts)
	}
}

// TestStickyDrawAfterShrinkReachesEveryPartition: when the last sticky
// partition is past a partition count that went down (the topic as the
// producer saw it before), there is no partition to avoid: the next one
// is drawn from all n, the highest among them.
func TestStickyDrawAfterShrinkReachesEveryPartition(t *testing.T) {
	const wide, n = 100, 2
	r := &record.Record{Value: []byte("no key")}
	var counts [n]int
	for draws := 0; draws < 3000; {
		part := producer.StickyKeyPartitioner().ForTopic("t").(producer.NewBatchPartitioner)
		last := part.Partition(r, wide)
		if last < n {
			continue // a last partition the smaller topic still has
		}
		part.OnNewBatch(last)
		p := part.Partition(r, n)
		require.GreaterOrEqual(t, p, int32(0))
		require.Less(t, p, int32(n))
		counts[p]++
		draws++
	}
	for p, c := range counts {
		require.Positive(t, c, "partition %d was never drawn: %v", p, counts)
	}
}
