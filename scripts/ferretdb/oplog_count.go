// ehr-sync addition to FerretDB v1.24.2's oplog decorator (copied into internal/backends/decorators/oplog
// as ehrsync_count.go by scripts/setup.sh; see scripts/ferretdb/README.md, "Counts").
//
// The handler's collections are wrapped by this decorator; a count writes nothing to the oplog, so it
// goes straight to the backend's collection.

package oplog

import (
	"context"

	"github.com/FerretDB/FerretDB/internal/backends"
)

// CountPushdown implements backends.CountPushdown by forwarding to the decorated collection.
func (c *collection) CountPushdown(ctx context.Context, params *backends.CountPushdownParams) (*backends.CountPushdownResult, error) {
	return backends.CountPushdown(ctx, c.origC, params)
}
