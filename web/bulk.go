package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/auth"
	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/views"
)

// BulkJobs runs bulk redeliveries and discards. dlq.BulkRunner implements it.
type BulkJobs interface {
	Plan(ctx context.Context, req dlq.BulkRequest) (int, []dlq.DeadLetter, error)
	Create(ctx context.Context, req dlq.BulkRequest) (dlq.BulkJob, error)
	Get(ctx context.Context, id string) (dlq.BulkJob, error)
	List(ctx context.Context) ([]dlq.BulkJob, error)
	Pause(ctx context.Context, id string) (dlq.BulkJob, error)
	Resume(ctx context.Context, id string) (dlq.BulkJob, error)
	Cancel(ctx context.Context, id string) (dlq.BulkJob, error)
}

var errNoBulk = echo.NewHTTPError(http.StatusServiceUnavailable, "bulk jobs are not running")

// bulkError maps the runner's refusals to statuses.
func bulkError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, dlq.ErrJobNotFound):
		return notFoundError{err.Error()}
	case errors.Is(err, dlq.ErrJobFinished):
		return echo.NewHTTPError(http.StatusConflict, err.Error())
	case errors.Is(err, dlq.ErrBadFilter):
		return echo.NewHTTPError(http.StatusUnprocessableEntity, err.Error())
	case errors.Is(err, dlq.ErrBulkUnavailable):
		return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
	}
	return err
}

// bulkRequestFromForm reads the filter (query-string names), the selection
// (repeated id fields), the action and the rate from a form.
func (s *Server) bulkRequestFromForm(c echo.Context) (dlq.BulkRequest, error) {
	f, err := s.deadLetterFilter(c)
	if err != nil {
		return dlq.BulkRequest{}, err
	}
	form, _ := c.FormParams()
	for _, v := range form["id"] {
		id, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return dlq.BulkRequest{}, echo.NewHTTPError(http.StatusUnprocessableEntity, "selection: "+shortQuote(v)+" is not a dead letter id")
		}
		f.IDs = append(f.IDs, id)
	}
	req := dlq.BulkRequest{Filter: f, Action: cmpOr(c.FormValue("action"), dlq.ActionRedeliver), Actor: actor(c)}
	if v := strings.TrimSpace(c.FormValue("rate_per_sec")); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return req, echo.NewHTTPError(http.StatusUnprocessableEntity, "rate: "+shortQuote(v)+" is not a number of messages per second")
		}
		req.RatePerSec = r
	}
	return req, nil
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// bulkPlan answers POST /dead-letters/bulk/plan: the dry run, a count and
// a sample, with the form that starts the job.
func (s *Server) bulkPlan(c echo.Context) error {
	if s.cfg.Bulk == nil {
		return errNoBulk
	}
	req, err := s.bulkRequestFromForm(c)
	if err != nil {
		return bulkError(err)
	}
	matched, sample, err := s.cfg.Bulk.Plan(c.Request().Context(), req)
	if err != nil {
		return bulkError(err)
	}
	m := views.BulkPlan{Request: req, Matched: matched, Sample: sample, CSRF: csrfToken(c),
		FilterQuery: views.FilterQuery(req.Filter).Encode()}
	p := s.page(c, "Bulk "+req.Action, false)
	p.Nav = "dead-letters"
	return s.render(c, http.StatusOK, views.Document(p, views.BulkPlanBody(m)))
}

// bulkCreate answers POST /dead-letters/bulk: starts the job and
// redirects to its progress.
func (s *Server) bulkCreate(c echo.Context) error {
	if s.cfg.Bulk == nil {
		return errNoBulk
	}
	req, err := s.bulkRequestFromForm(c)
	if err != nil {
		return bulkError(err)
	}
	job, err := s.cfg.Bulk.Create(c.Request().Context(), req)
	if err != nil {
		return bulkError(err)
	}
	setAuditResult(c, jobResult(job))
	return c.Redirect(http.StatusSeeOther, "/redeliveries/"+job.ID)
}

// bulkShow answers GET /redeliveries/:id: progress, live.
func (s *Server) bulkShow(c echo.Context) error {
	if s.cfg.Bulk == nil {
		return errNoBulk
	}
	job, err := s.cfg.Bulk.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return bulkError(err)
	}
	p := s.page(c, "Bulk job "+job.ID, true)
	p.Nav = "dead-letters"
	return s.renderPage(c, p, views.BulkJobBody(views.BulkJobView{Job: job, CSRF: csrfToken(c),
		CanAct: principal(c).Role.Allows(auth.Operator)}))
}

