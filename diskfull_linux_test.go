//go:build linux

package runnel_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
)

// These tests run the broker on a real kernel file system that fills up: a
// tmpfs of a few hundred KiB (or few inodes) that each test mounts for
// itself, and unmounts in t.Cleanup. Mounting needs root on Linux: as
// another user they skip, saying so; under -short, the ext4 image ones
// skip too (an image takes a second or two). RUNNEL_DISKFULL_RUNS=N runs
// TestDiskFullRandom for N seeds rather than 2, from one picked from the
// clock (RUNNEL_DISKFULL_SEED the first one); RUNNEL_FSSHUTDOWN_RUNS=N
// runs TestFSShutdownUnderLoad N times rather than once.

// mountTmpfs mounts a tmpfs of size bytes and, if inodes > 0, that many
// inodes on a new directory, unmounted by t.Cleanup; it skips the test
// unless the process may mount one (root on Linux).
func mountTmpfs(t *testing.T, size int64, inodes int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root, to mount a tmpfs that fills up")
	}
	dir := t.TempDir()
	opts := fmt.Sprintf("size=%d", size)
	if inodes > 0 {
		opts += fmt.Sprintf(",nr_inodes=%d", inodes)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
		t.Skipf("cannot mount a tmpfs (%v): needs root on Linux", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// mountExt4 makes an ext4 image of size bytes (no blocks reserved for
// root, which the tests run as) and mounts it on a new directory through a
// loop device, unmounted (and the device released) by t.Cleanup; it skips
// the test unless the process may (root, mkfs.ext4 and loop devices).
// ext4 fails otherwise than tmpfs: delayed allocation reserves blocks at
// write and allocates them at writeback, metadata takes blocks of its own.
func mountExt4(t *testing.T, size int64) string {
	t.Helper()
	dir, _ := mountExt4Image(t, size)
	return dir
}

// mountExt4Image is mountExt4, which also gives the image's path (to
// mount it again: see remountExt4).
func mountExt4Image(t *testing.T, size int64) (dir, img string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root, to mount an ext4 image that fills up")
	}
	if testing.Short() {
		t.Skip("-short: tmpfs only (an ext4 image takes a second or two)")
	}
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		t.Skip("no mkfs.ext4")
	}
	img = filepath.Join(t.TempDir(), "ext4.img")
	require.NoError(t, os.WriteFile(img, nil, 0o600))
	require.NoError(t, os.Truncate(img, size))
	if out, err := exec.Command(mkfs, "-q", "-F", "-m", "0", img).CombinedOutput(); err != nil {
		t.Skipf("mkfs.ext4: %v: %s", err, out)
	}
	dir = t.TempDir()
	if out, err := exec.Command("mount", "-o", "loop", img, dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount an ext4 image through a loop device (%v): %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-d", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir, img
}

// mountImage makes an image of the file system fstype (mkfs.<fstype>
// with args) of imgSize bytes, mounts it through a loop device on a new
// directory, unmounted (and the device released) by t.Cleanup, and, if
// room > 0, takes all but room bytes of its free space with a file of
// someone else's (pad), so that the tests fill it as fast as a small
// tmpfs: xfs and btrfs images have a minimum size (300 MiB, 110 MiB). It
// skips the test unless the process may (root, the mkfs and loop
// devices), and under -short.
func mountImage(t *testing.T, fstype string, imgSize, room int64, args ...string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root, to mount a %s image", fstype)
	}
	if testing.Short() {
		t.Skipf("-short: no %s image", fstype)
	}
	mkfs, err := exec.LookPath("mkfs." + fstype)
	if err != nil {
		t.Skipf("no mkfs.%s", fstype)
	}
	img := filepath.Join(t.TempDir(), fstype+".img")
	require.NoError(t, os.WriteFile(img, nil, 0o600))
	require.NoError(t, os.Truncate(img, imgSize))
	if out, err := exec.Command(mkfs, append(args, img)...).CombinedOutput(); err != nil {
		t.Skipf("mkfs.%s: %v: %s", fstype, err, out)
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-o", "loop", img, dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a %s image through a loop device (%v): %s", fstype, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-d", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	if room > 0 {
		f, err := os.Create(filepath.Join(dir, "pad"))
		require.NoError(t, err)
		if free := freeBytes(t, dir); free > room {
			require.NoError(t, syscall.Fallocate(int(f.Fd()), 0, 0, free-room))
		}
		require.NoError(t, f.Close())
		syscall.Sync()
	}
	return dir
}

// remountExt4 unmounts the ext4 image img from dir and mounts it there
// again (replaying its journal).
func remountExt4(t *testing.T, dir, img string) {
	t.Helper()
	out, err := exec.Command("umount", "-d", dir).CombinedOutput()
	require.NoError(t, err, "umount: %s", out)
	out, err = exec.Command("mount", "-o", "loop", img, dir).CombinedOutput()
	require.NoError(t, err, "mount: %s", out)
}

// diskKinds are the file systems the tests fill: mount gives a mounted
// directory with about size bytes of room.
var diskKinds = []struct {
	name  string
	mount func(t *testing.T, size int64) string
}{
	{"tmpfs", func(t *testing.T, size int64) string { return mountTmpfs(t, size, 0) }},
	// ext4's own metadata (journal, inode tables) takes about a third of
	// a few MiB.
	{"ext4", func(t *testing.T, size int64) string { return mountExt4(t, size*2) }},
	{"xfs", func(t *testing.T, size int64) string { return mountImage(t, "xfs", 320<<20, size, "-q") }},
	{"btrfs", func(t *testing.T, size int64) string { return mountImage(t, "btrfs", 128<<20, size, "-q") }},
	// exFAT through FUSE (see mountExfatFuse): little overhead; no
	// fallocate to pad it with, so the image is the room.
	{"exfat", func(t *testing.T, size int64) string {
		if testing.Short() {
			t.Skip("-short: no exFAT image")
		}
		return mountExfatFuse(t, size*2)
	}},
}

// growTmpfs gives the tmpfs at dir size bytes: room freed, as an operator
// frees it.
func growTmpfs(t *testing.T, dir string, size int64) {
	t.Helper()
	require.NoError(t, syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, fmt.Sprintf("size=%d", size)))
}

// freeBytes is the room left on the file system of dir.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	require.NoError(t, syscall.Statfs(dir, &st))
	return int64(st.Bavail) * int64(st.Bsize) // Bsize: an int32 on 386
}

