// Package ensure creates the streams and buckets jetwatch (and the
// services using its package) need, and never lowers what an operator
// raised: an existing stream or bucket keeps its replicas and limits, and
// a setting is only ever raised to what the caller asks.
package ensure

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// KeyValue opens the bucket cfg names, creating it with cfg when it is
// missing. An existing bucket gets cfg's replicas and history when they
// are higher than its own, and cfg's TTL when cfg sets one; nothing else
// of its configuration changes.
func KeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Another replica (or a service) created it meanwhile.
			kv, err = js.KeyValue(ctx, cfg.Bucket)
		}
		return kv, err
	}
	if err != nil {
		return nil, err
	}
	s, err := js.Stream(ctx, "KV_"+cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("look up bucket %s: %w", cfg.Bucket, err)
	}
	sc := s.CachedInfo().Config
	want := sc
	want.Replicas = max(sc.Replicas, cfg.Replicas)
	want.MaxMsgsPerSubject = max(sc.MaxMsgsPerSubject, int64(cfg.History))
	if cfg.TTL > 0 {
		want.MaxAge = cfg.TTL
	}
	if want.Replicas == sc.Replicas && want.MaxMsgsPerSubject == sc.MaxMsgsPerSubject && want.MaxAge == sc.MaxAge {
		return kv, nil
	}
	if _, err := js.UpdateStream(ctx, want); err != nil {
		return nil, fmt.Errorf("raise the settings of bucket %s (allow $JS.API.STREAM.UPDATE.KV_%s, or raise them yourself): %w",
			cfg.Bucket, cfg.Bucket, err)
	}
	return kv, nil
}

// Stream creates sc when no stream of that name exists. An existing stream
// gets sc's replicas when they are higher than its own, and those of sc's
// subjects that none of its own covers (a newer jetwatch captures more);
// nothing else of its configuration changes.
func Stream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) error {
	s, err := js.Stream(ctx, sc.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, sc)
		if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("create stream %s (allow publishing to $JS.API.STREAM.CREATE.%s, or create it yourself on %v): %w",
				sc.Name, sc.Name, sc.Subjects, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up stream %s: %w", sc.Name, err)
	}
	have := s.CachedInfo().Config
	want := have
	want.Replicas = max(have.Replicas, sc.Replicas)
	want.Subjects = slices.Clone(have.Subjects)
	for _, subject := range sc.Subjects {
		if !slices.ContainsFunc(have.Subjects, func(h string) bool { return covers(h, subject) }) {
			want.Subjects = append(want.Subjects, subject)
		}
	}
	if want.Replicas == have.Replicas && len(want.Subjects) == len(have.Subjects) {
		return nil
	}
	if _, err := js.UpdateStream(ctx, want); err != nil {
		return fmt.Errorf("raise the replicas of stream %s to %d and capture %v (allow $JS.API.STREAM.UPDATE.%s, or change it yourself): %w",
			sc.Name, want.Replicas, want.Subjects, sc.Name, err)
	}
	return nil
}

// covers says whether subject filter a matches everything filter b does.
func covers(a, b string) bool {
	at, bt := strings.Split(a, "."), strings.Split(b, ".")
	for i, t := range at {
		switch {
		case t == ">":
			return true
		case i >= len(bt):
			return false
		case t == "*" && bt[i] != ">":
		case t != bt[i]:
			return false
		}
	}
	return len(at) == len(bt)
}
