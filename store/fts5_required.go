//go:build !sqlite_fts5

package store

// The dead-letter search is an SQLite FTS5 index, which mattn/go-sqlite3
// compiles in only with the sqlite_fts5 build tag. Built without it,
// jetwatch would start and then fail its first migration ("no such
// module: fts5"), so the build stops here instead, with the fix in the
// name of what is missing:
//
//	go run -tags sqlite_fts5 ./cmd/jetwatch demo
//	go test -tags sqlite_fts5 -race -count=1 ./...
const _ = jetwatch_needs_the_build_tag_sqlite_fts5__see_README__go_run_tags_sqlite_fts5_cmd_jetwatch_demo
