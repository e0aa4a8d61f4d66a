package store

import (
	"go/build"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBuildWithoutTheFTS5TagStops checks that the file that stops an
// untagged build is part of the package only without the tag: built
// without it, the package names the tag instead of failing at run time.
func TestBuildWithoutTheFTS5TagStops(t *testing.T) {
	t.Parallel()
	files := func(tags ...string) []string {
		ctx := build.Default
		ctx.BuildTags = tags
		pkg, err := ctx.ImportDir(".", 0)
		require.NoError(t, err)
		return pkg.GoFiles
	}
	require.True(t, slices.Contains(files(), "fts5_required.go"), "an untagged build must stop at fts5_required.go")
	require.False(t, slices.Contains(files("sqlite_fts5"), "fts5_required.go"), "the tagged build must not include fts5_required.go")
}
