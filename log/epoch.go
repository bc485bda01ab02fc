package log

import (
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

func loadEpochs(fsys vfs.FS, dir string) (*epochCache, error) {
	c := &epochCache{fs: fsys, dir: dir}
	e, err := readCheckpoint(fsys, dir, leaderEpochFile, 2)
	if err != nil {
		return nil, err
	}
	for _, v := range e {
		c.entries = append(c.entries, EpochEntry{Epoch: int32(v[0]), StartOffset: v[1]})
	}
	return c, nil
}

func (c *epochCache) save() error {
	rows := make([][]int64, len(c.entries))
	for i, e := range c.entries {
		rows[i] = []int64{int64(e.Epoch), e.StartOffset}
	}
	return writeCheckpoint(c.fs, c.dir, leaderEpochFile, checkpointV0, rows)
}

// assign records that epoch starts at offset, if epoch is newer than the
// latest known one.
func (c *epochCache) assign(epoch int32, offset int64) error {
	if n := len(c.entries); n > 0 && c.entries[n-1].Epoch >= epoch {
		return nil
	}
	c.entries = append(c.entries, EpochEntry{Epoch: epoch, StartOffset: offset})
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
	i := sort.Search(len(c.entries), func(i int) bool { return c.entries[i].StartOffset > offset })
	if i <= 1 && (len(c.entries) == 0 || c.entries[0].StartOffset >= offset) {
		return nil
	}
	kept := append([]EpochEntry(nil), c.entries[i-1:]...)
	kept[0].StartOffset = offset
	c.entries = kept
	return c.save()
}

// endOffsetFor answers OffsetForLeaderEpoch: the largest epoch <= epoch the
// log knows, and the offset where the next epoch after it starts (or leo).
// (-1, -1) when the log has no epoch at or below epoch.
func (c *epochCache) endOffsetFor(epoch int32, leo int64) (int32, int64) {
	i := sort.Search(len(c.entries), func(i int) bool { return c.entries[i].Epoch > epoch })
	if i == 0 {
		return -1, -1
	}
	if i == len(c.entries) {
		return c.entries[i-1].Epoch, leo
	}
	return c.entries[i-1].Epoch, c.entries[i].StartOffset
}
