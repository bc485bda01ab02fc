package runnel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// FuzzParseMeta: a topic's record either decodes to a topic the broker can
// open (a valid name that is the file's, partitions, a valid config), which
// encodes and decodes again to itself, or is refused with
// ErrCorruptMetadata, or ErrNewerMetadata for a version above this
// runnel's (and only then); never a panic.
func FuzzParseMeta(f *testing.F) {
	for _, seed := range []string{
		`{"name":"orders","config":{"Partitions":3}}`,
		`{"version":1,"name":"orders","id":"vDYn0aq0RHqGmQ2RZzqSzA","config":{"Partitions":3}}`,
		`{"version":1,"name":"orders","id":"vDYn0aq0RHqGmQ2RZzqSzB","config":{"Partitions":3}}`,
		`{"version":1,"name":"orders","id":"","config":{"Partitions":3}}`,
		`{"version":1,"name":"orders","id":7,"config":{"Partitions":3}}`,
		`{"name":"orders","config":{"Partitions":1,"SegmentBytes":1048576,"RetentionTime":3600000000000,"CleanupPolicy":1}}`,
		`{"name":"orders","config":{"Partitions":0}}`,
		`{"name":"orders","config":{"Partitions":2147483648}}`,
		`{"name":"other","config":{"Partitions":1}}`,
		`{"name":"..","config":{"Partitions":1}}`,
		`{"name":"orders","config":{"Partitions":1,"SegmentBytes":5}}`,
		`{"name":"orders","config":{"Partitions":1,"MinCleanableDirtyRatio":2}}`,
		`{"name":"orders"`,
		`{"version":2,"name":"orders","config":{"Partitions":3}}`,
		`{"version":-1,"name":"orders","config":{"Partitions":3}}`,
		`null`,
		``,
	} {
		f.Add([]byte(seed))
	}
	// Records as writeMeta writes them: a topic of every setting.
	for _, m := range []topicMeta{
		{Name: "orders", ID: log.TopicID{0: 0xbc, 7: 1, 15: 9}, Config: fuzzMetaConfig},
		{Name: "orders", Config: log.TopicConfig{Partitions: 1}},
	} {
		data, err := encodeMeta(m)
		require.NoError(f, err)
		f.Add(data)
	}
	b := &Broker{}
	path := filepath.Join("/data", topicsDir, "orders.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := b.parseMeta(data, path)
		if errors.Is(err, ErrNewerMetadata) {
			require.Greater(t, m.Version, metaVersion)
			require.NotErrorIs(t, err, ErrCorruptMetadata)
			return
		}
		if err != nil {
			require.ErrorIs(t, err, ErrCorruptMetadata)
			return
		}
		require.Equal(t, "orders", m.Name)
		require.GreaterOrEqual(t, m.Config.Partitions, 1)
		require.LessOrEqual(t, int64(m.Config.Partitions), int64(math.MaxInt32))
		require.NoError(t, b.withDefaults(m.Config.Config).Validate())
		again, err := json.Marshal(m)
		require.NoError(t, err)
		m2, err := b.parseMeta(again, path)
		require.NoError(t, err)
		require.Equal(t, m, m2)
	})
}

// fuzzMetaConfig is a topic's configuration with every setting set, and
// valid.
var fuzzMetaConfig = log.TopicConfig{Partitions: 4, Config: log.Config{
	SegmentBytes: 1 << 20, SegmentTime: time.Hour, SegmentIndexBytes: 1 << 16, IndexIntervalBytes: 4096, MaxMessageBytes: 1 << 18,
	RetentionTime: 24 * time.Hour, RetentionBytes: 1 << 30, CleanupPolicy: log.Compact | log.Delete, DeleteRetentionTime: time.Hour,
	MinCompactionLag: time.Minute, MaxCompactionLag: 2 * time.Hour, MinCleanableDirtyRatio: 0.3, Sync: log.SyncPeriodic,
	FlushMessages: 100, FlushInterval: time.Second, TimestampType: log.LogAppendTime,
}}

