package log

import (
	"hash/maphash"
	"math"
	"math/bits"

	"github.com/cespare/xxhash/v2"
)

// The cleaner's key map (Kafka's SkimpyOffsetMap): a 128-bit hash of each
// key of the dirty section → the offset of its latest record there, in an
// open-addressing table of 24-byte slots (hash, offset) with linear
// probing, filled to at most 90% (Kafka's log.cleaner.io.buffer.load.factor).
//
// The map never sees the keys themselves, so two keys with one hash are
// one key to the cleaner: the older one's records would be removed as
// superseded. Kafka accepts that for its 128-bit MD5; so does this map,
// with the same width (see keyMap.lo and keyMap.hi). A 64-bit hash, as
// this map had before, makes a wrong removal rare, not unthinkable:
// n²/2⁶⁵ colliding pairs expected among n keys, some 3·10⁻⁶ per pass over
// ten million distinct keys.
type keyMap struct {
	slots []keySlot
	n     int // entries
	limit int // most entries
	seed  maphash.Seed
}

// keyHash is a key's 128-bit hash: lo places it in the table, hi tells
// apart the keys whose lo agree. lo is never 0, which marks an empty slot.
type keyHash struct{ lo, hi uint64 }

type keySlot struct {
	h      keyHash
	offset int64
}

// keySlotBytes is the size of a slot, what Options.CleanerMapBytes counts
// (Kafka's: a 16-byte MD5 and an 8-byte offset).
const keySlotBytes = 24

// DefaultCleanerMapBytes is the default of Options.CleanerMapBytes:
// Kafka's log.cleaner.dedupe.buffer.size.
const DefaultCleanerMapBytes = 128 << 20

// MinCleanerMapBytes is the smallest Options.CleanerMapBytes: two slots,
// one entry.
const MinCleanerMapBytes = 2 * keySlotBytes

// MaxCleanerMapBytes is the most memory a key map takes, whatever
// Options.CleanerMapBytes says: math.MaxInt32 bytes, as Kafka caps its
// cleaner's dedupe buffer at Int.MaxValue bytes. The cap lets the map's
// slots be counted in an int on 32-bit platforms too (where a larger map
// could not be made at all).
const MaxCleanerMapBytes = math.MaxInt32

// newKeyMap returns a map of at most maxBytes for a dirty section of want
// offsets: no larger than that section needs.
// maxBytes above MaxCleanerMapBytes counts as that.
func newKeyMap(maxBytes, want int64) *keyMap {
	n := keyMapSlots(maxBytes, want)
	return &keyMap{slots: make([]keySlot, n), limit: max(n*9/10, 1), seed: maphash.MakeSeed()}
}

// keyMapSlots is the number of slots of newKeyMap(maxBytes, want): at
// least 2, and few enough that their bytes are an int's on every platform.
func keyMapSlots(maxBytes, want int64) int {
	most := max(min(maxBytes, MaxCleanerMapBytes)/keySlotBytes, 2)
	// want is capped before it is scaled, so that no product wraps.
	return int(max(min(min(max(want, 1), most)*10/9+1, most), 2))
}

// lo is the first half of key's hash: its xxhash64 (0 taken as 1).
func (m *keyMap) lo(key []byte) uint64 {
	h := xxhash.Sum64(key)
	if testHookKeyHashLo != nil {
		h = testHookKeyHashLo(key)
	}
	return max(h, 1)
}

// hi is the second half: key's maphash under the map's own random seed.
// The map lives for one pass in memory, so hi need not be stable; the
// random seed also keeps anyone from choosing keys that collide in both
// halves. Lookups compute it only when lo matches an entry.
func (m *keyMap) hi(key []byte) uint64 { return maphash.Bytes(m.seed, key) }

// testHookKeyHashLo, when set (by tests), replaces the xxhash64 of lo:
// collisions on demand.
var testHookKeyHashLo func(key []byte) uint64

// home is lo's first slot: lo scaled to the table (Lemire's reduction,
// which needs no power-of-two size).
func (m *keyMap) home(lo uint64) int {
	i, _ := bits.Mul64(lo, uint64(len(m.slots)))
	return int(i)
}

func (m *keyMap) next(i int) int {
	if i++; i == len(m.slots) {
		return 0
	}
	return i
}

// put sets the offset of key. It returns false, changing nothing, when
// key is new and the map is full.
func (m *keyMap) put(key []byte, offset int64) bool {
	return m.putHash(keyHash{lo: m.lo(key), hi: m.hi(key)}, offset)
}

// putHash is put for a key of hash h.
func (m *keyMap) putHash(h keyHash, offset int64) bool {
	for i := m.home(h.lo); ; i = m.next(i) {
		s := &m.slots[i]
		if s.h == h {
			s.offset = offset
			return true
		}
		if s.h.lo == 0 {
			if m.n >= m.limit {
				return false
			}
			s.h, s.offset = h, offset
			m.n++
			return true
		}
	}
}

// get returns the offset of key, if the map holds it.
func (m *keyMap) get(key []byte) (int64, bool) {
	lo := m.lo(key)
	var hi uint64
	haveHi := false
	for i := m.home(lo); ; i = m.next(i) {
		s := &m.slots[i]
		if s.h.lo == 0 {
			return 0, false
		}
		if s.h.lo == lo {
			if !haveHi {
				hi, haveHi = m.hi(key), true
			}
			if s.h.hi == hi {
				return s.offset, true
			}
		}
	}
}
