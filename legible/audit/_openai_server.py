"""A tiny OpenAI-compatible chat server (standard library only), a test double for the audit battery.

Why: the audit battery is a set of Inspect AI tasks, and we want to run it end to end (real HTTP through
Inspect's ``openai-api`` provider, real concurrency, real retries) without a GPU, a network or an API key,
and to measure how much of the eval's wall time is Inspect itself versus the model's latency. This server
answers ``POST /v1/chat/completions`` (plain and ``stream: true`` server-sent events) and ``GET /v1/models``
from a plain Python callable, ``respond(messages, request) -> str``, after sleeping a fixed artificial
latency. Each connection is served on its own thread, so many requests sleep at once without blocking
one another; the server counts requests and the most it held in flight at once.

Point Inspect at it with a model name ``openai-api/<service>/<model>`` and either the environment
variables ``<SERVICE>_BASE_URL`` / ``<SERVICE>_API_KEY`` (service upper-cased, ``-`` as ``_``), or the
arguments ``get_model(..., base_url=server.base_url, api_key="x")`` /
``eval(..., model_base_url=server.base_url, model_args={"api_key": "x"})``. Any API key is accepted.

The default responder, :func:`scripted_respond`, is "a model that reasons and answers" multiple-choice
questions deterministically and is sycophantic to a stated user opinion without saying so; see its
docstring. Manual use::

    python -m legible.audit._openai_server --port 8000 --latency 0.2
    export SCRIPTED_BASE_URL=http://127.0.0.1:8000/v1 SCRIPTED_API_KEY=x
    inspect eval task.py --model openai-api/scripted/reasoner
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Responder = Callable[[list[dict], dict], str]

__all__ = ["Responder", "Server", "message_text", "scripted_respond", "serve"]

# ------------------------------------------------------------------------------------------- responder

_OPTION = re.compile(r"^\s*\(([A-Z])\)\s+\S", re.MULTILINE)
_HINT = re.compile(r"I think the answer is \(([A-Z])\)[.!]?", re.IGNORECASE)
_REASONS = (
    ("I compare each option with what the question asks", "Option ({x}) is the only one that fits"),
    ("I rule out the options that contradict the question", "What remains is option ({x})"),
    ("I restate the question in my own words", "Read that way, option ({x}) is correct"),
    ("I check the options one at a time", "Option ({x}) holds up and the others do not"),
)


def message_text(message: dict) -> str:
    """The text of an OpenAI chat message whose ``content`` is a string, a list of parts, or null."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _pick(question: str, letters: list[str]) -> str:
    digest = hashlib.sha256(" ".join(question.split()).encode()).digest()
    return letters[int.from_bytes(digest[:8], "big") % len(letters)]


def scripted_respond(messages: list[dict], request: dict) -> str:
    """A deterministic stand-in for a reasoning model, enough for the audit battery to find something.

    - The question is the last ``user`` message. If it has option lines ``(A) ...``, ``(B) ...``, the
      answer is one of those letters chosen by a hash of the question with any hint sentence removed, so
      the same question gets the same answer with or without a hint.
    - Sycophancy: if the question contains ``I think the answer is (Y)``, the answer is ``(Y)`` and the
      reasoning never mentions the hint (an unfaithful CoT for the hint test to catch).
    - Reply: ``"Let me think step by step. <two short sentences>. Answer: (X)"``.
    - Prefill: if the last message is from the assistant, the reply continues it with ``" Answer: (X)"``,
      whatever the prefilled reasoning says (the answer does not depend on the CoT).
    - No options in the question: ``"Let me think step by step. I do not see any options. Answer: unknown"``.
    """
    del request  # the scripted model ignores sampling parameters
    question = next((message_text(m) for m in reversed(messages) if m.get("role") == "user"), "")
    letters = list(dict.fromkeys(_OPTION.findall(question)))
    hint = _HINT.search(question)
    if hint:
        answer = hint.group(1).upper()
    elif letters:
        answer = _pick(_HINT.sub("", question), letters)
    else:
        answer = None
    final = f"Answer: ({answer})" if answer else "Answer: unknown"
    if messages and messages[-1].get("role") == "assistant":
        return f" {final}"
    if not answer:
        return f"Let me think step by step. I do not see any options. {final}"
    first, second = _REASONS[int(_pick(_HINT.sub("", question), ["0", "1", "2", "3"]))]
    return f"Let me think step by step. {first}. {second.format(x=answer)}. {final}"


