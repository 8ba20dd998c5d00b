// ehr-sync addition to FerretDB v1.24.2's handler (copied into internal/handler as ehrsync_projection.go
// by scripts/setup.sh; see scripts/ferretdb/README.md, "Projections").
//
// Upstream decodes every document a find returns in full and applies the projection afterwards: reading
// the version fields of 1,000 stored resources decodes 1,000 whole FHIR resources (~180 µs each). When
// the projection only includes top-level fields, and the filter and sort only look at those fields (or
// _id), the handler's filter, sort and projection give the same answer on documents that hold only those
// fields. Then the backend is asked for only those fields (QueryParams.EhrsyncFields), which SQLite reads
// out of the stored JSON without FerretDB decoding the rest.
//
// Also: when the backend applied the whole filter exactly (QueryResult.EhrsyncFilterApplied, string
// equalities and $in on top-level fields), the handler does not apply it again. Upstream's $in
// compares each document with every value of the list: reading 1,000 ids by $in made 1,000,000
// comparisons.

package handler

import (
	"strings"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/handler/common"
	"github.com/FerretDB/FerretDB/internal/types"
)

// maxProjectedFields bounds the select list (each field is two JSON extractions).
const maxProjectedFields = 32

// ehrsyncProjectedFields returns the top-level fields (always with _id) the backend may limit documents
// to for this find, or nil when the whole documents are needed.
func ehrsyncProjectedFields(projection, filter, sort *types.Document) []string {
	if projection == nil || projection.Len() == 0 || projection.Len() > maxProjectedFields {
		return nil
	}

	fields := []string{"_id"}
	included := map[string]bool{"_id": true}

	for _, k := range projection.Keys() {
		// Top-level names only; the backend checks that it can select each name (and reads whole
		// documents when it cannot).
		if k == "" || strings.ContainsAny(k, ".$") {
			return nil
		}

		v := projection.Map()[k]

		on, ok := inclusionValue(v)
		if !ok {
			return nil
		}

		if k == "_id" {
			continue // excluding _id is fine: the projection iterator removes it afterwards
		}

		if !on {
			return nil // an exclusion projection needs every other field
		}

		if !included[k] {
			included[k] = true
			fields = append(fields, k)
		}
	}

	if len(fields) == 1 {
		return nil // only _id: {_id: 0} or {_id: 1} alone is not worth a special case
	}

	if !keysWithin(filter, included) || !keysWithin(sort, included) {
		return nil
	}

	return fields
}

// inclusionValue reads a projection value: true/non-zero number includes, false/zero excludes; anything
// else (an operator document, a string) is not a plain projection.
func inclusionValue(v any) (on, ok bool) {
	switch v := v.(type) {
	case bool:
		return v, true
	case int32:
		return v != 0, true
	case int64:
		return v != 0, true
	case float64:
		return v != 0, true
	default:
		return false, false
	}
}

// keysWithin is true when every key of doc names an included top-level field (or a path inside one).
// Operators at the top level ($and, $or, $expr, ...) could look at anything: they are not.
func keysWithin(doc *types.Document, included map[string]bool) bool {
	if doc == nil {
		return true
	}

	for _, k := range doc.Keys() {
		if strings.HasPrefix(k, "$") {
			return false
		}

		top, _, _ := strings.Cut(k, ".")
		if !included[top] {
			return false
		}
	}

	return true
}

// ehrsyncFilterParams returns the find parameters the handler's iterators use: without the filter when
// the backend applied all of it exactly. Only when the backend saw the whole filter (nothing removed
// for pushdown, pushdown enabled) and the projection has no positional operator (which reads the filter).
func ehrsyncFilterParams(params *common.FindParams, qp *backends.QueryParams, res *backends.QueryResult, disabled bool) *common.FindParams {
	if disabled || !res.EhrsyncFilterApplied || params.Filter.Len() == 0 || qp.Filter.Len() != params.Filter.Len() {
		return params
	}

	if params.Projection != nil {
		for _, k := range params.Projection.Keys() {
			if strings.Contains(k, "$") {
				return params
			}
		}
	}

	p := *params
	p.Filter = nil

	return &p
}
