package vfs

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// TestMemDirModel runs random sequences of directory operations (creates,
// Locks, removes, renames within and across directories, MkdirAll,
// RemoveAll, SyncDir), on names that exist or not and are short, of
// MaxNameLen bytes or longer, on a MemFS, now and then going on with a
// crash clone of it. It checks each operation's success and, after every
// step, that the live tree and what CrashClone leaves are what a plain
// model says. The model keeps each directory's durable entries as a whole
// copy of its live ones, taken at each SyncDir, as MemFS once did.
func TestMemDirModel(t *testing.T) {
	// As testkit.RapidReplay, which vfs's own tests cannot import: rapid's
	// Repeat takes half its steps under -short, so a seed replays only
	// with the run's -short.
	t.Cleanup(func() {
		if t.Failed() && testing.Short() {
			t.Logf("replay: go test -short -run '^TestMemDirModel$' ./vfs -rapid.seed=N (N: the seed rapid printed above)")
		}
	})
	rapid.Check(t, func(t *rapid.T) {
		s := &memDirState{m: NewMem(), root: newModelDir()}
		actions := map[string]func(*rapid.T){
			"create":     s.Create,
			"createMany": s.CreateMany,
			"lock":       s.Lock,
			"mkdirAll":   s.MkdirAll,
			"remove":     s.Remove,
			"removeAll":  s.RemoveAll,
			"rename":     s.Rename,
			"renameMore": s.Rename, // renames are the interesting case: twice as often
			"syncDir":    s.SyncDir,
			"syncDir2":   s.SyncDir,
			"crash":      s.Crash,
			"":           s.Check,
		}
		for range 4 {
			t.Repeat(actions)
		}
	})
}

// modelNode is an inode of the model: a directory with its live entries
// and those as of its last SyncDir, or a file with its (synced) content.
type modelNode struct {
	dir           bool
	content       string
	live, durable map[string]*modelNode
}

func newModelDir() *modelNode {
	return &modelNode{dir: true, live: map[string]*modelNode{}, durable: map[string]*modelNode{}}
}

type memDirState struct {
	m    *MemFS
	root *modelNode
	seq  int // files created so far, to give each its own content
}

// walk follows live entries as MemFS does: it fails with errNotDir on
// going through a file, ErrNameTooLong on a name too long, and
// fs.ErrNotExist on a missing name.
func (s *memDirState) walk(parts []string) (*modelNode, error) {
	n := s.root
	for _, p := range parts {
		if !n.dir {
			return nil, errNotDir
		}
		if len(p) > MaxNameLen {
			return nil, ErrNameTooLong
		}
		if n = n.live[p]; n == nil {
			return nil, fs.ErrNotExist
		}
	}
	return n, nil
}

func (s *memDirState) parent(parts []string) (*modelNode, error) {
	d, err := s.walk(parts[:len(parts)-1])
	if err == nil && !d.dir {
		err = errNotDir
	}
	return d, err
}

// livePaths returns the paths of the live tree (the root excluded), in
// order, directories only if dirs.
func (s *memDirState) livePaths(dirs bool) [][]string {
	var out [][]string
	var walk func(d *modelNode, at []string)
	walk = func(d *modelNode, at []string) {
		for _, name := range slices.Sorted(maps.Keys(d.live)) {
			n := d.live[name]
			p := append(slices.Clip(at), name)
			if n.dir || !dirs {
				out = append(out, p)
			}
			if n.dir {
				walk(n, p)
			}
		}
	}
	walk(s.root, nil)
	return out
}

// memDirNames are the names drawPath makes paths of: short ones, the
// longest that works, and one that is too long.
var memDirNames = []string{"a", "b", "c", strings.Repeat("m", MaxNameLen), strings.Repeat("L", MaxNameLen+1)}

// drawPath returns the parts of a path: one of the live tree's, or one
// made of a few names, which may or may not exist.
func (s *memDirState) drawPath(t *rapid.T, label string, dirs bool) []string {
	if live := s.livePaths(dirs); len(live) > 0 && rapid.Bool().Draw(t, label+"Live") {
		return live[rapid.IntRange(0, len(live)-1).Draw(t, label+"Index")]
	}
	depth := rapid.IntRange(1, 3).Draw(t, label+"Depth")
	parts := make([]string, depth)
	for i := range parts {
		parts[i] = memDirNames[rapid.IntRange(0, len(memDirNames)-1).Draw(t, label+"Name")]
	}
	return parts
}

func memPath(parts []string) string { return "/" + strings.Join(parts, "/") }

