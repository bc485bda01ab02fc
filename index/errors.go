package index

import (
	"errors"
	"fmt"
)

var (
	// ErrIndexFull is returned by Append when the index holds as many entries
	// as its maxBytes allows; the segment should roll.
	ErrIndexFull = errors.New("runnel/index: index is full")
	// ErrCorrupt is matched (errors.Is) by every *CorruptError: the file's
	// contents break the index's invariants and the index must be rebuilt
	// from the log.
	ErrCorrupt = errors.New("runnel/index: corrupt index")
	// ErrInvalidEntry is returned by Append for an entry that is out of
	// order or out of range: a misuse by the caller, not a corrupt file.
	ErrInvalidEntry = errors.New("runnel/index: entry out of order or out of range")
	// ErrSealed is returned by Append on a sealed (read-only) index.
	ErrSealed = errors.New("runnel/index: index is sealed")
	// ErrInvalidArgument is matched by the errors of OpenOffset,
	// OpenTime and Unseal for arguments no index can have: a base offset
	// that is negative or leaves no room for relative offsets, or a
	// negative maxBytes. A misuse by the caller, not a corrupt file.
	ErrInvalidArgument = errors.New("runnel/index: invalid argument")
)

// CorruptError describes a corrupt index: the file (Path, empty for the
// pure decoders), the number of the first bad entry (counting from 0; for a
// file whose size is not a whole number of entries, the number of the
// partial entry) and what is wrong with it. It matches ErrCorrupt.
type CorruptError struct {
	Path   string
	Entry  int
	Reason string
}

// Error names the path, the entry number and the reason.
func (e *CorruptError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("runnel/index: corrupt index: entry %d: %s", e.Entry, e.Reason)
	}
	return fmt.Sprintf("runnel/index: corrupt index %s: entry %d: %s", e.Path, e.Entry, e.Reason)
}

// Unwrap returns ErrCorrupt, so that errors.Is(err, ErrCorrupt) holds.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }
