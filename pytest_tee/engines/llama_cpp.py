"""The llama.cpp engine: GGUF weights through llama-cpp-python's ctypes API, in this process.

Loading: real GGUF from ``--tee-model-path`` (a ``.gguf`` file, or a folder with one file per quantization), else a
synthetic GGUF of the checkpoint's exact shapes (``checkpoints.gguf_synthetic``, cached). The header is checked
before llama.cpp sees the file (whole, right architecture, right shapes, the quantization asked for), and memory is
checked against the file's real tensor bytes plus the KV cache.

A round drives llama.cpp's decode loop directly rather than through ``Llama.generate``/``create_completion``: one
``llama_decode`` of the prompt, then one per new token, greedy (argmax over the logits llama.cpp returns; reading
them waits for the computation, so each stamp is taken when the token really exists). End-of-sequence is just
another token: the loop always produces exactly N. Python between two decodes is two ctypes calls, an argmax and a
clock reading: ~11 µs per step on a tiny model; ~150 µs in all for the 1.5B, most of it the argmax reading 152k
logits another core just wrote, against ~50 ms per token (0.3 %; measured in benchmarks/tooling/bench_llama_cpp.py).
llama.cpp's own performance counters (``llama_perf_context``) are reset before and read after every round; ``take``
checks that they counted exactly the prompt and N − 1 decode steps, and keeps them on the round (``last_counters``)
so the fidelity benchmark can compare.

What decides its speed goes into the engine block and the comparison key: the llama-cpp-python version and
llama.cpp's ``system_info`` (SIMD features, BLAS, OpenMP…), threads for decode and for the prompt, context and batch
sizes, mmap/mlock, flash attention, KV-cache type and offloaded layers.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_tee.engines.base import EngineError, LoadRequest
from pytest_tee.records import EngineInfo

if TYPE_CHECKING:
    from pytest_tee.checkpoints.catalogue import Checkpoint
    from pytest_tee.checkpoints.gguf_files import GGUFInfo
    from pytest_tee.checkpoints.loading import LoadedModel
    from pytest_tee.checkpoints.prompts import Prompt
    from pytest_tee.measure.timing import RoundRecord, Workload

NAME = "llama.cpp"
DEFAULT_CONTEXT = 4096  # Ollama's default num_ctx; grown when the workload needs more
CONTEXT_STEP = 256


@dataclass(frozen=True)
class LlamaSettings:
    """The run-time settings of one llama.cpp context (all go into the comparison key)."""

    n_threads: int
    n_threads_batch: int
    n_ctx: int
    n_batch: int = 512
    n_ubatch: int = 512
    use_mmap: bool = True
    use_mlock: bool = False
    flash_attn: bool = False
    n_gpu_layers: int = 0  # -1: every layer (CUDA builds on a cuda execution environment)
    kv_type: str = "f16"

    @classmethod
    def for_request(cls, request: LoadRequest, trained_context: int | None = None) -> LlamaSettings:
        threads = request.threads or default_threads()
        prompt, new, _batch = request.workload
        default = min(DEFAULT_CONTEXT, trained_context or DEFAULT_CONTEXT)  # llama.cpp warns beyond training
        n_ctx = max(default, -(-(prompt + new) // CONTEXT_STEP) * CONTEXT_STEP)
        return cls(
            n_threads=threads,
            n_threads_batch=threads,
            n_ctx=n_ctx,
            n_gpu_layers=-1 if request.device.startswith("cuda") else 0,
        )


def default_threads() -> int:
    """llama.cpp's own default: one thread per physical core (here: of the cores this process may use)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except ImportError:
        physical = None
    return max(1, min(usable, physical or usable))


