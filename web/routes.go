package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/auth"
)

// routes is jetwatch's route table: every route with the role it needs
// and, for those that change something, the action the audit log records.
func (s *Server) routes(e *echo.Echo) {
	const get, post = http.MethodGet, http.MethodPost
	v, op, admin := auth.Viewer, auth.Operator, auth.Admin
	r := func(method, path string, need auth.Role, action string, h echo.HandlerFunc) {
		s.handle(e, method, path, need, action, h)
	}

	r(get, "/login", public, "", s.signInForm)
	r(post, "/login", public, "", s.signIn)
	r(post, "/logout", v, "logout", s.signOut)
	r(get, "/metrics", public, "", s.metrics())
	r(get, "/healthz", public, "", s.healthz)
	r(get, "/readyz", public, "", s.readyz)
	r(get, "/static/:hash/:name", public, "", s.assets.serve)

	r(get, "/", v, "", s.overview)
	r(get, "/streams/:stream", v, "", s.streamShow)
	r(get, "/streams/:stream/consumers/:consumer", v, "", s.consumerShow)
	r(get, "/streams/:stream/messages", v, "", s.streamMessages) // audits payload views itself
	r(post, "/streams/:stream/consumers/:consumer/pause", op, "consumer.pause", s.consumerPause)
	r(post, "/streams/:stream/consumers/:consumer/resume", op, "consumer.resume", s.consumerResume)
	r(get, "/dead-letters", v, "", s.deadLetterList)
	r(get, "/dead-letters/groups", v, "", s.deadLetterGroups)
	r(get, "/dead-letters/export", v, "export", s.deadLetterExport)
	r(get, "/dead-letters/:id", v, "", s.deadLetterShow)
	r(post, "/dead-letters/:id/redeliver", op, "redeliver", s.deadLetterRedeliver)
	r(post, "/dead-letters/:id/edit", op, "edit.preview", s.deadLetterEdit) // shows the payload; sends nothing
	r(post, "/dead-letters/:id/discard", op, "discard", s.deadLetterDiscard)
	r(post, "/dead-letters/bulk/plan", op, "", s.bulkPlan) // a dry run
	r(post, "/dead-letters/bulk", op, "bulk.create", s.bulkCreate)
	r(get, "/redeliveries", v, "", s.bulkList)
	r(get, "/redeliveries/:id", v, "", s.bulkShow)
	r(post, "/redeliveries/:id/:verb", op, "bulk.control", s.bulkControl)
	r(get, "/events", v, "", s.eventList)
	r(get, "/journeys", v, "", s.journeyLookup)
	r(get, "/journeys/stuck", v, "", s.journeyStuck)
	r(get, "/journeys/:key", v, "", s.journeyShow)
	// Any key, "stuck" included (see views.JourneyURL).
	r(get, "/journeys/key/:key", v, "", s.journeyShow)
	r(get, "/breakers", v, "", s.breakerList)
	r(get, "/accounts", v, "", s.accountList)
	r(get, "/alerts", v, "", s.alertList)
	r(get, "/alerts/notifications", v, "", s.alertNotifications)
	r(post, "/alerts/silence", op, "alert.silence", s.alertSilence)
	r(post, "/alerts/ack", op, "alert.ack", s.alertAcknowledge)
	if s.cfg.DemoReceiver != nil {
		r(get, demoReceiverPath, v, "", s.demoReceiverPage)
		// Webhooks from jetwatch's own sender: no session, and no CSRF
		// token; the demo receiver verifies their signature instead.
		r(post, demoReceiverPath, public, "", s.demoReceiverPost)
	}
	r(get, "/audit", v, "", s.auditList)
	r(get, "/admin/tokens", admin, "", s.tokenList)
	r(post, "/admin/tokens", admin, "token.create", s.tokenCreate)
	r(post, "/admin/tokens/:id/revoke", admin, "token.revoke", s.tokenRevoke)

	api := e.Group("/api/v1")
	a := func(method, path string, need auth.Role, action string, h echo.HandlerFunc) {
		s.handle(api, method, path, need, action, h)
	}
	a(get, "/streams", v, "", s.apiStreamList)
	a(get, "/streams/:stream", v, "", s.apiStreamShow)
	a(get, "/streams/:stream/consumers", v, "", s.apiConsumerList)
	a(get, "/streams/:stream/consumers/:consumer", v, "", s.apiConsumerShow)
	a(get, "/streams/:stream/messages", v, "", s.apiStreamMessages) // audits payload views itself
	a(post, "/streams/:stream/consumers/:consumer/pause", op, "consumer.pause", s.apiConsumerPause)
	a(post, "/streams/:stream/consumers/:consumer/resume", op, "consumer.resume", s.apiConsumerResume)
	a(get, "/dead-letters", v, "", s.apiDeadLetterList)
	a(get, "/dead-letter-index", v, "", s.apiDeadLetterIndex)
	a(get, "/dead-letters/export", v, "export", s.deadLetterExport)
	a(get, "/dead-letters/:id", v, "", s.apiDeadLetterShow)
	a(post, "/dead-letters/:id/redeliver", op, "redeliver", s.apiDeadLetterRedeliver)
	a(post, "/dead-letters/:id/discard", op, "discard", s.apiDeadLetterDiscard)
	a(get, "/events", v, "", s.apiEventList)
	a(get, "/journeys/:key", v, "", s.apiJourneyShow)
	a(get, "/breakers", v, "", s.apiBreakerList)
	a(get, "/accounts", v, "", s.apiAccountList)
	a(get, "/accounts/:account", v, "", s.apiAccountShow)
	a(get, "/redeliveries", v, "", s.apiBulkList)
	a(post, "/redeliveries", op, "bulk.create", s.apiBulkCreate)
	a(get, "/redeliveries/:id", v, "", s.apiBulkShow)
	a(post, "/redeliveries/:id/:verb", op, "bulk.control", s.apiBulkControl)
	a(get, "/alerts", v, "", s.apiAlertList)
	a(get, "/notifications", v, "", s.apiAlertNotifications)
	a(post, "/alerts/silences", op, "alert.silence", s.apiAlertSilence)
	a(post, "/alerts/ack", op, "alert.ack", s.apiAlertAcknowledge)
	a(get, "/audit", v, "", s.apiAuditList)
}