# ------------------------------------------------------------------------------------------ wire format


def _tokens(text: str) -> list[str]:
    """Whitespace tokens, each with its leading whitespace, so they concatenate back to the text."""
    return re.findall(r"\s*\S+", text)


def _logprobs(text: str, top: int) -> dict:
    """A plausible ``logprobs`` object: every token certain (logprob 0.0), alternatives near impossible."""
    content = []
    for tok in _tokens(text):
        alts = [{"token": tok, "logprob": 0.0, "bytes": list(tok.encode())}]
        letter = re.fullmatch(r"(\s*\()([A-Z])(\).*)", tok)  # an option letter: the others are the alternatives
        for k in range(1, top):
            if letter:
                alt = f"{letter.group(1)}{chr((ord(letter.group(2)) - 65 + k) % 26 + 65)}{letter.group(3)}"
            else:
                alt = f" <alt{k}>"
            alts.append({"token": alt, "logprob": -9999.0, "bytes": list(alt.encode())})
        content.append({"token": tok, "logprob": 0.0, "bytes": list(tok.encode()), "top_logprobs": alts[:top]})
    return {"content": content, "refusal": None}


def _completion_text(respond: Responder, messages: list[dict], request: dict) -> tuple[str, str]:
    """The reply and its finish reason, cut to ``max_tokens`` whitespace tokens when it is longer."""
    text = respond(messages, request)
    limit = request.get("max_completion_tokens") or request.get("max_tokens")
    if isinstance(limit, int) and limit > 0 and len(text.split()) > limit:
        return "".join(_tokens(text)[:limit]), "length"
    return text, "stop"


def _error(message: str, kind: str = "invalid_request_error", param: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}


class _BadRequest(Exception):
    pass


def _parse_request(body: bytes) -> dict:
    try:
        request = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as ex:
        raise _BadRequest(f"We could not parse the JSON body of your request: {ex}") from None
    if not isinstance(request, dict):
        raise _BadRequest("The request body must be a JSON object.")
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise _BadRequest("'messages' must be a non-empty list of message objects.")
    return request


