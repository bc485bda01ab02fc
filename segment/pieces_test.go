package segment

import (
	"bytes"

	"github.com/runnel/runnel/vfs"
)

// piecesFS is an FS whose files hold their bytes in pieces of piece bytes,
// as the memory FS holds a file in chunks, but cut without regard for where
// writes began: ViewPrefix returns at most the rest of the piece holding
// off, and View copies a range that spans pieces. The segment must read
// the same batches from it as from any file.
type piecesFS struct {
	vfs.FS
	piece int64
}

func (p piecesFS) Create(name string) (vfs.File, error) { return p.wrap(p.FS.Create(name)) }
func (p piecesFS) Open(name string) (vfs.File, error)   { return p.wrap(p.FS.Open(name)) }

func (p piecesFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return piecesFile{f, p.piece}, nil
}

type piecesFile struct {
	vfs.File
	piece int64
}

var (
	_ vfs.Viewer       = piecesFile{}
	_ vfs.PrefixViewer = piecesFile{}
)

func (f piecesFile) View(off int64, n int) ([]byte, error) {
	v, err := vfs.ReadView(f.File, off, n)
	if err != nil || n == 0 || off/f.piece == (off+int64(n)-1)/f.piece {
		return v, err
	}
	return bytes.Clone(v), nil
}

func (f piecesFile) ViewPrefix(off int64, n int) ([]byte, error) {
	v, err := vfs.ReadView(f.File, off, n)
	if err != nil || n == 0 {
		return v, err
	}
	k := min(int64(n), f.piece-off%f.piece)
	return v[:k:k], nil
}
