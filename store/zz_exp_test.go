package store

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func BenchmarkExpUpdate(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, b.TempDir())
	require.NoError(b, err)
	defer db.Close()
	c := benchCycle(time.Now().Truncate(time.Second), 10000, 10)
	require.NoError(b, db.SaveCycle(ctx, c))
	if v := os.Getenv("EXP_DROP"); v != "" {
		_, err := db.sql.Exec(v)
		require.NoError(b, err)
	}
	data := make([]byte, 560)
	for i := range data {
		data[i] = 'a'
	}
	q := os.Getenv("EXP_Q")
	if q == "" {
		q = `UPDATE consumers SET sampled_at = ?3, num_pending = ?4, num_ack_pending = ?5, health = ?7, data = ?8
		WHERE stream = ?1 AND name = ?2 AND stalled = ?6 AND own = ?9`
	}
	k := 0
	cpu0 := cpuTime()
	for b.Loop() {
		k++
		err := db.withRawTx(ctx, func(tx *rawTx) error {
			st, err := tx.Prepare(q)
			if err != nil {
				return err
			}
			defer st.Close()
			t0 := time.Now()
			for i := range c.Consumers {
				cs := &c.Consumers[i]
				data[i%500] = byte('a' + k%20)
				if _, err := st.ExecCount(cs.Stream, cs.Name, int64(k), int64(k*7+i), 3, false, "ok", data, false); err != nil {
					return err
				}
			}
			fmt.Println("loop", time.Since(t0))
			return nil
		})
		require.NoError(b, err)
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
}
