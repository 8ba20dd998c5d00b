// ehr-sync addition to FerretDB v1.24.2's handler (copied into internal/handler as ehrsync_count.go by
// scripts/setup.sh; see scripts/ferretdb/README.md, "Counts").
//
// The count command, and the aggregations drivers send for countDocuments ([{$match}, {$group: {_id: 1,
// n: {$sum: 1}}}]) and for a count per value of one field ({$group: {_id: "$field", n: {$sum: 1}}}),
// are answered by the backend's CountPushdown when it can count the filter exactly; otherwise as upstream.

package handler

import (
	"context"
	"math"
	"strings"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/handler/common"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/iterator"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// countPipeline is a pipeline that only counts: an optional $match, then a $group whose _id is a
// constant or "$field" (top level) and whose one other field is {$sum: 1}.
type countPipeline struct {
	filter     *types.Document
	groupField string // "" when the group _id is the constant groupID
	groupID    any
	countField string
	countInt64 bool // {$sum: int64(1)}
}

// parseCountPipeline recognises a counting pipeline in the aggregate command's raw stages.
func parseCountPipeline(stages []any) (*countPipeline, bool) {
	var p countPipeline

	switch len(stages) {
	case 1:
	case 2:
		match, ok := stages[0].(*types.Document)
		if !ok || match.Len() != 1 || match.Command() != "$match" {
			return nil, false
		}

		if p.filter, ok = must.NotFail(match.Get("$match")).(*types.Document); !ok {
			return nil, false
		}
	default:
		return nil, false
	}

	stage, ok := stages[len(stages)-1].(*types.Document)
	if !ok || stage.Len() != 1 || stage.Command() != "$group" {
		return nil, false
	}

	group, ok := must.NotFail(stage.Get("$group")).(*types.Document)
	if !ok || group.Len() != 2 || group.Keys()[0] != "_id" {
		return nil, false
	}

	switch id := must.NotFail(group.Get("_id")).(type) {
	case string:
		if strings.HasPrefix(id, "$") {
			p.groupField = strings.TrimPrefix(id, "$")
			if p.groupField == "" || strings.ContainsAny(p.groupField, ".$") {
				return nil, false
			}
		} else {
			p.groupID = id
		}
	case int32, int64, float64, types.NullType:
		p.groupID = id
	default:
		return nil, false
	}

	p.countField = group.Keys()[1]
	if strings.HasPrefix(p.countField, "$") || strings.Contains(p.countField, ".") {
		return nil, false
	}

	acc, ok := must.NotFail(group.Get(p.countField)).(*types.Document)
	if !ok || acc.Len() != 1 || acc.Command() != "$sum" {
		return nil, false
	}

	switch one := must.NotFail(acc.Get("$sum")).(type) {
	case int32:
		ok = one == 1
	case int64:
		ok, p.countInt64 = one == 1, true
	default:
		ok = false
	}

	return &p, ok
}

// countPipelinePushdown answers a counting pipeline through the backend; false when it does not apply.
func countPipelinePushdown(ctx context.Context, c backends.Collection, stages []any) (types.DocumentsIterator, bool, error) {
	p, ok := parseCountPipeline(stages)
	if !ok {
		return nil, false, nil
	}

	res, err := backends.CountPushdown(ctx, c, &backends.CountPushdownParams{Filter: p.filter, GroupField: p.groupField})
	if err != nil {
		return nil, false, lazyerrors.Error(err)
	}

	if res == nil {
		return nil, false, nil
	}

	docs := make([]*types.Document, 0, len(res.Groups))

	for _, g := range res.Groups {
		id := g.Key
		if p.groupField == "" {
			id = p.groupID
		}

		// $sum of int32 ones is an int32 while it fits, as in MongoDB.
		var n any = g.N
		if !p.countInt64 && g.N <= math.MaxInt32 {
			n = int32(g.N)
		}

		docs = append(docs, must.NotFail(types.NewDocument("_id", id, p.countField, n)))
	}

	return iterator.Values(iterator.ForSlice(docs)), true, nil
}

// countCommandPushdown answers the count command through the backend; false when it does not apply.
func countCommandPushdown(ctx context.Context, c backends.Collection, params *common.CountParams) (int32, bool, error) {
	if params.Skip != 0 || params.Limit != 0 {
		return 0, false, nil
	}

	res, err := backends.CountPushdown(ctx, c, &backends.CountPushdownParams{Filter: params.Filter})
	if err != nil {
		return 0, false, lazyerrors.Error(err)
	}

	if res == nil {
		return 0, false, nil
	}

	var n int64
	for _, g := range res.Groups {
		n += g.N
	}

	if n > math.MaxInt32 {
		return 0, false, nil
	}

	return int32(n), true, nil
}

// explainCountPushdown returns the plan of the backend's count when the explained command is a count
// it answers (count without skip/limit, or a counting pipeline), or nil.
func explainCountPushdown(ctx context.Context, c backends.Collection, params *common.ExplainParams) (*types.Document, error) {
	q := &backends.CountPushdownParams{Explain: true}

	switch {
	case params.Aggregate:
		p, ok := parseCountPipeline(params.StagesDocs)
		if !ok {
			return nil, nil
		}

		q.Filter, q.GroupField = p.filter, p.groupField
	case params.Command.Command() == "count" && params.Skip == 0 && params.Limit == 0:
		// The count command's filter is its "query" (ExplainParams.Filter reads "filter").
		if v, err := params.Command.Get("query"); err == nil {
			filter, ok := v.(*types.Document)
			if !ok {
				return nil, nil
			}

			q.Filter = filter
		}
	default:
		return nil, nil
	}

	res, err := backends.CountPushdown(ctx, c, q)
	if err != nil {
		return nil, lazyerrors.Error(err)
	}

	if res == nil || res.Plan == nil {
		return nil, nil
	}

	return must.NotFail(types.NewDocument("Plan", res.Plan)), nil
}
