package web

import (
	"cmp"
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/alert"
	"github.com/jetwatch/jetwatch/journey"
	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

// Journeys reads journeys from the index. journey.Reader implements it.
type Journeys interface {
	Journey(ctx context.Context, key string) (journey.Journey, error)
	Stuck(ctx context.Context, name, start string, end []string, within, lookback time.Duration, now time.Time, limit int) ([]store.StuckJourney, error)
}

// JourneyConfig is what the journey pages read and say about indexing.
type JourneyConfig struct {
	// Reader reads journeys. Without it the journey pages answer 503.
	Reader Journeys
	// Streams is --journey-streams as given; empty: journeys are off
	// (dead letters are still found by trace id).
	Streams string
	// Correlations are --correlate-by's: the dead-letter page links to
	// the journey of each value a dead letter carries.
	Correlations journey.Correlations
}

var errNoJourneys = echo.NewHTTPError(http.StatusServiceUnavailable, "journeys are not available")

// stuckListed bounds the stuck journeys listed per rule.
const stuckListed = 200

// journeyKey is the key in the URL, checked.
func journeyKey(c echo.Context) (string, error) {
	key, err := pathParam(c, "key")
	if err != nil {
		return "", err
	}
	if !journey.ValidKey(key) {
		return "", echo.NewHTTPError(http.StatusUnprocessableEntity,
			"a journey key is a trace id or a correlation value: 1-128 bytes of UTF-8 text without control characters")
	}
	return key, nil
}

// journeyLookup answers GET /journeys?key=: the form's answer, sent on
// to the key's page.
func (s *Server) journeyLookup(c echo.Context) error {
	key := strings.TrimSpace(c.QueryParam("key"))
	if key == "" {
		return c.Redirect(http.StatusSeeOther, "/journeys/stuck")
	}
	if !journey.ValidKey(key) {
		return echo.NewHTTPError(http.StatusUnprocessableEntity,
			"a journey key is a trace id or a correlation value: 1-128 bytes of UTF-8 text without control characters")
	}
	return c.Redirect(http.StatusSeeOther, views.JourneyURL(key))
}

// journeyShow answers GET /journeys/:key: every step carrying the key.
func (s *Server) journeyShow(c echo.Context) error {
	if s.cfg.Journeys.Reader == nil {
		return errNoJourneys
	}
	key, err := journeyKey(c)
	if err != nil {
		return err
	}
	j, err := s.cfg.Journeys.Reader.Journey(c.Request().Context(), key)
	if err != nil {
		return err
	}
	m := views.JourneyPage{Key: key, J: j, Enabled: s.cfg.Journeys.Streams != "", Streams: s.cfg.Journeys.Streams,
		Correlations: s.cfg.Journeys.Correlations.String()}
	for _, id := range j.TraceIDs {
		m.TraceLinks = append(m.TraceLinks, views.TraceLink{ID: id, URL: s.traceURL(id)})
	}
	p := s.page(c, "Journey "+views.Shorten(key, 40), false)
	p.Nav = "journeys"
	return s.renderPage(c, p, views.JourneyBody(m))
}

// traceURL links a well-formed trace id to --trace-url, or is "".
func (s *Server) traceURL(id string) string {
	if s.cfg.TraceURL == "" {
		return ""
	}
	return strings.ReplaceAll(s.cfg.TraceURL, "{trace_id}", id)
}

// apiJourneyShow answers GET /api/v1/journeys/:key.
func (s *Server) apiJourneyShow(c echo.Context) error {
	if s.cfg.Journeys.Reader == nil {
		return errNoJourneys
	}
	key, err := journeyKey(c)
	if err != nil {
		return err
	}
	j, err := s.cfg.Journeys.Reader.Journey(c.Request().Context(), key)
	if err != nil {
		return err
	}
	return apiJSON(c, j)
}

// journeyStuck answers GET /journeys/stuck: the journeys each saga_stuck
// rule finds stuck now.
func (s *Server) journeyStuck(c echo.Context) error {
	if s.cfg.Journeys.Reader == nil {
		return errNoJourneys
	}
	p := s.page(c, "Stuck journeys", false)
	p.Nav = "journeys"
	m := views.StuckPage{Enabled: s.cfg.Journeys.Streams != "", Now: p.Now}
	var rules *alert.Rules
	if s.cfg.Alerts != nil {
		rules = s.cfg.Alerts.Rules()
	}
	if rules != nil {
		for _, r := range rules.Rules {
			if r.Kind != alert.KindSagaStuck {
				continue
			}
			lookback := cmp.Or(time.Duration(r.Window), alert.DefaultSagaWindow)
			stuck, err := s.cfg.Journeys.Reader.Stuck(c.Request().Context(), r.Key, r.Start, r.End, time.Duration(r.Within),
				lookback, p.Now, stuckListed+1)
			if err != nil {
				return err
			}
			g := views.StuckSaga{Rule: r.Name, Key: r.Key, Start: r.Start, End: r.End, Within: time.Duration(r.Within), Stuck: stuck}
			if len(stuck) > stuckListed {
				g.Stuck, g.More = stuck[:stuckListed], true
			}
			m.Sagas = append(m.Sagas, g)
		}
	}
	return s.renderPage(c, p, views.StuckBody(m))
}