// TestOpenCorruptMetadata: a broker whose own files are damaged does not
// open, says which file, and loses nothing: with the file repaired, the same
// directory opens with its topic and records.
func TestOpenCorruptMetadata(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, file, data string
	}{
		{"bad JSON", "topics/a.json", `{"name":"a"`},
		{"a record under another name", "topics/a.json", `{"name":"b","config":{"Partitions":1}}`},
		{"no partitions", "topics/a.json", `{"name":"a","config":{"Partitions":0}}`},
		// More than Kafka's int32 count, which CreateTopic refuses: Open
		// looped creating partitions no request could address.
		{"more partitions than an int32", "topics/a.json", `{"name":"a","config":{"Partitions":2147483648}}`},
		{"an invalid config", "topics/a.json", `{"name":"a","config":{"Partitions":1,"SegmentBytes":5}}`},
		{"a bad topic id", "topics/a.json", `{"version":1,"name":"a","id":"AAAA","config":{"Partitions":1}}`},
		{"a bad producer id counter", "producer-ids", "-3\n"},
		// The broker writes digits and a newline: what else is in the
		// file, it did not write (a decoder looser than its encoder read
		// these as 5).
		{"a producer id counter with a sign", "producer-ids", "+5\n"},
		{"a producer id counter with spaces", "producer-ids", " 5 \n"},
		{"a producer id counter with a leading zero", "producer-ids", "05\n"},
		{"a producer id counter without its newline", "producer-ids", "5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewMem()
			b, err := Open(Config{Dir: "/data", FS: mem})
			require.NoError(t, err)
			require.NoError(t, b.CreateTopic(ctx, "a", log.TopicConfig{Partitions: 1}))
			produce(t, b, "a", 0, "kept")
			_, _, err = b.InitProducerID(ctx)
			require.NoError(t, err)
			require.NoError(t, b.Close())

			path := filepath.Join("/data", tc.file)
			write := func(data []byte) {
				f, err := mem.Create(path)
				require.NoError(t, err)
				_, err = f.Write(data)
				require.NoError(t, err)
				require.NoError(t, f.Close())
			}
			b = &Broker{fs: mem}
			orig, err := b.readFile(path)
			require.NoError(t, err)
			write([]byte(tc.data))

			_, err = Open(Config{Dir: "/data", FS: mem})
			require.ErrorIs(t, err, ErrCorruptMetadata)
			require.ErrorContains(t, err, filepath.FromSlash(path), "the file's path, not its name alone")
			if tc.name == "an invalid config" {
				require.ErrorIs(t, err, log.ErrInvalidConfig)
			}

			write(orig)
			b, err = Open(Config{Dir: "/data", FS: mem})
			require.NoError(t, err)
			defer b.Close()
			resp, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{{Topic: "a", MaxBytes: 1 << 20}}})
			require.NoError(t, err)
			require.NoError(t, resp.Partitions[0].Err)
			require.Equal(t, []string{"kept"}, values(t, resp.Partitions[0].Records))
		})
	}
}

// TestCorruptTopicRecordWrapsTheDecodersError: Open's error for a topic
// record that is not JSON, or not a record's, matches ErrCorruptMetadata
// and wraps the JSON decoder's error, which errors.As reaches (the
// offset of a *json.SyntaxError, the field of a *json.UnmarshalTypeError);
// it was formatted with %v, only its text kept.
func TestCorruptTopicRecordWrapsTheDecodersError(t *testing.T) {
	mem, write := ordersRecordWrittenOver(t)
	write(`{"name":"orders",`)
	_, err := Open(Config{Dir: "/data", FS: mem})
	require.ErrorIs(t, err, ErrCorruptMetadata)
	var syntax *json.SyntaxError
	require.ErrorAs(t, err, &syntax)
	require.EqualValues(t, len(`{"name":"orders",`), syntax.Offset)

	write(`{"name":"orders","config":{"Partitions":"one"}}`)
	_, err = Open(Config{Dir: "/data", FS: mem})
	require.ErrorIs(t, err, ErrCorruptMetadata)
	var typ *json.UnmarshalTypeError
	require.ErrorAs(t, err, &typ)
	require.Equal(t, "config.Partitions", typ.Field)
}

// ordersRecordWrittenOver makes a broker directory on a memory FS with
// topic "orders" in it, closed, and returns the FS and a function that
// writes data over the topic's record.
func ordersRecordWrittenOver(t *testing.T) (vfs.FS, func(data string)) {
	t.Helper()
	mem := vfs.NewMem()
	b, err := Open(Config{Dir: "/data", FS: mem})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(context.Background(), "orders", log.TopicConfig{Partitions: 1}))
	require.NoError(t, b.Close())
	path := filepath.Join("/data", topicsDir, "orders.json")
	return mem, func(data string) {
		f, err := mem.Create(path)
		require.NoError(t, err)
		_, err = f.Write([]byte(data))
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}
}

