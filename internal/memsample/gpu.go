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
	rows, err := querySMI(ctx, path, "--query-gpu=name,driver_version,memory.total")
	if err != nil {
		return nil, err
	}
	var out []GPU
	for _, r := range rows {
		if len(r) != 3 {
			return nil, fmt.Errorf("nvidia-smi --query-gpu: row %q: want name, driver, memory", r)
		}
		mib, err := strconv.ParseUint(r[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("nvidia-smi --query-gpu: memory %q: %w", r[2], err)
		}
		out = append(out, GPU{Name: r[0], Driver: r[1], MemoryBytes: mib << 20})
	}
	return out, nil
}

// TreeVRAM returns the GPU memory, in bytes, that the process pid and its
// descendants hold on every NVIDIA GPU:
// `nvidia-smi --query-compute-apps=pid,used_memory`, summed over the tree.
func TreeVRAM(ctx context.Context, path string, pid int) (uint64, error) {
	pids, err := TreePids(ctx, pid)
	if err != nil {
		return 0, err
	}
	rows, err := querySMI(ctx, path, "--query-compute-apps=pid,used_memory")
	if err != nil {
		return 0, err
	}
	var total uint64
	for _, r := range rows {
		if len(r) != 2 {
			return 0, fmt.Errorf("nvidia-smi --query-compute-apps: row %q: want pid, used memory", r)
		}
		p, err1 := strconv.Atoi(r[0])
		mib, err2 := strconv.ParseUint(r[1], 10, 64)
		if err1 != nil || err2 != nil {
			continue // "[N/A]" where the driver cannot tell, as in containers
		}
		if pids[p] {
			total += mib << 20
		}
	}
	return total, nil
}

// querySMI runs nvidia-smi with a query in CSV without header or units.
func querySMI(ctx context.Context, path, query string) ([][]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, query, "--format=csv,noheader,nounits").Output()
	if err != nil {
		return nil, fmt.Errorf("run %s %s: %w", path, query, err)
	}
	r := csv.NewReader(strings.NewReader(string(out)))
	r.TrimLeadingSpace, r.FieldsPerRecord = true, -1
	rows, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", path, query, err)
	}
	return rows, nil
}
