package log

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/vfs"
)

// tailCopyWriteFaults fails the nth write (Write or WriteAt) of the first
// tail copy (.tmp) to be written n times, and counts each copy's writes.
type tailCopyWriteFaults struct {
	n      int
	mu     sync.Mutex
	writes map[string]int
	failed string
}

// MaybeError counts the writes of tail copies and fails the nth of one.
func (c *tailCopyWriteFaults) MaybeError(op vfs.Op, name string) error {
	if op != vfs.OpWrite || !strings.HasSuffix(name, tailCopySuffix+tmpSuffix) {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writes == nil {
		c.writes = map[string]int{}
	}
	c.writes[name]++
	if c.n > 0 && c.failed == "" && c.writes[name] == c.n {
		c.failed = name
		return vfs.ErrInjected
	}
	return nil
}

// TestTailCopyChecksumWriteFails: the write of a tail copy's
// checksum in its header, its last (a WriteAt after the header and the
// tail, each of a write for a tail under a RewriteBlock), that fails
// fails the Open before anything is cut; the next Open finds every
// record. The mutant that dropped its error left a copy that says its
// bytes are bad, which an Open after a later failure refuses.
func TestTailCopyChecksumWriteFails(t *testing.T) {
	for _, f := range stepFixtures {
		t.Run(f.name, func(t *testing.T) {
			e, mem := f.make(t)
			clean := &tailCopyWriteFaults{}
			require.NoError(t, openOnceAndClose(t, e, vfs.WithFaults(mem, clean)))
			require.NotEmpty(t, clean.writes)
			for name, n := range clean.writes {
				require.Equal(t, 3, n, "%s: the header, the tail, the checksum", name)
			}

			e, mem = f.make(t)
			inj := &tailCopyWriteFaults{n: 3}
			err := openOnceAndClose(t, e, vfs.WithFaults(mem, inj))
			require.NotEmpty(t, inj.failed)
			require.ErrorIs(t, err, vfs.ErrInjected)
			requireStepPrefix(t, e, mem, len(stepVals), "the Open after")
		})
	}
}

// TestTailCopyReadBackFails: a read of the tail copy, as the rewrite
// reads the tail back from it, that fails fails the Open with that error
// (the copy stays); the next Open finds every record. The reads fail 100
// times at most: the mutant that dropped the short-read check took a
// failed read for one of no bytes and read again, until they succeeded.
func TestTailCopyReadBackFails(t *testing.T) {
	for _, f := range stepFixtures {
		t.Run(f.name, func(t *testing.T) {
			e, mem := f.make(t)
			var mu sync.Mutex
			failed := 0
			inj := vfs.InjectorFunc(func(op vfs.Op, name string) error {
				mu.Lock()
				defer mu.Unlock()
				if op == vfs.OpRead && strings.HasSuffix(name, tailCopySuffix) && failed < 100 {
					failed++
					return vfs.ErrInjected
				}
				return nil
			})
			err := openOnceAndClose(t, e, vfs.WithFaults(mem, inj))
			require.ErrorIs(t, err, vfs.ErrInjected)
			require.Equal(t, 1, failed, "the first failed read ends the rewrite")
			requireStepPrefix(t, e, mem, len(stepVals), "the Open after")
		})
	}
}

// tailCopyHandles counts the opens and closes of tail copies (under
// their names, not the .tmp) and of .log files, and while cutAfterCopy fails the first
// truncation of a .log after a copy was renamed to its name.
type tailCopyHandles struct {
	mu                  sync.Mutex
	opens, closes       int
	logOpens, logCloses int
	cutAfterCopy        bool
	renamed, cut        bool
}

// MaybeError counts, and fails the truncation while armed.
func (c *tailCopyHandles) MaybeError(op vfs.Op, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case op == vfs.OpOpen && strings.HasSuffix(name, tailCopySuffix):
		c.opens++
	case op == vfs.OpClose && strings.HasSuffix(name, tailCopySuffix):
		c.closes++
	case (op == vfs.OpOpen || op == vfs.OpCreate) && strings.HasSuffix(name, ".log"):
		c.logOpens++
	case op == vfs.OpClose && strings.HasSuffix(name, ".log"):
		c.logCloses++
	case op == vfs.OpRename && strings.HasSuffix(name, tailCopySuffix+tmpSuffix):
		c.renamed = true
	case op == vfs.OpTruncate && strings.HasSuffix(name, ".log") && c.cutAfterCopy && c.renamed && !c.cut:
		c.cut = true
		return vfs.ErrInjected
	}
	return nil
}

