"""Scripted HTTP servers on 127.0.0.1 that speak the real OpenAI chat-completions and
Anthropic messages wire protocols, so the real `openai` / `anthropic` client libraries can
be tested without a network.

    from tests.scripted_servers import serve, ok, fail
    with serve("openai", [fail(429), ok({"type": "digit"})]) as srv:
        backend = OpenAIBackend("gpt-4o-mini", base_url=srv.url, api_key="sk-test")
        ...
        srv.requests  # the JSON bodies received, in order

A script is a list of `Reply`s (served in order; past its end the server answers HTTP 400
"script exhausted", which clients do not retry) or a callable `(body: dict, index: int) -> Reply`
for replies that depend on the request (e.g. by `messages`, or endless for budget tests).
For the `openai:MODEL` / `anthropic:MODEL` specs built by `make_backend`, point the SDK at
the server with `OPENAI_BASE_URL=srv.url` / `ANTHROPIC_BASE_URL=srv.url` (both SDKs read them).

Servers are bounded: at most `max_requests` requests, and they shut themselves down after
`lifetime_s` seconds even if a test forgets to stop them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OPENAI_ERRORS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}
ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass
class Reply:
    """One scripted response.

    content: OpenAI: the message content (a dict is sent as its JSON text). Anthropic: a dict becomes
      the input of a `tool_use` block for the requested tool, a str a `text` block.
    status: HTTP status; non-200 sends the provider's error body with `message`.
    delay: seconds to wait before answering (to provoke client timeouts).
    input_tokens / output_tokens: usage to report (default: ~4 characters per token of request / reply).
    logprobs: OpenAI only: one `{token: logprob}` per generated position, sent as `top_logprobs`.
    error_body: for a non-200 status, the exact JSON body to send instead of the provider's error
      shape (servers that are not OpenAI word their errors their own way, see tests/local_servers.py).
    finish_reason: OpenAI only: why generation stopped ("length": cut off at max_tokens).
    """

    content: str | dict | None = None
    status: int = 200
    message: str = ""
    delay: float = 0.0
    input_tokens: int | None = None
    output_tokens: int | None = None
    headers: dict = field(default_factory=dict)
    logprobs: list[dict[str, float]] | None = None
    error_body: dict | None = None
    finish_reason: str = "stop"


def ok(content, **kwargs) -> Reply:
    return Reply(content=content, **kwargs)


def fail(status: int, message: str = "", **kwargs) -> Reply:
    return Reply(status=status, message=message or f"scripted error {status}", **kwargs)


Script = list | Callable[[dict, int], Reply]


class ScriptedServer:
    """A threaded HTTP server speaking `protocol` ("openai" or "anthropic"), answering from `script`.

    api_key: if set, requests with another key get the provider's real 401 error.
    Attributes for assertions: `requests` (JSON bodies), `request_headers` (lower-case names),
    `served` (Replies sent),
    `usage_served` (input, output tokens reported in successful replies).
    """

    def __init__(
        self,
        protocol: str,
        script: Script,
        *,
        api_key: str | None = None,
        max_requests: int = 64,
        lifetime_s: float = 120.0,
    ):
        if protocol not in ("openai", "anthropic"):
            raise ValueError(f"protocol must be 'openai' or 'anthropic', not {protocol!r}")
        self.protocol = protocol
        self.script = script
        self.api_key = api_key
        self.max_requests = max_requests
        self.lifetime_s = lifetime_s
        self.requests: list[dict] = []
        self.request_headers: list[dict] = []
        self.served: list[Reply] = []
        self.usage_served = [0, 0]
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._stopped = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """The base URL each SDK expects (OpenAI's includes /v1, Anthropic's does not)."""
        root = f"http://127.0.0.1:{self.port}"
        return root + "/v1" if self.protocol == "openai" else root

    def start(self) -> ScriptedServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                server._handle(self)

            def do_GET(self):  # the model list, which `OpenAIBackend.check` asks for
                if server.protocol == "openai" and self.path.split("?")[0] == "/v1/models":
                    model = {"id": "scripted", "object": "model", "created": 0, "owned_by": "scripted"}
                    return server._send(self, 200, {"object": "list", "data": [model]})
                server._send(self, 404, server._error_body(404, f"no route {self.path}"))

            def log_message(self, *args):  # keep test output clean
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        timer = threading.Timer(self.lifetime_s, self.stop)
        timer.daemon = True
        timer.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None and not self._stopped.is_set():
            self._stopped.set()
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- request handling ----------------------------------------------------------------------
    def _next_reply(self, body: dict) -> Reply:
        with self._lock:
            index = len(self.requests)
            self.requests.append(body)
        if index >= self.max_requests:
            return fail(400, f"scripted server: request limit {self.max_requests} reached")
        if callable(self.script):
            return self.script(body, index)
        if index >= len(self.script):
            return fail(400, f"scripted server: script exhausted after {len(self.script)} replies")
        return self.script[index]

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        expected = "/v1/chat/completions" if self.protocol == "openai" else "/v1/messages"
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        if h.path.split("?")[0] != expected:
            return self._send(h, 404, self._error_body(404, f"no route {h.path}"))
        body = json.loads(raw or b"{}")
        with self._lock:
            self.request_headers.append({k.lower(): v for k, v in h.headers.items()})
        if self.api_key is not None and self._key_of(h) != self.api_key:
            reply = fail(
                401, "Incorrect API key provided." if self.protocol == "openai" else "invalid x-api-key"
            )
            with self._lock:
                self.requests.append(body)
        else:
            reply = self._next_reply(body)
        with self._lock:
            self.served.append(reply)
        if reply.delay:
            time.sleep(reply.delay)
        if reply.status != 200:
            body = reply.error_body or self._error_body(reply.status, reply.message)
            return self._send(h, reply.status, body, reply.headers)
        payload = (
            self._openai_ok(body, reply) if self.protocol == "openai" else self._anthropic_ok(body, reply)
        )
        self._send(h, 200, payload, reply.headers)

    def _key_of(self, h) -> str | None:
        """The API key sent: `Authorization: Bearer` (OpenAI; Anthropic SDK 2.x) or `x-api-key`."""
        auth = h.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth.removeprefix("Bearer ")
        return h.headers.get("x-api-key") if self.protocol == "anthropic" else None

    def _send(self, h, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                h.send_header(k, str(v))
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
            pass

    def _error_body(self, status: int, message: str) -> dict:
        if self.protocol == "openai":
            etype, code = OPENAI_ERRORS.get(
                status, ("server_error" if status >= 500 else "invalid_request_error", None)
            )
            return {"error": {"message": message, "type": etype, "param": None, "code": code}}
        etype = ANTHROPIC_ERRORS.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": etype, "message": message}}

    def _usage(self, body: dict, reply: Reply, text: str) -> tuple[int, int]:
        n_in = reply.input_tokens if reply.input_tokens is not None else max(1, len(json.dumps(body)) // 4)
        n_out = reply.output_tokens if reply.output_tokens is not None else max(1, len(text) // 4)
        with self._lock:
            self.usage_served[0] += n_in
            self.usage_served[1] += n_out
        return n_in, n_out

    def _openai_ok(self, body: dict, reply: Reply) -> dict:
        text = json.dumps(reply.content) if isinstance(reply.content, dict) else reply.content
        n_in, n_out = self._usage(body, reply, text or "")
        logprobs = None
        if reply.logprobs is not None:
            logprobs = {
                "refusal": None,
                "content": [
                    {
                        "token": max(pos, key=pos.get),
                        "logprob": max(pos.values()),
                        "bytes": None,
                        "top_logprobs": [
                            {"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in pos.items()
                        ],
                    }
                    for pos in reply.logprobs
                ],
            }
        return {
            "id": f"chatcmpl-scripted-{len(self.served)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "scripted"),
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": reply.finish_reason,
                    "logprobs": logprobs,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                }
            ],
            "usage": {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out},
        }

    def _anthropic_ok(self, body: dict, reply: Reply) -> dict:
        if isinstance(reply.content, dict):
            tool = (body.get("tool_choice") or {}).get("name") or "tool"
            content = [
                {
                    "type": "tool_use",
                    "id": f"toolu_scripted_{len(self.served)}",
                    "name": tool,
                    "input": reply.content,
                }
            ]
            text, stop = json.dumps(reply.content), "tool_use"
        else:
            text, stop = reply.content or "", "end_turn"
            content = [{"type": "text", "text": text}]
        n_in, n_out = self._usage(body, reply, text)
        return {
            "id": f"msg_scripted_{len(self.served)}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "scripted"),
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": n_in, "output_tokens": n_out},
        }


def serve(protocol: str, script: Script, **kwargs) -> ScriptedServer:
    """A ScriptedServer for use as a context manager: `with serve("openai", [...]) as srv:`."""
    return ScriptedServer(protocol, script, **kwargs)
