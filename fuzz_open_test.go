package runnel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// The broker FuzzOpenMetaFile opens with one of its own files replaced:
// topics a (2 partitions) and b (1), a record in each partition, a
// producer id handed out; closed.
var fuzzBroker struct {
	once sync.Once
	mem  *vfs.MemFS
	err  error
}

// fuzzBrokerFiles are the broker's files whose bytes Open parses: each
// topic's record, a record for a topic that is not there, the producer
// id counter, and a record for a topic with a dot-led name that is not
// there (or macOS's AppleDouble file of that name, which Open skips).
var fuzzBrokerFiles = []string{"topics/a.json", "topics/b.json", "topics/c.json", producerIDs, "topics/._d.json"}

// fuzzBrokerRecords is what each partition of the fixture holds.
var fuzzBrokerRecords = map[string][]string{"a-0": {"a0"}, "a-1": {"a1", "a1'"}, "b-0": {"b0"}}

func fuzzBrokerFix(t testing.TB) *vfs.MemFS {
	fuzzBroker.once.Do(func() {
		mem := vfs.NewMem()
		b, err := Open(Config{Dir: "/data", FS: mem})
		if err == nil {
			ctx := context.Background()
			err = errors.Join(b.CreateTopic(ctx, "a", log.TopicConfig{Partitions: 2}),
				b.CreateTopic(ctx, "b", log.TopicConfig{Partitions: 1, Config: log.Config{CleanupPolicy: log.Compact, SegmentBytes: 1 << 20}}))
			for tp, vs := range fuzzBrokerRecords {
				var p int32
				fmt.Sscanf(tp[2:], "%d", &p)
				if err == nil {
					_, err = b.Produce(ctx, &api.ProduceRequest{Topic: tp[:1], Partition: p, Acks: api.AcksAll, Batches: batch(t, vs...)})
				}
			}
			if err == nil {
				_, _, err = b.InitProducerID(ctx)
			}
			err = errors.Join(err, b.Close())
		}
		fuzzBroker.mem, fuzzBroker.err = mem, err
	})
	require.NoError(t, fuzzBroker.err)
	return fuzzBroker.mem
}

