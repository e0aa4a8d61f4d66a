package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// A consumer's row is written by hand rather than by encoding/json's
// reflection: at 100,000 consumers a cycle, reflection cost half a second
// of CPU and most of the cycle's allocations. The output is byte for byte
// json.Marshal's (TestConsumerJSONIsMarshals fills every field, so a field
// added to Consumer and not here fails it).

// A consumer's row is stored in two parts (see migration 18): its
// settings, the fields that change only with its config or when it is
// created again, written only when they change; and its state, written
// every cycle. The settings are a prefix of Consumer's fields, so the
// two objects joined are json.Marshal's bytes.

// appendConsumerJSON appends json.Marshal(c) to b: its settings and its
// state as one object.
func appendConsumerJSON(b []byte, c *Consumer) ([]byte, error) {
	b, err := appendConsumerSettingsJSON(b, c)
	if err != nil {
		return b, err
	}
	b = b[:len(b)-1]
	start := len(b)
	if b, err = appendConsumerStateJSON(b, c, true); err != nil {
		return b, err
	}
	b[start] = ','
	return b, nil
}

// appendConsumerSettingsJSON appends the consumer's settings, the first
// of Consumer's fields up to Push, as an object.
func appendConsumerSettingsJSON(b []byte, c *Consumer) ([]byte, error) {
	var err error
	b = append(b, `{"stream":`...)
	b = appendString(b, c.Stream)
	b = append(b, `,"name":`...)
	b = appendString(b, c.Name)
	if c.Description != "" {
		b = append(b, `,"description":`...)
		b = appendString(b, c.Description)
	}
	b = append(b, `,"durable":`...)
	b = strconv.AppendBool(b, c.Durable)
	b = append(b, `,"created":`...)
	if b, err = appendTime(b, c.Created); err != nil {
		return b, err
	}
	if len(c.FilterSubjects) > 0 {
		b = append(b, `,"filter_subjects":`...)
		b = appendStrings(b, c.FilterSubjects)
	}
	b = append(b, `,"deliver_policy":`...)
	b = appendString(b, c.DeliverPolicy)
	b = append(b, `,"ack_policy":`...)
	b = appendString(b, c.AckPolicy)
	b = append(b, `,"replay_policy":`...)
	b = appendString(b, c.ReplayPolicy)
	b = append(b, `,"max_deliver":`...)
	b = strconv.AppendInt(b, int64(c.MaxDeliver), 10)
	b = append(b, `,"ack_wait_seconds":`...)
	if b, err = appendFloat(b, c.AckWaitSeconds); err != nil {
		return b, err
	}
	if len(c.BackOffSeconds) > 0 {
		b = append(b, `,"backoff_seconds":[`...)
		for i, f := range c.BackOffSeconds {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendFloat(b, f); err != nil {
				return b, err
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"max_ack_pending":`...)
	b = strconv.AppendInt(b, int64(c.MaxAckPending), 10)
	b = append(b, `,"push":`...)
	b = strconv.AppendBool(b, c.Push)
	return append(b, '}'), nil
}

// appendConsumerStateJSON appends the rest of the consumer's fields, the
// ones a cycle changes, as an object; its config only with config (a
// consumer's row keeps it apart).
func appendConsumerStateJSON(b []byte, c *Consumer, config bool) ([]byte, error) {
	var err error
	b = append(b, '{')
	if c.PushBound {
		b = append(b, `"push_bound":true,`...)
	}
	b = append(b, `"num_pending":`...)
	b = strconv.AppendUint(b, c.NumPending, 10)
	b = append(b, `,"num_ack_pending":`...)
	b = strconv.AppendInt(b, int64(c.NumAckPending), 10)
	b = append(b, `,"num_redelivered":`...)
	b = strconv.AppendInt(b, int64(c.NumRedelivered), 10)
	b = append(b, `,"num_waiting":`...)
	b = strconv.AppendInt(b, int64(c.NumWaiting), 10)
	b = append(b, `,"delivered":`...)
	if b, err = appendSequencePair(b, &c.Delivered); err != nil {
		return b, err
	}
	b = append(b, `,"ack_floor":`...)
	if b, err = appendSequencePair(b, &c.AckFloor); err != nil {
		return b, err
	}
	b = append(b, `,"paused":`...)
	b = strconv.AppendBool(b, c.Paused)
	if c.PauseUntil != nil {
		b = append(b, `,"pause_until":`...)
		if b, err = appendTime(b, *c.PauseUntil); err != nil {
			return b, err
		}
	}
	b = append(b, `,"delivered_per_sec":`...)
	if b, err = appendFloat(b, c.DeliveredPerSec); err != nil {
		return b, err
	}
	b = append(b, `,"acked_per_sec":`...)
	if b, err = appendFloat(b, c.AckedPerSec); err != nil {
		return b, err
	}
	b = append(b, `,"stalled":`...)
	b = strconv.AppendBool(b, c.Stalled)
	if c.StalledSince != nil {
		b = append(b, `,"stalled_since":`...)
		if b, err = appendTime(b, *c.StalledSince); err != nil {
			return b, err
		}
	}
	if c.Cluster != nil {
		b = append(b, `,"cluster":`...)
		if b, err = appendCluster(b, c.Cluster); err != nil {
			return b, err
		}
	}
	b = append(b, `,"health":`...)
	b = appendHealth(b, c.Health)
	b = append(b, `,"sampled_at":`...)
	if b, err = appendTime(b, c.SampledAt); err != nil {
		return b, err
	}
	if config && len(c.Config) > 0 {
		b = append(b, `,"config":`...)
		if b, err = appendCompactJSON(b, c.Config); err != nil {
			return b, fmt.Errorf("config: %w", err)
		}
	}
	if !c.ServerTime.IsZero() {
		b = append(b, `,"server_time":`...)
		if b, err = appendTime(b, c.ServerTime); err != nil {
			return b, err
		}
	}
	if c.Own {
		b = append(b, `,"own":true`...)
	}
	if c.Unread != nil {
		b = append(b, `,"unread":`...)
		if b, err = appendUnread(b, c.Unread); err != nil {
			return b, err
		}
	}
	b = append(b, `,"lag_state":`...)
	b = appendString(b, c.LagState)
	b = append(b, `,"arrival_per_second":`...)
	if b, err = appendFloat(b, c.ArrivalPerSec); err != nil {
		return b, err
	}
	b = append(b, `,"ack_per_second":`...)
	if b, err = appendFloat(b, c.AckPerSec); err != nil {
		return b, err
	}
	b = append(b, `,"drain_seconds":`...)
	if c.DrainSeconds == nil {
		b = append(b, "null"...)
	} else if b, err = appendFloat(b, *c.DrainSeconds); err != nil {
		return b, err
	}
	b = append(b, `,"lag_window_seconds":`...)
	if b, err = appendFloat(b, c.LagWindowSeconds); err != nil {
		return b, err
	}
	if c.DeletedAt != nil {
		b = append(b, `,"deleted_at":`...)
		if b, err = appendTime(b, *c.DeletedAt); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

func appendSequencePair(b []byte, p *SequencePair) ([]byte, error) {
	b = append(b, `{"consumer_seq":`...)
	b = strconv.AppendUint(b, p.ConsumerSeq, 10)
	b = append(b, `,"stream_seq":`...)
	b = strconv.AppendUint(b, p.StreamSeq, 10)
	if p.LastActive != nil {
		var err error
		b = append(b, `,"last_active":`...)
		if b, err = appendTime(b, *p.LastActive); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

func appendCluster(b []byte, c *Cluster) ([]byte, error) {
	b = append(b, '{')
	sep := func() {
		if b[len(b)-1] != '{' {
			b = append(b, ',')
		}
	}
	if c.Name != "" {
		b = append(b, `"name":`...)
		b = appendString(b, c.Name)
	}
	if c.Leader != "" {
		sep()
		b = append(b, `"leader":`...)
		b = appendString(b, c.Leader)
	}
	if len(c.Replicas) > 0 {
		sep()
		b = append(b, `"replicas":[`...)
		for i := range c.Replicas {
			r := &c.Replicas[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendString(b, r.Name)
			b = append(b, `,"current":`...)
			b = strconv.AppendBool(b, r.Current)
			b = append(b, `,"offline":`...)
			b = strconv.AppendBool(b, r.Offline)
			b = append(b, `,"active_seconds":`...)
			var err error
			if b, err = appendFloat(b, r.ActiveSeconds); err != nil {
				return b, err
			}
			if r.Unseen {
				b = append(b, `,"unseen":true`...)
			}
			b = append(b, `,"lag":`...)
			b = strconv.AppendUint(b, r.Lag, 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if c.RaftGroup != "" {
		sep()
		b = append(b, `"raft_group":`...)
		b = appendString(b, c.RaftGroup)
	}
	return append(b, '}'), nil
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendTime is time.Time's MarshalJSON, which refuses years outside
// 0-9999.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		return b, fmt.Errorf("time %v: year outside of range [0,9999]", t)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

// appendFloat is encoding/json's float64 encoding: NaN and infinities
// are an error, very small and large numbers in exponent form.
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, fmt.Errorf("json: unsupported value: %s", strconv.FormatFloat(f, 'g', -1, 64))
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 becomes e-9, as encoding/json writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

const hexDigits = "0123456789abcdef"

// appendString is encoding/json's string encoding, HTML escaped as
// json.Marshal does.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendHealth appends json.Marshal(h).
func appendHealth(b []byte, h Health) []byte {
	b = append(b, `{"level":`...)
	b = appendString(b, h.Level)
	if len(h.Reasons) > 0 {
		b = append(b, `,"reasons":`...)
		b = appendStrings(b, h.Reasons)
	}
	return append(b, '}')
}

// appendCompactJSON appends raw compacted, as json.Marshal writes a
// json.RawMessage; raw that is not JSON is an error.
func appendCompactJSON(b []byte, raw json.RawMessage) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return b, err
	}
	return append(b, buf.Bytes()...), nil
}
