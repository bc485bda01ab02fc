package log

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// TestKeyMap: the cleaner's table keeps the latest offset of each hash,
// refuses a new hash once it holds its limit but still updates the hashes
// it has, and never takes more slots than its byte bound.
func TestKeyMap(t *testing.T) {
	m := newKeyMap(1<<20, 7)
	require.Len(t, m.slots, 8, "sized to the dirty section, not the bound")
	require.Equal(t, 7, m.limit)
	// Every lo of 1 lands in slot 0: one probe chain, told apart by hi.
	for i := range uint64(7) {
		require.True(t, m.putHash(keyHash{lo: 1, hi: i}, int64(i)))
	}
	require.False(t, m.putHash(keyHash{lo: 99}, 1), "a new hash in a full map")
	require.True(t, m.putHash(keyHash{lo: 1, hi: 3}, 42), "an update in a full map")
	o, ok := m.getHash(keyHash{lo: 1, hi: 3})
	require.True(t, ok)
	require.EqualValues(t, 42, o)
	o, ok = m.getHash(keyHash{lo: 1})
	require.True(t, ok)
	require.EqualValues(t, 0, o)
	_, ok = m.getHash(keyHash{lo: 99})
	require.False(t, ok)
	_, ok = m.getHash(keyHash{lo: 1, hi: 8})
	require.False(t, ok, "same lo as every entry, another hi")

	m = newKeyMap(100, 1<<40)
	require.LessOrEqual(t, len(m.slots)*keySlotBytes, 100)
	require.Equal(t, 3, m.limit)
	m = newKeyMap(MinCleanerMapBytes, 1<<40)
	require.Equal(t, 1, m.limit)
	m = newKeyMap(DefaultCleanerMapBytes, 1<<40)
	require.LessOrEqual(t, len(m.slots)*keySlotBytes, DefaultCleanerMapBytes)
	require.Greater(t, len(m.slots)*keySlotBytes, DefaultCleanerMapBytes-keySlotBytes, "the whole bound is used")
}

// TestKeyMapKeys: put and get by key agree with the hash halves: lo is
// xxhash64 (never 0), a key is found only under its own hi, and keys
// whose lo collide (forced) are kept apart.
func TestKeyMapKeys(t *testing.T) {
	m := newKeyMap(1<<10, 8)
	for _, key := range [][]byte{{}, []byte("a"), []byte("order-42"), make([]byte, 100)} {
		require.Equal(t, max(xxhash.Sum64(key), 1), m.lo(key))
		require.Equal(t, m.hi(key), m.hi(key), "the same key twice")
		require.True(t, m.put(key, 5))
		o, ok := m.get(key)
		require.True(t, ok)
		require.EqualValues(t, 5, o)
	}
	testHookKeyHashLo = func([]byte) uint64 { return 0 }
	t.Cleanup(func() { testHookKeyHashLo = nil })
	require.EqualValues(t, 1, m.lo([]byte("z")), "lo 0 marks an empty slot")
	m = newKeyMap(1<<10, 8)
	require.True(t, m.put([]byte("x"), 1))
	require.True(t, m.put([]byte("y"), 2))
	o, ok := m.get([]byte("x"))
	require.True(t, ok)
	require.EqualValues(t, 1, o)
	_, ok = m.get([]byte("w"))
	require.False(t, ok)
}

// TestCompactionKeepsKeysWhose64BitHashesCollide: compaction of two keys
// whose xxhash64 sums are equal (forced by testHookKeyHashLo) keeps each
// key's latest record. With the 64-bit map of before, the key written
// first lost its latest record to the other key's.
func TestCompactionKeepsKeysWhose64BitHashesCollide(t *testing.T) {
	testHookKeyHashLo = func([]byte) uint64 { return 7 }
	t.Cleanup(func() { testHookKeyHashLo = nil })
	e := newEnv(t)
	l := e.open(Config{SegmentBytes: 300, CleanupPolicy: Compact, MinCleanableDirtyRatio: 0.01})
	defer l.Close()
	ts := e.clock.Now().UnixMilli()
	for i := range 10 {
		for _, k := range []string{"a", "b"} {
			appendOK(t, l, batchOf(t, compression.None, kv{key: []byte(k), value: fmt.Appendf(nil, "%s%d", k, i), ts: ts}))
		}
	}
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("c"), value: []byte("roll"), ts: ts}))
	_, err := l.Compact(context.Background())
	require.NoError(t, err)
	latest := map[string]string{}
	for _, r := range readAll(t, l, 0) {
		latest[string(r.Key)] = string(r.Value)
	}
	require.Equal(t, map[string]string{"a": "a9", "b": "b9", "c": "roll"}, latest)
}

