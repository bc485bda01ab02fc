// Package benchmarks measures runnel's storage path against the raw file
// system it runs on. It holds only benchmarks (and a few fast checks of
// their helpers); nothing here is part of the library.
//
// What it measures, each on the OS file system (a temporary directory) and
// on the in-memory one (vfs.NewMem):
//
//   - BenchmarkAppend against BenchmarkRawWrite: Log.Append of batches of
//     1000 records of 100 B and 1 KiB, with fsync off (SyncNever) and per
//     batch (SyncAlways), against writing the same bytes to a plain file of
//     the same FS (with a Sync per batch in the fsync variant). Both report
//     MB/s, records/s and allocs/record under the same sub-benchmark names,
//     so that benchstat and TestReportRatios can compare them.
//   - BenchmarkRead against BenchmarkRawReadAt: reading a 1 GiB log (four
//     segments, written once per process) from the page cache through
//     Log.ReadInto in 1 MiB fetches into one reused buffer, against ReadAt
//     of 1 MiB chunks over the same .log files.
//   - BenchmarkLookupOffset and BenchmarkOffsetForTime: random lookups in
//     the 1 GiB log.
//   - BenchmarkOpenClean and BenchmarkOpenAfterCrash: reopening the 1 GiB
//     log after a clean close, and after a simulated crash (the
//     clean-shutdown file removed) that makes Open scan the 256 MiB active
//     segment.
//   - BenchmarkBuildBatch: record.Builder encoding and CRC alone.
//
// And end to end, through the public producer and consumer (the workloads
// of benchmarks/internal/e2e, run against runnel by
// benchmarks/internal/runnelsys), over 100 B and 1 KiB records, 1 and 8
// partitions, acks=1 and acks=all, fsync off and per batch, in memory and
// on disk; one op is one record:
//
//   - BenchmarkE2EProduce against BenchmarkE2ERawWrite (the same bytes
//     written to one file of the same FS), BenchmarkE2EConsume;
//   - BenchmarkE2EProduceCompressed and BenchmarkE2EConsumeCompressed:
//     the same in memory with the producer's codec (none, gzip, snappy,
//     lz4, zstd) and JSON-like values that compress as logged events do
//     (e2e.TextValues); produce also reports log/value, the bytes on the
//     log over the value bytes;
//   - BenchmarkE2ELatency: produce→consume p50/p99 at 1000 records/s,
//     linger 0;
//   - BenchmarkGroupCommit: 8 concurrent producers, fsync per batch
//     against none;
//   - BenchmarkE2ERSS: peak RSS holding 100 MiB of values in memory,
//     measured in a child process.
//
// The same workloads against franz-go's kfake and NATS JetStream live in
// the separate module benchmarks/peers.
//
// Run the storage benchmarks, interleaved and repeated, with
// benchmarks/run.sh, which writes the raw outputs, the benchstat tables
// and the runnel/raw ratios to benchmarks/out/; benchmarks/run.sh e2e runs
// the end-to-end ones (runnel and the raw write alone, interleaved by the
// peers module's cmd/compare, into benchmarks/peers/out/). README.md
// holds recorded runs. A single benchmark runs as usual:
//
//	go test -run '^$' -bench 'BenchmarkAppend/fs=mem' ./benchmarks/
//
// The 1 GiB benchmarks build their log once per test binary, in a
// temporary directory that TestMain removes; -short skips them. go test
// without -bench runs only quick checks.
package benchmarks
