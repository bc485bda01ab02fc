//go:build linux

package runnel_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/runneltest"
	"github.com/runnel/runnel/vfs"
)

// These tests run a data directory's life (topics created, produced to,
// trimmed by DeleteRecords and retention, compacted, deleted, grown,
// closed and opened again: fsSetUp, fsLive) on the file systems runnel
// meets outside ext4 and tmpfs. As root on Linux they mount their own:
// an overlay as a container's root (the data directory on its upper
// layer, or baked into a lower one, also a copy of a directory whose
// broker ran, also with no room on the upper layer for the copy-up), an
// exFAT image through FUSE (case-insensitive; no links; inode numbers
// made up per name), and a tmpfs remounted read-only under a closed
// broker's directory. As another user, or without the tools, they skip;
// under -short, all but TestOverlayLowerLayer, TestLockDirInAnotherCase
// and TestOpenOnAReadOnlyFileSystem skip.
// RUNNEL_OVERLAY_OPTS adds options to the overlays' (metacopy=on,
// redirect_dir=on, index=on, xino=on, ...). TestFSScenario runs the life
// in a temporary directory, on the file system TMPDIR names:
//
//	TMPDIR=/mnt/btrfs go test -run TestFSScenario .
//
// The full-disk tests (diskfull_linux_test.go) run on xfs and btrfs
// images besides tmpfs and ext4.

// fsRecord is one record a scenario reads back: where it is and its
// number (fsBatch).
type fsRecord struct {
	topic     string
	partition int32
	offset    int64
	val       int
}

// fsBatch is one record keyed key%7 whose value is i, padded to 200 bytes.
func fsBatch(t testing.TB, i int) []byte {
	val := make([]byte, 200)
	binary.BigEndian.PutUint64(val, uint64(i))
	return leakBatch(t, fmt.Sprint("k", i%7), val)
}

func fsProduce(t *testing.T, b *runnel.Broker, topic string, p int32, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		_, err := b.Produce(context.Background(), &api.ProduceRequest{Topic: topic, Partition: p, Acks: api.AcksAll, Batches: fsBatch(t, i)})
		require.NoError(t, err, "%s-%d record %d", topic, p, i)
	}
}

// fsState reads every topic of b from its log start offsets.
func fsState(t *testing.T, b *runnel.Broker) []fsRecord {
	t.Helper()
	topics := b.Topics()
	var out []fsRecord
	for _, topic := range topics {
		for _, r := range runneltest.ConsumeAll(t, b, topic) {
			out = append(out, fsRecord{topic, r.Partition, r.Offset, int(binary.BigEndian.Uint64(r.Value))})
		}
	}
	slices.SortFunc(out, func(a, b fsRecord) int {
		if c := strings.Compare(a.topic, b.topic); c != 0 {
			return c
		}
		if a.partition != b.partition {
			return int(a.partition - b.partition)
		}
		return int(a.offset - b.offset)
	})
	return out
}

// fsLeftovers lists the files under dir that a closed broker should not
// leave: temporaries of its renames and of compaction.
func fsLeftovers(t *testing.T, dir string) []string {
	t.Helper()
	var left []string
	require.NoError(t, filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		for _, suf := range []string{".tmp", ".cleaned", ".swap", ".rewrite", ".deleted"} {
			if strings.HasSuffix(d.Name(), suf) {
				left = append(left, path)
			}
		}
		return nil
	}))
	return left
}

// fsSetUp is the first life of a data directory: three topics with
// records, closed cleanly.
func fsSetUp(t *testing.T, dir string) { fsSetUpCopy(t, dir, "") }

