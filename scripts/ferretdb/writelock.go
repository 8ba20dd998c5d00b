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

// ehr-sync: one writer at a time per database, queued in Go.
//
// SQLite lets one transaction write a database file at a time. Upstream, concurrent writers (say five clients each
// inserting a batch) all begin a transaction and all but one get SQLITE_BUSY; SQLite's busy handler then sleeps
// (1, 2, 5, … up to 100 ms) and retries, so the lock is often free while every waiter sleeps. Upstream also
// marshals the documents to JSON inside the transaction, holding the lock for work that needs none.
// Writers now queue on a per-database token in Go (handed over at once when the holder finishes, and given up
// if the client's context ends while waiting), and marshal before they queue.

package sqlite

import (
	"context"
	"sync"
)

// writeTokens holds one token channel (capacity 1) per database name (a dropped database keeps its few bytes).
var writeTokens sync.Map

// acquireWrite waits for the database's write token; call the returned function to give it back.
func acquireWrite(ctx context.Context, dbName string) (func(), error) {
	v, _ := writeTokens.LoadOrStore(dbName, make(chan struct{}, 1))
	token := v.(chan struct{})

	select {
	case token <- struct{}{}:
		return func() { <-token }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
