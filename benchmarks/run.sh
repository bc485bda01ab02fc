#!/bin/sh
# run.sh runs runnel's storage benchmarks against their raw baselines,
# interleaved and repeated, and summarizes them: benchstat tables and the
# runnel/raw throughput ratios, paired by round. See README.md.
#
# Usage: benchmarks/run.sh            (from anywhere; about 10 minutes)
#        ROUNDS=2 benchmarks/run.sh   (a quicker, rougher run)
#        benchmarks/run.sh e2e        (the end-to-end benchmarks instead,
#                                      see "End to end" in README.md)
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
out=benchmarks/out
mkdir -p "$out"
bin=$out/bench.test
benchstat="go run golang.org/x/perf/cmd/benchstat@latest"

go vet ./benchmarks/
go test -c -o "$bin" ./benchmarks/
$benchstat -h >/dev/null 2>&1 || true # fetch it before the clock matters

# bench FILE BENCHTIME REGEXP: one test process, appending its output.
bench() {
	"$bin" -test.run '^$' -test.bench "$3" -test.benchtime "$2" -test.count 1 >>"$1"
}

# sel NAME CASE: the -test.bench regexp of exactly one sub-benchmark.
sel() {
	echo "^Benchmark$1\$/$(echo "$2" | sed 's,[^/]*,^&$,g')"
}

# records STORE SIZE SYNC: the records of an end-to-end throughput run (as
# in benchmarks/peers/cmd/compare).
records() {
	case "$2/$3" in
	1024/always) echo 20000x ;;
	*/always) echo 50000x ;;
	1024/*) echo 100000x ;;
	*) echo 200000x ;;
	esac
}

# e2e runs the end-to-end benchmarks, one process per run, ROUNDS rounds:
# E2EProduce against E2ERawWrite (alternating which goes first), E2EConsume,
# GroupCommit with and without fsync (alternating), E2ELatency on four
# cases and E2ERSS; then benchstat and the ratios.
e2e() {
	: >"$out/e2e.txt"
	start=$(date +%s)
	round=1
	while [ "$round" -le "$ROUNDS" ]; do
		echo "round $round/$ROUNDS ($(($(date +%s) - start)) s)" >&2
		if [ $((round % 2)) -eq 1 ]; then order="E2EProduce E2ERawWrite"; else order="E2ERawWrite E2EProduce"; fi
		for store in mem os; do
			for size in 100 1024; do
				for parts in 1 8; do
					for acks in 1 all; do
						for sync in never always; do
							c=store=$store/size=$size/parts=$parts/acks=$acks/sync=$sync
							n=$(records $store $size $sync)
							for name in $order; do
								bench "$out/e2e.txt" "$n" "$(sel $name $c)"
							done
							if [ $sync = never ]; then
								bench "$out/e2e.txt" "$n" "$(sel E2EConsume $c)"
							fi
						done
					done
				done
			done
		done
		if [ $((round % 2)) -eq 1 ]; then order="always never"; else order="never always"; fi
		for parts in 1 8; do
			for sync in $order; do
				bench "$out/e2e.txt" 200000x "$(sel GroupCommit store=os/size=100/parts=$parts/acks=all/sync=$sync)"
			done
		done
		for c in store=mem/size=100/parts=1/acks=all/sync=never store=mem/size=1024/parts=8/acks=1/sync=never \
			store=os/size=100/parts=1/acks=all/sync=never store=os/size=100/parts=1/acks=all/sync=always; do
			bench "$out/e2e.txt" 2000x "$(sel E2ELatency $c)"
		done
		bench "$out/e2e.txt" 1x '^BenchmarkE2ERSS$'
		round=$((round + 1))
	done
	echo "done in $(($(date +%s) - start)) s" >&2
	{
		echo "## E2EProduce vs E2ERawWrite (one op = one record)"
		$benchstat -filter '.name:(E2EProduce OR E2ERawWrite) .unit:(records/s OR B/s OR allocs/op OR peak-RSS-MB)' \
			-row /store,/size,/parts,/acks,/sync -col '.name@(E2ERawWrite E2EProduce)' "$out/e2e.txt"
		echo
		echo "## E2EConsume"
		$benchstat -filter '.name:E2EConsume .unit:(records/s OR B/s OR allocs/op OR peak-RSS-MB)' "$out/e2e.txt"
		echo
		echo "## GroupCommit: 8 producers, fsync per batch (always) vs none (never)"
		$benchstat -filter '.name:GroupCommit .unit:(records/s OR B/s OR allocs/op)' \
			-row /parts -col '/sync@(never always)' "$out/e2e.txt"
		echo
		echo "## E2ELatency at 1000 records/s, linger 0"
		$benchstat -filter '.name:E2ELatency .unit:(p50-us OR p99-us OR max-us)' "$out/e2e.txt"
		echo
		echo "## E2ERSS: peak RSS holding 100 MiB of values in memory"
		$benchstat -filter '.name:E2ERSS' "$out/e2e.txt"
		echo
		echo "## runnel/baseline throughput ratios, paired by round"
		RUNNEL_BENCH_REPORT="$out/e2e.txt" "$bin" -test.run '^TestReportRatios$' | grep -v '^PASS$'
	} | tee "$out/e2e-summary.txt"
}

if [ "${1:-}" = e2e ]; then
	e2e
	exit 0
fi

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