// fsSetUpCopy is fsSetUp which, if to is not "", copies the directory to
// to before the close, as a container image is made of a running one
// (docker commit): a copy of a broker that did not close.
func fsSetUpCopy(t *testing.T, dir, to string) {
	t.Helper()
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{Dir: dir, MaintenanceInterval: time.Hour})
	require.NoError(t, err)
	seg := log.Config{SegmentBytes: 4 << 10, SegmentIndexBytes: 4 << 10, IndexIntervalBytes: 512}
	require.NoError(t, b.CreateTopic(ctx, "d", log.TopicConfig{Partitions: 2, Config: seg}))
	cc := seg
	cc.CleanupPolicy = log.Compact
	cc.MinCleanableDirtyRatio = 0.01
	require.NoError(t, b.CreateTopic(ctx, "c", log.TopicConfig{Partitions: 1, Config: cc}))
	require.NoError(t, b.CreateTopic(ctx, "gone", log.TopicConfig{Partitions: 1, Config: seg}))
	fsProduce(t, b, "d", 0, 0, 100)
	fsProduce(t, b, "d", 1, 0, 100)
	fsProduce(t, b, "c", 0, 0, 100)
	fsProduce(t, b, "gone", 0, 0, 50)
	if to != "" {
		out, err := exec.Command("cp", "-a", dir, to).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	require.NoError(t, b.Close())
}

// fsLive is the second life: every admin call a data directory sees,
// then a close and an open that must find what the first broker left.
// reopen, if not nil, runs between the two (a remount).
func fsLive(t *testing.T, dir string, reopen func()) {
	t.Helper()
	ctx := context.Background()
	cfg := runnel.Config{Dir: dir, MaintenanceInterval: time.Hour}
	b, err := runnel.Open(cfg)
	require.NoError(t, err)
	before := fsState(t, b)
	require.Len(t, before, 350)
	fsProduce(t, b, "d", 0, 100, 150)
	fsProduce(t, b, "c", 0, 100, 150)
	lso, err := b.DeleteRecords(ctx, "d", 1, 60)
	require.NoError(t, err)
	require.EqualValues(t, 60, lso)
	require.NoError(t, b.DeleteTopic(ctx, "gone"))
	require.NoError(t, b.CreatePartitions(ctx, "d", 3))
	fsProduce(t, b, "d", 2, 0, 10)
	require.NoError(t, b.AlterTopicConfig(ctx, "d", log.Config{SegmentBytes: 4 << 10, SegmentIndexBytes: 4 << 10, IndexIntervalBytes: 512, RetentionBytes: 8 << 10}))
	require.NoError(t, b.Maintain(ctx))
	require.NoError(t, b.CreateTopic(ctx, "gone", log.TopicConfig{Partitions: 1}))
	fsProduce(t, b, "gone", 0, 1000, 1001)
	after := fsState(t, b)

	// What Maintain and DeleteRecords must have done.
	byTP := map[string][]int{}
	for _, r := range after {
		k := fmt.Sprint(r.topic, "-", r.partition)
		byTP[k] = append(byTP[k], r.val)
	}
	require.Equal(t, []int{1000}, byTP["gone-0"])
	require.Len(t, byTP["d-2"], 10)
	require.Less(t, len(byTP["d-0"]), 150, "retention deleted nothing")
	require.Equal(t, 149, byTP["d-0"][len(byTP["d-0"])-1])
	require.Less(t, len(byTP["c-0"]), 150, "compaction removed nothing")
	for k := 143; k < 150; k++ {
		require.Contains(t, byTP["c-0"], k, "a key's last record is gone")
	}
	require.NoError(t, b.Close())
	require.Empty(t, fsLeftovers(t, dir))

	if reopen != nil {
		reopen()
	}
	b, err = runnel.Open(cfg)
	require.NoError(t, err)
	require.Equal(t, after, fsState(t, b), "the reopened broker reads otherwise")
	require.NoError(t, b.Close())
	require.Empty(t, fsLeftovers(t, dir))
}

// mountOverlay mounts an overlay of lower on a new directory, as a
// container's root is; it gives the merged directory and a function that
// unmounts and mounts it again (the upper layer kept).
func mountOverlay(t *testing.T, lower string) (merged string, remount func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root, to mount an overlay")
	}
	return mountOverlayOn(t, lower, t.TempDir())
}