// FuzzOpenMetaFile replaces one of a broker's files (a topic's record,
// the producer id counter) or adds a topic record, with arbitrary bytes,
// and opens the broker. Open either fails with a typed error
// (ErrCorruptMetadata, ErrNewerMetadata, or log.ErrInvalidConfig for a
// *TopicConfigError), and then, the file put back as it was, opens with
// everything it had; or it opens with the other topics' records intact,
// the changed topic's too where its record still names its partitions,
// and every partition directory that holds records still there (one past
// a count gone down is left, not removed as a stray), hands out producer
// ids above those it handed out (unless the counter was the file
// changed), and opens again as it closed.
func FuzzOpenMetaFile(f *testing.F) {
	mem := fuzzBrokerFix(f)
	for i, name := range fuzzBrokerFiles {
		if data, err := readMemFile(mem, filepath.Join("/data", name)); err == nil {
			f.Add(uint8(i), data)
		}
	}
	f.Add(uint8(2), []byte(`{"version":1,"name":"c","config":{"Partitions":2}}`))
	f.Add(uint8(2), []byte(`{"version":2,"name":"c","config":{"Partitions":2}}`))
	f.Add(uint8(0), []byte(`{"name":"a","config":{"Partitions":1}}`))
	f.Add(uint8(0), []byte(`{"version":1,"name":"a","id":"\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n","config":{"Partitions":2}}`))
	f.Add(uint8(1), []byte(`{"version":1,"name":"b","config":{"Partitions":1,"CleanupPolicy":3,"Sync":9}}`))
	f.Add(uint8(3), []byte("18446744073709551615"))
	f.Add(uint8(3), []byte(" 7\n"))
	f.Add(uint8(3), []byte(""))
	f.Add(uint8(4), []byte(`{"version":2,"name":"._d","config":{"Partitions":2}}`))
	f.Add(uint8(4), append([]byte{0, 5, 0x16, 7, 0, 2, 0, 0}, "Mac OS X        "...))
	f.Add(uint8(4), []byte(""))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		ctx := context.Background()
		name := fuzzBrokerFiles[int(which)%len(fuzzBrokerFiles)]
		base := fuzzBrokerFix(t)
		mem := base.CrashClone(vfs.CrashOptions{})
		path := filepath.Join("/data", name)
		orig, origErr := readMemFile(mem, path)
		writeMemFile(t, mem, path, data)

		b, err := Open(Config{Dir: "/data", FS: mem})
		if err != nil {
			var tce *TopicConfigError
			require.True(t, errors.Is(err, ErrCorruptMetadata) || errors.Is(err, ErrNewerMetadata) || errors.As(err, &tce) && errors.Is(err, log.ErrInvalidConfig),
				"Open with %s = %q: %v", name, data, err)
			require.ErrorContains(t, err, filepath.FromSlash(name))
			if origErr != nil {
				require.NoError(t, mem.Remove(path))
			} else {
				writeMemFile(t, mem, path, orig)
			}
			b, err = Open(Config{Dir: "/data", FS: mem})
			require.NoError(t, err, "the file put back")
			checkFuzzBroker(t, b, "", nil)
			require.NoError(t, b.Close())
			return
		}
		defer func() { b.Close() }()
		for tp := range fuzzBrokerRecords {
			_, err := mem.Stat(filepath.Join("/data", tp))
			require.NoError(t, err, "%s, which holds records, with %s = %q", tp, name, data)
		}
		topic := ""
		if filepath.Dir(name) == topicsDir {
			topic = filepath.Base(name[:len(name)-len(".json")])
		}
		checkFuzzBroker(t, b, topic, data)
		if name != producerIDs {
			id, _, err := b.InitProducerID(ctx)
			require.NoError(t, err)
			require.Equal(t, int64(1), id, "the producer id after the fixture's")
		}
		before := map[string]log.TopicConfig{}
		for _, n := range b.Topics() {
			ti, err := b.DescribeTopic(ctx, n)
			require.NoError(t, err)
			before[n] = ti.Config
		}
		require.NoError(t, b.Close())
		b, err = Open(Config{Dir: "/data", FS: mem})
		require.NoError(t, err, "reopen after a clean close")
		for n, cfg := range before {
			ti, err := b.DescribeTopic(ctx, n)
			require.NoError(t, err)
			require.Equal(t, cfg, ti.Config, "topic %s reopened", n)
		}
		require.Len(t, b.Topics(), len(before))
		checkFuzzBroker(t, b, topic, data)
	})
}

// checkFuzzBroker checks that b has the fixture's records, but those of
// topic (whose record the fuzzer wrote as data) where its record no
// longer names their partition.
func checkFuzzBroker(t *testing.T, b *Broker, topic string, data []byte) {
	ctx := context.Background()
	for tp, want := range fuzzBrokerRecords {
		var p int32
		fmt.Sscanf(tp[2:], "%d", &p)
		ti, err := b.DescribeTopic(ctx, tp[:1])
		if tp[:1] == topic && (err != nil || int(p) >= ti.Config.Partitions) {
			continue
		}
		require.NoError(t, err, "topic %s", tp[:1])
		resp, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{{Topic: tp[:1], Partition: p, MaxBytes: 1 << 20}}})
		require.NoError(t, err)
		require.NoError(t, resp.Partitions[0].Err)
		require.Equal(t, want, values(t, resp.Partitions[0].Records), "%s with %q", tp, data)
	}
}

func readMemFile(fsys vfs.FS, path string) ([]byte, error) {
	b := &Broker{fs: fsys}
	return b.readFile(path)
}

func writeMemFile(t testing.TB, fsys vfs.FS, path string, data []byte) {
	f, err := fsys.Create(path)
	require.NoError(t, err)
	_, err = f.Write(data)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())
}

// windowsDevice reports whether a file name is a Windows device name: its
// part before the first '.' is CON, PRN, AUX, NUL, COM1-9 or LPT1-9, in
// any case.
func windowsDevice(file string) bool {
	base, _, _ := strings.Cut(strings.ToUpper(file), ".")
	switch base {
	case "CON", "PRN", "AUX", "NUL":
		return true
	}
	return len(base) == 4 && (strings.HasPrefix(base, "COM") || strings.HasPrefix(base, "LPT")) && base[3] >= '1' && base[3] <= '9'
}

