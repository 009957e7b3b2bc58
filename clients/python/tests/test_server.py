"""The client against a real affinity server on a tiny synthetic world.

One server serves every test of the module; each test writes its own entities and
viewers (ids prefixed ``py-<test>``) so that tests do not depend on each other's
order. Run from the repository root:

    AFFINITY_BIN=build/affinity python3 -m unittest discover -s clients/python/tests -v
"""

from __future__ import annotations

import socket
import sys
import time
import unittest
import uuid
from typing import List, Optional

import support

from affinity_client import AffinityError, Client, Entity, Event

_world: Optional[support.World] = None
_server: Optional[support.Server] = None


def setUpModule() -> None:
    global _world, _server
    _world = support.World()
    _server = support.Server(_world.data_dir)


def tearDownModule() -> None:
    if _server is not None:
        if _server.exit_code is not None:
            sys.stderr.write(f"the server exited by itself (code {_server.exit_code}); its output:\n{_server.log}\n")
        _server.stop()
    if _world is not None:
        _world.remove()


def name_of(record: dict) -> Optional[str]:
    """An entity's display name as read back: its `name`, which this server keeps
    among the attributes (attributes.name) rather than as a field of its own."""
    return record.get("name", record.get("attributes", {}).get("name"))


def attributes_of(record: dict) -> dict:
    """An entity's attributes as read back, without the display name kept there."""
    return {k: v for k, v in record.get("attributes", {}).items() if k != "name"}


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class ServerTestCase(unittest.TestCase):
    client: Client
    world: support.World

    @classmethod
    def setUpClass(cls) -> None:
        assert _server is not None and _world is not None
        cls.client = Client(_server.url, timeout=30)
        cls.world = _world

    def setUp(self) -> None:
        assert _server is not None
        if _server.exit_code is not None:
            self.fail(f"the server exited (code {_server.exit_code}) before this test; the end of its output:\n"
                      + _server.log[-3000:])

    def ids(self, response: dict) -> List[str]:
        return [r["entity_id"] for r in response["results"]]

    def assertRaisesAffinity(self, status: int, code: Optional[str] = None):
        """A context manager: the block raises AffinityError with that status (and code)."""
        test = self

        class _Check:
            def __enter__(self):
                return self

            def __exit__(self, exc_type, exc, tb):
                if exc_type is None:
                    test.fail(f"no AffinityError (expected HTTP {status})")
                if not issubclass(exc_type, AffinityError):
                    return False
                test.assertEqual(exc.status, status, repr(exc))
                if code is not None:
                    test.assertEqual(exc.code, code, repr(exc))
                test.assertTrue(exc.message, "the error carries the server's message")
                self.error = exc
                return True

        return _Check()

    def new_catalogue(self, prefix: str, n_items: int = 4, labels: Optional[List[str]] = None):
        """A creator and n items of it, upserted; returns (creator_id, [item ids])."""
        creator = _unique(f"{prefix}-c")
        items = [_unique(f"{prefix}-i{n}") for n in range(n_items)]
        entities = [Entity(creator, "creator", name=f"{prefix} creator")]
        entities += [
            Entity(i, "item", creator_id=creator, name=f"{prefix} item {n}", labels=labels)
            for n, i in enumerate(items)
        ]
        self.assertEqual(self.client.upsert(entities), {"upserted": len(entities)})
        return creator, items


class OperationsTest(ServerTestCase):
    def test_health_and_ready(self) -> None:
        self.assertEqual(self.client.health().get("status"), "ok")
        ready = self.client.ready()
        self.assertEqual(ready["status"], "ready")
        self.assertEqual(self.client.wait_ready(timeout=5)["status"], "ready")

    def test_stats_count_the_world(self) -> None:
        stats = self.client.stats()
        self.assertGreaterEqual(stats["events"], len(self.world.events))
        self.assertGreaterEqual(
            stats["entities"], len(self.world.items) + len(self.world.creators) + len(self.world.users)
        )

    def test_connection_refused_is_unavailable(self) -> None:
        with socket.socket() as s:  # a loopback port nobody listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with self.assertRaises(AffinityError) as cm:
            Client(f"http://127.0.0.1:{port}", timeout=5).query("u1")
        self.assertIsNone(cm.exception.status)
        self.assertEqual(cm.exception.code, "unavailable")


