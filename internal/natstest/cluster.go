package natstest

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Cluster is a JetStream cluster of in-process servers routed on
// loopback. Nodes can be stopped and started again with their ports and
// storage, as a crashed and restarted server would be.
type Cluster struct {
	t     testing.TB
	Name  string
	opts  []*server.Options
	Nodes []*server.Server // nil while a node is stopped
}

// RunCluster starts n JetStream servers in one cluster and waits until
// JetStream has a meta leader. Every node is shut down when the test ends.
func RunCluster(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	c := &Cluster{t: t, Name: "C" + strings.ToUpper(fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff))}
	clientPorts, routePorts := freePorts(t, n), freePorts(t, n)
	var routes []*url.URL
	for _, p := range routePorts {
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	for i := range n {
		o := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       clientPorts[i],
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoLog:      true,
			NoSigs:     true,
			Cluster:    server.ClusterOpts{Name: c.Name, Host: "127.0.0.1", Port: routePorts[i]},
			Routes:     routes,
		}
		for _, opt := range opts {
			opt(o)
		}
		c.opts = append(c.opts, o)
	}
	c.Nodes = make([]*server.Server, n)
	for i := range n {
		c.Start(i)
	}
	t.Cleanup(func() {
		for i := range c.Nodes {
			c.Stop(i)
		}
	})
	c.WaitForMetaLeader()
	return c
}

// freePorts reserves n loopback ports by listening and closing; routes
// need every node's port before any node starts.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("reserve port: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// Start starts node i (again), with its ports and storage.
func (c *Cluster) Start(i int) *server.Server {
	c.t.Helper()
	if c.Nodes[i] != nil {
		return c.Nodes[i]
	}
	s, err := server.NewServer(c.opts[i].Clone())
	if err != nil {
		c.t.Fatalf("node %d: %v", i+1, err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		c.t.Fatalf("node %d did not start", i+1)
	}
	c.Nodes[i] = s
	return s
}

// Stop shuts node i down, as a crash would take it away.
func (c *Cluster) Stop(i int) {
	if s := c.Nodes[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.Nodes[i] = nil
	}
}

// URLs are every node's client URL, comma separated, for a client that
// fails over between them.
func (c *Cluster) URLs() string {
	var urls []string
	for _, o := range c.opts {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", o.Port))
	}
	return strings.Join(urls, ",")
}

// URL is node i's client URL.
func (c *Cluster) URL(i int) string {
	return fmt.Sprintf("nats://127.0.0.1:%d", c.opts[i].Port)
}

// Index is the position of the running node named name, or -1.
func (c *Cluster) Index(name string) int {
	for i, s := range c.Nodes {
		if s != nil && s.Name() == name {
			return i
		}
	}
	return -1
}

// WaitForMetaLeader waits until a running node sees a JetStream meta
// leader and every running node is current with it.
func (c *Cluster) WaitForMetaLeader() {
	c.t.Helper()
	CheckFor(c.t, 30*time.Second, 50*time.Millisecond, func() error {
		for _, s := range c.Nodes {
			if s == nil {
				continue
			}
			if !s.JetStreamIsClustered() || !s.JetStreamIsCurrent() {
				return fmt.Errorf("%s: JetStream not current", s.Name())
			}
		}
		for _, s := range c.Nodes {
			if s != nil && s.JetStreamIsLeader() {
				return nil
			}
		}
		return fmt.Errorf("no meta leader")
	})
}

// StreamLeader is the index of the node leading stream in account $G, or -1.
func (c *Cluster) StreamLeader(stream string) int {
	for i, s := range c.Nodes {
		if s != nil && s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return i
		}
	}
	return -1
}

// WaitForStreamLeader waits until stream has a leader and returns its index.
func (c *Cluster) WaitForStreamLeader(stream string) int {
	c.t.Helper()
	leader := -1
	CheckFor(c.t, 30*time.Second, 20*time.Millisecond, func() error {
		if leader = c.StreamLeader(stream); leader < 0 {
			return fmt.Errorf("stream %s has no leader", stream)
		}
		return nil
	})
	return leader
}
