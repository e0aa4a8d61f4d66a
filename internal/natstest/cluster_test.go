package natstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestClusterSurvivesALeaderAndTakesItBack(t *testing.T) {
	t.Parallel()
	c := RunCluster(t, 3)
	nc, err := nats.Connect(c.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	leader := c.WaitForStreamLeader("R3")
	c.Stop(leader)
	next := c.WaitForStreamLeader("R3")
	if next == leader {
		t.Fatalf("leader %d still leads after it stopped", leader)
	}
	CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		_, err := js.Publish(ctx, "r3.x", []byte("after"))
		return err
	})
	c.Start(leader)
	CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		s, err := js.Stream(ctx, "R3")
		if err != nil {
			return err
		}
		replicas := s.CachedInfo().Cluster.Replicas
		if len(replicas) != 2 {
			return fmt.Errorf("%d replicas besides the leader, want 2", len(replicas))
		}
		for _, r := range replicas {
			if !r.Current {
				return fmt.Errorf("replica %s is not current", r.Name)
			}
		}
		return nil
	})
}

// A clean stop is announced to the peers, so the meta leader answers at
// once that a stream on the stopped node is offline; a kill is not, so
// nobody answers for it, as after a SIGKILL.
func TestClusterKillIsACrashStopIsAnnounced(t *testing.T) {
	t.Parallel()
	c := RunCluster(t, 3)
	var followers []int
	leader := -1
	for i, s := range c.Nodes {
		if s.JetStreamIsLeader() {
			leader = i
		} else {
			followers = append(followers, i)
		}
	}
	// Connected to the meta leader, which stays up: the answers below are
	// the cluster's, not a reconnect's.
	nc, err := nats.Connect(c.URL(leader))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stopped, killed := followers[0], followers[1]
	for _, i := range []int{stopped, killed} {
		name := c.Nodes[i].Name()
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ON_" + name, Subjects: []string{"on." + name},
			Placement: &jetstream.Placement{Tags: []string{"node:" + name}}})
		if err != nil {
			t.Fatal(err)
		}
		if leader := c.WaitForStreamLeader("ON_" + name); leader != i {
			t.Fatalf("ON_%s placed on node %d, want %d", name, leader, i)
		}
	}
	info := func(i int) (*nats.Msg, error) {
		return nc.Request("$JS.API.STREAM.INFO.ON_"+c.opts[i].ServerName, nil, 2*time.Second)
	}

	c.Stop(stopped)
	// The shutdown notice travels on its own; the answer follows it
	// within moments (the 2 s request timeout would hide a lost notice
	// only by timing out, which the loop reports).
	CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		m, err := info(stopped)
		if err != nil || !strings.Contains(string(m.Data), `"err_code":10118`) {
			return fmt.Errorf("after a clean stop: %v %s, want stream offline (10118)", err, msgData(m))
		}
		return nil
	})
	c.Start(stopped)
	CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		m, err := info(stopped)
		if err != nil || strings.Contains(string(m.Data), `"error"`) {
			return fmt.Errorf("not back: %v %s", err, msgData(m))
		}
		return nil
	})

	c.Kill(killed)
	// Asked at once and briefly: the peers learn of a crash only by their
	// own timeouts, which a slow machine could otherwise reach meanwhile.
	if m, err := nc.Request("$JS.API.STREAM.INFO.ON_"+c.opts[killed].ServerName, nil, 500*time.Millisecond); !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("after a kill: %v %s, want no answer", err, msgData(m))
	}
}

func msgData(m *nats.Msg) string {
	if m == nil {
		return ""
	}
	return string(m.Data)
}

// A stopped node's ports are free for anything meanwhile (an outgoing
// connection of another test may be given one as its own): a node whose
// ports were taken starts on new ones and rejoins its cluster, its
// replicas current again.
func TestANodeWhosePortsWereTakenRestartsOnNewOnes(t *testing.T) {
	t.Parallel()
	c := RunCluster(t, 3)
	nc, err := nats.Connect(c.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	victim := (c.WaitForStreamLeader("R3") + 1) % 3
	oldClient, oldRoute := c.opts[victim].Port, c.opts[victim].Cluster.Port
	c.Kill(victim)
	for _, port := range []int{oldClient, oldRoute} {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
	}
	c.Start(victim)
	if c.opts[victim].Port == oldClient || c.opts[victim].Cluster.Port == oldRoute {
		t.Fatalf("ports %d and %d kept though taken", oldClient, oldRoute)
	}
	name := c.Nodes[victim].Name()
	CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		if _, err := js.Publish(ctx, "r3.x", []byte("after")); err != nil {
			return err
		}
		s, err := js.Stream(ctx, "R3")
		if err != nil {
			return err
		}
		for _, r := range s.CachedInfo().Cluster.Replicas {
			if r.Name == name && r.Current {
				return nil
			}
		}
		return fmt.Errorf("%s is not a current replica of R3 yet", name)
	})
}
