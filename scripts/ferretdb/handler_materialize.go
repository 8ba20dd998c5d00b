// Copyright 2021 FerretDB Inc.
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
//     http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

// ehr-sync: update and findAndModify read the documents they will write before they write any of them.
//
// Upstream writes each matched document while the statement's read iterator is still open, so every update in
// flight holds one of the pool's SQLite connections while it waits for the database's write token
// (ehrsync_writelock.go). With as many updates in flight as the pool has connections (100), all of them wait for
// the token while holding a connection, and the token's holder waits for a connection to write with: for ever.
// Seen in bench:fleet at 1,000 connections (186 writes and 15 reads stuck for minutes, FerretDB idle). Reading the
// matched documents first and closing the read, as upstream's delete already does ("close read transaction before
// starting write transaction"), breaks the cycle: a statement holds a connection only while it reads, or while it
// holds the token. The cost is that a multi-document update holds its matched documents in memory at once.

package handler

import (
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/iterator"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
)

// ehrsyncReadBeforeWrite consumes iter (closing it, and with it the query's SQLite connection) and returns an
// iterator over the documents it returned.
func ehrsyncReadBeforeWrite(iter types.DocumentsIterator) (types.DocumentsIterator, error) {
	docs, err := iterator.ConsumeValues(iter)
	if err != nil {
		return nil, lazyerrors.Error(err)
	}

	return iterator.Values(iterator.ForSlice(docs)), nil
}
