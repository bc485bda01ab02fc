package runnel_test

// A service in a container with a hard memory limit embeds
// runnel. For each component, what bounds its peak memory under load,
// and does the bound hold? Every figure is the heap measured after the
// collector (leakcheck.LiveHeap), or the bytes a call allocated
// (runtime.MemStats.TotalAlloc, which bounds the call's peak from
// above), never a time. docs/details.md's "Memory bounds, by component"
// lists the bounds these check.

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/leakcheck"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// memBatch returns a batch of n records of key (nil for none) and
// value val (each its own copy: compression sees n values), compressed
// with codec.
func memBatch(t *testing.T, n int, key, val []byte, codec compression.Codec) []byte {
	t.Helper()
	var bl record.Builder
	for range n {
		bl.Append(time.Now().UnixMilli(), key, val, nil)
	}
	b, err := bl.Finish(codec)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(b)
}

// memProduce appends batch to topic's partition part, count times.
func memProduce(t *testing.T, b *runnel.Broker, topic string, part int32, batch []byte, count int) {
	t.Helper()
	for range count {
		_, err := b.Produce(context.Background(), &api.ProduceRequest{Topic: topic, Partition: part,
			Acks: api.AcksLeader, Batches: bytes.Clone(batch)}) // Produce rewrites its batches
		if err != nil {
			t.Fatal(err)
		}
	}
}

