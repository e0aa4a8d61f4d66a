package streambrowse

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
)

// BenchmarkBrowse reads pages of a 20,000-message stream of 256-byte
// payloads: the newest 50, 500 onwards from the middle, and the newest 50
// of a subject one message in 100 carries, each through direct gets and
// through the message-get API.
func BenchmarkBrowse(b *testing.B) {
	s := natstest.RunServer(b)
	nc := natstest.Connect(b, s)
	js, err := jetstream.New(nc)
	require.NoError(b, err)
	ctx := context.Background()
	payload := bytes.Repeat([]byte("x"), 256)
	for _, direct := range []bool{true, false} {
		name := fmt.Sprintf("S%v", direct)
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, AllowDirect: direct})
		require.NoError(b, err)
		for i := range 20_000 {
			subj := name + ".common"
			if i%100 == 0 {
				subj = name + ".rare"
			}
			js.PublishAsync(subj, payload) //nolint:errcheck // PublishAsyncComplete below
		}
		<-js.PublishAsyncComplete()
	}
	br, err := New(nc)
	require.NoError(b, err)
	for _, direct := range []bool{true, false} {
		name := fmt.Sprintf("S%v", direct)
		how := "direct"
		if !direct {
			how = "msgget"
		}
		for _, tc := range []struct {
			name string
			q    Query
			want int
		}{
			{"newest50", Query{}, 50},
			{"from10000x500", Query{StartSeq: 10_000, Limit: 500}, 500},
			{"rare50", Query{Subject: name + ".rare"}, 50},
		} {
			b.Run(how+"/"+tc.name, func(b *testing.B) {
				for b.Loop() {
					p, err := br.Messages(ctx, name, tc.q)
					if err != nil || len(p.Items) != tc.want {
						b.Fatalf("%d messages, %v", len(p.Items), err)
					}
				}
				b.ReportMetric(float64(tc.want)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			})
		}
	}
}