class QueryTest(ServerTestCase):
    def test_query_returns_explained_items(self) -> None:
        viewer = self.world.events[0][0]
        r = self.client.query(viewer, target="items", k=5)
        self.assertTrue(r["request_id"])
        self.assertIn("model_version", r)
        self.assertTrue(0 < len(r["results"]) <= 5, r)
        items = set(self.world.items)
        for result in r["results"]:
            self.assertIn(result["entity_id"], items)
            self.assertIsInstance(result["score"], (int, float))
            self.assertTrue(result["explanation"]["reason"])
        self.assertEqual(len(set(self.ids(r))), len(r["results"]))

    def test_other_targets_and_fields(self) -> None:
        viewer = self.world.users[0]
        creators = self.client.query(viewer, target="creators", k=3)
        self.assertTrue(set(self.ids(creators)) <= set(self.world.creators))
        users = self.client.query(viewer, target="users", k=3, explain="full")
        self.assertTrue(set(self.ids(users)) <= set(self.world.users) - {viewer})
        for result in users["results"]:
            e = result["explanation"]
            total = e["base"] + sum(f["contribution"] for f in e["top_features"])
            self.assertAlmostEqual(total, e.get("raw_score", result["score"]), places=3)
        first = self.client.query(viewer, k=5)["results"]
        if first:
            excluded = first[0]["entity_id"]
            again = self.client.query(viewer, k=5, exclude=[excluded], seeds=None)
            self.assertNotIn(excluded, self.ids(again))

    def test_unknown_viewer_gets_cold_start_list(self) -> None:
        r = self.client.query(_unique("py-nobody"), k=5)
        self.assertTrue(r["results"], "a cold-start list, not an empty one")
        self.assertTrue(set(self.ids(r)) <= set(self.world.items))
        if "cold_start" in r:
            self.assertIs(r["cold_start"], True)

    def test_invalid_queries_raise_the_servers_error(self) -> None:
        with self.assertRaisesAffinity(422, "invalid") as cm:
            self.client.query("u1", k=0)
        self.assertIn("k", cm.error.message)
        with self.assertRaisesAffinity(422) as cm:
            self.client.query("u1", colour="blue")
        self.assertIn("colour", cm.error.message)
        with self.assertRaisesAffinity(422):
            self.client.query("u1", target="planets")
        with self.assertRaisesAffinity(422):
            self.client.query("", k=3)

    def test_label_filter(self) -> None:
        label = _unique("py-label")
        _, items = self.new_catalogue("py-filter", 3, labels=[label])
        r = self.client.query(_unique("py-filter-viewer"), k=10, filter={"labels_any": [label]})
        self.assertEqual(set(self.ids(r)), set(items))
        r = self.client.query(_unique("py-filter-viewer"), k=50, filter={"labels_none": [label]})
        self.assertFalse(set(self.ids(r)) & set(items))


