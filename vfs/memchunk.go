package vfs

import (
	"bytes"
	"slices"
	"sync/atomic"
)

// A MemFS file keeps its content in chunks: separately allocated arrays,
// each holding the bytes that follow its predecessor's. Appending never
// copies what the file already holds (a growing single array copies itself
// at each doubling, and multi-MiB copies also stall the garbage collector,
// which cannot preempt them), and a single Write never straddles two
// chunks, so that whatever one Write wrote — a record batch, for the
// segment layer — can be viewed without a copy.
//
// A small file is one chunk: it starts with room for memChunkMin bytes and,
// while the file fits in memChunkGrow bytes, moves to an array twice as
// large when it is full (copying at most memChunkGrow bytes in its life),
// so that small files stay small and a reader of a small file always gets
// all of it in one view. Beyond that, each new chunk is about as large as
// the file so far, so that the number of chunks grows with the logarithm of
// the size up to memChunkMax, and linearly after. A chunk is always large
// enough for the write that opens it, however large that is. Only the last
// chunk takes appends: the room left in a chunk too small for a write stays
// unused (less than the size of that write).
const (
	memChunkMin  = 256
	memChunkGrow = 64 << 10
	memChunkMax  = 4 << 20
)

// memChunkSizes are the chunk sizes of a MemFS's files: the constants
// above, or tiny ones in tests of chunk boundaries. They never change
// once made: the files of an FS, and of its crash clones, share them.
type memChunkSizes struct{ min, grow, max int }

var defaultChunkSizes = memChunkSizes{min: memChunkMin, grow: memChunkGrow, max: memChunkMax}

// memChunk holds bytes [start, start+len(buf)) of a file; len(buf) > 0.
//
// The bytes buf[:pin] of buf's array may be held outside the file — by a
// View, by a crash clone that shares the array, or by an undo record — so
// they are never written in place: an overwrite copies the chunk first
// (copy-on-write, one chunk at a time). The array beyond len(buf) is never
// held outside: views are capped, and when a truncation cuts bytes that
// may be held, buf is capped too, so that appending into spare capacity is
// always safe. pin is atomic because View raises it under the file's read
// lock; it never exceeds len(buf).
type memChunk struct {
	start int
	buf   []byte
	alloc int // the size of the array buf points into (as asked of the allocator)
	// populated: the array's bytes before it have been populated (see
	// ready), or written.
	populated int
	pin       atomic.Int64
}

func (c *memChunk) end() int { return c.start + len(c.buf) }

// memPopulateStep is how far ahead of the appends a chunk's memory is
// populated at a time.
//
// An in-memory log that grows writes each byte to memory never touched
// before, and the first write to each 4 KiB page is a page fault: on the
// virtual machines measured here some 15 µs a page (264 MiB/s), most of
// an in-memory append's time. Populating the pages in one madvise call
// (populate) takes half as long (544 MiB/s; BenchmarkMemFreshWrite, six
// runs of each, 2026-12-05). The step bounds both what is populated
// before it is written (the RSS of a chunk's unwritten room) and the
// time one append takes for it, under the file's lock: some 0.5 ms.
const memPopulateStep = 256 << 10

// populateBroken is set once the kernel refused to populate (Linux before
// 5.14 has no MADV_POPULATE_WRITE), or where populate cannot: populate
// then does nothing.
var populateBroken atomic.Bool

// ready populates the chunk's memory for the next k appended bytes, a
// memPopulateStep ahead, if it is not yet; only in chunks of
// memChunkGrow bytes or more, which a file gets once it is large. The
// caller holds the file's lock for writing.
func (c *memChunk) ready(k int) {
	end := len(c.buf) + k
	if end <= c.populated || cap(c.buf) < memChunkGrow {
		return
	}
	to := min(max(end, c.populated+memPopulateStep), cap(c.buf))
	populate(c.buf[c.populated:to])
	c.populated = to
}

// pinAtLeast records that buf[:end] may be held outside the file.
func (c *memChunk) pinAtLeast(end int) {
	e := int64(end)
	for {
		p := c.pin.Load()
		if p >= e || c.pin.CompareAndSwap(p, e) {
			return
		}
	}
}

// newChunk returns a chunk starting at start with room for size bytes.
func newChunk(start, size int) *memChunk {
	return &memChunk{start: start, buf: make([]byte, 0, size), alloc: size}
}

