package cache

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
)

// codecMagic starts every value written by Encode.
const codecMagic = "pcv\x00"

// Encode serialises v as JSON behind a header naming kind and the format version of v, so
// that Decode recognises values of another kind or version as misses.
func Encode(kind string, version int, v any) ([]byte, error) {
	if kind == "" || version < 0 {
		return nil, errors.New("encode: kind must be set and version not negative")
	}
	payload, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding %s v%d: %w", kind, version, err)
	}
	b := make([]byte, 0, len(codecMagic)+2*binary.MaxVarintLen64+len(kind)+len(payload))
	b = append(b, codecMagic...)
	b = binary.AppendUvarint(b, uint64(len(kind)))
	b = append(b, kind...)
	b = binary.AppendUvarint(b, uint64(version))
	return append(b, payload...), nil
}

// Decode fills the value v points to from data written by Encode with the same kind and
// version, and reports whether it did. Anything else — garbage, another kind, another
// version, a payload that does not fit v — is a miss: ok is false and *v is untouched.
func Decode(data []byte, kind string, version int, v any) (ok bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || version < 0 {
		return false
	}
	rest, ok := decodeHeader(data, kind, uint64(version))
	if !ok {
		return false
	}
	fresh := reflect.New(rv.Elem().Type())
	if json.Unmarshal(rest, fresh.Interface()) != nil {
		return false
	}
	rv.Elem().Set(fresh.Elem())
	return true
}

// decodeHeader checks the header and returns the payload after it.
func decodeHeader(data []byte, kind string, version uint64) ([]byte, bool) {
	rest, ok := bytes.CutPrefix(data, []byte(codecMagic))
	if !ok {
		return nil, false
	}
	n, w := binary.Uvarint(rest)
	if w <= 0 || n != uint64(len(kind)) || uint64(len(rest)-w) < n {
		return nil, false
	}
	rest = rest[w:]
	if string(rest[:n]) != kind {
		return nil, false
	}
	rest = rest[n:]
	got, w := binary.Uvarint(rest)
	if w <= 0 || got != version {
		return nil, false
	}
	return rest[w:], true
}
