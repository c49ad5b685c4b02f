"""Fetching facts from sources, inside one Spark task: async, pooled, bounded, retried.

Every (context, source) pair handed to :func:`fetch_pairs` comes back as exactly one
:class:`Outcome`: a fact payload, or a failure with attempts, last status, error class and
message. Timeouts, connection errors, 5xx, 429 and malformed bodies are retried with
exponential backoff and jitter (a 429's ``Retry-After`` is honoured); other 4xx are not.

Sources that are not HTTP JSON implement :class:`FactSource` and are named in conf as
``plugin: "module:Class"``.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from timetravel.config import SourceSettings
from timetravel.times import payload_as_of, to_micros

__all__ = ["Outcome", "FactSource", "TaskLimits", "fetch_pairs", "load_plugin", "RETRYABLE"]

RETRYABLE = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Outcome:
    """The end of one (context, source) pair."""

    source: str
    key: tuple[Any, ...]
    ok: bool
    payload: str | None = None  # the fact, as JSON text of the source's object
    as_of_micros: int | None = None  # the source's "true at" instant, if it gave one
    fetched_micros: int = 0
    attempts: int = 0
    last_status: int | None = None
    error_class: str | None = None
    error_message: str | None = None
    latency_ms: float | None = None  # how long the source took to answer the last attempt


class FactSource(Protocol):
    """A non-HTTP source. ``fetch`` returns one payload dict per key (None: unknown key);
    a payload may carry the instant it was true at under the source's ``as_of_field``.
    Raising means the whole call failed and is retried like a 5xx."""

    def __init__(self, settings: SourceSettings) -> None: ...

    async def fetch(self, keys: list[dict[str, Any]]) -> list[dict[str, Any] | None]: ...


@dataclass(frozen=True)
class TaskLimits:
    """This task's share of a source's global concurrency and rate limit."""

    concurrency: int
    rate_per_s: float | None


class _Retryable(Exception):
    def __init__(
        self, status: int | None, error_class: str, message: str, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.error_class, self.retry_after = status, error_class, retry_after


class _Fatal(Exception):
    def __init__(self, status: int | None, error_class: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_class = status, error_class


class _TokenBucket:
    """At most ``rate`` acquisitions per second (burst 1), shared by this task's requests."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self._next = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if self.rate is None:
            return
        async with self._lock:
            now = time.monotonic()
            wait = self._next - now
            self._next = max(now, self._next) + 1.0 / self.rate
        if wait > 0:
            await asyncio.sleep(wait)


def load_plugin(settings: SourceSettings) -> FactSource:
    """Instantiate the plugin class named by ``settings.plugin``."""
    assert settings.plugin is not None
    module_name, _, class_name = settings.plugin.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(settings)


