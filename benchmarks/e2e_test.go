package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.uber.org/goleak"

	"github.com/runnel/runnel/benchmarks/internal/e2e"
	"github.com/runnel/runnel/benchmarks/internal/runnelsys"
)

// The end-to-end benchmarks: runnel through its public producer and
// consumer (package runnelsys), with the workloads of package e2e, over
// the matrix (e2e.Matrix: store=mem|os, size=100|1024,
// parts=1|8, acks=1|all, sync=never|always). One op is one record: ns/op,
// MB/s (values) and allocs/op are per record; records/s and peak-RSS-MB
// are reported too. Select a case with its name, e.g.
//
//	go test -run '^$' -bench 'E2EProduce/store=os/size=100/parts=1/acks=all/sync=never' -benchtime 200000x ./benchmarks/
//
// The same workloads against kfake and JetStream are in the separate
// module benchmarks/peers.

func forEachE2ECase(b *testing.B, fn func(b *testing.B, c e2e.Case)) {
	for _, c := range e2e.Matrix() {
		b.Run(c.Name(), func(b *testing.B) { fn(b, c) })
	}
}

// BenchmarkE2EProduce: one producer, asynchronous Produce then Flush.
func BenchmarkE2EProduce(b *testing.B) {
	forEachE2ECase(b, func(b *testing.B, c e2e.Case) { e2e.BenchProduce(b, runnelsys.System(), c) })
}

// BenchmarkE2ERawWrite is E2EProduce's limit: the same bytes, as 1 MB
// record batches, written to one file of the same file system (fsync per
// batch for sync=always). Only store, size and sync matter; the names
// match E2EProduce's so that the two pair up.
func BenchmarkE2ERawWrite(b *testing.B) {
	forEachE2ECase(b, e2e.BenchRawWrite)
}

// BenchmarkE2EConsume: one consumer reads a full topic from its start.
func BenchmarkE2EConsume(b *testing.B) {
	forEachE2ECase(b, func(b *testing.B, c e2e.Case) { e2e.BenchConsume(b, runnelsys.System(), c) })
}

// BenchmarkE2EProduceCompressed is E2EProduce with the producer's codec
// (e2e.CompressedMatrix: in memory, codec=none|gzip|snappy|lz4|zstd, and
// zstd at level=1) and
// JSON-like values (e2e.TextValues) that compress like logged events;
// codec=none sends the same values uncompressed. It also reports
// log/value, the bytes on the log over the value bytes produced.
func BenchmarkE2EProduceCompressed(b *testing.B) {
	for _, c := range e2e.CompressedMatrix() {
		b.Run(c.Name(), func(b *testing.B) { e2e.BenchProduce(b, runnelsys.System(), c) })
	}
}

// BenchmarkE2EConsumeCompressed is E2EConsume from a topic filled by a
// producer with the case's codec (e2e.CompressedMatrix), with the values
// of E2EProduceCompressed.
func BenchmarkE2EConsumeCompressed(b *testing.B) {
	for _, c := range e2e.CompressedMatrix() {
		b.Run(c.Name(), func(b *testing.B) { e2e.BenchConsume(b, runnelsys.System(), c) })
	}
}

// BenchmarkE2ELatency: produce→consume at 1000 records/s with linger 0;
// p50-us, p99-us and max-us.
func BenchmarkE2ELatency(b *testing.B) {
	forEachE2ECase(b, func(b *testing.B, c e2e.Case) {
		e2e.BenchLatency(b, runnelsys.System(), c, e2e.LatencyRate)
	})
}

// BenchmarkGroupCommit: 8 concurrent producers; compare sync=always (an
// fsync before every acknowledgement, shared by concurrent batches) with
// sync=never.
func BenchmarkGroupCommit(b *testing.B) {
	forEachE2ECase(b, func(b *testing.B, c e2e.Case) {
		e2e.BenchGroupCommit(b, runnelsys.System(), c, e2e.GroupCommitProducers)
	})
}

// BenchmarkE2ERSS: the peak RSS of a process holding 100 MiB of values in
// an in-memory broker, over the payload (RSS/payload), measured in a child
// process (run with -benchtime 1x).
func BenchmarkE2ERSS(b *testing.B) {
	for _, size := range e2e.RSSSizes() {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			e2e.BenchRSS(b, runnelsys.System(), size, e2e.RSSPayload)
		})
	}
}

// TestE2EWorkloads runs every end-to-end workload on a few hundred
// records, in memory and on disk, so that go test checks them (and that
// they leave no goroutine behind) in well under a second.
func TestE2EWorkloads(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx := context.Background()
	sys := runnelsys.System()
	for _, c := range []e2e.Case{
		{Store: e2e.Mem, Size: 100, Partitions: 1, Acks: e2e.AcksAll},
		{Store: e2e.Mem, Size: 1024, Partitions: 8, Acks: e2e.AcksLeader, Sync: true},
		{Store: e2e.Disk, Size: 100, Partitions: 8, Acks: e2e.AcksAll, Sync: true},
		{Store: e2e.Mem, Size: 100, Partitions: 8, Acks: e2e.AcksAll, Codec: "zstd"},
		{Store: e2e.Mem, Size: 1024, Partitions: 1, Acks: e2e.AcksLeader, Codec: "lz4"},
	} {
		t.Run(c.Name(), func(t *testing.T) {
			e2e.CheckWorkloads(t, sys, c, 500)
			res, err := e2e.RawWrite(ctx, e2e.NoTimer{}, c, 500)
			if err != nil || res.Records != 500 {
				t.Fatalf("raw write: %d records, %v", res.Records, err)
			}
		})
	}
}

// TestE2ERSS runs the RSS measurement on 4 MiB (it re-executes the test
// binary).
func TestE2ERSS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	r, err := e2e.MeasureRSS(context.Background(), runnelsys.System(), 1024, 4<<20)
	if errors.Is(err, e2e.ErrNoProcStatus) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if r.Payload != 4<<20 || r.Peak < r.Baseline || r.Peak < r.Payload {
		t.Fatalf("%+v", r)
	}
}

// TestE2ERSSBadCase: sizes the workloads cannot carry are refused before a
// child starts, with ErrInvalidCase.
func TestE2ERSSBadCase(t *testing.T) {
	for _, c := range []struct {
		size    int
		payload int64
	}{{4, 1 << 20}, {100, 10}} {
		_, err := e2e.MeasureRSS(context.Background(), runnelsys.System(), c.size, c.payload)
		if errors.Is(err, e2e.ErrNoProcStatus) {
			t.Skip(err)
		}
		if !errors.Is(err, e2e.ErrInvalidCase) {
			t.Fatalf("size %d, payload %d: %v, want ErrInvalidCase", c.size, c.payload, err)
		}
	}
}

// TestE2ECompressedLog: a case's codec reaches the log. Produce's
// log/value with zstd is well under codec=none's, which is over 1 (the
// records' framing), with the same text values.
func TestE2ECompressedLog(t *testing.T) {
	ratio := map[string]float64{}
	for _, codec := range []string{"none", "zstd"} {
		c := e2e.Case{Store: e2e.Mem, Size: 100, Partitions: 1, Acks: e2e.AcksAll, Codec: codec}
		res, err := e2e.Produce(context.Background(), e2e.NoTimer{}, runnelsys.System(), c, 5000)
		if err != nil {
			t.Fatal(err)
		}
		ratio[codec] = res.LogPerValue()
	}
	if ratio["none"] < 1 || ratio["zstd"] <= 0 || ratio["zstd"] > ratio["none"]/2 {
		t.Fatalf("log/value: %v, want none ≥ 1 and zstd under half of it", ratio)
	}
}
