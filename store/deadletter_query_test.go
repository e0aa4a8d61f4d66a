package store

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNATSGlobMatchesAtLeastThePattern(t *testing.T) {
	t.Parallel()
	require.Equal(t, "orders.*.paid", natsGlob("orders.*.paid"))
	require.Equal(t, "orders.*", natsGlob("orders.>"))
	require.Equal(t, "a[?]b[[]", natsGlob("a?b["))
}
