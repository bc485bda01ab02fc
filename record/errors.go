package record

import (
	"errors"
	"fmt"
)

var (
	// ErrCorrupt is matched by every error about malformed batch or record
	// bytes: bad length, magic, CRC, varint, count.
	ErrCorrupt = errors.New("runnel/record: corrupt batch")
	// ErrTruncated is matched (together with ErrCorrupt) when the input
	// ends before the batch it starts does: a torn write, or a read that
	// cut a batch.
	ErrTruncated = errors.New("runnel/record: truncated batch")
	// ErrTooLarge is returned by Builder.Finish (and AppendTo) for a
	// batch whose length would not fit the batch's 32-bit length field.
	ErrTooLarge = errors.New("runnel/record: batch too large")
)

// CorruptError describes malformed bytes and where they are. Package record
// knows only the position in the bytes it was given; the segment layer fills
// in Path and the file position.
type CorruptError struct {
	Path     string // file, when known
	Position int64  // byte position of the batch in the file (or input)
	Reason   string // what is wrong
	Err      error  // an underlying cause (ErrTruncated, a compression error), may be nil
}

// Error names the file (when known), the position and the reason, and
// the cause's message after it.
func (e *CorruptError) Error() string {
	s := "runnel/record: corrupt batch"
	if e.Path != "" {
		s += " in " + e.Path
	}
	s += fmt.Sprintf(" at position %d: %s", e.Position, e.Reason)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns ErrCorrupt and the cause, so errors.Is matches both.
func (e *CorruptError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrCorrupt}
	}
	return []error{ErrCorrupt, e.Err}
}

func corrupt(pos int64, reason string) error {
	return &CorruptError{Position: pos, Reason: reason}
}

func truncated(pos int64, reason string) error {
	return &CorruptError{Position: pos, Reason: reason, Err: ErrTruncated}
}
