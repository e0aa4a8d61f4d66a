package dlq

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSearchTextIsTheTextStartOfAPayload(t *testing.T) {
	t.Parallel()
	require.Equal(t, `{"order":"Müller ✓"}`, searchText([]byte(`{"order":"Müller ✓"}`)))
	require.Empty(t, searchText([]byte{0x00, 0xff, 0xfe, 0x10}), "binary payloads are not searched")
	require.Empty(t, searchText(nil))

	// A long payload is cut at maxIndexedText, and a cut through a
	// character drops that character, not the whole text.
	long := strings.Repeat("a", maxIndexedText-1) + "ü" + "tail"
	got := searchText([]byte(long))
	require.Equal(t, strings.Repeat("a", maxIndexedText-1), got)
	exact := strings.Repeat("b", maxIndexedText) + "more"
	require.Equal(t, strings.Repeat("b", maxIndexedText), searchText([]byte(exact)))
	// Bytes that are not UTF-8 past the cut do not matter.
	require.Len(t, searchText(append([]byte(strings.Repeat("c", maxIndexedText)), 0xff)), maxIndexedText)
}
