package memsample

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTreeRSSCountsChildren(t *testing.T) {
	// sh starts a child and waits: the tree holds two processes.
	cmd := exec.Command("sh", "-c", "sleep 30 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		rss, n, err := TreeRSS(context.Background(), cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		if n == 2 {
			if rss == 0 {
				t.Fatal("two processes with no resident memory")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tree of sh has %d processes, want 2", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTreeRSSUnknownPid(t *testing.T) {
	if _, _, err := TreeRSS(context.Background(), 1<<30); err == nil {
		t.Fatal("no error for a pid that does not exist")
	}
}

func TestSamplerPeakAtLeastMean(t *testing.T) {
	s := Start(os.Getpid(), 10*time.Millisecond)
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Peak() < 64<<20 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	res, err := s.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if res.Samples < 2 {
		t.Fatalf("samples = %d, want ≥ 2", res.Samples)
	}
	if res.PeakBytes < 64<<20 {
		t.Fatalf("peak %d bytes does not see the 64 MiB buffer", res.PeakBytes)
	}
	if res.PeakBytes < res.MeanBytes || res.MeanBytes == 0 {
		t.Fatalf("peak %d < mean %d", res.PeakBytes, res.MeanBytes)
	}
	runtime.KeepAlive(buf)
}

// TestRestartSeparatesPeriods: a 64 MiB buffer held only before Restart is
// in the first period's peak; the second period starts from the last
// sample and sees only what is resident after the buffer was dropped.
func TestRestartSeparatesPeriods(t *testing.T) {
	s := Start(os.Getpid(), 10*time.Millisecond)
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Peak() < 64<<20 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	runtime.KeepAlive(buf)
	first := s.Restart()
	second, err := s.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if first.PeakBytes < 64<<20 || first.Samples < 2 {
		t.Fatalf("first period: peak %d over %d samples, want the 64 MiB buffer", first.PeakBytes, first.Samples)
	}
	if second.Samples < 2 || second.PeakBytes == 0 || second.PeakBytes < second.MeanBytes {
		t.Fatalf("second period: %+v", second)
	}
}
