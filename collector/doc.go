// Package collector owns everything that reads NATS: the sampler that lists
// every stream and consumer through the JetStream API and stores their state
// and history in the index, and the per-server health read from
// $SYS.REQ.SERVER.PING.JSZ where the system account is reachable.
//
// It writes to the store and exposes Prometheus metrics from its latest
// sample; it must not serve HTTP or render anything.
package collector