// FuzzTopicName: a name CreateTopic takes (ValidateTopicName, then
// checkPortableName) gives the topic files whose names are portable: its
// record <name>.json and a partition directory <name>-<N> are no Windows
// device name; and a valid name is refused by checkPortableName, with
// ErrInvalidTopic, only when one of them would be.
func FuzzTopicName(f *testing.F) {
	for _, s := range []string{"orders", "CON", "con.orders", "CON-0", "orders.nul", "COM1", "com0", "LPT9.x", "aux_", "NUL.", "Nul.json"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidateTopicName(name) != nil {
			return
		}
		device := windowsDevice(name+".json") || windowsDevice(name+"-0") || windowsDevice(name+"-12")
		err := checkPortableName(name)
		if (err != nil) != device {
			t.Fatalf("checkPortableName(%q) = %v; a device name among its files: %v", name, err, device)
		}
		if err != nil && !errors.Is(err, ErrInvalidTopic) {
			t.Fatalf("checkPortableName(%q) = %v, not ErrInvalidTopic", name, err)
		}
	})
}

// partitionDirName is how a partition's directory is named: a valid topic
// name, '-', the partition's number in decimal without a sign or leading
// zeros.
var partitionDirName = regexp.MustCompile(`^(.+)-(0|[1-9][0-9]*)$`)

// FuzzStrayDir adds a directory of any name, holding an empty log's files,
// to the fixture's data directory, and opens the broker: Open removes it
// exactly when its name is a partition directory's (<topic>-<N>) that no
// topic claims, as a deletion cut short leaves it, and never touches the
// topics' own records.
func FuzzStrayDir(f *testing.F) {
	for _, s := range []string{"a-2", "a-1", "b-0", "c-0", "a-02", "a-+2", "a--2", "-0", "a-", "a.b-c-7", "x-9223372036854775807",
		"x-9223372036854775808", "CON-0", "topics", "a-0x", ".a-0", "Thumbs.db"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") || len(name) > vfs.MaxNameLen {
			return // not a file name
		}
		mem := fuzzBrokerFix(t).CrashClone(vfs.CrashOptions{})
		dir := filepath.Join("/data", name)
		existed := false
		if _, err := mem.Stat(dir); err == nil {
			existed = true // a topic's partition, its records, or runnel's own
		} else {
			require.NoError(t, mem.MkdirAll(dir, 0o755))
			writeMemFile(t, mem, filepath.Join(dir, "00000000000000000000.log"), nil)
			writeMemFile(t, mem, filepath.Join(dir, "recovery-point-checkpoint"), []byte("0\n1\n0\n"))
		}
		b, err := Open(Config{Dir: "/data", FS: mem})
		require.NoError(t, err)
		defer func() { b.Close() }()
		checkFuzzBroker(t, b, "", nil)
		_, err = mem.Stat(dir)
		stray := false
		if m := partitionDirName.FindStringSubmatch(name); m != nil && ValidateTopicName(m[1]) == nil {
			n, perr := strconv.Atoi(m[2])
			claimed := false
			if ti, derr := b.DescribeTopic(context.Background(), m[1]); derr == nil {
				claimed = n < ti.Config.Partitions
			}
			stray = perr == nil && !claimed
		}
		if existed {
			require.NoError(t, err, "%s, there before, was removed", name)
			return
		}
		if stray {
			require.ErrorIs(t, err, fs.ErrNotExist, "the stray partition directory %s was not removed", name)
		} else {
			require.NoError(t, err, "%s, no stray partition directory, was removed", name)
		}
	})
}

// FuzzProducerIDCounter: the producer id counter's decoder takes exactly
// what its encoder writes — a value it takes, encoded again, is the same
// bytes — and every value the encoder writes reads back as itself.
func FuzzProducerIDCounter(f *testing.F) {
	for _, s := range []string{"0\n", "7\n", "+5\n", " 5\n", "05\n", "5", "-0\n", "9223372036854775807\n", "9223372036854775808\n", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if v, ok := decodeCounter(data); ok {
			require.GreaterOrEqual(t, v, int64(0))
			require.Equal(t, string(data), string(encodeCounter(v)), "decoded as %d", v)
		}
		if v, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64); err == nil && v >= 0 {
			got, ok := decodeCounter(encodeCounter(v))
			require.True(t, ok, "%d encoded", v)
			require.Equal(t, v, got)
		}
	})
}
