package segment

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestReview39RecoverContextEndsInACandidatesCRC: RecoverContext looks at
// its ctx before each piece of a candidate batch's CRC that it reads (a
// header in a bad tail claiming megabytes): a ctx that ends while the
// first piece is read stops the search there, no later piece read, as
// it does between the pieces of the tail. Kills: crcHolds without its
// ctx check (it read the candidate's every piece, then the search
// stopped at its next piece of the tail).
func TestReview39RecoverContextEndsInACandidatesCRC(t *testing.T) {
	mem, from := candidateTail(t) // the header's CRC is read in three pieces
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &cancelOnRead{FS: mem, cancel: cancel, past: from + 1 + recoverCheckBytes}
	s, _, err := Open(w, "/d", 0, Config{}, OpenOptions{Active: true})
	require.NoError(t, err)
	w.armed.Store(true)
	_, err = s.RecoverContext(ctx, 0)
	require.ErrorIs(t, err, context.Canceled)
	require.EqualValues(t, 1, w.after.Load(), "reads from the one that ended ctx on (the CRC's first piece)")
	require.EqualValues(t, from+candidateTailBytes, s.Size(), "nothing cut")
	require.NoError(t, s.Close())
}

// cancelOnRead is an FS whose files' first ReadAt, once armed, that ends
// past past calls cancel; after counts the reads from that one on.
type cancelOnRead struct {
	vfs.FS
	cancel context.CancelFunc
	past   int64
	armed  atomic.Bool
	after  atomic.Int32
}

func (c *cancelOnRead) Open(name string) (vfs.File, error) {
	f, err := c.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return cancelOnReadFile{f, c}, nil
}

type cancelOnReadFile struct {
	vfs.File
	c *cancelOnRead
}

func (f cancelOnReadFile) ReadAt(b []byte, off int64) (int, error) {
	if f.c.after.Load() > 0 {
		f.c.after.Add(1)
	} else if f.c.armed.Load() && off+int64(len(b)) > f.c.past {
		f.c.after.Add(1)
		f.c.cancel()
	}
	return f.File.ReadAt(b, off)
}
