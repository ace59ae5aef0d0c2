package simulator

import "time"

// The runner's batch rules, as Ollama v0.17.4's llamarunner (the runner that
// serves llama-architecture GGUF models such as the generated ones) and the
// llama.cpp it vendors apply them:
//
//  1. Every busy slot is in every batch (runner/llamarunner/runner.go,
//     processBatch, lines 415-489): a slot reading its prompt adds up to
//     BatchSize of its prompt tokens, a generating slot its one token. The
//     limit is per sequence (`if i >= batch.Size()` counts the sequence's
//     own inputs; the batch holds BatchSize × slots, llama/llama.go line
//     125), so no slot waits for another's prompt: a batch mixes prompt
//     chunks and decode tokens, and a generating slot's token comes once
//     per batch, however long the batch.
//  2. A prompt is read in chunks of BatchSize of the engine's tokens, the
//     rest last: a prompt's last chunk can be short, and how short decides
//     how long the slots generating beside it wait for their next token.
//     The simulator's positions map onto the engine's by the profile's
//     token line (Profile.enginePos), a cached prefix included.
//  3. A slot samples when the batch that read its last prompt token ends
//     (lines 514-539); a request that arrives while a batch runs joins the
//     next one (processBatch holds the runner's lock for the whole batch,
//     lines 406-410, and the request handler needs it, line 689).
//  4. llama.cpp computes a batch in micro-batches of at most BatchSize
//     tokens (n_ubatch, llama/llama.go line 126), each a forward pass that
//     pays StepBase. With one slot it cuts the batch in order. With more,
//     every slot has a KV stream of its own (kv_unified is false;
//     src/llama-kv-cache.cpp line 519 uses split_equal), and each
//     micro-batch takes the same number of tokens from each of a run of
//     slots with consecutive ids (src/llama-batch.cpp split_equal, lines
//     506-609): one decode token beside a prompt chunk is two micro-batches.
//     The simulator's slot index stands for both the runner's sequence
//     index and its cache slot id.
//  5. A slot freed when a batch ends takes a waiting request only after the
//     next batch if other slots are busy (engine.admitLocked says why); an
//     idle runner takes it at once.
//  6. A request that becomes ready while a batch runs (it arrives, or rule
//     5 releases its slot) often misses the next batch too, while the
//     runner has other work: the runner computes each batch holding its
//     lock (processBatch, lines 406-410) and takes it again at once for the
//     next (the loop at lines 382-394), and the request needs that lock to
//     take its slot (completion, line 689). Go's sync.Mutex wakes the
//     waiting request when the batch ends, but the running loop usually
//     locks again before the woken goroutine runs; only then does the
//     mutex, its waiter starved for over 1 ms, hand the lock over at the
//     next unlock. Sometimes the woken request wins. Profile.LateJoinRate
//     is the share of batch ends at which the requests that became ready
//     during the batch miss the next one. Profile.LateJoinRateTogether is
//     that share for requests whose prompts take more than one batch and
//     that reached an idle runner together with the request that started
//     the batch (within TogetherWindow of its start): the calibration's
//     join probe measured them at 0.45 on the machine where every other
//     join (a short prompt sent together, a long one sent 300 ms later,
//     at a batch end where a slot samples or mid-prompt) missed at 0.85.
//     Why a long prompt sent together wins the lock more often is not
//     known. lateJoins spreads the misses of each kind evenly over the
//     batch ends of that kind, so the simulator stays deterministic. An
//     idle runner takes a request at once.

