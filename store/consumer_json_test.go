package store

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fill sets every field reachable from v to a value that is not zero,
// strings to ones that need escaping, so that a field the hand-written
// encoding leaves out, or writes differently, shows.
func fill(t *testing.T, v reflect.Value, seed string) {
	t.Helper()
	switch v.Type() {
	case reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Date(2026, 12, 1, 12, 30, 45, 123456789, time.UTC)))
		return
	case reflect.TypeFor[json.RawMessage]():
		v.Set(reflect.ValueOf(json.RawMessage(`{ "durable_name": "c",  "ack_wait": 30000000000 }`)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(seed + ` "quoted" \ <b>&amp; tab	nl` + "\n\x01\x7f\b\f é \u2028\u2029 \xff")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(-7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(math.MaxUint64 >> 1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(0.0000001234)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), seed)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		fill(t, v.Index(0), seed+"0")
		fill(t, v.Index(1), seed+"1")
		if v.Type().Elem().Kind() == reflect.Float64 {
			v.Index(1).SetFloat(3e21)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			fill(t, v.Field(i), seed+v.Type().Field(i).Name)
		}
	default:
		t.Fatalf("fill: no value for a %s: teach fill and appendConsumerJSON this field", v.Type())
	}
}

// TestConsumerJSONIsMarshals: a consumer's row written by hand is
// json.Marshal's, byte for byte, with every field set and with none.
func TestConsumerJSONIsMarshals(t *testing.T) {
	t.Parallel()
	var full Consumer
	fill(t, reflect.ValueOf(&full).Elem(), "")
	floats := full
	floats.AckWaitSeconds, floats.DeliveredPerSec, floats.AckedPerSec = 30, 1.5, 123456789012345678901234.0
	floats.ArrivalPerSec, floats.AckPerSec, floats.LagWindowSeconds = -0.25, 1e-9, 0
	sparse := Consumer{Stream: "S", Name: "c", Health: Health{Level: HealthOK}, Cluster: &Cluster{RaftGroup: "g"}}
	for name, c := range map[string]Consumer{"full": full, "floats": floats, "empty": {}, "sparse": sparse} {
		want, err := json.Marshal(&c)
		require.NoError(t, err, name)
		got, err := appendConsumerJSON(nil, &c)
		require.NoError(t, err, name)
		require.Equal(t, string(want), string(got), name)
	}
}

// TestConsumerJSONRefusesWhatMarshalRefuses: NaN, infinities and years
// past 9999 are errors, as they are for json.Marshal.
func TestConsumerJSONRefusesWhatMarshalRefuses(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]Consumer{
		"nan":      {AckPerSec: math.NaN()},
		"inf":      {DeliveredPerSec: math.Inf(1)},
		"drain":    {DrainSeconds: ptrTo(math.Inf(-1))},
		"year":     {Created: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"replicas": {Cluster: &Cluster{Replicas: []Replica{{ActiveSeconds: math.NaN()}}}},
	} {
		_, err := json.Marshal(&c)
		require.Error(t, err, name)
		_, err = appendConsumerJSON(nil, &c)
		require.Error(t, err, name)
	}
}

func ptrTo[T any](v T) *T { return &v }
