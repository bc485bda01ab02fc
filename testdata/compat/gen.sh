#!/bin/sh
# Regenerates testdata/compat/<commit>-{clean,kill} with the code of each
# commit: ./gen.sh COMMIT... (run from this directory, /work/main or any
# clone of runnel as REPO).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=${REPO:-/work/main}
for c in "$@"; do
	wt=$(mktemp -d /tmp/old-XXXXXX)
	git -C "$repo" worktree add --detach "$wt" "$c" >/dev/null
	trap 'git -C "$repo" worktree remove --force "$wt"' EXIT
	mkdir -p "$wt/compatgen"
	lat=log.LogAppendTime
	drop=''
	if ! git -C "$wt" grep -q 'LogAppendTime$' -- log/config.go; then lat=record.LogAppendTime; fi
	if ! grep -q 'func (b \*Broker) DeleteRecords' "$wt"/*.go; then drop="$drop -e /V:deleterecords/d"; fi
	if ! grep -q 'ID log.TopicID' "$wt/topics.go"; then drop="$drop -e /V:topicid/d"; fi
	if grep -q 'c.MaxMessageBytes > 1<<31-1' "$wt/log/config.go"; then drop="$drop -e /V:wide/d"; fi
	if grep -q 'IsTransactional()' "$wt/log/append.go"; then drop="$drop -e /V:odd/d"; fi
	if [ -z "$drop" ]; then drop='-e /V:none/d'; fi
	sed -e "s/\bLAT\b/$lat/" $drop "$here/gen.go.txt" >"$wt/compatgen/main.go"
	# Before a25b121 the broker did not sync its directory's creation, so
	# that a MemFS power cut loses it all: for those, the power cut comes
	# after every directory was synced (as a file system commits its
	# metadata within seconds).
	syncdirs=false
	if ! grep -q MkdirAllDurable "$wt/broker.go"; then syncdirs=true; fi
	for mode in clean kill powercut; do
		out="$here/$c-$mode"
		rm -rf "$out"
		mkdir -p "$out"
		(cd "$wt" && go run ./compatgen -dir "$out" -mode "$mode" -commit "$c" -syncdirs=$syncdirs)
		rm -f "$out/data/runnel.lock"
	done
	git -C "$repo" worktree remove --force "$wt"
	trap - EXIT
done
