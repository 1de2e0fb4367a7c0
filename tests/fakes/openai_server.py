"""A small OpenAI-compatible streaming server on loopback, for fault tests: it misbehaves on request.

It is honest about what it is — a real HTTP server on 127.0.0.1 speaking the /v1/models and /v1/completions
protocol (server-sent events, usage blocks) — with one ``behaviour`` at a time:

``ok``            exactly ``max_tokens`` chunks, one token each, a usage chunk, ``[DONE]``
``http500``       HTTP 500 with an OpenAI error body on /v1/completions
``malformed``     two good chunks, then an event that is not JSON
``short``         two tokens fewer than asked, with usage saying so, then ``[DONE]``
``slow``          waits ``delay_s`` before the first byte
``die``           three chunks, then the connection is closed without ``[DONE]``

Prompt tokens are counted as one per id (a list prompt) or one per whitespace-separated word plus one (a text
prompt, like a BOS), so text calibration has something to find. The real-server tests use llama-cpp-python.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeOpenAIServer:
    def __init__(self, behaviour: str = "ok", delay_s: float = 0.0, token_gap_s: float = 0.0) -> None:
        self.behaviour = behaviour
        self.delay_s = delay_s
        self.token_gap_s = token_gap_s
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # the body ends when the connection closes: "die" is a clean EOF

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/v1/models":
                    self._json(200, {"object": "list", "data": [{"id": "fake-model", "owned_by": "fake"}]})
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                owner.requests += 1
                if self.path != "/v1/completions":
                    self._json(404, {"error": {"message": "not found"}})
                    return
                if owner.behaviour == "http500":
                    self._json(500, {"error": {"message": "the engine fell over", "type": "server_error"}})
                    return
                prompt = body.get("prompt")
                prompt_tokens = len(prompt) if isinstance(prompt, list) else len(str(prompt).split()) + 1
                wanted = int(body.get("max_tokens") or 16)
                if not body.get("stream"):
                    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": 1, "total_tokens": prompt_tokens + 1}
                    self._json(200, {"choices": [{"text": "x", "finish_reason": "length"}], "usage": usage})
                    return
                owner._stream(self, wanted, prompt_tokens)

            def _json(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _stream(self, handler: BaseHTTPRequestHandler, wanted: int, prompt_tokens: int) -> None:
        behaviour = self.behaviour
        if behaviour == "slow":
            time.sleep(self.delay_s)
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()
        count = {"short": max(wanted - 2, 0), "die": min(3, wanted), "malformed": min(2, wanted)}.get(behaviour, wanted)
        for index in range(count):
            if self.token_gap_s:
                time.sleep(self.token_gap_s)
            last = index == count - 1 and behaviour in ("ok", "short", "slow")
            chunk = {"choices": [{"index": 0, "text": "x", "finish_reason": "length" if last else None}]}
            handler.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            handler.wfile.flush()
        if behaviour == "die":
            handler.wfile.flush()
            handler.close_connection = True
            return
        if behaviour == "malformed":
            handler.wfile.write(b"data: {this is not json\n\n")
            handler.wfile.flush()
            return
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": count, "total_tokens": prompt_tokens + count}
        handler.wfile.write(f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode())
        handler.wfile.write(b"data: [DONE]\n\n")
        handler.wfile.flush()

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
