"""Request helpers (:class:`Event`, :class:`Entity`) and the shapes of responses.

Every client method also accepts plain dicts where it takes an :class:`Event` or an
:class:`Entity`, and every method returns the server's JSON as plain dicts and lists;
the ``TypedDict`` classes below only describe those dicts for type checkers (the
server may add fields; nothing here drops them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, TypedDict, Union

JSON = Any
"""A decoded JSON value."""


@dataclass
class Event:
    """One feedback event for :meth:`Client.feedback`.

    ``weight`` and ``ts`` (unix milliseconds) are optional: the server uses the
    action's configured weight and the time of arrival. ``context`` is free JSON;
    put the query's ``request_id`` in it (``{"request_id": ...}``) so that
    experiment reports count the click or hide for the arm that served it.
    """

    viewer_id: str
    entity_id: str
    action: str
    weight: Optional[float] = None
    ts: Optional[int] = None
    context: Optional[Dict[str, JSON]] = None

    def to_json(self) -> Dict[str, JSON]:
        """The event as the API's JSON object (unset optional fields left out)."""
        return _without_none(
            {
                "viewer_id": self.viewer_id,
                "entity_id": self.entity_id,
                "action": self.action,
                "weight": self.weight,
                "ts": self.ts,
                "context": self.context,
            }
        )


@dataclass
class Entity:
    """One entity for :meth:`Client.upsert`: a user, a creator or an item.

    ``creator_id`` is required for items; ``expires_at`` is unix milliseconds
    (after it the entity is never recommended); ``labels`` can be filtered on in
    queries (``filter={"labels_any": [...]}``).
    """

    id: str
    kind: str
    creator_id: Optional[str] = None
    name: Optional[str] = None
    cohort: Optional[str] = None
    labels: Optional[List[str]] = None
    expires_at: Optional[int] = None
    attributes: Optional[Dict[str, JSON]] = field(default=None)

    def to_json(self) -> Dict[str, JSON]:
        """The entity as the API's JSON object (unset optional fields left out)."""
        return _without_none(
            {
                "id": self.id,
                "kind": self.kind,
                "creator_id": self.creator_id,
                "name": self.name,
                "cohort": self.cohort,
                "labels": self.labels,
                "expires_at": self.expires_at,
                "attributes": self.attributes,
            }
        )


EventLike = Union[Event, Mapping[str, JSON]]
EntityLike = Union[Entity, Mapping[str, JSON]]


class Feature(TypedDict):
    """One feature of an explanation and its exact contribution to the score."""

    name: str
    value: float
    contribution: float


class Explanation(TypedDict, total=False):
    """Why a result is there: a readable reason and the features behind the score."""

    reason: str
    method: str
    top_features: List[Feature]
    base: float
    raw_score: float


class Result(TypedDict, total=False):
    """One recommended entity."""

    entity_id: str
    score: float
    sources: List[str]
    explanation: Explanation


class ExperimentArm(TypedDict):
    """The experiment and arm a response was served in."""

    id: str
    arm: str


class QueryResponse(TypedDict, total=False):
    """The answer to ``POST /affinity/query`` (and one page of :meth:`Client.pages`)."""

    request_id: str
    model_version: str
    experiment: Optional[ExperimentArm]
    cold_start: bool
    degraded: bool
    results: List[Result]
    next_cursor: Optional[str]


class SimilarResponse(TypedDict, total=False):
    """The answer to ``GET /affinity/entities/{id}/similar``."""

    request_id: str
    results: List[Result]


class EntityRecord(TypedDict, total=False):
    """An entity as ``GET /affinity/entities/{id}`` returns it."""

    id: str
    kind: str
    creator_id: str
    name: str
    cohort: str
    labels: List[str]
    expires_at: int
    attributes: Dict[str, JSON]


class ViewerEvent(TypedDict, total=False):
    """One of a viewer's recent feedback events (newest first)."""

    offset: int
    ts: int
    entity_id: str
    action: str
    weight: float
    context: Dict[str, JSON]


def event_json(event: EventLike) -> Dict[str, JSON]:
    """An :class:`Event` or a mapping as the API's JSON object."""
    if isinstance(event, Event):
        return event.to_json()
    if isinstance(event, Mapping):
        return dict(event)
    raise TypeError(f"an event must be an Event or a mapping, not {type(event).__name__}")


def entity_json(entity: EntityLike) -> Dict[str, JSON]:
    """An :class:`Entity` or a mapping as the API's JSON object."""
    if isinstance(entity, Entity):
        return entity.to_json()
    if isinstance(entity, Mapping):
        return dict(entity)
    raise TypeError(f"an entity must be an Entity or a mapping, not {type(entity).__name__}")


def _without_none(d: Dict[str, JSON]) -> Dict[str, JSON]:
    return {k: v for k, v in d.items() if v is not None}


__all__ = [
    "JSON",
    "Event",
    "Entity",
    "EventLike",
    "EntityLike",
    "Feature",
    "Explanation",
    "Result",
    "ExperimentArm",
    "QueryResponse",
    "SimilarResponse",
    "EntityRecord",
    "ViewerEvent",
    "event_json",
    "entity_json",
]
