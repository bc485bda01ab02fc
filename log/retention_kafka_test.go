package log

import (
	"context"
	"testing"
	"time"

	"pgregory.net/rapid"
)

type kafkaSeg struct {
	base, size, maxTs int64
}

// kafkaRetention is Kafka 3's UnifiedLog.deleteOldSegments over segs: the
// segments it leaves (a roll first appends an empty one at end).
func kafkaRetention(segs []kafkaSeg, start, hw, end, now int64, cfg Config) []kafkaSeg {
	// deleteOldSegments(predicate): LocalLog.deletableSegments, then
	// deleteSegments.
	del := func(pred func(i int) bool) {
		n := 0
		for n < len(segs) {
			upper := end
			if n+1 < len(segs) {
				upper = segs[n+1].base
			}
			lastEmpty := n == len(segs)-1 && segs[n].size == 0
			if hw >= upper && pred(n) && !lastEmpty {
				n++
			} else {
				break
			}
		}
		if n == 0 {
			return
		}
		if n == len(segs) {
			segs = append(segs, kafkaSeg{base: end, maxTs: -1})
		}
		segs = append([]kafkaSeg(nil), segs[n:]...)
	}
	del(func(i int) bool { return i+1 < len(segs) && segs[i+1].base <= start })
	if cfg.CleanupPolicy&Delete == 0 {
		return segs
	}
	if cfg.RetentionBytes > 0 {
		var size int64
		for _, s := range segs {
			size += s.size
		}
		if size >= cfg.RetentionBytes {
			diff := size - cfg.RetentionBytes
			del(func(i int) bool {
				if diff-segs[i].size >= 0 {
					diff -= segs[i].size
					return true
				}
				return false
			})
		}
	}
	if cfg.RetentionTime >= 0 {
		del(func(i int) bool {
			ts := segs[i].maxTs
			if ts == -1 && i == len(segs)-1 {
				return false // runnel's documented difference
			}
			return now-ts > cfg.RetentionTime.Milliseconds()
		})
	}
	return segs
}

// TestRetentionMatchesKafka checks ApplyRetention against a port of
// Kafka 3's UnifiedLog.deleteOldSegments (deleteLogStartOffsetBreached-,
// deleteRetentionSizeBreached- then deleteRetentionMsBreachedSegments,
// each through LocalLog.deletableSegments, and deleteSegments' roll) on
// random logs: one to three batches a segment, timestamps in the past,
// now, the future or none, DeleteRecords, truncations (empty active
// segments), a high watermark anywhere from the log start to the end,
// delete and compact+delete. runnel's documented difference is kept in
// the port: an active segment without a timestamp waits to roll (Kafka
// ages it by its file's modification time).
func TestRetentionMatchesKafka(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		e := newEnv(t)
		now := e.clock.Now().UnixMilli()
		one := int64(len(valueBatch(t, now, "a")))
		cfg := Config{
			Sync:           SyncAlways, // the high watermark is the durable offset
			SegmentBytes:   one * int64(rapid.IntRange(1, 3).Draw(rt, "segBatches")),
			RetentionBytes: one*int64(rapid.IntRange(0, 8).Draw(rt, "retBatches")) + int64(rapid.IntRange(-1, 1).Draw(rt, "retBytesDelta")),
			RetentionTime:  rapid.SampledFrom([]time.Duration{-1, time.Hour, time.Nanosecond, time.Millisecond}).Draw(rt, "retention"),
			CleanupPolicy:  rapid.SampledFrom([]CleanupPolicy{Delete, Delete | Compact}).Draw(rt, "policy"),
			// Timestamps up to 2 hours ahead, which Kafka's retention
			// port takes as they come: no TimestampAfterMax.
			TimestampAfterMax: -1,
		}
		if cfg.RetentionBytes <= 0 {
			cfg.RetentionBytes = -1
		}
		l, err := Open(e.dir, cfg, Options{FS: e.fs, Clock: e.clock})
		if err != nil {
			rt.Fatal(err)
		}
		defer l.Close()
		hour := time.Hour.Milliseconds()
		for range 3 {
			for range rapid.IntRange(0, 6).Draw(rt, "batches") {
				ts := rapid.SampledFrom([]int64{now - 2*hour, now, now + 2*hour, -1}).Draw(rt, "ts")
				appendOK(rt, l, valueBatch(t, ts, "a"))
			}
			if rapid.Bool().Draw(rt, "deleteRecords") {
				if _, err := l.DeleteRecordsBefore(context.Background(), rapid.Int64Range(0, l.LogEndOffset()).Draw(rt, "deleteBefore")); err != nil {
					rt.Fatal(err)
				}
			}
			if rapid.Bool().Draw(rt, "truncate") {
				if _, err := l.TruncateTo(rapid.Int64Range(l.LogStartOffset(), l.LogEndOffset()).Draw(rt, "truncateTo")); err != nil {
					rt.Fatal(err)
				}
			}
			start, end := l.LogStartOffset(), l.LogEndOffset()
			hw := rapid.Int64Range(start, end).Draw(rt, "highWatermark")
			l.durable.Store(hw)
			e.clock.Advance(time.Duration(rapid.IntRange(0, 3).Draw(rt, "hours")) * time.Hour)
			var before []kafkaSeg
			for _, s := range *l.segs.Load() {
				before = append(before, kafkaSeg{s.Base(), s.Size(), s.MaxTimestamp()})
			}
			want := kafkaRetention(before, start, hw, end, e.clock.Now().UnixMilli(), l.Config())
			if _, err := l.ApplyRetention(context.Background()); err != nil {
				rt.Fatal(err)
			}
			segs := *l.segs.Load()
			same := len(segs) == len(want)
			for i := 0; same && i < len(segs); i++ {
				same = segs[i].Base() == want[i].base
			}
			if !same {
				rt.Fatalf("segments %v, want bases %v (before %v, log start %d, high watermark %d, log end %d)",
					describeSegs(segs), want, before, start, hw, end)
			}
			if got, wantStart := l.LogStartOffset(), max(start, want[0].base); got != wantStart {
				rt.Fatalf("log start %d, want %d", got, wantStart)
			}
			l.durable.Store(l.LogEndOffset())
		}
	})
}
