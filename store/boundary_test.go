package store_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// databaseImports are the packages that talk to a database. Only package
// store imports them, so that a new backend is one file there and no
// other package learns a backend's concrete type or its connection.
var databaseImports = []string{"database/sql", "github.com/jackc/pgx", "modernc.org/sqlite"}

// boundaryExempt may reach a database on their own: the PostgreSQL test
// harness makes throwaway databases.
var boundaryExempt = map[string]bool{"store/pgtest": true}

func TestOnlyStoreTalksToTheDatabase(t *testing.T) {
	root := ".."
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "store" || boundaryExempt[rel] || rel == "testdata" || strings.HasSuffix(rel, "/testdata") ||
				(strings.HasPrefix(d.Name(), ".") && rel != ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			for _, db := range databaseImports {
				if p == db || strings.HasPrefix(p, db+"/") {
					t.Errorf("%s imports %s: only package store talks to the database (add what you need to a store interface)", rel, p)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("checked %d files outside store: the walk missed the module", checked)
	}
}