// checkResult requires err, that of op on what, to be nil exactly when
// the model says op succeeds.
func checkResult(t *rapid.T, op, what string, err error, ok bool) {
	t.Helper()
	if ok && err != nil {
		t.Fatalf("%s %s: %v; the model says it succeeds", op, what, err)
	}
	if !ok && err == nil {
		t.Fatalf("%s %s succeeded; the model says it fails", op, what)
	}
}

// createFile creates name with content, synced (the file, not its
// directory), so that content tells the inode in a crash clone.
func (s *memDirState) createFile(t *rapid.T, parts []string) {
	s.seq++
	content := fmt.Sprintf("file %d", s.seq)
	f, err := s.m.Create(memPath(parts))
	d, perr := s.parent(parts)
	base := parts[len(parts)-1]
	ok := perr == nil && len(base) <= MaxNameLen && (d.live[base] == nil || !d.live[base].dir)
	checkResult(t, "create", memPath(parts), err, ok)
	if !ok {
		return
	}
	if _, err := f.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if n := d.live[base]; n != nil {
		n.content = content // the same inode, truncated and rewritten
		return
	}
	d.live[base] = &modelNode{content: content}
}

func (s *memDirState) Create(t *rapid.T) {
	s.createFile(t, s.drawPath(t, "path", false))
}

// CreateMany creates many files in one directory, so that directories hold
// more than a few entries.
func (s *memDirState) CreateMany(t *rapid.T) {
	dir := []string{}
	if dirs := s.livePaths(true); len(dirs) > 0 && rapid.Bool().Draw(t, "notRoot") {
		dir = dirs[rapid.IntRange(0, len(dirs)-1).Draw(t, "dirIndex")]
	}
	for range rapid.IntRange(1, 50).Draw(t, "count") {
		s.createFile(t, append(slices.Clip(dir), fmt.Sprintf("n%d", s.seq)))
	}
}

