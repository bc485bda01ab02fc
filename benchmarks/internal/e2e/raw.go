package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// rawBatches returns the batches a producer would send for n records of
// value: as many full batches of at most BatchMaxBytes as fit, then one
// with the rest (nil when there is no rest), and the number of full ones.
func rawBatches(value []byte, n int) (full, rest []byte, nfull int, err error) {
	var bld record.Builder
	per := 0
	for bld.Size() <= BatchMaxBytes && per < max(n, 1) { // n = 0: still check that one record fits
		bld.Append(0, nil, value, nil)
		per++
	}
	if bld.Size() > BatchMaxBytes {
		per--
	}
	if per < 1 {
		return nil, nil, 0, fmt.Errorf("%w: one %d-byte record does not fit in a batch", ErrInvalidCase, len(value))
	}
	build := func(k int) ([]byte, error) {
		bld.Reset()
		for range k {
			bld.Append(0, nil, value, nil)
		}
		return bld.AppendTo(nil, compression.None)
	}
	if full, err = build(per); err != nil {
		return nil, nil, 0, err
	}
	if n%per > 0 {
		if rest, err = build(n % per); err != nil {
			return nil, nil, 0, err
		}
	}
	return full, rest, n / per, nil
}

// RawWrite is the limit Produce is measured against: writing the bytes of
// n records of c.Size, encoded as the record batches of at most
// BatchMaxBytes a producer would send, to one new file (vfs.OS in a fresh
// directory for Disk, a vfs.NewMem file for Mem), one Write per batch,
// with a Sync after each when c.Sync. Only c.Store, c.Size and c.Sync
// matter.
//
// Errors: ErrInvalidCase; the file system's errors.
func RawWrite(ctx context.Context, tm Timer, c Case, n int) (res Result, err error) {
	tm.StopTimer()
	if err := c.Validate(); err != nil {
		return res, err
	}
	full, rest, nfull, err := rawBatches(Value(c.Size), n)
	if err != nil {
		return res, err
	}
	write, done, err := rawFile(c)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, done()) }()

	tm.ResetTimer()
	tm.StartTimer()
	begin := time.Now()
	for range nfull {
		if err = write(full, 1); err != nil {
			break
		}
		if ctx.Err() != nil {
			err = ctx.Err()
			break
		}
	}
	if err == nil && rest != nil {
		err = write(rest, 1)
	}
	res.Elapsed = time.Since(begin)
	tm.StopTimer()
	if err != nil {
		return res, err
	}
	res.Records = int64(n)
	return res, nil
}

// rawFile creates the file of a raw workload: on vfs.OS in a fresh
// directory for Disk, on a vfs.NewMem for Mem. write appends b to it k
// times (one Write each), then syncs it once when c.Sync; done closes it
// and removes the directory.
func rawFile(c Case) (write func(b []byte, k int) error, done func() error, err error) {
	fs, dir := vfs.FS(vfs.NewMem()), "/raw"
	remove := func() error { return nil }
	if c.Store == Disk {
		fs = vfs.OS
		if dir, err = os.MkdirTemp(os.Getenv(DirEnv), "e2e-raw-"); err != nil {
			return nil, nil, err
		}
		remove = func() error { return os.RemoveAll(dir) }
	} else if err := fs.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	f, err := fs.Create(filepath.Join(dir, "raw.log"))
	if err != nil {
		return nil, nil, errors.Join(err, remove())
	}
	write = func(b []byte, k int) error {
		for range k {
			if _, err := f.Write(b); err != nil {
				return err
			}
		}
		if !c.Sync {
			return nil
		}
		return f.Sync()
	}
	return write, func() error { return errors.Join(f.Close(), remove()) }, nil
}

// RawLatency is the floor under Latency: the time to write the batch of
// one record of c.Size (as a producer with linger 0 sends it) to a file
// and, when c.Sync, to sync it, for n records sent at rate records per
// second on Latency's fixed schedule. No broker and no reader: what the
// file system and the device take. Only c.Store, c.Size and c.Sync
// matter. The records are sent on the schedule by a goroutine of their
// own, each latency running from its send, and written as a broker with
// group commit writes them: a record sent while a write stalls waits for
// it, as a record produced on schedule waits in a broker behind a stalled
// fsync, and then goes with every record that queued meanwhile, one Write
// each and one Sync for them all. (Timed from each write's start instead,
// a 100 ms fsync stall counted once where a broker's Latency counts it for
// the hundred records behind it; written and synced one at a time, the
// hundred waited for each other's syncs besides, which no broker with
// group commit makes them do.)
//
// Errors: ErrInvalidCase; the file system's errors.
func RawLatency(ctx context.Context, tm Timer, c Case, n int, rate float64) (res Result, err error) {
	tm.StopTimer()
	if err := c.Validate(); err != nil {
		return res, err
	}
	if rate <= 0 {
		return res, fmt.Errorf("%w: rate %v", ErrInvalidCase, rate)
	}
	batch, _, _, err := rawBatches(Value(c.Size), 1)
	if err != nil {
		return res, err
	}
	write, done, err := rawFile(c)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, done()) }()

	tm.ResetTimer()
	tm.StartTimer()
	sched := newSchedule(rate)
	lat, err := timeFromSend(ctx, n, sched, time.Now, func(k int) error { return write(batch, k) })
	res.Elapsed = time.Since(sched.begin)
	tm.StopTimer()
	if err != nil {
		return res, err
	}
	res.Records = int64(n)
	res.Latencies = slices.Sorted(slices.Values(lat))
	return res, nil
}

// timeFromSend sends n records on sched from a goroutine of its own, as
// Latency's producer sends them, each stamped with now as it is sent, and
// writes them on this one: each write(k) takes the k records sent since
// the last one began (at least one), so that a record sent while a write
// stalls waits for it and then goes in the next write with the others
// that queued, as in a broker with group commit. It returns each record's
// time from its send to the end of its write, in order of sending; on an
// error it stops the sender and returns the error, or ctx's.
func timeFromSend(ctx context.Context, n int, sched schedule, now func() time.Time, write func(k int) error) ([]time.Duration, error) {
	lat := make([]time.Duration, 0, n)
	sent := make(chan time.Time, n)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		defer close(sent)
		for i := range n {
			sched.wait(i)
			if sctx.Err() != nil {
				return
			}
			sent <- now()
		}
	}()
	var group []time.Time
	for at := range sent {
		group = append(group[:0], at)
	queued:
		for {
			select {
			case at, ok := <-sent:
				if !ok {
					break queued // the range ends next
				}
				group = append(group, at)
			default:
				break queued
			}
		}
		if err := write(len(group)); err != nil {
			stop()
			for range sent { // the sender ends at its next send
			}
			return nil, err
		}
		end := now()
		for _, at := range group {
			lat = append(lat, end.Sub(at))
		}
	}
	return lat, ctx.Err()
}
