package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/internal/browsertest"
	"github.com/jetwatch/jetwatch/internal/natstest"
)

// Names NATS accepts that try to break out of an HTML attribute and run
// script as soon as the page loads (autofocus + onfocus). Stream and
// consumer names may not hold spaces, dots or '>', so attributes are their
// way in; subjects and headers may hold tags.
const (
	hostileStream   = `H"autofocus="autofocus"onfocus="__pwned=4"x="`
	hostileConsumer = `c'autofocus='autofocus'onfocus='__pwned=5'x='`
	hostileSubject  = `hostile.<svg/onload=__pwned=6>.<script>__pwned=7</script>`
)

// checkHostileNamesInert creates a stream, consumer, message and dead
// letter with hostile names, subject and headers, visits every page that
// shows them and checks nothing ran, no link leads to javascript:, and the
// browser reported no error (CSP violations included).
func checkHostileNamesInert(t *testing.T, b *browsertest.Browser, base string, js jetstream.JetStream) {
	t.Helper()
	ctx := context.Background()
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: hostileStream, Subjects: []string{"hostile.>"}})
	require.NoError(t, err)
	_, err = js.CreateOrUpdateConsumer(ctx, hostileStream, jetstream.ConsumerConfig{Durable: hostileConsumer, AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	_, err = js.Publish(ctx, hostileSubject, []byte(`{"x":"</pre><script>__pwned=8</script>"}`))
	require.NoError(t, err)

	m := nats.NewMsg(dlq.Subject("hostile", "c"))
	m.Data = []byte(`javascript:__pwned=9`)
	m.Header.Set("Link", `javascript:__pwned=10`)
	m.Header.Set("traceparent", `00-"><script>__pwned=11</script>-b7ad6b7169203331-01`)
	dlq.Envelope{Stream: hostileStream, Consumer: hostileConsumer, Subject: hostileSubject, Sequence: 1,
		Reason: dlq.ReasonError, Error: `"><img src=x onerror=__pwned=12>`, FailedAt: time.Now()}.Apply(m.Header)
	ack, err := js.PublishMsg(ctx, m)
	require.NoError(t, err)

	streamPath := "/streams/" + url.PathEscape(hostileStream)
	consumerPath := streamPath + "/consumers/" + url.PathEscape(hostileConsumer)
	natstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		for _, p := range []string{"/api/v1" + consumerPath, fmt.Sprintf("/api/v1/dead-letters/%d", ack.Sequence)} {
			resp, err := http.Get(base + p)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %d (not sampled or indexed yet)", p, resp.StatusCode)
			}
		}
		return nil
	})

	pages := []string{"/", streamPath, consumerPath, "/dead-letters", fmt.Sprintf("/dead-letters/%d", ack.Sequence),
		"/dead-letters?q=hostile", "/dead-letters/groups", "/events?stream=" + url.QueryEscape(hostileStream), "/audit"}
	for _, p := range pages {
		_, err := chromedp.Run(b.Ctx, chromedp.Navigate(base+p))
		require.NoError(t, err, p)
		_, err = chromedp.Run(b.Ctx, chromedp.WaitReady(chromedp.CSS(`footer`)))
		require.NoError(t, err, p)
		pwned, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](`typeof __pwned !== "undefined"`))
		require.NoError(t, err, p)
		require.False(t, pwned, "a hostile name, subject, header or payload ran script on %s", p)
		links, err := chromedp.Run(b.Ctx, chromedp.Evaluate[int](
			`[...document.querySelectorAll("a[href], form[action]")].filter(e => /^\s*javascript:/i.test(e.getAttribute("href") || e.getAttribute("action"))).length`))
		require.NoError(t, err, p)
		require.Zero(t, links, "a javascript: link on %s", p)
		injected, err := chromedp.Run(b.Ctx, chromedp.Evaluate[int](
			`document.querySelectorAll("[onfocus], [onload], [onerror], svg script, body script:not([src])").length`))
		require.NoError(t, err, p)
		require.Zero(t, injected, "hostile markup became elements on %s", p)
	}
	// The names are shown as text.
	_, err = chromedp.Run(b.Ctx, chromedp.Navigate(base+consumerPath))
	require.NoError(t, err)
	title, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(`h1`)))
	require.NoError(t, err)
	require.Contains(t, title, hostileConsumer)
	require.Empty(t, b.Errors(), "console errors or CSP violations on pages showing hostile names")
}
