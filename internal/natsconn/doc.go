// Package natsconn owns how jetwatch connects to NATS:
//
//   - the connection settings natscli users know ([Options]: server URLs,
//     creds, nkey, user/password, token, TLS files, natscli contexts) and the
//     NATS_* environment variables natscli reads ([FromEnv]);
//   - reading natscli context files (<dir>/<name>.json), but only when a
//     context is named: the context selected with "nats context select"
//     (context.txt) is deliberately ignored, so what jetwatch connects to
//     never depends on hidden CLI state;
//   - building nats.go options that reconnect forever with capped
//     exponential backoff, keep retrying in the background when the server
//     is down at start-up, and log connection events with log/slog;
//   - tracking the connection's state for the dashboard and probes
//     ([Status]).
//
// It must not log secrets: URLs are logged without their user information
// ([RedactURL]) and passwords, tokens and seeds are never logged.
package natsconn
