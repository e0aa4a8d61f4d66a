package store

import (
	"fmt"
	"strconv"
)

// A stream's row is written by hand, as a consumer's is: encoding/json's
// reflection over 10,000 streams cost about 0.1 s of a cycle's CPU. The
// output is json.Marshal's byte for byte (TestStreamJSONIsMarshals fills
// every field, so a field added to Stream and not here fails it).

// appendStreamJSON appends json.Marshal(s) to b.
func appendStreamJSON(b []byte, s *Stream) ([]byte, error) {
	return appendStreamFields(b, s, true)
}

// appendStreamFields appends json.Marshal(s) to b, or, without config,
// what it gives with s.Config empty: a stream's row, whose config is a
// column of its own.
func appendStreamFields(b []byte, s *Stream, config bool) ([]byte, error) {
	var err error
	b = append(b, `{"name":`...)
	b = appendString(b, s.Name)
	if s.Description != "" {
		b = append(b, `,"description":`...)
		b = appendString(b, s.Description)
	}
	b = append(b, `,"subjects":`...)
	if s.Subjects == nil {
		b = append(b, "null"...)
	} else {
		b = appendStrings(b, s.Subjects)
	}
	b = append(b, `,"retention":`...)
	b = appendString(b, s.Retention)
	b = append(b, `,"storage":`...)
	b = appendString(b, s.Storage)
	b = append(b, `,"replicas":`...)
	b = strconv.AppendInt(b, int64(s.Replicas), 10)
	b = append(b, `,"created":`...)
	if b, err = appendTime(b, s.Created); err != nil {
		return b, err
	}
	b = append(b, `,"messages":`...)
	b = strconv.AppendUint(b, s.Messages, 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendUint(b, s.Bytes, 10)
	b = append(b, `,"first_seq":`...)
	b = strconv.AppendUint(b, s.FirstSeq, 10)
	b = append(b, `,"last_seq":`...)
	b = strconv.AppendUint(b, s.LastSeq, 10)
	if s.FirstTime != nil {
		b = append(b, `,"first_ts":`...)
		if b, err = appendTime(b, *s.FirstTime); err != nil {
			return b, err
		}
	}
	if s.LastTime != nil {
		b = append(b, `,"last_ts":`...)
		if b, err = appendTime(b, *s.LastTime); err != nil {
			return b, err
		}
	}
	b = append(b, `,"num_deleted":`...)
	b = strconv.AppendUint(b, s.NumDeleted, 10)
	b = append(b, `,"num_subjects":`...)
	b = strconv.AppendUint(b, s.NumSubjects, 10)
	b = append(b, `,"consumer_count":`...)
	b = strconv.AppendInt(b, int64(s.ConsumerCount), 10)
	b = append(b, `,"limits":`...)
	if b, err = appendStreamLimits(b, &s.Limits); err != nil {
		return b, err
	}
	if s.Cluster != nil {
		b = append(b, `,"cluster":`...)
		if b, err = appendCluster(b, s.Cluster); err != nil {
			return b, err
		}
	}
	b = append(b, `,"in_per_sec":`...)
	if b, err = appendFloat(b, s.InPerSec); err != nil {
		return b, err
	}
	b = append(b, `,"bytes_in_per_sec":`...)
	if b, err = appendFloat(b, s.BytesInPerSec); err != nil {
		return b, err
	}
	b = append(b, `,"health":`...)
	b = appendHealth(b, s.Health)
	b = append(b, `,"sampled_at":`...)
	if b, err = appendTime(b, s.SampledAt); err != nil {
		return b, err
	}
	if config && len(s.Config) > 0 {
		b = append(b, `,"config":`...)
		if b, err = appendCompactJSON(b, s.Config); err != nil {
			return b, fmt.Errorf("config: %w", err)
		}
	}
	if s.Mirror != nil {
		b = append(b, `,"mirror":`...)
		b = appendStreamSource(b, s.Mirror)
	}
	if len(s.Sources) > 0 {
		b = append(b, `,"sources":[`...)
		for i := range s.Sources {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendStreamSource(b, &s.Sources[i])
		}
		b = append(b, ']')
	}
	if s.Own {
		b = append(b, `,"own":true`...)
	}
	if s.Unread != nil {
		b = append(b, `,"unread":`...)
		if b, err = appendUnread(b, s.Unread); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

func appendStreamLimits(b []byte, l *StreamLimits) ([]byte, error) {
	var err error
	b = append(b, `{"max_msgs":`...)
	b = strconv.AppendInt(b, l.MaxMsgs, 10)
	b = append(b, `,"max_bytes":`...)
	b = strconv.AppendInt(b, l.MaxBytes, 10)
	b = append(b, `,"max_age_seconds":`...)
	if b, err = appendFloat(b, l.MaxAgeSeconds); err != nil {
		return b, err
	}
	b = append(b, `,"max_msg_size":`...)
	b = strconv.AppendInt(b, int64(l.MaxMsgSize), 10)
	b = append(b, `,"max_msgs_per_subject":`...)
	b = strconv.AppendInt(b, l.MaxMsgsPerSubject, 10)
	b = append(b, `,"max_consumers":`...)
	b = strconv.AppendInt(b, int64(l.MaxConsumers), 10)
	b = append(b, `,"discard":`...)
	b = appendString(b, l.Discard)
	if l.MsgsUsedPct != nil {
		b = append(b, `,"msgs_used_pct":`...)
		if b, err = appendFloat(b, *l.MsgsUsedPct); err != nil {
			return b, err
		}
	}
	if l.BytesUsedPct != nil {
		b = append(b, `,"bytes_used_pct":`...)
		if b, err = appendFloat(b, *l.BytesUsedPct); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

func appendStreamSource(b []byte, s *StreamSource) []byte {
	b = append(b, `{"name":`...)
	b = appendString(b, s.Name)
	if s.APIPrefix != "" {
		b = append(b, `,"api_prefix":`...)
		b = appendString(b, s.APIPrefix)
	}
	if s.DeliverPrefix != "" {
		b = append(b, `,"deliver_prefix":`...)
		b = appendString(b, s.DeliverPrefix)
	}
	b = append(b, `,"lag":`...)
	b = strconv.AppendUint(b, s.Lag, 10)
	b = append(b, `,"active":`...)
	b = strconv.AppendInt(b, int64(s.Active), 10)
	return append(b, '}')
}

// appendUnread appends an Unread, as a stream's and a consumer's rows
// hold it.
func appendUnread(b []byte, u *Unread) ([]byte, error) {
	b = append(b, `{"why":`...)
	b = appendString(b, u.Why)
	b = append(b, `,"detail":`...)
	b = appendString(b, u.Detail)
	if u.ReadAt != nil {
		var err error
		b = append(b, `,"read_at":`...)
		if b, err = appendTime(b, *u.ReadAt); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// appendStreamRow appends a stream's row, all of it data (a stream's
// settings are not stored apart).
func appendStreamRow(b []byte, s *Stream) ([]byte, int, error) {
	split := len(b)
	b, err := appendStreamFields(b, s, false)
	return b, split, err
}
