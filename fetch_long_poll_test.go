package runnel

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestFetchOfSeveralPartitionsForAByteWokenByEveryChange: a long poll of
// several partitions that wants a byte (MinBytes 1, a consumer's) and
// found nothing waits on one log.Wake, each partition's wait for a byte
// (since 2026-12-07; on each partition's Changed channel before, in a
// reflect.Select). Every change that closes a Changed channel wakes it:
// an append (under SyncAlways the fsync that covers it), a cut
// (DeleteRecords, retention, a truncation), a lock's release, a reopen,
// a close, a deletion. Those that change what a read answers answer the
// fetch; the others have it read the partition again and wait on, until
// an append to another partition answers it. A change made after the
// partition's mark and before the wait (during its first read) wakes it
// at once (those that fail the read, a truncation below the offset, a
// close, a deletion, are answered by the read itself). Each subtest fails
// with the Wake's part for it broken (checked): the waits not fired by
// notify (the cuts, the lock, the reopen, the close, the deletion), nor
// by grew (the appends, and the append to another partition that the
// others wait on for), nor at once by Wake.Add for a mark the partition
// moved past (those during the read).
func TestFetchOfSeveralPartitionsForAByteWokenByEveryChange(t *testing.T) {
	const parts = 3
	partition := func(t *testing.T, b *Broker) *log.Partition {
		_, p, err := b.topicPartition(t.Context(), "t", 1, false)
		require.NoError(t, err)
		return p
	}
	for _, c := range []struct {
		name string
		sync log.SyncPolicy
		// retention, for a topic whose records retention removes (an
		// hour, the maintenance each minute).
		retention bool
		do        func(t *testing.T, b *Broker)
		// answer checks the answer of a change that answers the fetch
		// (what a read of t-1 finds changed); nil for one that wakes
		// it to read t-1 again and wait on.
		answer func(t *testing.T, fp api.FetchedPartition)
		// readSees says a read made after the change answers the
		// fetch (it fails): made during the first read, it leaves no
		// wait to look at.
		readSees bool
	}{
		{name: "append", sync: log.SyncNever, do: func(t *testing.T, b *Broker) { produce(t, b, "t", 1, "a") },
			answer: func(t *testing.T, fp api.FetchedPartition) {
				require.NoError(t, fp.Err)
				require.Equal(t, []string{"a"}, values(t, fp.Records))
			}},
		{name: "append under SyncAlways", sync: log.SyncAlways, do: func(t *testing.T, b *Broker) { produce(t, b, "t", 1, "a") },
			answer: func(t *testing.T, fp api.FetchedPartition) {
				require.NoError(t, fp.Err)
				require.Equal(t, []string{"a"}, values(t, fp.Records))
			}},
		{name: "DeleteRecords", do: func(t *testing.T, b *Broker) {
			_, err := b.DeleteRecords(t.Context(), "t", 1, 1)
			require.NoError(t, err)
		}},
		{name: "retention", retention: true, do: func(t *testing.T, b *Broker) {
			time.Sleep(time.Hour + 2*time.Minute) // the maintenance runs past retention.ms
			require.EqualValues(t, 1, partition(t, b).LogStartOffset(), "retention removed nothing")
		}},
		{name: "TruncateTo", do: func(t *testing.T, b *Broker) {
			_, err := partition(t, b).Log().TruncateTo(0)
			require.NoError(t, err)
		}, answer: func(t *testing.T, fp api.FetchedPartition) {
			require.ErrorIs(t, fp.Err, log.ErrOffsetOutOfRange)
		}, readSees: true},
		{name: "Lock and Unlock", do: func(t *testing.T, b *Broker) {
			k, err := partition(t, b).Lock(t.Context())
			require.NoError(t, err)
			k.Unlock()
		}},
		{name: "reopen", do: func(t *testing.T, b *Broker) {
			require.NoError(t, b.AlterTopicConfig(t.Context(), "t", log.Config{RetentionTime: 2 * time.Hour}))
		}},
		{name: "Close", do: func(t *testing.T, b *Broker) {
			require.NoError(t, partition(t, b).Close())
		}, answer: func(t *testing.T, fp api.FetchedPartition) {
			require.Error(t, fp.Err)
		}, readSees: true},
		{name: "DeleteTopic", do: func(t *testing.T, b *Broker) {
			require.NoError(t, b.DeleteTopic(t.Context(), "t"))
		}, answer: func(t *testing.T, fp api.FetchedPartition) {
			require.ErrorIs(t, fp.Err, ErrUnknownTopic)
		}, readSees: true},
	} {
		for _, during := range []bool{false, true} {
			if during && (c.retention || c.readSees) {
				continue // time does not pass during a read
			}
			t.Run(fmt.Sprintf("%s/during the read=%v", c.name, during), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					cfg := Config{MaintenanceInterval: 10000 * time.Hour}
					tcfg := log.Config{Sync: c.sync}
					if c.retention {
						cfg.MaintenanceInterval, tcfg.RetentionTime = time.Minute, time.Hour
					}
					b := open(t, cfg)
					require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: parts, Config: tcfg}))
					req := &api.FetchRequest{MaxWait: 100 * time.Hour, MinBytes: 1}
					for p := range int32(parts) {
						produce(t, b, "t", p, fmt.Sprint("x", p)) // below the offsets
						req.Partitions = append(req.Partitions, api.FetchPartition{Topic: "t", Partition: p, Offset: 1})
					}
					reads := countFetchReads(t)
					if during {
						setFetchReadHook(func() {
							if reads.Add(1) == 2 { // t-1's first, after its mark and its offsets
								c.do(t, b)
							}
						})
					}
					ctx, cancel := context.WithCancel(t.Context())
					defer cancel()
					done := goFetch(ctx, b, req)
					synctest.Wait()
					if !during {
						require.EqualValues(t, parts, reads.Load(), "the first read")
						select {
						case a := <-done:
							t.Fatalf("answered before the change: %+v", a)
						default:
						}
						c.do(t, b)
						synctest.Wait()
					}
					if c.answer != nil {
						a := answeredNow(t, done, "the change did not wake the fetch (it waits until MaxWait)")
						require.NoError(t, a.err)
						c.answer(t, a.resp.Partitions[1])
						return
					}
					require.Greater(t, reads.Load(), int32(parts), "the change did not wake the fetch to read t-1 again")
					select {
					case a := <-done:
						t.Fatalf("answered at a change that brought nothing: %+v", a)
					default:
					}
					// It waits on: an append to another partition
					// answers it.
					setFetchReadHook(nil)
					produce(t, b, "t", 2, "a")
					synctest.Wait()
					a := answeredNow(t, done, "the fetch woken by the change did not wait again")
					require.NoError(t, a.err)
					require.Equal(t, []string{"a"}, values(t, a.resp.Partitions[2].Records))
				})
			})
		}
	}
}
