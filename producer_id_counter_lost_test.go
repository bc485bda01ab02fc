package runnel_test

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/runnel/runnel/vfs"
)

// The producer id counter (<Dir>/producer-ids) removed, or put back from
// an older backup, while the partitions keep the state of the producers
// it counted: Open hands out ids from past those the partitions know.
// It took the counter alone, and handed out id 0 again: the new
// producer's first batch, at sequence 0 as the old one's was, was
// answered as its duplicate, acknowledged at the old record's offset and
// never written.
func TestProducerIDCounterLostOrRolledBack(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(t *testing.T, fsys *vfs.MemFS)
	}{
		{"removed", func(t *testing.T, fsys *vfs.MemFS) { require.NoError(t, fsys.Remove("data/producer-ids")) }},
		{"rolled back", func(t *testing.T, fsys *vfs.MemFS) {
			f, err := fsys.Create("data/producer-ids")
			require.NoError(t, err)
			_, err = f.Write([]byte("1\n"))
			require.NoError(t, err)
			require.NoError(t, f.Close())
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := t.Context()
			fsys := vfs.NewMem()
			var lines syncBuffer
			cfg := runnel.Config{Dir: "data", FS: fsys, Logger: slog.New(slog.NewTextHandler(&lines, nil))}
			b, err := runnel.Open(cfg)
			require.NoError(t, err)
			require.NoError(t, b.CreateTopic(ctx, "a", log.TopicConfig{Partitions: 1}))
			require.NoError(t, b.CreateTopic(ctx, "b", log.TopicConfig{Partitions: 2}))
			// Three producers, ids 0 to 2; the last writes to b-1 only.
			for i, to := range []struct {
				topic     string
				partition int32
			}{{"a", 0}, {"a", 0}, {"b", 1}} {
				p, err := producer.New(b, producer.RecordPartitioner(producer.ManualPartitioner()))
				require.NoError(t, err)
				r := &record.Record{Topic: to.topic, Partition: to.partition, Value: []byte("old")}
				require.NoError(t, p.ProduceSync(ctx, r))
				require.Equal(t, int64(i), r.ProducerID)
				require.NoError(t, p.Close())
			}
			require.NoError(t, b.Close())

			c.change(t, fsys)
			b, err = runnel.Open(cfg)
			require.NoError(t, err)
			defer b.Close()
			p, err := producer.New(b)
			require.NoError(t, err)
			defer p.Close()
			r := &record.Record{Topic: "a", Value: []byte("new")}
			require.NoError(t, p.ProduceSync(ctx, r))
			require.Equal(t, int64(3), r.ProducerID, "past the ids the partitions know")
			require.Equal(t, int64(2), r.Offset, "written after the old records, not answered as a duplicate")
			var got []string
			for _, rec := range runneltest.ConsumeAll(t, b, "a") {
				got = append(got, string(rec.Value))
			}
			require.Equal(t, []string{"old", "old", "new"}, got)
			require.Contains(t, lines.String(), "the producer id counter is behind")
		})
	}
}
