package consumer_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestMaxPartBytesBelowOneBatch: a per-partition limit below one
// batch still reads both partitions to the end (KIP-74).
func TestMaxPartBytesBelowOneBatch(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 2))
	for i := range 5 {
		values(t, b, "t", 0, seq("a", i*10, 10)...)
		values(t, b, "t", 1, seq("b", i*10, 10)...)
	}
	c := newConsumer(t, b, consumer.FetchMaxPartitionBytes(10), consumer.FetchMaxWait(0))
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	require.NoError(t, c.Assign("t", 1, consumer.Start()))
	g := pollUntil(t, c, 100)
	require.Equal(t, seq("a", 0, 50), g.values("t", 0))
	require.Equal(t, seq("b", 0, 50), g.values("t", 1))
}

// TestMinBytesAcrossPartitions: FetchMinBytes is met by bytes
// of two partitions, the second appended during the long poll.
func TestMinBytesAcrossPartitions(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 2))
	s := newSignalClient(b)
	c := newConsumer(t, s, consumer.FetchMaxWait(time.Hour), consumer.FetchMinBytes(150))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	require.NoError(t, c.Assign("t", 1, consumer.At(0)))
	values(t, b, "t", 0, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	ch := async(func() int {
		fs, err := c.Poll(testCtx(t))
		if err != nil {
			return -1
		}
		return fs.NumRecords()
	})
	recv(t, s.fetching)
	values(t, b, "t", 1, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
	require.Equal(t, 2, recv(t, ch))
}

// TestTinyLimitsAcrossSegmentsEachFS: fetch limits of one byte
// over several segments, every codec, on both file systems, with Poll and
// with Records loops broken out of.
func TestTinyLimitsAcrossSegmentsEachFS(t *testing.T) {
	eachFS(t, func(t *testing.T, cfg runnel.Config) {
		b := openCfg(t, cfg)
		ctx := testCtx(t)
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2, Config: log.Config{SegmentBytes: 300}}))
		want := map[int32][]string{}
		for i := range 12 {
			for p := range int32(2) {
				codec := allCodecs[(i+int(p))%len(allCodecs)]
				vs := seq(fmt.Sprintf("p%d-%d-", p, i), 0, 1+i%4)
				var recs []rec
				for _, v := range vs {
					recs = append(recs, rec{value: v})
				}
				produce(t, b, "t", p, codec, recs...)
				want[p] = append(want[p], vs...)
			}
		}
		_, err := b.DeleteRecords(ctx, "t", 1, 3)
		require.NoError(t, err)
		want[1] = want[1][3:]
		for _, mode := range []string{"records", "poll"} {
			c := newConsumer(t, b, consumer.FetchMaxPartitionBytes(1), consumer.FetchMaxBytes(1), consumer.FetchMaxWait(time.Millisecond))
			require.NoError(t, c.Assign("t", 0, consumer.At(1)))
			require.NoError(t, c.Assign("t", 1, consumer.Start()))
			g := map[int32][]string{}
			n := len(want[0]) - 1 + len(want[1])
			if mode == "poll" {
				gg := pollUntil(t, c, n)
				g[0], g[1] = gg.values("t", 0), gg.values("t", 1)
			} else {
				k := 0
				for k < n {
					for _, r := range readN(t, c, min(3, n-k)) {
						g[r.Partition] = append(g[r.Partition], string(r.Value))
						k++
					}
				}
			}
			require.Equal(t, want[0][1:], g[0], mode)
			require.Equal(t, want[1], g[1], mode)
		}
	})
}
