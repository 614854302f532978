"""Where users run the engine: forked workers, thread-count bounds, the engine's own checks at
the edge of 64-bit arithmetic. Each risky case runs in a child interpreter, so a hang, a crash
or an abort fails the test instead of the suite."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import imgfilt

CONV = sys.modules["imgfilt.convolution"]
PACKAGE_PARENT = str(Path(imgfilt.__file__).parent.parent)


def run_child(code, *args, timeout=120, **env):
    """Run ``code`` in a fresh interpreter that imports this imgfilt; return the finished run."""
    environment = {**os.environ, "PYTHONPATH": PACKAGE_PARENT, **env}
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], env=environment,
                          capture_output=True, text=True, timeout=timeout, cwd="/")


FORK_POOL = """
import multiprocessing, sys, numpy as np, imgfilt
imgfilt.set_num_threads(2)
rng = np.random.default_rng(0)
x = rng.random((3, 300, 320), dtype=np.float32)
w = rng.random((4, 3, 5, 5), dtype=np.float32)
expected = imgfilt.conv(x, w, padding="same")      # a multi-threaded call in the parent
assert imgfilt.conv(x, w, padding="same").shape == expected.shape

def job(index):
    return bool(np.array_equal(imgfilt.conv(x, w, padding="same"), expected))

with multiprocessing.get_context("fork").Pool(2) as pool:
    results = pool.map(job, range(200), chunksize=5)
