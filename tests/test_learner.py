"""The one learner (recognizer/learner.py) with real, short timings: debounce, one at a time, status, stop.

The profile is a stand-in that takes a set time to adapt and counts how many adaptations run at once; what an
adaptation decides is tested with the real profile in test_profile.py, and through the app and the page in
test_gui_*.py and test_web_profile.py.
"""

from __future__ import annotations

import threading
import time

import pytest

from recognizer.errors import RecognizerError
from recognizer.learner import ADAPTING, IDLE, STOPPED, WAITING, Learner


class TimedProfile:
    """adapt() takes `seconds`; records each adaptation (model, forced, when it started) and the most at once."""

    def __init__(self, seconds: float = 0.0, fail: Exception | None = None, stale: bool = True):
        self.seconds, self.fail, self.is_stale = seconds, fail, stale
        self.runs: list[tuple[str, bool, float]] = []
        self.running = self.most_at_once = 0
        self.deleted: list[int] = []
        self.resets = 0
        self._lock = threading.Lock()

    def _run(self, model: str, forced: bool) -> dict:
        with self._lock:
            self.runs.append((model, forced, time.monotonic()))
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            time.sleep(self.seconds)
            if self.fail is not None:
                raise self.fail
            return {model: f"decided {model}"}
        finally:
            with self._lock:
                self.running -= 1

    def adapt(self, model):
        return self._run(model, True)

    def adapt_if_stale(self, model, on_start=None):
        if not self.is_stale:
            return {}
        on_start(model)
        return self._run(model, False)

    def delete(self, cid):
        self.deleted.append((cid, self.running))
        return True

    def reset(self, keep_export=True):
        self.resets += 1
        return None


class Told:
    """on_change's record: every status the learner told, in order."""

    def __init__(self):
        self.statuses = []

    def __call__(self, status):
        self.statuses.append(status)

    @property
    def states(self):
        return [s.state for s in self.statuses]


def wait_for(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


def test_five_quick_requests_cause_one_adaptation_after_the_pause():
    profile, told = TimedProfile(), Told()
    learner = Learner(profile, delay=0.3, on_change=told)
    for _ in range(5):
        learner.request("cnn")
        last = time.monotonic()
        time.sleep(0.02)  # a writer correcting digit after digit: each request within the delay of the last
    assert learner.busy and learner.status.state == WAITING
    assert learner.wait_idle(5)
    assert [(m, f) for m, f, _ in profile.runs] == [("cnn", False)]
    assert profile.runs[0][2] - last >= 0.3 - 0.01  # it waited for the pause after the last request
    assert told.states == [ADAPTING, IDLE] and told.statuses[0].model == "cnn"
    assert learner.status.last.decisions == {"cnn": "decided cnn"} and learner.status.last.error is None
    learner.stop(5)


def test_a_request_while_one_runs_is_run_once_after_it_never_beside_it():
    profile = TimedProfile(seconds=0.3)
    learner = Learner(profile, delay=0.0)
    learner.request("cnn")
    wait_for(lambda: learner.status.state == ADAPTING)
    for _ in range(3):  # three more corrections while it adapts
        learner.request("cnn")
    learner.request("ensemble", force=True)
    assert learner.wait_idle(5)
    assert [(m, f) for m, f, _ in profile.runs] == [("cnn", False), ("cnn", False), ("ensemble", True)]
    assert profile.most_at_once == 1
    assert profile.runs[1][2] >= profile.runs[0][2] + 0.3  # after the first ended
    learner.stop(5)


def test_stop_drops_what_waits_joins_the_thread_and_ignores_later_requests():
    profile = TimedProfile(seconds=0.2)
    learner = Learner(profile, delay=0.0)
    learner.request("cnn")
    wait_for(lambda: learner.status.state == ADAPTING)
    learner.request("cnn", delay=10)  # waiting: dropped by stop
    thread = learner._thread
    t0 = time.monotonic()
    learner.stop(5)
    assert not thread.is_alive() and time.monotonic() - t0 < 1.0  # joined once the running one ended
    assert learner.status.state == STOPPED and not learner.busy
    learner.request("cnn", delay=0)
    time.sleep(0.1)
    assert len(profile.runs) == 1


@pytest.mark.parametrize("fault, said", [(ValueError("boom"), "ValueError: boom"),
                                         (RecognizerError("the profile is read-only"), "the profile is read-only")])
def test_a_failing_adaptation_is_a_status_not_an_exception(fault, said):
    profile, told = TimedProfile(fail=fault), Told()
    learner = Learner(profile, delay=0.0, on_change=told)
    learner.request("cnn")
    assert learner.wait_idle(5)
    status = learner.status
    assert status.state == IDLE and status.last.error == said and status.last.decisions == {}
    assert told.statuses[-1].last.error == said
    profile.fail = None  # the learner lives on: the next request adapts
    learner.request("cnn")
    assert learner.wait_idle(5)
    assert learner.status.last.error is None and len(profile.runs) == 2
    learner.stop(5)


def test_nothing_unseen_is_not_told_as_adapting():
    profile, told = TimedProfile(stale=False), Told()
    learner = Learner(profile, delay=0.0, on_change=told)
    learner.request("cnn")
    assert learner.wait_idle(5)
    assert told.states == [IDLE] and told.statuses[0].last.decisions == {} and profile.runs == []
    learner.stop(5)


def test_removing_waits_for_the_running_adaptation_and_reset_drops_the_waiting_ones():
    profile = TimedProfile(seconds=0.2)
    learner = Learner(profile, delay=0.0)
    learner.request("cnn")
    wait_for(lambda: learner.status.state == ADAPTING)
    assert learner.delete(7, "cnn")
    assert profile.deleted == [(7, 0)]  # not while the adaptation ran
    assert learner.wait_idle(5)
    assert [(m, f) for m, f, _ in profile.runs] == [("cnn", False), ("cnn", True)]  # again, without it

    learner.request("cnn", delay=10)
    assert learner.busy
    learner.reset()
    assert profile.resets == 1 and not learner.busy and learner.wait_idle(0.1)
    time.sleep(0.05)
    assert len(profile.runs) == 2
    learner.stop(5)
