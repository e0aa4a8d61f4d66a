package store

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// All SQL lives in store: no other package's code imports database/sql,
// the SQLite driver, or reaches the handle kept for tests.
func TestNoSQLOutsideStore(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	var offenders []string
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			// store itself, other modules (bench/...), and hidden folders.
			if rel == "store" || strings.HasPrefix(d.Name(), ".") || (rel != "." && fileExists(filepath.Join(path, "go.mod"))) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p == "database/sql" || p == "database/sql/driver" || strings.Contains(p, "go-sqlite3") {
				offenders = append(offenders, rel+" imports "+p)
			}
		}
		src, err := readFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(src, ".SQLForTests()") {
			offenders = append(offenders, rel+" calls SQLForTests")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("only %d files checked from %s: the walk is looking in the wrong place", checked, root)
	}
	if len(offenders) > 0 {
		t.Fatalf("SQL outside store (add a typed method to store instead):\n%s", strings.Join(offenders, "\n"))
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}
