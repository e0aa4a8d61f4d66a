// Package watermill measures jetwatch's service runner against watermill
// (ThreeDotsLabs/watermill with watermill-nats' JetStream subscriber and a
// Router) on the same in-process NATS server and messages. It is a module
// of its own so watermill never enters jetwatch's go.mod:
//
//	cd bench/watermill && go test -run xxx -bench Watermill -benchtime 1x -count 5 .
package watermill