class FeedbackTest(ServerTestCase):
    def test_feedback_changes_the_next_query(self) -> None:
        viewer = _unique("py-fb-viewer")
        before = self.client.query(viewer, k=10)
        self.assertTrue(before["results"])
        hidden = before["results"][0]["entity_id"]
        accepted = self.client.feedback(
            [
                Event(viewer, hidden, "hide", context={"request_id": before["request_id"]}),
                {"viewer_id": viewer, "entity_id": before["results"][1]["entity_id"], "action": "click"},
            ]
        )
        self.assertEqual(accepted, {"accepted": 2})
        after = self.client.query(viewer, k=10)
        self.assertNotIn(hidden, self.ids(after))
        self.assertNotEqual(self.ids(before), self.ids(after))

        events = self.client.events(viewer, limit=10)
        self.assertEqual([e["action"] for e in events], ["click", "hide"])  # newest first
        self.assertEqual(events[1]["entity_id"], hidden)
        self.assertEqual(events[1]["context"], {"request_id": before["request_id"]})
        self.assertEqual(len(self.client.events(viewer, limit=1)), 1)

    def test_follow_changes_people_you_may_know(self) -> None:
        viewer = _unique("py-follow-viewer")
        self.client.upsert([Entity(viewer, "user")])
        before = self.ids(self.client.query(viewer, target="users", k=20))
        followed = self.world.users[:3]
        self.client.feedback([Event(viewer, u, "follow") for u in followed])
        after = self.ids(self.client.query(viewer, target="users", k=20))
        self.assertFalse(set(after) & set(followed), "never an account the viewer follows")
        self.assertNotEqual(before, after)

    def test_invalid_batch_is_refused_whole(self) -> None:
        viewer = self.world.users[1]
        before = self.client.events(viewer, limit=50)
        item = self.world.items[0]
        with self.assertRaisesAffinity(422) as cm:
            self.client.feedback(
                [Event(viewer, item, "click"), Event(viewer, item, "teleport")]
            )
        self.assertIn("1", cm.error.message)  # names the event's index
        self.assertEqual(self.client.events(viewer, limit=50), before)

    def test_a_batch_sent_again_with_its_key_is_stored_once(self) -> None:
        viewer = _unique("py-idem-viewer")
        item = self.world.items[0]
        key = _unique("py-idem-key")
        first = self.client.feedback([Event(viewer, item, "click")], idempotency_key=key)
        again = self.client.feedback([Event(viewer, item, "click")], idempotency_key=key)
        self.assertEqual(first, {"accepted": 1})
        self.assertEqual(again, first)
        self.assertEqual(len(self.client.events(viewer, limit=10)), 1)
        with self.assertRaisesAffinity(422) as cm:
            self.client.feedback([Event(viewer, item, "like")], idempotency_key=key)
        self.assertEqual(cm.error.code, "idempotency_key_reused")
        self.client.feedback([Event(viewer, item, "click")])  # no key given: a new one, stored again
        self.assertEqual(len(self.client.events(viewer, limit=10)), 2)

    def test_feedback_type_errors_are_local(self) -> None:
        with self.assertRaises(TypeError):
            self.client.feedback({"viewer_id": "u1", "entity_id": "i1", "action": "click"})  # type: ignore[arg-type]


class EntityTest(ServerTestCase):
    def test_upsert_read_back_and_delete(self) -> None:
        creator, items = self.new_catalogue("py-ent", 2, labels=["py"])
        self.client.upsert(
            [Entity(items[0], "item", creator_id=creator, name="Golden", labels=["a", "b"],
                    attributes={"price": 3.5, "tags": ["x"]}, cohort="eu")]
        )
        record = self.client.entity(items[0])
        self.assertEqual(record["id"], items[0])
        self.assertEqual(record["kind"], "item")
        self.assertEqual(record["creator_id"], creator)
        self.assertEqual(sorted(record["labels"]), ["a", "b"])
        self.assertEqual(name_of(record), "Golden")
        self.assertEqual(attributes_of(record), {"price": 3.5, "tags": ["x"]})
        self.assertEqual(record.get("cohort"), "eu")

        self.assertEqual(self.client.delete(items[0]), {"deleted": items[0]})
        with self.assertRaisesAffinity(404, "not_found"):
            self.client.entity(items[0])
        viewer = _unique("py-ent-viewer")
        r = self.client.query(viewer, k=10, filter={"labels_any": ["py"]})
        self.assertNotIn(items[0], self.ids(r))

    def test_ids_are_url_encoded(self) -> None:
        odd = _unique("py item/ä?#&%")
        self.client.upsert([Entity(odd, "user", name="Odd")])
        self.assertEqual(self.client.entity(odd)["id"], odd)
        self.client.feedback([Event(odd, self.world.items[0], "click")])
        self.assertEqual(self.client.events(odd)[0]["entity_id"], self.world.items[0])
        self.client.delete(odd)
        with self.assertRaisesAffinity(404):
            self.client.entity(odd)

    def test_unknown_entity_is_404(self) -> None:
        with self.assertRaisesAffinity(404, "not_found"):
            self.client.entity(_unique("py-missing"))

    def test_invalid_entity_is_422(self) -> None:
        with self.assertRaisesAffinity(422) as cm:
            self.client.upsert([{"id": _unique("py-x"), "kind": "item", "creator_id": "c0", "colour": "red"}])
        self.assertIn("colour", cm.error.message)
        with self.assertRaisesAffinity(422):
            self.client.upsert([{"id": _unique("py-x"), "kind": "planet"}])

    def test_deleted_creator_takes_its_items(self) -> None:
        label = _unique("py-del-creator")
        creator, items = self.new_catalogue("py-delc", 3, labels=[label])
        viewer = _unique("py-delc-viewer")
        self.assertEqual(set(self.ids(self.client.query(viewer, k=10, filter={"labels_any": [label]}))), set(items))
        self.client.delete(creator)
        self.assertEqual(self.ids(self.client.query(viewer, k=10, filter={"labels_any": [label]})), [])


