package gateway

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/tokentrace/tokentrace/internal/stream"
)

// What every API adds to the span beyond the chat figures: which API it
// was, when the visible answer began after reasoning, and the reasoning
// and cached token counts the server reported (docs/METRICS.md).
const (
	attrAPI           = attribute.Key("tokentrace.api")
	attrThinkingTime  = attribute.Key("tokentrace.thinking_time")
	eventFirstContent = "first_content"
)

// apiAttrs are the span attributes of the measurement's API and token
// details.
func apiAttrs(m *stream.Measurement) []attribute.KeyValue {
	attrs := []attribute.KeyValue{attrAPI.String(m.API.String())}
	if m.ReasoningTokensReported {
		attrs = append(attrs, semconv.GenAIUsageReasoningOutputTokens(m.ReasoningTokens))
	}
	if m.CachedInputTokensReported {
		attrs = append(attrs, semconv.GenAIUsageCacheReadInputTokens(m.CachedInputTokens))
	}
	if th, ok := m.ThinkingTime(); ok {
		attrs = append(attrs, attrThinkingTime.Float64(th.Seconds()))
	}
	return attrs
}

// addFirstContent marks when the visible answer began, when reasoning came
// before it.
func (ex *exchange) addFirstContent(m *stream.Measurement) {
	if _, ok := m.ThinkingTime(); ok {
		ex.span.AddEvent(eventFirstContent, trace.WithTimestamp(m.FirstContent))
	}
}

// recordThinking records the thinking time of a request that reasoned
// before it answered.
func (ex *exchange) recordThinking(ctx context.Context, m *stream.Measurement, set metric.RecordOption) {
	if th, ok := m.ThinkingTime(); ok {
		ex.g.inst.ThinkingTime.Record(ctx, th.Seconds(), set)
	}
}