// chunkAt returns the index of the chunk holding byte off of the file,
// 0 <= off < n.size: the last chunk is tried first, as most reads are of
// recent bytes, then a binary search on the chunks' starts. The caller
// holds n.mu.
func (n *memNode) chunkAt(off int) int {
	cs := n.chunks
	last := len(cs) - 1
	if cs[last].start <= off {
		return last
	}
	lo, hi := 0, last // cs[lo].start <= off < cs[hi].start
	for hi-lo > 1 {
		mid := int(uint(lo+hi) >> 1)
		if cs[mid].start <= off {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// room returns the chunk the next k > 0 appended bytes go to, all of them:
// the last chunk if it has room for k more; else, for a file that stays
// within sizes.grow bytes, its one chunk moved to a larger array; else a new
// last chunk. The caller holds n.mu for writing.
func (n *memNode) room(k int) *memChunk {
	l := len(n.chunks)
	if l > 0 {
		c := n.chunks[l-1]
		if cap(c.buf)-len(c.buf) >= k {
			return c
		}
		if l == 1 && n.size+k <= n.sizes.grow {
			// The old array stays as it is for whoever holds some of it.
			nc := newChunk(0, min(max(2*cap(c.buf), n.size+k), n.sizes.grow))
			nc.buf = append(nc.buf, c.buf...)
			n.chunks[0] = nc
			return nc
		}
	}
	c := newChunk(n.size, max(k, min(max(n.size, n.sizes.min), n.sizes.max)))
	n.chunks = append(n.chunks, c)
	return c
}

// appendBytes appends p in one chunk. The caller holds n.mu for writing.
func (n *memNode) appendBytes(p []byte) {
	if len(p) == 0 {
		return
	}
	c := n.room(len(p))
	c.ready(len(p))
	c.buf = append(c.buf, p...)
	n.size += len(p)
}

// extend appends k > 0 bytes to the file in one chunk and returns them, for
// the caller to fill. The caller holds n.mu for writing.
func (n *memNode) extend(k int) []byte {
	c := n.room(k)
	c.ready(k)
	l := len(c.buf)
	c.buf = c.buf[:l+k]
	n.size += k
	return c.buf[l:]
}

// copyOut copies the file's bytes from off into p, as many as there are;
// it returns their number. The caller holds n.mu.
func (n *memNode) copyOut(p []byte, off int) int {
	if off >= n.size || len(p) == 0 {
		return 0
	}
	k := 0
	for i := n.chunkAt(off); i < len(n.chunks) && k < len(p); i++ {
		c := n.chunks[i]
		k += copy(p[k:], c.buf[off+k-c.start:])
	}
	return k
}

// viewPrefix returns the longest prefix of bytes [off, off+size) of the
// file that one chunk holds, pinned — or, when whole is set and that is
// not all of them, nil, pinning nothing; size > 0 and off+size <= n.size.
// The caller holds n.mu.
func (n *memNode) viewPrefix(off, size int, whole bool) []byte {
	c := n.chunks[n.chunkAt(off)]
	a := off - c.start
	b := min(a+size, len(c.buf))
	if whole && b-a < size {
		return nil // the caller copies instead: nothing is held
	}
	c.pinAtLeast(b)
	return c.buf[a:b:b]
}

// overwrite writes p over the file's bytes at off, which it must not
// extend beyond n.size. Synced bytes are saved for a crash first, and a
// chunk whose overwritten bytes may be held outside is copied first. The
// caller holds n.mu for writing.
func (n *memNode) overwrite(p []byte, off int) {
	for i := n.chunkAt(off); len(p) > 0; i++ {
		c := n.chunks[i]
		a := off - c.start
		k := min(len(p), len(c.buf)-a)
		held := a < int(c.pin.Load())
		n.saveUndo(c, off, off+k, held)
		if held {
			c.unshare()
		}
		copy(c.buf[a:], p[:k])
		p, off = p[k:], off+k
	}
}

// unshare gives c an array of its own, held by no one; the old one stays
// as it is for whoever holds it.
func (c *memChunk) unshare() {
	b := make([]byte, len(c.buf), max(cap(c.buf), len(c.buf)))
	copy(b, c.buf)
	c.buf, c.alloc = b, cap(b)
	c.populated = len(b) // the copy wrote these; the room is new memory
	c.pin.Store(0)
}

// trim gives the file's last chunk an array of its exact size when it
// has much room to spare (a quarter of it or more, and at least
// memTrimMin bytes), as unshare copies a chunk: the old array stays as it
// is for whoever holds some of it (views, clones, undo records), and goes
// with them. The caller holds n.mu for writing.
func (n *memNode) trim() {
	l := len(n.chunks)
	if l == 0 {
		return
	}
	c := n.chunks[l-1]
	spare := c.alloc - len(c.buf)
	if spare < memTrimMin || spare*4 < c.alloc {
		return
	}
	b := make([]byte, len(c.buf))
	copy(b, c.buf)
	c.buf, c.alloc = b, len(b)
	c.populated = len(b)
	c.pin.Store(0)
}

// memTrimMin is the least spare room trim gives back: below it, the copy
// is not worth it.
const memTrimMin = 4 << 10

// truncate cuts the file to size < n.size. The cut bytes that were synced
// are kept for a crash by reference, not copied; the chunk cut in the
// middle is capped if its cut bytes may be held outside (views, clones,
// undo), so that later appends go to a new chunk. The caller holds n.mu
// for writing.
func (n *memNode) truncate(size int) {
	n.cutLost(size)
	if !n.hasCut {
		n.hasCut, n.cutSize = true, n.size
		if n.size > n.syncedLen {
			n.cut = n.shareChunksFrom(n.syncedLen, n.size)
		}
	}
	keep := 0 // chunks kept
	if size > 0 {
		keep = n.chunkAt(size-1) + 1
	}
	// Save the synced bytes cut, oldest first per position; all before any
	// change, so that the undo records describe the content they undo.
	for i := max(keep-1, 0); i < len(n.chunks); i++ {
		c := n.chunks[i]
		n.saveUndo(c, max(size, c.start), c.end(), true)
	}
	if keep > 0 {
		c := n.chunks[keep-1]
		if cut := size - c.start; cut < len(c.buf) {
			if int(c.pin.Load()) > cut || size < n.syncedLen {
				c.buf = c.buf[:cut:cut]
			} else {
				c.buf = c.buf[:cut]
			}
			if int(c.pin.Load()) > cut {
				c.pin.Store(int64(cut))
			}
		}
	}
	clear(n.chunks[keep:]) // let the dropped arrays go, unless held elsewhere
	n.chunks = n.chunks[:keep]
	n.size = size
	n.minSize = min(n.minSize, size)
}

// cutLost ends what a failed Sync did (see failSync) once the file is
// truncated to size, if that cuts off all that it may have lost: the file
// becomes empty, or the file was never shorter than size since its last
// Sync and its bytes below size are the synced ones (syncedBelow) — a
// file cut back and written again, as the rewrite after a failed fsync
// does, whose fsync failed, cut back there once more. The caller holds
// n.mu for writing.
func (n *memNode) cutLost(size int) {
	if n.noSync && (size == 0 || n.syncedBelow(size)) {
		n.noSync = false
	}
}

// syncedBelow reports whether the file was at least size bytes long ever
// since its last Sync and its first size bytes read as that Sync left
// them. Bytes overwritten since with the same bytes, or written back to
// them, read so too: a failed fsync(2) that did not write their pages
// left the disk holding what they read (as a short file, whose synced
// content is kept whole, and a long one, with undo records, alike). The
// bytes are compared only when an undo record starts below size (each
// holds synced bytes changed or cut from its offset on) or the synced
// content is kept whole. The caller holds n.mu.
func (n *memNode) syncedBelow(size int) bool {
	if size > n.minSize || size > n.size {
		return false
	}
	if !n.hasSnap && !slices.ContainsFunc(n.undo, func(u memUndo) bool { return u.off < size }) {
		return true
	}
	cur := make([]byte, size)
	n.copyOut(cur, 0)
	return bytes.Equal(cur, n.syncedContent()[:size])
}

// resize truncates or zero-extends the file. A truncation to its own size
// changes nothing but may end what a failed Sync did (cutLost), as a
// shorter one does: only for a file whose bytes were overwritten since
// the failure back to its synced ones (a failed Sync with nothing to
// lose ends it at once, see failSync, and neither appends nor undo
// records go away before the next Sync). The caller holds n.mu for
// writing.
func (n *memNode) resize(size int) {
	switch {
	case size < n.size:
		n.truncate(size)
	case size > n.size:
		clear(n.extend(size - n.size)) // spare capacity may hold cut bytes
	default:
		n.cutLost(size)
	}
}

// writeAt writes p at off, zero-filling any gap beyond the end. The bytes
// that extend the file are appended in one chunk, as a Write's. The caller
// holds n.mu for writing.
func (n *memNode) writeAt(p []byte, off int) {
	if off < n.size {
		k := min(len(p), n.size-off)
		n.overwrite(p[:k], off)
		p, off = p[k:], off+k
	}
	if len(p) > 0 {
		gap := off - n.size
		b := n.extend(gap + len(p))
		clear(b[:gap])
		copy(b[gap:], p)
	}
}

// saveUndo records the synced bytes among [lo, hi) of the file, all in
// chunk c, before they are overwritten or cut off. With ref the old bytes
// are referenced rather than copied: the caller guarantees that c's array
// will not be written there again (it copies the chunk, or caps or drops
// it). The caller holds n.mu for writing.
func (n *memNode) saveUndo(c *memChunk, lo, hi int, ref bool) {
	hi = min(hi, n.syncedLen)
	if n.hasSnap || lo >= hi {
		return
	}
	old := c.buf[lo-c.start : hi-c.start : hi-c.start]
	if !ref {
		old = slices.Clone(old)
	}
	n.undo = append(n.undo, memUndo{off: lo, old: old})
	n.undoBytes += hi - lo + memUndoOverhead
	if n.undoBytes > n.syncedLen {
		// Enough undo to pay for keeping the synced content whole.
		n.snap = n.syncedContent()
		n.hasSnap = true
		n.undo, n.undoBytes = nil, 0
	}
}

// syncedContent returns the file's content as of its last Sync. The result
// must not be written to. The caller holds n.mu.
func (n *memNode) syncedContent() []byte {
	if n.hasSnap {
		return n.snap[:len(n.snap):len(n.snap)]
	}
	b := make([]byte, n.syncedLen)
	n.copyOut(b, 0)
	for i := len(n.undo) - 1; i >= 0; i-- {
		copy(b[n.undo[i].off:], n.undo[i].old)
	}
	return b
}

// shareChunks returns chunks for a crash clone holding the file's first k
// bytes in the file's own arrays, capped so that the clone's appends go
// elsewhere and pinned on both sides, so that neither side's overwrites
// reach the other. The caller holds n.mu for writing.
func (n *memNode) shareChunks(k int) []*memChunk {
	return n.shareChunksFrom(0, k)
}

// shareChunksFrom is shareChunks of the chunks that hold bytes [lo, k)
// only: the first one returned may start below lo.
func (n *memNode) shareChunksFrom(lo, k int) []*memChunk {
	var out []*memChunk
	for _, c := range n.chunks {
		if c.start >= k {
			break
		}
		if c.end() <= lo {
			continue
		}
		l := min(len(c.buf), k-c.start)
		c.pinAtLeast(l)
		nc := &memChunk{start: c.start, buf: c.buf[:l:l], alloc: c.alloc}
		nc.pin.Store(int64(l))
		out = append(out, nc)
	}
	return out
}

// allocated returns the bytes of the arrays the file's chunks hold. The
// caller holds n.mu.
func (n *memNode) allocated() int64 {
	var t int64
	for _, c := range n.chunks {
		t += int64(c.alloc)
	}
	return t
}

func (n *memNode) sync() {
	if n.noSync {
		return // see failSync
	}
	n.syncedLen, n.minSize = n.size, n.size
	n.undo, n.undoBytes = nil, 0
	n.snap, n.hasSnap = nil, false
	n.cut, n.cutSize, n.hasCut = nil, 0, false
}

// cutTail returns a node that reads as the file did just before its first
// truncation since its last Sync, from its synced size on (see cut), for
// a crash to take those bytes from; nil if that truncation cut no
// unsynced bytes. The caller holds n.mu.
func (n *memNode) cutTail() *memNode {
	if !n.hasCut || n.cutSize <= n.syncedLen {
		return nil
	}
	return &memNode{chunks: n.cut, size: n.cutSize}
}

// failSync records that a Sync of the file failed. On Linux a failed
// fsync(2) may leave the pages it failed to write marked clean, so that
// the next fsync succeeds without writing them: what was unsynced then is
// lost for good, though the file still reads it. The file therefore does
// not become durable again — every later Sync keeps its synced content as
// it was (stricter than Linux, which would write pages dirtied later: an
// application must not go on trusting a file whose sync failed) — until a
// truncation cuts off what the failed Sync lost (see cutLost): to empty,
// or to at most the synced size when the bytes below the cut read as the
// last Sync left them. A file whose Sync fails with nothing it could have
// lost — empty, or reading below its size as its last Sync left it (no
// page of it reads back other than the disk holds; an overwrite with the
// same bytes changed nothing) — is as one truncated to its own size
// right after: it is not marked, and the next Sync that succeeds makes it
// durable, as on Linux, whose next fsync commits the size and writes the
// pages dirtied since. The caller holds n.mu for writing.
func (n *memNode) failSync() {
	n.noSync = true
	n.cutLost(n.size)
}
