// ehr-sync addition to FerretDB v1.24.2's sjson package (copied into internal/handler/sjson as
// ehrsync_fast.go by scripts/setup.sh; see scripts/ferretdb/README.md, "Decoding").
//
// Upstream decodes a stored document with encoding/json one value at a time: the document into a map of
// raw messages, then every value again with a new json.Decoder, every nested document and array again
// at each level. That was about half of FerretDB's CPU when reading many documents. fastUnmarshal reads
// the same sjson text with a small scanner and builds the same values through the same sjson types. It
// handles the types ehr-sync stores (documents, arrays, strings, doubles, 32/64-bit integers, booleans,
// nulls, dates); for anything else, or anything it does not expect (a type it does not handle, an
// unknown schema key, a malformed value, bytes around the document), it gives up and Unmarshal decodes
// the document the upstream way, errors included. So its answers are upstream's, or none.

package sjson

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// ehrsyncFastDisabled turns fastUnmarshal off (the differential test compares both ways).
var ehrsyncFastDisabled bool

// fastUnmarshal is Unmarshal for the common case; ok is false when Unmarshal must decode data itself.
func fastUnmarshal(data []byte) (*types.Document, bool) {
	if ehrsyncFastDisabled {
		return nil, false
	}

	fields, ok := scanObject(data)
	if !ok {
		return nil, false
	}

	rawSchema, ok := fields["$s"]
	if !ok {
		return nil, false
	}

	sch, ok := scanSchema(rawSchema)
	if !ok {
		return nil, false
	}

	delete(fields, "$s")

	if len(sch.Keys) != len(fields) {
		return nil, false
	}

	d := must.NotFail(types.NewDocument())

	for _, key := range sch.Keys {
		b, ok := fields[key]
		if !ok {
			return nil, false
		}

		v, ok := fastValue(b, sch.Properties[key])
		if !ok {
			return nil, false
		}

		d.Set(key, v)
	}

	return d, true
}

// fastValue is unmarshalSingleValue for the handled types.
func fastValue(b []byte, sch *elem) (any, bool) {
	if bytes.Equal(b, []byte("null")) {
		return fromSJSON(new(nullType)), true
	}

	if sch == nil {
		return nil, false
	}

	switch sch.Type {
	case elemTypeObject:
		if sch.Schema == nil {
			return nil, false
		}

		fields, ok := scanObject(b)
		if !ok {
			return nil, false
		}

		if len(fields) == 0 {
			return fromSJSON(&documentType{}), true
		}

		if len(sch.Schema.Keys) != len(fields) {
			return nil, false
		}

		td := must.NotFail(types.NewDocument())

		for _, key := range sch.Schema.Keys {
			raw, ok := fields[key]
			if !ok {
				return nil, false
			}

			v, ok := fastValue(raw, sch.Schema.Properties[key])
			if !ok {
				return nil, false
			}

			td.Set(key, v)
		}

		d := documentType(*td)

		return fromSJSON(&d), true

	case elemTypeArray:
		if sch.Items == nil {
			return nil, false
		}

		items, ok := scanArray(b)
		if !ok || len(items) != len(sch.Items) {
			return nil, false
		}

		ta := types.MakeArray(len(items))

		for i, raw := range items {
			v, ok := fastValue(raw, sch.Items[i])
			if !ok {
				return nil, false
			}

			ta.Append(v)
		}

		a := arrayType(*ta)

		return fromSJSON(&a), true

	case elemTypeString:
		s, ok := scanString(b)
		if !ok {
			return nil, false
		}

		v := stringType(s)

		return fromSJSON(&v), true

	case elemTypeDouble:
		if !isJSONNumber(b) {
			return nil, false
		}

		f, err := strconv.ParseFloat(string(b), 64)
		if err != nil {
			return nil, false
		}

		v := doubleType(f)

		return fromSJSON(&v), true

	case elemTypeInt:
		if !isJSONNumber(b) {
			return nil, false
		}

		n, err := strconv.ParseInt(string(b), 10, 32)
		if err != nil {
			return nil, false
		}

		v := int32Type(n)

		return fromSJSON(&v), true

	case elemTypeLong, elemTypeDate:
		if !isJSONNumber(b) {
			return nil, false
		}

		n, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			return nil, false
		}

		if sch.Type == elemTypeDate {
			v := dateTimeType(time.UnixMilli(n))
			return fromSJSON(&v), true
		}

		v := int64Type(n)

		return fromSJSON(&v), true

	case elemTypeBool:
		var v boolType

		switch string(b) {
		case "true":
			v = true
		case "false":
			v = false
		default:
			return nil, false
		}

		return fromSJSON(&v), true

	default:
		return nil, false // binData, objectId, regex, timestamp: upstream's decoder
	}
}

