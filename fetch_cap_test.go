package runnel

// The broker-wide cap on a fetch's bytes, Kafka's
// fetch.max.bytes (Config.FetchMaxBytes). Kafka's KafkaApis fetches with
// min(request max_bytes, fetch.max.bytes) as the request's limit, and
// min(request min_bytes, that) as its min bytes; each partition is read
// up to min(its partition_max_bytes, what is left of the request's), and
// the first batch of the first partition with data comes whole whatever
// its size (KIP-74). Before, a fetch's MaxBytes was taken as given: on
// the OS's file system a MaxBytes of math.MaxInt32 read what the
// partitions held onto the heap. Allocations are runtime.MemStats'
// TotalAlloc across the call (an upper bound: goroutines that run
// meanwhile count too), never a time.

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// fetchCapBytes is the cap the tests set: small, so that partitions of a
// few MiB hold many times it.
const fetchCapBytes = 64 << 10

// fetchCapFill creates topic t with parts partitions, each holding count
// batches of one record whose value is valueBytes long (a batch of
// about twice that: batch() adds the value as the key too).
func fetchCapFill(t *testing.T, b *Broker, parts int32, count, valueBytes int, cfg log.Config) {
	t.Helper()
	cfg.Sync = log.SyncNever
	cfg.MaxMessageBytes = 4 << 20
	require.NoError(t, b.CreateTopic(context.Background(), "t", log.TopicConfig{Partitions: int(parts), Config: cfg}))
	v := strings.Repeat("v", valueBytes)
	for p := range parts {
		for range count {
			produce(t, b, "t", p, v)
		}
	}
}

// fetchCapSizes returns the sizes of the whole batches in data.
func fetchCapSizes(t *testing.T, data []byte) []int {
	t.Helper()
	var out []int
	for bt, err := range record.Batches(data) {
		require.NoError(t, err)
		out = append(out, len(bt))
	}
	return out
}

// A fetch whose MaxBytes is math.MaxInt32 (or not set: 50 MiB) over two
// partitions of 2 MiB each, with a cap of 64 KiB: the answer holds at
// most the cap (its batches of 16 KiB all fit: no first batch is past
// it), and on disk the fetch allocates about the cap, not what the
// partitions hold. Whatever the partitions' MaxBytes: 0 (the request's
// applies), or math.MaxInt32 (each partition read up to what is left of
// the capped request's, as Kafka reads min(partition max bytes, request
// bytes left)). Before: 4 MiB answered, and on disk allocated.
func TestFetchCapBoundsAFetch(t *testing.T) {
	for _, onDisk := range []bool{false, true} {
		name := "memory"
		cfg := Config{FetchMaxBytes: fetchCapBytes}
		if onDisk {
			name, cfg.Dir = "disk", t.TempDir()
		}
		t.Run(name, func(t *testing.T) {
			b := open(t, cfg)
			fetchCapFill(t, b, 2, 128, 8<<10, log.Config{})
			one := len(batch(t, strings.Repeat("v", 8<<10)))
			for _, c := range []struct {
				name            string
				reqMax, partMax int
			}{
				{"request MaxInt32, partitions 0", math.MaxInt32, 0},
				{"request MaxInt32, partitions MaxInt32", math.MaxInt32, math.MaxInt32},
				{"request 0 (50 MiB), partitions MaxInt32", 0, math.MaxInt32},
			} {
				req := &api.FetchRequest{MaxBytes: c.reqMax, Partitions: []api.FetchPartition{
					{Topic: "t", MaxBytes: c.partMax}, {Topic: "t", Partition: 1, MaxBytes: c.partMax}}}
				var got int
				alloc := testkit.Allocated(func() {
					resp, err := b.Fetch(context.Background(), req)
					require.NoError(t, err)
					for _, fp := range resp.Partitions {
						require.NoError(t, fp.Err)
						got += len(fp.Records)
					}
				})
				t.Logf("%s: %d bytes answered, %.3f MB allocated", c.name, got, float64(alloc)/1e6)
				require.LessOrEqual(t, got, fetchCapBytes, "%s: the answer is past the cap", c.name)
				require.Greater(t, got, fetchCapBytes-one, "%s: the answer does not fill the cap", c.name)
				if onDisk {
					require.LessOrEqual(t, alloc, int64(fetchCapBytes+128<<10), "%s: the fetch allocated past the cap", c.name)
				}
			}
		})
	}
}

