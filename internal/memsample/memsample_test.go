package memsample

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
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

// TestGPUMemoryOfTheTree reads a fake nvidia-smi: the GPUs' name, driver
// and memory, and the GPU memory of a shell and its child, not of other
// processes.
func TestGPUMemoryOfTheTree(t *testing.T) {
	smi, err := filepath.Abs("testdata/nvidia-smi")
	if err != nil {
		t.Fatal(err)
	}
	gpus, err := GPUs(context.Background(), smi)
	if err != nil {
		t.Fatal(err)
	}
	if len(gpus) != 2 || gpus[0].Name != "NVIDIA A100-SXM4-40GB" || gpus[0].Driver != "535.104.05" || gpus[0].MemoryBytes != 40<<30 {
		t.Fatalf("GPUs: %+v", gpus)
	}
	cmd := exec.Command("sh", "-c", "sleep 30 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var child int
	for deadline := time.Now().Add(10 * time.Second); child == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		pids, err := TreePids(context.Background(), cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		for p := range pids {
			if p != cmd.Process.Pid {
				child = p
			}
		}
	}
	if child == 0 {
		t.Fatal("the shell's child never appeared")
	}
	t.Setenv("FAKE_SMI_PID", strconv.Itoa(cmd.Process.Pid))
	t.Setenv("FAKE_SMI_CHILD", strconv.Itoa(child))
	vram, err := TreeVRAM(context.Background(), smi, cmd.Process.Pid)
	if err != nil || vram != 3072<<20 {
		t.Fatalf("tree VRAM %d MiB (%v), want 3072 (the shell and its child, not pid 1)", vram>>20, err)
	}
	s := StartGPU(cmd.Process.Pid, 10*time.Millisecond, smi)
	time.Sleep(100 * time.Millisecond)
	res, err := s.Stop()
	if err != nil || res.PeakVRAMBytes != 3072<<20 || res.VRAMSamples == 0 {
		t.Errorf("sampler: peak VRAM %d MiB over %d samples (%v)", res.PeakVRAMBytes>>20, res.VRAMSamples, err)
	}
	if _, err := TreeVRAM(context.Background(), filepath.Join(t.TempDir(), "missing"), cmd.Process.Pid); err == nil {
		t.Error("no error without nvidia-smi")
	}
}

func FuzzNvidiaSMIOutput(f *testing.F) {
	f.Add([]byte("NVIDIA A100-SXM4-40GB, 535.104.05, 40960\n"))
	f.Add([]byte("1234, 2048\n[N/A], [N/A]\n"))
	f.Add([]byte("\"a,b\", 1, 2\n"))
	f.Fuzz(func(t *testing.T, out []byte) {
		gpus, err := parseGPUs(out)
		for _, g := range gpus {
			if err == nil && g.MemoryBytes%(1<<20) != 0 {
				t.Errorf("memory %d is not whole MiB", g.MemoryBytes)
			}
		}
		if total, err := parseComputeApps(out, map[int]bool{1234: true}); err == nil && total%(1<<20) != 0 {
			t.Errorf("total %d is not whole MiB", total)
		}
	})
}
