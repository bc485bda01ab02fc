package runnel_test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDocsNameTestsThatExist keeps the docs' pointers into the suite
// true: every test or fuzz target that a Markdown file of the repository
// (README.md, CHANGELOG.md, docs/details.md, benchmarks/README.md, the
// testdata READMEs) names outside a code block (in prose, or in a `go
// test -run` command) is a test of the module or the peers module, or,
// where the text says it stands for several (in a -run or -fuzz pattern,
// or followed by `*`, `(`, `|` or `[`: `TestFetchWaiting*`), the prefix
// of one, and every
// `..._test.go` file they name exists, under the path given or, named
// bare, in some package. Renaming a test or moving it to another file
// without the docs fails here, not in a reader's search.
func TestDocsNameTestsThatExist(t *testing.T) {
	decl := regexp.MustCompile(`(?m)^func ((?:Test|Fuzz|Benchmark|Example)\w*)\(`)
	tests := map[string]bool{}
	paths := map[string]bool{}
	bare := map[string]bool{}
	var docs []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".md") {
			docs = append(docs, path)
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		// The regexp on the lines that begin with "func " only: it is
		// most of this test's time under the race detector.
		for line := range bytes.Lines(src) {
			if !bytes.HasPrefix(line, []byte("func ")) {
				continue
			}
			if m := decl.FindSubmatch(line); m != nil {
				tests[string(m[1])] = true
			}
		}
		paths[filepath.ToSlash(path)] = true
		bare[d.Name()] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !tests["TestDocsNameTestsThatExist"] || !bare["docs_test_names_test.go"] || !slices.Contains(docs, filepath.Join("docs", "details.md")) {
		t.Fatalf("the walk found %d tests in %d files and the docs %q, not this test or docs/details.md", len(tests), len(paths), docs)
	}
	isPrefix := func(name string) bool {
		for n := range tests {
			if strings.HasPrefix(n, name) {
				return true
			}
		}
		return false
	}
	name := regexp.MustCompile(`\b(?:Test|Fuzz)[A-Z]\w*`)
	// A -run or -fuzz pattern (its regexp matches any test whose name it
	// is in), which a name inside may begin rather than be whole.
	pattern := regexp.MustCompile(`-(?:run|fuzz)[ =]'?[^ ']*`)
	file := regexp.MustCompile(`[\w./-]*_test\.go\b`)
	for _, doc := range docs {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		inCode := false
		for i, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "```") {
				inCode = !inCode
				continue
			}
			if inCode {
				continue // a user's code: README's TestSignup is the reader's test
			}
			if !strings.Contains(line, "Test") && !strings.Contains(line, "Fuzz") && !strings.Contains(line, "_test.go") {
				continue // none of the regexps below can match
			}
			patterns := pattern.FindAllStringIndex(line, -1)
			for _, m := range name.FindAllStringIndex(line, -1) {
				n := line[m[0]:m[1]]
				if n == "FuzzX" || tests[n] { // FuzzX: any target, in go test's output
					continue
				}
				// A prefix only where the text says so: a glob
				// (TestDiskFull*), a regexp's group or alternative
				// (TestCrash(Reorder)?), or a -run pattern.
				glob := m[1] < len(line) && strings.ContainsRune("*(|[", rune(line[m[1]]))
				inPattern := slices.ContainsFunc(patterns, func(p []int) bool { return p[0] <= m[0] && m[1] <= p[1] })
				switch {
				case !isPrefix(n):
					t.Errorf("%s:%d names %s, which is no test and no prefix of one", doc, i+1, n)
				case !glob && !inPattern:
					t.Errorf("%s:%d names %s, which is no test but the prefix of some: name one, or write %s*", doc, i+1, n, n)
				}
			}
			for _, f := range file.FindAllString(line, -1) {
				if !paths[f] && (strings.Contains(f, "/") || !bare[f]) {
					t.Errorf("%s:%d names %s, which is no test file", doc, i+1, f)
				}
			}
		}
	}
}
