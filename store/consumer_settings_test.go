package store

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestConsumerSettingsAreTheFieldsUpToPush: the settings part of a
// consumer's row holds exactly Consumer's fields up to Push, the state
// part the others, and the two decoded into one Consumer give it back.
func TestConsumerSettingsAreTheFieldsUpToPush(t *testing.T) {
	t.Parallel()
	var full Consumer
	fill(t, reflect.ValueOf(&full).Elem(), "")
	full.Config = json.RawMessage(`{"durable_name":"c"}`)
	b, split, err := appendConsumerParts(nil, &full)
	require.NoError(t, err)
	require.NotContains(t, string(b), `"config"`, "stored in its own column")
	require.Equal(t, json.RawMessage(`{"durable_name":"c"}`), full.Config, "left as it was")
	full.Config = nil
	settings, state := b[:split], b[split:]

	typ := reflect.TypeFor[Consumer]()
	push, ok := typ.FieldByName("Push")
	require.True(t, ok)
	var fromSettings, fromState Consumer
	require.NoError(t, json.Unmarshal(settings, &fromSettings))
	require.NoError(t, json.Unmarshal(state, &fromState))
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Name == "Config" {
			continue
		}
		inSettings := !reflect.ValueOf(fromSettings).Field(i).IsZero()
		inState := !reflect.ValueOf(fromState).Field(i).IsZero()
		if i <= push.Index[0] {
			require.True(t, inSettings && !inState, "%s belongs to the settings", f.Name)
		} else {
			require.True(t, inState && !inSettings, "%s belongs to the state", f.Name)
		}
	}
	// As json.Marshal and Unmarshal give it back (invalid UTF-8 becomes
	// U+FFFD).
	var want Consumer
	whole, err := json.Marshal(&full)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(whole, &want))
	both := Consumer{Stream: want.Stream, Name: want.Name} // from the row's key
	require.NoError(t, decodeConsumer(&both, settings, state))
	require.Equal(t, want, both)
}

// TestSaveCycleWritesConsumerSettingsOnlyWhenTheyChange: a cycle that
// changes a consumer's numbers leaves its settings row alone; one that
// changes its settings, its config, its stalled or own flag writes it;
// and a consumer gone takes its settings with it.
func TestSaveCycleWritesConsumerSettingsOnlyWhenTheyChange(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	ctx := context.Background()
	_, err := db.sql.ExecContext(ctx, `CREATE TABLE settings_writes (stream TEXT, name TEXT);
		CREATE TRIGGER count_settings_writes AFTER UPDATE ON consumer_settings BEGIN
			INSERT INTO settings_writes VALUES (new.stream, new.name); END;`)
	require.NoError(t, err)
	writes := func() int { return countRows(t, db, `SELECT COUNT(*) FROM settings_writes`) }
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	n := 0
	save := func(consumers ...Consumer) {
		t.Helper()
		n++
		at := t0.Add(time.Duration(n) * 10 * time.Second)
		require.NoError(t, db.SaveCycle(ctx, Cycle{At: at, StreamsComplete: true, ConsumersComplete: map[string]bool{"S": true},
			Consumers: consumers, Streams: []Stream{{Name: "S", Health: Health{Level: HealthOK}, SampledAt: at}}}))
	}
	c := Consumer{Stream: "S", Name: "c", Description: "first", AckPolicy: "explicit", NumPending: 1,
		Health: Health{Level: HealthOK}, Config: json.RawMessage(`{"durable_name":"c","description":"first"}`)}
	d := Consumer{Stream: "S", Name: "d", Durable: true, Health: Health{Level: HealthOK}, Config: json.RawMessage(`{"durable_name":"d"}`)}
	save(c, d)
	require.Equal(t, 2, countRows(t, db, `SELECT COUNT(*) FROM consumer_settings`))

	// Numbers only, the configs left out as the sampler leaves them out
	// while they have not changed.
	c.Config, d.Config = nil, nil
	for i := range 3 {
		c.NumPending, d.NumAckPending = uint64(10+i), 5+i
		c.Health = Health{Level: HealthWarning, Reasons: []string{"falling behind"}}
		save(c, d)
	}
	require.Zero(t, writes(), "nothing of the settings changed")
	got, err := db.Consumer(ctx, "S", "c")
	require.NoError(t, err)
	require.Equal(t, uint64(12), got.NumPending)
	require.Equal(t, "first", got.Description)
	require.Equal(t, HealthWarning, got.Health.Level)
	require.JSONEq(t, `{"durable_name":"c","description":"first"}`, string(got.Config))

	// The same config given again is no change either.
	c.Config = json.RawMessage(`{"durable_name":"c","description":"first"}`)
	save(c, d)
	require.Zero(t, writes())

	// A new description comes with a new config.
	c.Description, c.Config = "second", json.RawMessage(`{"durable_name":"c","description":"second"}`)
	save(c, d)
	require.Equal(t, 1, writes())
	got, err = db.Consumer(ctx, "S", "c")
	require.NoError(t, err)
	require.Equal(t, "second", got.Description)
	require.JSONEq(t, `{"durable_name":"c","description":"second"}`, string(got.Config))

	// Stalled and own are written whatever the settings.
	c.Config, c.Stalled, d.Own = nil, true, true
	save(c, d)
	stalled, err := db.Stalled(ctx, true)
	require.NoError(t, err)
	require.Len(t, stalled, 1)
	require.Equal(t, "second", stalled[0].Description, "read with its settings")
	all, err := db.Consumers(ctx, "S")
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.True(t, all[1].Own)
	require.True(t, all[1].Durable)

	// Gone: its settings go too.
	save(c)
	require.Equal(t, 1, countRows(t, db, `SELECT COUNT(*) FROM consumers`))
	require.Equal(t, 0, countRows(t, db, `SELECT COUNT(*) FROM consumer_settings WHERE name = 'd'`))
	save()
	require.Equal(t, 0, countRows(t, db, `SELECT COUNT(*) FROM consumer_settings`))
}

