package e2e

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

// The Bench functions run the workloads as benchmarks whose op is one
// record: ns/op, B/s (value bytes) and allocs/op are per record (allocs
// counted in the whole process: client and broker). Each also reports
// records/s and the process's peak RSS in MB (peak-RSS-MB, Linux only; run
// one case per process for it to mean that case).

// The parameters of the latency, group commit and RSS benchmarks,
// the same in both modules.
const (
	// LatencyRate is the rate of BenchLatency, in records per second.
	LatencyRate = 1000
	// GroupCommitProducers is the number of concurrent producers of
	// BenchGroupCommit.
	GroupCommitProducers = 8
	// RSSPayload is the value bytes BenchRSS holds in memory: 100 MiB.
	RSSPayload = 100 << 20
)

// RSSSizes returns the record sizes BenchRSS is run with: 100 B and 1 KiB.
func RSSSizes() []int { return []int{100, 1024} }

// bench runs workload as a benchmark whose op is one record of size value
// bytes (size 0: no B/s), fails b on its error and reports records/s and
// peak-RSS-MB.
func bench(b *testing.B, size int, workload func() (Result, error)) Result {
	b.ReportAllocs()
	if size > 0 {
		b.SetBytes(int64(size))
	}
	res, err := workload()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(res.RecordsPerSecond(), "records/s")
	if hwm, err := ProcStatus("VmHWM"); err == nil {
		b.ReportMetric(float64(hwm)/(1<<20), "peak-RSS-MB")
	}
	return res
}

// BenchProduce runs Produce with b.N records and, when the system's
// Target is a LogSizer, reports the bytes on its log over the value bytes
// produced (log/value: the compression ratio, framing included).
func BenchProduce(b *testing.B, sys System, c Case) {
	res := bench(b, c.Size, func() (Result, error) { return Produce(context.Background(), b, sys, c, b.N) })
	if r := res.LogPerValue(); r > 0 {
		b.ReportMetric(r, "log/value")
	}
}

// BenchConsume runs Consume with b.N records.
func BenchConsume(b *testing.B, sys System, c Case) {
	bench(b, c.Size, func() (Result, error) { return Consume(context.Background(), b, sys, c, b.N) })
}

// BenchLatency runs Latency with b.N records at rate records/s and reports
// the 50th and 99th percentile and the maximum in µs (p50-us, p99-us,
// max-us).
func BenchLatency(b *testing.B, sys System, c Case, rate float64) {
	reportLatency(b, bench(b, 0, func() (Result, error) { return Latency(context.Background(), b, sys, c, b.N, rate) }))
}

// BenchRawLatency runs RawLatency with b.N records at rate records/s and
// reports as BenchLatency.
func BenchRawLatency(b *testing.B, c Case, rate float64) {
	reportLatency(b, bench(b, 0, func() (Result, error) { return RawLatency(context.Background(), b, c, b.N, rate) }))
}

func reportLatency(b *testing.B, res Result) {
	b.ReportMetric(float64(res.Percentile(50).Nanoseconds())/1e3, "p50-us")
	b.ReportMetric(float64(res.Percentile(99).Nanoseconds())/1e3, "p99-us")
	b.ReportMetric(float64(res.Percentile(100).Nanoseconds())/1e3, "max-us")
}

// BenchGroupCommit runs GroupCommit with b.N records.
func BenchGroupCommit(b *testing.B, sys System, c Case, producers int) {
	bench(b, c.Size, func() (Result, error) { return GroupCommit(context.Background(), b, sys, c, producers, b.N) })
}

// BenchRawWrite runs RawWrite with b.N records.
func BenchRawWrite(b *testing.B, c Case) {
	bench(b, c.Size, func() (Result, error) { return RawWrite(context.Background(), b, c, b.N) })
}

// BenchRSS runs MeasureRSS b.N times (run it with -benchtime 1x) and
// reports the last: the peak RSS over the payload (RSS/payload), the
// peak, held and baseline RSS in MB, and the live heap in MB. It skips where there is no
// /proc/self/status.
func BenchRSS(b *testing.B, sys System, size int, payload int64) {
	var r RSS
	for range b.N {
		var err error
		if r, err = MeasureRSS(context.Background(), sys, size, payload); errors.Is(err, ErrNoProcStatus) {
			b.Skip(err)
		} else if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(r.Ratio(), "RSS/payload")
	b.ReportMetric(float64(r.Peak)/(1<<20), "peak-MB")
	b.ReportMetric(float64(r.Held)/(1<<20), "held-MB")
	b.ReportMetric(float64(r.Baseline)/(1<<20), "baseline-MB")
	b.ReportMetric(float64(r.Live)/(1<<20), "live-heap-MB")
}

// Timed reports whether d is a duration the clock measured: positive, or
// zero on Windows, whose monotonic clock (the interrupt time that Go's
// runtime reads) moves once per timer tick, every 0.5 to 15.6 ms, so
// that a short run can begin and end within one tick.
func Timed(d time.Duration) bool {
	return d > 0 || (d == 0 && runtime.GOOS == "windows")
}

// CheckWorkloads runs Produce, Consume, GroupCommit (3 producers) on n
// records and Latency on n/10 against sys, and fails t unless each moved
// exactly its records (each consumed once) and the latencies are there:
// the quick check a System's tests make in go test.
func CheckWorkloads(t testing.TB, sys System, c Case, n int) {
	t.Helper()
	ctx := context.Background()
	check := func(what string, res Result, err error, n int) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if res.Records != int64(n) || !Timed(res.Elapsed) {
			t.Fatalf("%s: %d records in %v, want %d", what, res.Records, res.Elapsed, n)
		}
	}
	res, err := Produce(ctx, NoTimer{}, sys, c, n)
	check("produce", res, err, n)
	res, err = Consume(ctx, NoTimer{}, sys, c, n)
	check("consume", res, err, n)
	res, err = GroupCommit(ctx, NoTimer{}, sys, c, 3, n)
	check("group commit", res, err, n)
	res, err = Latency(ctx, NoTimer{}, sys, c, n/10, 5000)
	check("latency", res, err, n/10)
	if len(res.Latencies) != n/10 || !Timed(res.Percentile(50)) {
		t.Fatalf("latency: %d latencies, p50 %v", len(res.Latencies), res.Percentile(50))
	}
}