// A batch larger than the cap still comes, whole, as the first batch of
// the first partition with data (KIP-74), so that a consumer makes
// progress; then nothing more: a later partition's first batch does not
// fit, and the first partition's next batch neither. Before: every
// batch of both partitions was answered.
func TestFetchFirstBatchPastTheCap(t *testing.T) {
	for _, onDisk := range []bool{false, true} {
		name := "memory"
		cfg := Config{FetchMaxBytes: MinFetchMaxBytes}
		if onDisk {
			name, cfg.Dir = "disk", t.TempDir()
		}
		t.Run(name, func(t *testing.T) {
			b := open(t, cfg)
			fetchCapFill(t, b, 2, 3, 4<<10, log.Config{})
			one := len(batch(t, strings.Repeat("v", 4<<10)))
			require.Greater(t, one, MinFetchMaxBytes)
			resp, err := b.Fetch(context.Background(), &api.FetchRequest{MaxBytes: math.MaxInt32, Partitions: []api.FetchPartition{
				{Topic: "t", MaxBytes: math.MaxInt32}, {Topic: "t", Partition: 1, MaxBytes: math.MaxInt32}}})
			require.NoError(t, err)
			require.Equal(t, []int{one}, fetchCapSizes(t, resp.Partitions[0].Records), "the first batch, whole, and only it")
			require.Empty(t, resp.Partitions[1].Records, "a later partition's first batch past what the cap leaves")

			// The next fetch, from the next offset, makes progress again.
			resp, err = b.Fetch(context.Background(), &api.FetchRequest{MaxBytes: math.MaxInt32, Partitions: []api.FetchPartition{
				{Topic: "t", Offset: 1}}})
			require.NoError(t, err)
			require.Equal(t, []int{one}, fetchCapSizes(t, resp.Partitions[0].Records))
		})
	}
}

// A fetch that waits for MinBytes takes the cap too: its MinBytes counts
// as at most the cap, as in Kafka's min(min_bytes, fetch max bytes), so a
// fetch of MinBytes math.MaxInt32 over partitions that hold more than
// the cap answers at once with at most the cap, rather than at MaxWait
// with what the partitions hold. Before: it waited for MaxWait (an hour,
// in fake time) and answered 2 MiB.
func TestFetchWaitingTakesTheCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{FetchMaxBytes: fetchCapBytes})
		fetchCapFill(t, b, 1, 128, 8<<10, log.Config{})
		t0 := time.Now()
		resp, err := b.Fetch(t.Context(), &api.FetchRequest{MaxWait: time.Hour, MinBytes: math.MaxInt32, MaxBytes: math.MaxInt32,
			Partitions: []api.FetchPartition{{Topic: "t", MaxBytes: math.MaxInt32}}})
		require.NoError(t, err)
		require.Equal(t, t0, time.Now(), "the fetch waited, for bytes past the cap")
		got := len(resp.Partitions[0].Records)
		require.LessOrEqual(t, got, fetchCapBytes)
		require.Positive(t, got)
	})
}

