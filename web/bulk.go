package web

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/auth"
	"github.com/jetwatch/jetwatch/dlq"
	"github.com/jetwatch/jetwatch/dlq/bulk"
	"github.com/jetwatch/jetwatch/store"
	"github.com/jetwatch/jetwatch/views"
)

// BulkJobs runs bulk redeliveries and discards. bulk.Runner implements it.
type BulkJobs interface {
	Plan(ctx context.Context, req bulk.Request) (bulk.Plan, error)
	Create(ctx context.Context, req bulk.Request) (bulk.Job, error)
	Get(ctx context.Context, id string) (bulk.Job, error)
	// List returns every job, newest first.
	List(ctx context.Context) ([]bulk.Job, error)
	Pause(ctx context.Context, id string) (bulk.Job, error)
	Resume(ctx context.Context, id string) (bulk.Job, error)
	Cancel(ctx context.Context, id string) (bulk.Job, error)
	// IgnoreBreakers lets a job run whatever the breakers say.
	IgnoreBreakers(ctx context.Context, id string) (bulk.Job, error)
}

var errNoBulk = echo.NewHTTPError(http.StatusServiceUnavailable, "bulk jobs are not running")

// bulkError maps the runner's refusals to statuses.
func bulkError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, bulk.ErrJobNotFound):
		return notFoundError{err.Error()}
	case errors.Is(err, bulk.ErrJobFinished):
		return echo.NewHTTPError(http.StatusConflict, err.Error())
	case errors.Is(err, store.ErrBadFilter):
		return echo.NewHTTPError(http.StatusUnprocessableEntity, err.Error())
	case errors.Is(err, bulk.ErrUnavailable):
		return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
	}
	return err
}

// bulkRequestFromForm reads the filter (query-string names), the selection
// (repeated id fields), the action and the rate from a form.
func (s *Server) bulkRequestFromForm(c echo.Context) (bulk.Request, error) {
	f, err := s.deadLetterFilter(c)
	if err != nil {
		return bulk.Request{}, err
	}
	form, _ := c.FormParams()
	for _, v := range form["id"] {
		id, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return bulk.Request{}, echo.NewHTTPError(http.StatusUnprocessableEntity, "selection: "+shortQuote(v)+" is not a dead letter id")
		}
		f.IDs = append(f.IDs, id)
	}
	req := bulk.Request{Filter: f, Action: cmpOr(c.FormValue("action"), dlq.ActionRedeliver), Actor: actor(c)}
	if v := strings.TrimSpace(c.FormValue("up_to_id")); v != "" {
		id, err := strconv.ParseUint(v, 10, 64)
		if err != nil || id > math.MaxInt64 {
			return req, echo.NewHTTPError(http.StatusUnprocessableEntity, "up_to_id: "+shortQuote(v)+" is not a dead letter id; preview the job again")
		}
		req.UpToID = id
	}
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
	jobs, account, err := s.bulkOf(c)
	if err != nil {
		return err
	}
	req, err := s.bulkRequestFromForm(c)
	if err != nil {
		return bulkError(err)
	}
	plan, err := jobs.Plan(c.Request().Context(), req)
	if err != nil {
		return bulkError(err)
	}
	m := views.BulkPlan{Request: req, Plan: plan, CSRF: csrfToken(c), FilterQuery: views.DeadLetterQuery(req.Filter, account).Encode()}
	p := s.page(c, "Bulk "+req.Action, false)
	p.Nav = "dead-letters"
	return s.render(c, http.StatusOK, views.Document(p, views.BulkPlanBody(m)))
}

// bulkCreate answers POST /dead-letters/bulk: starts the job and
// redirects to its progress.
func (s *Server) bulkCreate(c echo.Context) error {
	jobs, _, err := s.bulkOf(c)
	if err != nil {
		return err
	}
	req, err := s.bulkRequestFromForm(c)
	if err != nil {
		return bulkError(err)
	}
	job, err := jobs.Create(c.Request().Context(), req)
	if err != nil {
		return bulkError(err)
	}
	setAuditResult(c, jobResult(job))
	return c.Redirect(http.StatusSeeOther, views.JobURL(job))
}

// maxJobsShown is how many jobs the bulk jobs page lists, newest first.
const maxJobsShown = 100

// bulkList answers GET /redeliveries: the bulk jobs, newest first.
func (s *Server) bulkList(c echo.Context) error {
	runner, account, err := s.bulkOf(c)
	if err != nil {
		return err
	}
	jobs, err := runner.List(c.Request().Context())
	if err != nil {
		return bulkError(err)
	}
	m := views.BulkJobList{Jobs: jobs, Account: account}
	if len(jobs) > maxJobsShown {
		m.Jobs, m.More = jobs[:maxJobsShown], len(jobs)-maxJobsShown
	}
	p := s.page(c, "Bulk jobs", true)
	p.Nav = "dead-letters"
	return s.renderPage(c, p, views.BulkJobsBody(m))
}

