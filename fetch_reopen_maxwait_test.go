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
// skipBusy), rather than wait in that partition's read for the lock's
// release; so does one that holds records, fewer than its MinBytes (its
// last look waited for the lock, and a ctx that ended meanwhile dropped
// the records held with the answer).
func TestFetchAtMaxWaitGoesPastAHeldPartition(t *testing.T) {
	for _, held := range []bool{false, true} {
		t.Run(map[bool]string{false: "nothing held", true: "records held"}[held], func(t *testing.T) {
			fetchAtMaxWaitPastAHeldPartition(t, held)
		})
	}
}

func fetchAtMaxWaitPastAHeldPartition(t *testing.T, held bool) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{MaintenanceInterval: 10000 * time.Hour})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1}))
		require.NoError(t, b.CreateTopic(t.Context(), "u", log.TopicConfig{Partitions: 1}))
		if held {
			produce(t, b, "u", 0, "x")
		}
		_, p, err := b.topicPartition(t.Context(), "t", 0, false)
		require.NoError(t, err)
		k, err := p.Lock(t.Context()) // as a config change holds it
		require.NoError(t, err)
		t0 := time.Now()
		done := goFetch(t.Context(), b, &api.FetchRequest{MaxWait: time.Second, MinBytes: 1 << 20,
			Partitions: []api.FetchPartition{{Topic: "u", Partition: 0}, {Topic: "t", Partition: 0}}})
		select {
		case a := <-done:
			k.Unlock()
			require.NoError(t, a.err)
			require.Equal(t, t0.Add(time.Second), a.at, "answered at MaxWait")
			if held {
				require.Equal(t, []string{"x"}, values(t, a.resp.Partitions[0].Records), "the records held")
			}
		case <-time.After(time.Hour):
			k.Unlock()
			<-done
			t.Fatal("the fetch's last look at MaxWait waited for the held partition")
		}
	})
}
