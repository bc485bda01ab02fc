package runnel_test

import (
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// TestProducerIDCounterRepairedAtOpen: an Open that finds the producer id
// counter behind the ids the partitions know (the counter removed, a
// backup put back, partitions imported) sets it past them at once,
// durably, and says so once: the next Open, before any id is handed out,
// finds it caught up and says nothing, also after a crash that follows
// the repairing Open at once (every reordering of what was not synced
// dropped), and hands out the same next id. The line repeated at every
// Open until an id was handed out. A repair whose write fails fails no
// Open (the line says why, and the ids are handed out from past the
// partitions' all the same); the next Open repairs it.
func TestProducerIDCounterRepairedAtOpen(t *testing.T) {
	ctx := t.Context()
	mem := vfs.NewMem()
	var failCounter atomic.Bool
	fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if failCounter.Load() && op == vfs.OpRename && name == filepath.Join("data", "runnel.tmp") { // the counter put in place
			return errors.New("injected rename failure")
		}
		return nil
	}))
	var lines syncBuffer
	seen := 0 // of lines' bytes
	open := func(fsys vfs.FS) *runnel.Broker {
		b, err := runnel.Open(runnel.Config{Dir: "data", FS: fsys, Logger: slog.New(slog.NewTextHandler(&lines, nil))})
		require.NoError(t, err)
		return b
	}
	behind := func() []string {
		all := lines.String()
		var out []string
		for l := range strings.Lines(all[seen:]) {
			if strings.Contains(l, "the producer id counter is behind") {
				out = append(out, l)
			}
		}
		seen = len(all)
		return out
	}
	b := open(fsys)
	require.NoError(t, b.CreateTopic(ctx, "a", log.TopicConfig{Partitions: 1}))
	for range 3 { // ids 0 to 2
		p, err := producer.New(b)
		require.NoError(t, err)
		require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "a", Value: []byte("old")}))
		require.NoError(t, p.Close())
	}
	require.NoError(t, b.Close())
	require.NoError(t, mem.Remove("data/producer-ids"))

	b = open(fsys)
	require.Len(t, behind(), 1)
	crashed := mem.CrashClone(vfs.CrashOptions{Reorder: true})
	require.NoError(t, b.Close())
	for name, fsys := range map[string]vfs.FS{"reopened": fsys, "crashed": crashed} {
		b = open(fsys)
		require.Empty(t, behind(), "%s: the counter was set past the partitions' ids", name)
		id, _, err := b.InitProducerID(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(3), id, name)
		require.NoError(t, b.Close())
	}

	// The repair's write fails: Open goes on, says why, and hands out ids
	// past the partitions'; the next Open repairs it.
	require.NoError(t, mem.Remove("data/producer-ids"))
	failCounter.Store(true)
	b = open(fsys)
	got := behind()
	require.Len(t, got, 1)
	require.Contains(t, got[0], "injected rename failure")
	require.NoError(t, b.Close())
	failCounter.Store(false)
	b = open(fsys)
	require.Len(t, behind(), 1)
	require.NoError(t, b.Close())
	b = open(fsys)
	require.Empty(t, behind())
	id, _, err := b.InitProducerID(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(3), id, "past the partitions' 0 to 2 (the 3 handed out before produced nothing)")
	require.NoError(t, b.Close())
}