print(len(results), all(results))
# the parent still computes on its threads after the forks
print(np.array_equal(imgfilt.conv(x, w, padding="same"), expected))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_a_fork_pool_after_a_threaded_call_completes():
    done = run_child(FORK_POOL, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["200", "True", "True"]


OS_FORK = """
import os, sys, numpy as np, imgfilt
imgfilt.set_num_threads(2)
x = np.random.default_rng(1).random((1, 400, 400))
w = np.ones((1, 1, 9, 9))
expected = imgfilt.conv(x, w)
pid = os.fork()
if pid == 0:
    same = np.array_equal(imgfilt.conv(x, w), expected)
    os._exit(0 if same and imgfilt.get_num_threads() == 2 else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_os_fork_after_a_threaded_call_finishes_on_its_threads():
    done = run_child(OS_FORK, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["0"]


PAUSE_FAILS = """
import os, numpy as np, imgfilt
conv = __import__("sys").modules["imgfilt.convolution"]
conv._baseline_engine = type("E", (), {"pause_openmp": staticmethod(lambda: -1)})
imgfilt.set_num_threads(2)
x = np.random.default_rng(1).random((1, 400, 400))
w = np.ones((1, 1, 9, 9))
expected = imgfilt.conv(x, w)
pid = os.fork()
if pid == 0:
    same = np.array_equal(imgfilt.conv(x, w), expected)
    os._exit(0 if same and imgfilt.get_num_threads() == 1 else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status), imgfilt.get_num_threads())
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_a_runtime_that_cannot_pause_makes_the_child_single_threaded():
    # The fallback when omp_pause_resource_all is missing or fails: one thread in the child
    # (which never touches the pool the fork broke), the parent's setting unchanged.
    done = run_child(PAUSE_FAILS, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["0", "2"]


def test_thread_counts_are_bounded():
    limit = CONV.MAX_THREADS
    assert 64 <= limit <= 1024
    before = imgfilt.get_num_threads()
    try:
        imgfilt.set_num_threads(limit)
        assert imgfilt.get_num_threads() == limit
        for bad in (limit + 1, 20_000, 33_000, 100_000, 2**63):
            with pytest.raises(ValueError, match=f"at most {limit}"):
                imgfilt.set_num_threads(bad)
    finally:
        imgfilt.set_num_threads(before)
    # The engine itself refuses beyond its own limit, whoever calls it.
    x = np.zeros((1, 1, 1, 4, 4))
    maps = [np.zeros(1, np.intp), np.arange(4, dtype=np.intp), np.arange(4, dtype=np.intp)]
    ring = np.zeros((2000, 1 * (4 + CONV._engine.strip_width())))
    with pytest.raises(ValueError, match="num_threads"):
        CONV._engine.correlate(x, np.ones((1, 1)), (1, 1, 1), np.zeros(1), np.empty_like(x), None,
                               maps[0], maps[1], maps[2], 0, 1, (1, 1, 1), (1, 1, 1), ring,
                               np.full((2000, 1), -1, np.intp), 1, 1500)


MANY_THREADS = """
import numpy as np, imgfilt
imgfilt.set_num_threads(imgfilt.convolution.MAX_THREADS)
x = np.random.default_rng(0).random((3, 512, 512), dtype=np.float32)
y = imgfilt.conv(x, np.ones((3, 1, 5, 5), np.float32), groups=3, padding="same")
print(y.shape)
for n in (20_000, 33_000, 100_000):
    try:
        imgfilt.set_num_threads(n)
    except ValueError as error:
        print("refused")
"""


def test_the_most_threads_allowed_run_and_more_are_refused_in_a_child():
    done = run_child(MANY_THREADS, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[:4] == ["(3, 512, 512)", "refused", "refused", "refused"]


@pytest.mark.parametrize("value", ["999999", "0", "-3", "lots"])
def test_a_bad_thread_environment_variable_warns_and_uses_the_cores(value):
    done = run_child("import imgfilt; print(imgfilt.get_num_threads())",
                     IMGFILT_NUM_THREADS=value)
    assert done.returncode == 0, done.stderr
    assert "IMGFILT_NUM_THREADS" in done.stderr and str(CONV.MAX_THREADS) in done.stderr
    assert 1 <= int(done.stdout) <= os.cpu_count()


CLI_THREADS = """
import sys, numpy as np
from PIL import Image
from imgfilt.cli import main
Image.fromarray(np.zeros((20, 20), np.uint8)).save(sys.argv[1])
sys.exit(main(["apply", "sobel", sys.argv[1], "-o", sys.argv[2]]))
"""


def test_the_command_line_with_a_huge_thread_variable_still_works(tmp_path):
    done = run_child(CLI_THREADS, tmp_path / "in.png", tmp_path / "out.png",
                     IMGFILT_NUM_THREADS="999999")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "out.png").exists()


HUGE = [2**62, 2**63 - 1, 2**63 - 2**20, 3 * 2**61]


def engine_arguments(stride, dilation, engine):
    x = np.zeros((1, 1, 1, 4, 8))
    maps = [np.zeros(1, np.intp), np.arange(4, dtype=np.intp), np.arange(8, dtype=np.intp)]
    ring_rows = 3
    ring = np.zeros((1, ring_rows * (8 + engine.strip_width())))
    tags = np.full((1, ring_rows), -1, np.intp)
    out = np.zeros((1, 1, 1, 2, 2))
    return (x, np.ones((1, 3)), (1, 1, 3), np.zeros(1), out, None, *maps, 0, 1, stride,
            dilation, ring, tags, ring_rows, 1)


@pytest.mark.parametrize("engine", list(CONV._engines.values()), ids=list(CONV._engines))
@pytest.mark.parametrize("big", HUGE)
def test_the_engine_bounds_check_does_not_wrap_around(engine, big):
    # (out - 1) * stride + dilation * (k - 1) wraps around in 64-bit arithmetic for these;
    # the engine must still see that the call reads beyond its buffers.
    for stride, dilation in [((1, big, 1), (1, 1, 1)), ((1, 1, big), (1, 1, 1)),
                             ((1, 1, 1), (1, 1, big)), ((1, 2, 1), (1, 1, big)),
                             ((1, big, big), (1, big, big))]:
        with pytest.raises(ValueError, match="beyond"):
            engine.correlate(*engine_arguments(stride, dilation, engine))


def test_the_engine_bounds_check_wraparound_in_a_child():
    # Had the check wrapped, this would write outside the buffers: run it where a crash is a
    # failed test, not a dead suite.
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import test_workers as t\n"
            "for big in t.HUGE:\n"
            "    for e in t.CONV._engines.values():\n"
            "        try:\n"
            "            e.correlate(*t.engine_arguments((1, 1, 1), (1, 1, big), e))\n"
            "        except ValueError:\n"
            "            print('refused')\n")
    done = run_child(code, Path(__file__).parent)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["refused"] * (len(HUGE) * len(CONV._engines))


