"""Golden outputs: every case of ``tests/golden/cases.py`` gives exactly the recorded labels and parameters."""

import json

import numpy as np
import pytest
from golden import cases

STORED = np.load(cases.OUTPUTS)
PARAMETERS = json.loads(str(STORED["__parameters__"]))


@pytest.mark.parametrize("name", sorted(cases.all_cases()))
def test_output_equals_the_recorded_one(name):
    labels, parameters = cases.compute(name)
    assert np.array_equal(labels, STORED[name])
    assert parameters == PARAMETERS[name]
