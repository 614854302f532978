"""The boundary fuzzer (issue 19): ``out=`` overlapping an input, corrupt files, integer arguments
up to 2**64 and beyond, and empty inputs.

The cases are in ``tests/boundary_cases.py``; each category runs in child interpreters (under an
address-space limit, with a watchdog per case), so a crash or a hang is a failure that names its
case instead of taking the test run down. A child that dies is restarted after the case that
killed it, so one run reports every such case. The number of cases run per outcome is printed
(``pytest -s``) and written to ``$IMGFILT_FUZZ_REPORT`` when that is set.
"""
import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import imgfilt
from imgfilt import FilterBank, filters, kernels

PACKAGE_PARENT = str(Path(imgfilt.__file__).parent.parent)
TESTS_DIR = str(Path(__file__).parent)
#: The CI seed (any other reruns every category on other cases).
SEED = int(os.environ.get("IMGFILT_FUZZ_SEED", "1"))


def run_category(category, workdir, seed=SEED):
    """Run every case of ``category`` in child interpreters; return (results, failures)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([PACKAGE_PARENT, TESTS_DIR]),
           "IMGFILT_NUM_THREADS": "1"}
    results, failures = [], []
    start, total = 0, None
    while total is None or start < total:
        child = subprocess.run(
            [sys.executable, os.path.join(TESTS_DIR, "boundary_cases.py"), category, str(seed),
             str(start), str(1 << 30), str(workdir)],
            env=env, cwd=workdir, capture_output=True, text=True, check=False, timeout=900)
        begun = None
        for line in child.stdout.splitlines():
            record = json.loads(line)
            if "total" in record:
                total = record["total"]
            elif "begin" in record:
                begun = record
            else:
                results.append(record)
                begun = None
                if not record["ok"]:
                    failures.append(f"{record['what']}: {record['outcome']}")
        if child.returncode == 0 and begun is None:
            break
        if begun is None:  # died before or between cases
            raise AssertionError(f"the {category} child failed outside any case "
                                 f"(exit {child.returncode}): {child.stderr[-3000:]}")
        how = "hung" if "Timeout" in child.stderr else f"crashed (exit {child.returncode})"
        failures.append(f"{begun['what']}: {how}: {child.stderr[-1500:]}")
        results.append({"case": begun["begin"], "outcome": how, "ok": False})
        start = begun["begin"] + 1
    return results, failures


def summarise(category, results):
    """Counts per outcome, with the details after a colon dropped: printed and reported."""
    counts = collections.Counter()
    for record in results:
        outcome = record["outcome"]
        counts[outcome.split(": ")[-1] if ": " in outcome and not outcome.startswith(
            ("wrong", "undocumented")) else outcome] += 1
    summary = {"category": category, "cases": len(results), "outcomes": dict(counts)}
    print(json.dumps(summary))
    report = os.environ.get("IMGFILT_FUZZ_REPORT")
    if report:
        with open(report, "a") as handle:
            handle.write(json.dumps(summary) + "\n")
    return counts


@pytest.mark.parametrize("category, least", [("overlap", 400), ("files", 3000),
                                             ("integers", 800)])
def test_fuzzed_boundaries_give_the_oracle_or_a_documented_error(tmp_path, category, least):
    results, failures = run_category(category, tmp_path)
    counts = summarise(category, results)
    assert not failures, f"{len(failures)} of {len(results)} cases failed:\n" + "\n".join(
        failures[:20])
    assert len(results) >= least, counts
    if category == "overlap":
        # Every input is overlapped, in memory and through a file.
        overlapped = " ".join(r["outcome"] for r in results)
        for name in ("x", "weight", "bias"):
            assert overlapped.count(name) >= 50, counts
    if category == "integers":
        for outcome in ("oracle", "ValueError", "TypeError", "exit 2"):
            assert any(outcome in r["outcome"] for r in results), counts


# ---------------------------------------------------------------------------------------------
# Deterministic checks the fuzzer's categories rest on


def test_out_sharing_a_file_with_an_input_through_another_mapping_gets_the_oracle(tmp_path):
    path = tmp_path / "shared.dat"
    rng = np.random.default_rng(0)
    first = np.memmap(path, dtype=np.float32, mode="w+", shape=(200,))
    first[:] = rng.normal(size=200)
    x = first[:64].reshape(1, 8, 8)
    second = np.memmap(path, dtype=np.float32, mode="r+", shape=(200,))
    out = second[4:68].reshape(1, 8, 8)
    weight = np.ones((1, 1, 3, 3), np.float32)
    expected = imgfilt.conv(np.array(x), weight, padding=1)
    assert imgfilt.conv(x, weight, padding=1, out=out) is out
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    # A disjoint region of the file is written in place, and the input stays untouched.
    before = np.array(x)  # the first call overwrote most of x (out overlapped it)
    expected = imgfilt.conv(before, weight, padding=1)
    elsewhere = second[100:164].reshape(1, 8, 8)
    imgfilt.conv(x, weight, padding=1, out=elsewhere)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_allclose(elsewhere, expected, rtol=1e-6)


@pytest.mark.parametrize("target", ["weight", "bias"])
def test_out_overlapping_the_weight_or_the_bias_gets_the_oracle(target):
    buffer = np.random.default_rng(1).normal(size=400).astype(np.float32)
    x, weight, bias = buffer[:128].reshape(2, 8, 8), buffer[128:146].reshape(2, 1, 3, 3), \
        buffer[150:152]
    expected = imgfilt.conv(x.copy(), weight.copy(), bias.copy(), padding=1, groups=2)
    start = 120 if target == "weight" else 140
    out = buffer[start:start + 128].reshape(2, 8, 8)
    for method in ("direct", "fft"):
        buffer_copy = buffer.copy()
        result = imgfilt.conv(x, weight, bias, padding=1, groups=2, method=method, out=out)
        np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-5)
        buffer[:] = buffer_copy


@pytest.mark.parametrize("value", [2**63, 2**64, 2**64 + 1, np.uint64(2**64 - 1), 2**100])
@pytest.mark.parametrize("name", ["stride", "dilation", "padding"])
def test_integers_beyond_the_engines_index_name_the_argument_and_the_limit(name, value):
    x = np.zeros((1, 6, 6), np.float32)
    calls = [lambda: imgfilt.conv(x, np.ones((1, 1, 3, 3)), **{name: value}),
             lambda: FilterBank([filters.box(3)]).apply(x[0], **{name: value})]
    if name != "padding":
        calls.append(lambda: imgfilt.apply(x[0], "box", **{name: value}))
    for call in calls:
        with pytest.raises(ValueError, match=f"{name} must be <= 9223372036854775807"):
            call()


@pytest.mark.parametrize("call, words", [
    (lambda: imgfilt.bank.montage(np.zeros((0, 4, 4)), cols=3), ["maps is empty", "(0, 4, 4)"]),
    (lambda: imgfilt.bank.montage(np.zeros((2, 0, 4))), ["maps is empty"]),
    (lambda: FilterBank([filters.box(3)]).montage(np.zeros((0, 4, 4))), ["maps is empty"]),
    (lambda: imgfilt.io.write_volume("never-written.tif", np.zeros((0, 4, 4), np.uint8)),
     ["volume is empty"]),
    (lambda: kernels.outer([]), ["factors"]),
    (lambda: kernels.outer([np.ones(3), np.zeros(0)]), ["factors", "(0,)"]),
    (lambda: imgfilt.padding.index_map(0, 1, 1, "circular"), ["length 0"]),
    (lambda: imgfilt.padding.output_length(3, 3, 0, 1), ["stride"]),
    (lambda: imgfilt.convolution.magnitude(np.zeros((0, 3), np.float32), 0), ["at least one"]),
    (lambda: imgfilt.correlate_channels_last(np.zeros((3, 3, 0)), np.ones((1, 1, 1, 1))),
     ["no channels"]),
    (lambda: imgfilt.conv(np.zeros((1, 0, 3)), np.ones((1, 1, 1, 1))), ["x has an empty axis"]),
    (lambda: imgfilt.apply(np.zeros((0, 4)), "box"), ["empty axis"]),
    (lambda: FilterBank(np.zeros((0, 1, 3, 3))), ["empty axis"]),
    (lambda: imgfilt.Sequential(), ["at least one"]),
    (lambda: imgfilt.learn.fit(np.zeros((1, 0, 4)), np.zeros((1, 0, 4)), 3), ["empty axis"]),
])
def test_empty_inputs_are_refused_by_name(call, words):
    with pytest.raises(ValueError) as caught:
        call()
    for word in words:
        assert word in str(caught.value), str(caught.value)
    assert not os.path.exists("never-written.tif")