// TestCorruptCounterErrorIsShort: Open's error for a producer id counter
// written over with something else names the file by its path, as a
// topic record's error does (it named "producer-ids" alone, no directory),
// and quotes only the start of what the file holds: it quoted all of it,
// a megabyte of garbage in one error message, or one log line.
func TestCorruptCounterErrorIsShort(t *testing.T) {
	mem := counterWrittenOver(t, bytes.Repeat([]byte("garbage "), 1<<17))
	_, err := Open(Config{Dir: "/data", FS: mem})
	require.ErrorIs(t, err, ErrCorruptMetadata)
	require.ErrorContains(t, err, filepath.Join("/data", producerIDs))
	require.ErrorContains(t, err, "1048576 bytes")
	require.Less(t, len(err.Error()), 300, "%.300s", err)
}

// counterWrittenOver returns an in-memory FS with a broker's directory
// at /data whose producer id counter (one id handed out) was then written
// over with data.
func counterWrittenOver(t *testing.T, data []byte) *vfs.MemFS {
	t.Helper()
	mem := vfs.NewMem()
	b, err := Open(Config{Dir: "/data", FS: mem})
	require.NoError(t, err)
	_, _, err = b.InitProducerID(context.Background())
	require.NoError(t, err)
	require.NoError(t, b.Close())
	f, err := mem.Create(filepath.Join("/data", producerIDs))
	require.NoError(t, err)
	_, err = f.Write(data)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return mem
}

// TestCorruptCounterIsNotReadWhole: Open reads no more than the first
// counterQuoted bytes of a producer id counter written over with
// something large (a counter is at most 20 bytes), and its error is as
// before: ErrCorruptMetadata, the path, those bytes quoted and the size.
// It read the whole file into memory first, however large.
func TestCorruptCounterIsNotReadWhole(t *testing.T) {
	mem := counterWrittenOver(t, append([]byte("1234567890123456789\n"), bytes.Repeat([]byte("x"), 1<<20)...))
	path := filepath.Join("/data", producerIDs)
	fsys := &headReadFS{FS: mem, path: path}
	_, err := Open(Config{Dir: "/data", FS: fsys})
	require.ErrorIs(t, err, ErrCorruptMetadata)
	require.ErrorContains(t, err, path+`: "1234567890123456789\nxxxxxxxxxxxx"... (1048596 bytes)`)
	require.NotZero(t, fsys.largest.Load(), "the counter was not read")
	require.LessOrEqual(t, fsys.largest.Load(), int64(counterQuoted), "the largest read of the counter")
}

// TestLargeTopicRecordIsNotReadWhole: Open reads no more than the first
// maxTopicRecord bytes of a topic's record written over with something
// large, and refuses it with ErrCorruptMetadata naming the path and the
// size. It read the whole file into memory first, however large. A record
// of maxTopicRecord bytes is read and parsed (refused here as not JSON).
func TestLargeTopicRecordIsNotReadWhole(t *testing.T) {
	mem, write := ordersRecordWrittenOver(t)
	path := filepath.Join("/data", topicsDir, "orders.json")
	write(strings.Repeat("x", maxTopicRecord+1))
	fsys := &headReadFS{FS: mem, path: path}
	_, err := Open(Config{Dir: "/data", FS: fsys})
	require.ErrorIs(t, err, ErrCorruptMetadata)
	require.ErrorContains(t, err, fmt.Sprintf("%s: %d bytes, more than a topic record holds", path, maxTopicRecord+1))
	require.NotZero(t, fsys.largest.Load(), "the record was not read")
	require.LessOrEqual(t, fsys.largest.Load(), int64(maxTopicRecord), "the largest read of the record")

	write(strings.Repeat("x", maxTopicRecord))
	_, err = Open(Config{Dir: "/data", FS: mem})
	require.ErrorIs(t, err, ErrCorruptMetadata)
	var syntax *json.SyntaxError
	require.ErrorAs(t, err, &syntax, "parsed, not refused by its size")
}

// headReadFS is a vfs.FS that records the largest read of one file (its
// ReadAt's buffer, which readFile makes the file's size).
type headReadFS struct {
	vfs.FS
	path    string
	largest atomic.Int64
}

func (h *headReadFS) Open(name string) (vfs.File, error) {
	f, err := h.FS.Open(name)
	if err != nil || filepath.Clean(name) != h.path {
		return f, err
	}
	return &headReadFile{File: f, h: h}, nil
}

type headReadFile struct {
	vfs.File
	h *headReadFS
}

