package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/prototypes/prototest"
)

// TestProtoFlags loads --proto-descriptors with --proto-types, and
// refuses one without the other or a type the set lacks, saying what to
// give.
func TestProtoFlags(t *testing.T) {
	t.Parallel()
	path := prototest.WriteDescriptorSet(t, t.TempDir())
	parse := func(args ...string) *config {
		cfg, err := parseFlags("serve", args, func(string) string { return "" }, &bytes.Buffer{})
		require.NoError(t, err)
		return cfg
	}
	p, err := parse().protoTypes()
	require.NoError(t, err)
	require.Nil(t, p, "neither given: no protobuf decoding")

	p, err = parse("--proto-descriptors", path, "--proto-types", "orders.*=shop.Order").protoTypes()
	require.NoError(t, err)
	typ, text, ok, err := p.DecodeProto("orders.created", prototest.Order(t, "o-1", 2, "pen"))
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "shop.Order", typ)
	require.Contains(t, string(text), `"order_id":"o-1"`)

	_, err = parse("--proto-types", "orders.*=shop.Order").protoTypes()
	require.ErrorContains(t, err, "--proto-types needs --proto-descriptors FILE")
	_, err = parse("--proto-descriptors", path).protoTypes()
	require.ErrorContains(t, err, "--proto-descriptors needs --proto-types")
	_, err = parse("--proto-descriptors", path, "--proto-types", "orders.*=shop.Nope").protoTypes()
	require.ErrorContains(t, err, "type shop.Nope is not in the descriptor set")
}
