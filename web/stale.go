package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

// staleAfterIntervals is how many sample intervals may pass without a new
// sample before data is shown as stale: one missed cycle is normal jitter.
const staleAfterIntervals = 3

// stale says whether data sampled at t is too old to trust.
func (s *Server) stale(t, now time.Time) bool {
	return now.Sub(t) > staleAfterIntervals*s.cfg.SampleInterval
}

// streamRow is a stream as every page and the API show it: its health is
// views.StreamRow.Shown, stale when the sample is too old to trust.
func (s *Server) streamRow(st store.Stream, now time.Time) views.StreamRow {
	return views.StreamRow{Stream: st, Stale: s.stale(st.SampledAt, now)}
}

// consumerRows judges staleness and attaches sparklines (when given) to
// consumers as listed.
func (s *Server) consumerRows(cs []store.Consumer, sparks map[string][]uint64, now time.Time) []views.ConsumerRow {
	rows := make([]views.ConsumerRow, len(cs))
	for i := range cs {
		rows[i] = views.ConsumerRow{Consumer: cs[i], Stale: s.stale(cs[i].SampledAt, now)}
		if sparks != nil {
			rows[i].Spark = views.NewSparkline(sparks[cs[i].Name])
		}
	}
	return rows
}

// apiStream is a stream as the API shows it: with the health the pages
// show, so automation and operators never disagree.
type apiStream struct {
	// Account is the stream's account: jetwatch's own, or the one asked
	// for with ?account=.
	Account string `json:"account,omitempty"`
	store.Stream
	Health store.Health `json:"health"`
	// Stale is set when the stream was not sampled recently.
	Stale bool `json:"stale"`
}

func newAPIStream(r views.StreamRow, account string) apiStream {
	return apiStream{Account: account, Stream: r.Stream, Health: r.Shown(), Stale: r.Stale}
}

// apiConsumer is a consumer as the API shows it, like apiStream.
type apiConsumer struct {
	Account string `json:"account,omitempty"` // as apiStream's
	store.Consumer
	Health store.Health `json:"health"`
	Stale  bool         `json:"stale"`
}

func newAPIConsumer(r views.ConsumerRow, account string) apiConsumer {
	return apiConsumer{Account: account, Consumer: r.Consumer, Health: r.Shown(), Stale: r.Stale}
}

// ownParam reads ?own=: whether to list and count jetwatch's own streams
// and consumers too. They are left out by default.
func ownParam(c echo.Context) (bool, error) {
	v := c.QueryParam("own")
	if v == "" {
		return false, nil
	}
	own, err := strconv.ParseBool(v)
	if err != nil {
		return false, echo.NewHTTPError(http.StatusUnprocessableEntity,
			"own must be true or false (1 or 0): it says whether jetwatch's own streams and consumers are listed")
	}
	return own, nil
}