// bulkControl answers POST /redeliveries/:id/{pause,resume,cancel}.
func (s *Server) bulkControl(c echo.Context) error {
	job, err := s.control(c)
	if err != nil {
		return err
	}
	setAuditResult(c, jobResult(job))
	return c.Redirect(http.StatusSeeOther, "/redeliveries/"+job.ID)
}

func (s *Server) control(c echo.Context) (dlq.BulkJob, error) {
	if s.cfg.Bulk == nil {
		return dlq.BulkJob{}, errNoBulk
	}
	ctx, id := c.Request().Context(), c.Param("id")
	var job dlq.BulkJob
	var err error
	switch c.Param("verb") {
	case "pause":
		job, err = s.cfg.Bulk.Pause(ctx, id)
	case "resume":
		job, err = s.cfg.Bulk.Resume(ctx, id)
	case "cancel":
		job, err = s.cfg.Bulk.Cancel(ctx, id)
	default:
		return job, notFoundError{"no such action " + c.Param("verb")}
	}
	return job, bulkError(err)
}

// bulkAPIRequest is the body of POST /api/v1/redeliveries.
type bulkAPIRequest struct {
	Filter     dlq.Filter `json:"filter"`
	RatePerSec float64    `json:"rate_per_sec"`
	DryRun     bool       `json:"dry_run"`
	Action     string     `json:"action"`
}

// bulkAPIStatus is a job as the API shows it.
type bulkAPIStatus struct {
	ID     string  `json:"id"`
	State  string  `json:"state"`
	Total  int     `json:"total"`
	Sent   int     `json:"sent"`
	Failed int     `json:"failed"`
	Action string  `json:"action"`
	Rate   float64 `json:"rate_per_sec"`
	Error  string  `json:"last_error,omitempty"`
}

func jobStatus(j dlq.BulkJob) bulkAPIStatus {
	return bulkAPIStatus{ID: j.ID, State: j.State, Total: j.Total, Sent: j.Sent, Failed: j.Failed, Action: j.Action, Rate: j.RatePerSec, Error: j.LastError}
}

// apiBulkCreate answers POST /api/v1/redeliveries.
func (s *Server) apiBulkCreate(c echo.Context) error {
	if s.cfg.Bulk == nil {
		return errNoBulk
	}
	var body bulkAPIRequest
	if err := c.Bind(&body); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "the body is not the JSON this endpoint takes: {\"filter\", \"rate_per_sec\", \"dry_run\", \"action\"}")
	}
	req := dlq.BulkRequest{Filter: body.Filter, Action: body.Action, RatePerSec: body.RatePerSec, Actor: actor(c)}
	req.Filter.MaxID = 0
	ctx := c.Request().Context()
	if body.DryRun {
		matched, sample, err := s.cfg.Bulk.Plan(ctx, req)
		if err != nil {
			return bulkError(err)
		}
		setAuditResult(c, fmt.Sprintf("dry run: %d match", matched))
		return apiJSON(c, map[string]any{"id": "", "matched": matched, "dry_run": true, "sample": nonNil(sample)})
	}
	job, err := s.cfg.Bulk.Create(ctx, req)
	if err != nil {
		return bulkError(err)
	}
	setAuditResult(c, jobResult(job))
	return apiJSON(c, map[string]any{"id": job.ID, "matched": job.Total})
}

// apiBulkShow answers GET /api/v1/redeliveries/:id.
func (s *Server) apiBulkShow(c echo.Context) error {
	if s.cfg.Bulk == nil {
		return errNoBulk
	}
	job, err := s.cfg.Bulk.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return bulkError(err)
	}
	return apiJSON(c, jobStatus(job))
}

// apiBulkControl answers POST /api/v1/redeliveries/:id/{pause,resume,cancel}.
func (s *Server) apiBulkControl(c echo.Context) error {
	job, err := s.control(c)
	if err != nil {
		return err
	}
	setAuditResult(c, jobResult(job))
	return apiJSON(c, jobStatus(job))
}

// jobResult is the audit log's account of a bulk job after an action.
func jobResult(j dlq.BulkJob) string {
	return fmt.Sprintf("job %s %s: %s of %d, %d sent, %d failed", j.ID, j.State, j.Action, j.Total, j.Sent, j.Failed)
}
