// Package deploy holds what runs jetwatch elsewhere: the Kubernetes manifest
// (kubernetes/), the Grafana dashboard (grafana/), the Prometheus rules
// (prometheus/) and the tests that keep them, and the repository's
// Dockerfile, in step with the jetwatch binary:
// the Dockerfile's build command is run, its binary is started with the
// Deployment's environment against an in-process NATS server, and every
// setting, port, mount and metric the files name is checked against it and
// the README. The rules and the dashboard's queries also run in a real
// Prometheus scraping `jetwatch demo`.
//
// It has no code of its own and must not be imported. Its tests build
// jetwatch once (about a minute cold), so they live here rather than next to
// cmd/jetwatch, whose tests stay fast.
package deploy