// TestCompactionMapsOnlyDirtySection: a pass reads into its key map only
// the records after the cleaner checkpoint, and still removes what those
// supersede before it. Before, every pass mapped the whole cleanable log.
func TestCompactionMapsOnlyDirtySection(t *testing.T) {
	e := newEnv(t)
	cfg := Config{SegmentBytes: 2000, CleanupPolicy: Compact}
	l := e.open(cfg)
	defer l.Close()
	ts := e.clock.Now().UnixMilli()
	want := map[string]string{}
	put := func(k, v string) {
		appendOK(t, l, batchOf(t, compression.None, kv{key: []byte(k), value: []byte(v), ts: ts}))
		want[k] = v
	}
	for i := range 300 {
		put(fmt.Sprint("k", i), "v1")
	}
	require.NoError(t, l.Roll())
	res, err := l.Compact(context.Background())
	require.NoError(t, err)
	require.Equal(t, 300, res.RecordsMapped)
	require.EqualValues(t, 300, res.CleanedTo)

	// A dirty tail of 5 records: only they are mapped; the older values
	// of their keys go.
	for i := range 5 {
		put(fmt.Sprint("k", i*50), "v2")
	}
	require.NoError(t, l.Roll())
	res, err = l.Compact(context.Background())
	require.NoError(t, err)
	require.Equal(t, 5, res.RecordsMapped, "the pass mapped more than the dirty section")
	require.EqualValues(t, 305, res.CleanedTo)
	require.Equal(t, 5, res.RecordsRemoved)
	got, offs := latestByKey(t, l)
	require.Len(t, offs, 300)
	for k, v := range want {
		require.Equal(t, v, string(got[k]), k)
	}

	// Nothing dirty: nothing mapped, the checkpoint stays.
	res, err = l.Compact(context.Background())
	require.NoError(t, err)
	require.Zero(t, res.RecordsMapped)
	require.EqualValues(t, 305, res.CleanedTo)
}

