package dlq

// Desk is everything the dashboard does with dead letters: the queries
// over the index and the actions that go through JetStream.
type Desk struct {
	*Queries
	*Redeliverer
}
