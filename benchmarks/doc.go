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
//     Log.Read in 1 MiB fetches, against ReadAt of 1 MiB chunks over the
//     same .log files.
//   - BenchmarkLookupOffset and BenchmarkOffsetForTime: random lookups in
//     the 1 GiB log.
//   - BenchmarkOpenClean and BenchmarkOpenAfterCrash: reopening the 1 GiB
//     log after a clean close, and after a simulated crash (the
//     clean-shutdown file removed) that makes Open scan the 256 MiB active
//     segment.
//   - BenchmarkBuildBatch: record.Builder encoding and CRC alone.
//
// Run everything, interleaved and repeated, with benchmarks/run.sh, which
// writes the raw outputs, the benchstat tables and the runnel/raw ratios
// to benchmarks/out/; README.md holds a recorded run. A single benchmark
// runs as usual:
//
//	go test -run '^$' -bench 'BenchmarkAppend/fs=mem' ./benchmarks/
//
// The 1 GiB benchmarks build their log once per test binary, in a
// temporary directory that TestMain removes; -short skips them. go test
// without -bench runs only quick checks.
package benchmarks