// fillDisk writes a file at path until the file system is full, and
// returns what the full file system says it has free: nothing on tmpfs
// and ext4 (no blocks reserved for root), a few blocks that no file may
// take on xfs (its reserve). Room freed is more than that.
func fillDisk(t *testing.T, path string) (full int64) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	buf := make([]byte, 64<<10)
	for len(buf) > 0 {
		if _, err := f.Write(buf); err != nil {
			require.ErrorIs(t, err, syscall.ENOSPC)
			buf = buf[:len(buf)/2] // the last blocks, smaller than buf
		}
	}
	require.NoError(t, f.Close())
	return freeBytes(t, filepath.Dir(path))
}

// diskfullBatch is one record whose value is i, padded to size bytes.
func diskfullBatch(t testing.TB, i, size int) []byte {
	val := make([]byte, size)
	binary.BigEndian.PutUint64(val, uint64(i))
	return leakBatch(t, "", val)
}

// diskfullValues reads partition 0 of topic from its log start offset,
// each record's number (diskfullBatch).
func diskfullValues(t *testing.T, b *runnel.Broker, topic string) (start int64, vals []int) {
	t.Helper()
	d, err := b.DescribeTopic(context.Background(), topic)
	require.NoError(t, err)
	for _, r := range runneltest.ConsumeAll(t, b, topic) {
		if r.Partition == 0 {
			vals = append(vals, int(binary.BigEndian.Uint64(r.Value)))
		}
	}
	return d.Partitions[0].LogStartOffset, vals
}

// TestDiskFullProduce produces to a partition until its tmpfs is full,
// under each fsync policy, and checks that
//
//   - the produce fails with an error matching syscall.ENOSPC and
//     log.ErrLogFenced (KAFKA_STORAGE_ERROR, retriable), and so does each
//     later one: the partition is fenced until the broker opens again;
//   - a consumer still reads every acknowledged record;
//   - Open on the full disk fails with syscall.ENOSPC (it writes a log
//     that failed anew: see docs/details.md, "A full disk"), releasing
//     the directory;
//   - once room is freed, Open finds every acknowledged record in order
//     (and at most the one whose produce failed after its bytes were
//     written: a torn tail cut), and the partition takes records again.
func TestDiskFullProduce(t *testing.T) {
	for _, kind := range diskKinds {
		for _, sync := range []log.SyncPolicy{log.SyncAlways, log.SyncPeriodic, log.SyncNever} {
			t.Run(kind.name+"/"+sync.String(), func(t *testing.T) {
				diskfullProduce(t, kind.mount(t, 1<<20), sync)
			})
		}
	}
}

func diskfullProduce(t *testing.T, mnt string, sync log.SyncPolicy) {
	ctx := context.Background()
	// Room to free later: a ballast file of someone else's.
	ballast := filepath.Join(mnt, "ballast")
	require.NoError(t, os.WriteFile(ballast, make([]byte, 512<<10), 0o600))
	dir := filepath.Join(mnt, "data")
	b, err := runnel.Open(runnel.Config{Dir: dir})
	require.NoError(t, err)
	defer func() { b.Close() }()
	cfg := log.Config{SegmentBytes: 64 << 10, Sync: sync, FlushMessages: 7}
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: cfg}))
	acked := 0
	var perr error
	for perr == nil {
		_, perr = b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: diskfullBatch(t, acked, 1000)})
		if perr == nil {
			acked++
		}
		require.Less(t, acked, 10000, "the disk never fills")
	}
	t.Logf("after %d records: %v", acked, perr)
	require.ErrorIs(t, perr, syscall.ENOSPC)
	require.True(t, api.IsRetriable(perr))
	if errors.Is(perr, log.ErrRollFailed) {
		// xfs allocates inodes as it goes: the disk filled at a roll,
		// whose new segment could not be created. Nothing was written,
		// nothing is fenced; the next append that rolls tries again,
		// and fails again.
		require.NotErrorIs(t, perr, log.ErrLogFenced)
		_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: diskfullBatch(t, acked, 1000)})
		require.ErrorIs(t, err, log.ErrRollFailed)
		require.ErrorIs(t, err, syscall.ENOSPC)
	} else {
		_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: diskfullBatch(t, acked, 8)})
		require.ErrorIs(t, perr, log.ErrLogFenced)
		require.ErrorIs(t, err, log.ErrLogFenced, "fenced until the broker opens again")
	}
	d, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	logs, err := filepath.Glob(filepath.Join(dir, "t-0", "*.log"))
	require.NoError(t, err)
	var onDisk int64
	for _, name := range logs {
		fi, err := os.Stat(name)
		require.NoError(t, err)
		onDisk += fi.Size()
	}
	// A write cut short (n < len) leaves a torn tail, which the Open
	// below cuts.
	t.Logf("torn tail: %d bytes", onDisk-d.Partitions[0].Size)
	_, vals := diskfullValues(t, b, "t")
	require.GreaterOrEqual(t, len(vals), acked, "a consumer reads what was acknowledged")
	for i := range acked {
		require.Equal(t, i, vals[i])
	}
	t.Logf("Close on the full disk: %v", b.Close())

	_, err = runnel.Open(runnel.Config{Dir: dir})
	t.Logf("Open on the full disk: %v", err)
	require.ErrorIs(t, err, syscall.ENOSPC)

	require.NoError(t, os.Remove(ballast))
	b, err = runnel.Open(runnel.Config{Dir: dir})
	require.NoError(t, err, "the failed Open released the directory")
	_, vals = diskfullValues(t, b, "t")
	require.GreaterOrEqual(t, len(vals), acked)
	require.LessOrEqual(t, len(vals), acked+1, "nothing but the record whose produce failed")
	for i := range vals {
		require.Equal(t, i, vals[i])
	}
	for i := range 100 {
		_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: diskfullBatch(t, len(vals)+i, 1000)})
		require.NoError(t, err, "the partition takes records again")
	}
	require.NoError(t, b.Close())
}