// scanSchema reads a document schema {"p": {...}, "$k": [...]} (no other keys, as upstream's decoder
// requires).
func scanSchema(b []byte) (*schema, bool) {
	fields, ok := scanObject(b)
	if !ok {
		return nil, false
	}

	var sch schema

	for k, v := range fields {
		switch k {
		case "p":
			props, ok := scanObject(v)
			if !ok {
				return nil, false
			}

			sch.Properties = make(map[string]*elem, len(props))

			for name, raw := range props {
				e, ok := scanElem(raw)
				if !ok {
					return nil, false
				}

				sch.Properties[name] = e
			}
		case "$k":
			items, ok := scanArray(v)
			if !ok {
				return nil, false
			}

			sch.Keys = make([]string, len(items))

			for i, raw := range items {
				if sch.Keys[i], ok = scanString(raw); !ok {
					return nil, false
				}
			}
		default:
			return nil, false
		}
	}

	return &sch, true
}

// scanElem reads one value's schema {"t": ..., "$s"?: ..., "i"?: [...]}; the keys of the types it does
// not handle ("o", "s") make it give up.
func scanElem(b []byte) (*elem, bool) {
	fields, ok := scanObject(b)
	if !ok {
		return nil, false
	}

	var e elem

	for k, v := range fields {
		switch k {
		case "t":
			t, ok := scanString(v)
			if !ok {
				return nil, false
			}

			e.Type = elemType(t)
		case "$s":
			s, ok := scanSchema(v)
			if !ok {
				return nil, false
			}

			e.Schema = s
		case "i":
			items, ok := scanArray(v)
			if !ok {
				return nil, false
			}

			e.Items = make([]*elem, len(items))

			for i, raw := range items {
				if e.Items[i], ok = scanElem(raw); !ok {
					return nil, false
				}
			}
		default:
			return nil, false
		}
	}

	return &e, true
}

// scanObject splits b, exactly one JSON object and nothing around it, into its members' raw values (the
// last of a repeated key wins, as with encoding/json).
func scanObject(b []byte) (map[string][]byte, bool) {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return nil, false
	}

	fields := make(map[string][]byte)
	i := skipSpace(b, 1)

	if i == len(b)-1 {
		return fields, true
	}

	for {
		end := skipString(b, i)
		if end < 0 {
			return nil, false
		}

		key, ok := scanString(b[i:end])
		if !ok {
			return nil, false
		}

		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return nil, false
		}

		i = skipSpace(b, i+1)

		end = skipValue(b, i)
		if end < 0 {
			return nil, false
		}

		fields[key] = b[i:end]

		var last bool
		if i, last, ok = nextItem(b, end); !ok {
			return nil, false
		}

		if last {
			return fields, true
		}
	}
}

// nextItem moves past the separator after an item that ends at end: to the next item, or (last) to the
// end of b, whose last byte closes the object or array; ok is false for anything else.
func nextItem(b []byte, end int) (next int, last, ok bool) {
	i := skipSpace(b, end)
	if i >= len(b) {
		return 0, false, false
	}

	switch b[i] {
	case ',':
		return skipSpace(b, i+1), false, true
	case '}', ']':
		// the closer was checked against the opener by the caller (b's first and last bytes)
		return i, true, i == len(b)-1
	default:
		return 0, false, false
	}
}

// scanArray splits b, exactly one JSON array, into its items' raw values.
func scanArray(b []byte) ([][]byte, bool) {
	if len(b) < 2 || b[0] != '[' || b[len(b)-1] != ']' {
		return nil, false
	}

	var items [][]byte

	i := skipSpace(b, 1)
	if i == len(b)-1 {
		return [][]byte{}, true
	}

	for {
		end := skipValue(b, i)
		if end < 0 {
			return nil, false
		}

		items = append(items, b[i:end])

		var last, ok bool
		if i, last, ok = nextItem(b, end); !ok {
			return nil, false
		}

		if last {
			return items, true
		}
	}
}

// scanString decodes b, exactly one JSON string: directly when it has no escapes and is valid UTF-8 without
// control characters, otherwise through encoding/json.
func scanString(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}

	inner := b[1 : len(b)-1]
	plain := utf8.Valid(inner)

	for _, c := range inner {
		if c == '\\' || c == '"' || c < 0x20 {
			plain = false
			break
		}
	}

	if plain {
		return string(inner), true
	}

	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return "", false
	}

	return s, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}

	return i
}

// skipString returns the index just after the JSON string that starts at b[i], or -1.
func skipString(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}

	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}

	return -1
}

// skipValue returns the index just after the JSON value that starts at b[i], or -1. Nested values are
// matched by bracket depth only: each is scanned strictly when it is decoded.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}

	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0

		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end := skipString(b, j)
				if end < 0 {
					return -1
				}

				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}

		return -1
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\r' && b[j] != '\t' {
			j++
		}

		if j == i {
			return -1
		}

		return j
	}
}

// isJSONNumber reports whether b is exactly a number in JSON's grammar (which strconv is more lenient than).
func isJSONNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}

	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}

	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}

		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}

	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}

		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}

		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}

	return i == len(b)
}
