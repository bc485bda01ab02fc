#!/bin/sh
# run.sh runs runnel's storage benchmarks against their raw baselines,
# interleaved and repeated, and summarizes them: benchstat tables and the
# runnel/raw throughput ratios, paired by round. See README.md.
#
# Usage: benchmarks/run.sh            (from anywhere; about 6 minutes)
#        ROUNDS=2 benchmarks/run.sh   (a quicker, rougher run)
#        benchmarks/run.sh e2e [flags]
#            the end-to-end benchmarks of runnel alone instead: runnel and
#            the raw write, interleaved by benchmarks/peers/cmd/compare
#            (benchmarks/peers/run.sh -rounds $ROUNDS -sys runnel,raw
#            [flags]; outputs in benchmarks/peers/out/). See "End to end"
#            in README.md.
#
# Everything goes to benchmarks/out/ (git-ignored):
#   append.txt   BenchmarkAppend and BenchmarkRawWrite
#   storage.txt  BenchmarkRead, BenchmarkRawReadAt, lookups, Open
#   encode.txt   BenchmarkBuildBatch, BenchmarkValidateBatch
#   summary.txt  the benchstat tables and the ratios printed at the end
#
# Each round runs every append case as two processes, runnel and raw back
# to back, alternating which goes first, so that both see the same disk
# weather; each process runs one benchmark, so no process's heap or page
# cache is shaped by another benchmark. The 1 GiB benchmarks run one
# process per file system per round (each builds its fixture once, in
# $TMPDIR, and removes it). The append cases run a fixed number of batches,
# the same for runnel and raw: about 850 MB per run in memory, 430 MB on
# disk without fsync (each file deleted after 64 MiB, before writeback),
# and 1000 or 500 fsynced batches on disk.
set -eu

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-6}
if [ "${1:-}" = e2e ]; then
	shift
	exec sh benchmarks/peers/run.sh -rounds "$ROUNDS" -sys runnel,raw "$@"
fi
out=benchmarks/out
mkdir -p "$out"
bin=$out/bench.test
benchstat="go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da"

go vet ./benchmarks/
go test -c -o "$bin" ./benchmarks/
$benchstat -h >/dev/null 2>&1 || true # fetch it before the clock matters

# bench FILE BENCHTIME REGEXP: one test process, appending its output.
bench() {
	"$bin" -test.run '^$' -test.bench "$3" -test.benchtime "$2" -test.count 1 >>"$1"
}

: >"$out/append.txt"
: >"$out/storage.txt"
: >"$out/encode.txt"

# batches FS SIZE SYNC: the -benchtime of an append case.
batches() {
	case "$1/$2/$3" in
	mem/100/*) echo 8000x ;;
	mem/1024/*) echo 800x ;;
	os/100/never) echo 4000x ;;
	os/1024/never) echo 400x ;;
	os/100/always) echo 1000x ;;
	os/1024/always) echo 500x ;;
	esac
}

start=$(date +%s)
round=1
while [ "$round" -le "$ROUNDS" ]; do
	echo "round $round/$ROUNDS ($(($(date +%s) - start)) s)" >&2
	if [ $((round % 2)) -eq 1 ]; then order="Append RawWrite"; else order="RawWrite Append"; fi
	for fs in mem os; do
		for size in 100 1024; do
			for sync in never always; do
				for name in $order; do
					bench "$out/append.txt" "$(batches $fs $size $sync)" \
						"^Benchmark$name\$/^fs=$fs\$/^size=$size\$/^sync=$sync\$"
				done
			done
		done
	done
	for fs in os mem; do
		bench "$out/storage.txt" 1s \
			"^Benchmark(Read|RawReadAt|LookupOffset|OffsetForTime|OpenClean|OpenAfterCrash)\$/^fs=$fs\$"
	done
	bench "$out/encode.txt" 1s '^Benchmark(BuildBatch|ValidateBatch)$'
	round=$((round + 1))
done
echo "done in $(($(date +%s) - start)) s" >&2

{
	echo "## Append vs RawWrite (columns: the raw write, then runnel's append)"
	$benchstat -filter '.unit:(sec/op OR B/s OR records/s OR allocs/record)' \
		-row /fs,/size,/sync -col '.name@(RawWrite Append)' "$out/append.txt"
	echo
	echo "## Read vs RawReadAt (1 GiB per op)"
	$benchstat -filter '.name:(Read OR RawReadAt) .unit:(sec/op OR B/s OR allocs/record OR B/op)' \
		-row /fs -col '.name@(RawReadAt Read)' "$out/storage.txt"
	echo
	echo "## Lookups and Open (1 GiB log)"
	$benchstat -filter '-.name:(Read OR RawReadAt) .unit:(sec/op OR ms/op OR B/s OR allocs/op)' "$out/storage.txt"
	echo
	echo "## Encoding and validation (one batch of 1000 records per op)"
	$benchstat -filter '.unit:(sec/op OR B/s OR records/s OR allocs/record)' "$out/encode.txt"
	echo
	echo "## runnel/raw throughput ratio (MB/s), paired by round"
	RUNNEL_BENCH_REPORT="$out/append.txt,$out/storage.txt" "$bin" -test.run '^TestReportRatios$' | grep -v '^PASS$'
} | tee "$out/summary.txt"
