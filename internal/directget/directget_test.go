package directget_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/directget"
	"github.com/jetwatch/jetwatch/internal/natstest"
)

// batch asks for n messages from sequence seq.
type batch struct {
	Seq   uint64 `json:"seq"`
	Batch int    `json:"batch"`
}

func TestClientReadsEachAnswerAndSkipsAnAbandonedOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nc := natstest.Connect(t, natstest.RunServer(t))
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, AllowDirect: true})
	require.NoError(t, err)
	for i := range 10 {
		_, err := js.Publish(ctx, fmt.Sprintf("s.%d", i), fmt.Appendf(nil, "m%d", i))
		require.NoError(t, err)
	}
	subject := directget.Subject(js, "S")
	require.NotEmpty(t, subject)
	c, err := directget.NewClient(nc)
	require.NoError(t, err)
	defer c.Close() //nolint:errcheck // test

	// The first answer is abandoned after one message: the rest of it
	// stays in the client's subscription, for the next request to skip.
	stop := errors.New("enough")
	var first []string
	err = c.Request(ctx, subject, batch{Seq: 1, Batch: 10}, func(m *nats.Msg) error {
		first = append(first, string(m.Data))
		return stop
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, []string{"m0"}, first)

	var second []string
	require.NoError(t, c.Request(ctx, subject, batch{Seq: 8, Batch: 5}, func(m *nats.Msg) error {
		second = append(second, string(m.Data))
		return nil
	}))
	require.Equal(t, []string{"m7", "m8", "m9"}, second, "only the second request's answer, to its end")

	require.NoError(t, c.Request(ctx, subject, batch{Seq: 50, Batch: 5}, func(*nats.Msg) error {
		t.Error("nothing is there to read")
		return nil
	}), "none found is an answer, not an error")

	// The package's one-off Request reads the same answers.
	var once []string
	require.NoError(t, directget.Request(ctx, nc, subject, batch{Seq: 10, Batch: 1}, func(m *nats.Msg) error {
		once = append(once, string(m.Data))
		return nil
	}))
	require.Equal(t, []string{"m9"}, once)
}