// TestDiskFullProducer runs the producer client into a full disk: the
// broker's error is retriable (a full disk may be freed), so the producer
// retries it until its delivery timeout, and then fails the record with
// producer.ErrDeliveryTimeout, the broker's error (syscall.ENOSPC) wrapped
// in it; every record acknowledged before is there.
//
// A delivery timeout whose error does not wrap the broker's can come of
// a slow machine alone (it flaked once under -race on a loaded 2-core
// machine: "after 244 records: ... after 1 attempts: appended, not
// acknowledged by the deadline", the disk not yet full), or of the last
// retry on the full disk being in flight at the deadline ("the request
// was cut short at the deadline"): the test takes a few of those, and
// goes on producing until a record fails with the broker's error.
func TestDiskFullProducer(t *testing.T) {
	ctx := context.Background()
	mnt := mountTmpfs(t, 512<<10, 0)
	b, err := runnel.Open(runnel.Config{Dir: filepath.Join(mnt, "data")})
	require.NoError(t, err)
	defer func() { b.Close() }()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2, Config: log.Config{SegmentBytes: 64 << 10}}))
	p, err := producer.New(b, producer.DeliveryTimeout(300*time.Millisecond), producer.Compression(compression.None))
	require.NoError(t, err)
	defer p.Close()
	acked, slow := 0, 0
	for {
		err := p.ProduceSync(ctx, &record.Record{Topic: "t", Value: make([]byte, 1000)})
		if err != nil {
			t.Logf("after %d records: %v", acked, err)
			require.ErrorIs(t, err, producer.ErrDeliveryTimeout)
			if !errors.Is(err, syscall.ENOSPC) {
				// Load, not the disk (see above); a producer that
				// never passes the broker's error on still fails.
				slow++
				require.Less(t, slow, 10, "no delivery timeout wrapped syscall.ENOSPC")
				continue
			}
			break
		}
		acked++
		require.Less(t, acked, 10000, "the disk never fills")
	}
	require.GreaterOrEqual(t, len(runneltest.ConsumeAll(t, b, "t")), acked)
}

// TestDiskFullFreeSpace fills a broker's disk with a file of someone
// else's and checks that the broker frees room through its own calls, the
// partitions it frees it in left working:
//
//   - retention (retention.bytes, at the next Maintain) removes old
//     segments, without fencing the partition (the old code wrote the log
//     start offset checkpoint before it removed them: on a full disk that
//     failed, fenced the partition and freed nothing);
//   - DeleteRecords removes the segments below its offset (it used to fail
//     the same way, fencing the partition);
//   - DeleteTopic removes the topic and returns nil (it used to return
//     the error of writing the index of the active segment it was about to
//     remove, the topic gone all the same);
//
// and that a reopened broker finds what each partition kept.
func TestDiskFullFreeSpace(t *testing.T) {
	for _, kind := range diskKinds {
		t.Run(kind.name, func(t *testing.T) { diskfullFreeSpace(t, kind.mount(t, 2<<20)) })
	}
}

func diskfullFreeSpace(t *testing.T, mnt string) {
	ctx := context.Background()
	dir := filepath.Join(mnt, "data")
	// No maintenance but the test's.
	bcfg := runnel.Config{Dir: dir, MaintenanceInterval: time.Hour}
	b, err := runnel.Open(bcfg)
	require.NoError(t, err)
	defer func() { b.Close() }()
	seg := log.Config{SegmentBytes: 32 << 10}
	ret := seg
	ret.RetentionBytes = 64 << 10
	require.NoError(t, b.CreateTopic(ctx, "deleterecords", log.TopicConfig{Partitions: 1, Config: seg}))
	require.NoError(t, b.CreateTopic(ctx, "retention", log.TopicConfig{Partitions: 1, Config: ret}))
	require.NoError(t, b.CreateTopic(ctx, "deletetopic", log.TopicConfig{Partitions: 1, Config: seg}))
	const n = 300
	for i := range n {
		for _, topic := range []string{"deleterecords", "retention", "deletetopic"} {
			_, err := b.Produce(ctx, &api.ProduceRequest{Topic: topic, Acks: api.AcksAll, Batches: diskfullBatch(t, i, 1000)})
			require.NoError(t, err)
		}
	}
	full := fillDisk(t, filepath.Join(mnt, "filler"))
	require.Less(t, full, int64(64<<10))

	if err := b.Maintain(ctx); err != nil {
		// The recovery-point checkpoints of the partitions maintained
		// before retention made room may fail, fencing nothing.
		require.ErrorIs(t, err, syscall.ENOSPC)
		require.NotErrorIs(t, err, log.ErrLogFenced, "retention on a full disk fenced a partition")
	}
	freed := freeBytes(t, mnt)
	require.Greater(t, freed, full, "retention freed room")
	start, vals := diskfullValues(t, b, "retention")
	require.Positive(t, start)
	require.Equal(t, n-int(start), len(vals))
	_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "retention", Acks: api.AcksAll, Batches: diskfullBatch(t, n, 1000)})
	require.NoError(t, err, "retention fenced nothing")

	full = fillDisk(t, filepath.Join(mnt, "filler2"))
	low, err := b.DeleteRecords(ctx, "deleterecords", 0, 200)
	require.NoError(t, err, "DeleteRecords on a full disk")
	require.EqualValues(t, 200, low)
	require.Greater(t, freeBytes(t, mnt), full, "DeleteRecords freed room")
	_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "deleterecords", Acks: api.AcksAll, Batches: diskfullBatch(t, n, 1000)})
	require.NoError(t, err, "DeleteRecords fenced nothing")

	full = fillDisk(t, filepath.Join(mnt, "filler3"))
	require.NoError(t, b.DeleteTopic(ctx, "deletetopic"), "DeleteTopic on a full disk")
	require.Greater(t, freeBytes(t, mnt), full, "DeleteTopic freed room")
	require.Equal(t, []string{"deleterecords", "retention"}, b.Topics())

	require.NoError(t, b.Close())
	b, err = runnel.Open(bcfg)
	require.NoError(t, err)
	require.Equal(t, []string{"deleterecords", "retention"}, b.Topics())
	start, vals = diskfullValues(t, b, "deleterecords")
	require.EqualValues(t, 200, start)
	require.Len(t, vals, n+1-200)
	for i, v := range vals {
		require.Equal(t, 200+i, v)
	}
	start, vals = diskfullValues(t, b, "retention")
	require.Len(t, vals, n+1-int(start))
	for i, v := range vals {
		require.Equal(t, int(start)+i, v)
	}
}