// TestTailCopiesClosed: an Open that rewrites tails through their
// copies, and one that puts a copy back first, closes every copy it
// opens (the mutants whose tailCopyReader.Close, or restoreTail, left
// it open leaked a descriptor a copy; the mutant whose putTailBack left
// the .log it put a copy back into open, one a copy put back).
func TestTailCopiesClosed(t *testing.T) {
	for _, f := range stepFixtures {
		t.Run(f.name, func(t *testing.T) {
			e, mem := f.make(t)
			c := &tailCopyHandles{}
			l, err := Open(e.dir, Config{}, Options{FS: vfs.WithFaults(mem, c), Clock: e.clock})
			require.NoError(t, err)
			require.NoError(t, l.Close())
			require.Positive(t, c.opens, "the rewrite reads its copies back")
			require.Equal(t, c.opens, c.closes, "rewrite: every copy opened is closed")
			require.Equal(t, c.logOpens, c.logCloses, "rewrite: every .log opened is closed, once the log is")

			e, mem = leaveTailCopy(t, f)
			c = &tailCopyHandles{}
			l, err = Open(e.dir, Config{}, Options{FS: vfs.WithFaults(mem, c), Clock: e.clock})
			require.NoError(t, err)
			require.Equal(t, stepPrefix(len(stepVals)), offVals(t, l))
			require.NoError(t, l.Close())
			require.GreaterOrEqual(t, c.opens, 2, "the copy put back, then the rewrite's")
			require.Equal(t, c.opens, c.closes, "restore: every copy opened is closed")
			require.Equal(t, c.logOpens, c.logCloses, "restore: every .log opened is closed, once the log is")
		})
	}
}

// leaveTailCopy makes f's log, and an Open of it that fails after it
// saved a tail copy (its truncation of the .log fails): the copy is left
// for the next Open to put back.
func leaveTailCopy(t *testing.T, f stepFixture) (*env, *vfs.MemFS) {
	t.Helper()
	e, mem := f.make(t)
	cut := &tailCopyHandles{cutAfterCopy: true}
	_, err := Open(e.dir, Config{}, Options{FS: vfs.WithFaults(mem, cut), Clock: e.clock})
	require.ErrorIs(t, err, vfs.ErrInjected)
	names, err := mem.List(e.dir)
	require.NoError(t, err)
	require.Contains(t, strings.Join(names, " ")+" ", tailCopySuffix+" ", "a copy left to put back")
	return e, mem
}

// openOnceAndClose opens the log of e on fsys, closes it if it opened, and
// returns the Open's error.
func openOnceAndClose(t *testing.T, e *env, fsys vfs.FS) error {
	t.Helper()
	l, err := Open(e.dir, Config{}, Options{FS: fsys, Clock: e.clock})
	if err == nil {
		require.NoError(t, l.Close())
	}
	return err
}

// tailCopyName returns the name of the tail copy in e's directory.
func tailCopyName(t *testing.T, e *env, mem *vfs.MemFS) string {
	t.Helper()
	names, err := mem.List(e.dir)
	require.NoError(t, err)
	for _, n := range names {
		if strings.HasSuffix(n, tailCopySuffix) {
			return n
		}
	}
	t.Fatalf("no tail copy in %s: %v", e.dir, names)
	return ""
}

