package prototypes_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/prototypes"
	"github.com/jetwatch/jetwatch/internal/prototypes/prototest"
)

// TestDecodeByDescriptorSet builds a descriptor set in Go, as protoc
// would write it, loads it with a type map, and decodes a payload.
func TestDecodeByDescriptorSet(t *testing.T) {
	t.Parallel()
	path := prototest.WriteDescriptorSet(t, t.TempDir())
	types, err := prototypes.Load(path, "orders.*=shop.Order, orders.>=shop.Item")
	require.NoError(t, err)

	payload := prototest.Order(t, "ord-7", 3, "book")
	typ, text, ok, err := types.DecodeProto("orders.created", payload)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "shop.Order", typ)
	var got map[string]any
	require.NoError(t, json.Unmarshal(text, &got))
	// protojson writes 64-bit integers as strings.
	require.Equal(t, map[string]any{"order_id": "ord-7", "quantity": "3", "items": []any{map[string]any{"sku": "book"}}}, got)

	require.Equal(t, "shop.Item", string(types.Type("orders.eu.created").FullName()), "the first pattern that matches wins")
	_, _, ok, _ = types.DecodeProto("payments.x", payload)
	require.False(t, ok)

	_, _, ok, err = types.DecodeProto("orders.created", []byte{0xff, 0xff, 0xff})
	require.True(t, ok)
	require.Error(t, err)
	_, _, ok, err = types.DecodeProto("orders.created", []byte{0x78, 0x01}) // field 15, not declared
	require.True(t, ok)
	require.ErrorContains(t, err, "fields the type does not declare")
}

func TestLoadRefusesBadConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := prototest.WriteDescriptorSet(t, dir)
	junk := filepath.Join(dir, "junk")
	require.NoError(t, os.WriteFile(junk, []byte("not a descriptor set \xff\xff"), 0o600))
	for _, tc := range []struct{ path, spec string }{
		{filepath.Join(dir, "missing"), "a=shop.Order"},
		{junk, "a=shop.Order"},
		{path, "orders.*"},
		{path, "orders.*=shop.Nope"},
		{path, "orders..x=shop.Order"},
		{path, "orders.*=shop"},
		{path, ""},
	} {
		_, err := prototypes.Load(tc.path, tc.spec)
		require.ErrorIs(t, err, prototypes.ErrConfig, "%+v", tc)
	}
}