func (f *headReadFile) ReadAt(p []byte, off int64) (int, error) {
	for {
		old := f.h.largest.Load()
		if int64(len(p)) <= old || f.h.largest.CompareAndSwap(old, int64(len(p))) {
			break
		}
	}
	return f.File.ReadAt(p, off)
}

// A topic record written by a newer runnel is refused as such, not as
// corrupt: it was reported as ErrCorruptMetadata, which could lead an
// operator to delete a sound record. A negative version is still corrupt.
func TestNewerTopicRecord(t *testing.T) {
	mem, write := ordersRecordWrittenOver(t)
	for _, tc := range []struct {
		version int
		want    error
		not     error
	}{{metaVersion + 1, ErrNewerMetadata, ErrCorruptMetadata}, {-1, ErrCorruptMetadata, ErrNewerMetadata}} {
		write(fmt.Sprintf(`{"version":%d,"name":"orders","id":"vDYn0aq0RHqGmQ2RZzqSzA","config":{"Partitions":1}}`, tc.version))
		_, err := Open(Config{Dir: "/data", FS: mem})
		require.ErrorIs(t, err, tc.want, "version %d", tc.version)
		require.NotErrorIs(t, err, tc.not, "version %d", tc.version)
		require.ErrorContains(t, err, "orders.json")
	}
}

// TestOldRecordIDWriteFailsOpen: Open gives a topic recorded
// before topic IDs its ID and writes it to the record; when that write
// fails (the file system refuses the temporary file), Open fails with
// the file system's error, leaving the record as it was and the data
// there, and the directory unlocked: the next Open, with the fault gone,
// gives the ID and serves the records.
func TestOldRecordIDWriteFailsOpen(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	path := oldTopicRecord(t, mem)

	faulty := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpCreate && filepath.Base(name) == metaTmp {
			return errInjectedFault
		}
		return nil
	}))
	_, err := Open(Config{Dir: "/data", FS: faulty})
	require.ErrorIs(t, err, errInjectedFault)
	m, err := (&Broker{fs: mem}).readMeta(path)
	require.NoError(t, err)
	require.True(t, m.ID.IsZero(), "the record is left as it was")

	b, err := Open(Config{Dir: "/data", FS: mem})
	require.NoError(t, err, "the failed Open left the directory locked")
	defer b.Close()
	info, err := b.DescribeTopic(ctx, "a")
	require.NoError(t, err)
	require.False(t, info.ID.IsZero())
	resp, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{{Topic: "a", MaxBytes: 1 << 20}}})
	require.NoError(t, err)
	require.Equal(t, []string{"kept"}, values(t, resp.Partitions[0].Records))
}

// TestOldRecordBadEnumIsCorrupt: a record of version 0 whose Sync
// or TimestampType is past the values version 0 had (0..2, 0..1) is
// corrupt: Open fails with ErrCorruptMetadata naming the file, rather than
// shift it into another setting.
func TestOldRecordBadEnumIsCorrupt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config map[string]any
	}{
		{"Sync", map[string]any{"Partitions": 1, "Sync": 3}},
		{"TimestampType", map[string]any{"Partitions": 1, "TimestampType": 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewMem()
			b, err := Open(Config{Dir: "/data", FS: mem})
			require.NoError(t, err)
			require.NoError(t, b.Close())
			writeTopicRecord(t, mem, map[string]any{"name": "a", "config": tc.config})
			_, err = Open(Config{Dir: "/data", FS: mem})
			require.ErrorIs(t, err, ErrCorruptMetadata)
			require.Contains(t, err.Error(), "a.json")
		})
	}
}

// errInjectedFault is the fault the tests' file systems inject.
var errInjectedFault = errors.New("injected fault")

// A corrupt counter file of counterQuoted bytes or fewer is quoted whole,
// without the "..." and byte count of a longer one's error.
func TestCorruptCounterQuotedWholeAtTheBound(t *testing.T) {
	for _, n := range []int{counterQuoted - 1, counterQuoted, counterQuoted + 1} {
		mem := counterWrittenOver(t, bytes.Repeat([]byte("x"), n))
		_, err := Open(Config{Dir: "/data", FS: mem})
		require.ErrorIs(t, err, ErrCorruptMetadata)
		if n > counterQuoted {
			require.ErrorContains(t, err, fmt.Sprintf("... (%d bytes)", n))
		} else {
			require.NotContains(t, err.Error(), "...", "%d bytes", n)
			require.ErrorContains(t, err, fmt.Sprintf("%q", bytes.Repeat([]byte("x"), n)))
		}
	}
}
