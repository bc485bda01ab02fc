package runnel

import (
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestFetchMaxBytesOversizedBatchOnlyFirst: as in Kafka (KIP-74), a
// batch larger than the bytes left is returned only when no partition
// before it in the response had data, so that a consumer makes progress;
// a later partition whose first batch does not fit in what is left of
// the request's MaxBytes (or its own MaxBytes) returns nothing, and the
// response stays within MaxBytes.
func TestFetchMaxBytesOversizedBatchOnlyFirst(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 3}))
	big := strings.Repeat("x", 1000)
	produce(t, b, "t", 0, big)
	produce(t, b, "t", 1, big)
	produce(t, b, "t", 2, big)
	one := len(batch(t, big))

	// The first partition with data gets its batch, though larger than
	// MaxBytes; the others nothing.
	resp, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 10, Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1}}})
	require.NoError(t, err)
	require.Equal(t, []string{big}, values(t, resp.Partitions[0].Records))
	require.Empty(t, resp.Partitions[1].Records, "a second oversized batch")
	require.NoError(t, resp.Partitions[1].Err)

	// Room left, but less than the next batch: the response stays within
	// MaxBytes.
	resp, err = b.Fetch(ctx, &api.FetchRequest{MaxBytes: one + one/2, Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1}, {Topic: "t", Partition: 2}}})
	require.NoError(t, err)
	total := 0
	for _, p := range resp.Partitions {
		require.NoError(t, p.Err)
		total += len(p.Records)
	}
	require.LessOrEqual(t, total, one+one/2, "past the request's MaxBytes")
	require.Equal(t, []string{big}, values(t, resp.Partitions[0].Records))

	// A partition's own MaxBytes too, once an earlier partition had data.
	resp, err = b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1, MaxBytes: 10}}})
	require.NoError(t, err)
	require.Equal(t, []string{big}, values(t, resp.Partitions[0].Records))
	require.Empty(t, resp.Partitions[1].Records)

	// An empty partition first does not count as data: the next one's
	// oversized batch comes.
	require.NoError(t, b.CreateTopic(ctx, "e", log.TopicConfig{Partitions: 1}))
	resp, err = b.Fetch(ctx, &api.FetchRequest{MaxBytes: 10, Partitions: []api.FetchPartition{{Topic: "e"}, {Topic: "t", Partition: 2, MaxBytes: 10}}})
	require.NoError(t, err)
	require.Empty(t, resp.Partitions[0].Records)
	require.Equal(t, []string{big}, values(t, resp.Partitions[1].Records))
}

// TestFetchOutOfRangeAfterMaxBytes: a partition that comes after the
// request's MaxBytes is used up still has its offset checked, as Kafka's
// broker reads every partition of a fetch (a read of 0 bytes there):
// OFFSET_OUT_OF_RANGE for an offset past the log end or below the log
// start, and no error at the log end. fetchOnce skipped such a partition
// and answered it without an error. Found by TestParityRandomized in
// benchmarks/peers.
func TestFetchOutOfRangeAfterMaxBytes(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))
	big := strings.Repeat("x", 1000)
	produce(t, b, "t", 0, big)
	produce(t, b, "t", 1, big)
	produce(t, b, "t", 1, big)
	_, err := b.DeleteRecords(ctx, "t", 1, 1)
	require.NoError(t, err)
	for _, c := range []struct {
		offset int64
		want   error
	}{{3, log.ErrOffsetOutOfRange}, {0, log.ErrOffsetOutOfRange}, {2, nil}, {1, nil}} {
		resp, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 10, Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1, Offset: c.offset}}})
		require.NoError(t, err)
		require.Equal(t, []string{big}, values(t, resp.Partitions[0].Records))
		p := resp.Partitions[1]
		require.Empty(t, p.Records, "offset %d: no room left", c.offset)
		if c.want != nil {
			require.ErrorIs(t, p.Err, c.want, "offset %d", c.offset)
			require.Equal(t, int16(1), api.Code(p.Err), "OFFSET_OUT_OF_RANGE")
		} else {
			require.NoError(t, p.Err, "offset %d", c.offset)
		}
		require.Equal(t, int64(1), p.LogStartOffset)
		require.Equal(t, int64(2), p.HighWatermark)
	}
}

