import gc

import pytest

from unspin.runtime import GC_THRESHOLDS, tune_garbage_collector


@pytest.fixture
def restore_thresholds():
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_tuning_raises_the_collector_thresholds(restore_thresholds):
    gc.set_threshold(700, 10, 10)
    tune_garbage_collector()
    assert gc.get_threshold() == GC_THRESHOLDS


def test_tuning_never_lowers_a_threshold_set_higher(restore_thresholds):
    gc.set_threshold(GC_THRESHOLDS[0] * 5, 1, 1000)
    tune_garbage_collector()
    assert gc.get_threshold() == (GC_THRESHOLDS[0] * 5, GC_THRESHOLDS[1], 1000)