class LlamaCppEngine:
    name = NAME

    def unavailable_reason(self, execution_env: str, device: str) -> str | None:
        from pytest_tee.engines import missing_library

        problem = missing_library(NAME)
        if problem:
            return problem
        if device.startswith("cuda"):
            import llama_cpp

            if not llama_cpp.llama_supports_gpu_offload():
                return (
                    "llama.cpp here is a CPU build (no GPU offload): it offers cpu/tdx, not "
                    f"{execution_env}; rebuild with CMAKE_ARGS='-DGGML_CUDA=on' pip install llama-cpp-python"
                )
        return None

    def cache_key(self, request: LoadRequest) -> tuple[Any, ...]:
        return (NAME, request.device, request.precision, request.weights_mode, request.threads)

    def load(self, checkpoint: Checkpoint, request: LoadRequest) -> LoadedModel:
        from pytest_tee.checkpoints.gguf_files import GGUFError, check_matches, read_gguf
        from pytest_tee.checkpoints.loading import LoadedModel

        started = time.perf_counter()
        quant = request.precision
        trained = checkpoint.config.get("max_position_embeddings")
        settings = LlamaSettings.for_request(request, int(trained) if isinstance(trained, int) else None)
        path, kind, source, build = _resolve_gguf(checkpoint, quant, request, settings)
        try:
            info = read_gguf(path)
            check_matches(info, checkpoint)
        except GGUFError as exc:
            raise EngineError(str(exc)) from None
        if kind == "real" and info.file_type is not None and info.file_type != quant:
            raise EngineError(f"{path}: holds {info.file_type} weights, but --tee-quant asks for {quant}")
        placement = _preflight(checkpoint, info, settings, request)
        llm = _open(path, settings)
        state = {"settings": asdict(settings), "gguf": info.to_dict(), **build}
        return LoadedModel(
            checkpoint=checkpoint,
            model=llm,
            tokenizer=None,  # prompts are token ids; a GGUF's own vocabulary is not a transformers tokenizer
            weights=kind,
            dtype=quant,
            device=request.device,
            placement=placement,
            weights_source=source,
            dtype_reason=request.precision_reason or "--tee-quant",
            load_seconds=time.perf_counter() - started,
            engine=NAME,
            vocab_size=int(llm.n_vocab()),
            engine_state={**state, "gguf_info": info},
        )

    def rounds(self, loaded: LoadedModel, prompt: Prompt, workload: Workload, threads: int | None) -> LlamaRound:
        if workload.batch != 1:
            raise EngineError(f"the llama.cpp engine measures one sequence per round (batch 1), not {workload.batch}")
        settings = loaded.engine_state.get("settings", {})
        n_ctx = int(settings.get("n_ctx", 0) or loaded.model.n_ctx())
        if workload.prompt_tokens + workload.new_tokens > n_ctx:
            raise EngineError(
                f"prompt {workload.prompt_tokens} + {workload.new_tokens} new tokens exceed the llama.cpp context of "
                f"{n_ctx} tokens (set by --tee-prompt-tokens/--tee-new-tokens at load)"
            )
        ids = [int(token) for token in prompt.input_ids[0].tolist()]
        return LlamaRound(loaded.model, ids, workload)

    def describe(self, loaded: LoadedModel) -> EngineInfo:
        settings = dict(loaded.engine_state.get("settings", {}))
        build = build_info()
        key = {**settings, "llama_cpp_python": build["llama_cpp_python"], "system_info": build["system_info"]}
        info: GGUFInfo | None = loaded.engine_state.get("gguf_info")
        recorded = {
            **settings,
            "threads": settings.get("n_threads"),
            "gguf": loaded.engine_state.get("gguf", {}),
        }
        for extra in ("synthetic_seconds", "synthetic_cached"):
            if extra in loaded.engine_state:
                recorded[extra] = loaded.engine_state[extra]
        return EngineInfo(
            name=NAME,
            quantization=str(loaded.dtype),
            build=build,
            settings=recorded,
            key=key,
            weight_bytes=info.decode_bytes if info is not None else None,
        )


def build_info() -> dict[str, Any]:
    import llama_cpp

    try:
        version = metadata.version("llama_cpp_python")
    except metadata.PackageNotFoundError:
        version = str(getattr(llama_cpp, "__version__", "unknown"))
    return {
        "llama_cpp_python": version,
        "system_info": llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip(),
        "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
    }


def _resolve_gguf(
    checkpoint: Checkpoint, quant: str, request: LoadRequest, settings: LlamaSettings
) -> tuple[Path, str, str, dict[str, Any]]:
    """(file, "real" | "synthetic", where it came from, build facts) for this checkpoint and quantization.

    Real weights first (``--tee-model-path``, then a ``…-GGUF`` repository already in the Hugging Face cache),
    unless ``--tee-weights=synthetic``; then the synthetic file, unless ``--tee-weights=real``.
    """
    from pytest_tee.checkpoints.gguf_files import GGUFError, find_cached_gguf, find_gguf
    from pytest_tee.checkpoints.gguf_synthetic import SyntheticGGUFError, synthetic_gguf
    from pytest_tee.checkpoints.weights import ModelUnavailable, hf_hub_cache

    given = request.model_paths.get(checkpoint.id)
    looked: list[str] = []  # every place checked, for --tee-weights=real's error
    passed_over: list[str] = []  # a --tee-model-path without this quantization, for the synthetic source line
    if given is not None and request.weights_mode != "synthetic":
        try:
            found = find_gguf(given, quant) if (given.is_file() or any(given.glob("*.gguf"))) else None
        except GGUFError as exc:
            raise EngineError(str(exc)) from None
        if found is not None:
            return found, "real", f"GGUF {found} (--tee-model-path)", {}
        passed_over.append(f"no {quant} GGUF in {given}")
        looked += passed_over
    if request.weights_mode != "synthetic":
        cached = find_cached_gguf(checkpoint, quant, hf_hub_cache(), looked)
        if cached is not None:
            return cached, "real", f"GGUF {cached} (Hugging Face cache)", {}
    if request.weights_mode == "real":
        raise ModelUnavailable(
            f"--tee-weights=real: no real {quant} GGUF for {checkpoint.id} ({'; '.join(looked) or 'none given'}); "
            f"give one with --tee-model-path={checkpoint.id}=FILE.gguf or a folder of GGUF files"
        )
    _preflight_synthetic(checkpoint, quant, settings, request)
    try:
        built = synthetic_gguf(checkpoint, quant, seed=request.seed, threads=settings.n_threads)
    except SyntheticGGUFError as exc:
        raise ModelUnavailable(str(exc)) from None
    how = "cached" if built.cached else f"built in {built.seconds:.1f} s"
    source = f"synthetic GGUF ({'; '.join([request.weights_mode, *passed_over])}): {built.path} ({how})"
    return (
        built.path,
        "synthetic",
        source,
        {"synthetic_seconds": round(built.seconds, 3), "synthetic_cached": built.cached},
    )


