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

// TestLogKeysAreSnakeCase: every attribute key the library logs
// with is lower snake_case, in every package: the clients' and the
// broker's were ("log_start_offset", "producer_id"), the log package's
// camelCase ("logEndOffset", "recoveryPoint"), and a filter or a parser
// of one package's lines missed the other's. It reads the source: the
// string literals in key position of the calls of slog's Debug, Info,
// Warn, Error, Log and With (and the log package's lockedLog, a
// *slog.Logger too), and of the []any literals that gather a line's
// attributes ahead of its call, and of the appends to such a slice
// (attrs, args), outside tests, examples and benchmarks.
func TestLogKeysAreSnakeCase(t *testing.T) {
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
		check := func(args []ast.Expr, first int) {
			for i := first; i < len(args); i += 2 {
				if lit, ok := args[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					keys++
					if k := strings.Trim(lit.Value, "\"`"); !snake.MatchString(k) {
						bad = append(bad, k+" at "+fset.Position(lit.Pos()).String())
					}
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit: // []any{key, value, ...}, args built ahead
				if a, ok := n.Type.(*ast.ArrayType); ok {
					if id, ok := a.Elt.(*ast.Ident); ok && id.Name == "any" {
						check(n.Elts, 0)
					}
				}
			case *ast.CallExpr:
				// append(attrs, key, value...), a line's attributes
				// added to ahead of its call (a check of the
				// literals alone let "checkpointOffset" through).
				if f, ok := n.Fun.(*ast.Ident); ok && f.Name == "append" && len(n.Args) > 1 {
					if a, ok := n.Args[0].(*ast.Ident); ok && (a.Name == "attrs" || a.Name == "args") {
						check(n.Args, 1)
					}
				}
				if s, ok := n.Fun.(*ast.SelectorExpr); ok {
					switch s.Sel.Name {
					case "Debug", "Info", "Warn", "Error":
						check(n.Args, 1) // msg, then key, value...
					case "Log":
						check(n.Args, 3) // ctx, level, msg
					case "With":
						check(n.Args, 0)
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