// mountOverlayOn is mountOverlay with the upper layer (and the overlay's
// work directory) made in base.
func mountOverlayOn(t *testing.T, lower, base string) (merged string, remount func()) {
	t.Helper()
	upper, work := filepath.Join(base, "upper"), filepath.Join(base, "work")
	merged = t.TempDir()
	for _, d := range []string{upper, work} {
		require.NoError(t, os.Mkdir(d, 0o755))
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	if extra := os.Getenv("RUNNEL_OVERLAY_OPTS"); extra != "" {
		opts += "," + extra // metacopy=on,redirect_dir=on,index=on, xino=on, volatile
	}
	mount := func() error { return syscall.Mount("overlay", merged, "overlay", 0, opts) }
	if err := mount(); err != nil {
		t.Skipf("cannot mount an overlay (%v)", err)
	}
	mounted := true
	t.Cleanup(func() {
		if mounted {
			if err := syscall.Unmount(merged, 0); err != nil {
				t.Errorf("unmount %s: %v", merged, err)
			}
		}
	})
	return merged, func() {
		require.NoError(t, syscall.Unmount(merged, 0))
		mounted = false
		require.NoError(t, mount())
		mounted = true
	}
}

// TestOverlayLowerLayer: a data directory baked into a container image's
// layer (the lower layer of an overlay) is opened, written, compacted,
// trimmed and closed through the overlay, and opened again after a
// remount: every file runnel opens is copied up before it writes, so
// nothing of the lower copy must show through.
func TestOverlayLowerLayer(t *testing.T) {
	lower := t.TempDir()
	fsSetUp(t, filepath.Join(lower, "data"))
	merged, remount := mountOverlay(t, lower)
	fsLive(t, filepath.Join(merged, "data"), remount)
}

// TestOverlayLowerLayerUnclean is TestOverlayLowerLayer with a copy of
// the data directory taken while its broker ran in the lower layer: the
// broker that opens it through the overlay recovers it as after a kill.
func TestOverlayLowerLayerUnclean(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no second overlay")
	}
	lower := t.TempDir()
	fsSetUpCopy(t, filepath.Join(t.TempDir(), "data"), filepath.Join(lower, "data"))
	merged, remount := mountOverlay(t, lower)
	fsLive(t, filepath.Join(merged, "data"), remount)
}

// TestOverlayUpperLayer is TestOverlayLowerLayer with the data directory
// made through the overlay, on its upper layer.
func TestOverlayUpperLayer(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no second overlay")
	}
	merged, remount := mountOverlay(t, t.TempDir())
	dir := filepath.Join(merged, "data")
	fsSetUp(t, dir)
	fsLive(t, dir, remount)
}

// TestOverlayCopyUpFull: the upper layer has no room for the copy-up of
// a data directory baked into the lower one, which Open needs (it opens
// its files for writing). Open fails with syscall.ENOSPC and releases the
// directory; once room is freed, the directory lives on as in
// TestOverlayLowerLayer, nothing lost.
func TestOverlayCopyUpFull(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no second overlay")
	}
	lower := t.TempDir()
	fsSetUp(t, filepath.Join(lower, "data"))
	upper := mountTmpfs(t, 64<<10, 0)
	merged, _ := mountOverlayOn(t, lower, upper)
	dir := filepath.Join(merged, "data")
	_, err := runnel.Open(runnel.Config{Dir: dir, MaintenanceInterval: time.Hour})
	t.Logf("Open on a full upper layer: %v", err)
	require.ErrorIs(t, err, syscall.ENOSPC)
	growTmpfs(t, upper, 16<<20)
	fsLive(t, dir, nil)
}

// TestFSScenario runs the two lives of a data directory in a temporary
// directory: on the file system TMPDIR names.
func TestFSScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the overlay's run is enough")
	}
	dir := filepath.Join(t.TempDir(), "data")
	fsSetUp(t, dir)
	fsLive(t, dir, nil)
}