func (s *memDirState) Lock(t *rapid.T) {
	parts := s.drawPath(t, "path", false)
	l, err := s.m.Lock(memPath(parts))
	d, perr := s.parent(parts)
	base := parts[len(parts)-1]
	ok := perr == nil && len(base) <= MaxNameLen && (d.live[base] == nil || !d.live[base].dir)
	checkResult(t, "lock", memPath(parts), err, ok)
	if !ok {
		return
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if d.live[base] == nil {
		d.live[base] = &modelNode{} // created empty, never synced
	}
}

func (s *memDirState) MkdirAll(t *rapid.T) {
	parts := s.drawPath(t, "path", false)
	err := s.m.MkdirAll(memPath(parts), 0o755)
	n, ok := s.root, true
	for _, p := range parts {
		c := n.live[p]
		if c == nil && len(p) > MaxNameLen {
			ok = false
			break
		}
		if c == nil {
			c = newModelDir()
			n.live[p] = c
		} else if !c.dir {
			ok = false
			break
		}
		n = c
	}
	checkResult(t, "mkdirAll", memPath(parts), err, ok)
}

func (s *memDirState) Remove(t *rapid.T) {
	parts := s.drawPath(t, "path", false)
	err := s.m.Remove(memPath(parts))
	d, perr := s.parent(parts)
	base := parts[len(parts)-1]
	ok := perr == nil && d.live[base] != nil && !(d.live[base].dir && len(d.live[base].live) > 0)
	checkResult(t, "remove", memPath(parts), err, ok)
	if ok {
		delete(d.live, base)
	}
}

func (s *memDirState) RemoveAll(t *rapid.T) {
	parts := s.drawPath(t, "path", false)
	err := s.m.RemoveAll(memPath(parts))
	d, perr := s.parent(parts)
	base := parts[len(parts)-1]
	ok := perr == nil && len(base) <= MaxNameLen
	checkResult(t, "removeAll", memPath(parts), err, ok || errors.Is(perr, fs.ErrNotExist))
	if ok {
		delete(d.live, base)
	}
}

func (s *memDirState) Rename(t *rapid.T) {
	from := s.drawPath(t, "from", false)
	to := s.drawPath(t, "to", false)
	err := s.m.Rename(memPath(from), memPath(to))
	desc := memPath(from) + " → " + memPath(to)
	od, err1 := s.parent(from)
	nd, err2 := s.parent(to)
	if err1 != nil || err2 != nil || od.live[from[len(from)-1]] == nil {
		checkResult(t, "rename", desc, err, false)
		return
	}
	n, tn := od.live[from[len(from)-1]], nd.live[to[len(to)-1]]
	ok := true
	switch {
	case len(to[len(to)-1]) > MaxNameLen:
		ok = false
	case tn != nil && tn.dir:
		ok = false // os.Rename never replaces a directory, not even with itself
	case n == tn:
		checkResult(t, "rename", desc, err, true)
		return
	case n.dir && len(to) > len(from) && slices.Equal(to[:len(from)], from):
		ok = false // into its own subtree
	case tn != nil && n.dir:
		ok = false
	}
	checkResult(t, "rename", desc, err, ok)
	if ok {
		delete(od.live, from[len(from)-1])
		nd.live[to[len(to)-1]] = n
	}
}

func (s *memDirState) SyncDir(t *rapid.T) {
	parts := s.drawPath(t, "dir", true)
	if rapid.Bool().Draw(t, "root") {
		parts = nil
	}
	err := s.m.SyncDir(memPath(parts))
	d, werr := s.walk(parts)
	ok := werr == nil && d.dir
	checkResult(t, "syncDir", memPath(parts), err, ok)
	if ok {
		d.durable = maps.Clone(d.live)
	}
}

// Crash goes on with a crash clone of the FS, and the model's crash.
func (s *memDirState) Crash(t *rapid.T) {
	s.m = s.m.CrashClone(CrashOptions{})
	s.root = s.crash()
}

// crash returns what the model says a crash leaves: the durable entries
// from the root down, in sorted order, an inode reached again linked (a
// file) or left out (a directory), and everything durable.
func (s *memDirState) crash() *modelNode {
	seen := map[*modelNode]*modelNode{}
	var dir func(d *modelNode) *modelNode
	dir = func(d *modelNode) *modelNode {
		nd := newModelDir()
		seen[d] = nd
		for _, name := range slices.Sorted(maps.Keys(d.durable)) {
			n := d.durable[name]
			c, ok := seen[n]
			switch {
			case ok && n.dir:
				continue
			case ok:
			case n.dir:
				c = dir(n)
			default:
				c = &modelNode{content: n.content}
				seen[n] = c
			}
			nd.live[name] = c
		}
		nd.durable = maps.Clone(nd.live)
		return nd
	}
	return dir(s.root)
}

// tree returns the live entries below root as memTree does.
func modelTree(root *modelNode) map[string]string {
	out := map[string]string{}
	var walk func(d *modelNode, at string)
	walk = func(d *modelNode, at string) {
		for name, n := range d.live {
			p := path.Join(at, name)
			if n.dir {
				out[p+"/"] = ""
				walk(n, p)
			} else {
				out[p] = n.content
			}
		}
	}
	walk(root, "/")
	return out
}

func (s *memDirState) Check(t *rapid.T) {
	require.Equal(t, modelTree(s.root), fastTree(t, s.m), "the live tree")
	require.Equal(t, modelTree(s.crash()), fastTree(t, s.m.CrashClone(CrashOptions{})), "the crash clone's tree")
	checkDirty(t, s.m)
}

// fastTree returns what memTree does, without its per-entry assertions
// (which cost more than the rest of a step).
func fastTree(t *rapid.T, m *MemFS) map[string]string {
	out := map[string]string{}
	var walk func(dir string) error
	walk = func(dir string) error {
		names, err := m.List(dir)
		if err != nil {
			return err
		}
		for _, n := range names {
			p := path.Join(dir, n)
			fi, err := m.Stat(p)
			if err != nil {
				return err
			}
			if fi.IsDir() {
				out[p+"/"] = ""
				if err := walk(p); err != nil {
					return err
				}
				continue
			}
			f, err := m.Open(p)
			if err != nil {
				return err
			}
			b, err := ReadView(f, 0, int(fi.Size()))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			out[p] = string(b)
		}
		return nil
	}
	if err := walk("/"); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkDirty checks that each directory of m (reached through live or
// durable entries) marks dirty exactly the names its live and durable
// entries bind differently, so that SyncDir does all it must and the set
// holds no more than it needs.
func checkDirty(t *rapid.T, m *MemFS) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	seen := map[*memNode]bool{}
	var walk func(d *memNode, at string)
	walk = func(d *memNode, at string) {
		seen[d] = true
		want := map[string]struct{}{}
		for name := range d.live {
			if d.live[name] != d.durable[name] {
				want[name] = struct{}{}
			}
		}
		for name := range d.durable {
			if d.live[name] != d.durable[name] {
				want[name] = struct{}{}
			}
		}
		got := d.dirty
		if got == nil {
			got = map[string]struct{}{}
		}
		if !maps.Equal(want, got) {
			t.Fatalf("directory %s: dirty %v, want %v", at, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		}
		for _, entries := range []map[string]*memNode{d.live, d.durable} {
			for name, n := range entries {
				if n.isDir && !seen[n] {
					walk(n, path.Join(at, name))
				}
			}
		}
	}
	walk(m.root, "/")
}
