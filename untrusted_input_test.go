package runnel

// The public API driven by untrusted input (a multi-tenant
// front end whose tenants choose topic names, partition counts, topic
// configs, records and fetches), looking for one value that makes the
// process crash, hang, or allocate out of all proportion.

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
)

// manyPartitions is more partitions than reflect.Select takes cases
// (65536), which a fetch's long poll waited on, one each.
const manyPartitions = 70_000

// TestUntrustedFetchManyPartitionsWaits: a Fetch that names more than
// 65533 partitions (here one partition 70,000 times, as a request made
// from a tenant's list may), and finds nothing to return, waits for them
// up to MaxWait and answers with nothing. It panicked in reflect.Select
// ("too many cases (max 65536)"), taking the process down: one channel
// a partition plus three, in one select. It is woken by an append to the
// last partition it names, and to the first (one channel, a log.Wake,
// since 2026-12-07; goroutines of the call waited on those past 65,532
// before, and TestUntrustedWaitAnyManyChannels, their test, went with
// them).
func TestUntrustedFetchManyPartitionsWaits(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	req := &api.FetchRequest{MaxWait: 10 * time.Millisecond}
	for range manyPartitions {
		req.Partitions = append(req.Partitions, api.FetchPartition{Topic: "t"})
	}
	resp, err := fetchNoPanic(ctx, b, req)
	require.NoError(t, err)
	require.Len(t, resp.Partitions, manyPartitions)
	for _, p := range resp.Partitions {
		require.NoError(t, p.Err)
		require.Empty(t, p.Records)
	}

	// Records come once appended, through any of the partitions named.
	require.NoError(t, b.CreateTopic(ctx, "u", log.TopicConfig{Partitions: 1}))
	req.MaxWait = time.Minute
	req.Partitions = append(req.Partitions, api.FetchPartition{Topic: "u"})
	produce(t, b, "u", 0, "v")
	resp, err = fetchNoPanic(ctx, b, req)
	require.NoError(t, err)
	require.Equal(t, []string{"v"}, values(t, resp.Partitions[manyPartitions].Records))

	// A fetch that waits is woken by an append to the last partition it
	// names, and by one to the first (all 70,000 entries but the last).
	req.Partitions[manyPartitions].Offset = 1
	for i, topic := range []string{"u", "t"} {
		done := make(chan error, 1)
		go func() {
			resp, err := fetchNoPanic(ctx, b, req)
			if err == nil && len(resp.Partitions[0].Records)+len(resp.Partitions[manyPartitions].Records) == 0 {
				err = fmt.Errorf("answered with no records: %+v", resp.Partitions[manyPartitions])
			}
			done <- err
		}()
		waitForWaiter(t)
		produce(t, b, topic, 0, fmt.Sprint("w", i))
		require.NoError(t, testkit.Await(t, done, "the fetch's answer at the append to "+topic))
		if topic == "u" {
			req.Partitions[manyPartitions].Offset = 2
		}
	}
}

// TestUntrustedFetchManyPartitionsWaitsForMinBytes: a Fetch that names
// more than 65533 partitions and wants more than a byte (MinBytes) waits
// on them all through one channel (log.Wake), and is woken by appends to
// the last of them until they bring MinBytes (the first wakes it: each
// partition's share of what it lacks is a byte).
func TestUntrustedFetchManyPartitionsWaitsForMinBytes(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	require.NoError(t, b.CreateTopic(ctx, "u", log.TopicConfig{Partitions: 1}))
	req := &api.FetchRequest{MaxWait: time.Hour, MinBytes: 2 * len(batch(t, "v0"))}
	for range manyPartitions {
		req.Partitions = append(req.Partitions, api.FetchPartition{Topic: "t"})
	}
	req.Partitions = append(req.Partitions, api.FetchPartition{Topic: "u"})
	type answer struct {
		resp api.FetchResponse
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := fetchNoPanic(ctx, b, req)
		done <- answer{resp, err}
	}()
	waitForWaiter(t)
	produce(t, b, "u", 0, "v0")
	produce(t, b, "u", 0, "v1")
	a := testkit.Await(t, done, "the fetch's answer at MinBytes")
	require.NoError(t, a.err)
	require.Len(t, a.resp.Partitions, manyPartitions+1)
	require.Equal(t, []string{"v0", "v1"}, values(t, a.resp.Partitions[manyPartitions].Records))
}

// fetchNoPanic is b.Fetch, with a panic turned into an error.
func fetchNoPanic(ctx context.Context, b *Broker, req *api.FetchRequest) (resp api.FetchResponse, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("Fetch panicked: %v", r)
		}
	}()
	return b.Fetch(ctx, req)
}