// unfinishedJobs are the bulk jobs the dead-letters page names: running or
// paused. A bulk runner whose jobs cannot be listed names none, and the page
// still shows.
func (s *Server) unfinishedJobs(ctx context.Context, runner BulkJobs) []bulk.Job {
	if runner == nil {
		return nil
	}
	jobs, err := runner.List(ctx)
	if err != nil {
		if !errors.Is(err, bulk.ErrUnavailable) && ctx.Err() == nil {
			s.logger.Warn("bulk jobs could not be listed", "err", err)
		}
		return nil
	}
	var out []bulk.Job
	for _, j := range jobs {
		if views.JobUnfinished(j) {
			out = append(out, j)
		}
	}
	return out
}

// bulkShow answers GET /redeliveries/:id: progress, live.
func (s *Server) bulkShow(c echo.Context) error {
	jobs, _, err := s.bulkOf(c)
	if err != nil {
		return err
	}
	job, err := jobs.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return bulkError(err)
	}
	p := s.page(c, "Bulk job "+job.ID, true)
	p.Nav = "dead-letters"
	return s.renderPage(c, p, views.BulkJobBody(views.BulkJobView{Job: job, CSRF: csrfToken(c),
		CanAct: principal(c).Role.Allows(auth.Operator)}))
}

// bulkControl answers POST /redeliveries/:id/{pause,resume,cancel,ignore-breakers}.
func (s *Server) bulkControl(c echo.Context) error {
	job, err := s.control(c)
	if err != nil {
		return err
	}
	setAuditResult(c, jobResult(job))
	return c.Redirect(http.StatusSeeOther, views.JobURL(job))
}

func (s *Server) control(c echo.Context) (bulk.Job, error) {
	jobs, _, err := s.bulkOf(c)
	if err != nil {
		return bulk.Job{}, err
	}
	ctx, id := c.Request().Context(), c.Param("id")
	var job bulk.Job
	switch c.Param("verb") {
	case "pause":
		job, err = jobs.Pause(ctx, id)
	case "resume":
		job, err = jobs.Resume(ctx, id)
	case "cancel":
		job, err = jobs.Cancel(ctx, id)
	case "ignore-breakers":
		job, err = jobs.IgnoreBreakers(ctx, id)
	default:
		return job, notFoundError{"no such action " + c.Param("verb")}
	}
	return job, bulkError(err)
}

// bulkAPIRequest is the body of POST /api/v1/redeliveries.
type bulkAPIRequest struct {
	Filter     store.DeadLetterFilter `json:"filter"`
	RatePerSec float64                `json:"rate_per_sec"`
	DryRun     bool                   `json:"dry_run"`
	Action     string                 `json:"action"`
	// UpToID is a dry run's up_to_id: the job acts on what it counted.
	UpToID uint64 `json:"up_to_id"`
	// IgnoreBreakers runs the job whatever the breakers say.
	IgnoreBreakers bool `json:"ignore_breakers"`
	// Account, when given, must be the ?account= of the request: a job
	// meant for another account's dead letters must not run on the ids
	// of the account the URL names.
	Account string `json:"account"`
}

// bulkAPIStatus is a job as the API shows it.
type bulkAPIStatus struct {
	ID        string                 `json:"id"`
	State     string                 `json:"state"`
	Action    string                 `json:"action"`
	Total     int                    `json:"total"`
	Sent      int                    `json:"sent"`
	Failed    int                    `json:"failed"`
	Rate      float64                `json:"rate_per_sec"`
	Error     string                 `json:"last_error,omitempty"`
	Actor     string                 `json:"actor"`
	CreatedAt time.Time              `json:"created_at"`
	UpdatedAt time.Time              `json:"updated_at"`
	Filter    store.DeadLetterFilter `json:"filter"`
	// UpToID is the newest dead letter the job acts on.
	UpToID uint64 `json:"up_to_id"`
	// URL is the job's page; its API answer is under /api/v1 at the same path.
	URL string `json:"url"`
	// Waiting says why a running job holds (a breaker); "" when it does not.
	Waiting        string     `json:"waiting,omitempty"`
	WaitingSince   *time.Time `json:"waiting_since,omitempty"`
	IgnoreBreakers bool       `json:"ignore_breakers"`
}