// stepTime is how long a batch takes:
//
//	StepBase·(micro-batches) + StepPerSeq·(slots in it) + PrefillPerToken·(prompt tokens in it)
//	  + AttentionPerPair·(token pairs its prompt tokens attend to)
//	  + DecodePerContextToken·(context tokens its decoding slots attend to)
//
// every count in the engine's tokens.
func (e *engine) stepTime(batch []work) time.Duration {
	p := e.prof
	tokens := make([]int, len(batch))
	ids := make([]int, len(batch))
	prefill := 0
	for i, w := range batch {
		tokens[i], ids[i] = max(1, w.prefill), i
		if w.job != nil {
			ids[i] = w.job.slot
		}
		prefill += w.prefill
	}
	d := time.Duration(microBatches(tokens, ids, p.BatchSize, len(e.slots) > 1))*p.StepBase +
		time.Duration(len(batch))*p.StepPerSeq + time.Duration(prefill)*p.PrefillPerToken
	if p.AttentionPerPair > 0 || p.DecodePerContextToken > 0 {
		pairs, context := attention(batch)
		d += time.Duration(pairs*float64(p.AttentionPerPair) + context*float64(p.DecodePerContextToken))
	}
	return e.scaled(d)
}

// attention counts what the batch's tokens attend to: pairs for the prompt
// chunks (a chunk of k tokens read from position pos attends to k·pos +
// k²/2), context for the decoding slots (the whole prompt and the answer so
// far, each).
func attention(batch []work) (pairs, context float64) {
	for _, w := range batch {
		if w.job == nil {
			continue
		}
		if w.prefill > 0 {
			k := float64(w.prefill)
			pairs += k * (float64(w.job.engPos) + k/2)
		} else {
			context += float64(w.job.engLen + len(w.job.out))
		}
	}
	return pairs, context
}

// microBatches is how many forward passes llama.cpp computes a batch in
// (rule 4): tokens[i] is what the i-th slot in the batch adds, ids[i] its
// slot id, size the micro-batch size; streams is true when every slot has
// its own KV stream (more than one slot).
func microBatches(tokens, ids []int, size int, streams bool) int {
	total := 0
	for _, t := range tokens {
		total += t
	}
	if total == 0 {
		return 0
	}
	if !streams || size <= 0 {
		return max(1, (total+size-1)/max(1, size))
	}
	rem := append([]int(nil), tokens...)
	n := 0
	for {
		// The first slot with tokens left starts the set; the slots after
		// it join while their ids follow on (split_equal's sequential rule).
		first := -1
		for i, r := range rem {
			if r > 0 {
				first = i
				break
			}
		}
		if first < 0 {
			return n
		}
		set := []int{first}
		for i := first + 1; i < len(rem) && rem[i] > 0 && ids[i] == ids[set[len(set)-1]]+1; i++ {
			set = append(set, i)
		}
		per := max(1, size/len(set))
		for _, i := range set {
			per = min(per, rem[i])
		}
		for _, i := range set {
			rem[i] -= per
		}
		n++
	}
}

// TogetherWindow is how soon after an idle runner started a batch a request
// must arrive to count as sent together with the one that started it (rule
// 6): the calibration's join probe sends its two requests 1 ms apart, and
// one sent 300 ms later joins as often late as any other.
const TogetherWindow = 100 * time.Millisecond

// lateJoins decides rule 6 for each batch end at which requests became
// ready, missing the next batch at the rate of their kind (long prompts
// sent together, or any other): per kind an accumulator that gains the
// rate at each decision and misses when it reaches 1 (error diffusion), so
// any run of decisions of one kind misses the rate's share of them,
// rounded, without randomness.
type lateJoins struct {
	rate [2]float64 // by kind: 0 any, 1 long prompts sent together
	acc  [2]float64
	// decided is the batch end last decided, missed its outcome.
	decided int
	missed  bool
}

func newLateJoins(rate, together float64) lateJoins {
	return lateJoins{rate: [2]float64{rate, together}, acc: [2]float64{0.5, 0.5}, decided: -1}
}

// miss reports whether the requests that became ready during batch n miss
// the next batch; together tells whether they are long prompts sent
// together with the batch's start. Asked again for the same n, it answers
// the same.
func (l *lateJoins) miss(n int, together bool) bool {
	if n == l.decided {
		return l.missed
	}
	k := 0
	if together {
		k = 1
	}
	l.decided = n
	l.acc[k] += l.rate[k]
	l.missed = l.acc[k] >= 1
	if l.missed {
		l.acc[k]--
	}
	return l.missed
}
