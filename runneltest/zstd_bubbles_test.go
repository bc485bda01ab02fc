package runneltest_test

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
)

// TestZstdInBubblesAndOut pins the package doc's Fake time: a test
// binary whose first zstd produce and fetch are made in a synctest
// bubble goes on producing and fetching zstd batches outside it, and in
// another bubble. Until 2026-12-06 the zstd library's shared coders,
// built in the first bubble, kept its channels, and the next use outside
// stopped the binary. Run in a child process, so that its first bubble's
// zstd is the binary's first.
func TestZstdInBubblesAndOut(t *testing.T) {
	testkit.InChild(t, "RUNNEL_ZSTD_BUBBLES_CHILD", zstdInBubblesAndOut)
}

// zstdInBubblesAndOut produces zstd batches at a fast, the default and
// the best level to a broker and consumes them: in a bubble, outside,
// then in another bubble.
func zstdInBubblesAndOut(t *testing.T) {
	use := func(t *testing.T) {
		for _, level := range []int{1, 3, 22} {
			b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
			p := runneltest.NewProducer(t, b, producer.Compression(compression.Zstd), producer.CompressionLevel(level))
			require.NoError(t, p.ProduceSync(context.Background(),
				&record.Record{Topic: "t", Value: []byte("a")},
				&record.Record{Topic: "t", Value: []byte("b")},
				&record.Record{Topic: "t", Value: []byte("c")}))
			recs := runneltest.ConsumeAll(t, b, "t")
			require.Len(t, recs, 3, "level %d", level)
			require.Equal(t, "c", string(recs[2].Value))
		}
	}
	synctest.Test(t, use)
	use(t)
	synctest.Test(t, use)
}
