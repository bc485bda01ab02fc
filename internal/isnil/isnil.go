// Package isnil tells whether a value handed to runnel through an
// interface is nil in effect: nil itself, or a nil pointer or func in a
// non-nil interface (a nil *runnel.Broker, a nil *vfs.MemFS, a nil
// producer.PartitionerFunc), whose methods would panic at their first
// use. The broker, the clients and vfs refuse such values where they are
// given, with their own typed errors, instead of panicking later.
package isnil

import "reflect"

// Value reports whether v is nil, or a nil pointer or func.
func Value(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Func:
		return rv.IsNil()
	}
	return false
}
