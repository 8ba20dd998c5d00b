// ehr-sync addition to FerretDB v1.24.2's SQLite backend (copied into internal/backends/sqlite as
// ehrsync_count.go by scripts/setup.sh; see scripts/ferretdb/README.md, "Counts").
//
// Why: upstream answers a count by decoding every matching document in Go (~3,000 documents/s), and
// the drivers' countDocuments is an aggregation whose $group holds every matched document in memory
// until the end: counting 254,000 stored resources took 90 s and took FerretDB to 14.8 GB of RSS.
// When the filter is exactly a pushed-down clause (pushdownWhere), SQLite counts the rows itself,
// from the index that serves the clause, without reading a document.

package sqlite

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/fsql"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
)

// CountPushdown implements backends.CountPushdown. It returns nil (and no error) when the filter or
// the group field is not one SQLite can count exactly, or when a group's value is not a string or
// missing; the handler then counts as upstream does.
func (c *collection) CountPushdown(ctx context.Context, params *backends.CountPushdownParams) (*backends.CountPushdownResult, error) {
	where, args, exact := pushdownWhere(params.Filter)
	if !exact || (params.GroupField != "" && !pushdownKey.MatchString(params.GroupField)) {
		return nil, nil
	}

	db := c.r.DatabaseGetExisting(ctx, c.dbName)
	if db == nil {
		return &backends.CountPushdownResult{}, nil
	}

	meta := c.r.CollectionGet(ctx, c.dbName, c.name)
	if meta == nil {
		return &backends.CountPushdownResult{}, nil
	}

	q := fmt.Sprintf(`SELECT COUNT(*) FROM %q%s`, meta.TableName, where)
	if params.GroupField != "" {
		expr := fieldExpression(params.GroupField)
		q = fmt.Sprintf(`SELECT %s, COUNT(*) FROM %q%s GROUP BY 1`, expr, meta.TableName, where)
	}

	if params.Explain {
		return explainCount(ctx, db, q, args)
	}

	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, lazyerrors.Error(err)
	}
	defer rows.Close()

	res := new(backends.CountPushdownResult)

	for rows.Next() {
		var n int64
		var key any = types.Null

		if params.GroupField == "" {
			err = rows.Scan(&n)
		} else {
			var text *string
			if err = rows.Scan(&text, &n); err == nil && text != nil {
				// The sjson text of a string is a JSON string; anything else (numbers, dates, documents)
				// needs the document's type schema to decode, so the handler counts those itself.
				var s string
				if json.Unmarshal([]byte(*text), &s) != nil {
					return nil, nil
				}

				key = s
			}
		}

		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		if n > 0 {
			res.Groups = append(res.Groups, backends.CountGroup{Key: key, N: n})
		}
	}

	if err = rows.Err(); err != nil {
		return nil, lazyerrors.Error(err)
	}

	return res, nil
}

// explainCount returns the SQLite plan of a count query, in the form Explain uses.
func explainCount(ctx context.Context, db *fsql.DB, q string, args []any) (*backends.CountPushdownResult, error) {
	rows, err := db.QueryContext(ctx, `EXPLAIN QUERY PLAN `+q, args...)
	if err != nil {
		return nil, lazyerrors.Error(err)
	}
	defer rows.Close()

	plan := types.MakeArray(0)

	for rows.Next() {
		var id, parent, notused int32
		var detail string

		if err = rows.Scan(&id, &parent, &notused, &detail); err != nil {
			return nil, lazyerrors.Error(err)
		}

		plan.Append(fmt.Sprintf("id=%d parent=%d notused=%d detail=%s", id, parent, notused, detail))
	}

	if err = rows.Err(); err != nil {
		return nil, lazyerrors.Error(err)
	}

	return &backends.CountPushdownResult{Plan: plan}, nil
}
