package runnel_test

import (
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
// test -run` command) is a test of the module or the peers module, or the
// prefix of one (a -run pattern, or `TestFetchWaiting*`), and every
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
		for _, m := range decl.FindAllSubmatch(src, -1) {
			tests[string(m[1])] = true
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
	isTest := func(name string) bool {
		if tests[name] {
			return true
		}
		for n := range tests {
			if strings.HasPrefix(n, name) {
				return true
			}
		}
		return false
	}
	name := regexp.MustCompile(`\b(?:Test|Fuzz)[A-Z]\w*`)
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
			for _, n := range name.FindAllString(line, -1) {
				if n != "FuzzX" && !isTest(n) { // FuzzX: any target, in go test's output
					t.Errorf("%s:%d names %s, which is no test and no prefix of one", doc, i+1, n)
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
