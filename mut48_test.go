package runnel

// Mut48: tests that close the gaps the ninth mutation pass found in
// fetch47's cap (Config.FetchMaxBytes); each names the mutants it kills.

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestMut48CapIsInclusive: a fetch whose batches add up to the cap
// exactly answers them all, and one whose cap is a byte short of them
// answers one fewer, as a request's MaxBytes is counted (Kafka's broker
// reads up to min(max_bytes, fetch.max.bytes) inclusive). The request
// sets MaxBytes math.MaxInt32, so the cap alone bounds it. (mut48: C12,
// the cap taken a byte smaller; C13, a byte larger.)
func TestMut48CapIsInclusive(t *testing.T) {
	v := strings.Repeat("v", 200)
	one := len(batch(t, v))
	require.GreaterOrEqual(t, 3*one-1, MinFetchMaxBytes)
	for _, onDisk := range []bool{false, true} {
		for _, c := range []struct {
			cap, batches int
		}{
			{3 * one, 3},
			{3*one - 1, 2},
			{3*one + 1, 3},
		} {
			cfg := Config{FetchMaxBytes: c.cap}
			if onDisk {
				cfg.Dir = t.TempDir()
			}
			b := open(t, cfg)
			fetch47Fill(t, b, 1, 8, len(v), log.Config{})
			resp, err := b.Fetch(context.Background(), &api.FetchRequest{MaxBytes: math.MaxInt32,
				Partitions: []api.FetchPartition{{Topic: "t", MaxBytes: math.MaxInt32}}})
			require.NoError(t, err)
			require.NoError(t, resp.Partitions[0].Err)
			got := fetch47Sizes(t, resp.Partitions[0].Records)
			require.Len(t, got, c.batches, "cap %d, batches of %d bytes, on disk %v", c.cap, one, onDisk)
			require.NoError(t, b.Close())
		}
	}
}