// TestFetchFencedAfterMaxBytes: a partition that comes after the
// request's MaxBytes is used up is still read (a read of 0 bytes), as
// Kafka's broker reads every partition of a fetch: one whose log a failed
// reopen left closed answers log.ErrLogFenced (KAFKA_STORAGE_ERROR, as
// Kafka answers an offline partition whatever the bytes left), as it does
// when it comes first. fetchOnce only compared the offset with the
// offsets it had taken, and answered it without an error (found by
// review of the fix that added that comparison).
func TestFetchFencedAfterMaxBytes(t *testing.T) {
	ctx := context.Background()
	var armed atomic.Bool
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if armed.Load() && op == vfs.OpList && filepath.ToSlash(name) == "/data/t-1" {
			return vfs.ErrInjected
		}
		return nil
	}))
	b := open(t, Config{Dir: "/data", FS: fsys})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))
	big := strings.Repeat("x", 1000)
	produce(t, b, "t", 0, big)
	produce(t, b, "t", 1, big)
	armed.Store(true)
	require.ErrorIs(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.MaxMessageBytes = 2 << 20 }), vfs.ErrInjected)

	for _, maxBytes := range []int{1 << 20, 10} {
		resp, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: maxBytes, Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1}}})
		require.NoError(t, err)
		require.Equal(t, []string{big}, values(t, resp.Partitions[0].Records))
		p := resp.Partitions[1]
		require.Empty(t, p.Records)
		require.ErrorIs(t, p.Err, log.ErrLogFenced, "max bytes %d", maxBytes)
		require.EqualValues(t, 56, api.Code(p.Err), "KAFKA_STORAGE_ERROR")
	}

	// Once it opens again, past MaxBytes it answers no error, and its
	// offset is checked.
	armed.Store(false)
	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) {}))
	for _, c := range []struct {
		offset int64
		want   error
	}{{0, nil}, {1, nil}, {2, log.ErrOffsetOutOfRange}} {
		resp, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 10, Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1, Offset: c.offset}}})
		require.NoError(t, err)
		p := resp.Partitions[1]
		require.Empty(t, p.Records)
		if c.want == nil {
			require.NoError(t, p.Err, "offset %d", c.offset)
		} else {
			require.ErrorIs(t, p.Err, c.want, "offset %d", c.offset)
		}
		require.EqualValues(t, 0, p.LogStartOffset)
		require.EqualValues(t, 1, p.HighWatermark)
	}
}

// TestFetchDeletedAfterMaxBytes: a partition past the request's MaxBytes
// whose topic is deleted between its look-up and its read (of 0 bytes)
// answers ErrUnknownTopic, with ErrUnknownTopicID for a fetch that names
// the topic's ID, as the read of a partition with room does.
func TestFetchDeletedAfterMaxBytes(t *testing.T) {
	for _, byID := range []bool{false, true} {
		b := open(t, Config{})
		ctx := context.Background()
		require.NoError(t, b.CreateTopic(ctx, "a", log.TopicConfig{Partitions: 1}))
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
		big := strings.Repeat("x", 1000)
		produce(t, b, "a", 0, big)
		produce(t, b, "t", 0, big)
		fp := api.FetchPartition{Topic: "t"}
		if byID {
			fp.TopicID = b.topics["t"].ID
		}
		reads := 0
		var delErr error
		setFetchReadHook(func() {
			if reads++; reads == 2 { // t's read, after a's
				delErr = b.DeleteTopic(ctx, "t")
			}
		})
		resp, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 10, Partitions: []api.FetchPartition{{Topic: "a"}, fp}})
		setFetchReadHook(nil)
		require.NoError(t, err)
		require.NoError(t, delErr)
		require.Equal(t, 2, reads)
		require.Equal(t, []string{big}, values(t, resp.Partitions[0].Records))
		require.ErrorIs(t, resp.Partitions[1].Err, ErrUnknownTopic, "by ID %v", byID)
		if byID {
			require.ErrorIs(t, resp.Partitions[1].Err, ErrUnknownTopicID)
		}
		// No partition to tell of: -1 and -1, as for one unknown from
		// the start (TestFetchOfNoSuchPartitionAnswersNoOffsets).
		require.Equal(t, [2]int64{-1, -1}, [2]int64{resp.Partitions[1].HighWatermark, resp.Partitions[1].LogStartOffset})
	}
}

