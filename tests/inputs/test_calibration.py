"""The error-bar calibration's rows (`diffpose_viz.inputs.calibration`): the training data's validation split plus
held-out domains, each refused where it is loaded when it names trained people or leaks training rows."""
from __future__ import annotations

import numpy as np
import pytest

from diffpose_viz.errors import InputError, LeakageError
from diffpose_viz.inputs import load_splits
from diffpose_viz.inputs.calibration import calibration_rows, held_out_people
from tiny_runs import make_tiny_dataset, tiny_config


@pytest.fixture(scope="module")
def second_file(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("second") / "data_3d_other.npz", seed=7)


def test_held_out_people_give_all_their_rows_and_training_people_are_refused(tiny_data, second_file):
    assert held_out_people(f"{second_file}:syn_c,syn_t") == (str(second_file), ["syn_c", "syn_t"])
    assert held_out_people(str(second_file)) == (str(second_file), [])
    extra = {"data.extra_train": f"[{{path: '{second_file}', subjects: [syn_a, syn_b]}}]"}
    data = tiny_config(tiny_data, **extra).data  # syn_a, syn_b of the second file are trained on
    rows = calibration_rows(data, 0, 10_000, [f"{second_file}:syn_t"])
    own = load_splits(data, 0)
    assert len(rows.train) == len(own.train) and (rows.domain == 0).sum() == len(own.val)
    held = rows.val.subject.astype(str)[rows.domain == 1]
    assert len(held) and set(held) == {"calib0:syn_t"}
    every = load_splits(tiny_config(second_file, **{"data.train_subjects": "[syn_t]", "data.test_subjects": "[syn_c]",
                                                    "data.validation_fraction": 0.0}).data, 0)
    assert len(held) == len(every.train)  # all of the held-out person's rows, not a 10 % validation slice
    with pytest.raises(InputError, match=r"\['syn_a'\] are training or test people"):
        calibration_rows(data, 0, 10_000, [f"{second_file}:syn_a"])
    with pytest.raises(InputError, match=r"\['syn_t'\] are training or test people"):  # the model's test person
        calibration_rows(data, 0, 10_000, [f"{tiny_data}:syn_t"])


def test_a_held_out_file_is_refused_when_it_is_the_training_data(tiny_data, caplog):
    data = tiny_config(tiny_data).data
    with pytest.raises(LeakageError, match="is the training data file.*--allow-leakage"):
        calibration_rows(data, 0, 10_000, [tiny_data])
    rows = calibration_rows(data, 0, 10_000, [tiny_data], allow_leakage=True)
    assert "allowed by --allow-leakage" in caplog.text
    np.testing.assert_array_equal(rows.val.pose3d[rows.domain == 1], rows.val.pose3d[rows.domain == 0])
    assert rows.specs == (str(tiny_data),)
