package runnel_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
)

// readmeBlock is one ```go block of README.md.
type readmeBlock struct {
	line int // of the opening fence, 1-based
	src  string
}

// readmeGoBlocks returns the ```go blocks of the README at path.
func readmeGoBlocks(t *testing.T, path string) []readmeBlock {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []readmeBlock
	var cur *readmeBlock
	var buf strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```go":
			cur = &readmeBlock{line: n}
			buf.Reset()
		case cur != nil && strings.TrimSpace(line) == "```":
			cur.src = buf.String()
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			buf.WriteString(line)
			buf.WriteByte('\n')
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("README.md:%d: a ```go block that does not end", cur.line)
	}
	return blocks
}

// TestReadmeCodeBlocks keeps README.md's Go code true: every ```go block
// is a whole Go file (a package clause first, so that a reader can paste
// it), which `go vet` type-checks against this module; outside -short, a
// block of package main is built and run twice in a directory of its own
// (the first README program keeps its broker in ./data, and the second
// run finds the first run's records), and a block with Test functions is
// run with `go test`. The blocks run side by side, each in a directory
// of testkit.FastTempDir's that is also its go commands' GOTMPDIR: their
// time is the go command's links and the binaries it writes.
func TestReadmeCodeBlocks(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	blocks := readmeGoBlocks(t, "README.md")
	if len(blocks) == 0 {
		t.Fatal("README.md has no ```go block")
	}
	for _, blk := range blocks {
		t.Run(fmt.Sprintf("line%d", blk.line), func(t *testing.T) {
			t.Parallel()
			f, err := parser.ParseFile(token.NewFileSet(), "block.go", blk.src, parser.ParseComments)
			if err != nil {
				t.Fatalf("README.md:%d: the block is not a Go file (start it with a package clause): %v", blk.line, err)
			}
			isTest := false
			for _, d := range f.Decls {
				if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "Test") {
					isTest = true
				}
			}
			dir := testkit.FastTempDir(t)
			name := "main.go"
			if isTest {
				name = "block_test.go"
			}
			file := filepath.Join(dir, name)
			if err := os.WriteFile(file, []byte(blk.src), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			goCmd := func(args ...string) string {
				t.Helper()
				cmd := exec.CommandContext(ctx, goTool, args...)
				cmd.Dir = "." // this module, which the block's imports resolve to
				cmd.Env = append(os.Environ(), "GOTMPDIR="+dir)
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("README.md:%d: go %s: %v\n%s", blk.line, strings.Join(args, " "), err, out)
				}
				return string(out)
			}
			goCmd("vet", file)
			if testing.Short() {
				return
			}
			switch {
			case isTest:
				goCmd("test", "-count=1", file)
			case f.Name.Name == "main":
				bin := filepath.Join(dir, "prog")
				goCmd("build", "-o", bin, file)
				for run := 1; run <= 2; run++ {
					cmd := exec.CommandContext(ctx, bin)
					cmd.Dir = dir
					out, err := cmd.CombinedOutput()
					if err != nil {
						t.Fatalf("README.md:%d: run %d: %v\n%s", blk.line, run, err, out)
					}
					t.Logf("run %d:\n%s", run, out)
					if blk.line == blocks[0].line {
						// The first program produces two records a run, on
						// disk: the second run reads four.
						if got, want := strings.Count(string(out), "\n"), 2*run; got != want {
							t.Errorf("README.md:%d: run %d printed %d lines, want %d", blk.line, run, got, want)
						}
					}
				}
			}
		})
	}
}