// TestDiskFullAdmin runs the admin calls that write files on a full disk:
// CreateTopic, CreatePartitions and AlterTopicConfig fail with
// syscall.ENOSPC and leave nothing half made (the topic is not listed,
// the partition count and config are as they were, before and after a
// reopen); InitProducerID fails the same way; each works once room is
// freed.
func TestDiskFullAdmin(t *testing.T) {
	ctx := context.Background()
	mnt := mountTmpfs(t, 512<<10, 0)
	dir := filepath.Join(mnt, "data")
	b, err := runnel.Open(runnel.Config{Dir: dir})
	require.NoError(t, err)
	defer func() { b.Close() }()
	cfg := log.Config{SegmentBytes: 32 << 10}
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: cfg}))
	fillDisk(t, filepath.Join(mnt, "filler"))

	err = b.CreateTopic(ctx, "u", log.TopicConfig{Partitions: 2, Config: cfg})
	t.Logf("CreateTopic: %v", err)
	require.ErrorIs(t, err, syscall.ENOSPC)
	err = b.CreatePartitions(ctx, "t", 3)
	t.Logf("CreatePartitions: %v", err)
	require.ErrorIs(t, err, syscall.ENOSPC)
	altered := cfg
	altered.MaxMessageBytes = 5000
	err = b.AlterTopicConfig(ctx, "t", altered)
	t.Logf("AlterTopicConfig: %v", err)
	require.ErrorIs(t, err, syscall.ENOSPC)
	_, _, err = b.InitProducerID(ctx)
	t.Logf("InitProducerID: %v", err)
	require.ErrorIs(t, err, syscall.ENOSPC)

	check := func(b *runnel.Broker) {
		t.Helper()
		require.Equal(t, []string{"t"}, b.Topics())
		d, err := b.DescribeTopic(ctx, "t")
		require.NoError(t, err)
		require.Len(t, d.Partitions, 1)
		require.Equal(t, cfg, d.Overrides)
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		for _, e := range entries {
			require.NotRegexp(t, `^(u-\d+|t-[12])$`, e.Name(), "a directory of the failed calls is left")
		}
	}
	check(b)
	require.NoError(t, os.Remove(filepath.Join(mnt, "filler")))
	require.NoError(t, b.Close())
	b, err = runnel.Open(runnel.Config{Dir: dir})
	require.NoError(t, err)
	check(b)
	require.NoError(t, b.CreateTopic(ctx, "u", log.TopicConfig{Partitions: 2, Config: cfg}))
	err = b.CreatePartitions(ctx, "t", 3)
	require.NoError(t, err)
	require.NoError(t, b.AlterTopicConfig(ctx, "t", altered))
	_, _, err = b.InitProducerID(ctx)
	require.NoError(t, err)
}

// TestInodesExhausted runs out of inodes rather than blocks: CreateTopic
// fails with syscall.ENOSPC and leaves no partition directory, and an
// append whose roll cannot create the new segment's files fails with the
// same error; after a reopen once inodes are free, every acknowledged
// record is there.
func TestInodesExhausted(t *testing.T) {
	ctx := context.Background()
	mnt := mountTmpfs(t, 8<<20, 48)
	dir := filepath.Join(mnt, "data")
	b, err := runnel.Open(runnel.Config{Dir: dir})
	require.NoError(t, err)
	defer func() { b.Close() }()
	cfg := log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 8 << 10}}
	var created []string
	var cerr error
	for i := 0; cerr == nil; i++ {
		name := fmt.Sprint("t", i)
		if cerr = b.CreateTopic(ctx, name, cfg); cerr == nil {
			created = append(created, name)
		}
		require.Less(t, i, 100, "the inodes never run out")
	}
	t.Logf("CreateTopic after %d topics: %v", len(created), cerr)
	require.ErrorIs(t, cerr, syscall.ENOSPC)
	require.Equal(t, created, b.Topics())
	_, err = os.Stat(filepath.Join(dir, fmt.Sprint("t", len(created), "-0")))
	require.ErrorIs(t, err, os.ErrNotExist, "the failed topic's directory is left")

	acked := 0
	var perr error
	for perr == nil {
		_, perr = b.Produce(ctx, &api.ProduceRequest{Topic: created[0], Acks: api.AcksAll, Batches: diskfullBatch(t, acked, 1000)})
		if perr == nil {
			acked++
		}
		require.Less(t, acked, 10000, "no roll failed")
	}
	t.Logf("append after %d: %v", acked, perr)
	require.ErrorIs(t, perr, syscall.ENOSPC)
	require.True(t, api.IsRetriable(perr))
	t.Logf("Close: %v", b.Close())

	growInodes := func() {
		require.NoError(t, syscall.Mount("tmpfs", mnt, "tmpfs", syscall.MS_REMOUNT, "nr_inodes=1000"))
	}
	growInodes()
	b, err = runnel.Open(runnel.Config{Dir: dir})
	require.NoError(t, err)
	_, vals := diskfullValues(t, b, created[0])
	require.GreaterOrEqual(t, len(vals), acked)
	for i := range vals {
		require.Equal(t, i, vals[i])
	}
	_, err = b.Produce(ctx, &api.ProduceRequest{Topic: created[0], Acks: api.AcksAll, Batches: diskfullBatch(t, len(vals), 1000)})
	require.NoError(t, err)
}

// TestDiskFullRandom runs random produces (several topics, tiny segments,
// each fsync policy, compaction on one topic), DeleteRecords, retention
// and compaction runs, DeleteTopic and CreateTopic on a tmpfs that fills
// up and is grown now and then; after each reopen (on a grown disk) every
// record acknowledged to a topic that was not deleted is there, in order,
// unless DeleteRecords or retention passed it (compaction keeps each
// key's last record). Seeds 1 and 2 by default; RUNNEL_DISKFULL_RUNS=N
// runs N seeds from one picked from the clock (as testkit.Seeds does, so
// that a long run tries seeds the last one did not), or from
// RUNNEL_DISKFULL_SEED; RUNNEL_DISKFULL_FS=xfs or btrfs runs them on an
// image of that file system rather than a tmpfs (see mountImage), grown
// by shrinking its pad.
func TestDiskFullRandom(t *testing.T) {
	runs, first := 2, uint64(1)
	if s := os.Getenv("RUNNEL_DISKFULL_RUNS"); s != "" {
		var err error
		runs, err = strconv.Atoi(s)
		require.NoError(t, err)
		first = testkit.ClockSeed()
	}
	if s := os.Getenv("RUNNEL_DISKFULL_SEED"); s != "" {
		var err error
		first, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
	}
	t.Logf("seeds %d to %d (RUNNEL_DISKFULL_RUNS=%d RUNNEL_DISKFULL_SEED=%d)", first, first+uint64(runs)-1, runs, first)
	for seed := first; seed < first+uint64(runs); seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			vars := []string{"RUNNEL_DISKFULL_RUNS=1", fmt.Sprint("RUNNEL_DISKFULL_SEED=", seed)}
			if fs := os.Getenv("RUNNEL_DISKFULL_FS"); fs != "" {
				vars = append(vars, "RUNNEL_DISKFULL_FS="+fs)
			}
			defer testkit.ReplayOnFailure(t, vars...)()
			diskfullRandom(t, seed)
		})
	}
}

