package runnel

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestFetchAtMaxWaitGoesPastAHeldPartition: a fetch of several
// partitions with nothing to read, one of them held exclusively (a
// reopen's lock) for longer than MaxWait, answers at MaxWait: its last
// look goes past the held partition as its first did (fetchOnce's
// skipBusy with total == 0), rather than wait in that partition's read
// for the lock's release.
func TestFetchAtMaxWaitGoesPastAHeldPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{MaintenanceInterval: 10000 * time.Hour})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1}))
		require.NoError(t, b.CreateTopic(t.Context(), "u", log.TopicConfig{Partitions: 1}))
		_, p, err := b.topicPartition(t.Context(), "t", 0, false)
		require.NoError(t, err)
		k, err := p.Lock(t.Context()) // as a config change holds it
		require.NoError(t, err)
		t0 := time.Now()
		done := goFetch(t.Context(), b, &api.FetchRequest{MaxWait: time.Second, MinBytes: 1,
			Partitions: []api.FetchPartition{{Topic: "u", Partition: 0}, {Topic: "t", Partition: 0}}})
		select {
		case a := <-done:
			k.Unlock()
			require.NoError(t, a.err)
			require.Equal(t, t0.Add(time.Second), a.at, "answered at MaxWait")
		case <-time.After(time.Hour):
			k.Unlock()
			<-done
			t.Fatal("the fetch's last look at MaxWait waited for the held partition")
		}
	})
}
