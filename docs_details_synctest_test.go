package runnel

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestDocumentedBrokerDefaults: with a zero Config, maintenance
// runs every 30 s (Config.MaintenanceInterval; docs/details.md, "Many
// partitions": "the broker wakes once every MaintenanceInterval (30 s)")
// and an idempotent producer id idle for a day is forgotten
// (Config.ProducerIDExpiration, Kafka's producer.id.expiration.ms; the
// details' log section: "1 day by default"), not before.
func TestDocumentedBrokerDefaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		b := open(t, Config{})
		ctx := t.Context()
		require.NoError(t, b.CreateTopic(ctx, "r", log.TopicConfig{Partitions: 1, Config: log.Config{RetentionTime: time.Millisecond}}))
		require.NoError(t, b.CreateTopic(ctx, "p", log.TopicConfig{Partitions: 1, Config: log.Config{RetentionTime: -1}}))
		produce(t, b, "r", 0, "a")
		sleepTo(t0.Add(30*time.Second - time.Nanosecond))
		require.Zero(t, logStart(t, b, "r"), "maintenance ran before 30 s")
		sleepTo(t0.Add(30 * time.Second))
		require.EqualValues(t, 1, logStart(t, b, "r"), "no maintenance at 30 s")

		send := idempotentSend(t, b, "p")
		t1 := time.Now()
		require.False(t, send().Duplicate)
		sleepTo(t1.Add(24*time.Hour - time.Nanosecond))
		require.True(t, send().Duplicate, "the producer id was forgotten before a day")
		sleepTo(t1.Add(24*time.Hour + 30*time.Second))
		require.False(t, send().Duplicate, "the producer id outlived a day and a maintenance run")
	})
}