def _kv_bytes(checkpoint: Checkpoint, settings: LlamaSettings) -> int:
    return settings.n_ctx * checkpoint.kv_cache_bytes_per_token("float16")


def _preflight_synthetic(checkpoint: Checkpoint, quant: str, settings: LlamaSettings, request: LoadRequest) -> None:
    """Before writing gigabytes: would the file (estimated from bits per weight) fit in memory at all?"""
    from pytest_tee.checkpoints.gguf_quant import QUANTS

    estimate = int(checkpoint.parameters * QUANTS[quant].bits_per_weight / 8)
    _check_fits(checkpoint, estimate, settings, request, f"~{quant} estimate")


def _preflight(checkpoint: Checkpoint, info: GGUFInfo, settings: LlamaSettings, request: LoadRequest) -> dict[str, Any]:
    need = _check_fits(checkpoint, info.tensor_bytes, settings, request, f"{info.path.name}")
    return {
        "strategy": "llama.cpp",
        "n_gpu_layers": settings.n_gpu_layers,
        "memory_estimate": {"weights": info.tensor_bytes, "kv_cache": _kv_bytes(checkpoint, settings), "total": need},
    }


def _check_fits(
    checkpoint: Checkpoint, weight_bytes: int, settings: LlamaSettings, request: LoadRequest, what: str
) -> int:
    from pytest_tee.checkpoints.preflight import available_memory, gib
    from pytest_tee.checkpoints.weights import ModelUnavailable

    kv = _kv_bytes(checkpoint, settings)
    # Compute buffers: logits for a batch plus activations; a fixed margin covers the rest.
    work = settings.n_batch * checkpoint.vocab_size * 4 + (256 << 20)
    need = weight_bytes + kv + work
    if request.available_bytes is not None:
        available, where = request.available_bytes, "as given"
    else:
        memory, where = available_memory("cpu")
        available = sum(memory.values())
    if need > available:
        raise ModelUnavailable(
            f"{checkpoint.id} with llama.cpp needs {gib(need)} ({what}: {gib(weight_bytes)} weights, "
            f"{gib(kv)} KV cache for {settings.n_ctx} tokens, {gib(work)} working memory), but only "
            f"{gib(available)} is available ({where})"
        )
    return need


def _open(path: Path, settings: LlamaSettings) -> Any:
    from llama_cpp import Llama

    from pytest_tee.checkpoints.gguf_synthetic import quiet_llama

    try:
        with quiet_llama():
            return Llama(
                model_path=str(path),
                n_ctx=settings.n_ctx,
                n_batch=settings.n_batch,
                n_ubatch=settings.n_ubatch,
                n_threads=settings.n_threads,
                n_threads_batch=settings.n_threads_batch,
                use_mmap=settings.use_mmap,
                use_mlock=settings.use_mlock,
                flash_attn=settings.flash_attn,
                n_gpu_layers=settings.n_gpu_layers,
                verbose=False,
            )
    except ValueError as exc:  # llama-cpp-python: "Failed to load model from file: …"
        raise EngineError(f"{path}: llama.cpp could not load it ({exc})") from None


_NO_LOGITS = -1000  # not a llama_decode status


def _address_of(pointer: Any) -> int | None:
    import ctypes

    return ctypes.cast(pointer, ctypes.c_void_p).value


