"""Heat-map cells and histogram bars: values pass through unchanged, buckets and bars follow the scale."""

from __future__ import annotations

import pytest

from sage.report import heatmap
from sage.report.histogram import counts, layout


@pytest.mark.parametrize(
    ("value", "expected"),
    [(-1.0, 0), (0.0, 0), (1e-9, 1), (0.2, 1), (0.21, 2), (0.5, 3), (1.0, 5), (3.0, 5)],
)
def test_bucket_splits_the_positive_range_in_equal_shares_and_clips_above_the_max(value, expected):
    assert heatmap.bucket(value, 1.0, 6) == expected


def test_a_dead_feature_has_every_token_in_the_inactive_bucket():
    assert heatmap.bucket(0.5, 0.0, 6) == 0


def test_legend_names_every_bucket_in_raw_units_up_to_the_max():
    items = heatmap.legend(2.5, 6, decimals=2)
    assert [it["bucket"] for it in items] == [0, 1, 2, 3, 4, 5]
    assert items[0]["label"].startswith("0 ")
    assert items[1]["label"] == "> 0–0.50"
    assert items[-1]["label"] == "2.00–2.50+"


def test_cells_keep_the_values_mark_the_max_and_never_the_sink():
    tokens = ["<s>", "The", " cat", "\n", " cat"]
    acts = [50.0, 0.0, 0.75, 0.1, 0.75]  # the sink is huge; the two ' cat' tie
    cells = heatmap.cells(tokens, acts, 1.0, sinks=[0], n_buckets=6, decimals=3)
    assert [c.value for c in cells] == acts
    assert [c.shown for c in cells] == ["50.000", "0.000", "0.750", "0.100", "0.750"]
    assert [c.is_max for c in cells] == [False, False, True, False, False]  # earliest of the tie
    assert cells[0].is_sink and cells[0].bucket == 0 and "sink" in cells[0].describe()
    assert cells[3].text == "⏎"
    assert cells[2].describe() == "' cat': 0.750 (max)"


def test_a_context_that_never_fires_has_no_max():
    cells = heatmap.cells(["<s>", "a", "b"], [3.0, 0.0, 0.0], 1.0, sinks=[0])
    assert not any(c.is_max for c in cells)


def test_tokens_and_activations_must_align():
    with pytest.raises(ValueError, match="2 tokens but 3"):
        heatmap.cells(["a", "b"], [0.1, 0.2, 0.3], 1.0)


def test_histogram_counts_positive_values_in_equal_bins_with_the_max_in_the_last():
    assert counts([0.0, -1.0, 0.1, 0.25, 0.26, 0.99, 1.0, 7.0], 4, 1.0) == [2, 1, 0, 3]
    assert sum(counts([0.3] * 10, 5, 1.0)) == 10


def test_histogram_bars_scale_logarithmically_in_their_box():
    hg = layout([0.1] * 99 + [0.9], 2, 1.0, width=200, height=100)
    big, small = hg.bars
    assert (big.count, small.count, hg.total) == (99, 1, 100)
    assert big.height == pytest.approx(100) and big.y == pytest.approx(0)
    assert small.height == pytest.approx(100 * 0.6931 / 4.6052, rel=1e-3)  # log(2) / log(100)
    assert (small.lo, small.hi) == (0.5, 1.0)
    assert layout([], 3, 1.0).bars[0].height == 0
