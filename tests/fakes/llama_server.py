"""llama-cpp-python's OpenAI-compatible server on loopback, as the serving tests start it (a real server)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """``python -m llama_cpp.server`` on 127.0.0.1 and a free port; ready when /v1/models answers; stopped on exit.

    ``interrupt_requests`` is off: by default the server ends a streaming request early when another arrives,
    which would make every concurrent level short.
    """

    def __init__(
        self,
        model: Path,
        alias: str = "tiny-qwen2",
        threads: int = 1,
        ready_timeout_s: float = 60.0,
        verbose: bool = False,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = model.parent / f"server-{self.port}.log"
        self._command = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(model), "--model_alias", alias,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--n_ctx", "1024", "--n_threads", str(threads), "--n_threads_batch", str(threads),
            "--interrupt_requests", "False", "--verbose", str(verbose),
        ]  # fmt: skip
        self._ready_timeout_s = ready_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.extra = ""  # --tee-request-extra the tests pass with this server

    def start(self) -> LlamaServer:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(self._command, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
        deadline = time.monotonic() + self._ready_timeout_s
        while time.monotonic() < deadline:  # bounded readiness wait
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.process.returncode}: {self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/v1/models", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama_cpp.server not ready within {self._ready_timeout_s} s: {self.log.read_text()}")

    def kill(self) -> None:
        """Like a crash: SIGKILL, no goodbye to open connections."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def exact_n_bias(model: Path) -> dict[str, float]:
    """``logit_bias`` for llama-cpp-python serving a synthetic GGUF: no end-of-sequence, no byte tokens 0x80-0xFF.

    Two llama-cpp-python 0.3.36 quirks make this necessary for random weights, which pick byte tokens often:
    a UTF-8 lead byte near the end makes it generate past ``max_tokens`` (its multibyte fix skips the length
    check) — the engine rightly counts such a request as failed; and a request with ``logit_bias`` loses its
    ``min_tokens`` processor (``logits_processor = logits_processor.extend(...)`` is None), so EOS is banned here
    too. Passed with ``--tee-request-extra``; real text models rarely end mid-character.
    """
    from gguf import GGUFReader

    reader = GGUFReader(str(model))
    field = reader.fields["tokenizer.ggml.tokens"]
    tokens = [bytes(field.parts[index]).decode("utf-8", errors="replace") for index in field.data]
    wanted = {f"<0x{byte:02X}>" for byte in range(0x80, 0x100)}
    bias = {str(token_id): -100.0 for token_id, token in enumerate(tokens) if token in wanted}
    eos = reader.fields["tokenizer.ggml.eos_token_id"]
    bias[str(int(eos.parts[eos.data[0]][0]))] = -100.0
    return bias
