// Package prototest writes a small protobuf descriptor set, as
// `protoc --descriptor_set_out` would, and marshals messages of its types,
// for tests of protobuf decoding.
package prototest

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// fileDescriptor is shop.proto:
//
//	package shop;
//	message Item { string sku = 1; }
//	message Order { string order_id = 1; int64 quantity = 2; repeated Item items = 3; }
func fileDescriptor() *descriptorpb.FileDescriptorProto {
	field := func(name string, num int32, typ descriptorpb.FieldDescriptorProto_Type, label descriptorpb.FieldDescriptorProto_Label, typeName string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(num), Type: typ.Enum(), Label: label.Enum(),
			JsonName: proto.String(name)}
		if typeName != "" {
			f.TypeName = proto.String(typeName)
		}
		return f
	}
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
	return &descriptorpb.FileDescriptorProto{
		Name:    proto.String("shop.proto"),
		Package: proto.String("shop"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("Item"), Field: []*descriptorpb.FieldDescriptorProto{
				field("sku", 1, descriptorpb.FieldDescriptorProto_TYPE_STRING, opt, ""),
			}},
			{Name: proto.String("Order"), Field: []*descriptorpb.FieldDescriptorProto{
				field("order_id", 1, descriptorpb.FieldDescriptorProto_TYPE_STRING, opt, ""),
				field("quantity", 2, descriptorpb.FieldDescriptorProto_TYPE_INT64, opt, ""),
				field("items", 3, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, descriptorpb.FieldDescriptorProto_LABEL_REPEATED, ".shop.Item"),
			}},
		},
	}
}

// WriteDescriptorSet writes shop.proto's descriptor set into dir and
// returns its path.
func WriteDescriptorSet(t testing.TB, dir string) string {
	t.Helper()
	raw, err := proto.Marshal(&descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{fileDescriptor()}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "shop.pb")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Order marshals a shop.Order with one item.
func Order(t testing.TB, id string, quantity int64, sku string) []byte {
	t.Helper()
	fd, err := protodesc.NewFile(fileDescriptor(), nil)
	if err != nil {
		t.Fatal(err)
	}
	od, id2 := fd.Messages().ByName("Order"), fd.Messages().ByName("Item")
	item := dynamicpb.NewMessage(id2)
	item.Set(id2.Fields().ByName("sku"), protoreflect.ValueOfString(sku))
	m := dynamicpb.NewMessage(od)
	m.Set(od.Fields().ByName("order_id"), protoreflect.ValueOfString(id))
	m.Set(od.Fields().ByName("quantity"), protoreflect.ValueOfInt64(quantity))
	list := m.Mutable(od.Fields().ByName("items")).List()
	list.Append(protoreflect.ValueOfMessage(item))
	raw, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