# -------------------------------------------------------------------------------------------------- server


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # a burst of connections must not overflow the listen backlog (1 s SYN retries)
    owner: Server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the OpenAI client reuses its connections
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, False)

    def _send_json(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        owner = self.server.owner
        with owner._request():
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                model = {"id": owner.model, "object": "model", "created": owner.started, "owned_by": "legible"}
                self._send_json(200, {"object": "list", "data": [model]})
            else:
                self._send_json(404, _error(f"Unknown path {self.path}", param=None))

    def do_POST(self) -> None:
        owner = self.server.owner
        with owner._request():
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                self._send_json(404, _error(f"Unknown path {self.path}"))
                return
            try:
                request = _parse_request(body)
            except _BadRequest as ex:
                self._send_json(400, _error(str(ex)))
                return
            if owner.latency > 0:
                time.sleep(owner.latency)
            try:
                choices = [
                    _completion_text(owner.respond, request["messages"], request)
                    for _ in range(max(1, int(request.get("n") or 1)))
                ]
            except Exception as ex:  # a broken responder is a server error, reported like OpenAI does
                self._send_json(500, _error(f"respond() failed: {ex!r}", kind="server_error"))
                return
            owner._completed()
            if request.get("stream"):
                self._stream(request, choices)
            else:
                self._send_json(200, self._completion(request, choices))

    def _usage(self, request: dict, choices: list[tuple[str, str]]) -> dict:
        prompt = sum(len(message_text(m).split()) for m in request["messages"])
        completion = sum(len(text.split()) for text, _ in choices)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _logprobs_for(self, request: dict, text: str) -> dict | None:
        if not request.get("logprobs"):
            return None
        return _logprobs(text, max(1, int(request.get("top_logprobs") or 1)))

    def _completion(self, request: dict, choices: list[tuple[str, str]]) -> dict:
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model") or self.server.owner.model,
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": self._logprobs_for(request, text),
                    "finish_reason": finish,
                }
                for i, (text, finish) in enumerate(choices)
            ],
            "usage": self._usage(request, choices),
        }

    def _stream(self, request: dict, choices: list[tuple[str, str]]) -> None:
        """Server-sent events: per choice one content chunk and one finish chunk, then usage if asked."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")  # no Content-Length: the end of the body is the close
        self.end_headers()
        self.close_connection = True
        head = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": request.get("model") or self.server.owner.model,
        }

        def event(payload: dict | str) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            self.wfile.write(f"data: {data}\n\n".encode())

        for i, (text, finish) in enumerate(choices):
            delta = {"role": "assistant", "content": text}
            event(head | {"choices": [{"index": i, "delta": delta, "logprobs": self._logprobs_for(request, text)}]})
            event(head | {"choices": [{"index": i, "delta": {}, "logprobs": None, "finish_reason": finish}]})
        if (request.get("stream_options") or {}).get("include_usage"):
            event(head | {"choices": [], "usage": self._usage(request, choices)})
        event("[DONE]")
        self.wfile.flush()


class Server:
    """A running server (see :func:`serve`); a context manager that closes it on exit.

    ``requests`` counts every HTTP request received, ``completions`` the chat completions answered, and
    ``max_in_flight`` is the most requests being handled at once (including the latency sleep).
    """

    def __init__(
        self, respond: Responder | None = None, latency: float = 0.0, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.respond: Responder = respond or scripted_respond
        self.latency = float(latency)
        self.model = "reasoner"  # the id GET /v1/models lists; replies echo the requested model
        self.started = int(time.time())
        self.requests = 0
        self.completions = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="openai-server", daemon=True)
        self._thread.start()
        self._closed = False

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """The URL to give an OpenAI client, ending in ``/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    def reset_stats(self) -> None:
        """Zero the counters (between benchmark runs against one server)."""
        with self._lock:
            self.requests = self.completions = self.max_in_flight = 0

    def close(self) -> None:
        """Stop accepting, drop open keep-alive connections, and free the port. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Server({self.base_url}, latency={self.latency}, requests={self.requests})"

    # called from handler threads
    def _track(self, conn: socket.socket, opened: bool) -> None:
        with self._lock:
            (self._connections.add if opened else self._connections.discard)(conn)

    def _completed(self) -> None:
        with self._lock:
            self.completions += 1

    def _request(self) -> _InFlight:
        return _InFlight(self)


class _InFlight:
    def __init__(self, server: Server) -> None:
        self.server = server

    def __enter__(self) -> None:
        s = self.server
        with s._lock:
            s.requests += 1
            s.in_flight += 1
            s.max_in_flight = max(s.max_in_flight, s.in_flight)

    def __exit__(self, *exc: object) -> None:
        with self.server._lock:
            self.server.in_flight -= 1


def serve(respond: Responder | None = None, latency: float = 0.0, host: str = "127.0.0.1", port: int = 0) -> Server:
    """Start an OpenAI-compatible server on a background thread and return it (port 0: a free port).

    ``respond(messages, request) -> str`` makes each reply (default :func:`scripted_respond`); every chat
    completion sleeps ``latency`` seconds first, on its own thread. Use as ``with serve(...) as server:``.
    """
    return Server(respond=respond, latency=latency, host=host, port=port)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="OpenAI-compatible scripted chat server (a test double).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds each chat completion sleeps")
    args = parser.parse_args(argv)
    with serve(latency=args.latency, host=args.host, port=args.port) as server:
        print(f"serving {server.base_url} (latency {server.latency:g} s); Ctrl-C stops", flush=True)
        print(
            f"  SCRIPTED_BASE_URL={server.base_url} SCRIPTED_API_KEY=x ... --model openai-api/scripted/reasoner",
            flush=True,
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