// TestFetchMinBytesAcrossSegments: a read stops at the end of a segment,
// so one pass may find fewer than MinBytes where the log holds more below
// the high watermark. Kafka's delayed fetch completes then (the fetch
// offset is on an older segment than the high watermark); the broker once
// waited for an append that might never come, or the whole MaxWait.
func TestFetchMinBytesAcrossSegments(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{{"memory", Config{}}, {"disk", Config{Dir: t.TempDir()}}} {
		t.Run(tc.name, func(t *testing.T) { testFetchMinBytesAcrossSegments(t, tc.cfg) })
	}
}

func testFetchMinBytesAcrossSegments(t *testing.T, cfg Config) {
	b := open(t, cfg)
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 100}}))
	for _, v := range []string{"a", "b", "c", "d"} {
		produce(t, b, "t", 0, v)
	}
	one := len(batch(t, "a"))
	// A guard against the hang: the answer must come at once, with no
	// append and no MaxWait, long before cctx ends (a Fetch whose ctx ends
	// returns what it found, without an error).
	cctx, cancel := context.WithTimeout(ctx, testkit.HangGuard)
	defer cancel()
	resp, err := b.Fetch(cctx, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 3 * one, Partitions: []api.FetchPartition{{Topic: "t"}}})
	require.NoError(t, err)
	require.NoError(t, cctx.Err(), "Fetch waited for more though the log had it")
	require.NoError(t, resp.Partitions[0].Err)
	require.NotEmpty(t, resp.Partitions[0].Records)

	// The same once woken: a fetch at the end waits for appends, and
	// once they bring MinBytes in two segments, answers.
	got := make(chan api.FetchResponse)
	go func() {
		resp, err := b.Fetch(cctx, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 2 * one, Partitions: []api.FetchPartition{{Topic: "t", Offset: 4}}})
		if err != nil {
			t.Error(err)
		}
		got <- resp
	}()
	produce(t, b, "t", 0, "e")
	produce(t, b, "t", 0, "f")
	resp = testkit.Await(t, got, "Fetch's answer")
	require.NoError(t, cctx.Err(), "Fetch waited for more though the log had it")
	require.Equal(t, []string{"e"}, values(t, resp.Partitions[0].Records))
}

// TestFetchEndsWithClose: a long poll that waits on no partition of the
// broker (a request naming none) ends with ErrClosed when the broker
// closes, as Fetch's doc says, rather than at the end of its MaxWait.
func TestFetchEndsWithClose(t *testing.T) {
	// A guard against the hang: each Fetch must end with Close, long
	// before cctx does.
	cctx, cancel := context.WithTimeout(context.Background(), testkit.HangGuard)
	defer cancel()
	for range 5 {
		b, err := Open(Config{})
		require.NoError(t, err)
		done := make(chan error)
		go func() {
			_, err := b.Fetch(cctx, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1})
			done <- err
		}()
		waitForWaiter(t)
		require.NoError(t, b.Close())
		require.ErrorIs(t, testkit.Await(t, done, "Fetch's answer"), ErrClosed)
	}
}

// waitForWaiter returns once a goroutine waits in a Fetch's long poll
// (see inLongPoll): so that what the test does next happens during the
// wait, not before it began. It fails t after testkit.HangGuard.
func waitForWaiter(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	testkit.SpinUntil(t, func() bool {
		return inLongPoll(string(buf[:runtime.Stack(buf, true)]))
	}, "no Fetch waits in its long poll")
}

// inLongPoll reports whether stacks (runtime.Stack's of all goroutines)
// show a Fetch waiting in its long poll: in waitOne (whatever its
// partitions and MinBytes; a fetch of several partitions that wanted a
// byte waited in waitAny until 2026-12-07).
func inLongPoll(stacks string) bool {
	return strings.Contains(stacks, "runnel.waitOne(")
}