// randomDisk mounts the file system of TestDiskFullRandom
// (RUNNEL_DISKFULL_FS) with size bytes of room, and gives a function that
// gives it size bytes of room again, more than before.
func randomDisk(t *testing.T, size int64) (mnt string, grow func(size int64)) {
	var imgSize int64
	switch fs := os.Getenv("RUNNEL_DISKFULL_FS"); fs {
	case "", "tmpfs":
		mnt = mountTmpfs(t, size, 0)
		return mnt, func(size int64) { growTmpfs(t, mnt, size) }
	case "xfs":
		imgSize = 320 << 20
	case "btrfs":
		imgSize = 128 << 20
	default:
		t.Fatalf("RUNNEL_DISKFULL_FS=%s: tmpfs, xfs or btrfs", fs)
	}
	mnt = mountImage(t, os.Getenv("RUNNEL_DISKFULL_FS"), imgSize, size, "-q")
	return mnt, func(newSize int64) {
		pad := filepath.Join(mnt, "pad")
		fi, err := os.Stat(pad)
		require.NoError(t, err)
		require.NoError(t, os.Truncate(pad, max(0, fi.Size()-(newSize-size))))
		size = newSize
	}
}

// diskfullTopic is what the random run knows of a topic: the values
// acknowledged to partition 0, and those of failed produces.
type diskfullTopic struct {
	acked  []int
	maybe  map[int]bool
	policy log.CleanupPolicy
}

func diskfullRandom(t *testing.T, seed uint64) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 0))
	size := int64(256<<10) + rng.Int64N(256<<10)
	mnt, grow := randomDisk(t, size)
	dir := filepath.Join(mnt, "data")
	bcfg := runnel.Config{Dir: dir, MaintenanceInterval: time.Hour}
	b, err := runnel.Open(bcfg)
	require.NoError(t, err)
	defer func() { b.Close() }()
	topics := map[string]*diskfullTopic{}
	next, failed := 0, 0
	defer func() { t.Logf("%d produces failed", failed) }()
	policies := []log.SyncPolicy{log.SyncAlways, log.SyncPeriodic, log.SyncNever}
	create := func(name string) {
		cfg := log.Config{SegmentBytes: 8<<10 + rng.Int64N(24<<10), Sync: policies[rng.IntN(3)], FlushMessages: 5}
		if rng.IntN(4) == 0 {
			cfg.CleanupPolicy = log.Compact | log.Delete
		}
		if rng.IntN(3) == 0 {
			cfg.RetentionBytes = 32 << 10
		}
		if err := b.CreateTopic(ctx, name, log.TopicConfig{Partitions: 1, Config: cfg}); err == nil {
			topics[name] = &diskfullTopic{maybe: map[int]bool{}, policy: cfg.CleanupPolicy}
		} else {
			t.Logf("CreateTopic %s: %v", name, err)
		}
	}
	reopen := func() {
		if err := b.Close(); err != nil {
			t.Logf("Close: %v", err)
		}
		// Open rewrites the tails of the logs that failed, saving a copy
		// first: it needs room for it (see docs/details.md, "After a failed
		// fsync").
		for {
			size += 64 << 10
			grow(size)
			if b, err = runnel.Open(bcfg); err == nil {
				break
			}
			t.Logf("Open: %v", err)
			require.ErrorIs(t, err, syscall.ENOSPC)
			require.Less(t, size, int64(64<<20), "Open fails with room")
		}
		for name, tp := range topics {
			_, vals := diskfullValues(t, b, name)
			compacted := tp.policy&log.Compact != 0
			i, matched := 0, false
			for _, v := range vals {
				j := i
				for j < len(tp.acked) && tp.acked[j] != v {
					j++
				}
				if j == len(tp.acked) {
					require.True(t, tp.maybe[v], "%s: record %d was never produced, or is out of order", name, v)
					continue
				}
				// Acknowledged records skipped: below the log start
				// (DeleteRecords, retention), or compacted away.
				require.True(t, compacted || !matched || j == i, "%s: acknowledged records %v lost", name, tp.acked[i:j])
				i, matched = j+1, true
			}
			if !compacted && len(tp.acked) > 0 {
				require.Equal(t, len(tp.acked), i, "%s: acknowledged records %v lost at the end", name, tp.acked[i:])
			}
		}
	}
	for i := range 4 {
		create(fmt.Sprint("t", i))
	}
	for op := range 600 {
		names := b.Topics()
		if len(names) == 0 {
			create(fmt.Sprint("t", op))
			continue
		}
		name := names[rng.IntN(len(names))]
		tp := topics[name]
		switch r := rng.IntN(100); {
		case r < 80:
			v := next
			next++
			batch := diskfullBatchKeyed(t, v, 200+rng.IntN(1800))
			if _, err := b.Produce(ctx, &api.ProduceRequest{Topic: name, Acks: api.AcksAll, Batches: batch}); err == nil {
				tp.acked = append(tp.acked, v)
			} else if errors.Is(err, log.ErrRollFailed) {
				// xfs allocates inodes as it goes: the roll could not
				// create the new segment. Nothing was written.
				require.ErrorIs(t, err, syscall.ENOSPC)
				require.NotErrorIs(t, err, log.ErrLogFenced)
				failed++
			} else {
				require.ErrorIs(t, err, log.ErrLogFenced)
				tp.maybe[v] = true
				failed++
			}
		case r < 85:
			d, err := b.DescribeTopic(ctx, name)
			require.NoError(t, err)
			if hw := d.Partitions[0].HighWatermark; hw > 0 && tp.policy&log.Delete != 0 {
				_, err := b.DeleteRecords(ctx, name, 0, rng.Int64N(hw+1))
				if err != nil {
					t.Logf("DeleteRecords %s: %v", name, err)
				}
			}
		case r < 90:
			if err := b.Maintain(ctx); err != nil {
				t.Logf("Maintain: %v", err)
			}
		case r < 93:
			if err := b.DeleteTopic(ctx, name); err == nil {
				delete(topics, name)
			} else {
				t.Logf("DeleteTopic %s: %v", name, err)
			}
		case r < 99:
			create(fmt.Sprint("t", op))
		default:
			reopen()
		}
	}
	reopen()
}

// diskfullBatchKeyed is diskfullBatch with a key of 7 (for the compacted
// topics).
func diskfullBatchKeyed(t testing.TB, i, size int) []byte {
	val := make([]byte, size)
	binary.BigEndian.PutUint64(val, uint64(i))
	return leakBatch(t, strconv.Itoa(i%7), val)
}

