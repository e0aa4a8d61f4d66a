package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/dlq/bulk"
	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// formAction is the action of the form with the given data-testid.
func formAction(t *testing.T, page, testID string) string {
	t.Helper()
	forms := nodes(parse(t, page), testID)
	require.Len(t, forms, 1, "form %s", testID)
	return attr(forms[0], "action")
}

// waitJob polls a bulk job's API answer until its state is want.
func waitJob(t *testing.T, srv *Server, jobURL, want string) {
	t.Helper()
	natstest.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		_, body := get(t, srv, "/api/v1"+jobURL)
		var st struct{ State string }
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			return err
		}
		if st.State != want {
			return fmt.Errorf("job %s", st.State)
		}
		return nil
	})
}

func TestBulkSendsWhatItPreviewedAndListsItsJobs(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t)
	var ids []uint64
	for i := range 14 {
		ids = append(ids, d.publishDeadLetter(t, fmt.Appendf(nil, `{"n":%d}`, i)))
	}

	// The preview restates the filter, the count, the bound and the sample.
	token, cookie := csrfOf(t, srv, "/dead-letters")
	res, page := postForm(t, srv, "/dead-letters/bulk/plan?stream=ORDERS&reason=error", url.Values{"csrf": {token}, "action": {"redeliver"}}, cookie)
	require.Equal(t, http.StatusOK, res.StatusCode, page)
	upTo := ids[13]
	require.Equal(t, []string{fmt.Sprintf("14 pending dead letters match (stream ORDERS, reason error), up to #%d. "+
		"The job acts on these only: new ones that arrive later are not included.", upTo)}, byTestID(t, page, "bulk-matched"))
	require.Equal(t, []string{"Showing the newest 10 of 14."}, byTestID(t, page, "bulk-showing"))
	require.Len(t, byTestID(t, page, "bulk-sample-row"), 10)
	start := formOf(t, page, "bulk-start-form")
	require.Equal(t, u(upTo), start.Get("up_to_id"))
	action := formAction(t, page, "bulk-start-form")

	// A dead letter arrives between the preview and the start.
	late := d.publishDeadLetter(t, []byte(`{"late":true}`))
	start.Set("rate_per_sec", "0")
	res, _ = postForm(t, srv, action, start, cookie)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	jobURL := res.Header.Get("Location")
	require.True(t, strings.HasPrefix(jobURL, "/redeliveries/"), jobURL)
	jobID := strings.TrimPrefix(jobURL, "/redeliveries/")
	waitJob(t, srv, jobURL, bulk.JobDone)
	require.Equal(t, uint64(14), d.ordersCount(t), "exactly the previewed count")
	require.Equal(t, "pending", d.status(t, srv, late), "the late one is not the job's")
	_, page = get(t, srv, jobURL)
	require.Equal(t, []string{"14 of 14 done, 0 failed"}, byTestID(t, page, "bulk-counts"))
	require.Contains(t, byTestID(t, page, "bulk-scope")[0], fmt.Sprintf("stream ORDERS, reason error, up to #%d", upTo))

	// A paused job is named on the dead-letters page, with its link.
	code, out := postJSON(t, srv, "/api/v1/redeliveries", `{"filter":{"stream":"ORDERS"},"action":"discard","rate_per_sec":1}`)
	require.Equal(t, http.StatusOK, code, out)
	slow := out["id"].(string)
	require.Equal(t, "/redeliveries/"+slow, out["url"])
	code, out = postJSON(t, srv, "/api/v1/redeliveries/"+slow+"/pause", `{}`)
	require.Equal(t, http.StatusOK, code, out)
	_, page = get(t, srv, "/dead-letters")
	banner := nodes(parse(t, page), "dl-bulk-running-job")
	require.Len(t, banner, 1, "the finished job is not named")
	require.Equal(t, "/redeliveries/"+slow, attr(banner[0], "href"))
	require.Regexp(t, `^Bulk discard `+slow+` paused: \d+/\d+$`, text(banner[0]))
	require.Equal(t, []string{"bulk jobs"}, byTestID(t, page, "dl-bulk-jobs-link"))

	// The jobs page and API list both, newest first, with their links.
	res, page = get(t, srv, "/redeliveries")
	require.Equal(t, http.StatusOK, res.StatusCode)
	rows := nodes(parse(t, page), "bulk-job-row")
	require.Len(t, rows, 2)
	require.Equal(t, []string{slow, jobID}, []string{attr(rows[0], "data-id"), attr(rows[1], "data-id")})
	require.Equal(t, []string{"/redeliveries/" + slow}, links(rows[0]))
	require.Equal(t, []string{jobURL}, links(rows[1]))
	require.Equal(t, []string{"paused", "done"}, byTestID(t, page, "bulk-job-state"))
	require.Equal(t, "14 of 14 done, 0 failed", byTestID(t, page, "bulk-job-counts")[1])
	require.Contains(t, text(rows[1]), fmt.Sprintf("stream ORDERS, reason error, up to #%d", upTo))
	require.Contains(t, text(rows[1]), "anonymous@")

	res, body := get(t, srv, "/api/v1/redeliveries")
	require.Equal(t, http.StatusOK, res.StatusCode)
	var list struct {
		Items []struct {
			ID, State, Action, Actor, URL string
			Total, Sent                   int
			UpToID                        uint64    `json:"up_to_id"`
			CreatedAt                     time.Time `json:"created_at"`
			Filter                        store.DeadLetterFilter
		}
		Total int
	}
	require.NoError(t, json.Unmarshal([]byte(body), &list))
	require.Equal(t, 2, list.Total)
	require.Len(t, list.Items, 2)
	done := list.Items[1]
	require.Equal(t, jobID, done.ID)
	require.Equal(t, jobURL, done.URL)
	require.Equal(t, bulk.JobDone, done.State)
	require.Equal(t, 14, done.Sent)
	require.Equal(t, upTo, done.UpToID)
	require.Equal(t, "error", done.Filter.Reason)
	require.False(t, done.CreatedAt.IsZero())
	res, body = get(t, srv, "/api/v1/redeliveries?limit=1")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.NoError(t, json.Unmarshal([]byte(body), &list))
	require.Len(t, list.Items, 1)
	require.Equal(t, slow, list.Items[0].ID)
	res, _ = get(t, srv, "/api/v1/redeliveries?limit=0")
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)

	code, _ = postJSON(t, srv, "/api/v1/redeliveries/"+slow+"/cancel", `{}`)
	require.Equal(t, http.StatusOK, code)
	_, page = get(t, srv, "/dead-letters")
	require.Empty(t, byTestID(t, page, "dl-bulk-running"), "no job left to name")
}

