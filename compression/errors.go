package compression

import (
	"errors"
	"fmt"
	"strings"
)

// errPrefix starts every error message of this package.
const errPrefix = "runnel/compression: "

var (
	// ErrUnknownCodec reports a codec id outside 0..4 or a name that
	// ParseCodec does not know.
	ErrUnknownCodec = errors.New("runnel/compression: unknown codec")

	// ErrCorrupt reports compressed input that is malformed, truncated, has
	// a bad checksum, or is otherwise impossible to decode.
	ErrCorrupt = errors.New("runnel/compression: corrupt compressed data")

	// ErrTooLarge reports that decompressing would produce more bytes than
	// the limit passed to Codec.AppendDecode allows, or (from
	// Codec.AppendEncode) an input too large for the codec: snappy's
	// block holds at most 4 GiB.
	ErrTooLarge = errors.New("runnel/compression: decompressed data exceeds limit")

	// ErrInvalidLevel reports a compression level that the codec does
	// not have (see Codec.CheckLevel).
	ErrInvalidLevel = errors.New("runnel/compression: invalid compression level")
)

// Op values of an Error.
const (
	opEncode = "encode"
	opDecode = "decode"
)

// Error is the error type returned by Codec.AppendEncode,
// AppendEncodeLevel, CheckLevel and AppendDecode. It records which codec
// failed and in which direction; Err wraps one of the package's sentinel
// errors (ErrUnknownCodec, ErrCorrupt, ErrTooLarge, ErrInvalidLevel) and,
// where there is one, the underlying library's error, so errors.Is works
// on either.
type Error struct {
	// Codec is the codec the call was made on; it may be an invalid value
	// when Err wraps ErrUnknownCodec.
	Codec Codec
	// Op is "encode" or "decode".
	Op string
	// Err is the cause.
	Err error
}

// Error returns a message of the form
// "runnel/compression: gzip decode: corrupt compressed data: ...".
func (e *Error) Error() string {
	msg := "<nil>"
	if e.Err != nil {
		msg = strings.TrimPrefix(e.Err.Error(), errPrefix)
	}
	return errPrefix + e.Codec.String() + " " + e.Op + ": " + msg
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

// corrupt wraps cause, a library's decoding error, together with ErrCorrupt.
func corrupt(cause error) error {
	if cause == nil {
		return ErrCorrupt
	}
	return fmt.Errorf("%w: %w", ErrCorrupt, cause)
}

// corruptf builds an ErrCorrupt with a message of its own.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// tooLarge builds an ErrTooLarge that names the limit.
func tooLarge(limit int) error {
	return fmt.Errorf("%w of %d bytes", ErrTooLarge, limit)
}

// errEmpty is returned (as an ErrCorrupt) for empty input to a compressing
// codec: every encoder here writes at least a header, even for no data.
var errEmpty = corruptf("empty input")

// classify turns an error from a streaming decoder into this package's
// terms: ErrTooLarge (raised by readAppend) passes through, anything else is
// corruption, including truncation (io.ErrUnexpectedEOF).
func classify(err error) error {
	if errors.Is(err, ErrTooLarge) {
		return err
	}
	return corrupt(err)
}
