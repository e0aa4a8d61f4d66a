package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetwatch/jetwatch/internal/natstest"
	"github.com/jetwatch/jetwatch/store"
)

// A bulk redelivery holds while its consumer's breaker is open, says so on
// its page and in the API, and an operator's "Run anyway" sends it.
func TestBulkJobWaitsForABreakerAndRunsAnywayOnRequest(t *testing.T) {
	t.Parallel()
	srv, d := setupDesk(t, func(cfg *Config) { cfg.Now = time.Now })
	now := time.Now()
	_, err := d.db.SaveBreaker(context.Background(), store.Breaker{Service: "notifier", Breaker: "points-api", Stream: "ORDERS",
		Consumer: "billing", State: store.BreakerOpen, Since: now, HeartbeatSeconds: 60, UpdatedAt: now})
	require.NoError(t, err)

	code, out := postJSON(t, srv, "/api/v1/redeliveries", fmt.Sprintf(`{"filter":{"ids":[%d]}}`, d.ids["json"]))
	require.Equal(t, http.StatusOK, code, out)
	jobURL := out["url"].(string)
	var st map[string]any
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		_, body := get(t, srv, "/api/v1"+jobURL)
		st = nil
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			return err
		}
		if st["waiting"] == nil {
			return fmt.Errorf("job %v, not waiting", st["state"])
		}
		return nil
	})
	require.Equal(t, "running", st["state"])
	require.Equal(t, "waiting: breaker billing/points-api open (service notifier, guarding consumer billing on ORDERS)", st["waiting"])
	require.NotNil(t, st["waiting_since"])
	require.Equal(t, false, st["ignore_breakers"])
	require.Zero(t, d.ordersCount(t), "nothing sent while it waits")

	_, page := get(t, srv, jobURL)
	require.Len(t, byTestID(t, page, "bulk-waiting"), 1)
	require.True(t, strings.HasPrefix(byTestID(t, page, "bulk-waiting")[0], "waiting: breaker billing/points-api open"))
	require.Equal(t, jobURL+"/ignore-breakers", formAction(t, page, "bulk-ignore-breakers-form"))
	_, jobs := get(t, srv, "/redeliveries")
	require.Equal(t, []string{"waiting: breaker billing/points-api open (service notifier, guarding consumer billing on ORDERS)"}, byTestID(t, jobs, "bulk-job-waiting"))
	_, list := get(t, srv, "/dead-letters")
	require.Contains(t, byTestID(t, list, "dl-bulk-running-job")[0], "waiting: breaker billing/points-api open")

	token, cookie := csrfOf(t, srv, jobURL)
	res, _ := postForm(t, srv, jobURL+"/ignore-breakers", url.Values{"csrf": {token}}, cookie)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	waitJob(t, srv, jobURL, "done")
	require.Equal(t, uint64(1), d.ordersCount(t), "sent once, the breaker still open")
	_, body := get(t, srv, "/api/v1"+jobURL)
	st = nil
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	require.Equal(t, true, st["ignore_breakers"])
	require.Nil(t, st["waiting"])
	require.Contains(t, d.log.String(), "action=bulk.control target="+jobURL+"/ignore-breakers", "audited")
}
