package index

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

func TestFingerprintGroupsByShape(t *testing.T) {
	t.Parallel()
	require.Equal(t, "timeout after <n> ms calling <n>.<n>.<n>.<n>:<n>", Fingerprint("timeout after 300 ms calling 10.0.0.7:8080"))
	require.Equal(t, Fingerprint("timeout after 300 ms calling 10.0.0.7:8080"), Fingerprint("timeout after 12 ms  calling 10.0.3.9:9090"))
	require.Equal(t, "order ord-<n> not found", Fingerprint("order ord-123 not found"))
	require.Equal(t, "user <v> has no card <n>-<n>-<n>-<n>-<n>", Fingerprint(`user "ann" has no card 4f3a9c2e-1b2d-4c5e-8f90-123456789abc`))
	require.Equal(t, "card declined", Fingerprint("card declined\n"))
	require.NotEqual(t, Fingerprint("card declined"), Fingerprint("card expired"))
}
