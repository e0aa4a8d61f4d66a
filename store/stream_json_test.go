package store

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestStreamJSONIsMarshals: a stream's row written by hand is
// json.Marshal's, byte for byte, with every field set and with none.
func TestStreamJSONIsMarshals(t *testing.T) {
	t.Parallel()
	var full Stream
	fill(t, reflect.ValueOf(&full).Elem(), "")
	floats := full
	floats.InPerSec, floats.BytesInPerSec, floats.Limits.MaxAgeSeconds = 1.5, 123456789012345678901234.0, 1e-9
	floats.Sources = []StreamSource{{Name: "a", Active: -time.Second}, {Name: "b", Lag: 3}}
	sparse := Stream{Name: "S", Subjects: []string{}, Health: Health{Level: HealthOK}, Cluster: &Cluster{RaftGroup: "g"},
		Mirror: &StreamSource{Name: "M", Active: -1}}
	for name, s := range map[string]Stream{"full": full, "floats": floats, "empty": {}, "sparse": sparse} {
		want, err := json.Marshal(&s)
		require.NoError(t, err, name)
		got, err := appendStreamJSON(nil, &s)
		require.NoError(t, err, name)
		require.Equal(t, string(want), string(got), name)
	}
}

// A stream's row is its JSON without its config, which is a column of
// its own; the stream is left as it was.
func TestStreamRowLeavesTheConfigOut(t *testing.T) {
	t.Parallel()
	var full Stream
	fill(t, reflect.ValueOf(&full).Elem(), "")
	full.Config = json.RawMessage(`{"name":"S"}`)
	got, split, err := appendStreamRow(nil, &full)
	require.NoError(t, err)
	require.Zero(t, split)
	require.Equal(t, json.RawMessage(`{"name":"S"}`), full.Config)
	without := full
	without.Config = nil
	want, err := json.Marshal(&without)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))
}

// TestStreamJSONRefusesWhatMarshalRefuses: NaN, infinities, years past
// 9999 and a config that is not JSON are errors, as for json.Marshal.
func TestStreamJSONRefusesWhatMarshalRefuses(t *testing.T) {
	t.Parallel()
	for name, s := range map[string]Stream{
		"nan":     {InPerSec: math.NaN()},
		"inf":     {Limits: StreamLimits{MsgsUsedPct: ptrTo(math.Inf(1))}},
		"year":    {Created: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"unread":  {Unread: &Unread{ReadAt: ptrTo(time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC))}},
		"config":  {Config: json.RawMessage(`{"a":`)},
		"replica": {Cluster: &Cluster{Replicas: []Replica{{ActiveSeconds: math.Inf(-1)}}}},
	} {
		_, err := json.Marshal(&s)
		require.Error(t, err, name)
		_, err = appendStreamJSON(nil, &s)
		require.Error(t, err, name)
	}
}

// BenchmarkStreamJSON encodes a stream's row as the sampler's look: by
// hand and by json.Marshal, side by side.
//
//	go test -tags sqlite_fts5 -run '^$' -bench StreamJSON -benchmem ./store
func BenchmarkStreamJSON(b *testing.B) {
	s := benchCycle(time.Now(), 1, 10).Streams[0]
	s.Config = nil
	s.Cluster = &Cluster{Name: "c", Leader: "n1", RaftGroup: "S-R3F-abc", Replicas: []Replica{
		{Name: "n2", Current: true, ActiveSeconds: 0.2}, {Name: "n3", Current: true, ActiveSeconds: 0.3}}}
	first, last := s.Created, s.SampledAt
	s.FirstTime, s.LastTime = &first, &last
	b.Run("by-hand", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = appendStreamJSON(buf[:0], &s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(&s); err != nil {
				b.Fatal(err)
			}
		}
	})
}
