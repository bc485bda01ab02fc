package benchmarks

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/runnel/runnel/benchmarks/internal/e2e"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// appendSizes are the value sizes of the records appended.
var appendSizes = []int{100, 1024}

// resetBytes is how much an append benchmark writes to one log (or raw
// file) before it starts over with a new, empty one, with the timer
// stopped. Starting over often recycles the same memory (MemFS) and
// page-cache pages (OS) instead of touching fresh ones, whose first touch
// in a VM can cost more than the copy being measured; on the OS it also
// keeps the disk out of sync=never: the dirty pages of a deleted file are
// never written back. MemFS starts over sooner: a MemFS file grows by
// doubling and copies itself each time (vfs/mem.go, growCap), and with
// copies of tens of MiB the garbage collector spins trying to preempt the
// writer (runtime.suspendG), which then dominated the measurement. Either
// way it is far below the segment size: no timed append rolls a segment.
func resetBytes(kind fsKind) int {
	if kind == fsMem {
		return 8 << 20
	}
	return 64 << 20
}

// forEachAppendCase runs fn as the sub-benchmarks fs=…/size=…/sync=…,
// shared by BenchmarkAppend and BenchmarkRawWrite so that their results
// pair up by name.
func forEachAppendCase(b *testing.B, fn func(b *testing.B, kind fsKind, size int, sync bool)) {
	for _, kind := range fsKinds {
		b.Run("fs="+string(kind), func(b *testing.B) {
			for _, size := range appendSizes {
				b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
					for _, sync := range []bool{false, true} {
						name := "sync=never"
						if sync {
							name = "sync=always"
						}
						b.Run(name, func(b *testing.B) { fn(b, kind, size, sync) })
					}
				})
			}
		})
	}
}

// appendBatch returns one batch of 1000 records with values of size bytes.
func appendBatch(tb testing.TB, size int) []byte {
	var bld record.Builder
	data, err := encodeBatch(&bld, nil, recordsPerBatch, e2e.Value(size), baseTime)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// reappend appends data, a batch that an earlier append may have given
// offsets in place, as a producer sends it: with base offset 0.
func reappend(ctx context.Context, l *log.Log, data []byte) (log.AppendResult, error) {
	record.Batch(data).SetBaseOffset(0)
	return l.Append(ctx, data, log.AppendOptions{})
}

func appendConfig(sync bool) log.Config {
	cfg := log.Config{SegmentBytes: log.DefaultSegmentBytes, MaxMessageBytes: maxMessageBytes, Sync: log.SyncNever}
	if sync {
		cfg.Sync = log.SyncAlways
	}
	return cfg
}

// BenchmarkAppend appends the same batch of 1000 records over and over (the
// log rewrites its base offset in place, and reappend sets it back to 0, as
// a producer's batch has it) to a log with fsync off or per batch. An op is
// one batch.
func BenchmarkAppend(b *testing.B) {
	forEachAppendCase(b, benchAppend)
}

func benchAppend(b *testing.B, kind fsKind, size int, sync bool) {
	data := appendBatch(b, size)
	cfg := appendConfig(sync)
	var (
		st *store
		l  *log.Log
	)
	open := func() {
		st = mustStore(b, kind, "append")
		var err error
		if l, err = log.Open(st.dir, cfg, log.Options{FS: st.fs}); err != nil {
			b.Fatal(err)
		}
	}
	drop := func() {
		if err := st.discard(); err != nil {
			b.Fatal(err)
		}
		closeLog(b, l)
		if err := st.remove(); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	// The first two appends to a new log are not the steady state: the
	// first writes the leader epoch checkpoint, the second the first index
	// entries, whose pages of the new, mapped index files fault in (about 5
	// ms on this machine's disk). A log pays that once per segment (1 GiB),
	// not per resetBytes, so they run untimed.
	warm := func() {
		for range 2 {
			if _, err := reappend(ctx, l, data); err != nil {
				b.Fatal(err)
			}
		}
	}
	open()
	warm()
	written, limit := 2*len(data), resetBytes(kind)
	b.SetBytes(int64(len(data)))
	m := startMeter(b)
	for range b.N {
		if written+len(data) > limit {
			m.pause()
			drop()
			open()
			warm()
			written = 2 * len(data)
			m.resume()
		}
		if _, err := reappend(ctx, l, data); err != nil {
			b.Fatal(err)
		}
		written += len(data)
	}
	m.finish(int64(b.N) * recordsPerBatch)
	drop()
}

// BenchmarkRawWrite is BenchmarkAppend's baseline: the same bytes written
// with File.Write to a file of the same FS, with File.Sync after each batch
// when sync=always.
func BenchmarkRawWrite(b *testing.B) {
	forEachAppendCase(b, benchRawWrite)
}

func benchRawWrite(b *testing.B, kind fsKind, size int, sync bool) {
	data := appendBatch(b, size)
	var (
		st *store
		f  vfs.File
	)
	open := func() {
		st = mustStore(b, kind, "raw")
		if err := st.fs.MkdirAll(st.dir, 0o755); err != nil {
			b.Fatal(err)
		}
		var err error
		if f, err = st.fs.Create(filepath.Join(st.dir, "raw.log")); err != nil {
			b.Fatal(err)
		}
	}
	drop := func() {
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		if err := st.remove(); err != nil {
			b.Fatal(err)
		}
	}
	// As in benchAppend, two untimed batches start each file.
	warm := func() {
		for range 2 {
			if _, err := f.Write(data); err != nil {
				b.Fatal(err)
			}
		}
	}
	open()
	warm()
	written, limit := 2*len(data), resetBytes(kind)
	b.SetBytes(int64(len(data)))
	m := startMeter(b)
	for range b.N {
		if written+len(data) > limit {
			m.pause()
			drop()
			open()
			warm()
			written = 2 * len(data)
			m.resume()
		}
		if _, err := f.Write(data); err != nil {
			b.Fatal(err)
		}
		if sync {
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
		}
		written += len(data)
	}
	m.finish(int64(b.N) * recordsPerBatch)
	drop()
}