// A fetch that waits counts the bytes its partitions hold past its
// answer (probe reads, on disk onto the heap): that count stops at the
// cap, too. Partition 0, whose MaxBytes is one batch of 16 KiB, answers
// that batch; partition 1's batches of 96 KiB do not fit in what the cap
// leaves, so it answers none, and the fetch, holding less than its
// MinBytes (math.MaxInt32, taken as the cap), counts partition 1's
// first batch, whole (a batch that does not fit counts as the room it
// fills), and answers at once. On disk the probe allocates about that
// batch. Before: the fetch read both partitions whole (4 MiB), and,
// holding less than MinBytes, waited for MaxWait.
func TestFetchWaitingCountsWithinTheCap(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{Dir: dir, FetchMaxBytes: fetchCapBytes})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 2, Config: log.Config{Sync: log.SyncNever, MaxMessageBytes: 1 << 20}}))
		small, big := strings.Repeat("s", 8<<10), strings.Repeat("b", 48<<10)
		for range 128 {
			produce(t, b, "t", 0, small)
		}
		for range 24 {
			produce(t, b, "t", 1, big)
		}
		one := len(batch(t, small))
		t0 := time.Now()
		var resp api.FetchResponse
		alloc := testkit.Allocated(func() {
			var err error
			resp, err = b.Fetch(t.Context(), &api.FetchRequest{MaxWait: time.Hour, MinBytes: math.MaxInt32, MaxBytes: math.MaxInt32,
				Partitions: []api.FetchPartition{{Topic: "t", MaxBytes: one}, {Topic: "t", Partition: 1, MaxBytes: math.MaxInt32}}})
			require.NoError(t, err)
		})
		t.Logf("%d + %d bytes answered, %.3f MB allocated", len(resp.Partitions[0].Records), len(resp.Partitions[1].Records), float64(alloc)/1e6)
		require.Equal(t, t0, time.Now(), "the fetch waited, for bytes past the cap")
		require.Equal(t, []int{one}, fetchCapSizes(t, resp.Partitions[0].Records))
		require.Empty(t, resp.Partitions[1].Records)
		require.LessOrEqual(t, alloc, int64(fetchCapBytes+256<<10), "the fetch and its count allocated past the cap")
	})
}

// Open refuses a FetchMaxBytes below Kafka's minimum, 1024
// (fetch.max.bytes has atLeast(1024)), a negative one included, with
// log.ErrInvalidConfig; it takes 1024, and 0 means the default, Kafka's
// 55 MiB.
func TestOpenChecksFetchMaxBytes(t *testing.T) {
	require.Equal(t, 55<<20, DefaultFetchMaxBytes, "Kafka's fetch.max.bytes default")
	require.Equal(t, 57671680, DefaultFetchMaxBytes)
	require.Equal(t, 1024, MinFetchMaxBytes, "Kafka's atLeast(1024)")
	for _, n := range []int{MinFetchMaxBytes - 1, 1, -1, math.MinInt} {
		b, err := Open(Config{FetchMaxBytes: n})
		require.ErrorIs(t, err, log.ErrInvalidConfig, "FetchMaxBytes %d", n)
		require.True(t, errors.Is(err, log.ErrInvalidConfig))
		require.Nil(t, b)
	}
	require.Equal(t, MinFetchMaxBytes, open(t, Config{FetchMaxBytes: MinFetchMaxBytes}).cfg.FetchMaxBytes)
	require.Equal(t, DefaultFetchMaxBytes, open(t, Config{}).cfg.FetchMaxBytes, "0 is the default")
	require.Equal(t, math.MaxInt32, open(t, Config{FetchMaxBytes: math.MaxInt32}).cfg.FetchMaxBytes)
}

// With the default cap, 55 MiB, a fetch of MaxBytes math.MaxInt32 over a
// partition of 57 MiB answers at most 55 MiB (less part of a batch of 1
// MiB). Before: the 57 MiB.
func TestFetchDefaultCap(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 57 MiB")
	}
	b := open(t, Config{Dir: t.TempDir()})
	fetchCapFill(t, b, 1, 57, 1<<19, log.Config{}) // batches of 1 MiB
	resp, err := b.Fetch(context.Background(), &api.FetchRequest{MaxBytes: math.MaxInt32, Partitions: []api.FetchPartition{{Topic: "t", MaxBytes: math.MaxInt32}}})
	require.NoError(t, err)
	got := len(resp.Partitions[0].Records)
	t.Logf("%d bytes answered", got)
	require.LessOrEqual(t, got, 55<<20, "past Kafka's fetch.max.bytes")
	require.Greater(t, got+(1<<20)+200, 55<<20, "the cap less part of a batch")
}