// TestDiskFullOpenClean opens on a full disk a directory closed cleanly
// before it filled: Open needs no room for it, and every record is there.
func TestDiskFullOpenClean(t *testing.T) {
	ctx := context.Background()
	mnt := mountTmpfs(t, 512<<10, 0)
	cfg := runnel.Config{Dir: filepath.Join(mnt, "data")}
	b, err := runnel.Open(cfg)
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 16 << 10}}))
	for i := range 100 {
		_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: diskfullBatch(t, i, 1000)})
		require.NoError(t, err)
	}
	require.NoError(t, b.Close())
	fillDisk(t, filepath.Join(mnt, "filler"))
	b, err = runnel.Open(cfg)
	require.NoError(t, err, "Open on a full disk")
	defer b.Close()
	_, vals := diskfullValues(t, b, "t")
	require.Len(t, vals, 100)
	for i, v := range vals {
		require.Equal(t, i, v)
	}
}

// TestDiskFullCompaction runs the log cleaner on a full disk: it needs
// room for the cleaned copy, so the pass fails with syscall.ENOSPC, but
// it fences nothing and leaves no file of its own behind; the partition
// takes records, and the pass runs once room is freed, keeping each key's
// last record.
func TestDiskFullCompaction(t *testing.T) {
	ctx := context.Background()
	mnt := mountTmpfs(t, 1<<20, 0)
	dir := filepath.Join(mnt, "data")
	b, err := runnel.Open(runnel.Config{Dir: dir, MaintenanceInterval: time.Hour})
	require.NoError(t, err)
	defer b.Close()
	cfg := log.Config{SegmentBytes: 32 << 10, CleanupPolicy: log.Compact, MinCleanableDirtyRatio: 0.01}
	require.NoError(t, b.CreateTopic(ctx, "c", log.TopicConfig{Partitions: 1, Config: cfg}))
	const n = 400
	for i := range n {
		_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "c", Acks: api.AcksAll, Batches: diskfullBatchKeyed(t, i, 1000)})
		require.NoError(t, err)
	}
	filler := filepath.Join(mnt, "filler")
	fillDisk(t, filler)
	err = b.Maintain(ctx)
	t.Logf("Maintain on the full disk: %v", err)
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.NotErrorIs(t, err, log.ErrLogFenced)
	names, err := os.ReadDir(filepath.Join(dir, "c-0"))
	require.NoError(t, err)
	for _, e := range names {
		require.NotContains(t, e.Name(), ".cleaned", "the failed pass left %s", e.Name())
	}
	require.NoError(t, os.Remove(filler))
	_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "c", Acks: api.AcksAll, Batches: diskfullBatchKeyed(t, n, 1000)})
	require.NoError(t, err, "the partition takes records")
	before := freeBytes(t, mnt)
	require.NoError(t, b.Maintain(ctx))
	require.Greater(t, freeBytes(t, mnt), before, "the pass freed room")
	_, vals := diskfullValues(t, b, "c")
	last := map[int]int{} // key → its last value
	for i := range n + 1 {
		last[i%7] = i
	}
	for _, v := range last {
		require.Contains(t, vals, v, "a key's last record is gone")
	}
	require.Less(t, len(vals), n/2, "nothing was compacted")
}

// diskfullChildEnv marks the child process of TestDiskFullKilled: the
// data directory it fills.
const diskfullChildEnv = "RUNNEL_TEST_DISKFULL_CHILD_DIR"

// TestDiskFullKilled fills a disk from a child process (the test binary
// again), one topic per fsync policy, and kills it there (it exits without
// Close), as a broker that stops on a full disk: the next process's Open,
// which knows nothing of the failures, recovers each log as after a crash.
// On the full disk that Open succeeds or fails with syscall.ENOSPC (it
// writes the recovered logs' indexes and checkpoints); once room is freed
// it succeeds and finds every acknowledged record of each topic in order.
func TestDiskFullKilled(t *testing.T) {
	if dir := os.Getenv(diskfullChildEnv); dir != "" {
		diskfullChild(t, dir)
		return
	}
	for _, kind := range diskKinds {
		t.Run(kind.name, func(t *testing.T) {
			mnt := kind.mount(t, 1<<20)
			ballast := filepath.Join(mnt, "ballast")
			require.NoError(t, os.WriteFile(ballast, make([]byte, 256<<10), 0o600))
			dir := filepath.Join(mnt, "data")
			exe, err := os.Executable()
			require.NoError(t, err)
			cmd := exec.Command(exe, "-test.run=^TestDiskFullKilled$", "-test.v")
			cmd.Env = append(os.Environ(), diskfullChildEnv+"="+dir)
			out, err := cmd.CombinedOutput()
			testkit.SkipIfCannotExec(t, err)
			require.NoError(t, err, "the child failed:\n%s", out)
			acked := map[string]int{}
			for _, line := range strings.Split(string(out), "\n") {
				var topic string
				var n int
				if _, err := fmt.Sscanf(strings.TrimSpace(line), "ACKED %s %d", &topic, &n); err == nil {
					acked[topic] = n
				}
			}
			require.Len(t, acked, 3, "the child's output:\n%s", out)
			b, err := runnel.Open(runnel.Config{Dir: dir})
			t.Logf("Open on the full disk: %v", err)
			if err != nil {
				require.ErrorIs(t, err, syscall.ENOSPC)
				require.NoError(t, os.Remove(ballast))
				b, err = runnel.Open(runnel.Config{Dir: dir})
				require.NoError(t, err)
			}
			defer b.Close()
			for topic, n := range acked {
				_, vals := diskfullValues(t, b, topic)
				require.GreaterOrEqual(t, len(vals), n, "%s: acknowledged records lost", topic)
				require.LessOrEqual(t, len(vals), n+1, "%s: more than the record whose produce failed", topic)
				for i, v := range vals {
					require.Equal(t, i, v, topic)
				}
			}
		})
	}
}

// diskfullChild is TestDiskFullKilled's child: it produces to each topic
// in turn until every one has failed, prints how many records each
// acknowledged, and exits without closing the broker.
func diskfullChild(t *testing.T, dir string) {
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{Dir: dir})
	require.NoError(t, err)
	policies := map[string]log.SyncPolicy{"always": log.SyncAlways, "periodic": log.SyncPeriodic, "never": log.SyncNever}
	acked := map[string]int{}
	failed := map[string]bool{}
	for topic, sync := range policies {
		cfg := log.Config{SegmentBytes: 32 << 10, Sync: sync, FlushMessages: 5}
		require.NoError(t, b.CreateTopic(ctx, topic, log.TopicConfig{Partitions: 1, Config: cfg}))
	}
	for len(failed) < len(policies) {
		for topic := range policies {
			if failed[topic] {
				continue
			}
			_, err := b.Produce(ctx, &api.ProduceRequest{Topic: topic, Acks: api.AcksAll, Batches: diskfullBatch(t, acked[topic], 1000)})
			if err != nil {
				require.ErrorIs(t, err, syscall.ENOSPC)
				failed[topic] = true
				continue
			}
			acked[topic]++
			require.Less(t, acked[topic], 10000, "the disk never fills")
		}
	}
	for topic, n := range acked {
		fmt.Printf("ACKED %s %d\n", topic, n)
	}
	os.Exit(0) // killed: no Close
}

