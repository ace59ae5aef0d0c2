package gateway

import (
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
)

// labelKind says which metric labels a set holds: the labels every figure
// of a request shares, or those with what one group of instruments adds.
type labelKind uint8

const (
	setShared       labelKind = iota // TTFT, TPOT, gaps, thinking time, Ollama phases
	setDuration                      // + error.type when the request failed
	setInputTokens                   // + gen_ai.token.type=input
	setOutputTokens                  // + gen_ai.token.type=output (and estimated)
	setActive                        // operation and model only: the in-flight gauge
)

// labelKey is one metric label set; every value in it is bounded (models
// and scenarios by boundedValues, upstreams and error types by
// configuration and code).
type labelKey struct {
	kind                                 labelKind
	operation, provider, model, scenario string
	upstream                             bool // an upstream was chosen: host and port
	host                                 string
	port                                 int
	errorType                            string
	estimated                            bool
}

// attrs are the key's labels, in the order they have always been given.
func (k labelKey) attrs() []attribute.KeyValue {
	if k.kind == setActive {
		return []attribute.KeyValue{semconv.GenAIOperationNameKey.String(k.operation), semconv.GenAIRequestModelKey.String(k.model)}
	}
	attrs := make([]attribute.KeyValue, 0, 8)
	attrs = append(attrs, semconv.GenAIOperationNameKey.String(k.operation), semconv.GenAIProviderNameKey.String(k.provider),
		semconv.GenAIRequestModelKey.String(k.model))
	if k.upstream {
		attrs = append(attrs, semconv.ServerAddressKey.String(k.host), semconv.ServerPortKey.Int(k.port))
	}
	if k.scenario != "" {
		attrs = append(attrs, attrScenario.String(k.scenario))
	}
	switch k.kind {
	case setDuration:
		if k.errorType != "" {
			attrs = append(attrs, semconv.ErrorTypeKey.String(k.errorType))
		}
	case setInputTokens:
		attrs = append(attrs, semconv.GenAITokenTypeInput)
	case setOutputTokens:
		attrs = append(attrs, semconv.GenAITokenTypeOutput)
		if k.estimated {
			attrs = append(attrs, attrEstimated.Bool(true))
		}
	}
	return attrs
}

// maxLabelSets bounds the cache; combinations past it are built per use,
// as they all were before the cache.
const maxLabelSets = 4096

// labelSets keeps each label set a request records with, made once: a set
// costs a sort and several allocations to build, and a request records
// with five of them.
type labelSets struct {
	mu   sync.RWMutex
	sets map[labelKey]metric.MeasurementOption
}

func (c *labelSets) get(k labelKey) metric.MeasurementOption {
	c.mu.RLock()
	o, ok := c.sets[k]
	c.mu.RUnlock()
	if ok {
		return o
	}
	o = metric.WithAttributeSet(attribute.NewSet(k.attrs()...))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sets == nil {
		c.sets = map[labelKey]metric.MeasurementOption{}
	}
	if len(c.sets) < maxLabelSets {
		c.sets[k] = o
	}
	return o
}

func (c *labelSets) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.sets)
}
