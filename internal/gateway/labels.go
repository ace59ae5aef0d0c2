package gateway

import (
	"strings"

	"github.com/tokentrace/tokentrace/internal/bounded"
)

// overflowValue stands for every label value past a cap.
const overflowValue = "_other"

// maxLabelLen bounds one label value (bytes).
const maxLabelLen = 64

// boundedValues admits at most max distinct label values; later ones
// become overflowValue, so a client cannot grow the metric series without
// bound by inventing model or scenario names.
type boundedValues struct{ set *bounded.Strings }

func newBoundedValues(max int) *boundedValues {
	return &boundedValues{set: bounded.NewStrings(max)}
}

func (b *boundedValues) value(v string) string {
	if v == "" {
		return v
	}
	kept, ok := bounded.Keep(b.set, v)
	if !ok {
		return overflowValue
	}
	return kept
}

// boundModel keeps a model name fit for a label: bounded in length.
func boundModel(s string) string { return clip(s, 128) }

// boundScenario keeps a scenario header value fit for a label: printable
// ASCII letters, digits and ._-:/ only, bounded in length.
func boundScenario(s string) string {
	s = clip(strings.TrimSpace(s), maxLabelLen)
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			r == '.', r == '_', r == '-', r == ':', r == '/':
			return r
		}
		return '_'
	}, s)
}
