package runnel_test

import (
	"bytes"
	"context"
	iofs "io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// The exported API read as a reviewer freezing it for v1.0,
// each godoc claim held against what the code does, and each value the
// API hands out mutated to see whether the broker changes with it.

// TestFetchBytesAreTheLog: api.FetchedPartition said "The
// bytes are the caller's: they never change", which reads as leave to
// modify them. On the memory FS they are the log's own memory (zero
// copy): a caller's write to them is a write to the log, served to every
// later reader, past the CRC check made at the append. The docs now say
// not to modify them (api.FetchedPartition, Broker.Fetch, log.Log.Read,
// segment.Segment.Read, runneltest.Consume), as package consumer and
// record.Record already did; this test pins why.
func TestFetchBytesAreTheLog(t *testing.T) {
	ctx := context.Background()
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	runneltest.Produce(t, b, "t", &record.Record{Partition: 0, Value: []byte("hello")})
	resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t"}}})
	require.NoError(t, err)
	got := resp.Partitions[0].Records
	i := bytes.Index(got, []byte("hello"))
	require.Positive(t, i)
	copy(got[i:], "HELLO") // what the docs now forbid

	recs := runneltest.ConsumeAll(t, b, "t")
	require.Len(t, recs, 1)
	require.Equal(t, "HELLO", string(recs[0].Value), "on the memory FS a fetch's bytes are the log itself")
	recs[0].Value[0] = 'J' // a consumed record's Value is the log too
	require.Equal(t, "JELLO", string(runneltest.ConsumeAll(t, b, "t")[0].Value))
}

// TestEmptyDirOnTheOSFS: Config.Dir says "" keeps the data in
// memory, and Config.FS that it overrides the file system; given both an
// FS and no Dir, Open used "/runnel" on that FS. On a vfs.MemFS that is
// memory still (tests rely on it, now said on Dir), but on vfs.OS, or a
// wrapper of it, it was the root directory of the machine's disk: a
// broker as root wrote its topics to /runnel, and one as anyone else
// failed to open with a permission error. Open now refuses an empty Dir
// with the OS's file system (log.ErrInvalidConfig), creating nothing.
func TestEmptyDirOnTheOSFS(t *testing.T) {
	root := filepath.Join(string(filepath.Separator), "runnel")
	if v := filepath.VolumeName(os.TempDir()); v != "" {
		root = v + root
	}
	if _, err := os.Stat(root); err == nil {
		t.Skipf("%s exists: this test must not touch it", root)
	}
	t.Cleanup(func() { os.RemoveAll(root) }) // what the old code made
	for _, fs := range []vfs.FS{vfs.OS, vfs.WithFaults(vfs.OS, vfs.Count())} {
		b, err := runnel.Open(runnel.Config{FS: fs})
		if err == nil {
			b.Close()
		}
		require.ErrorIs(t, err, log.ErrInvalidConfig, "an empty Dir on the OS's disk")
		_, statErr := os.Stat(root)
		require.ErrorIs(t, statErr, iofs.ErrNotExist, "Open made %s", root)
	}
	// A memory FS with no Dir keeps working, as Dir now says.
	mem := vfs.NewMem()
	b, err := runnel.Open(runnel.Config{FS: mem})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(context.Background(), "t", log.TopicConfig{Partitions: 1}))
	require.NoError(t, b.Close())
	_, err = mem.Stat("/runnel/t-0")
	require.NoError(t, err)
}

// TestMaintenanceIntervalBelowAMillisecond: a MaintenanceInterval
// of 5 (nanoseconds, where 5 s was meant) ran maintenance back to back, an
// idle broker burning most of a core (0.88 s of CPU a second, 89 µs at
// the default). Kafka's log.retention.check.interval.ms is at least 1 ms;
// Open now refuses a positive interval below that, as it refuses other
// bad config, and takes 1 ms itself.
func TestMaintenanceIntervalBelowAMillisecond(t *testing.T) {
	for _, d := range []time.Duration{1, 5, time.Millisecond - 1} {
		b, err := runnel.Open(runnel.Config{MaintenanceInterval: d})
		if err == nil {
			b.Close()
		}
		require.ErrorIs(t, err, log.ErrInvalidConfig, "MaintenanceInterval %v", d)
		require.ErrorContains(t, err, "MaintenanceInterval")
	}
	b, err := runnel.Open(runnel.Config{MaintenanceInterval: time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, b.Close())
}

// nilClock is a Clock whose nil pointer panics at Now.
type nilClock struct{ now time.Time }

func (c *nilClock) Now() time.Time { return c.now }

// TestNilPointerFSOrClock: a nil *vfs.MemFS in Config.FS (a
// field the test meant to set and did not) panicked inside Open, and a
// nil-pointer Clock panicked at the broker's first look at the time,
// later and elsewhere. Taking either as unset would be wrong: with a Dir,
// an unset FS is the disk, where a memory FS was meant. Open refuses
// both with log.ErrInvalidConfig, as the clients refuse a nil *Broker.
func TestNilPointerFSOrClock(t *testing.T) {
	var mem *vfs.MemFS
	for _, dir := range []string{"", "/d"} {
		b, err := runnel.Open(runnel.Config{Dir: dir, FS: mem})
		if err == nil {
			b.Close()
		}
		require.ErrorIs(t, err, log.ErrInvalidConfig, "Dir %q", dir)
		require.ErrorContains(t, err, "Config.FS")
	}
	var clock *nilClock
	b, err := runnel.Open(runnel.Config{Clock: clock})
	if err == nil {
		b.Close()
	}
	require.ErrorIs(t, err, log.ErrInvalidConfig)
	require.ErrorContains(t, err, "Config.Clock")
}
