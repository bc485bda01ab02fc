package runnel

import (
	"context"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestOpenWithDefaultsThatInvalidateATopic: TopicDefaults changed so that
// a stored topic's config, valid as it was set, is invalid with them (its
// MaxCompactionLag below the new default MinCompactionLag, or the other
// way round) make Open fail with a *TopicConfigError naming the topic and
// the default at fault, matching log.ErrInvalidConfig and not
// ErrCorruptMetadata (the record is sound); with the old defaults back,
// the broker opens with its records.
func TestOpenWithDefaultsThatInvalidateATopic(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name            string
		topic, defaults log.Config
		field           string
	}{
		{"default min above the topic's max", log.Config{MaxCompactionLag: time.Hour}, log.Config{MinCompactionLag: 2 * time.Hour, SegmentBytes: 1 << 20}, "MinCompactionLag"},
		{"default max below the topic's min", log.Config{MinCompactionLag: 2 * time.Hour}, log.Config{MaxCompactionLag: time.Hour, RetentionBytes: 1 << 30, TimestampAfterMax: -1}, "MaxCompactionLag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewMem()
			cfg := Config{Dir: "/data", FS: mem}
			b, err := Open(cfg)
			require.NoError(t, err)
			require.NoError(t, b.CreateTopic(ctx, "orders", log.TopicConfig{Partitions: 1, Config: tc.topic}))
			produce(t, b, "orders", 0, "kept")
			require.NoError(t, b.Close())

			changed := cfg
			changed.TopicDefaults = tc.defaults
			_, err = Open(changed)
			require.ErrorIs(t, err, log.ErrInvalidConfig)
			require.NotErrorIs(t, err, ErrCorruptMetadata)
			require.EqualValues(t, 40, api.Code(err), "INVALID_CONFIG")
			var te *TopicConfigError
			require.ErrorAs(t, err, &te)
			require.Equal(t, "orders", te.Topic)
			require.Equal(t, []string{tc.field}, te.Defaults, "only the field at fault, not the other default the topic takes")
			require.ErrorContains(t, err, `topic "orders"`)
			require.ErrorContains(t, err, "TopicDefaults."+tc.field)
			require.NotContains(t, err.Error(), "corrupt")

			b = open(t, cfg)
			resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "orders"}}})
			require.NoError(t, err)
			require.Equal(t, []string{"kept"}, values(t, resp.Partitions[0].Records))
		})
	}
}
