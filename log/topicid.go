package log

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidTopicID is returned by TopicID.UnmarshalText for text that is
// not a topic ID.
var ErrInvalidTopicID = errors.New("runnel/log: invalid topic id")

// TopicID identifies a topic for its whole life, as Kafka's topic IDs do
// (KIP-516): a topic deleted and created again under the same name gets a
// new one, so that a client holding the old one can tell the two apart
// where the name cannot. The broker gives each topic one when it creates
// it, and keeps it across restarts. The zero TopicID stands for none
// (Kafka's ZERO_UUID).
type TopicID [16]byte

// topicIDText encodes topic IDs as Kafka writes them (Uuid.toString):
// URL-safe base64 without padding, 22 characters. Strict: a string whose
// last character has its unused bits set is refused, so that every ID has
// one spelling.
var topicIDText = base64.RawURLEncoding.Strict()

// NewTopicID returns a random (version 4) topic ID that is neither zero
// nor Kafka's reserved metadata topic ID (…0001), and whose text does not
// begin with '-', as Kafka's Uuid.randomUuid avoids it (it reads as an
// option on a command line).
func NewTopicID() TopicID {
	for {
		var id TopicID
		rand.Read(id[:]) // never fails (crypto/rand)
		id[6] = id[6]&0x0f | 0x40
		id[8] = id[8]&0x3f | 0x80
		if id != (TopicID{}) && id != (TopicID{15: 1}) && !strings.HasPrefix(id.String(), "-") {
			return id
		}
	}
}

// IsZero reports whether id is the zero TopicID: none.
func (id TopicID) IsZero() bool { return id == TopicID{} }

// String returns id as Kafka writes it: 22 characters of URL-safe base64.
func (id TopicID) String() string { return topicIDText.EncodeToString(id[:]) }

// MarshalText returns id's String form.
func (id TopicID) MarshalText() ([]byte, error) {
	return topicIDText.AppendEncode(nil, id[:]), nil
}

// UnmarshalText sets id from its String form. On error (ErrInvalidTopicID)
// id is unchanged.
func (id *TopicID) UnmarshalText(text []byte) error {
	if topicIDText.EncodedLen(len(id)) != len(text) {
		return fmt.Errorf("%w: %q is not 22 characters", ErrInvalidTopicID, text)
	}
	if bytes.ContainsAny(text, "\r\n") {
		// The base64 decoder skips them: 22 newlines would read as the
		// zero ID, shorter IDs as IDs of fewer bytes.
		return fmt.Errorf("%w: %q holds a line break", ErrInvalidTopicID, text)
	}
	var v TopicID
	if n, err := topicIDText.Decode(v[:], text); err != nil || n != len(v) {
		return fmt.Errorf("%w: %q: %d bytes, %v", ErrInvalidTopicID, text, n, err)
	}
	*id = v
	return nil
}
