package main

import (
	"reflect"
	"testing"

	"github.com/tokentrace/tokentrace/internal/matrix"
)

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		bad  bool
	}{
		{"llama-server -np {parallel} -c {ctx}", []string{"llama-server", "-np", "{parallel}", "-c", "{ctx}"}, false},
		{`vllm serve 'my model' --x "a b\"c"`, []string{"vllm", "serve", "my model", "--x", `a b"c`}, false},
		{`a\ b  c`, []string{"a b", "c"}, false},
		{"", nil, false},
		{"a 'b", nil, true},
		{`a "b`, nil, true},
	} {
		got, err := splitCommand(tc.in)
		if (err != nil) != tc.bad || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitCommand(%q) = %q, %v; want %q (error %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestCommandBackendArgs(t *testing.T) {
	f := engineFlags{backend: "command", cmd: "sleep 0 -np {parallel} -c {ctx} -cs {ctx_per_slot} --port {port}", port: 1234}
	e, url, err := f.engine(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pe := e.(*matrix.ProcessEngine)
	got := pe.Args(matrix.Setting{Parallel: 4, NumCtx: 2048})
	want := []string{"0", "-np", "4", "-c", "8192", "-cs", "2048", "--port", "1234"}
	if url != "http://127.0.0.1:1234" || pe.Path != "sleep" || !reflect.DeepEqual(got, want) {
		t.Errorf("engine %s %q at %s; want sleep %q", pe.Path, got, url, want)
	}
}