// TestUntrustedFetchWakeReadsOnlyNewBytes: a Fetch that waits for more
// bytes than its partitions hold (a MinBytes of math.MaxInt32, from a
// tenant, with a long MaxWait) and is woken by appends looks at the new
// bytes only, not again at those it counted. On disk each wake read
// (and copied to the heap) everything the partitions held past the
// fetch's offsets, twice (its read, then its count of what the log holds
// past it): ten appends of one byte to a partition of 20 MB cost 400 MB
// of reads and allocations, for as long as MaxWait, which has no bound,
// lasted. Under the race detector (whose shadow of each byte copied made
// the fetches' first reads most of its time) 5 MB: the ten wakes read
// 100 MB so, still far above the 4 MiB bound. The fetch names a second,
// empty, partition of a compacted topic, and the appends go to it: an
// append that does not bring MinBytes to a partition that is not
// compacted wakes no fetch (see byteWait: since 2026-12-07 one of
// several partitions neither), and every append to a compacted one
// wakes the fetches that name it.
func TestUntrustedFetchWakeReadsOnlyNewBytes(t *testing.T) {
	b := open(t, Config{Dir: t.TempDir()})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2, Config: log.Config{Sync: log.SyncNever}}))
	require.NoError(t, b.CreateTopic(ctx, "c", log.TopicConfig{Partitions: 1, Config: log.Config{Sync: log.SyncNever, CleanupPolicy: log.Compact}}))
	wake := func() { // an append that wakes the fetch
		_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "c", Acks: api.AcksAll, Batches: keyed(t, "k", "v")})
		require.NoError(t, err)
	}
	big := strings.Repeat("x", 100<<10)
	records := 200
	if testkit.RaceEnabled {
		records = 50
	}
	for range records {
		produce(t, b, "t", 0, big)
	}
	held := int(b.topics["t"].Partitions[0].Offsets().HighWatermark) // records, not bytes: for the error text
	reads := make(chan struct{}, 1000)
	setFetchReadHook(func() { reads <- struct{}{} })
	defer func() { setFetchReadHook(nil) }()
	fetch := func(ctx context.Context, minBytes int, parts ...api.FetchPartition) <-chan error {
		done := make(chan error, 1)
		go func() {
			resp, err := b.Fetch(ctx, &api.FetchRequest{MaxWait: time.Minute, MinBytes: minBytes, MaxBytes: math.MaxInt32, Partitions: parts})
			if err == nil && len(resp.Partitions[0].Records) < minBytes && minBytes < math.MaxInt32 {
				err = fmt.Errorf("answered with %d bytes, fewer than MinBytes %d", len(resp.Partitions[0].Records), minBytes)
			}
			done <- err
		}()
		return done
	}

	both := []api.FetchPartition{{Topic: "t"}, {Topic: "c"}}
	fctx, cancel := context.WithCancel(ctx)
	done := fetch(fctx, math.MaxInt32, both...)
	lookedAtBoth := func() { // a read or a look of each
		t.Helper()
		testkit.AwaitHold(t, reads, done, "the Fetch")
		testkit.AwaitHold(t, reads, done, "the Fetch")
	}
	lookedAtBoth() // its first read
	wake()
	lookedAtBoth() // woken: it waited, its first read and count done
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	const appends = 10
	for range appends {
		wake()
		lookedAtBoth() // woken
	}
	runtime.ReadMemStats(&m1)
	cancel()
	require.NoError(t, testkit.Await(t, done, "Fetch's answer")) // it read records: ctx's end answers them
	for len(reads) > 0 {
		<-reads // its last read, at ctx's end
	}
	woke := int64(m1.TotalAlloc - m0.TotalAlloc)
	t.Logf("%d appends woke a fetch waiting past %d records of 100 KB: %d KiB allocated", appends, held, woke>>10)
	require.Less(t, woke, int64(4<<20), "allocated by %d wakes", appends)

	// A fetch still answers once the appends bring MinBytes, without
	// waiting out MaxWait.
	resp, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: math.MaxInt32, Partitions: []api.FetchPartition{{Topic: "t"}}})
	require.NoError(t, err)
	have := len(resp.Partitions[0].Records)
	testkit.Await(t, reads, "the Fetch's read") // its read
	fctx, cancel = context.WithTimeout(ctx, time.Minute)
	defer cancel()
	done = fetch(fctx, have+3*1000, both[0])
	testkit.Await(t, reads, "the Fetch's read")
	for range 4 {
		produce(t, b, "t", 0, strings.Repeat("y", 1000))
	}
	require.NoError(t, testkit.Await(t, done, "Fetch's answer"))
}