// TestAppendBecomesReadableAfterItsWaitEnds: under the default fsync
// policy an append is readable once fsynced, and the fsync is done by
// whoever waits for it. A produce whose wait ends (its ctx) while another
// producer's fsync runs, which does not cover it, left its records
// appended but never fsynced: above the high watermark, unreadable, until
// some later append's fsync, which might never come. The broker now
// fsyncs them itself.
func TestAppendBecomesReadableAfterItsWaitEnds(t *testing.T) {
	var armed atomic.Bool
	entered, held := make(chan struct{}), make(chan struct{})
	release := sync.OnceFunc(func() { close(held) })
	fs := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && strings.HasSuffix(name, ".log") && armed.CompareAndSwap(true, false) {
			close(entered)
			<-held
		}
		return nil
	}))
	b := open(t, Config{FS: fs})
	t.Cleanup(release) // before open's Close: a failed assertion frees the held fsync, or Close waits for it
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))

	// A's fsync hangs ...
	armed.Store(true)
	aDone := make(chan error, 1)
	go func() {
		_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, "a")})
		aDone <- err
	}()
	testkit.AwaitHold(t, entered, aDone, "the Produce of a")
	// ... while B is appended, and B's wait for an fsync ends with its ctx.
	bctx, cancel := context.WithCancel(ctx)
	resp, ack, err := b.ProduceAsync(bctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, "b")})
	require.NoError(t, err)
	require.EqualValues(t, 1, resp.BaseOffset)
	require.NotNil(t, ack)
	cancel()
	require.ErrorIs(t, ack.Wait(bctx), context.Canceled)
	release()
	require.NoError(t, testkit.Await(t, aDone, "Produce's answer"))

	// B was appended: it must become readable without another append.
	cctx, cancel2 := context.WithTimeout(ctx, testkit.HangGuard)
	defer cancel2()
	got, err := b.Fetch(cctx, &api.FetchRequest{MaxWait: time.Hour, Partitions: []api.FetchPartition{{Topic: "t", Offset: 1}}})
	require.NoError(t, err)
	require.NoError(t, cctx.Err(), "B stayed above the high watermark")
	require.Equal(t, []string{"b"}, values(t, got.Partitions[0].Records))
}

// TestFetchOutOfRangeCarriesTheLogStartItWasOutOf: a fetch whose offset
// was in range when its partition's offsets were taken, and fell below
// the log start before its read (retention, or DeleteRecords, moving the
// start meanwhile), is answered log.ErrOffsetOutOfRange with the log
// start the read found, above the offset. The broker answered with the
// offsets taken before the read, whose log start was at or below the
// offset: an answer that contradicts itself, and a client that went on
// from its LogStartOffset fetched the same offset again (found by
// TestLifecycleStress on disk with retention: its check "Fetch 0-661:
// offset out of range [735, 864]", whose retry on a LogStartOffset above
// the offset was not taken). The hook moves the start between the two,
// as retention did.
func TestFetchOutOfRangeCarriesTheLogStartItWasOutOf(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	for _, v := range []string{"a", "b", "c", "d"} {
		produce(t, b, "t", 0, v) // a batch each: a read from 3 returns d alone
	}

	var low int64
	var lowErr error
	setFetchReadHook(func() {
		setFetchReadHook(nil) // once: the fetch's one read
		low, lowErr = b.DeleteRecords(ctx, "t", 0, 3)
	})
	defer func() { setFetchReadHook(nil) }()

	resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Offset: 1}}})
	require.NoError(t, err)
	require.NoError(t, lowErr)
	require.EqualValues(t, 3, low)
	fp := resp.Partitions[0]
	require.ErrorIs(t, fp.Err, log.ErrOffsetOutOfRange)
	require.Empty(t, fp.Records)
	require.EqualValues(t, 3, fp.LogStartOffset, "the log start the offset was out of")
	require.EqualValues(t, 4, fp.HighWatermark)

	// From there the fetch goes on.
	resp, err = b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Offset: fp.LogStartOffset}}})
	require.NoError(t, err)
	require.NoError(t, resp.Partitions[0].Err)
	require.Equal(t, []string{"d"}, values(t, resp.Partitions[0].Records))
}

// TestFetchBatchFillingTheRoomLeftFits: a later partition's batch whose
// size is exactly the room left (of the request's MaxBytes, or of its own
// MaxBytes) fits, and is returned.
func TestFetchBatchFillingTheRoomLeftFits(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))
	v := strings.Repeat("x", 100)
	produce(t, b, "t", 0, v)
	produce(t, b, "t", 1, v)
	one := len(batch(t, v))

	for _, req := range []*api.FetchRequest{
		{MaxBytes: 2 * one, Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1}}},
		{Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1, MaxBytes: one}}},
	} {
		resp, err := b.Fetch(ctx, req)
		require.NoError(t, err)
		for i, p := range resp.Partitions {
			require.NoError(t, p.Err)
			require.Equal(t, []string{v}, values(t, p.Records), "partition %d", i)
		}
	}
}

