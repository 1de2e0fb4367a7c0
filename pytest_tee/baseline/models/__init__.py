"""Decision models: how a pair of runs is judged. One interface (``base.DecisionModel``), one module per model,
and one function, ``choose_model``, that picks the model for the evidence at hand:

- ``blocks``: ABBA blocks of ``pytest-tee ab`` (sessions interleaved on one runner);
- ``rounds``: rounds of both sides interleaved in one process (only then are rounds exchangeable);
- ``history``: one head session against ≥ 3 stored runs of its fingerprint, which measure the between-session noise;
- ``single``: one session a side with the between-session noise assumed (the cautious fallback).

Every path that judges runs — the in-session gate, ``pytest-tee compare``, ``pytest-tee ab`` and
``pytest-tee report --history`` — calls ``decide``, so the same runs get the same verdict everywhere.
"""

from __future__ import annotations

from pytest_tee.baseline.models import blocks, history, rounds, single
from pytest_tee.baseline.models.base import DEFAULT_ALPHA, DecisionModel, Evidence, Rule
from pytest_tee.baseline.models.outcome import classify
from pytest_tee.records import Verdict

MODELS: dict[str, DecisionModel] = {model.NAME: model for model in (rounds, single, history, blocks)}


def choose_model(evidence: Evidence) -> DecisionModel:
    """The model for this evidence: blocks when there are blocks, rounds when the rounds were interleaved in one
    process, history when ≥ 3 stored runs measure the between-session noise, else the single-session fallback."""
    if evidence.blocks:
        return blocks
    if evidence.interleaved:
        return rounds
    if history.applies(evidence):
        return history
    return single


def decide(evidence: Evidence, rule: Rule) -> Verdict:
    """The verdict for one benchmark and metric, by the model ``choose_model`` picks."""
    return choose_model(evidence).decide(evidence, rule)


def rejudge(verdict: Verdict, *, alpha: float = DEFAULT_ALPHA, p_value: float, family_size: int) -> Verdict:
    """The outcome again with another p-value (Holm's adjusted one), by the rule and hint of the verdict's model."""
    model = MODELS.get(verdict.model, single)
    return classify(verdict, model.hint, model.standing_note, alpha=alpha, p_value=p_value, family_size=family_size)


__all__ = ["DEFAULT_ALPHA", "MODELS", "DecisionModel", "Evidence", "Rule", "choose_model", "decide", "rejudge"]
