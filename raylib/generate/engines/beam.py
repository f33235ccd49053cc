"""Beam search over any engine that can give the top next tokens of many sequences at once (pure: no torch, no vLLM).

    from raylib.generate.engines.beam import beam_search
    beams = beam_search(top_tokens, prompt_ids, width=4, max_tokens=256, eos={2}, stopped=lambda ids: False)
    beams[0].tokens, beams[0].score, beams[0].finish_reason      # best first

The rule is vLLM's (and transformers'): each step expands every live beam by its 2 x width likeliest next tokens;
a candidate ending in EOS (or, here, completing a stop string) is set aside as finished, the best `width` of the rest
live on; at the end the finished and live beams are ranked by cumulative log-probability / length ** length_penalty
and the best `width` returned. The search ends early once `width` beams have finished and no live beam scores
above the worst of them (transformers' default rule). `top_tokens(sequences, k)` is the engine's part: for each token
sequence, its k likeliest next tokens with their log-probabilities. vLLM answers it with one-token requests in its
continuous batch (so the beams of many problems share the engine's steps); transformers with one forward pass.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

__all__ = ["BeamResult", "beam_search", "beam_text_result", "stop_check"]


@dataclasses.dataclass(frozen=True)
class BeamResult:
    tokens: tuple[int, ...]  # the answer's tokens (EOS excluded)
    score: float  # cumulative log-probability / length ** length_penalty
    finish_reason: str  # "stop" (EOS or a stop string) or "length"


def beam_search(top_tokens: Callable[[list[list[int]], int], list[list[tuple[int, float]]]], prompt: Sequence[int],
                width: int, max_tokens: int, eos: set[int], stopped: Callable[[tuple[int, ...]], bool],
                length_penalty: float = 1.0) -> list[BeamResult]:
    """The best `width` answers to `prompt` (see the module docstring); `stopped(tokens)`: whether an answer's text
    now holds a stop string."""
    if width < 1:
        raise ValueError("beam width must be at least 1")

    def score(tokens: tuple[int, ...], logprob: float, ended: bool) -> float:
        length = max(1, len(tokens) + ended)
        return logprob / length ** length_penalty

    live: list[tuple[tuple[int, ...], float]] = [((), 0.0)]
    finished: list[BeamResult] = []
    prompt = list(prompt)
    for _ in range(max_tokens):
        tops = top_tokens([prompt + list(tokens) for tokens, _ in live], 2 * width)
        expanded: list[tuple[tuple[int, ...], float]] = []
        for (tokens, logprob), top in zip(live, tops, strict=True):
            for token, token_logprob in top:
                if token in eos:
                    finished.append(BeamResult(tokens, score(tokens, logprob + token_logprob, True), "stop"))
                    continue
                grown = tokens + (token,)
                if stopped(grown):
                    finished.append(BeamResult(grown, score(grown, logprob + token_logprob, False), "stop"))
                    continue
                expanded.append((grown, logprob + token_logprob))
        expanded.sort(key=lambda beam: score(beam[0], beam[1], False), reverse=True)
        live = expanded[:width]
        if not live:
            break
        if len(finished) >= width:  # transformers' stopping rule: no live beam now beats the width-th finished one
            worst_kept = sorted((b.score for b in finished), reverse=True)[width - 1]
            if score(live[0][0], live[0][1], False) <= worst_kept:
                break
    finished += [BeamResult(tokens, score(tokens, logprob, False), "length") for tokens, logprob in live]
    finished.sort(key=lambda beam: beam.score, reverse=True)
    return finished[:width]


def beam_text_result(tokenizer, beams: list[BeamResult], stops: Sequence[str], prompt_tokens: int, prefilled: bool):
    """The GenerationResult of a beam search: one output per beam, best first, stop strings cut as vLLM cuts them."""
    from raylib.generate.engines.base import GenerationOutput, GenerationResult, truncate_at_stop

    outputs = []
    for beam in beams:
        text, _ = truncate_at_stop(tokenizer.decode(list(beam.tokens), skip_special_tokens=True), stops)
        outputs.append(GenerationOutput(text, len(beam.tokens), beam.finish_reason))
    return GenerationResult(outputs=outputs, prompt_tokens=prompt_tokens, prefilled=prefilled)


def stop_check(tokenizer, stops: Sequence[str], tail: int = 16) -> Callable[[tuple[int, ...]], bool]:
    """Whether an answer's last `tail` tokens, decoded, hold a stop string (stop strings are short)."""
    if not stops:
        return lambda tokens: False
    return lambda tokens: any(s in tokenizer.decode(list(tokens[-tail:]), skip_special_tokens=True) for s in stops)
