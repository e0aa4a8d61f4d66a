// Package prototypes decodes protobuf payloads for display: it reads a
// descriptor set (the file `protoc --descriptor_set_out` writes, with
// --include_imports) and a map from subject patterns to message types,
// and turns a payload on a mapped subject into JSON. It is only used to
// show payloads; nothing decoded here is ever sent.
package prototypes

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/jetwatch/jetwatch/internal/natsname"
)

// recursionLimit bounds nesting while decoding: a payload is hostile input.
const recursionLimit = 64

// ErrConfig is wrapped by every refusal of a descriptor file or type map.
var ErrConfig = errors.New("protobuf types")

// Types maps subjects to message types.
type Types struct {
	rules []rule
}

type rule struct {
	pattern []string // tokens, with * and >
	desc    protoreflect.MessageDescriptor
}

// Load reads the descriptor set at path and the type map spec:
// comma-separated pattern=type pairs, e.g.
// "orders.*=shop.Order,payments.>=shop.Payment". Patterns are NATS subject
// filters, tried in the order given; the first match names the type.
// Every type must be in the descriptor set.
func Load(path, spec string) (*Types, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: read descriptor set: %w", ErrConfig, err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("%w: %s is not a descriptor set (write one with protoc --descriptor_set_out=FILE --include_imports): %w", ErrConfig, path, err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w (did protoc get --include_imports?)", ErrConfig, path, err)
	}
	return New(files, spec)
}

// New is Load with the descriptors already read.
func New(files interface {
	FindDescriptorByName(protoreflect.FullName) (protoreflect.Descriptor, error)
}, spec string) (*Types, error) {
	t := &Types{}
	for _, pair := range strings.Split(spec, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		pattern, typ, ok := strings.Cut(pair, "=")
		pattern, typ = strings.TrimSpace(pattern), strings.TrimSpace(typ)
		if !ok || pattern == "" || typ == "" {
			return nil, fmt.Errorf("%w: %q: write subject=type, e.g. orders.*=shop.Order", ErrConfig, pair)
		}
		if err := natsname.Filter(pattern); err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrConfig, pattern, err)
		}
		d, err := files.FindDescriptorByName(protoreflect.FullName(typ))
		if err != nil {
			return nil, fmt.Errorf("%w: type %s is not in the descriptor set (give the full name, package included): %w", ErrConfig, typ, err)
		}
		md, ok := d.(protoreflect.MessageDescriptor)
		if !ok {
			return nil, fmt.Errorf("%w: %s is not a message type", ErrConfig, typ)
		}
		t.rules = append(t.rules, rule{pattern: strings.Split(pattern, "."), desc: md})
	}
	if len(t.rules) == 0 {
		return nil, fmt.Errorf("%w: no subject=type pairs given", ErrConfig)
	}
	return t, nil
}

// Type is the message type subject maps to, or nil.
func (t *Types) Type(subject string) protoreflect.MessageDescriptor {
	if t == nil {
		return nil
	}
	toks := strings.Split(subject, ".")
	for _, r := range t.rules {
		if matches(r.pattern, toks) {
			return r.desc
		}
	}
	return nil
}

func matches(pattern, toks []string) bool {
	for i, p := range pattern {
		switch {
		case p == ">":
			return len(toks) > i
		case i >= len(toks):
			return false
		case p != "*" && p != toks[i]:
			return false
		}
	}
	return len(pattern) == len(toks)
}

// DecodeProto decodes data as the type subject maps to, as compact JSON
// with the .proto field names. ok is false when no type is mapped.
func (t *Types) DecodeProto(subject string, data []byte) (typeName string, jsonText []byte, ok bool, err error) {
	md := t.Type(subject)
	if md == nil {
		return "", nil, false, nil
	}
	typeName = string(md.FullName())
	m := dynamicpb.NewMessage(md)
	if err := (proto.UnmarshalOptions{RecursionLimit: recursionLimit}).Unmarshal(data, m); err != nil {
		return typeName, nil, true, err
	}
	if len(m.GetUnknown()) > 0 {
		return typeName, nil, true, errors.New("it has fields the type does not declare")
	}
	out, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return typeName, nil, true, err
	}
	return typeName, out, true, nil
}
