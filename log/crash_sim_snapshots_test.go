package log

import (
	"slices"
	"testing"
)

// checkProducerState checks the log's idempotent producer state, in memory
// and in its snapshot files, against the model, between operations (what
// names the operation just done): every batch the state or a snapshot
// holds is one the producer appended at those offsets and that the log
// still holds (a truncation's or a crash's removal takes it out of both);
// the state remembers at least the model's window of each producer; no
// snapshot lies past the log end offset or below the log start offset;
// and the log knows of every snapshot file in its directory (one it does
// not know of would never be pruned, nor removed by a truncation below
// it; it may know of one whose write failed before the file was there). A snapshot's batches lie below its
// offset.
func (s *crashSim) checkProducerState(what string) {
	s.t.Helper()
	defer s.failIn.Store(s.failIn.Load())
	s.failIn.Store(-1)
	l := s.l
	start, end := l.LogStartOffset(), l.LogEndOffset()
	names, err := s.mem.List(crashDir)
	s.check(err == nil, "%s: listing the log directory: %v", what, err)
	files := snapshotOffsets(names)
	l.mu.Lock()
	known := slices.Clone(l.snapshots)
	state := producers{}
	for id, st := range l.producers {
		c := *st
		c.batches = slices.Clone(st.batches)
		state[id] = &c
	}
	l.mu.Unlock()
	for _, off := range files {
		s.check(slices.Contains(known, off), "%s: snapshot files %v, the log knows of %v", what, files, known)
		// A removal that failed (a transient fault) leaves one below the
		// log start offset, for the next prune: Open does not load it.
		// So does a removal a crash undid, when a stale marker then made
		// Open take the log for closed cleanly (it prunes nothing).
		s.check(off <= end && (off >= start || s.faulted.Load() || s.staleOpened), "%s: snapshot at %d outside [%d, %d] (files %v)", what, off, start, end, files)
		rows, err := readCheckpoint(s.mem, crashDir, snapshotName(off), 6)
		s.check(err == nil && len(rows) > 0 && rows[0][0] == -1 && rows[0][1] == off, "%s: snapshot at %d: %v, %v", what, off, err, rows)
		for _, r := range rows[1:] {
			if r[0] == appendTimeRow {
				// Only a batch the log stamped has one, with its time.
				s.checkAppendTime(what, "snapshot at "+snapshotName(off), r[1], r[2], r[3])
				continue
			}
			if r[0] == lastAppendRow {
				continue
			}
			b := producerBatch{firstSeq: int32(r[2]), lastSeq: int32(r[3]), firstOffset: r[4], lastOffs: r[5]}
			s.check(b.lastOffs < off, "%s: snapshot at %d holds producer %d's batch at [%d, %d]", what, off, r[0], b.firstOffset, b.lastOffs)
			s.checkHeld(what, "snapshot at "+snapshotName(off), r[0], int16(r[1]), b)
		}
	}
	for id, st := range state {
		for _, b := range st.batches {
			s.checkHeld(what, "the producer state", id, st.epoch, b)
			if b.appendTime != unknownAppendTime {
				s.checkAppendTime(what, "the producer state", id, b.firstOffset, b.appendTime)
			}
		}
	}
	for _, p := range s.producers {
		st := state[p.id]
		for _, b := range p.window {
			s.check(st != nil && st.epoch == b.epoch && slices.ContainsFunc(st.batches, func(x producerBatch) bool {
				return x.firstOffset == b.first && x.lastOffs == b.last && x.firstSeq == b.seq && x.lastSeq == b.lastSq
			}), "%s: producer %d's batch epoch %d seq %d at [%d, %d] forgotten (state %+v)", what, p.id, b.epoch, b.seq, b.first, b.last, st)
		}
	}
}

// checkHeld checks that batch b of producer id at epoch, which where
// holds, is one the model has live at those offsets.
func (s *crashSim) checkHeld(what, where string, id int64, epoch int16, b producerBatch) {
	s.t.Helper()
	i := slices.IndexFunc(s.producers, func(p *simProducer) bool { return p.id == id })
	s.check(i >= 0, "%s: %s holds unknown producer %d", what, where, id)
	ok := slices.ContainsFunc(s.producers[i].history, func(x *simBatch) bool {
		return x.state == batchLive && x.first == b.firstOffset && x.last == b.lastOffs && x.epoch == epoch &&
			x.seq == b.firstSeq && x.lastSq == b.lastSeq
	})
	s.check(ok, "%s: %s holds producer %d's batch epoch %d seq [%d, %d] at [%d, %d], which the log does not hold",
		what, where, id, epoch, b.firstSeq, b.lastSeq, b.firstOffset, b.lastOffs)
}

// checkAppendTime checks that where keeps append time t for producer id's
// batch at first, a batch the log holds: the time the model's batch was
// appended at on a LogAppendTime log, -1 on a CreateTime one.
func (s *crashSim) checkAppendTime(what, where string, id, first, t int64) {
	s.t.Helper()
	i := slices.IndexFunc(s.producers, func(p *simProducer) bool { return p.id == id })
	s.check(i >= 0, "%s: %s holds the append time of unknown producer %d", what, where, id)
	j := slices.IndexFunc(s.producers[i].history, func(x *simBatch) bool { return x.state == batchLive && x.first == first })
	s.check(j >= 0, "%s: %s holds the append time of producer %d's batch at %d, which the log does not hold", what, where, id, first)
	want := s.producers[i].history[j].appendTime
	s.check(t == want, "%s: %s holds append time %d for producer %d's batch at %d, want %d", what, where, t, id, first, want)
}

// checkRecoveryInfo checks what Open says of the producer-state snapshot
// it rebuilt the state from: none (-1), or one at or above the log start
// offset; none replayed after one at or past the log end offset.
func (s *crashSim) checkRecoveryInfo(info RecoveryInfo) {
	s.t.Helper()
	start, end := s.l.LogStartOffset(), s.l.LogEndOffset()
	snap, n := info.ProducerSnapshot, info.ProducerBatchesReplayed
	s.check(snap == -1 || snap >= start, "after the crash: producer snapshot %d below the log start offset %d", snap, start)
	s.check(n >= 0 && (snap < end || n == 0), "after the crash: %d batches replayed after the snapshot at %d (log end offset %d)", n, snap, end)
}

// TestCrashSimTransientFaults is the crash simulation (TestCrashSim) with
// transient faults as well: in each phase, one writing file-system
// operation (create, write, sync, truncate, remove, rename, directory
// sync) fails alone and the disk goes on. The log either returns the
// failure — the phase then ends in a power cut, as for a disk that died —
// or goes on as it says it does (a failure it logs and survives), when
// the checks after each operation and after the crash must hold as
// without the fault. In some phases the failed log is closed and opened
// again on the same file system, in the same boot, before the power cut
// (see crash_sim_reopen_test.go). A failing seed replays alone with
//
//	RUNNEL_CRASH_SIM_TRANSIENT_SEED=123 go test -run TestCrashSimTransientFaults -v ./log
//
// and RUNNEL_CRASH_SIM_TRANSIENT=N (RUNNEL_CRASH_SIM_TRANSIENT_BASE) runs
// N new seeds.
func TestCrashSimTransientFaults(t *testing.T) {
	crashSimSeeds(t, "RUNNEL_CRASH_SIM_TRANSIENT", 150, true)
}
