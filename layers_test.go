package runnel_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// layerRank is each package's place in the layer stack that the package
// comments state (and ../shared/ARCHITECTURE.md maps): a package imports
// only packages of a lower rank, so imports point down, never up.
var layerRank = map[string]int{
	"internal/callstack":            0, // uses nothing of runnel's
	"internal/isnil":                0,
	"internal/lockedlog":            0,
	"internal/logrun":               0,
	"compression":                   0, // a leaf: knows nothing about batches
	"vfs":                           1, // a leaf but for internal/isnil
	"internal/testkit":              2, // test support, over vfs
	"internal/leakcheck":            3, // test support, over testkit in its tests
	"index":                         2, // above vfs only
	"record":                        2, // above compression only
	"segment":                       3, // above index, record and vfs
	"log":                           4, // above segment
	"api":                           5, // above the storage layers, below broker and clients
	"producer":                      6, // clients: never the root package
	"consumer":                      6,
	"":                              7, // the root package, the broker
	"runneltest":                    8, // with the clients above the broker
	"benchmarks/internal/e2e":       9,
	"benchmarks/internal/runnelsys": 10,
	"benchmarks":                    11,
	"examples/microservice":         11,
	"examples/quickstart":           11,
	"examples/unittest":             11,
}

// TestImportsPointDown checks the layering the package comments state
// against the imports of each package's non-test files.
func TestImportsPointDown(t *testing.T) {
	const module = "github.com/runnel/runnel"
	seen := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != "." && (name == "testdata" || strings.HasPrefix(name, ".") || name == "peers") {
				return filepath.SkipDir // peers is a module of its own
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		pkg := filepath.ToSlash(filepath.Dir(path))
		if pkg == "." {
			pkg = ""
		}
		rank, ok := layerRank[pkg]
		if !ok {
			t.Errorf("package %q (%s) has no place in layerRank: add it, and say where it sits in its package comment", pkg, path)
			return nil
		}
		seen[pkg] = true
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, src, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, is := range f.Imports {
			imp, _ := strconv.Unquote(is.Path.Value)
			if imp != module && !strings.HasPrefix(imp, module+"/") {
				continue
			}
			dep := strings.TrimPrefix(strings.TrimPrefix(imp, module), "/")
			if r, ok := layerRank[dep]; !ok || r >= rank {
				t.Errorf("%s: package %q imports %q, which is not below it", path, pkg, dep)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for pkg := range layerRank {
		if !seen[pkg] {
			t.Errorf("layerRank names %q, which has no Go files any more", pkg)
		}
	}
}
