package log

import (
	"fmt"
	"math"
	"path/filepath"
	"sort"

	"github.com/runnel/runnel/vfs"
)

// EpochEntry says that leader epoch Epoch began at offset StartOffset.
type EpochEntry struct {
	Epoch       int32
	StartOffset int64
}

// epochCache is the leader-epoch checkpoint (KIP-101/279): for each leader
// epoch, the first offset written in it. Guarded by Log.mu.
type epochCache struct {
	fs      vfs.FS
	dir     string
	entries []EpochEntry
}

// loadEpochs reads the leader-epoch checkpoint of dir as Kafka's
// LeaderEpochFileCache does, assigning its entries in turn: an entry
// removes the earlier ones whose epoch or start offset is not below its
// own, and one of the latest epoch at a larger start offset is dropped, so
// that the epochs and their start offsets grow whatever the file holds.
// An entry with a negative start offset, or an epoch beyond 32 bits,
// makes it malformed (ErrBadCheckpoint). One with a negative epoch is
// skipped: a runnel before 47bb5d7 recorded an append's negative
// LeaderEpoch (Kafka's -1, NO_PARTITION_LEADER_EPOCH), which is none, and
// then could not open the log again; Kafka's cache refuses such an entry,
// which its brokers never write.
func loadEpochs(fsys vfs.FS, dir string) (*epochCache, error) {
	c := &epochCache{fs: fsys, dir: dir}
	e, err := readCheckpoint(fsys, dir, leaderEpochFile, 2)
	if err != nil {
		return nil, err
	}
	for _, v := range e {
		if v[0] < 0 && v[0] >= math.MinInt32 && v[1] >= 0 {
			continue
		}
		if v[0] < 0 || v[0] > math.MaxInt32 || v[1] < 0 {
			return nil, fmt.Errorf("%w: %s: leader epoch entry %d %d", ErrBadCheckpoint, filepath.Join(dir, leaderEpochFile), v[0], v[1])
		}
		c.put(EpochEntry{Epoch: int32(v[0]), StartOffset: v[1]})
	}
	return c, nil
}

// put assigns entry as Kafka's LeaderEpochFileCache.assign does: if the
// latest entry is of entry's epoch and starts at or below it, nothing
// changes; otherwise the latest entries whose epoch or start offset is
// not below entry's go, and entry is appended. The epochs and their
// start offsets grow, as the binary searches over them need.
func (c *epochCache) put(entry EpochEntry) {
	if n := len(c.entries); n > 0 && c.entries[n-1].Epoch == entry.Epoch && c.entries[n-1].StartOffset <= entry.StartOffset {
		return
	}
	for n := len(c.entries); n > 0 && (c.entries[n-1].Epoch >= entry.Epoch || c.entries[n-1].StartOffset >= entry.StartOffset); n-- {
		c.entries = c.entries[:n-1]
	}
	c.entries = append(c.entries, entry)
}

func (c *epochCache) save() error {
	rows := make([][]int64, len(c.entries))
	for i, e := range c.entries {
		rows[i] = []int64{int64(e.Epoch), e.StartOffset}
	}
	return writeCheckpoint(c.fs, c.dir, leaderEpochFile, checkpointV0, rows)
}

// assign records that epoch starts at offset, if epoch is newer than the
// latest known one. The latest entries that start at or past offset go
// (see put): at Open, before the epochs are cut to the log end, the
// checkpoint may hold one past the batches that recovery assigns.
func (c *epochCache) assign(epoch int32, offset int64) error {
	if n := len(c.entries); n > 0 && c.entries[n-1].Epoch >= epoch {
		return nil
	}
	c.put(EpochEntry{Epoch: epoch, StartOffset: offset})
	return c.save()
}

// truncateFromEnd drops the epochs that start at or after offset.
func (c *epochCache) truncateFromEnd(offset int64) error {
	i := sort.Search(len(c.entries), func(i int) bool { return c.entries[i].StartOffset >= offset })
	if i == len(c.entries) {
		return nil
	}
	c.entries = c.entries[:i]
	return c.save()
}

// truncateFromStart drops epochs that end before offset; the epoch holding
// offset is moved to start there.
func (c *epochCache) truncateFromStart(offset int64) error {
	if !c.trimFromStart(offset) {
		return nil
	}
	return c.save()
}

// trimFromStart is truncateFromStart in memory only, the checkpoint left
// as it was (Open drops the epochs below the log start it finds: see
// trimEpochs); it reports whether it changed anything.
func (c *epochCache) trimFromStart(offset int64) bool {
	i := sort.Search(len(c.entries), func(i int) bool { return c.entries[i].StartOffset > offset })
	if i <= 1 && (len(c.entries) == 0 || c.entries[0].StartOffset >= offset) {
		return false
	}
	kept := append([]EpochEntry(nil), c.entries[i-1:]...)
	kept[0].StartOffset = offset
	c.entries = kept
	return true
}

// endOffsetFor answers OffsetForLeaderEpoch as Kafka's
// LeaderEpochFileCache.endOffsetFor does: for the latest epoch, that epoch
// and leo; for an epoch below it, the largest epoch the log knows at or
// below epoch and the start offset of the next one after it — or, for an
// epoch below every one the log knows (retention or DeleteRecords removed
// its records), epoch itself and the earliest one's start offset (the log
// start); (-1, -1) for UNDEFINED_EPOCH (-1), for an epoch above the
// latest, and when the log knows no epoch.
func (c *epochCache) endOffsetFor(epoch int32, leo int64) (int32, int64) {
	n := len(c.entries)
	switch {
	case epoch == -1 || n == 0:
		return -1, -1
	case c.entries[n-1].Epoch == epoch:
		return epoch, leo
	}
	i := sort.Search(n, func(i int) bool { return c.entries[i].Epoch > epoch })
	switch i {
	case n:
		return -1, -1
	case 0:
		return epoch, c.entries[0].StartOffset
	}
	return c.entries[i-1].Epoch, c.entries[i].StartOffset
}