// TestDiskFullRetentionTime: time retention on a full disk, every record
// of a topic past retention.ms, rolls the active segment so that it may
// go too, and the roll's seal writes the active segment's indexes, which
// needs room: the older segments go first, making it. (The old code
// rolled first: on a full disk the seal failed, fenced the partition and
// freed nothing.)
func TestDiskFullRetentionTime(t *testing.T) {
	for _, kind := range diskKinds {
		t.Run(kind.name, func(t *testing.T) {
			ctx := context.Background()
			mnt := kind.mount(t, 1<<20)
			clock := &stepClock{}
			clock.ns.Store(time.Now().UnixNano())
			b, err := runnel.Open(runnel.Config{Dir: filepath.Join(mnt, "data"), MaintenanceInterval: time.Hour, Clock: clock})
			require.NoError(t, err)
			defer b.Close()
			cfg := log.Config{SegmentBytes: 32 << 10, RetentionTime: time.Hour, IndexIntervalBytes: 1}
			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: cfg}))
			const n = 200
			for i := range n {
				_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: diskfullBatch(t, i, 1000)})
				require.NoError(t, err)
			}
			full := fillDisk(t, filepath.Join(mnt, "filler"))
			clock.ns.Add(int64(2 * time.Hour))
			require.NoError(t, b.Maintain(ctx), "time retention on a full disk")
			require.Greater(t, freeBytes(t, mnt), full, "retention freed room")
			d, err := b.DescribeTopic(ctx, "t")
			require.NoError(t, err)
			require.EqualValues(t, n, d.Partitions[0].LogStartOffset, "every record is past retention.ms")
			_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: diskfullBatch(t, n, 1000)})
			require.NoError(t, err, "retention fenced nothing")
		})
	}
}

// ext4ShutdownNoLogFlush is EXT4_IOC_SHUTDOWN's flag for a shutdown that
// neither syncs the file system nor flushes its journal: what a power cut
// leaves, the page cache lost (the ioctl is _IOR('X', 125, __u32)).
const (
	ext4IocShutdown        = 0x8004587d
	ext4ShutdownNoLogFlush = 2
)

// TestFSShutdown shuts an ext4 file system down under a running broker
// (EXT4_IOC_SHUTDOWN without a journal flush: every later operation fails
// with EIO, and what was not fsynced is lost, as in a power cut), then
// mounts it again: every call fails with an error matching syscall.EIO
// (a produce also log.ErrLogFenced), Close too, and the broker opened
// again finds every record acknowledged under SyncAlways, and under
// SyncNever a prefix of what was appended.
func TestFSShutdown(t *testing.T) {
	ctx := context.Background()
	mnt, img := mountExt4Image(t, 4<<20)
	dir := filepath.Join(mnt, "data")
	b, err := runnel.Open(runnel.Config{Dir: dir})
	require.NoError(t, err)
	defer func() { b.Close() }()
	for topic, sync := range map[string]log.SyncPolicy{"always": log.SyncAlways, "never": log.SyncNever} {
		require.NoError(t, b.CreateTopic(ctx, topic, log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 32 << 10, Sync: sync}}))
	}
	const n = 200
	for i := range n {
		for _, topic := range []string{"always", "never"} {
			_, err := b.Produce(ctx, &api.ProduceRequest{Topic: topic, Acks: api.AcksAll, Batches: diskfullBatch(t, i, 1000)})
			require.NoError(t, err)
		}
	}
	f, err := os.Open(mnt)
	require.NoError(t, err)
	flags := uint32(ext4ShutdownNoLogFlush)
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), ext4IocShutdown, uintptr(unsafe.Pointer(&flags)))
	require.NoError(t, f.Close())
	if errno != 0 {
		t.Skipf("EXT4_IOC_SHUTDOWN: %v", errno)
	}
	for _, topic := range []string{"always", "never"} {
		_, err := b.Produce(ctx, &api.ProduceRequest{Topic: topic, Acks: api.AcksAll, Batches: diskfullBatch(t, n, 1000)})
		t.Logf("produce to %s after the shutdown: %v", topic, err)
		if topic == "always" {
			// The append may go to the page cache; its fsync fails.
			require.ErrorIs(t, err, syscall.EIO)
			require.ErrorIs(t, err, log.ErrLogFenced)
		}
	}
	err = b.CreateTopic(ctx, "new", log.TopicConfig{Partitions: 1})
	t.Logf("CreateTopic after the shutdown: %v", err)
	require.ErrorIs(t, err, syscall.EIO)
	err = b.Close()
	t.Logf("Close after the shutdown: %v", err)
	require.ErrorIs(t, err, syscall.EIO)

	remountExt4(t, mnt, img)
	b, err = runnel.Open(runnel.Config{Dir: dir})
	require.NoError(t, err)
	require.Equal(t, []string{"always", "never"}, b.Topics())
	_, vals := diskfullValues(t, b, "always")
	require.GreaterOrEqual(t, len(vals), n, "records acknowledged under SyncAlways lost")
	for i, v := range vals {
		require.Equal(t, i, v)
	}
	_, vals = diskfullValues(t, b, "never")
	t.Logf("SyncNever kept %d of %d", len(vals), n)
	for i, v := range vals {
		require.Equal(t, i, v)
	}
	_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "always", Acks: api.AcksAll, Batches: diskfullBatch(t, len(vals), 1000)})
	require.NoError(t, err)
}