def fetch_pairs(
    sources: dict[str, SourceSettings],
    limits: dict[str, TaskLimits],
    entity: list[str],
    pairs: Iterable[tuple[str, tuple[Any, ...]]],
    *,
    seed: int = 0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[Outcome]:
    """Fetch every (source name, key tuple) pair; one Outcome per pair. ``transport``
    replaces the network (tests use ``httpx.MockTransport``)."""
    by_source: dict[str, list[tuple[Any, ...]]] = {}
    for source, key in pairs:
        by_source.setdefault(source, []).append(key)
    return asyncio.run(_fetch_all(sources, limits, entity, by_source, seed, transport))


async def _fetch_all(
    sources: dict[str, SourceSettings],
    limits: dict[str, TaskLimits],
    entity: list[str],
    by_source: dict[str, list[tuple[Any, ...]]],
    seed: int,
    transport: httpx.AsyncBaseTransport | None,
) -> list[Outcome]:
    pool = sum(limits[name].concurrency for name in by_source) or 1
    rng = random.Random(seed)
    async with httpx.AsyncClient(
        limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
        transport=transport,
    ) as client:
        jobs = []
        for name, keys in by_source.items():
            settings = sources[name]
            plugin = load_plugin(settings) if settings.plugin else None
            gate = asyncio.Semaphore(limits[name].concurrency)
            bucket = _TokenBucket(limits[name].rate_per_s)
            size = settings.batch_size if (plugin or settings.batch_path) else 1
            for start in range(0, len(keys), size):
                jobs.append(
                    _fetch_batch(
                        settings,
                        plugin,
                        client,
                        gate,
                        bucket,
                        entity,
                        keys[start : start + size],
                        rng,
                    )
                )
        results = await asyncio.gather(*jobs)
    return [outcome for batch in results for outcome in batch]


async def _fetch_batch(
    settings: SourceSettings,
    plugin: FactSource | None,
    client: httpx.AsyncClient,
    gate: asyncio.Semaphore,
    bucket: _TokenBucket,
    entity: list[str],
    keys: list[tuple[Any, ...]],
    rng: random.Random,
) -> list[Outcome]:
    status: int | None = None
    error_class, message = "Unknown", ""
    attempts = 0
    latency_ms: float | None = None
    for attempt in range(settings.retries + 1):
        attempts = attempt + 1
        await bucket.acquire()
        try:
            async with gate:
                asked = time.perf_counter()
                try:
                    payloads = await _call(settings, plugin, client, entity, keys)
                finally:
                    latency_ms = (time.perf_counter() - asked) * 1000
            fetched = to_micros_now()
            return [
                _outcome(settings, key, payload, fetched, attempts, latency_ms)
                for key, payload in zip(keys, payloads, strict=True)
            ]
        except _Fatal as exc:
            status, error_class, message = exc.status, exc.error_class, str(exc)
            break
        except _Retryable as exc:
            status, error_class, message = exc.status, exc.error_class, str(exc)
            if attempt == settings.retries:
                break
            backoff = min(settings.backoff_max_s, settings.backoff_base_s * 2**attempt)
            delay = backoff * rng.uniform(0.5, 1.5)  # jitter: no thundering herd
            if exc.retry_after is not None:
                delay = max(delay, exc.retry_after)
            await asyncio.sleep(delay)
    fetched = to_micros_now()
    return [
        Outcome(
            settings.name,
            key,
            False,
            fetched_micros=fetched,
            attempts=attempts,
            last_status=status,
            error_class=error_class,
            error_message=message[:500],
            latency_ms=latency_ms,
        )
        for key in keys
    ]


async def _call(
    settings: SourceSettings,
    plugin: FactSource | None,
    client: httpx.AsyncClient,
    entity: list[str],
    keys: list[tuple[Any, ...]],
) -> list[dict[str, Any] | None]:
    dict_keys = [dict(zip(entity, key, strict=True)) for key in keys]
    if plugin is not None:
        try:
            answers = list(await asyncio.wait_for(plugin.fetch(dict_keys), settings.timeout_s))
        except TimeoutError:
            raise _Retryable(None, "Timeout", f"plugin took over {settings.timeout_s}s") from None
        except Exception as exc:  # a plugin's failure is retried like a 5xx
            raise _Retryable(None, type(exc).__name__, str(exc)) from None
        if len(answers) != len(keys):
            # Pairing payloads with keys by position would drop or shift some silently.
            raise _Retryable(
                None,
                "MalformedResponse",
                f"plugin returned {len(answers)} payloads for {len(keys)} keys",
            )
        return answers
    assert settings.base_url is not None
    try:
        if settings.batch_path is not None:
            response = await client.post(
                settings.base_url + settings.batch_path,
                timeout=settings.timeout_s,
                json={settings.ids_field: [_wire_key(settings, entity, k) for k in keys]},
            )
        else:
            assert settings.get_path is not None
            path = settings.get_path.format(**dict_keys[0])
            response = await client.get(settings.base_url + path, timeout=settings.timeout_s)
    except httpx.TimeoutException as exc:
        raise _Retryable(
            None, "Timeout", f"no answer in {settings.timeout_s}s ({type(exc).__name__})"
        ) from None
    except httpx.HTTPError as exc:
        raise _Retryable(None, type(exc).__name__, str(exc) or type(exc).__name__) from None
    if response.status_code == 404 and settings.batch_path is None:
        return [None]
    if response.status_code in RETRYABLE:
        retry_after = _retry_after(response.headers.get("retry-after"))
        raise _Retryable(
            response.status_code, f"HTTP{response.status_code}", response.text[:200], retry_after
        )
    if response.status_code != 200:
        raise _Fatal(response.status_code, f"HTTP{response.status_code}", response.text[:200])
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _Retryable(200, "MalformedResponse", f"body is not JSON: {exc}") from None
    if settings.batch_path is None:
        return [body]
    if not isinstance(body, dict) or not isinstance(body.get(settings.results_field), list):
        raise _Retryable(200, "MalformedResponse", f"no '{settings.results_field}' list in body")
    fields = [settings.key_map.get(column, column) for column in entity]
    top_as_of = body.get(settings.as_of_field) if settings.as_of_field else None
    found: dict[tuple[Any, ...], dict[str, Any]] = {}
    for item in body[settings.results_field]:
        if isinstance(item, dict) and all(f in item for f in fields):
            if top_as_of is not None and settings.as_of_field:
                item.setdefault(settings.as_of_field, top_as_of)
            found[tuple(item[f] for f in fields)] = item
    return [found.get(tuple(key)) for key in keys]


def _wire_key(settings: SourceSettings, entity: list[str], key: tuple[Any, ...]) -> Any:
    """How one key goes into a batch request: the bare value for a one-column key, else an
    object naming every column (so composite keys are never sent or matched by one part)."""
    if len(entity) == 1:
        return key[0]
    return {
        settings.key_map.get(column, column): value
        for column, value in zip(entity, key, strict=True)
    }


def _outcome(
    settings: SourceSettings,
    key: tuple[Any, ...],
    payload: dict[str, Any] | None,
    fetched: int,
    attempts: int,
    latency_ms: float | None = None,
) -> Outcome:
    if payload is None:
        return Outcome(
            settings.name,
            key,
            False,
            fetched_micros=fetched,
            attempts=attempts,
            last_status=404,
            error_class="NotFound",
            error_message="the source does not know this context",
            latency_ms=latency_ms,
        )
    as_of = payload_as_of(payload, settings.as_of_field)
    as_of_micros = to_micros(as_of) if as_of is not None else None
    return Outcome(
        settings.name,
        key,
        True,
        json.dumps(payload),
        as_of_micros,
        fetched,
        attempts,
        latency_ms=latency_ms,
    )


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def to_micros_now() -> int:
    return time.time_ns() // 1000
