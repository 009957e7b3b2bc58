"""What the client itself does on the wire, against a recording HTTP server in this
process: the headers it sends (the API key), how it encodes ids and bodies, how it
follows cursors, and how it turns every kind of failure into AffinityError. The
behaviour of the real server is covered by test_server.py."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import unittest
import urllib.parse
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple

import support  # noqa: F401  (puts the client's source on sys.path, sets no_proxy)

from affinity_client import AffinityError, Client, Entity, Event, __version__

Reply = Tuple[int, Dict[str, str], bytes]


class _Recorder(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, reply: Callable[["_Handler"], Reply]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.reply = reply
        self.requests: List[Dict[str, Any]] = []


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Recorder

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.requests.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
        )
        status, headers, payload = self.server.reply(self)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _any


def _json(status: int, obj: Any, headers: Optional[Dict[str, str]] = None) -> Reply:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(obj).encode()


class LocalTestCase(unittest.TestCase):
    def serve(self, reply: Callable[[_Handler], Reply]) -> _Recorder:
        server = _Recorder(reply)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(thread.join, 5)
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        return server

    def client(self, server: _Recorder, **kw: Any) -> Client:
        return Client(f"http://127.0.0.1:{server.server_address[1]}", **kw)


class WireTest(LocalTestCase):
    def test_key_is_sent_as_bearer_token(self) -> None:
        server = self.serve(lambda h: _json(200, {"status": "ok"}))
        self.client(server, key="s3cret").health()
        self.client(server).health()
        with_key, without = server.requests
        self.assertEqual(with_key["headers"].get("Authorization"), "Bearer s3cret")
        self.assertNotIn("Authorization", without["headers"])
        self.assertIn(__version__, with_key["headers"]["User-Agent"])

    def test_query_body_and_path_encoding(self) -> None:
        server = self.serve(lambda h: _json(200, {"results": [], "next_cursor": None}))
        c = self.client(server)
        c.query("u 1", target="users", k=3, explain="full", seeds=None, filter={"labels_any": ["a"]})
        c.entity("a/b c?d#e%f")
        c.delete("ü")
        c.events("v/1", limit=5)
        c.similar("i/1", k=7)
        c.patch("i/1", labels=["x"], expires_at=None)
        c.experiments.report("exp/1")
        q, get, delete, events, similar, patch, report = server.requests
        self.assertEqual(q["method"], "POST")
        self.assertEqual(q["path"], "/affinity/query")
        self.assertEqual(q["headers"]["Content-Type"], "application/json")
        self.assertEqual(
            json.loads(q["body"]),
            {"viewer_id": "u 1", "target": "users", "k": 3, "explain": "full", "filter": {"labels_any": ["a"]}},
        )
        self.assertEqual(get["path"], "/affinity/entities/a%2Fb%20c%3Fd%23e%25f")
        self.assertEqual(urllib.parse.unquote(get["path"].rsplit("/", 1)[1]), "a/b c?d#e%f")
        self.assertEqual((delete["method"], delete["path"]), ("DELETE", "/affinity/entities/%C3%BC"))
        self.assertEqual(events["path"], "/affinity/viewers/v%2F1/events?limit=5")
        self.assertEqual(similar["path"], "/affinity/entities/i%2F1/similar?k=7")
        self.assertEqual((patch["method"], patch["path"]), ("PATCH", "/affinity/entities/i%2F1"))
        self.assertEqual(json.loads(patch["body"]), {"labels": ["x"], "expires_at": None})
        self.assertEqual(report["path"], "/admin/experiments/exp%2F1/report")

    def test_events_and_entities_from_dataclasses_or_dicts(self) -> None:
        server = self.serve(lambda h: _json(202, {"accepted": 2}))
        c = self.client(server)
        c.feedback([Event("u1", "i1", "click", context={"request_id": "q1"}),
                    {"viewer_id": "u1", "entity_id": "i2", "action": "play", "weight": 2}])
        c.upsert(e for e in [Entity("i1", "item", creator_id="c1", labels=["kids"])])
        fb, up = server.requests
        self.assertEqual(
            json.loads(fb["body"]),
            {"events": [{"viewer_id": "u1", "entity_id": "i1", "action": "click", "context": {"request_id": "q1"}},
                        {"viewer_id": "u1", "entity_id": "i2", "action": "play", "weight": 2}]},
        )
        self.assertEqual(
            json.loads(up["body"]), {"entities": [{"id": "i1", "kind": "item", "creator_id": "c1", "labels": ["kids"]}]}
        )

    def test_each_batch_call_sends_its_own_idempotency_key(self) -> None:
        server = self.serve(lambda h: _json(202, {"accepted": 1}))
        c = self.client(server)
        c.feedback([Event("u1", "i1", "click")])
        c.feedback([Event("u1", "i1", "click")])
        c.upsert([Entity("i1", "item")])
        c.feedback([Event("u1", "i1", "click")], idempotency_key="chunk-7")
        c.query("u1")
        keys = [r["headers"].get("Idempotency-Key") for r in server.requests]
        for key in keys[:3]:
            self.assertIsNotNone(key)
            self.assertEqual(str(uuid.UUID(key)), key)  # a UUID
        self.assertEqual(len(set(keys[:3])), 3, "a new key per call")
        self.assertEqual(keys[3], "chunk-7")
        self.assertIsNone(keys[4], "queries carry no key")

    def test_a_retried_batch_reuses_its_key_and_body(self) -> None:
        answers = [
            _json(409, {"error": {"code": "idempotency_key_in_flight", "message": "busy"}}, {"Retry-After": "0"}),
            _json(507, {"error": {"code": "insufficient_storage", "message": "full"}}, {"Retry-After": "0"}),
            _json(202, {"accepted": 1}),
        ]
        server = self.serve(lambda h: answers.pop(0))
        self.assertEqual(self.client(server).feedback([Event("u1", "i1", "click")]), {"accepted": 1})
        self.assertEqual(len(server.requests), 3)
        self.assertEqual(len({r["headers"]["Idempotency-Key"] for r in server.requests}), 1)
        self.assertEqual(len({r["body"] for r in server.requests}), 1)

    def test_a_refused_batch_is_not_retried(self) -> None:
        server = self.serve(lambda h: _json(422, {"error": {"code": "idempotency_key_reused", "message": "no"}}))
        with self.assertRaises(AffinityError) as cm:
            self.client(server).feedback([Event("u1", "i1", "click")], idempotency_key="k")
        self.assertEqual(cm.exception.code, "idempotency_key_reused")
        self.assertEqual(len(server.requests), 1)
        with self.assertRaises(AffinityError) as cm:
            self.client(server, retries=0).upsert([Entity("i1", "item")])
        self.assertEqual(len(server.requests), 2)
        with self.assertRaises(ValueError):
            Client("http://127.0.0.1:9", retries=-1)

    def test_pages_follow_cursors_until_null(self) -> None:
        pages = {None: (["a", "b"], "c1"), "c1": (["c", "d"], "c2"), "c2": (["e"], None)}

        def reply(h: _Handler) -> Reply:
            body = json.loads(h.server.requests[-1]["body"])
            ids, nxt = pages[body.get("cursor")]
            return _json(200, {"results": [{"entity_id": i} for i in ids], "next_cursor": nxt})

        server = self.serve(reply)
        got = [[r["entity_id"] for r in p["results"]] for p in self.client(server).pages("u1", k=2, exclude=["z"])]
        self.assertEqual(got, [["a", "b"], ["c", "d"], ["e"]])
        bodies = [json.loads(r["body"]) for r in server.requests]
        self.assertEqual([b.get("cursor") for b in bodies], [None, "c1", "c2"])
        self.assertTrue(all(b["exclude"] == ["z"] and b["k"] == 2 for b in bodies))
        self.assertEqual(len(list(self.client(server).pages("u1", k=2, max_pages=2))), 2)

    def test_entity_listing_follows_cursors(self) -> None:
        def reply(h: _Handler) -> Reply:
            params = urllib.parse.parse_qs(urllib.parse.urlsplit(h.path).query)
            cursor = params["cursor"][0] if "cursor" in params else None
            pages: Dict[Optional[str], Tuple[List[str], Optional[str]]] = {None: (["i1", "i2"], "n1"), "n1": (["i3"], None)}
            page = pages[cursor]
            return _json(200, {"entities": [{"id": i, "kind": "item"} for i in page[0]], "next_cursor": page[1]})

        server = self.serve(reply)
        ids = [e["id"] for e in self.client(server).entities("item", limit=2, label="kids & teens")]
        self.assertEqual(ids, ["i1", "i2", "i3"])
        first, second = (urllib.parse.parse_qs(urllib.parse.urlsplit(r["path"]).query) for r in server.requests)
        self.assertEqual(first, {"kind": ["item"], "limit": ["2"], "label": ["kids & teens"]})
        self.assertEqual(second["cursor"], ["n1"])

    def test_stop_sends_the_reason(self) -> None:
        server = self.serve(lambda h: _json(200, {"id": "e1", "status": "stopped"}))
        c = self.client(server)
        c.experiments.stop("e1", reason="guardrail by hand")
        c.experiments.stop("e1")
        with_reason, without = server.requests
        self.assertEqual(json.loads(with_reason["body"]), {"reason": "guardrail by hand"})
        self.assertEqual(without["body"], b"")


class ErrorTest(LocalTestCase):
    def test_api_error_carries_status_code_and_message(self) -> None:
        server = self.serve(
            lambda h: _json(429, {"error": {"code": "rate_limited", "message": "slow down"}}, {"Retry-After": "2"})
        )
        with self.assertRaises(AffinityError) as cm:
            self.client(server).query("u1")
        e = cm.exception
        self.assertEqual((e.status, e.code, e.message, e.retry_after), (429, "rate_limited", "slow down", 2.0))
        self.assertIn("429", str(e))

    def test_error_without_json_body(self) -> None:
        server = self.serve(lambda h: (502, {"Content-Type": "text/html"}, b"<html>bad gateway</html>"))
        with self.assertRaises(AffinityError) as cm:
            self.client(server).health()
        self.assertEqual((cm.exception.status, cm.exception.code), (502, "http_502"))
        self.assertIn("bad gateway", cm.exception.message)

    def test_success_that_is_not_json(self) -> None:
        server = self.serve(lambda h: (200, {"Content-Type": "text/plain"}, b"hello"))
        with self.assertRaises(AffinityError) as cm:
            self.client(server).health()
        self.assertEqual((cm.exception.status, cm.exception.code), (200, "invalid_response"))

    def test_connection_refused(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with self.assertRaises(AffinityError) as cm:
            Client(f"http://127.0.0.1:{port}").health()
        self.assertIsNone(cm.exception.status)
        self.assertEqual(cm.exception.code, "unavailable")

    def test_timeout(self) -> None:
        with socket.socket() as listener:  # accepts the connection, never answers
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            port = listener.getsockname()[1]
            with self.assertRaises(AffinityError) as cm:
                Client(f"http://127.0.0.1:{port}", timeout=0.3).health()
        self.assertIsNone(cm.exception.status)
        self.assertEqual(cm.exception.code, "timeout")

    def test_bad_arguments_fail_before_any_request(self) -> None:
        with self.assertRaises(ValueError):
            Client("127.0.0.1:8080")
        c = Client("http://127.0.0.1:9")
        with self.assertRaises(TypeError):
            c.upsert(Entity("i1", "item"))  # type: ignore[arg-type]
        with self.assertRaises(ValueError):
            c.patch("i1")
        with self.assertRaises(TypeError):
            c.entity(42)  # type: ignore[arg-type]

    def test_wait_ready_gives_up_with_the_last_error(self) -> None:
        server = self.serve(lambda h: _json(503, {"error": {"code": "not_ready", "message": "loading state"}}))
        with self.assertRaises(AffinityError) as cm:
            self.client(server).wait_ready(timeout=0.3, interval=0.05)
        self.assertEqual((cm.exception.status, cm.exception.code), (503, "not_ready"))
        self.assertGreater(len(server.requests), 1)


if __name__ == "__main__":
    unittest.main()
