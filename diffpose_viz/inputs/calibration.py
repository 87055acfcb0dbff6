"""The rows the error-bar calibration is fitted on, loaded and checked in one place. Never test rows.

They are the validation split of the training data (held-out sequences of the training subjects) plus, per
`--calibrate-with` spec, one held-out domain: `PATH` gives the training subjects' validation rows in another file
(e.g. the same takes through held-out views), `PATH:bk,ri013` every row of people no training source contains (a
real shift). Each domain is refused where its rows are loaded: training or test people (InputError), or a file that
is the training data or shares rows with it (`leakage.check_calibration_file`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from diffpose_viz.config import DataConfig
from diffpose_viz.datasets.poses import PoseSet, join_pose_sets, prefixed
from diffpose_viz.errors import InputError
from diffpose_viz.inputs.leakage import check_calibration_file
from diffpose_viz.inputs.splits import Splits, load_splits


@dataclass
class CalibrationRows:
    train: PoseSet  # the training split (the out-of-domain density reads its 2D)
    val: PoseSet  # the training data's validation rows, then each domain's, prefixed 'calib<i>' (thinned each)
    domain: np.ndarray  # (len(val),) 0: a validation row of the training data; i + 1: a row of spec i
    specs: tuple[str, ...]  # the --calibrate-with specs, in order


def calibration_rows(cfg: DataConfig, seed: int, max_rows: int, specs=(), *,
                     allow_leakage: bool = False) -> CalibrationRows:
    """The calibration's rows for a model trained on `cfg` with split seed `seed`: its validation split and each
    domain of `specs`, each thinned to `max_rows`. `allow_leakage` (`--allow-leakage`): a domain that shares rows
    with the training data is used with a warning instead of refused."""
    splits = load_splits(cfg, seed)  # read once: the validation rows and the training 2D
    sets = [splits.val.thin(max_rows)]
    if specs:  # what a domain must not share rows with: the training file's own split (extra sources left out)
        own = splits if not cfg.extra_train else load_splits(replace(cfg, extra_train=[]), seed)
        for i, spec in enumerate(specs):
            sets.append(prefixed(_domain_rows(str(spec), cfg, seed, own, allow_leakage).thin(max_rows), f"calib{i}"))
    domain = np.repeat(np.arange(len(sets), dtype=np.int64), [len(s) for s in sets])
    return CalibrationRows(splits.train, join_pose_sets(sets), domain, tuple(str(s) for s in specs))


def _domain_rows(spec: str, cfg: DataConfig, seed: int, own: Splits, allow_leakage: bool) -> PoseSet:
    path, people = held_out_people(spec)
    trained = {s for src in cfg.extra_train if Path(src.path).resolve() == Path(path).resolve() for s in src.subjects}
    if Path(cfg.path).resolve() == Path(path).resolve():
        trained |= set(cfg.train_subjects) | set(cfg.test_subjects)  # test people never calibrate either
    if set(people) & trained:
        raise InputError(f"--calibrate-with {spec}: {sorted(set(people) & trained)} are training or test people "
                         "of this model; a held-out shift must be people no training source contains")
    if people:  # people never trained on (a held-out real shift): every row of theirs is validation
        other = replace(cfg, path=path, extra_train=[], train_subjects=people, validation_fraction=0.0)
        split = load_splits(other, seed)
        rows = join_pose_sets([split.train, split.val])
    else:
        rows = load_splits(replace(cfg, path=path, extra_train=[]), seed).val
        check_calibration_file(spec, rows, cfg, own, allow=allow_leakage)
    if len(rows) == 0:
        raise InputError(f"--calibrate-with {spec}: no validation rows of {people or list(cfg.train_subjects)}")
    return rows


def held_out_people(spec: str) -> tuple[str, list[str]]:
    """`PATH` -> (PATH, []): the training subjects' validation rows in another file (e.g. new views);
    `PATH:bk,ri013` -> (PATH, [bk, ri013]): all rows of people no training source contains (real shifts)."""
    path, sep, people = spec.rpartition(":")
    if not sep or not path or Path(spec).exists() or "/" in people:
        return spec, []
    return path, [p for p in people.split(",") if p]
