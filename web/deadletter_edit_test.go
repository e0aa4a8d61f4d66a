package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"
)

// formOf returns the fields of the form with the given data-testid as a
// browser submits them: inputs and textareas by name, a textarea's text as
// the HTML parser reads it, and every line end as CRLF (browsers send
// form values so, whatever the page showed).
func formOf(t *testing.T, page, testID string) url.Values {
	t.Helper()
	forms := nodes(parse(t, page), testID)
	require.Len(t, forms, 1, "form %s", testID)
	out := url.Values{}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "input":
				out.Add(attr(n, "name"), crlf(attr(n, "value")))
			case "textarea":
				var b strings.Builder
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					b.WriteString(c.Data)
				}
				out.Add(attr(n, "name"), crlf(b.String()))
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(forms[0])
	return out
}

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// sentMessage reads the message a redelivery stored in ORDERS.
func (d *deskBundle) sentMessage(t *testing.T, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	s, err := d.js.Stream(context.Background(), "ORDERS")
	require.NoError(t, err)
	m, err := s.GetMsg(context.Background(), seq)
	require.NoError(t, err)
	return m
}

func TestEditRoundTripSendsWhatItShows(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t)

	t.Run("an untouched edit sends the original bytes", func(t *testing.T) {
		path := "/dead-letters/" + u(d.ids["json"])
		_, page := get(t, srv, path)
		form := formOf(t, page, "dl-edit-form")
		require.Contains(t, form.Get("payload"), "\r\n  \"order\": \"ord-1\",\r\n", "the form shows indented JSON")
		require.True(t, strings.HasPrefix(form.Get("payload"), "{"), "the newline after <textarea> is the parser's")
		token, cookie := csrfOf(t, srv, path)
		form.Set("csrf", token)

		res, page := postForm(t, srv, path+"/edit", form, cookie)
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Equal(t, []string{"Unchanged: the original 52 bytes are sent as they were."}, byTestID(t, page, "dl-payload-unchanged"))
		require.Empty(t, byTestID(t, page, "dl-payload-diff"), "no false diff")
		require.Zero(t, d.ordersCount(t), "a preview sends nothing")

		res, _ = postForm(t, srv, path+"/redeliver", formOf(t, page, "dl-edit-confirm"), cookie)
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		m := d.sentMessage(t, 1)
		require.Equal(t, `{"order":"ord-1","note":"<script>alert(1)</script>"}`, string(m.Data), "compact, byte for byte")
		_, page = get(t, srv, path)
		require.NotContains(t, byTestID(t, page, "dl-history-row")[0], "edited", "nothing was edited")
	})

	t.Run("a one-key change sends exactly the textarea", func(t *testing.T) {
		id := d.publishDeadLetter(t, []byte(`{"order":"ord-2","items":[{"sku":"a","qty":1}],"total":10}`))
		path := "/dead-letters/" + u(id)
		_, page := get(t, srv, path)
		form := formOf(t, page, "dl-edit-form")
		edited := strings.Replace(form.Get("payload"), `"qty": 1`, `"qty": 2`, 1)
		require.NotEqual(t, form.Get("payload"), edited)
		form.Set("payload", edited)
		token, cookie := csrfOf(t, srv, path)
		form.Set("csrf", token)

		res, page := postForm(t, srv, path+"/edit", form, cookie)
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Equal(t, []string{"Changed: items[0].qty."}, byTestID(t, page, "dl-payload-keys"))
		diff := nodes(parse(t, page), "dl-payload-diff")
		require.Len(t, diff, 1)
		var changed []string
		for c := diff[0].FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && attr(c, "class") != "same" {
				changed = append(changed, attr(c, "class")+" "+strings.TrimSpace(text(c)))
			}
		}
		require.Equal(t, []string{`del - "qty": 1`, `add + "qty": 2`}, changed, "that line only")

		res, _ = postForm(t, srv, path+"/redeliver", formOf(t, page, "dl-edit-confirm"), cookie)
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		want := "{\n  \"order\": \"ord-2\",\n  \"items\": [\n    {\n      \"sku\": \"a\",\n      \"qty\": 2\n    }\n  ],\n  \"total\": 10\n}"
		require.Equal(t, want, string(d.sentMessage(t, 2).Data), "the text the textarea showed, line ends as shown")
	})

	t.Run("a damaged confirm form sends nothing", func(t *testing.T) {
		id := d.publishDeadLetter(t, []byte(`{"order":"ord-4"}`))
		path := "/dead-letters/" + u(id)
		token, cookie := csrfOf(t, srv, path)
		before := d.ordersCount(t)
		res, page := postForm(t, srv, path+"/redeliver", url.Values{"csrf": {token}, "edited": {"1"}, "payload_b64": {"not base64!"}, "headers": {""}}, cookie)
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
		require.Contains(t, byTestID(t, page, "flash")[0], "preview the edit again")
		require.Equal(t, before, d.ordersCount(t))
		require.Equal(t, "pending", d.status(t, srv, id))
	})
}