// mountExfatFuse makes an exFAT image of size bytes and mounts it through
// FUSE (exfat-fuse) on a new directory: a case-insensitive file system
// without hard links, symbolic links or sparse files, whose inode numbers
// FUSE makes up per name. Unmounted (and the device released) by
// t.Cleanup; it skips the test unless the process may (root, mkfs.exfat,
// mount.exfat-fuse and /dev/fuse).
func mountExfatFuse(t *testing.T, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root, to mount an exFAT image")
	}
	mkfs, err := exec.LookPath("mkfs.exfat")
	if err != nil {
		t.Skip("no mkfs.exfat")
	}
	mount, err := exec.LookPath("mount.exfat-fuse")
	if err != nil {
		t.Skip("no mount.exfat-fuse")
	}
	img := filepath.Join(t.TempDir(), "exfat.img")
	require.NoError(t, os.WriteFile(img, nil, 0o600))
	require.NoError(t, os.Truncate(img, size))
	// -b 4K: the default boundary alignment refuses an image of a few MiB.
	if out, err := exec.Command(mkfs, "-b", "4K", img).CombinedOutput(); err != nil {
		t.Skipf("mkfs.exfat: %v: %s", err, out)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).Output()
	if err != nil {
		t.Skipf("no loop device (%v)", err)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	dir := t.TempDir()
	if out, err := exec.Command(mount, dev, dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount an exFAT image through FUSE (%v): %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// TestLockDirInAnotherCase: on a case-insensitive file system, a broker
// directory named in another case is the same directory, and its lock
// keeps a second broker out. exfat-fuse (as other FUSE file systems on
// libfuse's high-level API) gives a file reached by two spellings two
// inode numbers, and flock(2) two locks: the second broker, given the
// directory as "data", used to open it while the first ran on "Data".
func TestLockDirInAnotherCase(t *testing.T) {
	mnt := mountExfatFuse(t, 64<<20)
	b, err := runnel.Open(runnel.Config{Dir: filepath.Join(mnt, "Data")})
	require.NoError(t, err)
	defer b.Close()
	for _, name := range []string{"Data", "data", "DATA", "dATA"} {
		b2, err := runnel.Open(runnel.Config{Dir: filepath.Join(mnt, name)})
		if err == nil {
			b2.Close()
		}
		require.ErrorIs(t, err, vfs.ErrLocked, name)
	}
}

// TestOpenOnAReadOnlyFileSystem: a data directory on a file system mounted
// read-only (a backup's snapshot mounted to look at, a volume an operator
// remounted) is refused by Open with the file system's error, matching
// syscall.EROFS and naming the directory, and changes nothing there; once
// the file system is writable again, Open finds every record. runnel has
// no read-only Open: the lock and a clean reopen's marker removal write.
func TestOpenOnAReadOnlyFileSystem(t *testing.T) {
	mnt := mountTmpfs(t, 8<<20, 0)
	dir := filepath.Join(mnt, "data")
	fsSetUp(t, dir)
	b, err := runnel.Open(runnel.Config{Dir: dir})
	require.NoError(t, err)
	want := fsState(t, b)
	require.NoError(t, b.Close())
	before := fsTree(t, dir)

	require.NoError(t, syscall.Mount("", mnt, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""))
	_, err = runnel.Open(runnel.Config{Dir: dir})
	require.ErrorIs(t, err, syscall.EROFS)
	require.ErrorContains(t, err, dir)
	require.Equal(t, before, fsTree(t, dir), "a refused Open changed the directory")

	require.NoError(t, syscall.Mount("", mnt, "", syscall.MS_REMOUNT, ""))
	b, err = runnel.Open(runnel.Config{Dir: dir})
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	require.Equal(t, want, fsState(t, b))
}

// fsTree lists every file and directory under dir with its size.
func fsTree(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	tree := map[string]int64{}
	require.NoError(t, filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		tree[path] = info.Size()
		return nil
	}))
	return tree
}