// TestFetchMinBytesCountsAnOversizedBatchAsTheRoomItFills: a batch past
// what a fetch returned that does not fit in its partition's room left
// counts toward MinBytes as that room, not as its size: a fetch that the
// room does not bring to MinBytes waits (here MaxWait, 1 ns, then reads
// again), rather than answer at once.
func TestFetchMinBytesCountsAnOversizedBatchAsTheRoomItFills(t *testing.T) {
	b := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	produce(t, b, "t", 0, "a")
	produce(t, b, "t", 0, strings.Repeat("x", 1000))
	small := len(batch(t, "a"))
	reads := countFetchReads(t)
	resp, err := b.Fetch(ctx, &api.FetchRequest{
		MaxWait: time.Nanosecond, MinBytes: small + 500,
		Partitions: []api.FetchPartition{{Topic: "t", MaxBytes: small + 100}},
	})
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, values(t, resp.Partitions[0].Records))
	require.EqualValues(t, 2, reads.Load(), "the room left (100 bytes) is short of MinBytes: the fetch waited, and read again")
}

// TestFetchMinBytesCountsAPartitionUpToItsLimit: a fetch's wait
// for MinBytes counts each partition's bytes up to its MaxBytes, those it
// returns included, as Kafka's delayed fetch does (at most the
// partition's max bytes from the fetch offset): a partition that returned
// one batch counts only its room left of the next, so a MinBytes above
// its MaxBytes is never reached and the fetch answers at MaxWait (mutant:
// the room counted whole, the returned batch left out, which answered at
// once).
func TestFetchMinBytesCountsAPartitionUpToItsLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1}))
		for range 3 {
			produce(t, b, "t", 0, "aaaaaaaaaaaaaaaaaaaa")
		}
		one := len(batch(t, "aaaaaaaaaaaaaaaaaaaa"))
		limit := one * 3 / 2
		t0 := time.Now()
		resp, err := b.Fetch(t.Context(), &api.FetchRequest{MaxWait: time.Hour, MinBytes: limit + 1,
			Partitions: []api.FetchPartition{{Topic: "t", MaxBytes: limit}}})
		require.NoError(t, err)
		require.Equal(t, t0.Add(time.Hour), time.Now(), "the fetch did not wait for MaxWait")
		require.Len(t, values(t, resp.Partitions[0].Records), 1)
	})
}

// TestFetchPartitionLimitWithinTheRequests: a partition's
// MaxBytes above what is left of the request's MaxBytes is cut to it, as
// Kafka's broker reads min(partition max bytes, request bytes left): the
// response stays within the request's MaxBytes (mutant: the partition's
// own limit alone, which returned all its batches).
func TestFetchPartitionLimitWithinTheRequests(t *testing.T) {
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 2}))
	for range 3 {
		produce(t, b, "t", 0, "aaaaaaaaaaaaaaaaaaaa")
		produce(t, b, "t", 1, "bbbbbbbbbbbbbbbbbbbb")
	}
	one := len(batch(t, "aaaaaaaaaaaaaaaaaaaa"))
	resp, err := b.Fetch(t.Context(), &api.FetchRequest{MaxBytes: one * 3 / 2, Partitions: []api.FetchPartition{
		{Topic: "t", MaxBytes: 10 * one}, {Topic: "t", Partition: 1, MaxBytes: 10 * one}}})
	require.NoError(t, err)
	require.Len(t, values(t, resp.Partitions[0].Records), 1, "past the request's MaxBytes")
	require.Empty(t, resp.Partitions[1].Records, "past the request's MaxBytes")
}

// TestFetchClosedDuringItsRead: a broker closed while a Fetch
// reads (the first read, or the last look once MaxWait has passed) fails
// the Fetch with ErrClosed, as Fetch's doc says, rather than answering
// each partition with the error of its closed log.
func TestFetchClosedDuringItsRead(t *testing.T) {
	for _, read := range []int{1, 2} {
		t.Run(map[int]string{1: "first read", 2: "read after MaxWait"}[read], func(t *testing.T) {
			ctx := context.Background()
			b := open(t, Config{})
			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
			reads := 0
			var closeErr error
			setFetchReadHook(func() {
				if reads++; reads == read {
					closeErr = b.Close()
				}
			})
			defer func() { setFetchReadHook(nil) }()
			req := &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t"}}}
			if read == 2 {
				req.MaxWait = time.Millisecond // nothing comes: the timer ends the wait
			}
			_, err := b.Fetch(ctx, req)
			require.ErrorIs(t, err, ErrClosed)
			require.NoError(t, closeErr)
			require.Equal(t, read, reads)
		})
	}
}
