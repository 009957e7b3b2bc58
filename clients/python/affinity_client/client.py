"""The HTTP client: :class:`Client` and its :class:`Experiments` helpers."""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, cast

from . import __about__
from .errors import AffinityError
from .models import (
    JSON,
    EntityLike,
    EntityRecord,
    EventLike,
    QueryResponse,
    SimilarResponse,
    ViewerEvent,
    entity_json,
    event_json,
)

_UNSET: Any = object()


def _quote(segment: str) -> str:
    """One path segment, percent-encoded (a ``/`` in an id stays inside the segment)."""
    if not isinstance(segment, str):
        raise TypeError(f"an id must be a str, not {type(segment).__name__}")
    return urllib.parse.quote(segment, safe="")


class Client:
    """A client of one affinity server.

    >>> from affinity_client import Client
    >>> c = Client("http://127.0.0.1:8080")
    >>> page = c.query("u1", target="items", k=5)            # doctest: +SKIP
    >>> [r["entity_id"] for r in page["results"]]            # doctest: +SKIP

    Args:
        url: the server's base URL, e.g. ``"http://127.0.0.1:8080"`` (a path prefix
            such as ``"https://host/recs"`` is kept).
        key: an API key; when given, every request carries
            ``Authorization: Bearer <key>``.
        timeout: seconds to wait for each request before raising
            :class:`AffinityError` with code ``"timeout"``.
        retries: how many times :meth:`feedback` and :meth:`upsert` send a batch
            again, with the same ``Idempotency-Key``, when no answer came (timeout,
            refused or cut connection) or the server asked to retry (409
            ``idempotency_key_in_flight``, 503, 507, honouring ``Retry-After``). The
            server applies a batch once per key, so a retry never stores it twice.

    Every method returns the server's decoded JSON (dicts and lists). Any error
    answer raises :class:`AffinityError` with the server's ``status``, ``code`` and
    ``message``; no answer at all (connection refused, timeout) raises it with
    ``status`` ``None`` and code ``"unavailable"`` or ``"timeout"``.

    A client holds no connection between calls and can be shared by threads.
    """

    url: str
    key: Optional[str]
    timeout: float
    retries: int
    experiments: "Experiments"

    def __init__(self, url: str, key: Optional[str] = None, timeout: float = 10, retries: int = 2) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"url must be http(s)://host[:port][/prefix], not {url!r}")
        self.url = url.rstrip("/")
        self.key = key
        self.timeout = timeout
        if not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be an int >= 0, not {retries!r}")
        self.retries = retries
        self.experiments = Experiments(self)

    def __repr__(self) -> str:
        return f"Client({self.url!r}{', key=...' if self.key else ''}, timeout={self.timeout!r})"

    # ------------------------------------------------------------------ queries

    def query(self, viewer_id: str, target: str = "items", k: int = 20, **fields: Any) -> QueryResponse:
        """Recommendations for a viewer: ``POST /affinity/query``.

        Args:
            viewer_id: who the list is for (an unknown viewer gets a cold-start list).
            target: ``"items"``, ``"creators"`` or ``"users"``.
            k: how many results (1-500).
            **fields: any other field of the query: ``seeds``, ``exclude``,
                ``context``, ``explain`` (``True``, ``False`` or ``"full"``),
                ``filter`` (``{"labels_any": [...], "labels_none": [...]}``),
                ``cursor`` (a page's ``next_cursor``). Fields given as ``None``
                are left out.

        Returns:
            the response: ``request_id``, ``model_version``, ``experiment``,
            ``results`` (each with ``entity_id``, ``score``, ``sources`` and
            ``explanation``) and ``next_cursor``.
        """
        body: Dict[str, JSON] = {"viewer_id": viewer_id, "target": target, "k": k}
        body.update({name: value for name, value in fields.items() if value is not None})
        return cast(QueryResponse, self._request("POST", "/affinity/query", body))

    def pages(
        self,
        viewer_id: str,
        target: str = "items",
        k: int = 20,
        max_pages: Optional[int] = None,
        **fields: Any,
    ) -> Iterator[QueryResponse]:
        """Pages through one recommendation list, yielding each page's response.

        The first page is :meth:`query` with these arguments; each further page is
        the same query with ``cursor`` set to the previous page's ``next_cursor``,
        until a page's ``next_cursor`` is null (or absent) or ``max_pages`` pages
        have been yielded. No entity repeats across pages. A cursor the server no
        longer knows (older than 10 minutes) raises :class:`AffinityError` with
        status 410.

        >>> for page in c.pages("u1", k=10, max_pages=3):    # doctest: +SKIP
        ...     show(page["results"])
        """
        if max_pages is not None and max_pages < 1:
            return
        fields.pop("cursor", None)
        cursor: Optional[str] = None
        yielded = 0
        while True:
            page = self.query(viewer_id, target=target, k=k, cursor=cursor, **fields)
            yield page
            yielded += 1
            cursor = page.get("next_cursor")
            if not cursor or (max_pages is not None and yielded >= max_pages):
                return

    def similar(self, id: str, k: int = 20) -> SimilarResponse:
        """Entities like ``id``, of its kind: ``GET /affinity/entities/{id}/similar?k=N``.

        The item-to-item list of a product page; each result carries an
        explanation as a query's do. An unknown id raises :class:`AffinityError`
        with status 404.
        """
        path = f"/affinity/entities/{_quote(id)}/similar?" + urllib.parse.urlencode({"k": k})
        return cast(SimilarResponse, self._request("GET", path))

    # ----------------------------------------------------------------- writes

    def feedback(self, events: Iterable[EventLike], idempotency_key: Optional[str] = None) -> Dict[str, JSON]:
        """Sends feedback events: ``POST /affinity/feedback``.

        Args:
            events: :class:`~affinity_client.Event` objects or dicts with
                ``viewer_id``, ``entity_id``, ``action`` and optionally ``weight``,
                ``ts`` (unix ms) and ``context``.
            idempotency_key: the batch's ``Idempotency-Key`` (1-255 printable
                ASCII characters); a new UUID when not given. Every retry of the
                call (``retries``) sends the same key, and so may a caller that
                sends the batch again later: the server stores it once and answers
                the retry with the first response.

        Returns:
            ``{"accepted": n}`` once the batch is durable; the next query sees it.
            A batch with an invalid event is refused whole (422 naming its index).
        """
        body = {"events": [event_json(e) for e in _listed(events, "events")]}
        return self._write("/affinity/feedback", body, idempotency_key)

    def upsert(self, entities: Iterable[EntityLike], idempotency_key: Optional[str] = None) -> Dict[str, JSON]:
        """Creates or replaces entities: ``POST /affinity/entities``.

        Args:
            entities: :class:`~affinity_client.Entity` objects or dicts with ``id``,
                ``kind`` (``"user"``, ``"creator"``, ``"item"``), ``creator_id``
                (items) and optionally ``name``, ``cohort``, ``labels``,
                ``expires_at`` (unix ms) and ``attributes``.
            idempotency_key: as for :meth:`feedback`: give each chunk of an import
                its own key, so that a chunk sent again is not upserted again.

        Returns:
            ``{"upserted": n}``.
        """
        body = {"entities": [entity_json(e) for e in _listed(entities, "entities")]}
        return self._write("/affinity/entities", body, idempotency_key)

    def patch(self, id: str, /, **fields: Any) -> Dict[str, JSON]:
        """Changes some fields of an entity and keeps the rest: ``PATCH /affinity/entities/{id}``.

        Args:
            id: the entity's id (404 if unknown).
            **fields: any of ``name``, ``labels``, ``expires_at``, ``attributes``,
                ``cohort``; sent as given (``None`` is sent as JSON null).

        Returns:
            the server's answer.
        """
        if not fields:
            raise ValueError("patch needs at least one field to change")
        return cast(Dict[str, JSON], self._request("PATCH", f"/affinity/entities/{_quote(id)}", dict(fields)))

    def delete(self, id: str) -> Dict[str, JSON]:
        """Deletes an entity: ``DELETE /affinity/entities/{id}``.

        From the next query it is never recommended to anyone; deleting a creator
        also removes its items. Returns ``{"deleted": id}``.
        """
        return cast(Dict[str, JSON], self._request("DELETE", f"/affinity/entities/{_quote(id)}"))

    # ------------------------------------------------------------------ reads

    def entity(self, id: str) -> EntityRecord:
        """One entity: ``GET /affinity/entities/{id}`` (404 if unknown or deleted)."""
        return cast(EntityRecord, self._request("GET", f"/affinity/entities/{_quote(id)}"))

    def entity_pages(
        self, kind: str, limit: int = 100, label: Optional[str] = None
    ) -> Iterator[Dict[str, JSON]]:
        """Each page of the entity listing ``GET /affinity/entities?kind=...``.

        Yields each response (``{"entities": [...], "next_cursor": ...}``),
        following ``next_cursor`` until it is null.
        """
        cursor: Optional[str] = None
        while True:
            params: List[Tuple[str, str]] = [("kind", kind), ("limit", str(limit))]
            if cursor:
                params.append(("cursor", cursor))
            if label is not None:
                params.append(("label", label))
            page = cast(Dict[str, JSON], self._request("GET", "/affinity/entities?" + urllib.parse.urlencode(params)))
            yield page
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def entities(self, kind: str, limit: int = 100, label: Optional[str] = None) -> Iterator[EntityRecord]:
        """Every live entity of a kind (``"user"``, ``"creator"``, ``"item"``), once each.

        Iterates over the listing ``GET /affinity/entities?kind=...``, ``limit``
        entities per request, following its cursors; with ``label``, only the
        entities carrying that label.
        """
        for page in self.entity_pages(kind, limit=limit, label=label):
            for record in page.get("entities") or []:
                yield cast(EntityRecord, record)

    def events(self, viewer_id: str, limit: Optional[int] = None) -> List[ViewerEvent]:
        """A viewer's most recent feedback, newest first: ``GET /affinity/viewers/{id}/events``."""
        path = f"/affinity/viewers/{_quote(viewer_id)}/events"
        if limit is not None:
            path += "?" + urllib.parse.urlencode({"limit": limit})
        answer = cast(Dict[str, Any], self._request("GET", path))
        return cast(List[ViewerEvent], answer.get("events", []))

    # ------------------------------------------------------------- operations

    def health(self) -> Dict[str, JSON]:
        """``GET /healthz``: the process is up (200 even while the state loads)."""
        return cast(Dict[str, JSON], self._request("GET", "/healthz"))

    def ready(self) -> Dict[str, JSON]:
        """``GET /readyz``: ``{"status":"ready","snapshot":...}`` once the server can serve.

        While the state loads the server answers 503, raised as
        :class:`AffinityError` (code ``"not_ready"``).
        """
        return cast(Dict[str, JSON], self._request("GET", "/readyz"))

    def wait_ready(self, timeout: float = 60, interval: float = 0.1) -> Dict[str, JSON]:
        """Polls :meth:`ready` until the server is ready or ``timeout`` seconds pass.

        Returns the ``/readyz`` answer; raises the last :class:`AffinityError` when
        the server is not ready in time.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.ready()
            except AffinityError as e:
                if e.status not in (None, 503) or time.monotonic() >= deadline:
                    raise
            time.sleep(interval)

    def stats(self) -> Dict[str, JSON]:
        """``GET /admin/stats``: event and entity counts, the snapshot, and more."""
        return cast(Dict[str, JSON], self._request("GET", "/admin/stats"))

    def audit(self, request_id: str) -> Dict[str, JSON]:
        """``GET /admin/audit/{request_id}``: the stored record of one response."""
        return cast(Dict[str, JSON], self._request("GET", f"/admin/audit/{_quote(request_id)}"))

    # ---------------------------------------------------------------- plumbing

    def request(self, method: str, path: str, body: Optional[JSON] = None) -> JSON:
        """Any API call: ``method`` on ``path`` (``"/affinity/..."``, with its query
        string, ids already encoded) with ``body`` as JSON; returns the decoded
        answer or raises :class:`AffinityError`."""
        return self._request(method, path, body)

    def _write(self, path: str, body: JSON, idempotency_key: Optional[str]) -> Dict[str, JSON]:
        """A batch POST under one Idempotency-Key, sent again (same key, same
        bytes) while no answer comes or the server asks for a retry."""
        if idempotency_key is None:
            idempotency_key = str(uuid.uuid4())
        elif not isinstance(idempotency_key, str):
            raise TypeError(f"idempotency_key must be a str, not {type(idempotency_key).__name__}")
        headers = {"Idempotency-Key": idempotency_key}
        for attempt in range(self.retries + 1):
            try:
                return cast(Dict[str, JSON], self._request("POST", path, body, headers))
            except AffinityError as e:
                retryable = e.status is None or e.status in (503, 507) or e.code == "idempotency_key_in_flight"
                if not retryable or attempt == self.retries:
                    raise
                time.sleep(min(e.retry_after if e.retry_after is not None else 0.25 * 2**attempt, 30.0))
        raise AssertionError("unreachable")  # pragma: no cover

    def _request(
        self, method: str, path: str, body: Any = _UNSET, extra_headers: Optional[Dict[str, str]] = None
    ) -> JSON:
        data = None if body is _UNSET or body is None else json.dumps(body).encode("utf-8")
        headers = {"Accept": "application/json", "User-Agent": f"affinity-client-python/{__about__.__version__}"}
        headers.update(extra_headers or {})
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.key is not None:
            headers["Authorization"] = f"Bearer {self.key}"
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                status = resp.status
                raw = resp.read()
        except urllib.error.HTTPError as e:
            raise _from_http_error(e) from None
        except (socket.timeout, TimeoutError) as e:
            raise AffinityError(None, "timeout", f"{method} {self.url}{path}: no answer in {self.timeout} s") from e
        except urllib.error.URLError as e:
            reason = e.reason
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise AffinityError(
                    None, "timeout", f"{method} {self.url}{path}: no answer in {self.timeout} s"
                ) from e
            raise AffinityError(None, "unavailable", f"{method} {self.url}{path}: {reason}") from e
        except (OSError, http.client.HTTPException) as e:  # reset or cut mid-answer
            raise AffinityError(None, "unavailable", f"{method} {self.url}{path}: {e}") from e
        text = raw.decode("utf-8", errors="replace")
        if not text.strip():
            return {}
        try:
            return json.loads(text)
        except ValueError:
            raise AffinityError(
                status, "invalid_response", f"{method} {path}: the answer is not JSON: {text[:200]!r}", body=text
            ) from None


class Experiments:
    """A/B experiments of the server (``/admin/experiments``); ``client.experiments``."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(self, spec: Optional[Mapping[str, JSON]] = None, **fields: Any) -> Dict[str, JSON]:
        """Creates an experiment: ``POST /admin/experiments``; returns the stored experiment.

        Give the experiment as a dict, as keywords, or both (keywords win)::

            client.experiments.create(
                id="exp1", targets=["items"],
                arms=[{"name": "control", "weight": 50},
                      {"name": "treatment", "weight": 50, "ranker": "off"}])

        An existing id raises :class:`AffinityError` with status 409; a bad arm,
        override or weight 422 naming the field.
        """
        body: Dict[str, JSON] = dict(spec or {})
        body.update(fields)
        if not body:
            raise ValueError("create needs the experiment (id, arms, ...)")
        return cast(Dict[str, JSON], self._client._request("POST", "/admin/experiments", body))

    def list(self) -> List[Dict[str, JSON]]:
        """Every experiment: ``GET /admin/experiments``."""
        answer = cast(Dict[str, Any], self._client._request("GET", "/admin/experiments"))
        return cast(List[Dict[str, JSON]], answer.get("experiments", []))

    def get(self, id: str) -> Dict[str, JSON]:
        """One experiment: ``GET /admin/experiments/{id}`` (404 if unknown)."""
        return cast(Dict[str, JSON], self._client._request("GET", f"/admin/experiments/{_quote(id)}"))

    def report(self, id: str) -> Dict[str, JSON]:
        """Per-arm figures and comparisons: ``GET /admin/experiments/{id}/report``."""
        return cast(Dict[str, JSON], self._client._request("GET", f"/admin/experiments/{_quote(id)}/report"))

    def stop(self, id: str, reason: Optional[str] = None) -> Dict[str, JSON]:
        """Stops an experiment: ``POST /admin/experiments/{id}/stop``; its report stays.

        Returns the stopped experiment.
        """
        body = {"reason": reason} if reason is not None else None
        return cast(Dict[str, JSON], self._client._request("POST", f"/admin/experiments/{_quote(id)}/stop", body))


def _listed(items: Iterable[Any], what: str) -> List[Any]:
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise TypeError(f"{what} must be a list (or other iterable) of {what}, not {type(items).__name__}")
    return list(items)


def _retry_after(headers: Any) -> Optional[float]:
    value = headers.get("Retry-After") if headers is not None else None
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _from_http_error(e: urllib.error.HTTPError) -> AffinityError:
    try:
        text = e.read().decode("utf-8", errors="replace")
    except Exception:  # the body could not be read: the status still says what happened
        text = ""
    code, message = f"http_{e.code}", (e.reason if isinstance(e.reason, str) else "") or f"HTTP {e.code}"
    try:
        err = json.loads(text).get("error") if text.strip() else None
    except (ValueError, AttributeError):
        err = None
    if isinstance(err, dict):
        code = str(err.get("code") or code)
        message = str(err.get("message") or message)
    elif text.strip():
        message = text.strip()[:500]
    return AffinityError(e.code, code, message, retry_after=_retry_after(e.headers), body=text)