class LlamaRound:
    """One prompt × workload on one llama.cpp context; prepare/timed/take as in ``engines.base``."""

    def __init__(
        self, llm: Any, prompt_ids: list[int], workload: Workload, clock: Callable[[], float] = time.perf_counter
    ):
        import llama_cpp
        import numpy as np

        from pytest_tee.measure.timing import PeakMemory

        self.llm = llm
        self.workload = workload
        self.prompt_tokens = len(prompt_ids)
        self._lib = llama_cpp
        self._ctx = llm.ctx
        self._n_vocab = int(llm.n_vocab())
        self._prompt = (llama_cpp.llama_token * len(prompt_ids))(*prompt_ids)
        self._one = (llama_cpp.llama_token * 1)()
        self._step_batch = llama_cpp.llama_batch_get_one(self._one, 1)
        self._address = _address_of
        self._clock = clock
        self._memory = PeakMemory("cpu")
        self._argmax = np.argmax
        self._as_array = np.ctypeslib.as_array
        self._last: tuple[float, list[float], float, list[int], int] | None = None
        self.last_counters: dict[str, float] | None = None

    def prepare(self) -> None:
        """Untimed: garbage collected, memory peaks reset, KV cache emptied, llama.cpp's counters zeroed."""
        lib = self._lib
        gc.collect()
        self._memory.reset()
        # Work queued on this context by anyone else is finished first, so it cannot land in this round's counters.
        lib.llama_synchronize(self._ctx)
        lib.llama_memory_clear(lib.llama_get_memory(self._ctx), True)
        lib.llama_perf_context_reset(self._ctx)

    def timed(self) -> None:
        """The prompt in one decode, then N greedy tokens; a stamp when each token is known. Nothing else.

        Lean on purpose: at ~0.1 ms a step (tiny models) every microsecond of Python between two decodes is a
        percent of the rate. The one-token batch is built once (it points at ``self._one``), and the numpy view
        of the logits is remade only when llama.cpp moves its output buffer.
        """
        from pytest_tee.measure.timing import gc_paused

        lib, ctx, clock, n_vocab = self._lib, self._ctx, self._clock, self._n_vocab
        decode, logits_at, address = lib.llama_decode, lib.llama_get_logits_ith, self._address
        argmax, as_array, one, step = self._argmax, self._as_array, self._one, self._step_batch
        new_tokens = self.workload.new_tokens
        stamps: list[float] = []
        tokens: list[int] = []
        view: Any = None
        at: int | None = None
        with gc_paused():
            start = clock()
            status = decode(ctx, lib.llama_batch_get_one(self._prompt, self.prompt_tokens))
            while status == 0:
                logits = logits_at(ctx, -1)  # waits for the computation: the token exists once this returns
                where = address(logits)
                if where != at:
                    if not where:
                        status = _NO_LOGITS
                        break
                    view, at = as_array(logits, shape=(n_vocab,)), where
                token = int(argmax(view))
                stamps.append(clock())
                tokens.append(token)
                if len(tokens) == new_tokens:
                    break
                one[0] = token  # end-of-sequence or not: it is fed back like any other token
                status = decode(ctx, step)
            end = clock()
        self._last = (start, stamps, end, tokens, status)

    def take(self) -> RoundRecord:
        """Untimed: exactly N tokens, and llama.cpp's own counters saw the prompt and N − 1 decode steps."""
        from pytest_tee.measure.metrics import RoundError, RoundTimes
        from pytest_tee.measure.timing import RoundRecord

        if self._last is None:
            raise RoundError("no round was timed")
        (start, stamps, end, tokens, status), self._last = self._last, None
        if status == _NO_LOGITS:
            raise RoundError(f"llama.cpp returned no logits after {len(tokens)} new tokens")
        if status != 0:
            raise RoundError(f"llama_decode failed with status {status} after {len(tokens)} new tokens")
        if len(tokens) != self.workload.new_tokens:
            raise RoundError(
                f"llama.cpp produced {len(tokens)} new tokens, expected exactly {self.workload.new_tokens}"
            )
        perf = self._lib.llama_perf_context(self._ctx)
        counted = int(perf.n_p_eval) + int(perf.n_eval)
        expected = self.prompt_tokens + self.workload.new_tokens - 1
        if counted != expected:
            raise RoundError(
                f"llama.cpp's counters saw {perf.n_p_eval} prompt + {perf.n_eval} decoded tokens, expected "
                f"{expected} in all ({self.prompt_tokens} prompt, {self.workload.new_tokens - 1} decode steps)"
            )
        self.last_counters = {
            "t_p_eval_ms": float(perf.t_p_eval_ms),
            "n_p_eval": int(perf.n_p_eval),
            "t_eval_ms": float(perf.t_eval_ms),
            "n_eval": int(perf.n_eval),
        }
        rss, _gpu = self._memory.read()
        return RoundRecord(RoundTimes(start, tuple(stamps), end), rss, None)

    def run_once(self) -> RoundRecord:
        self.prepare()
        self.timed()
        return self.take()
