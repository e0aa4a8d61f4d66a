package natstest

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Cluster is a JetStream cluster of in-process servers routed on
// loopback, named n1, n2... and tagged node:n1, node:n2... for placement.
// Nodes can be stopped and started again with their ports and storage,
// as a crashed and restarted server would be.
//
// Every route runs through a relay of the cluster's (links[from][to]), so
// Kill can cut a node off before it stops: its peers then learn nothing
// of the stop, as with a SIGKILL, instead of hearing its shutdown notice.
type Cluster struct {
	t      testing.TB
	Name   string
	opts   []*server.Options
	links  [][]*link
	killed []bool
	Nodes  []*server.Server // nil while a node is stopped
	// Account is where unauthenticated clients, and so the streams
	// tests create, live: $G, or APP with WithSystemAccount.
	Account string
}

// RunCluster starts n JetStream servers in one cluster and waits until
// JetStream has a meta leader. Every node is shut down when the test ends.
func RunCluster(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	c := &Cluster{t: t, Name: "C" + strings.ToUpper(fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff))}
	c.killed = make([]bool, n)
	c.links = make([][]*link, n)
	for i := range n {
		c.links[i] = make([]*link, n)
		for j := range n {
			if i != j {
				c.links[i][j] = newLink(t) // aimed at node j once it listens
			}
		}
	}
	for i := range n {
		// Each node routes to every other through its own relays; no
		// node advertises its route port, so none goes around them.
		var routes []*url.URL
		for j, l := range c.links[i] {
			if j != i {
				routes = append(routes, &url.URL{Scheme: "nats", Host: l.addr()})
			}
		}
		name := fmt.Sprintf("n%d", i+1)
		o := &server.Options{
			ServerName: name,
			// Placement{Tags: []string{"node:n2"}} puts a stream on n2.
			Tags: []string{"node:" + name},
			Host: "127.0.0.1",
			// Each node picks its own ports on its first start and keeps
			// them after; ports reserved ahead by listening and closing
			// could be taken by anything else starting meanwhile.
			Port:      server.RANDOM_PORT,
			JetStream: true,
			StoreDir:  t.TempDir(),
			NoLog:     true,
			NoSigs:    true,
			Cluster:   server.ClusterOpts{Name: c.Name, Host: "127.0.0.1", Port: server.RANDOM_PORT, NoAdvertise: true},
			Routes:    routes,
		}
		for _, opt := range opts {
			opt(o)
		}
		c.opts = append(c.opts, o)
	}
	c.Account = clientAccount(c.opts[0])
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

// clientAccount is the account of the user unauthenticated clients
// connect as.
func clientAccount(o *server.Options) string {
	for _, u := range o.Users {
		if u.Username == o.NoAuthUser && u.Account != nil {
			return u.Account.Name
		}
	}
	return server.DEFAULT_GLOBAL_ACCOUNT
}

// Start starts node i (again), with its ports and storage.
func (c *Cluster) Start(i int) *server.Server {
	c.t.Helper()
	if c.Nodes[i] != nil {
		return c.Nodes[i]
	}
	c.killed[i] = false
	c.setLinks()
	var s *server.Server
	for attempt := 0; ; attempt++ {
		o := c.opts[i].Clone()
		// A stopped node's ports are free for anything meanwhile: an
		// outgoing connection of any test may have been given one as
		// its own port (they come from the same range). Such a port is
		// given up for a new one; the relays are aimed at the route
		// port below, and clients learn the client port from the
		// cluster. (A server that cannot listen never becomes ready,
		// and says nothing without a logger.)
		if attempt > 0 || !portFree(o.Port) {
			o.Port = server.RANDOM_PORT
		}
		if attempt > 0 || !portFree(o.Cluster.Port) {
			o.Cluster.Port = server.RANDOM_PORT
		}
		var err error
		if s, err = server.NewServer(o); err != nil {
			c.t.Fatalf("node %d: %v", i+1, err)
		}
		go s.Start()
		if s.ReadyForConnections(10 * time.Second) {
			break
		}
		s.Shutdown()
		if attempt == 1 {
			c.t.Fatalf("node %d did not start on client port %d, route port %d, nor on new ones", i+1, c.opts[i].Port, c.opts[i].Cluster.Port)
		}
	}
	// Keep the ports for a restart, and aim the relays at this node.
	c.opts[i].Port = s.Addr().(*net.TCPAddr).Port
	c.opts[i].Cluster.Port = s.ClusterAddr().Port
	for from := range c.links {
		if l := c.links[from][i]; l != nil {
			l.setTarget(fmt.Sprintf("127.0.0.1:%d", c.opts[i].Cluster.Port))
		}
	}
	c.Nodes[i] = s
	return s
}

