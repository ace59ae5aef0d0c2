package gateway

import (
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// TestLabelSets: each kind holds exactly the labels it always had, a
// cached set is the one built fresh, and the cache stops growing at
// maxLabelSets while still answering correctly.
func TestLabelSets(t *testing.T) {
	base := labelKey{operation: "chat", provider: "ollama", model: "m", upstream: true, host: "10.0.0.1", port: 11434, scenario: "s"}
	with := func(f func(*labelKey)) labelKey { k := base; f(&k); return k }
	for _, tc := range []struct {
		name string
		key  labelKey
		want string
	}{
		{"shared", base, "gen_ai.operation.name=chat,gen_ai.provider.name=ollama,gen_ai.request.model=m,server.address=10.0.0.1,server.port=11434,tokentrace.scenario=s"},
		{"no upstream, no scenario", with(func(k *labelKey) { k.upstream, k.host, k.port, k.scenario = false, "", 0, "" }), "gen_ai.operation.name=chat,gen_ai.provider.name=ollama,gen_ai.request.model=m"},
		{"duration ok", with(func(k *labelKey) { k.kind = setDuration }), "gen_ai.operation.name=chat,gen_ai.provider.name=ollama,gen_ai.request.model=m,server.address=10.0.0.1,server.port=11434,tokentrace.scenario=s"},
		{"duration failed", with(func(k *labelKey) { k.kind, k.errorType = setDuration, "timeout" }), "error.type=timeout,gen_ai.operation.name=chat,gen_ai.provider.name=ollama,gen_ai.request.model=m,server.address=10.0.0.1,server.port=11434,tokentrace.scenario=s"},
		{"input tokens", with(func(k *labelKey) { k.kind = setInputTokens }), "gen_ai.operation.name=chat,gen_ai.provider.name=ollama,gen_ai.request.model=m,gen_ai.token.type=input,server.address=10.0.0.1,server.port=11434,tokentrace.scenario=s"},
		{"output tokens estimated", with(func(k *labelKey) { k.kind, k.estimated = setOutputTokens, true }), "gen_ai.operation.name=chat,gen_ai.provider.name=ollama,gen_ai.request.model=m,gen_ai.token.type=output,server.address=10.0.0.1,server.port=11434,tokentrace.scenario=s,tokentrace.usage.output_tokens_estimated=true"},
		{"active", with(func(k *labelKey) { k.kind = setActive }), "gen_ai.operation.name=chat,gen_ai.request.model=m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c labelSets
			for range 2 { // built, then from the cache
				set := setOf(c.get(tc.key))
				if got := set.Encoded(attribute.DefaultEncoder()); got != tc.want {
					t.Errorf("labels\n got %s\nwant %s", got, tc.want)
				}
			}
		})
	}
	var c labelSets
	for i := range maxLabelSets + 10 {
		k := with(func(k *labelKey) { k.model = fmt.Sprint("m", i) })
		if got := setOf(c.get(k)); got.Len() != 6 {
			t.Fatalf("key %d: %d labels, want 6", i, got.Len())
		}
	}
	if c.len() != maxLabelSets {
		t.Fatalf("cache holds %d sets, want at most %d", c.len(), maxLabelSets)
	}
}

// setOf reads the attribute set back out of a measurement option.
func setOf(o metric.MeasurementOption) attribute.Set {
	return metric.NewRecordConfig([]metric.RecordOption{o}).Attributes()
}