func jobStatus(j bulk.Job) bulkAPIStatus {
	st := bulkAPIStatus{ID: j.ID, State: j.State, Action: j.Action, Total: j.Total, Sent: j.Sent, Failed: j.Failed,
		Rate: j.RatePerSec, Error: j.LastError, Actor: j.Actor, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt,
		Filter: j.Filter, UpToID: j.MaxID, URL: views.JobURL(j), Waiting: j.Waiting, IgnoreBreakers: j.IgnoreBreakers}
	if !j.WaitingSince.IsZero() {
		st.WaitingSince = &j.WaitingSince
	}
	return st
}

// bulkAPIPlan is the answer to a dry run: no job, so no id.
type bulkAPIPlan struct {
	DryRun bool `json:"dry_run"`
	bulk.Plan
	Note string `json:"note"`
}

// bulkAPICreated is the answer to a job's creation.
type bulkAPICreated struct {
	bulkAPIStatus
	// Matched is the number of dead letters the job acts on (its total).
	Matched int `json:"matched"`
}

// apiBulkCreate answers POST /api/v1/redeliveries: a dry run, or a job.
func (s *Server) apiBulkCreate(c echo.Context) error {
	jobs, account, err := s.bulkOf(c)
	if err != nil {
		return err
	}
	var body bulkAPIRequest
	if err := c.Bind(&body); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "the body is not the JSON this endpoint takes: {\"filter\", \"rate_per_sec\", \"dry_run\", \"action\", \"up_to_id\"}")
	}
	if body.Account != "" && body.Account != account {
		return echo.NewHTTPError(http.StatusUnprocessableEntity, "the body names account "+shortQuote(body.Account)+" but the URL "+cmpOr(account, "none")+": give the account as ?account=NAME (leave it out for jetwatch's own); nothing was changed")
	}
	if body.UpToID > math.MaxInt64 {
		return echo.NewHTTPError(http.StatusUnprocessableEntity, "up_to_id is not a dead letter id: use a dry run's up_to_id")
	}
	req := bulk.Request{Filter: body.Filter, Action: body.Action, RatePerSec: body.RatePerSec, Actor: actor(c), UpToID: body.UpToID,
		IgnoreBreakers: body.IgnoreBreakers}
	req.Filter.MaxID = 0
	ctx := c.Request().Context()
	if body.DryRun {
		plan, err := jobs.Plan(ctx, req)
		if err != nil {
			return bulkError(err)
		}
		plan.Sample = nonNil(plan.Sample)
		setAuditResult(c, fmt.Sprintf("dry run: %d match, up to #%d", plan.Matched, plan.UpToID))
		return apiJSON(c, bulkAPIPlan{DryRun: true, Plan: plan,
			Note: "Nothing was done. Create the job with the same filter and this up_to_id to act on these dead letters only: new ones that arrive later are not included."})
	}
	job, err := jobs.Create(ctx, req)
	if err != nil {
		return bulkError(err)
	}
	setAuditResult(c, jobResult(job))
	return apiJSON(c, bulkAPICreated{bulkAPIStatus: jobStatus(job), Matched: job.Total})
}

// apiBulkList answers GET /api/v1/redeliveries: the bulk jobs, newest
// first, at most limit (50 by default, 500 at most).
func (s *Server) apiBulkList(c echo.Context) error {
	runner, _, err := s.bulkOf(c)
	if err != nil {
		return err
	}
	limit, err := pageLimit(c)
	if err != nil {
		return echo.NewHTTPError(http.StatusUnprocessableEntity, strings.TrimPrefix(err.Error(), store.ErrBadFilter.Error()+": "))
	}
	jobs, err := runner.List(c.Request().Context())
	if err != nil {
		return bulkError(err)
	}
	out := struct {
		Items []bulkAPIStatus `json:"items"`
		// Total counts every job, listed or not.
		Total int `json:"total"`
	}{Items: []bulkAPIStatus{}, Total: len(jobs)}
	for _, j := range jobs[:min(limit, len(jobs))] {
		out.Items = append(out.Items, jobStatus(j))
	}
	return apiJSON(c, out)
}

// apiBulkShow answers GET /api/v1/redeliveries/:id.
func (s *Server) apiBulkShow(c echo.Context) error {
	jobs, _, err := s.bulkOf(c)
	if err != nil {
		return err
	}
	job, err := jobs.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return bulkError(err)
	}
	return apiJSON(c, jobStatus(job))
}

// apiBulkControl answers POST /api/v1/redeliveries/:id/{pause,resume,cancel,ignore-breakers}.
func (s *Server) apiBulkControl(c echo.Context) error {
	job, err := s.control(c)
	if err != nil {
		return err
	}
	setAuditResult(c, jobResult(job))
	return apiJSON(c, jobStatus(job))
}

// jobResult is the audit log's account of a bulk job after an action.
func jobResult(j bulk.Job) string {
	return fmt.Sprintf("job %s %s: %s of %d, %d sent, %d failed", j.ID, j.State, j.Action, j.Total, j.Sent, j.Failed)
}
