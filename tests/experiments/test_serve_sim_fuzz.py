"""No request can break or freeze serve-sim: fuzzed requests all get a short JSON reply below 500.

A bounded run of the generator in ``benchmarks/serve_fuzz.py`` (whose full run, with
timings, is ``python -m benchmarks.serve_fuzz``), plus the slow-client and huge-prompt cases.
"""

from __future__ import annotations

import json
import socket

from benchmarks.serve_fuzz import CARD, Outcome, fuzz, send, threaded_server
from protocols.messages import Problem

PROBLEMS = [
    Problem(id="g1", benchmark="gsm8k", question="Tom has 3 bags of 4 apples. How many apples?", reference="12",
            answer_format="gsm8k"),
]  # fmt: skip


def test_fuzzed_requests_never_get_a_5xx_or_a_non_json_reply() -> None:
    with threaded_server(PROBLEMS) as (host, port):
        outcome = fuzz(host, port, [p.question for p in PROBLEMS], examples=100, seed=1)
    assert sum(outcome.statuses.values()) == 100
    assert outcome.server_errors == 0 and outcome.non_json == 0, outcome
    assert outcome.longest_error < 1000  # an error never echoes a big field back
    assert any(s == 200 for s in outcome.statuses) and any(400 <= s < 500 for s in outcome.statuses)


def test_a_half_sent_body_is_timed_out_with_a_json_408() -> None:
    with threaded_server(PROBLEMS) as (host, port), socket.create_connection((host, port), timeout=20) as sock:
        head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n"
        sock.sendall(head.encode() + b'{"model": "')
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    status_line, _, rest = reply.partition(b"\r\n")
    assert b" 408 " in status_line
    assert "not received" in json.loads(rest.partition(b"\r\n\r\n")[2])["error"]["message"]


def test_half_sent_headers_are_timed_out_with_a_json_408() -> None:
    with threaded_server(PROBLEMS) as (host, port), socket.create_connection((host, port), timeout=20) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Le")  # ... and nothing more
        reply = b""
        while chunk := sock.recv(4096):  # the server closes after its reply
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and "headers not received" in json.loads(body)["error"]["message"]


def test_a_4mb_prompt_is_refused_with_a_json_400_and_the_server_stays_up() -> None:
    big = json.dumps({"model": CARD, "messages": [{"role": "user", "content": "a " * (2 * 2**20)}]}).encode()
    with threaded_server(PROBLEMS) as (host, port):
        outcome = Outcome()
        send(host, port, "/v1/chat/completions", {"Content-Type": "application/json"}, big, outcome)
        after = Outcome()
        ok = json.dumps({"model": CARD, "messages": [{"role": "user", "content": PROBLEMS[0].question}]}).encode()
        send(host, port, "/v1/chat/completions", {"Content-Type": "application/json"}, ok, after)
    assert outcome.statuses == {400: 1} and outcome.non_json == 0
    assert after.statuses == {200: 1}
