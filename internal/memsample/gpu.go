package memsample

import (
	"context"
	"encoding/csv"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// GPU is one NVIDIA GPU, as nvidia-smi names it.
type GPU struct {
	Name        string `json:"name"`
	Driver      string `json:"driver"`
	MemoryBytes uint64 `json:"memory_bytes"`
}

// GPUs lists the GPUs nvidia-smi (the program at path) sees:
// `nvidia-smi --query-gpu=name,driver_version,memory.total`.
func GPUs(ctx context.Context, path string) ([]GPU, error) {
	out, err := runSMI(ctx, path, "--query-gpu=name,driver_version,memory.total")
	if err != nil {
		return nil, err
	}
	return parseGPUs(out)
}

// parseGPUs reads --query-gpu=name,driver_version,memory.total output.
func parseGPUs(out []byte) ([]GPU, error) {
	rows, err := readCSV(out)
	if err != nil {
		return nil, fmt.Errorf("nvidia-smi --query-gpu: %w", err)
	}
	var gpus []GPU
	for _, r := range rows {
		if len(r) != 3 {
			return nil, fmt.Errorf("nvidia-smi --query-gpu: row %q: want name, driver, memory", r)
		}
		mib, err := strconv.ParseUint(r[2], 10, 64)
		if err != nil || mib > 1<<40 {
			return nil, fmt.Errorf("nvidia-smi --query-gpu: memory %q: not MiB", r[2])
		}
		gpus = append(gpus, GPU{Name: r[0], Driver: r[1], MemoryBytes: mib << 20})
	}
	return gpus, nil
}

// TreeVRAM returns the GPU memory, in bytes, that the process pid and its
// descendants hold on every NVIDIA GPU:
// `nvidia-smi --query-compute-apps=pid,used_memory`, summed over the tree.
func TreeVRAM(ctx context.Context, path string, pid int) (uint64, error) {
	pids, err := TreePids(ctx, pid)
	if err != nil {
		return 0, err
	}
	out, err := runSMI(ctx, path, "--query-compute-apps=pid,used_memory")
	if err != nil {
		return 0, err
	}
	return parseComputeApps(out, pids)
}

// parseComputeApps sums the used memory of the pids in
// --query-compute-apps=pid,used_memory output.
func parseComputeApps(out []byte, pids map[int]bool) (uint64, error) {
	rows, err := readCSV(out)
	if err != nil {
		return 0, fmt.Errorf("nvidia-smi --query-compute-apps: %w", err)
	}
	var total uint64
	for _, r := range rows {
		if len(r) != 2 {
			return 0, fmt.Errorf("nvidia-smi --query-compute-apps: row %q: want pid, used memory", r)
		}
		p, err1 := strconv.Atoi(r[0])
		mib, err2 := strconv.ParseUint(r[1], 10, 64)
		if err1 != nil || err2 != nil || mib > 1<<40 {
			continue // "[N/A]" where the driver cannot tell, as in containers
		}
		if pids[p] {
			total += mib << 20
		}
	}
	return total, nil
}

// runSMI runs nvidia-smi with a query in CSV without header or units.
func runSMI(ctx context.Context, path, query string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, query, "--format=csv,noheader,nounits").Output()
	if err != nil {
		return nil, fmt.Errorf("run %s %s: %w", path, query, err)
	}
	return out, nil
}

func readCSV(out []byte) ([][]string, error) {
	r := csv.NewReader(strings.NewReader(string(out)))
	r.TrimLeadingSpace, r.FieldsPerRecord = true, -1
	return r.ReadAll()
}