// portFree says whether port (0: any) can be listened on on loopback now.
func portFree(port int) bool {
	if port <= 0 {
		return true
	}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// Stop shuts node i down, as a crash would take it away.
func (c *Cluster) Stop(i int) {
	if s := c.Nodes[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.Nodes[i] = nil
	}
}

// Kill takes node i away as a crash would: its routes are cut before it
// shuts down, so its peers never hear that it stopped and find out only
// by their own timeouts. Start brings it back.
func (c *Cluster) Kill(i int) {
	c.killed[i] = true
	c.setLinks()
	c.Stop(i)
}

// setLinks cuts every route to or from a killed node and restores the rest.
func (c *Cluster) setLinks() {
	for i, row := range c.links {
		for j, l := range row {
			if l != nil {
				l.setCut(c.killed[i] || c.killed[j])
			}
		}
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
// leader, every running node is current with it, and the leader has
// heard from every running node.
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
		running := 0
		for _, s := range c.Nodes {
			if s != nil {
				running++
			}
		}
		for _, s := range c.Nodes {
			if s != nil && s.JetStreamIsLeader() {
				// Placement needs the leader to have heard from every
				// peer, or an R3 stream is refused "peer offline".
				if peers := s.JetStreamClusterPeers(); len(peers) < running {
					return fmt.Errorf("meta leader %s sees %d of %d peers", s.Name(), len(peers), running)
				}
				return nil
			}
		}
		return fmt.Errorf("no meta leader")
	})
}

// StreamLeader is the index of the node leading stream in the clients'
// account, or -1.
func (c *Cluster) StreamLeader(stream string) int {
	for i, s := range c.Nodes {
		if s != nil && s.JetStreamIsStreamLeader(c.Account, stream) {
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

// link relays TCP connections to one node's route port, and can cut them.
type link struct {
	ln net.Listener

	mu     sync.Mutex
	target string // empty until the node has started once
	cut    bool
	conns  map[net.Conn]struct{}
}

func newLink(t testing.TB) *link {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("route relay: %v", err)
	}
	l := &link{ln: ln, conns: map[net.Conn]struct{}{}}
	t.Cleanup(func() {
		ln.Close()
		l.setCut(true)
	})
	go l.serve()
	return l
}

func (l *link) addr() string { return l.ln.Addr().String() }

func (l *link) serve() {
	for {
		in, err := l.ln.Accept()
		if err != nil {
			return
		}
		go l.relay(in)
	}
}

func (l *link) setTarget(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.target = addr
}

func (l *link) relay(in net.Conn) {
	l.mu.Lock()
	target := l.target
	l.mu.Unlock()
	if target == "" { // the node has not started yet; its peer retries
		in.Close()
		return
	}
	out, err := net.DialTimeout("tcp", target, 2*time.Second)
	if err != nil {
		in.Close()
		return
	}
	if !l.track(in, out) {
		in.Close()
		out.Close()
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done
	in.Close()
	out.Close()
	<-done
	l.untrack(in, out)
}

// track registers a relayed pair unless the link is cut.
func (l *link) track(conns ...net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cut {
		return false
	}
	for _, c := range conns {
		l.conns[c] = struct{}{}
	}
	return true
}

func (l *link) untrack(conns ...net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range conns {
		delete(l.conns, c)
	}
}

// setCut closes every relayed connection and refuses new ones while cut.
func (l *link) setCut(cut bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = cut
	if !cut {
		return
	}
	for c := range l.conns {
		c.Close()
		delete(l.conns, c)
	}
}
