"""`field_checks`: what counts as a number, and the error naming class and field."""

import math
from dataclasses import dataclass

import numpy as np
import pytest

from plusultra_core.errors import ConfigError
from plusultra_core.field_checks import is_number, require


@pytest.mark.parametrize("value", [0, -3, 1.5, np.float64(2.0)])
def test_finite_ints_and_floats_are_numbers(value):
    assert is_number(value)


@pytest.mark.parametrize("value", [True, False, math.inf, -math.inf, math.nan, "1", None])
def test_bools_non_finite_and_non_numbers_are_not(value):
    assert not is_number(value)


def test_require_names_class_field_and_value():
    @dataclass
    class Knobs:
        rate: float = -1.0

    require(Knobs(rate=2.0), "rate", lambda v: v > 0, "> 0")
    with pytest.raises(ConfigError, match=r"^Knobs\.rate must be > 0, got -1\.0$"):
        require(Knobs(), "rate", lambda v: v > 0, "> 0")
