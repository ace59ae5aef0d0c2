package studyreport

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tokentrace/tokentrace/internal/backend"
	"github.com/tokentrace/tokentrace/internal/matrix"
)

func TestWriteEngineSaid(t *testing.T) {
	s1, s4 := matrix.Setting{Parallel: 1, NumCtx: 2048}, matrix.Setting{Parallel: 4, NumCtx: 2048}
	cell := func(s matrix.Setting, rl *backend.RunnerArgs, verified string) *Cell {
		var c Cell
		c.Setting, c.RunnerLog, c.Verified = s, rl, verified
		return &c
	}
	d := &Data{Settings: []matrix.Setting{s1, s4}, Cells: map[string]*Cell{
		"a": cell(s1, &backend.RunnerArgs{Parallel: 1, CtxSize: 2048, NumCtx: 2048, KVCacheType: "f16"}, "yes"),
		"b": cell(s4, &backend.RunnerArgs{Parallel: 4, CtxSize: 8192, NumCtx: 2048, FlashAttention: "disabled"}, "yes"),
	}}
	var b bytes.Buffer
	d.writeEngineSaid(&b)
	for _, want := range []string{"| p=1 | yes | 1 slots × 2048 tokens (2048 in all), KV cache f16 |",
		"| p=4 | yes | 4 slots × 2048 tokens (8192 in all), flash attention disabled |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	(&Data{Settings: []matrix.Setting{s1}, Cells: map[string]*Cell{"a": cell(s1, nil, "unknown")}}).writeEngineSaid(&b)
	if b.Len() != 0 {
		t.Errorf("a section without anything the engine said:\n%s", b.String())
	}
}