// TestCompactionBoundedMapProperty: with a key map bound of a few keys, a
// compacted log is cleaned over several passes (each moving the checkpoint
// only as far as its map reached) to the same records as a log with the
// default bound cleaned in one pass, and to each key's latest value in a
// model of what was appended — with tombstones, keyless records
// (appended before the topic was compacted), passes between appends and
// reopens.
func TestCompactionBoundedMapProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		mem := vfs.NewMem()
		clock := newClock()
		cfg := Config{SegmentBytes: rapid.Int64Range(200, 800).Draw(t, "segmentBytes"), CleanupPolicy: Compact, IndexIntervalBytes: 64}
		mapBytes := rapid.Int64Range(MinCleanerMapBytes, 300).Draw(t, "mapBytes")
		open := func(dir string, mapBytes int64) *Log {
			l, err := Open(dir, cfg, Options{FS: mem, Clock: clock, CleanerMapBytes: mapBytes})
			require.NoError(t, err)
			return l
		}
		small, big := open("/d/small-0", mapBytes), open("/d/big-0", 0)
		defer func() { small.Close(); big.Close() }()
		codecs := []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd}

		// Keyless records first, as in a topic appended to before it was
		// compacted (Append refuses them on a compacted log).
		if rapid.Bool().Draw(t, "keyless") {
			for _, dir := range []string{"/d/small-0", "/d/big-0"} {
				l := small
				if dir == "/d/big-0" {
					l = big
				}
				require.NoError(t, l.Close())
				plain, err := Open(dir, Config{SegmentBytes: cfg.SegmentBytes}, Options{FS: mem, Clock: clock})
				require.NoError(t, err)
				appendOK(t, plain, batchOf(t, compression.None, kv{value: []byte("no key"), ts: clock.Now().UnixMilli()}, kv{key: []byte("k0"), value: []byte("first"), ts: clock.Now().UnixMilli()}))
				require.NoError(t, plain.Close())
			}
			small, big = open("/d/small-0", mapBytes), open("/d/big-0", 0)
		}
		model := map[string][]byte{"k0": []byte("first")}
		if small.LogEndOffset() == 0 {
			delete(model, "k0")
		}
		keys := rapid.IntRange(1, 40).Draw(t, "keys")
		steps := rapid.IntRange(1, 60).Draw(t, "steps")
		for i := range steps {
			switch op := rapid.IntRange(0, 9).Draw(t, "op"); {
			case op < 7:
				var recs []kv
				for j := range rapid.IntRange(1, 5).Draw(t, "records") {
					k := fmt.Sprint("k", rapid.IntRange(0, keys-1).Draw(t, "key"))
					var v []byte
					if !rapid.Bool().Draw(t, "tombstone") || j%2 == 0 {
						v = fmt.Appendf(nil, "v%d.%d", i, j)
					}
					recs = append(recs, kv{key: []byte(k), value: v, ts: clock.Now().UnixMilli()})
					model[k] = v
				}
				b := batchOf(t, codecs[rapid.IntRange(0, len(codecs)-1).Draw(t, "codec")], recs...)
				appendOK(t, small, append([]byte(nil), b...)) // Append sets offsets in place
				appendOK(t, big, b)
			case op == 7:
				require.NoError(t, small.Roll())
				require.NoError(t, big.Roll())
			case op == 8:
				_, err := small.Compact(context.Background())
				require.NoError(t, err)
				_, err = big.Compact(context.Background())
				require.NoError(t, err)
			case op == 9:
				require.NoError(t, small.Close())
				small = open("/d/small-0", mapBytes)
			}
		}
		require.NoError(t, small.Roll())
		require.NoError(t, big.Roll())
		res, err := big.Compact(context.Background())
		require.NoError(t, err)
		require.Equal(t, res.FirstUncleanable, res.CleanedTo, "the default bound maps this log in one pass")
		passes := 0
		for {
			res, err := small.Compact(context.Background())
			require.NoError(t, err)
			passes++
			require.LessOrEqual(t, passes, int(small.LogEndOffset())+1, "the passes do not move on")
			if res.CleanedTo == res.FirstUncleanable {
				break
			}
			require.Positive(t, res.RecordsMapped)
		}

		type rec struct {
			off        int64
			key, value string
			tombstone  bool
		}
		records := func(l *Log) []rec {
			var out []rec
			for _, r := range readAll(t, l, l.LogStartOffset()) {
				out = append(out, rec{r.Offset, string(r.Key), string(r.Value), r.Value == nil})
			}
			return out
		}
		got := records(small)
		require.Equal(t, records(big), got)
		latest := map[string]rec{}
		for _, r := range got {
			_, seen := latest[r.key]
			require.False(t, seen, "key %q kept twice", r.key)
			latest[r.key] = r
		}
		require.Len(t, latest, len(model))
		for k, v := range model {
			require.Equal(t, v == nil, latest[k].tombstone, k)
			require.Equal(t, string(v), latest[k].value, k)
		}
	})
}

