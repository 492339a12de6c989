"""The step-stream contract: steps then a final output; errors re-raise; leaving early cancels the work."""

import threading
import time

import pytest

from pipelines.base import Step, final, stream_steps
from pipelines.checks import check_range, check_seed, check_text


def counting_work(n: int, log: list, delay: float = 0.0):
    def work(emit):
        for i in range(n):
            log.append(i)
            time.sleep(delay)
            if not emit(Step(index=i + 1, total=n, elapsed=0.0)):
                return "stopped"
        return "done"
    return work


def test_stream_yields_steps_then_result():
    log: list = []
    items = list(stream_steps(counting_work(4, log), threading.Lock()))
    assert [s.index for s in items[:-1]] == [1, 2, 3, 4]
    assert items[-1] == "done"


def test_leaving_early_stops_the_work_at_the_next_step():
    log: list = []
    stream = stream_steps(counting_work(100, log, delay=0.01), threading.Lock())
    for step in stream:
        if step.index == 3:
            break
    stream.close()  # the worker stops at its next step
    assert len(log) <= 5, f"work went on after the consumer left: {len(log)} steps"


def test_errors_reach_the_consumer():
    def work(emit):
        emit(Step(1, 2, 0.0))
        raise ValueError("bad thing")

    with pytest.raises(ValueError, match="bad thing"):
        list(stream_steps(work, threading.Lock()))


def test_one_request_at_a_time_per_model():
    lock, active, peak = threading.Lock(), [0], [0]

    def work(emit):
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        active[0] -= 1
        return "ok"

    threads = [threading.Thread(target=lambda: final(stream_steps(work, lock))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 1


@pytest.mark.parametrize("value", ["", "   ", None, 3])
def test_check_text_rejects_empty(value):
    with pytest.raises(ValueError, match="`prompt`"):
        check_text("prompt", value, 10)


def test_check_text_rejects_long_and_strips():
    with pytest.raises(ValueError, match="limit is 5"):
        check_text("prompt", "abcdefgh", 5)
    assert check_text("prompt", "  hi ", 5) == "hi"


@pytest.mark.parametrize("value", [0, 101, 2.5, "3", True, float("nan")])
def test_check_range_names_the_argument_and_range(value):
    with pytest.raises(ValueError, match=r"`num_inference_steps` must be a whole number between 1 and 100"):
        check_range("num_inference_steps", value, 1, 100, integer=True)


def test_check_seed():
    assert check_seed(7) == 7
    with pytest.raises(ValueError, match="`seed`"):
        check_seed(-1)


def test_activity_counts_running_requests_and_idle_time():
    """The warm-up waits on it for a quiet moment before its heavy imports (app.warm_up)."""
    from pipelines.base import ACTIVITY

    started, release = threading.Event(), threading.Event()

    def work(emit):
        started.set()
        release.wait(5)
        return "done"

    stream = stream_steps(work, threading.Lock())
    waiter = threading.Thread(target=lambda: ACTIVITY.wait_idle(0.2))
    result = []
    consumer = threading.Thread(target=lambda: result.append(final(stream)))
    consumer.start()
    assert started.wait(5) and ACTIVITY.idle_for() == 0.0
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive()  # still waiting: a request is running
    release.set()
    consumer.join(5)
    waiter.join(5)
    assert result == ["done"] and not waiter.is_alive() and ACTIVITY.idle_for() >= 0.2
