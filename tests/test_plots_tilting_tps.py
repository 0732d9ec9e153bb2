"""Figures of the tilting and TPS chapters: each draws what it is given, with labelled axes."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rarelib import plots  # noqa: E402


@pytest.fixture
def ax():
    figure, axes = plt.subplots()
    yield axes
    plt.close(figure)


def test_tps_trace_marks_accepted_and_rejected_proposals(ax):
    accepted = np.array([True, False, True, False, False])
    plots.tps_trace(np.arange(5.0), np.array([0.0, 0.0, 2.0, 2.0, 2.0]), accepted, "φ", ax=ax)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["accepted proposal"].get_xdata()) == [1, 3]
    assert list(lines["rejected proposal"].get_xdata()) == [2, 4, 5]
    assert ax.get_xlabel() == "TPS step" and ax.get_ylabel() == "φ"


def test_cumulative_averages_are_running_means_per_segment_with_dropped_segments_shaded(ax):
    phi = np.arange(12.0).reshape(1, 4, 3)  # one chain, 4 draws, 3 biases
    plots.cumulative_averages(phi, np.array([-0.1, -0.2, -0.3]), "φ", dropped=np.array([False, True, False]), ax=ax)
    second_segment = ax.get_lines()[1]
    assert np.allclose(second_segment.get_ydata(), np.cumsum(phi[0, :, 1]) / np.arange(1, 5))
    assert np.allclose(second_segment.get_xdata(), [5, 6, 7, 8])
    assert len(ax.patches) == 1  # one shaded segment


def test_axes_are_labelled_and_scales_follow_the_data(ax):
    plots.effective_sample_fraction(np.array([-1.0, 0.0]), {"weights": np.array([0.1, 1.0])}, ax=ax)
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "bias λ"
    figure, (left, right) = plt.subplots(1, 2)
    plots.pmf_comparison(
        np.arange(3), np.array([0.2, 0.3, 0.5]), {"chain": np.array([0.0, 0.5, 0.5])}, "token", log=False, ax=left
    )
    assert left.get_yscale() == "linear" and len(left.get_lines()[0].get_xdata()) == 2  # the empty atom is left out
    plots.log_partition_curve(np.linspace(-1, 1, 5), np.zeros(5), {"estimate": ([0.0], [0.1], [0.05])}, ax=right)
    assert right.get_ylabel() == "log Z(λ) (nats)"
    plt.close(figure)
