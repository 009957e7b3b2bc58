"""The one exception the client raises: :class:`AffinityError`."""

from __future__ import annotations

from typing import Any, Optional


class AffinityError(Exception):
    """An error answer from the server, or no answer at all.

    Attributes:
        status: the HTTP status (400, 401, 403, 404, 409, 410, 413, 422, 429, 503, ...),
            or ``None`` when no HTTP answer came (connection refused, DNS failure,
            timeout).
        code: the server's error code from ``{"error":{"code":...}}`` (``"invalid"``,
            ``"not_found"``, ``"conflict"``, ...). Without an answer it is
            ``"unavailable"`` (could not connect) or ``"timeout"``; for an answer
            that is not the API's JSON error it is ``"http_<status>"``, and for a
            success whose body is not JSON ``"invalid_response"``.
        message: the server's message, or a description of what went wrong.
        retry_after: seconds from a ``Retry-After`` header (429, 503), else ``None``.
        body: the raw response body as text ("" when there was none).
    """

    status: Optional[int]
    code: str
    message: str
    retry_after: Optional[float]
    body: str

    def __init__(
        self,
        status: Optional[int],
        code: str,
        message: str,
        *,
        retry_after: Optional[float] = None,
        body: str = "",
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.body = body
        super().__init__(str(self))

    def __str__(self) -> str:
        where = "no response" if self.status is None else f"HTTP {self.status}"
        return f"{where} {self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"AffinityError(status={self.status!r}, code={self.code!r}, message={self.message!r})"

    def __reduce__(self) -> Any:  # picklable despite the keyword-only arguments
        return (_rebuild, (self.status, self.code, self.message, self.retry_after, self.body))


def _rebuild(
    status: Optional[int], code: str, message: str, retry_after: Optional[float], body: str
) -> AffinityError:
    return AffinityError(status, code, message, retry_after=retry_after, body=body)
