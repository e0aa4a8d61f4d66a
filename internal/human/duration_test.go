package human

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 350 * time.Millisecond: "350ms", 1500 * time.Millisecond: "1.5s", 42 * time.Second: "42s",
		90 * time.Second: "1m 30s", 5 * time.Minute: "5m", time.Hour: "1h", 90 * time.Minute: "1h 30m",
		24 * time.Hour: "1d", 30 * time.Hour: "1d 6h", 7 * 24 * time.Hour: "7d",
		time.Hour + 59*time.Minute + 59*time.Second: "2h", 23*time.Hour + 59*time.Minute + 40*time.Second: "1d",
		-5 * time.Second: "-5s", 12300 * time.Millisecond: "12s",
	} {
		require.Equal(t, want, Duration(d), "%d", d)
	}
}
