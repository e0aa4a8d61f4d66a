package web

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/alert"
	"github.com/jetwatch/jetwatch/views"
)

func deliveryLimit(c echo.Context) (int, error) {
	v := c.QueryParam("limit")
	if v == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		return 0, echo.NewHTTPError(http.StatusUnprocessableEntity, "limit: use 1 to 1000")
	}
	return n, nil
}

// deliveries reads the delivery log the page and the API show.
func (s *Server) deliveries(c echo.Context) ([]alert.Delivery, error) {
	if s.cfg.Alerts == nil {
		return nil, errNoAlerts
	}
	limit, err := deliveryLimit(c)
	if err != nil {
		return nil, err
	}
	return s.cfg.Alerts.Deliveries(c.Request().Context(), limit)
}

// alertNotifications answers GET /alerts/notifications: the delivery log.
func (s *Server) alertNotifications(c echo.Context) error {
	deliveries, err := s.deliveries(c)
	if err != nil {
		return err
	}
	p := s.page(c, "Alert deliveries", true)
	p.Nav = "alerts"
	return s.renderPage(c, p, views.NotificationsBody(views.NotificationList{Deliveries: deliveries, Now: p.Now}))
}

// apiAlertNotifications answers GET /api/v1/notifications.
func (s *Server) apiAlertNotifications(c echo.Context) error {
	deliveries, err := s.deliveries(c)
	if err != nil {
		return err
	}
	return apiJSON(c, list[alert.Delivery]{Items: nonNil(deliveries)})
}
