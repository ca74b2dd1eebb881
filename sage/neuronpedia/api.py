"""Neuronpedia's public API: the feature endpoint and the activation endpoint, cached and retried.

    GET  {base}/api/feature/{modelId}/{source}/{index}   a feature: activations, explanations, stats
    POST {base}/api/activation/new                       activations of one feature on custom texts

(sources: docs/neuronpedia.md). The base URL is `$SAGE_NEURONPEDIA_URL` (default
https://www.neuronpedia.org); `$NEURONPEDIA_API_KEY`, when set, is sent as the `x-api-key` header.
Every validated response is cached under `$SAGE_HOME/neuronpedia/<host key>/`, so a re-run (or a
resumed run) asks the server only for what it has not answered yet. Rate limits (429), server
errors (5xx), 408 and timeouts are retried with jittered exponential back-off (tenacity); when the
retries run out, or the server refuses the request, or the answer does not match the documented
format, a `RemoteError` says so. Nothing is ever made up in place of an answer.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import httpx
import jsonschema

from sage import config
from sage.errors import ConfigError, RemoteError, require_ints, require_range
from sage.io import cache_key, write_text
from sage.retry import backoff

#: neuronpedia.org; `$SAGE_NEURONPEDIA_URL` overrides it (a self-hosted instance, a replay server)
DEFAULT_URL = "https://www.neuronpedia.org"
URL_ENV = "SAGE_NEURONPEDIA_URL"
KEY_ENV = "NEURONPEDIA_API_KEY"
#: statuses worth retrying besides every 5xx: request timeout, rate limit
RETRYABLE_STATUS = {408, 429}
#: model, source and index ids become cache path parts: Neuronpedia's own ids use only these
_ID = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class NeuronpediaConfig:
    """How SAGE talks to Neuronpedia."""

    #: calls per request at most, the first one included
    max_attempts: int = 6
    #: seconds before the first retry; each retry waits up to twice as long, jittered
    initial_wait: float = 1.0
    #: longest wait between two attempts, in seconds
    max_wait: float = 30.0
    #: per-request timeout, in seconds (a timed-out request is retried)
    timeout: float = 60.0
    #: custom texts sent in one activation request (`customText` as a list)
    texts_per_request: int = 8

    def __post_init__(self) -> None:
        require_ints(self, "max_attempts", "texts_per_request")
        require_range(self, "initial_wait", 0)
        require_range(self, "max_wait", self.initial_wait)
        require_range(self, "timeout", 0, open_low=True)


NEURONPEDIA = NeuronpediaConfig()


class NotFound(RemoteError):
    """The server has no such feature (HTTP 404)."""


class _Transient(Exception):
    """A failure worth retrying; `retry_after` in seconds when the server said."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@cache
def validator(name: str) -> jsonschema.protocols.Validator:
    """The JSON Schema `sage/neuronpedia/schemas/<name>.json` (the fields SAGE relies on)."""
    text = resources.files("sage.neuronpedia").joinpath("schemas", f"{name}.json").read_text()
    schema = json.loads(text)
    return jsonschema.validators.validator_for(schema)(schema)