func TestBulkDryRunAnswersAPlanWithoutAnID(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t)
	code, out := postJSON(t, srv, "/api/v1/redeliveries", `{"filter":{"stream":"ORDERS","reason":"terminated"},"dry_run":true}`)
	require.Equal(t, http.StatusOK, code, out)
	require.NotContains(t, out, "id", "a dry run creates no job")
	require.Equal(t, true, out["dry_run"])
	require.Equal(t, 2.0, out["matched"])
	require.Len(t, out["sample"], 2)
	upTo := uint64(out["up_to_id"].(float64))
	require.Equal(t, max(d.ids["binary"], d.ids["gone"]), upTo)
	require.Equal(t, "pending", out["filter"].(map[string]any)["status"])
	require.Contains(t, out["note"], "up_to_id")

	// Nothing matches: an empty sample, no bound, still no id.
	code, out = postJSON(t, srv, "/api/v1/redeliveries", `{"filter":{"stream":"NONE"},"dry_run":true}`)
	require.Equal(t, http.StatusOK, code, out)
	require.NotContains(t, out, "id")
	require.Equal(t, []any{}, out["sample"])
	require.Equal(t, 0.0, out["up_to_id"])

	// The job created with the dry run's bound acts on what it counted,
	// though a dead letter that matches arrived since.
	code, out = postJSON(t, srv, "/api/v1/redeliveries", `{"filter":{"stream":"ORDERS"},"dry_run":true}`)
	require.Equal(t, http.StatusOK, code, out)
	require.Equal(t, 3.0, out["matched"])
	upTo = uint64(out["up_to_id"].(float64))
	require.Equal(t, max(d.ids["json"], d.ids["binary"], d.ids["gone"]), upTo)
	late := d.publishDeadLetter(t, nil)
	code, out = postJSON(t, srv, "/api/v1/redeliveries", fmt.Sprintf(`{"filter":{"stream":"ORDERS"},"action":"discard","up_to_id":%d}`, upTo))
	require.Equal(t, http.StatusOK, code, out)
	require.Equal(t, 3.0, out["matched"])
	require.Equal(t, float64(upTo), out["up_to_id"])
	waitJob(t, srv, out["url"].(string), bulk.JobDone)
	require.Equal(t, "pending", d.status(t, srv, late))
	require.Equal(t, "discarded", d.status(t, srv, d.ids["json"]))
}

func TestBulkStartRefusesABadBound(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t)
	token, cookie := csrfOf(t, srv, "/dead-letters")
	for _, v := range []string{"abc", "-1", "99999999999999999999", "9223372036854775808"} {
		res, page := postForm(t, srv, "/dead-letters/bulk?stream=ORDERS", url.Values{"csrf": {token}, "action": {"discard"}, "up_to_id": {v}}, cookie)
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, v)
		require.Contains(t, page, "preview the job again", v)
	}
	code, out := postJSON(t, srv, "/api/v1/redeliveries", `{"filter":{"stream":"ORDERS"},"up_to_id":18446744073709551615}`)
	require.Equal(t, http.StatusUnprocessableEntity, code, out)
	require.Contains(t, out["error"], "up_to_id")
	// Nothing started, nothing changed.
	_, body := get(t, srv, "/api/v1/redeliveries")
	require.JSONEq(t, `{"items":[],"total":0}`, body)
	require.Zero(t, d.ordersCount(t))
	require.Equal(t, "pending", d.status(t, srv, d.ids["json"]))
	d.connected(t)
}
