// Package redact masks what operators must not read of a dead letter:
// header values by name and JSON payload fields by path, before a page,
// an API answer or an export shows them. It never changes what is stored
// or redelivered.
package redact
