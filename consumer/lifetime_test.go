package consumer_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// Records keep their bytes, unchanged, whatever happens to the log they
// came from afterwards: on the memory FS they are views of it, on the OS
// they were read into fresh memory.
func TestRecordBytesOutliveTheLog(t *testing.T) {
	for _, fs := range []string{"mem", "os"} {
		t.Run(fs, func(t *testing.T) {
			cfg := runnel.Config{}
			if fs == "os" {
				cfg.Dir = t.TempDir()
			}
			b, err := runnel.Open(cfg)
			require.NoError(t, err)
			defer func() { require.NoError(t, b.Close()) }()
			ctx := testCtx(t)
			create := func() {
				require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 300}}))
			}
			create()
			for i := range 4 {
				produce(t, b, "t", 0, compression.None, rec{key: []byte("k"), value: seq("old-", i, 1)[0], headers: hdr("h", "old")})
			}
			produce(t, b, "t", 0, compression.Zstd, rec{key: []byte("k"), value: "old-z"})

			c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
			require.NoError(t, c.Assign("t", 0, consumer.Start()))
			kept := readN(t, c, 5)
			want := [][]byte{}
			for _, r := range kept {
				want = append(want, bytes.Clone(r.Value))
			}

			// Retention, deletion, and new data at the same offsets.
			require.NoError(t, b.DeleteTopic(ctx, "t"))
			create()
			for i := range 5 {
				produce(t, b, "t", 0, compression.None, rec{key: []byte("K"), value: seq("NEW-", i, 1)[0], headers: hdr("h", "NEW")})
			}
			require.NoError(t, b.Maintain(context.Background()))
			// More fetches, which would reuse any buffer shared with the first.
			c2 := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
			require.NoError(t, c2.Assign("t", 0, consumer.Start()))
			require.Equal(t, seq("NEW-", 0, 5), vals(readN(t, c2, 5)))

			for i, r := range kept {
				require.Equal(t, want[i], r.Value)
				require.Equal(t, []byte("k"), r.Key)
				if i < 4 {
					require.Equal(t, "old", string(r.Headers[0].Value))
				}
			}
		})
	}
}