class PatchTest(ServerTestCase):
    """``PATCH /affinity/entities/{id}``: partial update."""

    def test_patch_changes_named_fields_and_keeps_the_rest(self) -> None:
        creator, items = self.new_catalogue("py-patch", 1)
        item = items[0]
        self.client.upsert(
            [Entity(item, "item", creator_id=creator, name="Before", labels=["old"], attributes={"a": 1})]
        )
        self.client.patch(item, labels=["new", "fresh"])
        record = self.client.entity(item)
        self.assertEqual(sorted(record["labels"]), ["fresh", "new"])
        self.assertEqual(record["creator_id"], creator)
        self.assertEqual(attributes_of(record), {"a": 1})
        self.assertEqual(name_of(record), "Before")

        self.client.patch(item, attributes={"b": 2}, cohort="kids")
        record = self.client.entity(item)
        self.assertEqual(attributes_of(record), {"b": 2})
        self.assertEqual(record.get("cohort"), "kids")
        self.assertEqual(sorted(record["labels"]), ["fresh", "new"])
        self.assertEqual(name_of(record), "Before")

        self.client.patch(item, name="After")
        record = self.client.entity(item)
        self.assertEqual(name_of(record), "After")
        self.assertEqual(attributes_of(record), {"b": 2})
        self.assertEqual(record.get("cohort"), "kids")

    def test_patch_unknown_entity_is_404(self) -> None:
        with self.assertRaisesAffinity(404):
            self.client.patch(_unique("py-missing"), name="x")

    def test_patch_unknown_field_is_422(self) -> None:
        _, items = self.new_catalogue("py-patch-bad", 1)
        with self.assertRaisesAffinity(422) as cm:
            self.client.patch(items[0], colour="red")
        self.assertIn("colour", cm.error.message)
        with self.assertRaisesAffinity(422) as cm:
            self.client.patch(items[0], id="another")  # the id in the path is positional-only
        self.assertIn("id", cm.error.message)

    def test_patched_expiry_removes_the_entity_from_lists(self) -> None:
        label = _unique("py-patch-exp")
        _, items = self.new_catalogue("py-patch-exp", 2, labels=[label])
        viewer = _unique("py-patch-exp-viewer")
        self.assertEqual(set(self.ids(self.client.query(viewer, k=10, filter={"labels_any": [label]}))), set(items))
        self.client.patch(items[0], expires_at=int(time.time() * 1000) - 60_000)
        self.assertEqual(self.client.entity(items[1])["labels"], [label])
        self.assertEqual(self.ids(self.client.query(viewer, k=10, filter={"labels_any": [label]})), [items[1]])

    def test_patched_labels_drive_filters(self) -> None:
        label = _unique("py-patch-label")
        _, items = self.new_catalogue("py-patch-f", 2)
        self.client.patch(items[0], labels=[label])
        r = self.client.query(_unique("py-patch-viewer"), k=10, filter={"labels_any": [label]})
        self.assertEqual(self.ids(r), [items[0]])


