package matrix

import (
	"net/http"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/tokentrace/tokentrace/internal/loadgen"
	"github.com/tokentrace/tokentrace/internal/loadreport"
	"github.com/tokentrace/tokentrace/internal/stream"
)

// TestOnePipeline feeds the same requests to `loadtest report`'s path
// (vegeta Results decoded by loadreport.Compute) and to the supervisor's
// (records written to requests.jsonl, read back, matrix.Compute) with the
// same window and SLO, and gets identical figures.
func TestOnePipeline(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	var results []vegeta.Result
	var reqs []Request
	for i := range 40 {
		f := loadgen.Figures{API: "ollama", Status: 200, Start: t0.Add(ms(137 * i)),
			FirstToken: ms(20 + 7*(i%9)), OutputChunks: 8 + i%5, InputTokens: 30, OutputTokens: 8 + i%5,
			Ollama: &stream.OllamaTimings{TotalDuration: 90e6, LoadDuration: 1e6, PromptEvalDuration: 10e6,
				EvalDuration: int64(60e6 + 1e6*(i%4)), EvalCount: 8 + i%5}}
		for k := 1; k < f.OutputChunks; k++ {
			f.Gaps = append(f.Gaps, ms(10+(i+k)%6))
		}
		f.LastToken = f.FirstToken
		for _, g := range f.Gaps {
			f.LastToken += g
		}
		f.End = f.LastToken + ms(2)
		switch i % 13 {
		case 5: // failed midway, with some tokens
			f.ErrorType, f.Error, f.Status = stream.ErrIncomplete, "stream ended without its final marker", 200
		case 11:
			f.ErrorType, f.Error, f.Status, f.OutputChunks, f.OutputTokens, f.Gaps, f.Ollama = "503", "busy", 503, 0, 0, nil, nil
		}
		r := vegeta.Result{Attack: "s", Seq: uint64(i), Timestamp: f.Start, Latency: f.End, Headers: http.Header{}}
		if err := f.Encode(r.Headers); err != nil {
			t.Fatal(err)
		}
		results = append(results, r)
		q := loadreport.RecordOf(f)
		q.Scenario, q.Attempt = "s", "a1"
		reqs = append(reqs, q)
	}
	w := Window{Start: t0.Add(time.Second), End: t0.Add(4 * time.Second)}
	slo := loadreport.SLO{TTFT: 50 * time.Millisecond, TPOT: 14 * time.Millisecond}

	rep, err := loadreport.Compute(results, loadreport.Options{Start: w.Start, End: w.End, SLO: slo})
	if err != nil {
		t.Fatal(err)
	}
	fromLoadtest := FiguresOf(rep)

	dir := filepath.Join(t.TempDir(), "run")
	st, err := Create(dir, Header{Settings: settings()})
	if err != nil {
		t.Fatal(err)
	}
	sc := Scenario{Setting: Setting{1, 512}, Concurrency: 1, PromptSize: "small"}
	if err := st.Append(Result{Scenario: sc, Name: sc.Name(), Attempt: "a1", Status: StatusOK, Window: w}, reqs); err != nil {
		t.Fatal(err)
	}
	_, saved, loaded, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	fromSupervisor := Compute(loaded, saved[0].Window, slo)

	if !reflect.DeepEqual(fromLoadtest, fromSupervisor) {
		t.Errorf("figures differ:\nloadtest   %+v\nsupervisor %+v", fromLoadtest, fromSupervisor)
	}
	if fromLoadtest.Errors != 6 || fromLoadtest.ReqPerSec <= 0 || fromLoadtest.GoodputRPS <= 0 ||
		fromLoadtest.GoodputRPS >= fromLoadtest.ReqPerSec || fromLoadtest.ITLP95Ms == 0 || fromLoadtest.TPOTP95Ms == 0 {
		t.Errorf("figures not exercised: %+v", fromLoadtest)
	}
}