// TestTailCopyRestoreRemoveFails: an Open that puts a tail copy back and
// fails to remove it fails with that error; the next Open finds every
// record. (The mutant that dropped the error went on: the rewrite that
// follows renamed its own copy over it.)
func TestTailCopyRestoreRemoveFails(t *testing.T) {
	for _, f := range stepFixtures {
		t.Run(f.name, func(t *testing.T) {
			e, mem := leaveTailCopy(t, f)
			var mu sync.Mutex
			removes := 0
			inj := vfs.InjectorFunc(func(op vfs.Op, name string) error {
				mu.Lock()
				defer mu.Unlock()
				if op == vfs.OpRemove && strings.HasSuffix(name, tailCopySuffix) {
					if removes++; removes == 1 {
						return vfs.ErrInjected
					}
				}
				return nil
			})
			err := openOnceAndClose(t, e, vfs.WithFaults(mem, inj))
			require.ErrorIs(t, err, vfs.ErrInjected)
			require.Equal(t, 1, removes)
			requireStepPrefix(t, e, mem, len(stepVals), "the Open after")
		})
	}
}

// tailCopySizeFails is a file system whose tail copies, opened, fail Size.
type tailCopySizeFails struct{ vfs.FS }

// Open opens name, a tail copy whose Size fails.
func (m tailCopySizeFails) Open(name string) (vfs.File, error) {
	f, err := m.FS.Open(name)
	if err == nil && strings.HasSuffix(name, tailCopySuffix) {
		f = tailCopySizeFailsFile{f}
	}
	return f, err
}

// tailCopySizeFailsFile is a file whose Size fails.
type tailCopySizeFailsFile struct{ vfs.File }

// Size fails.
func (tailCopySizeFailsFile) Size() (int64, error) { return 0, vfs.ErrInjected }

// TestTailCopyRestoreSizeFails: an Open that cannot learn the size of a
// tail copy to put back fails with that error, not ErrBadTailCopy (the
// copy may be good: the next Open puts it back, and finds every record).
// The mutant that dropped the error took the copy for one of no bytes.
func TestTailCopyRestoreSizeFails(t *testing.T) {
	for _, f := range stepFixtures {
		t.Run(f.name, func(t *testing.T) {
			e, mem := leaveTailCopy(t, f)
			err := openOnceAndClose(t, e, tailCopySizeFails{mem})
			require.ErrorIs(t, err, vfs.ErrInjected)
			require.NotErrorIs(t, err, ErrBadTailCopy)
			requireStepPrefix(t, e, mem, len(stepVals), "the Open after")
		})
	}
}

// TestTailCopyRestoreLogOneByteShort: a tail copy whose .log holds one byte
// less than the copy's position is refused (ErrBadTailCopy), as one
// shorter still is (the mutant that moved the bound by one put the copy
// back after a byte of zeros).
func TestTailCopyRestoreLogOneByteShort(t *testing.T) {
	f := stepFixtures[0]
	e, mem := leaveTailCopy(t, f)
	copyName := tailCopyName(t, e, mem)
	c, err := mem.Open(filepath.Join(e.dir, copyName))
	require.NoError(t, err)
	var hdr [8]byte
	_, err = c.ReadAt(hdr[:], 0)
	require.NoError(t, err)
	require.NoError(t, c.Close())
	pos := int64(binary.BigEndian.Uint64(hdr[:]))
	require.Positive(t, pos)
	lf, err := mem.Open(filepath.Join(e.dir, strings.TrimSuffix(copyName, tailCopySuffix)))
	require.NoError(t, err)
	require.NoError(t, lf.Truncate(pos-1))
	require.NoError(t, lf.Close())
	require.ErrorIs(t, openOnceAndClose(t, e, mem), ErrBadTailCopy)
}

// TestTailCopyShorterThanItsHeader: a tail copy of any size under
// its header's 12 bytes is a bad copy (the mutant that moved the bound
// by one read an 11-byte copy's header short: a file system error).
func TestTailCopyShorterThanItsHeader(t *testing.T) {
	whole := appendTailCopy(7, nil)
	require.Len(t, whole, tailCopyHeader)
	for k := range tailCopyHeader {
		_, _, err := parseTailCopy(whole[:k], "x")
		require.ErrorIs(t, err, ErrBadTailCopy, "%d bytes", k)
	}
}

