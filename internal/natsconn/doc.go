// Package natsconn turns the connection settings natscli users know (server
// URLs, credentials, nkeys, user/password, token, TLS files and natscli
// contexts) into a NATS connection that reconnects forever with backoff, and
// tracks that connection's state for the dashboard and probes.
//
// It must not log secrets: URLs are logged without their user information.
package natsconn
