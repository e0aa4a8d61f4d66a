package store

import (
	"database/sql"
	"errors"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// ErrValue is wrapped when a rawTx argument cannot be stored as given (an
// unsigned integer above the largest SQLite integer, a type the driver
// does not take).
var ErrValue = errors.New("value does not fit the index")

// IsRowError says whether err is SQLite refusing one row for what it
// holds: a constraint, a type mismatch, a value too big, or an argument
// that cannot be bound. Any other failure (a full disk, a lock, an I/O
// error, a read-only or damaged file, a closed database) is the database
// failing as a whole: a writer must retry it, never skip past the row, or
// it would lose rows that are fine.
func IsRowError(err error) bool {
	if errors.Is(err, ErrValue) {
		return true
	}
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case sqlite3.ErrConstraint, sqlite3.ErrMismatch, sqlite3.ErrTooBig:
		return true
	}
	return false
}

// Explain says in an operator's words what a failure to write means and
// what to do about it, for the failures SQLite names; "" for others. It
// never repeats SQL or file names, so it may be shown on a page.
func Explain(err error) string {
	if errors.Is(err, ErrValue) {
		return "one of its values does not fit the index (a number above 9223372036854775807, or a type it does not take)"
	}
	if errors.Is(err, sql.ErrConnDone) {
		return "jetwatch's database connection is closed (jetwatch is stopping)"
	}
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return ""
	}
	switch se.Code {
	case sqlite3.ErrConstraint:
		if se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey || se.ExtendedCode == sqlite3.ErrConstraintUnique {
			return "the index already holds a row with this id, so the index and its position disagree: `jetwatch reindex` rebuilds the index"
		}
		return "one of its values breaks a rule of the index"
	case sqlite3.ErrTooBig:
		return "one of its values is too big for the index"
	case sqlite3.ErrMismatch:
		return "one of its values has a type the index does not take"
	case sqlite3.ErrFull:
		return "the disk holding jetwatch's database is full: free some space (indexing resumes by itself)"
	case sqlite3.ErrBusy, sqlite3.ErrLocked:
		return "jetwatch's database is locked by another process: stop that process (indexing resumes by itself)"
	case sqlite3.ErrReadonly, sqlite3.ErrPerm, sqlite3.ErrCantOpen, sqlite3.ErrAuth:
		return "jetwatch's database cannot be written: check the data directory's owner and permissions, and that its disk is not read-only"
	case sqlite3.ErrIoErr:
		return "the disk failed while reading or writing jetwatch's database: check the disk"
	case sqlite3.ErrCorrupt, sqlite3.ErrNotADB:
		return "jetwatch's database file is damaged: stop jetwatch, delete the file and start again to rebuild the index from JetStream"
	case sqlite3.ErrNomem:
		return "SQLite ran out of memory"
	}
	return ""
}