// A fetch's MinBytes above its MaxBytes counts as its MaxBytes, as
// Kafka's broker waits for min(min_bytes, max_bytes, fetch.max.bytes):
// a fetch of MaxBytes 64 KiB and MinBytes 1 MiB over a partition that
// holds 128 KiB answers at once, with at most its MaxBytes. Before, it
// waited for MaxWait (an hour, in fake time): the partition never held
// 1 MiB.
func TestFetchMinBytesAboveMaxBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{})
		fetchCapFill(t, b, 1, 16, 4<<10, log.Config{}) // batches of about 8 KiB
		t0 := time.Now()
		resp, err := b.Fetch(t.Context(), &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1 << 20, MaxBytes: 64 << 10,
			Partitions: []api.FetchPartition{{Topic: "t", MaxBytes: math.MaxInt32}}})
		require.NoError(t, err)
		require.Equal(t, t0, time.Now(), "the fetch waited for a MinBytes past its MaxBytes")
		got := len(resp.Partitions[0].Records)
		require.LessOrEqual(t, got, 64<<10)
		require.Greater(t, got, 48<<10)
	})
}

// TestFetchCapIsInclusive: a fetch whose batches add up to the cap
// exactly answers them all, and one whose cap is a byte short of them
// answers one fewer, as a request's MaxBytes is counted (Kafka's broker
// reads up to min(max_bytes, fetch.max.bytes) inclusive). The request
// sets MaxBytes math.MaxInt32, so the cap alone bounds it (it fails
// with the cap taken a byte smaller, or a byte larger).
func TestFetchCapIsInclusive(t *testing.T) {
	v := strings.Repeat("v", 200)
	one := len(batch(t, v))
	require.GreaterOrEqual(t, 3*one-1, MinFetchMaxBytes)
	for _, onDisk := range []bool{false, true} {
		for _, c := range []struct {
			cap, batches int
		}{
			{3 * one, 3},
			{3*one - 1, 2},
			{3*one + 1, 3},
		} {
			cfg := Config{FetchMaxBytes: c.cap}
			if onDisk {
				cfg.Dir = t.TempDir()
			}
			b := open(t, cfg)
			fetchCapFill(t, b, 1, 8, len(v), log.Config{})
			resp, err := b.Fetch(context.Background(), &api.FetchRequest{MaxBytes: math.MaxInt32,
				Partitions: []api.FetchPartition{{Topic: "t", MaxBytes: math.MaxInt32}}})
			require.NoError(t, err)
			require.NoError(t, resp.Partitions[0].Err)
			got := fetchCapSizes(t, resp.Partitions[0].Records)
			require.Len(t, got, c.batches, "cap %d, batches of %d bytes, on disk %v", c.cap, one, onDisk)
			require.NoError(t, b.Close())
		}
	}
}

// TestFetchWakeTakesTheCapAsAFetch: a long poll woken with two of its
// partitions appended to reads them again (fetchChanged) as a fetch
// does: only the first with data may take a batch past what the fetch's
// MaxBytes leaves, the later one's first batch, which does not fit,
// waits for a later fetch (mutant: each partition read again as if it
// were the first with data, the answer past MaxBytes).
func TestFetchWakeTakesTheCapAsAFetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := open(t, Config{})
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 2}))
		big := strings.Repeat("v", 4<<10)
		reads := 0
		setFetchReadHook(func() {
			reads++         // the fetch's goroutine only
			if reads == 3 { // the wake's read of t-0
				produce(t, b, "t", 1, big)
			}
		})
		defer func() { setFetchReadHook(nil) }()
		done := goFetch(t.Context(), b, &api.FetchRequest{MaxWait: time.Hour, MinBytes: 1, MaxBytes: 1 << 10,
			Partitions: []api.FetchPartition{{Topic: "t"}, {Topic: "t", Partition: 1}}})
		synctest.Wait() // it read both, and waits
		produce(t, b, "t", 0, "a")
		a := <-done
		require.NoError(t, a.err)
		require.Equal(t, []string{"a"}, values(t, a.resp.Partitions[0].Records))
		require.Empty(t, a.resp.Partitions[1].Records, "t-1's first batch, past what MaxBytes leaves")
		require.EqualValues(t, 1, a.resp.Partitions[1].HighWatermark, "t-1 read again")
	})
}