// TestMigrationEighteenSplitsConsumerRows: consumers stored whole before
// migration 18 read the same after it, config included, and the next
// cycle stores them apart.
func TestMigrationEighteenSplitsConsumerRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	old, path := databaseAtVersion(t, 17)
	var err error
	var full Consumer
	fill(t, reflect.ValueOf(&full).Elem(), "")
	full.Stream, full.Name, full.Config = "S", `q"uote`, nil
	sparse := Consumer{Stream: "S", Name: "c", Durable: true, Health: Health{Level: HealthOK}, LagState: LagOK}
	wants := []Consumer{full, sparse}
	configs := []string{`{"durable_name":"full"}`, `{"durable_name":"c"}`}
	for i, c := range wants {
		data, err := json.Marshal(&c)
		require.NoError(t, err)
		_, err = old.ExecContext(ctx, `INSERT INTO consumers (stream, name, sampled_at, num_pending, num_ack_pending, stalled, health, data, config, own)
			VALUES (?, ?, 0, 0, 0, ?, ?, ?, ?, ?)`, c.Stream, c.Name, c.Stalled, c.Health.Level, data, configs[i], c.Own)
		require.NoError(t, err)
		// Read back as written (invalid UTF-8 becomes U+FFFD).
		wants[i] = Consumer{}
		require.NoError(t, json.Unmarshal(data, &wants[i]))
	}
	require.NoError(t, old.Close())

	db, err := OpenFile(ctx, path)
	require.NoError(t, err)
	defer db.Close()
	require.Equal(t, 2, countRows(t, db, `SELECT COUNT(*) FROM consumer_settings`))
	for i, want := range wants {
		got, err := db.Consumer(ctx, want.Stream, want.Name)
		require.NoError(t, err)
		require.JSONEq(t, configs[i], string(got.Config))
		got.Config = nil
		require.Equal(t, want, got)
	}
	kinds, err := db.ConsumerKinds(ctx)
	require.NoError(t, err)
	require.ElementsMatch(t, []ConsumerKind{{Stream: "S", Name: "c", Durable: true}, {Stream: "S", Name: `q"uote`, Durable: true, Own: true, Deleted: true}}, kinds)

	// The next cycle writes them apart, hashes and all.
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	sparse.NumPending = 7
	require.NoError(t, db.SaveCycle(ctx, Cycle{At: at, StreamsComplete: true, ConsumersComplete: map[string]bool{"S": true},
		Consumers: []Consumer{sparse}, Streams: []Stream{{Name: "S", Health: Health{Level: HealthOK}, SampledAt: at}}}))
	got, err := db.Consumer(ctx, "S", "c")
	require.NoError(t, err)
	require.Equal(t, uint64(7), got.NumPending)
	require.JSONEq(t, `{"durable_name":"c"}`, string(got.Config), "the config migrated is kept")
	require.Equal(t, 1, countRows(t, db, `SELECT COUNT(*) FROM consumers WHERE settings_hash IS NOT NULL`))
	require.Equal(t, 1, countRows(t, db, `SELECT COUNT(*) FROM consumer_settings`), "the consumer gone took its settings")
}
