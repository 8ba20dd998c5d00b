// ehr-sync addition to FerretDB v1.24.2's SQLite backend (copied into internal/backends/sqlite by
// scripts/setup.sh before the build; see scripts/ferretdb/README.md).
//
// Why: upstream pushes a filter down to SQLite only when it is exactly {_id: <string|ObjectID>}, and
// even then writes the _id as `_ferretdb_sjson->'$._id'` while the unique _id index (like every index
// made by createIndexes) is on `_ferretdb_sjson->"_id"`. SQLite matches index expressions by their
// text, so every lookup, update and delete was a full table scan (measured: 164 ms for one _id at
// 20,000 documents). This builder writes conditions in the index's own text, for every top-level
// equality and $in on strings/ObjectIDs, so SQLite can SEARCH an index instead of SCANning.
//
// Pushdown is a pre-filter: the handler still applies the whole filter to what SQLite returns, so a
// pushed-down condition must only ever keep a superset of the matching documents. Strings and
// ObjectIDs have one sjson text each, so equality of texts is equality of values. One narrowing is
// knowingly accepted: a field holding an array that contains the value is not found through a
// pushed-down condition (MongoDB would match it). _id can never be an array; ehr-sync never queries
// array-valued fields by equality (its queried fields are ids, types, names and statuses).

package sqlite

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// pushdownKey is a top-level field name that is safe to quote the way index creation does (%q).
var pushdownKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// maxInValues bounds the IN list (SQLite's default limit of host parameters is 32766).
const maxInValues = 10000

// fieldExpression is the expression an index on a top-level field is built on (metadata.Registry.IndexesCreate).
func fieldExpression(field string) string {
	return fmt.Sprintf("%s->%q", metadata.DefaultColumn, field)
}

// pushdownValue returns the sjson text of a value that can be compared by text, or false.
func pushdownValue(v any) (string, bool) {
	switch v.(type) {
	case string, types.ObjectID:
		return string(must.NotFail(sjson.MarshalSingleValue(v))), true
	default:
		return "", false
	}
}

// prepareWhereClause returns a WHERE clause (with a leading space) and its arguments for the parts of
// the filter SQLite can evaluate through an index, or "" when there are none.
func prepareWhereClause(filter *types.Document) (string, []any) {
	clause, args, _ := pushdownWhere(filter)
	return clause, args
}

// pushdownWhere is prepareWhereClause that also says whether the clause is the whole filter: every key
// pushed down, with string values only (an ObjectID's sjson text is its hex string, so a condition on
// one is exact only together with the handler's type check). Counts use an exact clause on its own
// (ehrsync_count.go); the narrowing for arrays described above applies to them as to queries.
func pushdownWhere(filter *types.Document) (string, []any, bool) {
	if filter == nil || filter.Len() == 0 {
		return "", nil, true
	}

	var conds []string
	var args []any

	exact := true

	for _, key := range filter.Keys() {
		if !pushdownKey.MatchString(key) {
			exact = false
			continue // operators ($or, $and, ...), dotted paths, odd names: left to the handler
		}

		v := must.NotFail(filter.Get(key))

		if text, ok := pushdownValue(v); ok {
			conds = append(conds, fieldExpression(key)+" = ?")
			args = append(args, text)
			exact = exact && isString(v)

			continue
		}

		// {field: {$in: [v1, v2, ...]}} with only strings/ObjectIDs, or {field: {$eq: v}}.
		doc, ok := v.(*types.Document)
		if !ok || doc.Len() != 1 {
			exact = false
			continue
		}

		if eq, err := doc.Get("$eq"); err == nil {
			if text, ok := pushdownValue(eq); ok {
				conds = append(conds, fieldExpression(key)+" = ?")
				args = append(args, text)
				exact = exact && isString(eq)
			} else {
				exact = false
			}

			continue
		}

		in, err := doc.Get("$in")
		if err != nil {
			exact = false
			continue
		}

		arr, ok := in.(*types.Array)
		if !ok || arr.Len() == 0 || arr.Len() > maxInValues {
			exact = false
			continue
		}

		texts := make([]any, 0, arr.Len())
		for i := 0; i < arr.Len(); i++ {
			v := must.NotFail(arr.Get(i))
			text, ok := pushdownValue(v)
			if !ok {
				texts = nil
				break
			}

			exact = exact && isString(v)
			texts = append(texts, text)
		}

		if texts == nil {
			exact = false
			continue
		}

		placeholders := strings.TrimSuffix(strings.Repeat("?, ", len(texts)), ", ")
		conds = append(conds, fmt.Sprintf("%s IN (%s)", fieldExpression(key), placeholders))
		args = append(args, texts...)
	}

	if len(conds) == 0 {
		return "", nil, exact
	}

	return " WHERE " + strings.Join(conds, " AND "), args, exact
}

func isString(v any) bool {
	_, ok := v.(string)
	return ok
}