// memRandom returns n random bytes: what no codec shrinks.
func memRandom(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// memSampler is a vfs.Injector that measures the live heap (after
// a collection) before every every-th file operation while it is on,
// and keeps the largest: the peak of a call that does file I/O as it
// goes, sampled by its progress rather than by time.
type memSampler struct {
	mu    sync.Mutex
	on    bool
	every int
	n     int
	peak  int64
}

func (s *memSampler) MaybeError(vfs.Op, string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.on {
		return nil
	}
	if s.n++; s.n%s.every == 0 {
		s.peak = max(s.peak, leakcheck.LiveHeap())
	}
	return nil
}

// measure runs f with sampling on and returns the largest live heap seen
// (at least the heap after f).
func (s *memSampler) measure(f func()) int64 {
	s.mu.Lock()
	s.on, s.n, s.peak = true, 0, 0
	s.mu.Unlock()
	f()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.on = false
	return max(s.peak, leakcheck.LiveHeap())
}

// A fetch from a broker on disk allocates within its request's MaxBytes,
// whatever the number of partitions it names and their MaxBytes
// (Broker.Fetch's doc: each partition's read allocates up to its limit,
// or what is left of the request's). A partition after the first with
// data whose first batch is larger than what is left gets no records,
// as in Kafka; the broker read that batch whole all the same (the read
// returns a first batch however large, KIP-74), and then dropped it:
// 32 partitions of 1 MiB, each asked for 1 MiB, in a request of 2 MiB,
// allocated 6.3 MB to return 2.0 MB; 64 partitions of one 256 KiB batch
// in a request of 600 KiB, 22.9 MB to return 0.5 MB (go test -run
// TestMemoryFetchOnDiskWithinMaxBytes -v .): a read of every
// partition's first batch, each fetch, on a consumer assigned many.
func TestMemoryFetchOnDiskWithinMaxBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("48 MiB on disk")
	}
	b, err := runnel.Open(runnel.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	small := memBatch(t, 16, nil, memRandom(4<<10), compression.None) // 64 KiB
	big := memBatch(t, 64, nil, memRandom(4<<10), compression.None)   // 256 KiB
	for _, tc := range []struct {
		topic   string
		parts   int32
		batch   []byte
		perPart int
		reqMax  int
		partMax int
	}{
		{"t", 32, small, 16, 2 << 20, 1 << 20},
		{"t", 32, small, 16, 50 << 20, 128 << 10},
		{"u", 64, big, 1, 600 << 10, 1 << 20},
	} {
		name := fmt.Sprintf("%d partitions of %d KiB batches, request %d KiB, partitions %d KiB",
			tc.parts, len(tc.batch)>>10, tc.reqMax>>10, tc.partMax>>10)
		t.Run(name, func(t *testing.T) {
			if _, err := b.DescribeTopic(ctx, tc.topic); err != nil {
				if err := b.CreateTopic(ctx, tc.topic, log.TopicConfig{Partitions: int(tc.parts), Config: log.Config{Sync: log.SyncNever}}); err != nil {
					t.Fatal(err)
				}
				for p := range tc.parts {
					memProduce(t, b, tc.topic, p, tc.batch, tc.perPart)
				}
			}
			req := &api.FetchRequest{MaxBytes: tc.reqMax}
			for p := range tc.parts {
				req.Partitions = append(req.Partitions, api.FetchPartition{Topic: tc.topic, Partition: p, MaxBytes: tc.partMax})
			}
			var got int
			alloc := testkit.Allocated(func() {
				resp, err := b.Fetch(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				for _, fp := range resp.Partitions {
					if fp.Err != nil {
						t.Fatal(fp.Err)
					}
					got += len(fp.Records)
				}
			})
			bound := int64(min(tc.reqMax, int(tc.parts)*tc.partMax)) + 512<<10
			t.Logf("%d bytes returned, %.2f MB allocated (bound %.2f MB)", got, float64(alloc)/1e6, float64(bound)/1e6)
			if got == 0 {
				t.Fatal("the fetch returned nothing")
			}
			if alloc > bound {
				t.Errorf("the fetch allocated %d bytes, more than its MaxBytes allow (%d)", alloc, bound)
			}
		})
	}
}

// A consumer that reads slowly, record by record, from many partitions
// holds one fetch at a time (no read-ahead, no goroutine filling a
// queue): its live heap stays within FetchMaxBytes of where it began,
// plus the record structs of a batch, wherever the loop is. 32
// partitions of 512 KiB on disk, FetchMaxBytes 2 MiB: at most 2.8 MB
// above the start, sampled every 64 records (bound 3.1 MB) (go test -run
// TestMemorySlowConsumerHoldsOneFetch -v .).
func TestMemorySlowConsumerHoldsOneFetch(t *testing.T) {
	if testing.Short() {
		t.Skip("16 MiB on disk")
	}
	const (
		parts   = 32
		perPart = 128 // records of 4 KiB
		maxF    = 2 << 20
	)
	b, err := runnel.Open(runnel.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if err := b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: parts, Config: log.Config{Sync: log.SyncNever}}); err != nil {
		t.Fatal(err)
	}
	batch := memBatch(t, 16, nil, memRandom(4<<10), compression.None)
	for p := range int32(parts) {
		memProduce(t, b, "t", p, batch, perPart/16)
	}
	c, err := consumer.New(b, consumer.FetchMaxBytes(maxF), consumer.FetchMaxPartitionBytes(256<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for p := range int32(parts) {
		if err := c.Assign("t", p, consumer.Start()); err != nil {
			t.Fatal(err)
		}
	}
	base := leakcheck.LiveHeap()
	var peak int64
	n := 0
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for rec, err := range c.Records(lctx) {
		if err != nil {
			t.Fatal(err)
		}
		_ = rec
		if n++; n%64 == 0 {
			peak = max(peak, leakcheck.LiveHeap()-base)
		}
		if n == parts*perPart {
			break
		}
	}
	bound := int64(maxF) + 1<<20 // the fetch, a batch's record structs, the loop's own
	t.Logf("%d records read from %d partitions: the live heap rose by %.2f MB at most (bound %.2f MB)", n, parts, float64(peak)/1e6, float64(bound)/1e6)
	if peak > bound {
		t.Errorf("a slow reader's heap rose by %d bytes, more than FetchMaxBytes (%d) and slack", peak, maxF)
	}
}

// FetchMaxBytes counts the bytes a fetch returns, compressed, as Kafka's
// fetch.max.bytes does: what the records take once decompressed is the
// compression ratio times that. Records kept from a poll keep their
// batches decompressed (each batch a buffer of its own); a loop that
// handles them one at a time holds one batch decompressed at a time.
// A topic of 1 MiB zstd batches of a 256-byte pattern: a fetch of
// FetchMaxBytes 1 MiB returned all 24, 39 KB, and its records kept
// took 26.4 MB; read without keeping, the heap rose by 1.1 MB at most
// (go test -run TestMemoryCompressedFetchIsCountedCompressed -v .).
func TestMemoryCompressedFetchIsCountedCompressed(t *testing.T) {
	if testing.Short() {
		t.Skip("decompresses 24 MiB twice")
	}
	const batches = 24
	b, err := runnel.Open(runnel.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if err := b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	val := bytes.Repeat(memRandom(256), 16) // 4 KiB
	batch := memBatch(t, 256, nil, val, compression.Zstd)
	memProduce(t, b, "t", 0, batch, batches)
	poll := func() (consumer.Fetches, int) {
		c, err := consumer.New(b, consumer.FetchMaxBytes(1<<20))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Assign("t", 0, consumer.Start()); err != nil {
			t.Fatal(err)
		}
		fs, err := c.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, f := range fs {
			n += len(f.Batches)
		}
		return fs, n
	}

	// Kept: every record of the poll.
	fs, fetched := poll()
	base := leakcheck.LiveHeap()
	var kept []*record.Record
	for r, err := range fs.Records() {
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, r)
	}
	keptHeap := leakcheck.LiveHeap() - base
	decoded := len(kept) * len(val)
	t.Logf("a poll of FetchMaxBytes 1 MiB: %d compressed bytes, %d records, %.1f MB of values; kept, they took %.1f MB",
		fetched, len(kept), float64(decoded)/1e6, float64(keptHeap)/1e6)
	if len(kept) != batches*256 {
		t.Fatalf("the poll returned %d records, want %d (all: the batches are small compressed)", len(kept), batches*256)
	}
	if keptHeap < int64(decoded) {
		t.Errorf("the kept records took %d bytes, less than their values' %d: were they decompressed?", keptHeap, decoded)
	}
	runtime.KeepAlive(kept)
	kept, fs = nil, nil

	// Not kept: one at a time.
	fs, _ = poll()
	base = leakcheck.LiveHeap()
	var peak int64
	n := 0
	for _, err := range fs.Records() {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n%128 == 0 {
			peak = max(peak, leakcheck.LiveHeap()-base)
		}
	}
	runtime.KeepAlive(fs)
	bound := int64(2*len(val)*256) + 512<<10 // a batch decompressed, the next one's buffer, slack
	t.Logf("read one at a time: the heap rose by %.2f MB at most (bound %.2f MB)", float64(peak)/1e6, float64(bound)/1e6)
	if peak > bound {
		t.Errorf("reading a poll's records one at a time, the heap rose by %d bytes, more than %d (two batches decompressed)", peak, bound)
	}
}

// Open's recovery of a log on disk that was not closed cleanly scans its
// segments in blocks, not whole: its peak heap does not grow with the
// log. 32 MiB in one partition, its recovery point and producer-state
// snapshots removed so that Open scans it all: the live heap, sampled
// at every 16th file operation, peaked 1.1 MB above the broker's
// (go test -run TestMemoryRecoveryScansInBlocks -v .).
func TestMemoryRecoveryScansInBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("32 MiB on disk")
	}
	dir := t.TempDir()
	s := &memSampler{every: 16}
	fsys := vfs.WithFaults(vfs.OS, s)
	b, err := runnel.Open(runnel.Config{Dir: dir, FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1,
		Config: log.Config{Sync: log.SyncNever, SegmentBytes: 8 << 20}}); err != nil {
		t.Fatal(err)
	}
	batch := memBatch(t, 16, nil, memRandom(4<<10), compression.None)
	memProduce(t, b, "t", 0, batch, 512) // 32 MiB
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// As after a crash: no recovery point, no snapshot, no clean mark.
	pdir := filepath.Join(dir, "t-0")
	ents, err := os.ReadDir(pdir)
	if err != nil {
		t.Fatal(err)
	}
	removed := 0
	for _, e := range ents {
		n := e.Name()
		if strings.HasSuffix(n, ".log") || strings.HasSuffix(n, ".index") || strings.HasSuffix(n, ".timeindex") ||
			strings.HasPrefix(n, "leader-epoch") || n == "partition.metadata" {
			continue
		}
		if err := os.Remove(filepath.Join(pdir, n)); err != nil {
			t.Fatal(err)
		}
		removed++
	}
	t.Logf("removed %d files of %d in %s", removed, len(ents), pdir)

	base := leakcheck.LiveHeap()
	var b2 *runnel.Broker
	peak := s.measure(func() {
		b2, err = runnel.Open(runnel.Config{Dir: dir, FS: fsys})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	d, err := b2.DescribeTopic(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if end := d.Partitions[0].LogEndOffset; end != 512*16 {
		t.Fatalf("log end %d after the recovery, want %d", end, 512*16)
	}
	rose := peak - base
	t.Logf("Open's recovery of 32 MiB: the live heap peaked %.2f MB above where it was", float64(rose)/1e6)
	if rose > 4<<20 {
		t.Errorf("Open's recovery of 32 MiB: the live heap peaked %d bytes above where it was, more than 4 MiB", rose)
	}
}

// The log cleaner's memory is its key map, bounded by CleanerMapBytes
// (a dirty section with more keys is cleaned over several passes), and
// its buffers: a megabyte read at a time, a megabyte written at a time,
// and one batch decompressed. 200,000 distinct keys (12 MiB of log on
// disk, 1 MiB segments) under CleanerMapBytes 1 MiB: the live heap,
// sampled at every file operation of a Maintain, peaked 2.1 MB above
// where it was, where a map for every key would take 5.3 MB (go test
// -run TestMemoryCleanerWithinMapBytes -v .).
func TestMemoryCleanerWithinMapBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("12 MiB on disk")
	}
	const (
		keys    = 200_000
		perB    = 100
		mapSize = 1 << 20
	)
	dir := t.TempDir()
	s := &memSampler{every: 1}
	b, err := runnel.Open(runnel.Config{Dir: dir, FS: vfs.WithFaults(vfs.OS, s), CleanerMapBytes: mapSize})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if err := b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{
		CleanupPolicy: log.Compact, Sync: log.SyncNever, SegmentBytes: 1 << 20}}); err != nil {
		t.Fatal(err)
	}
	val := memRandom(32)
	// Every key twice, so that the cleaner has records to drop.
	for range 2 {
		for i := 0; i < keys; i += perB {
			var bl record.Builder
			for j := i; j < i+perB; j++ {
				bl.Append(time.Now().UnixMilli(), []byte(fmt.Sprintf("key-%08d", j)), val, nil)
			}
			batch, err := bl.Finish(compression.None)
			if err != nil {
				t.Fatal(err)
			}
			memProduce(t, b, "t", 0, batch, 1)
		}
	}
	base := leakcheck.LiveHeap()
	peak := s.measure(func() {
		if err := b.Maintain(ctx); err != nil {
			t.Error(err)
		}
	})
	rose := peak - base
	full := int64(keys) * 24 * 10 / 9 // a map of every key
	bound := int64(mapSize) + 3<<20   // the map, a read, a write buffer, slack
	t.Logf("a Maintain over %d keys with CleanerMapBytes %d: the live heap peaked %.2f MB above where it was (a map of every key: %.2f MB; bound %.2f MB)",
		keys, mapSize, float64(rose)/1e6, float64(full)/1e6, float64(bound)/1e6)
	if rose > bound {
		t.Errorf("the cleaner's heap peaked %d bytes above where it was, more than CleanerMapBytes (%d) and its buffers", rose, mapSize)
	}
}