// TestMaxCompactionLag: Maintain compacts a log whose dirty records are
// older than max.compaction.lag.ms although its dirty ratio is below
// min.cleanable.dirty.ratio, and not before; the active segment of a
// compacted log rolls at the lag. Before, neither happened.
func TestMaxCompactionLag(t *testing.T) {
	e := newEnv(t)
	cfg := Config{SegmentBytes: 2000, CleanupPolicy: Compact, MinCleanableDirtyRatio: 0.9, MaxCompactionLag: time.Hour}
	l := e.open(cfg)
	defer l.Close()
	ts := func() int64 { return e.clock.Now().UnixMilli() }
	for i := range 100 {
		appendOK(t, l, batchOf(t, compression.None, kv{key: []byte(fmt.Sprint("k", i)), value: []byte("v1"), ts: ts()}))
	}
	require.NoError(t, l.Roll())
	require.NoError(t, l.Maintain(context.Background()))
	require.Zero(t, l.DirtyRatio())
	segments := l.Segments()

	// A small dirty tail, sealed: below the ratio.
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("k1"), value: []byte("v2"), ts: ts()}))
	require.NoError(t, l.Roll())
	require.Less(t, l.DirtyRatio(), 0.9)
	e.clock.Advance(59 * time.Minute)
	require.NoError(t, l.Maintain(context.Background()))
	require.Len(t, readAll(t, l, 0), 101, "compacted before the lag")

	e.clock.Advance(2 * time.Minute)
	require.NoError(t, l.Maintain(context.Background()))
	require.Zero(t, l.DirtyRatio())
	got, offs := latestByKey(t, l)
	require.Len(t, offs, 100, "the dirty tail older than max.compaction.lag.ms was not compacted")
	require.Equal(t, "v2", string(got["k1"]))
	// The cleaned tail is merged into the last cleaned segment if it fits
	// (as Kafka's cleaner groups segments), else it stays a segment.
	require.LessOrEqual(t, l.Segments(), segments+1)
	segments = l.Segments() - 1

	// The active segment rolls once its first batch is as old as the lag
	// (segment.ms is a week).
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("k2"), value: []byte("v2"), ts: ts()}))
	e.clock.Advance(30 * time.Minute)
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("k3"), value: []byte("v2"), ts: ts()}))
	require.Equal(t, segments+1, l.Segments())
	e.clock.Advance(31 * time.Minute)
	appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("k4"), value: []byte("v2"), ts: ts()}))
	require.Equal(t, segments+2, l.Segments(), "the active segment did not roll at max.compaction.lag.ms")
	require.NoError(t, l.Maintain(context.Background()))
	got, offs = latestByKey(t, l)
	require.Len(t, offs, 101, "k2 and k3 were not compacted (k4's latest is in the active segment)")
	require.NotContains(t, offs, int64(2))
	require.NotContains(t, offs, int64(3))
	require.Equal(t, "v2", string(got["k3"]))
}

// TestMaxCompactionLagConfig: zero and negative mean never; a lag below
// min.compaction.lag.ms is refused, as Kafka does; the field survives the
// JSON a broker keeps its topics' configs in.
func TestMaxCompactionLagConfig(t *testing.T) {
	require.Zero(t, Config{}.WithDefaults().MaxCompactionLag)
	require.Negative(t, Config{MaxCompactionLag: -1}.WithDefaults().MaxCompactionLag)
	require.NoError(t, Config{MaxCompactionLag: -1, MinCompactionLag: time.Hour}.Validate())
	require.NoError(t, Config{MaxCompactionLag: time.Hour, MinCompactionLag: time.Hour}.Validate())
	err := Config{MaxCompactionLag: time.Minute, MinCompactionLag: time.Hour}.Validate()
	require.ErrorIs(t, err, ErrInvalidConfig)
	require.ErrorContains(t, err, "MaxCompactionLag")
	// Compared in whole milliseconds, as they count and as Kafka's are.
	require.NoError(t, Config{MaxCompactionLag: 1200 * time.Microsecond, MinCompactionLag: 1500 * time.Microsecond}.Validate())

	c := Config{CleanupPolicy: Compact, MaxCompactionLag: 90 * time.Minute}
	data, err := json.Marshal(c)
	require.NoError(t, err)
	var back Config
	require.NoError(t, json.Unmarshal(data, &back))
	require.Equal(t, c, back)

	_, err = Open("/d/t-0", Config{}, Options{FS: vfs.NewMem(), CleanerMapBytes: 31})
	require.ErrorIs(t, err, ErrInvalidConfig)
}

