package runnel_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/stretchr/testify/require"
)

// TestErrorsListComplete keeps the README's promise that
// docs/details.md's "Errors" is the whole list: every exported error
// sentinel (a package-level var named Err...) and error type (a type
// named ...Error) of the library's packages is named there, as
// `pkg.Name` (the root package's as `runnel.Name` or `Name`), or is
// another name of one that is (a var whose value is another package's
// sentinel, such as runnel.ErrUnknownTopic = api.ErrUnknownTopicOrPartition).
// The list named none of api's replication and producer-id errors, nor
// the lower layers' own (segment.ErrFull, index.ErrIndexFull, ...).
func TestErrorsListComplete(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("docs", "details.md"))
	require.NoError(t, err)
	doc := string(data)
	start := strings.Index(doc, "\n## Errors\n")
	require.GreaterOrEqual(t, start, 0, "docs/details.md has no Errors section")
	section := doc[start:]
	if end := strings.Index(section[1:], "\n## "); end >= 0 {
		section = section[:end+1]
	}

	pkgs := []string{".", "api", "compression", "consumer", "index", "log", "producer", "record", "runneltest", "segment", "vfs"}
	qualified := func(dir, name string) string {
		if dir == "." {
			return "runnel." + name
		}
		return dir + "." + name
	}
	listed := func(q string) bool {
		if strings.Contains(section, "`"+q+"`") || strings.Contains(section, "`*"+q+"`") {
			return true
		}
		name, ok := strings.CutPrefix(q, "runnel.")
		return ok && (strings.Contains(section, "`"+name+"`") || strings.Contains(section, "`*"+name+"`"))
	}
	// alias links a var to the var it is another name of, both ways.
	alias := map[string][]string{}
	var names []string
	for _, dir := range pkgs {
		fset := token.NewFileSet()
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		require.NoError(t, err)
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
			require.NoError(t, err)
			for _, d := range f.Decls {
				g, ok := d.(*ast.GenDecl)
				if !ok {
					continue
				}
				for _, spec := range g.Specs {
					switch s := spec.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() && strings.HasSuffix(s.Name.Name, "Error") {
							names = append(names, qualified(dir, s.Name.Name))
						}
					case *ast.ValueSpec:
						if g.Tok != token.VAR {
							continue
						}
						for i, n := range s.Names {
							if !n.IsExported() || !strings.HasPrefix(n.Name, "Err") {
								continue
							}
							q := qualified(dir, n.Name)
							names = append(names, q)
							if i < len(s.Values) {
								if sel, ok := s.Values[i].(*ast.SelectorExpr); ok {
									if pkg, ok := sel.X.(*ast.Ident); ok {
										other := qualified(pkg.Name, sel.Sel.Name)
										alias[q] = append(alias[q], other)
										alias[other] = append(alias[other], q)
									}
								}
							}
						}
					}
				}
			}
		}
	}
	require.NotEmpty(t, names)
	var missing []string
	for _, q := range names {
		seen := map[string]bool{q: true}
		queue := []string{q}
		found := false
		for len(queue) > 0 && !found {
			cur := queue[0]
			queue = queue[1:]
			found = listed(cur)
			for _, a := range alias[cur] {
				if !seen[a] {
					seen[a] = true
					queue = append(queue, a)
				}
			}
		}
		if !found {
			missing = append(missing, q)
		}
	}
	sort.Strings(missing)
	require.Empty(t, missing, "docs/details.md's Errors, which the README calls the whole list, does not name these")
}

