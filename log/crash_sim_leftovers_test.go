package log

import (
	"context"
	"slices"

	"github.com/runnel/runnel/segment"
)

// checkLeftovers ends a crash simulation's run: whatever its failures,
// power cuts and reopens left on disk, a clean Open, a Maintain and a
// Close must leave only the live log's files (strayLogFiles), and a
// second Open and Close the same names. It closes the log the run ended
// with.
func (s *crashSim) checkLeftovers() {
	s.t.Helper()
	if s.l == nil {
		return
	}
	err := s.l.Close()
	s.l = nil
	s.check(err == nil, "leftover check: close: %v", err)
	var first []string
	for round := range 2 {
		opts := s.opts
		opts.FS = s.mem
		l, err := Open(crashDir, s.cfg, opts)
		s.check(err == nil, "leftover check: open: %v", err)
		var merr error
		if round == 0 {
			merr = l.Maintain(context.Background())
		}
		start := l.LogStartOffset()
		err = l.Close()
		s.check(merr == nil && err == nil, "leftover check: maintain: %v; close: %v", merr, err)
		names, err := s.mem.List(crashDir)
		s.check(err == nil, "leftover check: list: %v", err)
		strays := strayLogFiles(names, start)
		s.check(len(strays) == 0, "files of nothing live after a clean Open, Maintain and Close: %q, in %q", strays, names)
		if round == 0 {
			first = names
		} else {
			s.check(slices.Equal(first, names), "a second clean Open and Close changed the names: %q, then %q", first, names)
		}
	}
}

// strayLogFiles returns the names, of a log's directory closed cleanly
// with log start offset start, that belong to nothing live: not a
// segment's file (an index beside its .log) but a segment whose records
// all lie below the log start, not a checkpoint that a clean Close
// leaves, not one of the newest retainedSnapshots producer-state
// snapshots at or past the log start.
func strayLogFiles(names []string, start int64) []string {
	var bases, snaps []int64
	for _, name := range names {
		if base, suffix, ok := segment.ParseFileName(name); ok && suffix == segment.LogSuffix {
			bases = append(bases, base)
		}
	}
	var strays []string
	for _, name := range names {
		switch name {
		case recoveryPointFile, logStartFile, leaderEpochFile, cleanerFile, cleanShutdownFile:
			continue
		}
		base, suffix, ok := segment.ParseFileName(name)
		switch {
		case !ok:
		case suffix == segment.LogSuffix:
			if i, _ := slices.BinarySearch(bases, base); i+1 == len(bases) || bases[i+1] > start {
				continue
			}
		case suffix == segment.IndexSuffix || suffix == segment.TimeIndexSuffix:
			if _, found := slices.BinarySearch(bases, base); found {
				continue
			}
		case suffix == snapshotSuffix:
			if base >= start {
				snaps = append(snaps, base)
				continue
			}
		}
		strays = append(strays, name)
	}
	if len(snaps) > retainedSnapshots {
		for _, off := range snaps[:len(snaps)-retainedSnapshots] {
			strays = append(strays, snapshotName(off))
		}
	}
	return strays
}
