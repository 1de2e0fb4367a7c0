"""How each OpenAI-compatible server is asked for exactly N output tokens, and how well it can be.

The body of every request is the OpenAI ``/v1/completions`` one (``max_tokens = N``, ``temperature = 0``,
``stream = true``); servers differ in what else they understand:

=====================  ======================================  ===============================================
server                 exactly N tokens                        token count per chunk
=====================  ======================================  ===============================================
vLLM                   ``ignore_eos`` + ``min_tokens``         ``stream_options.continuous_usage_stats``
SGLang                 ``ignore_eos`` + ``min_tokens``         one per chunk, checked against final usage
llama.cpp server       ``ignore_eos``                          one per chunk, checked against final usage
llama-cpp-python       ``min_tokens`` (EOS masked until N)     one per chunk
Ollama (``/v1``)       not enforceable: ``max_tokens`` only    one per chunk; a short answer is a counted error
TGI (``/v1``)          not enforceable: ``max_tokens`` only    one per chunk; a short answer is a counted error
=====================  ======================================  ===============================================

Where the count cannot be forced a round that stops early is not timed as if it were complete: it is an error
("short") like any other, counted in load levels and failing a ``tokens_per_second`` round.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Dialect:
    kind: str
    exact_tokens: str  # how exactly N tokens are obtained, as documented above
    ignore_eos: bool = False
    min_tokens: bool = False
    include_usage: bool = True
    continuous_usage: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    def body(self, model: str, prompt: list[int] | str, new_tokens: int, *, stream: bool = True) -> dict[str, Any]:
        """The request body; the prompt goes in as given (token ids or text) and is never kept elsewhere."""
        body: dict[str, Any] = {
            "model": model,
            "prompt": prompt,
            "max_tokens": new_tokens,
            "temperature": 0.0,
            "stream": stream,
            **self.extra,
        }
        if self.ignore_eos:
            body["ignore_eos"] = True
        if self.min_tokens and not self._bias_replaces_min_tokens:
            # llama-cpp-python (0.3.36) drops both its min_tokens and logit_bias processors when given both
            # (``logits_processor = logits_processor.extend(...)`` is None): the bias must then ban EOS itself.
            body["min_tokens"] = new_tokens
        if stream and self.include_usage:
            options: dict[str, Any] = {"include_usage": True}
            if self.continuous_usage:
                options["continuous_usage_stats"] = True
            body["stream_options"] = options
        return body

    @property
    def _bias_replaces_min_tokens(self) -> bool:
        return self.kind == "llama-cpp-python" and "logit_bias" in self.extra

    @property
    def how_exact(self) -> str:
        """How this request asks for exactly N tokens, as recorded with results."""
        if self._bias_replaces_min_tokens:
            return "logit_bias from --tee-request-extra (must ban EOS; min_tokens not sent)"
        return self.exact_tokens

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "exact_tokens": self.how_exact}


DIALECTS: dict[str, Dialect] = {
    dialect.kind: dialect
    for dialect in (
        Dialect("vllm", "ignore_eos+min_tokens", ignore_eos=True, min_tokens=True, continuous_usage=True),
        Dialect("sglang", "ignore_eos+min_tokens", ignore_eos=True, min_tokens=True),
        Dialect("llama.cpp", "ignore_eos", ignore_eos=True),
        Dialect("llama-cpp-python", "min_tokens", min_tokens=True, include_usage=False),
        Dialect("ollama", "max_tokens only (not enforceable)"),
        Dialect("tgi", "max_tokens only (not enforceable)", include_usage=False),
        Dialect("generic", "ignore_eos+min_tokens (if the server honours them)", ignore_eos=True, min_tokens=True),
    )
}


def dialect_for(kind: str) -> Dialect:
    return DIALECTS.get(kind, DIALECTS["generic"])


__all__ = ["DIALECTS", "Dialect", "dialect_for"]