// TestTailCopyRestoreLogsTheTail: the warning of a tail copy put back gives
// the copy's position and the bytes it put back, the tail's (the mutant
// that counted the copy's header in them said 12 more).
func TestTailCopyRestoreLogsTheTail(t *testing.T) {
	e, mem := leaveTailCopy(t, stepFixtures[0])
	copyName := tailCopyName(t, e, mem)
	data, err := readFile(mem, filepath.Join(e.dir, copyName), 1<<30)
	require.NoError(t, err)
	pos := int64(binary.BigEndian.Uint64(data))
	var lines testkit.LineTally
	l, err := Open(e.dir, Config{}, Options{FS: mem, Clock: e.clock, Logger: lines.Logger()})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	_, handed := lines.Handed()
	found := 0
	for _, line := range handed {
		if strings.HasPrefix(line, "a rewrite after a failed fsync was cut short: its saved bytes put back ") {
			found++
			require.Contains(t, line+" ", fmt.Sprintf(" position=%d ", pos), line)
			require.Contains(t, line+" ", fmt.Sprintf(" bytes=%d ", len(data)-tailCopyHeader), line)
		}
	}
	require.Equal(t, 1, found, handed)
}

// TestTailCopyRestoreHeaderReadFails: an Open whose first read of a tail
// copy to put back, its header's, or the second, its tail's as it checks
// it, fails fails with that error, not ErrBadTailCopy (the copy may be
// good: the next Open puts it back, and finds every record). The mutants
// that dropped either error checked a header of zeros, or a checksum of
// the bytes before the failed read.
func TestTailCopyRestoreHeaderReadFails(t *testing.T) {
	for _, f := range stepFixtures {
		for _, failAt := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s read %d", f.name, failAt), func(t *testing.T) {
				tailCopyRestoreReadFails(t, f, failAt)
			})
		}
	}
}

// tailCopyRestoreReadFails fails the failAt-th read of the tail copy that
// an Open puts back.
func tailCopyRestoreReadFails(t *testing.T, f stepFixture, failAt int) {
	e, mem := leaveTailCopy(t, f)
	var mu sync.Mutex
	reads := 0
	inj := vfs.InjectorFunc(func(op vfs.Op, name string) error {
		mu.Lock()
		defer mu.Unlock()
		if op == vfs.OpRead && strings.HasSuffix(name, tailCopySuffix) {
			if reads++; reads == failAt {
				return vfs.ErrInjected
			}
		}
		return nil
	})
	err := openOnceAndClose(t, e, vfs.WithFaults(mem, inj))
	require.ErrorIs(t, err, vfs.ErrInjected)
	require.NotErrorIs(t, err, ErrBadTailCopy)
	requireStepPrefix(t, e, mem, len(stepVals), "the Open after")
}

// TestTailCopyRestoreLogMissing: a tail copy whose .log is missing as it
// is put back (gone since the Open listed the directory: the injected
// fs.ErrNotExist of its open) is a bad copy (ErrBadTailCopy), and the copy
// stays (the mutant that dropped the check failed the Open with the file
// system's error alone). A .log missing at the listing is found there.
func TestTailCopyRestoreLogMissing(t *testing.T) {
	e, mem := leaveTailCopy(t, stepFixtures[0])
	copyName := tailCopyName(t, e, mem)
	logName := strings.TrimSuffix(copyName, tailCopySuffix)
	var mu sync.Mutex
	copyOpened, failed := false, false
	inj := vfs.InjectorFunc(func(op vfs.Op, name string) error {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case op == vfs.OpOpen && filepath.Base(name) == copyName:
			copyOpened = true
		case op == vfs.OpOpen && filepath.Base(name) == logName && copyOpened && !failed:
			failed = true
			return fs.ErrNotExist
		}
		return nil
	})
	err := openOnceAndClose(t, e, vfs.WithFaults(mem, inj))
	require.True(t, failed)
	require.ErrorIs(t, err, ErrBadTailCopy)
	require.ErrorIs(t, err, fs.ErrNotExist)
	names, err := mem.List(e.dir)
	require.NoError(t, err)
	require.Contains(t, names, copyName, "the copy stays")
}