// TestFuzzTableComplete keeps docs/details.md's "Fuzzing" true:
// every fuzz target of the module (benchmarks aside) is in the table's
// row of its package, and every target the table names exists there.
// The table left out log's FuzzParseTailCopy.
func TestFuzzTableComplete(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("docs", "details.md"))
	require.NoError(t, err)
	doc := string(data)
	start := strings.Index(doc, "\n### Fuzzing\n")
	require.GreaterOrEqual(t, start, 0, "docs/details.md has no Fuzzing section")
	section := doc[start+1:]
	if end := strings.Index(section, "\n### "); end >= 0 {
		section = section[:end]
	}
	rows := map[string]string{} // package -> its row
	for line := range strings.SplitSeq(section, "\n") {
		if pkg, ok := strings.CutPrefix(line, "| `"); ok {
			if i := strings.Index(pkg, "`"); i > 0 {
				rows[pkg[:i]] = line
			}
		}
	}
	require.NotEmpty(t, rows)
	found := map[string]map[string]bool{} // package -> its targets
	err = filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (path == "benchmarks" || path == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(filepath.Dir(path))
		if pkg == "." {
			pkg = "runnel"
		}
		for _, decl := range f.Decls {
			if fn, ok := decl.(*ast.FuncDecl); ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "Fuzz") {
				if found[pkg] == nil {
					found[pkg] = map[string]bool{}
				}
				found[pkg][fn.Name.Name] = true
				require.Contains(t, rows[pkg], "`"+fn.Name.Name+"`", "docs/details.md's Fuzzing table: %s's row does not name %s (%s)", pkg, fn.Name.Name, path)
			}
		}
		return nil
	})
	require.NoError(t, err)
	for pkg, row := range rows {
		for _, cell := range strings.Split(row, "`")[1:] {
			if strings.HasPrefix(cell, "Fuzz") && !strings.ContainsAny(cell, " (") {
				require.True(t, found[pkg][cell], "docs/details.md's Fuzzing table names %s in %s, which has no such target", cell, pkg)
			}
		}
	}
}

// TestDocumentedDefaults pins the defaults README.md and
// docs/details.md state (and the doc comments of the options and of
// log.Config): the producer's buffer bounds, batch size, delivery
// timeout, requests in flight, retry backoff and metadata age; a topic's
// config (Kafka's topic defaults, but SyncAlways); the cleaner's key map.
func TestDocumentedDefaults(t *testing.T) {
	require.Equal(t, 10000, producer.DefaultMaxBufferedRecords, "MaxBufferedRecords 10,000 (kgo: 50,000)")
	require.Equal(t, 32<<20, producer.DefaultMaxBufferedBytes, "MaxBufferedBytes 32 MiB, Kafka's buffer.memory")
	require.Equal(t, 1<<20, producer.DefaultBatchMaxBytes, "BatchMaxBytes 1 MiB")
	require.Equal(t, 2*time.Minute, producer.DefaultDeliveryTimeout, "Kafka's delivery.timeout.ms")
	require.Equal(t, 5, producer.DefaultMaxInFlight, "Kafka's max.in.flight.requests.per.connection")
	require.Equal(t, 100*time.Millisecond, producer.DefaultRetryBackoff, "Kafka's retry.backoff.ms")
	require.Equal(t, time.Second, producer.DefaultMaxRetryBackoff, "Kafka's retry.backoff.max.ms")
	require.Equal(t, 5*time.Minute, producer.DefaultMetadataMaxAge, "Kafka's metadata.max.age.ms")

	week := 7 * 24 * time.Hour
	require.Equal(t, log.Config{
		SegmentBytes:           1 << 30,  // segment.bytes
		SegmentTime:            week,     // segment.ms
		SegmentIndexBytes:      10 << 20, // segment.index.bytes
		IndexIntervalBytes:     4096,     // index.interval.bytes
		MaxMessageBytes:        1048588,  // max.message.bytes
		RetentionTime:          week,     // retention.ms
		RetentionBytes:         0,        // retention.bytes: unlimited
		CleanupPolicy:          log.Delete,
		DeleteRetentionTime:    24 * time.Hour, // delete.retention.ms
		MinCompactionLag:       0,
		MaxCompactionLag:       0, // never
		MinCleanableDirtyRatio: 0.5,
		Sync:                   log.SyncAlways, // runnel's own: Kafka's flush defaults are SyncNever
		FlushMessages:          0,
		FlushInterval:          0,
		TimestampType:          log.CreateTime,
		TimestampBeforeMax:     0,         // message.timestamp.before.max.ms: unlimited
		TimestampAfterMax:      time.Hour, // message.timestamp.after.max.ms, Kafka 4's (KIP-1030)
	}, log.Config{}.WithDefaults())

	require.Equal(t, 128<<20, log.DefaultCleanerMapBytes, "Kafka's log.cleaner.dedupe.buffer.size")
	require.Equal(t, 1<<31-1, log.MaxCleanerMapBytes, "2 GiB - 1, Kafka's cap")
}