class SimilarTest(ServerTestCase):
    """``GET /affinity/entities/{id}/similar``."""

    def popular_item(self) -> str:
        counts: dict = {}
        for _, entity, action in self.world.events:
            if entity in self.world.item_creator and action != "hide":
                counts[entity] = counts.get(entity, 0) + 1
        return max(counts, key=lambda i: counts[i])

    def test_similar_items(self) -> None:
        item = self.popular_item()
        r = self.client.similar(item, k=5)
        self.assertTrue(r["request_id"])
        self.assertTrue(0 < len(r["results"]) <= 5, r)
        for result in r["results"]:
            self.assertIn(result["entity_id"], self.world.item_creator)
            self.assertNotEqual(result["entity_id"], item)
            self.assertTrue(result["explanation"]["reason"])
        self.assertEqual(len(set(self.ids(r))), len(r["results"]))

    def test_similar_unknown_is_404(self) -> None:
        self.client.similar(self.popular_item(), k=1)  # the route exists
        missing = _unique("py-missing")
        with self.assertRaisesAffinity(404, "not_found") as cm:
            self.client.similar(missing)
        self.assertIn(missing, cm.error.message)


class ListingTest(ServerTestCase):
    """``GET /affinity/entities?kind=...&cursor=...``."""

    def test_every_item_once_across_pages(self) -> None:
        pages = list(self.client.entity_pages("item", limit=40))
        self.assertGreater(len(pages), 1)
        self.assertIsNone(pages[-1]["next_cursor"])
        listed = [e["id"] for page in pages for e in page["entities"]]
        for page in pages:
            self.assertLessEqual(len(page["entities"]), 40)
            self.assertTrue(all(e["kind"] == "item" for e in page["entities"]))
        self.assertEqual(len(listed), len(set(listed)), "no entity twice")
        self.assertTrue(set(self.world.items) <= set(listed))

    def test_label_listing_and_deletes(self) -> None:
        label = _unique("py-list")
        _, items = self.new_catalogue("py-list", 5, labels=[label])
        listed = [e["id"] for e in self.client.entities("item", limit=2, label=label)]
        self.assertEqual(sorted(listed), sorted(items))
        self.client.delete(items[0])
        listed = [e["id"] for e in self.client.entities("item", limit=2, label=label)]
        self.assertEqual(sorted(listed), sorted(items[1:]))

    def test_unknown_kind_is_422(self) -> None:
        with self.assertRaisesAffinity(422) as cm:
            list(self.client.entities("planet"))
        self.assertIn("kind", cm.error.message)

    def test_creators_listing(self) -> None:
        listed = {e["id"] for e in self.client.entities("creator", limit=5)}
        self.assertTrue(set(self.world.creators) <= listed)
        self.assertFalse(listed & set(self.world.items))


