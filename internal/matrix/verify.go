package matrix

import (
	"context"
	"fmt"
	"strings"

	"github.com/tokentrace/tokentrace/internal/backend"
)

// verify compares what the engine says it runs with the setting: the
// runner's log (slots and context per slot, from either generation of
// Ollama's log), else /api/ps's context, else nothing.
func (e *ProcessEngine) verify(ctx context.Context, client *backend.Ollama, s Setting) (int, int, string, *backend.RunnerArgs) {
	ra, started := e.proc.Log().Runner()
	if started && ra.Parallel > 0 {
		return ra.Parallel, ra.CtxSize, verdict(s, ra), &ra
	}
	why := "no runner start in the engine's log"
	if started {
		why = "the engine's log started a runner but no line told its slots"
		if len(ra.From) > 0 {
			why += " (read: " + strings.Join(ra.From, ", ") + ")"
		}
	}
	var log *backend.RunnerArgs
	if started {
		log = &ra
	}
	if ps, err := client.PS(ctx); err == nil && len(ps) > 0 && ps[0].ContextLength > 0 {
		if ps[0].ContextLength == s.NumCtx {
			return 0, ps[0].ContextLength, "context only (from /api/ps): " + why, log
		}
		return 0, ps[0].ContextLength, fmt.Sprintf("no: /api/ps context %d, want %d; %s", ps[0].ContextLength, s.NumCtx, why), log
	}
	return 0, 0, "unknown: " + why + ", and no context in /api/ps", log
}

// verdict says whether the runner the log describes is the setting: "yes",
// or "no: …" with what differs and what the engine said about it.
func verdict(s Setting, ra backend.RunnerArgs) string {
	var diff []string
	if ra.Parallel != s.Parallel {
		diff = append(diff, fmt.Sprintf("%d slots, want %d", ra.Parallel, s.Parallel))
	}
	if slot := ra.SlotContext(); slot != s.NumCtx {
		diff = append(diff, fmt.Sprintf("a context of %d per slot, want %d", slot, s.NumCtx))
	} else if ra.CtxSize > 0 && ra.CtxSize != s.NumCtx*s.Parallel {
		diff = append(diff, fmt.Sprintf("a whole context of %d, want %d", ra.CtxSize, s.NumCtx*s.Parallel))
	}
	// llama.cpp pads each sequence's context up to a multiple of 256: more
	// is fine, less is not what was asked.
	if ra.CtxPerSlot > 0 && ra.CtxPerSlot < s.NumCtx {
		diff = append(diff, fmt.Sprintf("llama.cpp gave each sequence %d tokens, want %d", ra.CtxPerSlot, s.NumCtx))
	}
	if len(ra.Conflicts) > 0 {
		diff = append(diff, "its log disagrees with itself ("+strings.Join(ra.Conflicts, "; ")+")")
	}
	if len(diff) == 0 {
		return "yes"
	}
	v := "no: the runner has " + strings.Join(diff, ", ")
	if len(ra.Warnings) > 0 {
		v += "; the engine warned: " + strings.Join(ra.Warnings, "; ")
	}
	return v
}