// TestTruncateWritesCleanerCheckpoint: the cleaner checkpoint a
// truncation lowers is written, so that after a reopen the records
// appended below the old checkpoint are dirty and deduplicated. Before, it
// was lowered in memory only, and the reopened log took them for cleaned.
func TestTruncateWritesCleanerCheckpoint(t *testing.T) {
	e := newEnv(t)
	cfg := Config{SegmentBytes: 2000, CleanupPolicy: Compact}
	l := e.open(cfg)
	ts := e.clock.Now().UnixMilli()
	put := func(k, v string) {
		appendOK(t, l, batchOf(t, compression.None, kv{key: []byte(k), value: []byte(v), ts: ts}))
	}
	for i := range 10 {
		put(fmt.Sprint("k", i), "v1")
	}
	require.NoError(t, l.Roll())
	res, err := l.Compact(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 10, res.CleanedTo)

	_, err = l.TruncateTo(5)
	require.NoError(t, err)
	cp, err := readOffset(e.fs, e.dir, cleanerFile, -1)
	require.NoError(t, err)
	require.EqualValues(t, 5, cp, "the lowered checkpoint is not on disk")
	put("b", "1") // 5
	put("b", "2") // 6
	for i := range 6 {
		put(fmt.Sprint("c", i), "x") // 7..12
	}
	require.NoError(t, l.Roll())
	require.NoError(t, l.Close())

	l = e.open(cfg)
	defer l.Close()
	res, err = l.Compact(context.Background())
	require.NoError(t, err)
	require.Equal(t, 8, res.RecordsMapped)
	got, offs := latestByKey(t, l)
	require.Len(t, offs, 12, "b's superseded record stayed: %v", offs)
	require.Equal(t, "2", string(got["b"]))
}

// TestOpenResetsCheckpointPastLogEnd: a cleaner checkpoint past the log
// end (a crash between a truncation and the checkpoint's write) is reset
// on Open, on disk too: the whole log is dirty again.
func TestOpenResetsCheckpointPastLogEnd(t *testing.T) {
	e := newEnv(t)
	cfg := Config{SegmentBytes: 2000, CleanupPolicy: Compact}
	l := e.open(cfg)
	ts := e.clock.Now().UnixMilli()
	for _, v := range []string{"1", "2", "3"} {
		appendOK(t, l, batchOf(t, compression.None, kv{key: []byte("a"), value: []byte(v), ts: ts}))
	}
	require.NoError(t, l.Roll())
	require.NoError(t, l.Close())
	require.NoError(t, writeOffset(e.fs, e.dir, cleanerFile, 100))

	l = e.open(cfg)
	defer l.Close()
	cp, err := readOffset(e.fs, e.dir, cleanerFile, -1)
	require.NoError(t, err)
	require.Zero(t, cp)
	res, err := l.Compact(context.Background())
	require.NoError(t, err)
	require.Equal(t, 3, res.RecordsMapped)
	recs := readAll(t, l, 0)
	require.Len(t, recs, 1)
	require.Equal(t, "3", string(recs[0].Value))
}

// TestKeyMapSlotsCapped: the key map's size follows the dirty section
// and CleanerMapBytes, and never passes MaxCleanerMapBytes (Kafka's cap
// on its dedupe buffer, Int.MaxValue bytes), whatever either says: a
// CleanerMapBytes of 2 GiB or more made a map that 32-bit platforms
// cannot make ("makeslice: len out of range"), and a dirty section of
// more than MaxInt64/10 offsets wrapped the size to the least, 2 slots.
func TestKeyMapSlotsCapped(t *testing.T) {
	most := int(MaxCleanerMapBytes / keySlotBytes)
	for _, c := range []struct {
		maxBytes, want int64
		slots          int
	}{
		{DefaultCleanerMapBytes, 100, 112},
		{DefaultCleanerMapBytes, 0, 2},
		{MinCleanerMapBytes, 1000, 2},
		{DefaultCleanerMapBytes, 1 << 40, DefaultCleanerMapBytes / keySlotBytes},
		{MaxCleanerMapBytes, 1 << 40, most},
		{1 << 40, 1 << 33, most},
		{math.MaxInt64, math.MaxInt64, most},
		{DefaultCleanerMapBytes, math.MaxInt64, DefaultCleanerMapBytes / keySlotBytes},
	} {
		n := keyMapSlots(c.maxBytes, c.want)
		require.Equal(t, c.slots, n, "CleanerMapBytes %d, %d offsets", c.maxBytes, c.want)
		require.LessOrEqual(t, int64(n)*keySlotBytes, int64(MaxCleanerMapBytes))
	}
}

// getHash is get for a key of hash h: the tests' look-up by hash
// (the cleaner looks keys up by key, with get).
func (m *keyMap) getHash(h keyHash) (int64, bool) {
	for i := m.home(h.lo); ; i = m.next(i) {
		s := &m.slots[i]
		if s.h == h {
			return s.offset, true
		}
		if s.h.lo == 0 {
			return 0, false
		}
	}
}
