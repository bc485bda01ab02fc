package peers

import (
	"fmt"
	"os"
	"testing"

	"github.com/runnel/runnel/benchmarks/internal/e2e"
	"github.com/runnel/runnel/benchmarks/internal/runnelsys"
)

// systems are the systems compared.
func systems() []e2e.System {
	return []e2e.System{runnelsys.System(), Kfake(), JetStream()}
}

func TestMain(m *testing.M) {
	e2e.RunRSSChild(systems()...)
	os.Exit(m.Run())
}

// forSystems runs fn as sys=…/<case> for every system of syss and every
// case of the matrix. Cases a system cannot run (an fsync in memory,
// unless it has SyncInMemory) skip.
func forSystems(b *testing.B, syss []e2e.System, fn func(b *testing.B, sys e2e.System, c e2e.Case)) {
	for _, sys := range syss {
		for _, c := range e2e.Matrix() {
			b.Run("sys="+sys.Name+"/"+c.Name(), func(b *testing.B) {
				if c.Store == e2e.Mem && c.Sync && !sys.SyncInMemory {
					b.Skip("no fsync in memory")
				}
				fn(b, sys, c)
			})
		}
	}
}

// BenchmarkProduce: one op is one record produced; sys=raw is the raw
// sequential write of the same bytes (e2e.RawWrite).
func BenchmarkProduce(b *testing.B) {
	forSystems(b, systems(), e2e.BenchProduce)
	// sys=raw opens no broker; like the peers it skips fsync in memory.
	forSystems(b, []e2e.System{{Name: "raw"}}, func(b *testing.B, _ e2e.System, c e2e.Case) {
		e2e.BenchRawWrite(b, c)
	})
}

// BenchmarkConsume: one op is one record consumed.
func BenchmarkConsume(b *testing.B) {
	forSystems(b, systems(), e2e.BenchConsume)
}

// compressedSystems are the systems of the compressed benchmarks: JetStream
// has no per-message codec (ErrNoCodec), so it sits them out.
func compressedSystems() []e2e.System {
	return []e2e.System{runnelsys.System(), Kfake()}
}

// forCompressed runs fn as sys=…/<case> for every system of
// compressedSystems and every case of e2e.CompressedMatrix.
func forCompressed(b *testing.B, fn func(b *testing.B, sys e2e.System, c e2e.Case)) {
	for _, sys := range compressedSystems() {
		for _, c := range e2e.CompressedMatrix() {
			b.Run("sys="+sys.Name+"/"+c.Name(), func(b *testing.B) { fn(b, sys, c) })
		}
	}
}

// BenchmarkProduceCompressed is BenchmarkProduce in memory with the
// producers' codec=none|gzip|snappy|lz4|zstd, and zstd at level=1 (runnel's
// producer.Compression and CompressionLevel, kgo's ProducerBatchCompression
// and WithLevel) and the JSON-like values of
// e2e.TextValues; it also reports log/value, the bytes on the log over the
// value bytes produced.
func BenchmarkProduceCompressed(b *testing.B) {
	forCompressed(b, e2e.BenchProduce)
}

// BenchmarkConsumeCompressed is BenchmarkConsume from a topic filled by a
// producer with the case's codec, values as BenchmarkProduceCompressed's.
func BenchmarkConsumeCompressed(b *testing.B) {
	forCompressed(b, e2e.BenchConsume)
}

// BenchmarkLatency: produce→consume latency at 1000 records/s, linger 0;
// sys=raw is the floor on disk: the write (and fsync) of each record's
// batch alone (e2e.RawLatency).
func BenchmarkLatency(b *testing.B) {
	forSystems(b, systems(), func(b *testing.B, sys e2e.System, c e2e.Case) {
		e2e.BenchLatency(b, sys, c, e2e.LatencyRate)
	})
	forSystems(b, []e2e.System{{Name: "raw"}}, func(b *testing.B, _ e2e.System, c e2e.Case) {
		if c.Store == e2e.Mem {
			b.Skip("the floor is measured on disk")
		}
		if c.Partitions != 1 || c.Acks != e2e.AcksAll {
			b.Skip("the floor depends on the size and the sync only: measured with p=1 acks=all")
		}
		e2e.BenchRawLatency(b, c, e2e.LatencyRate)
	})
}

// BenchmarkGroupCommit: 8 concurrent producers.
func BenchmarkGroupCommit(b *testing.B) {
	forSystems(b, systems(), func(b *testing.B, sys e2e.System, c e2e.Case) {
		e2e.BenchGroupCommit(b, sys, c, e2e.GroupCommitProducers)
	})
}

// BenchmarkRSS: peak RSS holding 100 MiB of values in memory, measured in
// a child process.
func BenchmarkRSS(b *testing.B) {
	for _, sys := range systems() {
		for _, size := range e2e.RSSSizes() {
			b.Run(fmt.Sprintf("sys=%s/size=%d", sys.Name, size), func(b *testing.B) {
				e2e.BenchRSS(b, sys, size, e2e.RSSPayload)
			})
		}
	}
}
