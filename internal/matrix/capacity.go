package matrix

import (
	"errors"
	"fmt"
	"math"
)

// Search kinds (--search).
const (
	SearchConcurrency = "concurrency" // closed loop: the most concurrent users
	SearchRate        = "rate"        // open loop, Poisson: the highest request rate
)

// Search configures a capacity search (see FindCapacity).
type Search struct {
	// Kind is SearchConcurrency or SearchRate; "" runs the fixed matrix.
	Kind string `json:"kind,omitempty"`
	// Max bounds the search: --max-concurrency users or --max-rate
	// requests per second.
	Max float64 `json:"max,omitempty"`
	// Start is the first load probed: 1 user, or --min-rate.
	Start float64 `json:"start,omitempty"`
	// Precision ends a rate search when the bracket is narrower than this
	// fraction of its upper end; a concurrency search ends at one user.
	Precision float64 `json:"precision,omitempty"`
}

// Validate names the first bad field.
func (s Search) Validate() error {
	switch s.Kind {
	case "":
		return nil
	case SearchConcurrency:
		if s.Max < 1 || s.Max != math.Trunc(s.Max) {
			return fmt.Errorf("max-concurrency %g: must be a whole number, at least 1", s.Max)
		}
	case SearchRate:
		if !(s.Max > 0) || math.IsInf(s.Max, 0) {
			return fmt.Errorf("max-rate %g: must be a positive number of requests per second", s.Max)
		}
		if !(s.Start > 0) || s.Start > s.Max {
			return fmt.Errorf("min-rate %g: must be positive and at most max-rate %g", s.Start, s.Max)
		}
		if !(s.Precision > 0 && s.Precision < 1) {
			return fmt.Errorf("precision %g: must be between 0 and 1", s.Precision)
		}
	default:
		return fmt.Errorf("search %q: must be %s or %s", s.Kind, SearchConcurrency, SearchRate)
	}
	return nil
}

// ProbeFunc measures one load (users or requests per second) and says
// whether it met the SLO. An error ends the search.
type ProbeFunc func(load float64) (met bool, err error)

// FindCapacity finds the highest load at which probe meets the SLO: it
// doubles the load from Start until a probe fails or Max is reached, then
// bisects between the last load that met the SLO and the first that did
// not. It returns that load (0 when even Start failed) and the loads
// probed, in order. A concurrency search probes whole numbers only and
// ends when the bracket is one user wide.
func (s Search) FindCapacity(probe ProbeFunc) (float64, []float64, error) {
	if s.Kind == "" {
		return 0, nil, errors.New("no search kind")
	}
	start, whole := s.Start, s.Kind == SearchConcurrency
	if whole {
		start = max(1, math.Round(start))
	}
	var probed []float64
	try := func(x float64) (bool, error) {
		probed = append(probed, x)
		return probe(x)
	}
	good, bad := 0.0, 0.0
	for x := start; ; x = min(2*x, s.Max) {
		ok, err := try(x)
		if err != nil {
			return good, probed, err
		}
		if !ok {
			bad = x
			break
		}
		good = x
		if x >= s.Max {
			return good, probed, nil
		}
	}
	if good == 0 { // the lowest load failed: no capacity
		return 0, probed, nil
	}
	for {
		mid := (good + bad) / 2
		if whole {
			if bad-good <= 1 {
				return good, probed, nil
			}
			mid = math.Floor(mid)
		} else if bad-good <= s.Precision*bad {
			return good, probed, nil
		}
		ok, err := try(mid)
		if err != nil {
			return good, probed, err
		}
		if ok {
			good = mid
		} else {
			bad = mid
		}
	}
}
