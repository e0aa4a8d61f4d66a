// Package pause pauses and resumes JetStream consumers with the server's
// own consumer pause (nats-server 2.11 and later): the one thing jetwatch
// changes on a user's consumer. It decides which consumers may be paused
// (never jetwatch's own, nor those of KV and object-store streams) and
// how far ahead a pause may end, and asks NATS nothing else.
package pause
