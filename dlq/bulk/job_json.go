package bulk

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/jetwatch/jetwatch/store"
)

// Jobs live in a bucket every jetwatch replica reads and writes, and in a
// rolling upgrade replicas of two versions share it. A job written by a
// newer jetwatch may carry fields this one does not know: in its filter
// (a narrower selection) or beside it (how to run it). This jetwatch
// keeps them when it changes the job (a pause, progress), and never runs
// such a job: acting on a filter read in part would act on more dead
// letters than were previewed. A replica that knows them runs it.

// knownFields are the JSON names of a struct's fields.
func knownFields(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = true
	}
	return out
}

var (
	jobFields    = knownFields(reflect.TypeFor[Job]())
	filterFields = knownFields(reflect.TypeFor[store.DeadLetterFilter]())
)

// plainJob is Job without its JSON methods.
type plainJob Job

// UnmarshalJSON decodes a job, keeping the fields it does not know.
func (j *Job) UnmarshalJSON(data []byte) error {
	var p plainJob
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	p.unknown, p.unknownFilter = nil, nil
	for k, v := range raw {
		if !jobFields[k] {
			if p.unknown == nil {
				p.unknown = map[string]json.RawMessage{}
			}
			p.unknown[k] = v
		}
	}
	var filter map[string]json.RawMessage
	if f, ok := raw["filter"]; ok && json.Unmarshal(f, &filter) == nil {
		for k, v := range filter {
			if !filterFields[k] {
				if p.unknownFilter == nil {
					p.unknownFilter = map[string]json.RawMessage{}
				}
				p.unknownFilter[k] = v
			}
		}
	}
	*j = Job(p)
	return nil
}

// MarshalJSON encodes a job with the fields it was read with and does not
// know.
func (j Job) MarshalJSON() ([]byte, error) {
	data, err := json.Marshal(plainJob(j))
	if err != nil || (len(j.unknown) == 0 && len(j.unknownFilter) == 0) {
		return data, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	for k, v := range j.unknown {
		m[k] = v
	}
	if len(j.unknownFilter) > 0 {
		var f map[string]json.RawMessage
		if err := json.Unmarshal(m["filter"], &f); err != nil {
			return nil, err
		}
		maps.Copy(f, j.unknownFilter)
		if m["filter"], err = json.Marshal(f); err != nil {
			return nil, err
		}
	}
	return json.Marshal(m)
}

// newerFields names the fields of j this jetwatch does not know: its
// own, then its filter's ("filter.service"), each sorted; none for a job
// it can run.
func (j Job) newerFields() []string {
	out := slices.Sorted(maps.Keys(j.unknown))
	for _, k := range slices.Sorted(maps.Keys(j.unknownFilter)) {
		out = append(out, "filter."+k)
	}
	return out
}