def test_the_engine_reports_when_its_threads_arrived():
    x = np.random.default_rng(2).random((1, 1, 1, 64, 300))
    maps = [np.zeros(1, np.intp), np.arange(64, dtype=np.intp), np.arange(300, dtype=np.intp)]
    width = 300 + CONV._engine.strip_width()
    ring = np.zeros((2, 3 * width))
    tags = np.full((2, 3), -1, np.intp)
    out = np.empty((1, 1, 1, 62, 298))
    timing = np.full(2, -1.0)
    CONV._engine.correlate(x, np.ones((1, 9)), (1, 3, 3), np.zeros(1), out, None, *maps, 0, 1,
                           (1, 1, 1), (1, 1, 1), ring, tags, 3, 2, timing)
    assert 0 <= timing[0] <= timing[1] < 10
    np.testing.assert_allclose(out[0, 0, 0], imgfilt.conv(x[0, 0], np.ones((1, 1, 3, 3)))[0],
                               rtol=1e-12)
    with pytest.raises(ValueError, match="timing"):
        CONV._engine.correlate(x, np.ones((1, 9)), (1, 3, 3), np.zeros(1), out, None, *maps, 0,
                               1, (1, 1, 1), (1, 1, 1), ring, tags, 3, 2, np.zeros(1))


def test_late_threads_send_the_next_calls_to_one_thread():
    busy = CONV._BusyMachine()
    busy.observe(lag=1e-5, total=1e-3)            # on time
    assert busy.single_calls_left == 0
    busy.observe(lag=5e-3, total=6e-3)            # a worker that came 5 ms late
    assert busy.single_calls_left == 4
    busy.observe(lag=5e-3, total=6e-3)            # again: back off longer
    assert busy.single_calls_left == 8
    for _ in range(10):
        busy.observe(lag=5e-3, total=6e-3)
    assert busy.single_calls_left == 256          # bounded
    busy.observe(lag=1e-4, total=6e-3)            # the probe came on time: threads again
    assert busy.backoff == 0


def test_backing_off_to_one_thread_gives_the_same_bits(monkeypatch):
    busy = CONV._BusyMachine()
    monkeypatch.setattr(CONV, "_busy", busy)
    rng = np.random.default_rng(3)
    x = rng.random((3, 700, 800), dtype=np.float32)
    w = rng.random((2, 3, 5, 5), dtype=np.float32)
    before = imgfilt.get_num_threads()
    imgfilt.set_num_threads(2)
    try:
        threaded = imgfilt.conv(x, w, padding="same")
        busy.single_calls_left = 1
        single = imgfilt.conv(x, w, padding="same")
        assert busy.single_calls_left == 0
    finally:
        imgfilt.set_num_threads(before)
    np.testing.assert_array_equal(threaded, single)


IDLE_CPU = """
import resource, sys, time, numpy as np, imgfilt
imgfilt.set_num_threads(2)
image = np.random.default_rng(0).random((1080, 1920), dtype=np.float32)
kernel = np.random.default_rng(1).random((5, 5), dtype=np.float32)
imgfilt.apply(image, kernel)          # 52 M multiply-adds: both threads run
before = resource.getrusage(resource.RUSAGE_SELF)
time.sleep(0.5)                       # nothing of ours runs now
after = resource.getrusage(resource.RUSAGE_SELF)
idle = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
import os
print(os.environ.get("OMP_WAIT_POLICY", "-"), os.environ.get("GOMP_SPINCOUNT", "-"),
      round(idle * 1000, 1))
"""


def _without_wait_policy():
    return {name: value for name, value in os.environ.items()
            if name not in imgfilt.engine.WAIT_POLICY_VARIABLES}


def _idle_child(**env):
    environment = {**_without_wait_policy(), "PYTHONPATH": PACKAGE_PARENT, **env}
    done = subprocess.run([sys.executable, "-c", IDLE_CPU], env=environment, capture_output=True,
                          text=True, timeout=120, cwd="/")
    assert done.returncode == 0, done.stderr
    policy, spin_count, idle_ms = done.stdout.split()
    return policy, spin_count, float(idle_ms)


@pytest.mark.skipif(not imgfilt.engine.load_engines()["baseline"].has_openmp(),
                    reason="a build without OpenMP has no idle threads")
def test_idle_openmp_threads_sleep_instead_of_spinning():
    # After a call the worker thread must not burn a core the caller's next step needs.
    policy, spin_count, idle_ms = _idle_child()
    assert (policy, spin_count) == ("PASSIVE", "-")
    assert idle_ms < 25, f"{idle_ms} ms of CPU while idle for 500 ms"
    # The check can fail: a user who asks for spinning gets it (and their setting is kept).
    policy, spin_count, idle_ms = _idle_child(OMP_WAIT_POLICY="active")
    assert (policy, spin_count) == ("active", "-")
    assert idle_ms > 50, f"only {idle_ms} ms of CPU spinning for 500 ms"
