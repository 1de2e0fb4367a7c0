"""Each use of another library's internals (pytest_tee/compat.py) against the installed library: these fail,
naming the library, when a release changes what pytest-tee relies on."""

from __future__ import annotations

import pytest

from pytest_tee import compat


def test_pytest_benchmark_keeps_its_round_times_in_stats_stats_data(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pytest_tee.compat import keep_benchmark_rounds

        def test_rounds(benchmark):
            benchmark.pedantic(lambda: None, rounds=5)
            keep_benchmark_rounds(benchmark, 2)
            assert len(benchmark.stats.stats.data) == 2
            assert benchmark.stats.stats.rounds == 2  # the statistics pytest-benchmark saves follow the list
        """
    )
    pytester.runpytest_inprocess("-p", "no:tee").assert_outcomes(passed=1)


def test_a_changed_pytest_benchmark_is_named() -> None:
    with pytest.raises(compat.LibraryChanged, match=r"pytest-benchmark .* changed: benchmark\.stats\.stats\.data"):
        compat.keep_benchmark_rounds(object(), 2)


def test_torch_marks_non_persistent_buffers() -> None:
    import torch

    module = torch.nn.Module()
    module.register_buffer("kept", torch.zeros(1))
    module.register_buffer("recomputed", torch.zeros(1), persistent=False)
    assert compat.non_persistent_buffer_names(module) == {"recomputed"}
    assert set(module.state_dict()) == {"kept"}  # what "non-persistent" means, by torch's public API
    with pytest.raises(compat.LibraryChanged, match=r"torch .* changed"):
        compat.non_persistent_buffer_names(object())


def test_accelerate_resolves_device_maps_by_longest_module_prefix() -> None:
    device_map = {"model.embed": 0, "model.layers.0": 0, "model.layers.1": "cpu", "lm_head": "cpu"}
    assert compat.device_in_map("model.layers.1.mlp.weight", device_map) == "cpu"
    assert compat.device_in_map("model.layers.0", device_map) == 0
    assert compat.device_in_map("anything.at.all", {"": "cpu"}) == "cpu"
    with pytest.raises(ValueError, match="does not contain"):
        compat.device_in_map("model.norm.weight", device_map)