// TestFSShutdownUnderLoad shuts an ext4 file system down (as TestFSShutdown)
// at a random moment while producers append to several partitions under
// SyncAlways with group commit, then mounts it again: every record
// acknowledged before the shutdown began is there, once, and each
// producer's records in a partition in the order it produced them.
//
// Records acknowledged while the shutdown was under way (an fsync that
// raced the ioctl and returned success) are counted apart and may be
// lost: in a real power cut no such acknowledgement reaches anyone, and
// the kernel does the same to a bare write and fsync (a control run of
// eight goroutines appending to four files with write(2) and fsync(2) and
// nothing of runnel's lost, over 30 shutdowns, 11 of 15 records whose
// fsync returned after the shutdown began, and none before). A seed
// fixes the moment (partition 0's record count at the shutdown), not the
// interleaving: RUNNEL_FSSHUTDOWN_RUNS=N runs N seeds (see
// testkit.Seeds; 1 by default), each on a new image.
func TestFSShutdownUnderLoad(t *testing.T) {
	testkit.Seeds(t, "RUNNEL_FSSHUTDOWN_RUNS", 1, 1, fsShutdownUnderLoad)
}

func fsShutdownUnderLoad(t *testing.T, seed uint64) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 0x7368757464))
	mnt, img := mountExt4Image(t, 8<<20)
	dir := filepath.Join(mnt, "data")
	b, err := runnel.Open(runnel.Config{Dir: dir})
	require.NoError(t, err)
	defer func() { b.Close() }()
	const parts = 4
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: parts, Config: log.Config{SegmentBytes: 16 << 10}}))
	// acked[p] are the values acknowledged on partition p, in order.
	var mu sync.Mutex
	acked := make([][]int, parts)
	stop, reached := make(chan struct{}), make(chan struct{})
	target := 1 + rng.IntN(200)
	t.Logf("shutdown at partition 0's acknowledged record %d", target)
	var shutting atomic.Bool
	late := map[int]bool{}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := int32((w + i) % parts)
				v := w<<20 | i
				_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: p, Acks: api.AcksAll, Batches: diskfullBatch(t, v, 200)})
				if err != nil {
					return // the file system is gone
				}
				if shutting.Load() {
					// Acknowledged while the shutdown was under way: an
					// fsync that raced it (counted apart below).
					mu.Lock()
					late[v] = true
					mu.Unlock()
					continue
				}
				mu.Lock()
				acked[p] = append(acked[p], v)
				if p == 0 && len(acked[p]) == target {
					close(reached)
				}
				mu.Unlock()
			}
		}()
	}
	select { // a random moment: partition 0 has target records
	case <-reached:
	case <-time.After(time.Minute):
		t.Fatal("the producers never acknowledged the target")
	}
	f, err := os.Open(mnt)
	require.NoError(t, err)
	flags := uint32(ext4ShutdownNoLogFlush)
	shutting.Store(true)
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), ext4IocShutdown, uintptr(unsafe.Pointer(&flags)))
	require.NoError(t, f.Close())
	close(stop)
	wg.Wait()
	if errno != 0 {
		t.Skipf("EXT4_IOC_SHUTDOWN: %v", errno)
	}
	t.Logf("Close: %v", b.Close())
	remountExt4(t, mnt, img)
	b, err = runnel.Open(runnel.Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	require.NoError(t, err)
	got := make([][]int, parts)
	for _, r := range runneltest.ConsumeAll(t, b, "t") {
		got[r.Partition] = append(got[r.Partition], int(binary.BigEndian.Uint64(r.Value)))
	}
	total := 0
	for p := range parts {
		total += len(acked[p])
		have := map[int]bool{}
		last := map[int]int{} // producer → its last value read
		for _, v := range got[p] {
			require.False(t, have[v], "partition %d: %d twice", p, v)
			have[v] = true
			w := v >> 20
			if prev, ok := last[w]; ok {
				require.Greater(t, v, prev, "partition %d: producer %d's records out of order", p, w)
			}
			last[w] = v
		}
		for _, v := range acked[p] {
			require.True(t, have[v], "partition %d: acknowledged record %d lost; read %v; acknowledged %v", p, v, got[p], acked[p])
		}
	}
	lateLost := 0
	for v := range late {
		if !slices.Contains(got[(v>>20+v&(1<<20-1))%parts], v) {
			lateLost++
		}
	}
	t.Logf("%d records acknowledged before the shutdown, all there; %d of the %d acknowledged during it lost", total, lateLost, len(late))
}

// testWriter writes to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestDiskFullDeleteRecordsIdempotent: DeleteRecords to the high watermark
// of a partition that an idempotent producer writes (as the producer
// client does by default), on a full tmpfs: the producer-state snapshot
// the new start needs cannot be written, and the whole segments below go
// first, in whose room it then is; the partition is not fenced, and the
// producer's retry of its last batch is still a duplicate after a reopen.
// The merged code fenced the partition and freed nothing.
func TestDiskFullDeleteRecordsIdempotent(t *testing.T) {
	ctx := context.Background()
	mnt := mountTmpfs(t, 2<<20, 0)
	bcfg := runnel.Config{Dir: filepath.Join(mnt, "data"), MaintenanceInterval: time.Hour}
	b, err := runnel.Open(bcfg)
	require.NoError(t, err)
	defer func() { b.Close() }()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 32 << 10}}))
	pid, epoch, err := b.InitProducerID(ctx)
	require.NoError(t, err)
	batch := func(seq int) []byte {
		val := make([]byte, 1000)
		binary.BigEndian.PutUint64(val, uint64(seq))
		var rb record.Builder
		rb.Reset()
		rb.SetProducer(pid, epoch, int32(seq))
		rb.Append(time.Now().UnixMilli(), nil, val, nil)
		out, err := rb.AppendTo(nil, compression.None)
		require.NoError(t, err)
		return out
	}
	const n = 300
	for i := range n {
		_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(i)})
		require.NoError(t, err)
	}
	full := fillDisk(t, filepath.Join(mnt, "filler"))
	low, err := b.DeleteRecords(ctx, "t", 0, api.Latest)
	if err != nil {
		// The snapshot or checkpoint may still find no room: unfenced.
		require.ErrorIs(t, err, syscall.ENOSPC)
		require.NotErrorIs(t, err, log.ErrLogFenced, "DeleteRecords on a full disk fenced the partition")
		low, err = b.DeleteRecords(ctx, "t", 0, api.Latest)
	}
	require.NoError(t, err, "DeleteRecords again, in the room the first made")
	require.EqualValues(t, n, low)
	require.Greater(t, freeBytes(t, mnt), full, "DeleteRecords freed room")
	require.NoError(t, b.Close())

	b, err = runnel.Open(bcfg)
	require.NoError(t, err)
	resp, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(n - 1)})
	require.NoError(t, err, "the retry of the last batch")
	require.True(t, resp.Duplicate, "the retry of the last batch is a duplicate")
	require.EqualValues(t, n-1, resp.BaseOffset)
	d, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.EqualValues(t, n, d.Partitions[0].LogEndOffset, "nothing appended")
}
