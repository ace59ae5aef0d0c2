package loadreport

import (
	"fmt"
	"strings"
	"time"
)

// SLO are the latency limits goodput counts against; 0 is no limit.
type SLO struct {
	TTFT time.Duration `json:"ttft,omitempty"`
	TPOT time.Duration `json:"tpot,omitempty"`
	E2E  time.Duration `json:"e2e,omitempty"`
}

// Set reports whether any limit is set.
func (s SLO) Set() bool { return s.TTFT > 0 || s.TPOT > 0 || s.E2E > 0 }

func (s SLO) String() string {
	var parts []string
	for _, p := range []struct {
		name string
		d    time.Duration
	}{{"ttft", s.TTFT}, {"tpot", s.TPOT}, {"e2e", s.E2E}} {
		if p.d > 0 {
			parts = append(parts, p.name+"="+p.d.String())
		}
	}
	return strings.Join(parts, ",")
}

// ParseSLO reads "ttft=500ms,tpot=50ms,e2e=10s"; any subset, any order,
// each limit a positive Go duration.
func ParseSLO(s string) (SLO, error) {
	var slo SLO
	if strings.TrimSpace(s) == "" {
		return slo, nil
	}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return SLO{}, fmt.Errorf("slo %q: %q is not name=duration", s, part)
		}
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d <= 0 {
			return SLO{}, fmt.Errorf("slo %q: %s: %q is not a positive duration", s, k, v)
		}
		var dst *time.Duration
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "ttft":
			dst = &slo.TTFT
		case "tpot":
			dst = &slo.TPOT
		case "e2e":
			dst = &slo.E2E
		default:
			return SLO{}, fmt.Errorf("slo %q: unknown limit %q (ttft, tpot, e2e)", s, k)
		}
		if *dst != 0 {
			return SLO{}, fmt.Errorf("slo %q: %s given twice", s, k)
		}
		*dst = d
	}
	return slo, nil
}

// met reports whether a successful request met every limit. A request
// without output fails a TTFT limit; one with fewer than two tokens has no
// TPOT and so cannot fail that limit.
func (s SLO) met(q *Record) bool {
	if s.TTFT > 0 && (!q.HasTTFT || msDuration(q.TTFTMs+q.LateMs) > s.TTFT) {
		return false
	}
	if s.TPOT > 0 && q.HasTPOT() && msDuration(q.TPOTMs) > s.TPOT {
		return false
	}
	return s.E2E <= 0 || msDuration(q.E2EMs+q.LateMs) <= s.E2E
}
