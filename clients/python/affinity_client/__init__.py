"""Python client for the affinity recommendation service.

Standard library only. The whole API in one object::

    from affinity_client import Client, AffinityError, Event, Entity

    client = Client("http://127.0.0.1:8080", key=None, timeout=10)
    page = client.query("u1", target="items", k=5)
    for result in page["results"]:
        print(result["entity_id"], result["explanation"]["reason"])
    client.feedback([Event("u1", page["results"][0]["entity_id"], "click",
                           context={"request_id": page["request_id"]})])

Errors are :class:`AffinityError` with ``status``, ``code`` and ``message``.
"""

from .__about__ import __version__
from .client import Client, Experiments
from .errors import AffinityError
from .models import (
    Entity,
    EntityRecord,
    Event,
    Explanation,
    Feature,
    QueryResponse,
    Result,
    SimilarResponse,
    ViewerEvent,
)

__all__ = [
    "__version__",
    "Client",
    "Experiments",
    "AffinityError",
    "Event",
    "Entity",
    "EntityRecord",
    "Explanation",
    "Feature",
    "QueryResponse",
    "Result",
    "SimilarResponse",
    "ViewerEvent",
]
