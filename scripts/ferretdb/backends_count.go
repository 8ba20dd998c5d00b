// ehr-sync addition to FerretDB v1.24.2's backends package (copied into internal/backends as
// ehrsync_count.go by scripts/setup.sh; see scripts/ferretdb/README.md, "Counts").
//
// An optional capability of a backend's collection, so that the handler can ask for a count without
// changing the Collection interface that every backend implements.

package backends

import (
	"context"

	"github.com/FerretDB/FerretDB/internal/types"
)

// CountPushdownParams asks for the number of documents matching Filter, in groups by the top-level
// field GroupField (one group when it is empty), or with Explain for the plan of the count's query.
type CountPushdownParams struct {
	Filter     *types.Document
	GroupField string
	Explain    bool
}

// CountGroup is one group of a count: the group field's value (a string, or types.Null when the
// field is missing) and its number of documents (> 0).
type CountGroup struct {
	Key any
	N   int64
}

// CountPushdownResult holds the groups of a count, or its plan.
type CountPushdownResult struct {
	Groups []CountGroup
	Plan   *types.Array
}

type pushdownCounter interface {
	CountPushdown(context.Context, *CountPushdownParams) (*CountPushdownResult, error)
}

// CountPushdown counts through the backend when it can count this filter exactly; it returns nil
// (and no error) when it cannot, and the caller counts the documents itself.
func CountPushdown(ctx context.Context, c Collection, params *CountPushdownParams) (*CountPushdownResult, error) {
	if cc, ok := c.(*collectionContract); ok {
		c = cc.c
	}

	pc, ok := c.(pushdownCounter)
	if !ok {
		return nil, nil
	}

	return pc.CountPushdown(ctx, params)
}
