#!/bin/sh
# run.sh compares runnel with kfake and NATS JetStream: it runs
# cmd/compare (every group of runs back to back in each round, in an
# order rotated every two rounds and reversed in every other, one process
# per run), which prints one table of runnel/peer
# ratios against the issue's goals, then benchstat over every run. See
# ../README.md ("End to end and peers").
#
# Usage: benchmarks/peers/run.sh [cmd/compare flags]
#        benchmarks/peers/run.sh                      6 rounds, about 10 minutes
#        benchmarks/peers/run.sh -rounds 2 -scale 0.2 a rough look, a few minutes
#        benchmarks/peers/run.sh -run 'Latency'       only the latency groups
#        benchmarks/peers/run.sh -run Compressed -rounds 4
#                                                     only the compressed groups (opt-in, not
#                                                     in the default plan): runnel against kfake,
#                                                     codec=none|snappy|lz4|zstd and zstd level=1, in memory
#        benchmarks/peers/run.sh -sys runnel,raw      runnel alone: only its runs and the
#                                                     raw write's (benchmarks/run.sh e2e)
#
# Outputs in benchmarks/peers/out/ (git-ignored), or -out DIR: table.md, peers.txt (every
# benchmark line), benchstat.txt.
set -eu

cd "$(dirname "$0")"
# The output directory: cmd/compare's -out, which benchstat follows.
out=out
prev=
for a in "$@"; do
	case "$prev" in -out | --out) out=$a ;; esac
	case "$a" in -out=* | --out=*) out=${a#*=} ;; esac
	prev=$a
done
go vet ./...
status=0
go run ./cmd/compare "$@" || status=$? # a run failed: benchstat still runs, then its status
go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da \
	-filter '.unit:(records/s OR B/s OR allocs/op OR peak-RSS-MB OR p50-us OR p99-us OR RSS/payload OR log/value)' \
	-col /sys "$out/peers.txt" >"$out/benchstat.txt"
echo "benchstat: $out/benchstat.txt (from benchmarks/peers)" >&2
exit $status
