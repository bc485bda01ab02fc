package log

import "math/bits"

// The cleaner's key map (Kafka's SkimpyOffsetMap): the xxhash of each key
// of the dirty section → the offset of its latest record there, in an
// open-addressing table of 16-byte slots (hash, offset) with linear
// probing, filled to at most 90% (Kafka's log.cleaner.io.buffer.load.factor).
// A key hashing to 0 is stored as 1, the value that marks an empty slot
// otherwise: like any 64-bit collision, it merges two keys, as Kafka's
// cleaner accepts for its hash.
type keyMap struct {
	slots []keySlot
	mask  uint64
	n     int // entries
	limit int // most entries
}

type keySlot struct {
	hash   uint64 // 0: empty
	offset int64
}

// keySlotBytes is the size of a slot, what Options.CleanerMapBytes counts.
const keySlotBytes = 16

// DefaultCleanerMapBytes is the default of Options.CleanerMapBytes:
// Kafka's log.cleaner.dedupe.buffer.size.
const DefaultCleanerMapBytes = 128 << 20

// minCleanerMapBytes is the smallest Options.CleanerMapBytes: two slots,
// one entry.
const minCleanerMapBytes = 2 * keySlotBytes

// newKeyMap returns a map of at most maxBytes for a dirty section of want
// offsets: no larger than that section needs.
func newKeyMap(maxBytes, want int64) *keyMap {
	most := uint64(max(maxBytes/keySlotBytes, 2))
	most = 1 << (bits.Len64(most) - 1) // a power of two, at most maxBytes
	need := uint64(max(want, 1))*10/9 + 1
	n := uint64(2)
	for n < need && n < most {
		n <<= 1
	}
	return &keyMap{slots: make([]keySlot, n), mask: n - 1, limit: max(int(n*9/10), 1)}
}

func slotHash(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

// put sets the offset of hash h. It returns false, changing nothing, when
// h is new and the map is full.
func (m *keyMap) put(h uint64, offset int64) bool {
	h = slotHash(h)
	for i := h & m.mask; ; i = (i + 1) & m.mask {
		s := &m.slots[i]
		if s.hash == h {
			s.offset = offset
			return true
		}
		if s.hash == 0 {
			if m.n >= m.limit {
				return false
			}
			s.hash, s.offset = h, offset
			m.n++
			return true
		}
	}
}

// get returns the offset of hash h, if the map holds it.
func (m *keyMap) get(h uint64) (int64, bool) {
	h = slotHash(h)
	for i := h & m.mask; ; i = (i + 1) & m.mask {
		s := &m.slots[i]
		if s.hash == h {
			return s.offset, true
		}
		if s.hash == 0 {
			return 0, false
		}
	}
}
