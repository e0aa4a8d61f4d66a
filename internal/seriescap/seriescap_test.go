package seriescap

import "testing"

func TestPairsAdmitTheFirstAndNamesNATSCouldGive(t *testing.T) {
	p := New(2)
	for _, c := range []struct {
		stream, consumer, ws, wc string
	}{
		{"ORDERS", "billing", "ORDERS", "billing"},
		{"bad name", "c", Other, Other},
		{"PAYMENTS", "refunds", "PAYMENTS", "refunds"},
		{"S3", "c3", Other, Other},
		{"ORDERS", "billing", "ORDERS", "billing"},
	} {
		if s, co := p.Names(c.stream, c.consumer); s != c.ws || co != c.wc {
			t.Fatalf("%s/%s: got %s/%s, want %s/%s", c.stream, c.consumer, s, co, c.ws, c.wc)
		}
	}
	p.Forget("PAYMENTS", "refunds")
	if !p.Admit("S3", "c3") || p.Admit("S4", "c4") {
		t.Fatal("a forgotten pair's room goes to the next, and only to it")
	}
}
