package web

import (
	"fmt"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/store"
)

// deadLetterFilter reads the filter from the query string. since and until
// take RFC 3339 times or a duration back from now ("1h", "7d").
func (s *Server) deadLetterFilter(c echo.Context) (store.DeadLetterFilter, error) {
	f := store.DeadLetterFilter{
		Stream: strings.TrimSpace(c.QueryParam("stream")), Consumer: strings.TrimSpace(c.QueryParam("consumer")),
		Subject: strings.TrimSpace(c.QueryParam("subject")), Reason: c.QueryParam("reason"),
		Status: c.QueryParam("status"), Q: strings.TrimSpace(c.QueryParam("q")),
		PayloadsHidden: s.payloadsHidden(c),
	}
	var err error
	if f.Since, err = s.parseTime(c.QueryParam("since")); err != nil {
		return f, fmt.Errorf("%w: since: %v", store.ErrBadFilter, err)
	}
	if f.Until, err = s.parseTime(c.QueryParam("until")); err != nil {
		return f, fmt.Errorf("%w: until: %v", store.ErrBadFilter, err)
	}
	return f, f.Validate()
}

func (s *Server) parseTime(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02T15:04", v); err == nil {
		return t.UTC(), nil
	}
	if d, err := parseWindow(v); err == nil {
		return s.cfg.Now().Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%s is neither an RFC 3339 time nor a duration like 1h or 7d", shortQuote(v))
}
