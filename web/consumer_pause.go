package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/pause"
	"github.com/jetwatch/jetwatch/views"
)

// ConsumerPauses pauses and resumes consumers on the server. *pause.Consumers
// implements it: its errors wrap pause.ErrInvalid, ErrRefused, ErrNotFound,
// ErrNotConnected or ErrNoAnswer, and their text is the operator's to read.
type ConsumerPauses interface {
	Check(stream, consumer string) error
	Pause(ctx context.Context, stream, consumer string, until time.Time) (pause.State, error)
	Resume(ctx context.Context, stream, consumer string) (pause.State, error)
}

var errNoPauses = unavailableError{"Pausing consumers is not available: jetwatch has not connected to NATS yet. Nothing was changed; retry once it has."}

// pauseError maps a refused or failed pause to a status and words that
// say what happened on the server, and what to do.
func pauseError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pause.ErrInvalid), errors.Is(err, pause.ErrRefused):
		return echo.NewHTTPError(http.StatusUnprocessableEntity, "Nothing was changed: "+err.Error()+".")
	case errors.Is(err, pause.ErrNotFound):
		return notFoundError{"Nothing was changed: " + strings.TrimPrefix(notFoundText(err), pause.ErrNotFound.Error()+": ") + "."}
	case errors.Is(err, pause.ErrNotConnected):
		return unavailableError{"Nothing was changed: jetwatch is not connected to NATS. Retry once the connection (shown at the top of the page) is back."}
	case errors.Is(err, pause.ErrNoAnswer):
		return unavailableError{"NATS did not answer in time, so jetwatch cannot tell whether the consumer changed. " +
			"Check the consumer on its page and retry: pausing and resuming again is harmless."}
	}
	return err
}

// notFoundText is the not-found refusal without the server's own error
// appended to it: only what the client asked for is named.
func notFoundText(err error) string {
	text := err.Error()
	if i := strings.Index(text, ": nats: "); i >= 0 {
		text = text[:i]
	}
	return text
}

// pauseNames are the stream and consumer of a pause or resume route.
func pauseNames(c echo.Context) (string, string, error) {
	stream, err := pathParam(c, "stream")
	if err != nil {
		return "", "", err
	}
	consumer, err := pathParam(c, "consumer")
	return stream, consumer, err
}

// pauseResult is the audit log's account of a pause or resume.
func pauseResult(st pause.State) string {
	if st.Paused && st.PauseUntil != nil {
		return fmt.Sprintf("consumer %s/%s paused until %s", st.Stream, st.Consumer, st.PauseUntil.Format(time.RFC3339))
	}
	return fmt.Sprintf("consumer %s/%s resumed (not paused)", st.Stream, st.Consumer)
}

// apiConsumerPause answers POST /api/v1/streams/:stream/consumers/:consumer/pause
// with {"until": RFC 3339}: the server's answer, paused and until when.
func (s *Server) apiConsumerPause(c echo.Context) error {
	if s.cfg.Pauses == nil {
		return errNoPauses
	}
	if err := s.ownAccountOnly(c, "pausing and resuming"); err != nil {
		return err
	}
	stream, consumer, err := pauseNames(c)
	if err != nil {
		return err
	}
	var body struct {
		Until string `json:"until"`
	}
	if err := c.Bind(&body); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, `the body is not the JSON this endpoint takes: {"until": "<RFC 3339 time>"}; nothing was changed`)
	}
	until, err := time.Parse(time.RFC3339, body.Until)
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf(`until %.64q is not an RFC 3339 time like "2026-12-24T18:00:00Z"; nothing was changed`, body.Until))
	}
	st, err := s.cfg.Pauses.Pause(c.Request().Context(), stream, consumer, until)
	if err != nil {
		return pauseError(err)
	}
	setAuditResult(c, pauseResult(st))
	return apiJSON(c, st)
}

// apiConsumerResume answers POST /api/v1/streams/:stream/consumers/:consumer/resume.
func (s *Server) apiConsumerResume(c echo.Context) error {
	if s.cfg.Pauses == nil {
		return errNoPauses
	}
	if err := s.ownAccountOnly(c, "pausing and resuming"); err != nil {
		return err
	}
	stream, consumer, err := pauseNames(c)
	if err != nil {
		return err
	}
	st, err := s.cfg.Pauses.Resume(c.Request().Context(), stream, consumer)
	if err != nil {
		return pauseError(err)
	}
	setAuditResult(c, pauseResult(st))
	return apiJSON(c, st)
}

// consumerPause answers the consumer page's Pause form: until (RFC 3339)
// when given, else for (a duration from now). It redirects to the page,
// which shows the pause from the next sample on.
func (s *Server) consumerPause(c echo.Context) error {
	if s.cfg.Pauses == nil {
		return errNoPauses
	}
	if err := s.ownAccountOnly(c, "pausing and resuming"); err != nil {
		return err
	}
	stream, consumer, err := pauseNames(c)
	if err != nil {
		return err
	}
	var until time.Time
	if v := strings.TrimSpace(c.FormValue("until")); v != "" {
		if until, err = time.Parse(time.RFC3339, v); err != nil {
			return echo.NewHTTPError(http.StatusUnprocessableEntity, fmt.Sprintf(`Nothing was changed: until %.64q is not an RFC 3339 time like "2026-12-24T18:00:00Z"; leave it empty to pause for the chosen time.`, v))
		}
	} else {
		d, err := time.ParseDuration(c.FormValue("for"))
		if err != nil || d <= 0 {
			return echo.NewHTTPError(http.StatusUnprocessableEntity, "Nothing was changed: choose how long to pause for, or give an RFC 3339 time to pause until.")
		}
		until = s.cfg.Now().Add(d).Truncate(time.Second)
	}
	st, err := s.cfg.Pauses.Pause(c.Request().Context(), stream, consumer, until)
	if err != nil {
		return pauseError(err)
	}
	setAuditResult(c, pauseResult(st))
	return c.Redirect(http.StatusSeeOther, views.ConsumerURL(stream, consumer)+"?done=paused")
}

// consumerResume answers the consumer page's Resume form.
func (s *Server) consumerResume(c echo.Context) error {
	if s.cfg.Pauses == nil {
		return errNoPauses
	}
	if err := s.ownAccountOnly(c, "pausing and resuming"); err != nil {
		return err
	}
	stream, consumer, err := pauseNames(c)
	if err != nil {
		return err
	}
	st, err := s.cfg.Pauses.Resume(c.Request().Context(), stream, consumer)
	if err != nil {
		return pauseError(err)
	}
	setAuditResult(c, pauseResult(st))
	return c.Redirect(http.StatusSeeOther, views.ConsumerURL(stream, consumer)+"?done=resumed")
}

// pauseControl is what the consumer page offers about pausing.
func (s *Server) pauseControl(c echo.Context, stream, consumer string) views.PauseControl {
	pc := views.PauseControl{Available: s.cfg.Pauses != nil, CSRF: csrfToken(c)}
	switch c.QueryParam("done") {
	case "paused":
		pc.Done = "Paused on the server. The page shows it from the next sample on."
	case "resumed":
		pc.Done = "Resumed on the server. The page shows it from the next sample on."
	}
	if pc.Available {
		if err := s.cfg.Pauses.Check(stream, consumer); err != nil {
			pc.Refused = err.Error()
		}
	}
	return pc
}
