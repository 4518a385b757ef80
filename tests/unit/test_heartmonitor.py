"""Heartbeat bookkeeping: beats, misses, bad and unknown pongs. No clock, no sockets."""

from __future__ import annotations

import pytest

from taskyard.controller.heartmonitor import HeartMonitorState


def answer(hearts: HeartMonitorState, ping: bytes, *idents: bytes) -> None:
    for ident in idents:
        assert hearts.pong(ident, ping) == "beat"


@pytest.mark.parametrize("max_misses", [1, 2, 3, 5])
def test_failed_after_exactly_max_misses_unanswered_beats(max_misses: int) -> None:
    hearts = HeartMonitorState(max_misses=max_misses)
    hearts.add(b"alive")
    hearts.add(b"dying")
    ping, failed = hearts.tick()
    assert failed == []
    answer(hearts, ping, b"alive", b"dying")
    # from now on "dying" never answers
    for missed in range(max_misses):
        ping, failed = hearts.tick()
        assert failed == [], f"declared dead after only {missed} missed beats"
        answer(hearts, ping, b"alive")
    ping, failed = hearts.tick()
    assert failed == [b"dying"]
    assert b"dying" not in hearts.hearts
    assert b"alive" in hearts.hearts
    # reported once only
    answer(hearts, ping, b"alive")
    assert hearts.tick()[1] == []


def test_never_answering_heart_fails_after_max_misses_pings() -> None:
    hearts = HeartMonitorState(max_misses=3)
    hearts.add(b"e")
    results = [hearts.tick()[1] for _ in range(4)]
    assert results == [[], [], [], [b"e"]]


def test_ping_payload_counts_up() -> None:
    hearts = HeartMonitorState()
    assert [hearts.tick()[0] for _ in range(3)] == [b"1", b"2", b"3"]
    assert hearts.beat == 3


def test_late_pongs_count_if_handed_over_before_tick() -> None:
    hearts = HeartMonitorState(max_misses=2)
    hearts.add(b"slow")
    first, _ = hearts.tick()
    second, _ = hearts.tick()
    # both echoes arrive late, after the next ping went out; drained before the tick
    assert hearts.pong(b"slow", first) == "beat"
    assert hearts.pong(b"slow", second) == "beat"
    assert hearts.hearts[b"slow"] == 2
    assert hearts.tick()[1] == []
    assert hearts.tick()[1] == []
    assert hearts.tick()[1] == [b"slow"]


def test_an_older_pong_after_a_newer_one_does_not_go_back() -> None:
    hearts = HeartMonitorState(max_misses=2)
    hearts.add(b"e")
    first, _ = hearts.tick()
    second, _ = hearts.tick()
    hearts.pong(b"e", second)
    hearts.pong(b"e", first)
    assert hearts.hearts[b"e"] == 2


def test_answer_to_an_old_beat_does_not_save_a_dead_heart() -> None:
    hearts = HeartMonitorState(max_misses=3)
    hearts.add(b"e")
    first, _ = hearts.tick()
    assert hearts.tick()[1] == []
    assert hearts.tick()[1] == []  # beat 3 is out, beats 1..3 unanswered so far
    assert hearts.pong(b"e", first) == "beat"  # very late: proves it was alive at beat 1 only
    assert hearts.tick()[1] == []
    assert hearts.tick()[1] == [b"e"]


@pytest.mark.parametrize(
    "payload",
    [b"", b"abc", b"1.5", b"-1", b"99", b"\xff\xfe", None, b"9" * 5000, b"0x1"],
    ids=["empty", "text", "float", "negative", "future", "binary", "none", "huge", "hex"],
)
def test_bad_payloads_are_counted_and_change_nothing(payload: bytes | None) -> None:
    hearts = HeartMonitorState(max_misses=1)
    hearts.add(b"e")
    hearts.tick()
    assert hearts.pong(b"e", payload) == "bad"  # type: ignore[arg-type]
    assert hearts.pong(b"stranger", payload) == "bad"  # type: ignore[arg-type]
    assert hearts.bad_pongs == 2
    assert hearts.hearts == {b"e": 0}
    assert hearts.tick()[1] == [b"e"]


def test_unknown_heart() -> None:
    hearts = HeartMonitorState()
    ping, _ = hearts.tick()
    assert hearts.pong(b"stranger", ping) == "unknown"
    assert hearts.hearts == {}
    assert hearts.bad_pongs == 0


def test_added_heart_counts_as_answering_the_current_beat() -> None:
    hearts = HeartMonitorState(max_misses=2)
    for _ in range(10):
        hearts.tick()
    hearts.add(b"new")
    assert hearts.hearts[b"new"] == 10
    assert hearts.tick()[1] == []
    assert hearts.tick()[1] == []
    assert hearts.tick()[1] == [b"new"]


def test_discarded_heart_is_unknown_and_never_reported() -> None:
    hearts = HeartMonitorState(max_misses=1)
    hearts.add(b"e")
    hearts.discard(b"e")
    hearts.discard(b"never-added")
    ping, failed = hearts.tick()
    assert failed == []
    assert hearts.pong(b"e", ping) == "unknown"
    assert hearts.tick()[1] == []


def test_many_hearts_only_the_silent_ones_fail() -> None:
    hearts = HeartMonitorState(max_misses=3)
    idents = [b"e%d" % n for n in range(50)]
    for ident in idents:
        hearts.add(ident)
    silent = set(idents[::7])
    for _ in range(4):
        ping, failed = hearts.tick()
        answer(hearts, ping, *(i for i in idents if i not in silent))
    assert set(failed) == silent
    assert set(hearts.hearts) == set(idents) - silent
