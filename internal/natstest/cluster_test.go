package natstest

import (
	"context"
	"fmt"
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
