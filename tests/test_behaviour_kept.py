"""A refactoring keeps every number: smoke runs through the CLI against digests of the code before it.

The fixtures (`tests/fixtures/smoke_runs/`) were taken from the code before the loop's redesign;
`python tests/helpers/smoke_runs.py` writes them anew when a change of numbers is meant."""

import json

import pytest
from helpers.env import ENV
from helpers.smoke_runs import FIXTURES, cases, machine, run

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name,overrides", cases(), ids=[name for name, _ in cases()])
def test_a_smoke_run_computes_what_it_computed_before(name, overrides, tmp_path, cache_dir):
    want = json.loads((FIXTURES / f"{name}.json").read_text())
    if want["machine"] != machine():
        pytest.skip(f"fixture taken on {want['machine']}, this is {machine()}: the last digit may differ")
    got = run(tmp_path / "run", cache_dir, want["overrides"], env=ENV)
    assert want["overrides"] == overrides
    assert got["pool"] == want["pool"]  # samples, rewards, kept indices, reference log-probs
    assert got["policy"] == want["policy"]  # the trained weights, bit for bit
    assert got["reference_forwards"] == want["reference_forwards"]
    assert got["history"] == want["history"]
    assert got["final"] == want["final"]
