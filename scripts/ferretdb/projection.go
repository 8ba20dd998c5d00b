// ehr-sync addition to FerretDB v1.24.2's SQLite backend (copied into internal/backends/sqlite as
// ehrsync_projection.go by scripts/setup.sh; see scripts/ferretdb/README.md, "Projections").
//
// When the handler says a find needs only some top-level fields (QueryParams.EhrsyncFields, decided in
// the handler's ehrsync_projection.go), SQLite extracts them from the stored sjson text and FerretDB
// decodes a document of those fields only, instead of the whole stored document. The stored sjson is
// {"$s": {"p": {<field>: <type>, ...}, "$k": [<field order>]}, <field>: <value>, ...}: each wanted
// field's type and value are extracted, with the key order, and put back together as a small sjson
// document that the standard decoder reads.

package sqlite

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
)

// projectedColumn names the one column a projected query selects: for a large document, a JSON array of
// the key order, then the type and the value of each wanted field (JSON null for both when the document
// lacks it); for a small one, the stored document itself (projectedDocument tells them apart).
const projectedColumn = "ehrsync_fields"

// Below this many bytes of stored text (plus projectedBytesPerField per wanted field) a document is
// decoded whole: extracting and rebuilding the fields costs about as much as decoding a small document
// (measured: 10,000 connection documents of ~1.3 KB, 12 fields wanted: 1.1-1.3 s extracted against
// 0.9 s whole; 2 KB+ FHIR resources, 2 fields wanted: 65 µs each extracted against 260 µs whole).
const (
	projectedMinBytes      = 1024
	projectedBytesPerField = 64
)

// projection is what a projected query selects and how its rows are read back.
type projection struct {
	fields []string
	at     map[string]int // a field's place in fields (and so in the selected array)
}

// newProjection returns the projection of these top-level fields, or nil (read whole documents) when
// there are none or one is not a name that is safe to quote in a JSON path (pushdownKey).
func newProjection(fields []string) *projection {
	if len(fields) == 0 {
		return nil
	}

	at := make(map[string]int, len(fields))

	for i, f := range fields {
		if !pushdownKey.MatchString(f) {
			return nil
		}

		at[f] = i
	}

	return &projection{fields: fields, at: at}
}

// prepareProjectedSelectClause is prepareSelectClause for a query that needs only p's fields.
func prepareProjectedSelectClause(table, comment string, capped bool, p *projection) string {
	fields := p.fields

	if comment != "" {
		comment = strings.ReplaceAll(comment, "/*", "/ *")
		comment = strings.ReplaceAll(comment, "*/", "* /")
		comment = `/* ` + comment + ` */`
	}

	// One json_extract with every path: SQLite parses the stored text once and returns a JSON array of
	// the results (null for a path the document lacks).
	paths := []string{`'$."$s"."$k"'`}
	for _, f := range fields {
		paths = append(paths, fmt.Sprintf(`'$."$s".p."%s"'`, f), fmt.Sprintf(`'$."%s"'`, f))
	}

	sel := fmt.Sprintf(
		`CASE WHEN octet_length(%[1]s) >= %[2]d THEN json_extract(%[1]s, %[3]s) ELSE %[1]s END AS %[4]s`,
		metadata.DefaultColumn, projectedMinBytes+projectedBytesPerField*len(fields), strings.Join(paths, ", "), projectedColumn,
	)

	if capped {
		return fmt.Sprintf(`SELECT %s %s, %s FROM %q`, comment, metadata.RecordIDColumn, sel, table)
	}

	return fmt.Sprintf(`SELECT %s %s FROM %q`, comment, sel, table)
}

// document rebuilds the document of the wanted fields, in the stored key order, from the projected
// column's JSON array; a small document, selected whole (an sjson object), is decoded whole.
func (p *projection) document(b []byte) (*types.Document, error) {
	if len(b) > 0 && b[0] == '{' {
		return sjson.Unmarshal(b)
	}

	var parts []json.RawMessage
	if err := json.Unmarshal(b, &parts); err != nil {
		return nil, lazyerrors.Error(err)
	}

	if len(parts) != 1+2*len(p.fields) {
		return nil, lazyerrors.Errorf("projected row has %d parts for %d fields", len(parts), len(p.fields))
	}

	var order []string
	if err := json.Unmarshal(parts[0], &order); err != nil {
		return nil, lazyerrors.Error(err)
	}

	var props, keys, values bytes.Buffer

	for _, k := range order {
		i, ok := p.at[k]
		if !ok {
			continue
		}

		typ, val := parts[1+2*i], parts[2+2*i]
		if bytes.Equal(typ, []byte("null")) {
			continue // not in this document (a stored null has the type {"t":"null"})
		}

		name := strconv.Quote(k) // checked names: Go and JSON quoting agree
		if keys.Len() > 0 {
			props.WriteByte(',')
			keys.WriteByte(',')
		}

		props.WriteString(name + ":")
		props.Write(typ)
		keys.WriteString(name)
		values.WriteString("," + name + ":")
		values.Write(val)
	}

	var doc bytes.Buffer
	doc.WriteString(`{"$s":{"p":{`)
	doc.Write(props.Bytes())
	doc.WriteString(`},"$k":[`)
	doc.Write(keys.Bytes())
	doc.WriteString(`]}`)
	doc.Write(values.Bytes())
	doc.WriteString(`}`)

	res, err := sjson.Unmarshal(doc.Bytes())
	if err != nil {
		return nil, lazyerrors.Error(err)
	}

	return res, nil
}
