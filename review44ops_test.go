package runnel_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReview44LogKeysAreSnakeCase: every attribute key the library logs
// with is lower snake_case, in every package: the clients' and the
// broker's were ("log_start_offset", "producer_id"), the log package's
// camelCase ("logEndOffset", "recoveryPoint"), and a filter or a parser
// of one package's lines missed the other's. It reads the source: the
// string literals in key position of the calls of slog's Debug, Info,
// Warn, Error, Log and With (and the log package's lockedLog, a
// *slog.Logger too) outside tests, examples and benchmarks.
func TestReview44LogKeysAreSnakeCase(t *testing.T) {
	snake := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	fset := token.NewFileSet()
	var bad []string
	keys := 0
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "benchmarks", "examples", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			c, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			s, ok := c.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			first := 1 // msg, then key, value...
			switch s.Sel.Name {
			case "Debug", "Info", "Warn", "Error":
			case "Log":
				first = 3 // ctx, level, msg
			case "With":
				first = 0
			default:
				return true
			}
			for i := first; i < len(c.Args); i += 2 {
				if lit, ok := c.Args[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					keys++
					if k := strings.Trim(lit.Value, "\"`"); !snake.MatchString(k) {
						bad = append(bad, k+" at "+fset.Position(lit.Pos()).String())
					}
				}
			}
			return true
		})
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, keys, 100, "the walk found the library's log calls")
	require.Empty(t, bad, "keys not in snake_case")
}