def check(name: str, data, what: str, error: type[Exception] = RemoteError) -> None:
    """`error` (an answer: RemoteError; a file: ConfigError) naming the first place where `data`
    breaks schema `name`."""
    errors = sorted(validator(name).iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = "/".join(map(str, e.absolute_path)) or "(top level)"
        raise error(f"{what} does not match Neuronpedia's documented format at {where}: {e.message}")


def check_id(kind: str, value: str) -> str:
    if not _ID.match(value):
        raise ConfigError(f"Neuronpedia {kind} {value!r} may only hold letters, digits, '.', '_' and '-'")
    return value


class NeuronpediaClient:
    """The two endpoints SAGE uses, with the disk cache and the retries."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        settings: NeuronpediaConfig = NEURONPEDIA,
        cache_dir: Path | None = None,
    ):
        self.base_url = (base_url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{URL_ENV} must be an http(s) URL, not {self.base_url!r}")
        self.api_key = api_key if api_key is not None else os.environ.get(KEY_ENV) or None
        self.settings = settings
        self.cache_dir = cache_dir or config.sage_home() / "neuronpedia" / cache_key(self.base_url)
        self.requests = 0  # HTTP requests sent (every attempt counts): tests and reports read it
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=settings.timeout)

    # -- endpoints -------------------------------------------------------------------------------
    def feature(self, model: str, source: str, index: int) -> dict:
        """The feature record (schemas/feature.json), from the cache or the server."""
        path = self.cache_dir / "feature" / check_id("model", model) / check_id("source", source)
        path = path / f"{int(index)}.json"
        cached = _read_cache(path)
        if cached is not None:
            return cached
        what = f"the feature {model}/{source}/{index}"
        data = self._call("GET", f"/api/feature/{model}/{source}/{int(index)}", None, what)
        check("feature", data, f"Neuronpedia's answer for {what}")
        _write_cache(path, data)
        return data

    def activations(self, model: str, source: str, index: int, texts: Sequence[str]) -> list[dict]:
        """Per text, `{"tokens": [...], "values": [...]}` of the feature on that text (the server's
        tokenizer and model), from the cache or the server in requests of `texts_per_request` texts."""
        folder = self.cache_dir / "activation" / check_id("model", model) / check_id("source", source)
        folder = folder / str(int(index))
        out: dict[int, dict] = {}
        todo = []
        for i, text in enumerate(texts):
            cached = _read_cache(folder / f"{cache_key(text)}.json")
            if cached is not None and cached.get("text") == text:
                out[i] = cached["result"]
            else:
                todo.append(i)
        step = self.settings.texts_per_request
        for start in range(0, len(todo), step):
            chunk = todo[start : start + step]
            body = {
                "feature": {"modelId": model, "source": source, "index": str(int(index))},
                "customText": [texts[i] for i in chunk],
                "ignoreBos": False,
            }
            what = f"activations of {model}/{source}/{index} on {len(chunk)} text(s)"
            data = self._call("POST", "/api/activation/new", body, what)
            results = data if isinstance(data, list) else [data]
            if len(results) != len(chunk):
                raise RemoteError(
                    f"Neuronpedia answered {len(results)} results for {len(chunk)} texts ({what})"
                )
            for i, res in zip(chunk, results):
                res = _normalise_activation(res, what)
                out[i] = res
                _write_cache(folder / f"{cache_key(texts[i])}.json", {"text": texts[i], "result": res})
        return [out[i] for i in range(len(texts))]

    # -- transport -------------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: dict | None, what: str):
        """The decoded JSON answer of one request, retried on transient failures."""
        s = self.settings
        retrying = backoff(_Transient, s.max_attempts, s.initial_wait, s.max_wait)
        try:
            return retrying(self._once, method, path, body, what)
        except _Transient as exc:
            raise RemoteError(
                f"Neuronpedia ({self.base_url}) did not answer {what}: gave up after {s.max_attempts} "
                f"attempts, last: {exc}. Answers received so far are cached in {self.cache_dir}; "
                "re-run (explain: with --resume) once the API answers"
            ) from exc

    def _once(self, method: str, path: str, body: dict | None, what: str):
        headers = {"accept": "application/json"}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        with self._lock:
            self.requests += 1
        try:
            resp = self._http.request(method, self.base_url + path, json=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise _Transient(f"timed out after {self.settings.timeout:g} s") from exc
        except httpx.TransportError as exc:
            raise _Transient(f"connection error: {exc}") from exc
        code = resp.status_code
        if code in RETRYABLE_STATUS or code >= 500:
            raise _Transient(f"HTTP {code} {_message(resp)}", _retry_after(resp))
        if code == 404:
            raise NotFound(f"Neuronpedia ({self.base_url}) has no {what.removeprefix('the ')}: HTTP 404")
        if code in (401, 403):
            hint = (
                f"set {KEY_ENV} to your Neuronpedia API key"
                if not self.api_key
                else f"the key in {KEY_ENV} was refused"
            )
            raise RemoteError(f"Neuronpedia refused {what} (HTTP {code} {_message(resp)}): {hint}")
        if code != 200:
            raise RemoteError(f"Neuronpedia rejected the request for {what}: HTTP {code} {_message(resp)}")
        try:
            return resp.json()
        except ValueError as exc:
            raise RemoteError(
                f"Neuronpedia's answer for {what} is not valid JSON ({exc}); it starts {resp.text[:80]!r}"
            ) from exc


def _normalise_activation(res, what: str) -> dict:
    """One activation result in the shape the webapp's code returns (`values` at the top level).
    The route's swagger comment nests them as `activations.values`: both are accepted."""
    if isinstance(res, dict) and "values" not in res and isinstance(res.get("activations"), dict):
        res = {**res, "values": res["activations"].get("values")}
    if isinstance(res, dict) and res.get("error"):
        raise RemoteError(f"Neuronpedia reported an error for {what}: {res['error']}")
    check("activation", res, f"Neuronpedia's answer for {what}")
    if len(res["tokens"]) != len(res["values"]):
        raise RemoteError(
            f"Neuronpedia's answer for {what} has {len(res['tokens'])} tokens but {len(res['values'])} values"
        )
    return {"tokens": list(res["tokens"]), "values": [float(v) for v in res["values"]]}


def _read_cache(path: Path):
    """The cached JSON at `path`, or None when absent or unreadable (then it is fetched again)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_cache(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(data))


def _message(resp: httpx.Response) -> str:
    try:
        data = resp.json()
    except ValueError:
        return resp.text[:200].strip()
    if isinstance(data, dict):
        return str(data.get("message") or data.get("error") or "")[:200]
    return ""


def _retry_after(resp: httpx.Response) -> float | None:
    try:
        return float(resp.headers["retry-after"]) if "retry-after" in resp.headers else None
    except ValueError:  # an HTTP date: our own back-off applies
        return None
