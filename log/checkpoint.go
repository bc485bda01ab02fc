package log

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/runnel/runnel/vfs"
)

// Checkpoint file names in a log directory.
const (
	recoveryPointFile = "recovery-point-checkpoint"
	logStartFile      = "log-start-offset-checkpoint"
	leaderEpochFile   = "leader-epoch-checkpoint"
	// cleanerFile is the cleaner checkpoint: the first dirty offset, below
	// which every key has been deduplicated against the rest of the log
	// (see Compact). oldCleanerFile is the name runnel gave it before its
	// cleaner mapped the dirty section only, when the checkpoint did not
	// have to mean that: Open ignores and removes it, so that the first
	// pass after an upgrade maps the whole cleanable log.
	cleanerFile       = "cleaner-checkpoint"
	oldCleanerFile    = "cleaner-offset-checkpoint"
	cleanShutdownFile = "clean-shutdown"
	producerFile      = "producer-state-checkpoint"
	tmpSuffix         = ".tmp"
)

// ErrBadCheckpoint is matched by errors reading a malformed checkpoint
// file.
var ErrBadCheckpoint = errors.New("runnel/log: malformed checkpoint file")

// writeCheckpoint atomically replaces dir/name with Kafka's checkpoint
// layout: version 0, the entry count, then one line per entry of
// space-separated integers.
func writeCheckpoint(fsys vfs.FS, dir, name string, entries [][]int64) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(entries))
	for _, e := range entries {
		for i, v := range e {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(strconv.FormatInt(v, 10))
		}
		b.WriteByte('\n')
	}
	return writeFileAtomic(fsys, dir, name, b.Bytes())
}

func writeFileAtomic(fsys vfs.FS, dir, name string, data []byte) error {
	tmp := filepath.Join(dir, name+tmpSuffix)
	f, err := fsys.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := fsys.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	return fsys.SyncDir(dir)
}

// readCheckpoint reads a checkpoint of entries with width integers each.
// A missing file gives nil entries and no error.
func readCheckpoint(fsys vfs.FS, dir, name string, width int) ([][]int64, error) {
	path := filepath.Join(dir, name)
	f, err := fsys.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	if size > 64<<20 {
		return nil, fmt.Errorf("%w: %s: %d bytes", ErrBadCheckpoint, path, size)
	}
	data := make([]byte, size)
	if _, err := f.ReadAt(data, 0); err != nil && err != io.EOF {
		return nil, err
	}
	return parseCheckpoint(data, width, path)
}

func parseCheckpoint(data []byte, width int, path string) ([][]int64, error) {
	bad := func(why string) error { return fmt.Errorf("%w: %s: %s", ErrBadCheckpoint, path, why) }
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		return strings.TrimSpace(sc.Text()), true
	}
	v, ok := line()
	if !ok || v != "0" {
		return nil, bad("unknown version")
	}
	c, ok := line()
	n, err := strconv.Atoi(c)
	if !ok || err != nil || n < 0 || n > len(data) {
		return nil, bad("bad entry count")
	}
	entries := make([][]int64, 0, n)
	for range n {
		l, ok := line()
		if !ok {
			return nil, bad("fewer entries than the count")
		}
		fields := strings.Fields(l)
		if len(fields) != width {
			return nil, bad("bad entry " + strconv.Quote(l))
		}
		e := make([]int64, width)
		for i, f := range fields {
			if e[i], err = strconv.ParseInt(f, 10, 64); err != nil {
				return nil, bad("bad number " + strconv.Quote(f))
			}
		}
		entries = append(entries, e)
	}
	if l, ok := line(); ok && l != "" {
		return nil, bad("more entries than the count")
	}
	return entries, nil
}

// readOffset reads a one-entry offset checkpoint; def if missing.
func readOffset(fsys vfs.FS, dir, name string, def int64) (int64, error) {
	e, err := readCheckpoint(fsys, dir, name, 1)
	if err != nil || len(e) == 0 {
		return def, err
	}
	return e[0][0], nil
}

func writeOffset(fsys vfs.FS, dir, name string, off int64) error {
	return writeCheckpoint(fsys, dir, name, [][]int64{{off}})
}