class PagesTest(ServerTestCase):
    """Query cursors: ``next_cursor`` and ``cursor``."""

    def test_pages_follow_next_cursor_without_repeats(self) -> None:
        viewer = self.world.events[0][0]
        first = self.client.query(viewer, k=5)
        self.assertIn("next_cursor", first)
        pages = list(self.client.pages(viewer, k=5, max_pages=4))
        self.assertEqual(len(pages), 4)
        self.assertEqual(self.ids(pages[0]), self.ids(first))
        seen: List[str] = []
        for page in pages:
            self.assertTrue(0 < len(page["results"]) <= 5)
            seen += self.ids(page)
        self.assertEqual(len(seen), len(set(seen)), f"an entity repeated across pages: {seen}")
        self.assertTrue(set(seen) <= set(self.world.items))

    def test_pages_end_with_a_null_cursor(self) -> None:
        label = _unique("py-pages")
        _, items = self.new_catalogue("py-pages", 7, labels=[label])
        pages = list(self.client.pages(_unique("py-pages-viewer"), k=3, filter={"labels_any": [label]}))
        self.assertIsNone(pages[-1]["next_cursor"])
        seen = [i for page in pages for i in self.ids(page)]
        self.assertEqual(sorted(seen), sorted(items))
        self.assertIn(len(pages), (3, 4))  # 3 + 3 + 1, and perhaps an empty last page

    def test_unknown_cursor_is_refused(self) -> None:
        viewer = self.world.users[0]
        self.assertTrue(self.client.query(viewer, k=5).get("next_cursor"), "a first page names the next")
        with self.assertRaises(AffinityError) as cm:
            self.client.query(viewer, k=5, cursor="not-a-cursor")
        self.assertIn(cm.exception.status, (400, 410, 422))
        self.assertIn("cursor", cm.exception.message)


class ExperimentTest(ServerTestCase):
    def test_create_assign_report_stop(self) -> None:
        exp = _unique("py-exp")
        created = self.client.experiments.create(
            id=exp,
            layer=exp,
            targets=["creators"],
            arms=[{"name": "control", "weight": 50}, {"name": "treatment", "weight": 50, "ranker": "off"}],
        )
        self.assertEqual(created["id"], exp)
        self.assertIn(exp, [e["id"] for e in self.client.experiments.list()])
        self.assertEqual(self.client.experiments.get(exp)["id"], exp)

        arms = set()
        served = 0
        for n in range(40):
            viewer = f"py-exp-viewer-{n}"
            r = self.client.query(viewer, target="creators", k=3)
            self.assertIsNotNone(r["experiment"])
            self.assertEqual(r["experiment"]["id"], exp)
            arms.add(r["experiment"]["arm"])
            served += len(r["results"])
            if r["results"]:
                self.client.feedback(
                    [Event(viewer, r["results"][0]["entity_id"], "click", context={"request_id": r["request_id"]})]
                )
        self.assertEqual(arms, {"control", "treatment"})

        deadline = time.monotonic() + 5
        while True:
            report = self.client.experiments.report(exp)
            by_arm = {a["name"]: a for a in report["arms"]}
            if sum(a["clicks"] for a in by_arm.values()) >= 1 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(report["id"], exp)
        self.assertEqual(report["status"], "running")
        self.assertEqual(set(by_arm), {"control", "treatment"})
        self.assertEqual(sum(a["responses"] for a in by_arm.values()), 40)
        self.assertEqual(sum(a["exposures"] for a in by_arm.values()), served)
        self.assertGreater(sum(a["clicks"] for a in by_arm.values()), 0)

        stopped = self.client.experiments.stop(exp, reason="done")
        self.assertEqual(stopped["id"], exp)
        self.assertEqual(self.client.experiments.report(exp)["status"], "stopped")
        self.assertIsNone(self.client.query("py-exp-viewer-0", target="creators", k=3)["experiment"])

    def test_experiment_errors(self) -> None:
        exp = _unique("py-exp-err")
        arms = [{"name": "control", "weight": 50}, {"name": "treatment", "weight": 50}]
        self.client.experiments.create({"id": exp, "layer": exp, "targets": ["users"], "arms": arms})
        with self.assertRaisesAffinity(409, "conflict"):
            self.client.experiments.create({"id": exp, "layer": exp, "targets": ["users"], "arms": arms})
        with self.assertRaisesAffinity(422):
            self.client.experiments.create(id=_unique("py-exp-bad"), arms=[{"name": "a", "weight": 0}])
        with self.assertRaisesAffinity(404):
            self.client.experiments.report(_unique("py-exp-missing"))
        with self.assertRaisesAffinity(404):
            self.client.experiments.stop(_unique("py-exp-missing"))
        self.client.experiments.stop(exp)


if __name__ == "__main__":
    unittest.main()
