"""HDM05 and CMU motion capture as ASF/AMC -> `data_3d_<name>.npz` for `data.extra_train`.

    diffpose-viz data hdm05   --from ../shared/data/mocap-extra/hdm05.tar.xz   [--out-dir data/cache/hdm05] [--force]
    diffpose-viz data cmu_asf --from ../shared/data/mocap-extra/cmu.tar.xz     [--out-dir data/cache/cmu_asf]

`--from` is a folder (a clone), one archive (.tar.xz, read without extracting) or one file; nothing is
downloaded. Both sources use the Vicon 31-bone skeleton of the CMU database (`rigs.CMU_ASF`). Rules, each
refusal naming the file and what was expected:
- the person comes from the file name: HDM05 `HDM_<actor>_<take>_<fps>.amc` (actor `tr` is reserved for
  independent evaluation and never converted); CMU `SS_TT.amc`, or a take named by its content in the public
  copies (`lambada.amc`, ...; `CMU_NAMED_TAKES`), whose subject was identified from its skeleton. CMU subjects
  01-10 are reserved (that includes the `walk` = 07 and `moderndance` = 05 takes of the same copies); a take
  whose person cannot be told is not converted;
- a take's skeleton is the ASF beside it whose name starts its name (`HDM_bd.asf` for `HDM_bd_*.amc`,
  `charleston.asf` for `charleston1.amc`), else `../../asf/<folder>.asf` (the motion-out layout), else the only
  ASF in its folder;
- rig: the ASF has the CMU_ASF bones; units: the leg (femur + tibia) in metres from `:units length` must be a
  human leg; frame rate: 120 fps (CMU and HDM05 record at 120; HDM05 names it, `_120.amc`; an AMC may say
  `:samples-per-second`); 60 and 30 fps are also accepted. Everything is resampled to 30 fps.
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import numpy as np

from ..mocap import asf_amc, rigs
from .conversion import Conversion, check_fps, check_leg_metres, median_leg, refuse_overwrite
from .mocap_files import MocapFile, MocapSource
from diffpose_viz.errors import DataError

ACCEPTED_FPS = (120.0, 60.0, 30.0)
RECORDED_FPS = 120.0

HDM05_RESERVED_ACTORS = frozenset({"tr"})
HDM05_NAME = re.compile(r"^HDM_([a-z]{2})_(.+?)(?:_(\d+))?$", re.IGNORECASE)
HDM05_LICENCE = ("HDM05 (Mueller, Roeder, Clausen, Eberhardt, Krueger, Weber, 'Documentation Mocap Database HDM05', "
                 "2007; via zhangchi8620/JointLearning-HDM05): CC BY-SA 3.0, attribution and share-alike on derived "
                 "data")
CMU_RESERVED_SUBJECTS = frozenset(range(1, 11))
CMU_NAME = re.compile(r"^(\d{1,3})_(\d{1,3})$")
#: Takes the public copies name by content (gsimchoni/mocap, encadyma/motion-out) -> CMU subject. Identified by the
#: bone lengths, which match ../shared/data/cmu-skeletons to 0.05 mm (docs/AUGMENTATION.md): 93 = 103 and
#: 63 = 64 are one person each. `walk` and `moderndance` are CMU 07 and 05: reserved.
CMU_NAMED_TAKES = {"lambada": 55, "charleston": 93, "zombie": 104, "backflip": 87, "golf": 63,
                   "walk": 7, "moderndance": 5}
CMU_LICENCE = ("CMU Graphics Lab Motion Capture Database, http://mocap.cs.cmu.edu/: free for use in research and "
               "commercial projects; acknowledge 'The data used in this project was obtained from mocap.cs.cmu.edu. "
               "The database was created with funding from NSF EIA-0196217.'; do not resell the data")


def amc_fps(text: str) -> float | None:
    """The frame rate an AMC header states (`:samples-per-second N`), if any."""
    m = re.search(r"^:(?:samples-per-second|frame-rate)\s+([\d.]+)", text[:4000], re.IGNORECASE | re.MULTILINE)
    return float(m.group(1)) if m else None


def check_rig(skel: asf_amc.ASFSkeleton, where: str) -> None:
    missing = sorted(rigs.CMU_ASF.required_names - {"root", *skel.bones})
    if missing:
        raise DataError("not the Vicon/CMU ASF rig", path=where, key=":bonedata",
                        expected=f"the bones {sorted(rigs.CMU_ASF.required_names - {'root'})}",
                        found=f"missing {missing}")


def check_skeleton_units(skel: asf_amc.ASFSkeleton, where: str) -> None:
    leg = np.mean([skel.bones[f"{s}femur"].length + skel.bones[f"{s}tibia"].length for s in "lr"])
    check_leg_metres(leg * skel.metres_per_unit, where, f"':units length {skel.length_scale:g}' "
                     f"(1 unit = 1/{skel.length_scale:g} inch)")


def complete_frames(text: str) -> tuple[str, bool]:
    """The AMC text without an incomplete last frame (a copy cut mid-frame, like motion-out's golf_01.amc), and
    whether one was dropped."""
    lines = text.rstrip().splitlines()
    marks = [i for i, line in enumerate(lines) if line.strip().isdigit()]
    if len(marks) < 2:
        return text, False
    full, last = marks[-1] - marks[-2], len(lines) - marks[-1]
    return ("\n".join(lines[:marks[-1]]) + "\n", True) if last < full else (text, False)


def take_world(skel: asf_amc.ASFSkeleton, amc_text: str, where: str) -> np.ndarray:
    """(T, 17, 3) H36M-17 metres, Z up, at the file's frame rate."""
    motion = asf_amc.parse_amc(amc_text, skel, source=where)
    pos, names = asf_amc.forward_kinematics(skel, motion)
    p17 = rigs.to_h36m17(pos, names, rigs.CMU_ASF)
    check_leg_metres(median_leg(p17) * skel.metres_per_unit, where, "the skeleton's units")
    return rigs.to_world_metres(p17, metres_per_unit=skel.metres_per_unit, up_axis=rigs.CMU_ASF.up_axis)


def skeleton_of(amc: PurePosixPath, asfs: dict[str, MocapFile]) -> str | None:
    """The name of `amc`'s ASF among `asfs` (module docstring rule), or None."""
    here = [n for n in asfs if PurePosixPath(n).parent == amc.parent]
    prefixed = [n for n in here if amc.stem.lower().startswith(PurePosixPath(n).stem.lower())]
    if prefixed:
        return max(prefixed, key=len)
    beside = (amc.parent.parent.parent / "asf" / f"{amc.parent.name}.asf").as_posix()
    if beside in asfs:
        return beside
    return here[0] if len(here) == 1 else None


def hdm05_person(stem: str) -> tuple[str | None, str, str]:
    """(actor, take, why-not) from `HDM_<actor>_<take>_<fps>`; actor None with the reason when refused."""
    m = HDM05_NAME.match(stem)
    if not m:
        return None, stem, "cannot tell the HDM05 actor from the file name (expected HDM_<actor>_<take>_120.amc)"
    actor = m.group(1).lower()
    if actor in HDM05_RESERVED_ACTORS:
        return None, stem, f"HDM05 actor '{actor}' is reserved for independent evaluation: not converted"
    return actor, m.group(2), ""


def cmu_person(stem: str) -> tuple[str | None, str, str]:
    """(cmuSSS, take, why-not) from `SS_TT` or a named take; None with the reason when refused or unknown."""
    m = CMU_NAME.match(stem)
    if m:
        number, take = int(m.group(1)), f"{int(m.group(1)):02d}_{m.group(2)}"
    else:
        base = re.sub(r"[_\d]+$", "", stem).lower()
        if base not in CMU_NAMED_TAKES:
            return None, stem, (f"cannot tell the CMU subject from the file name (expected SS_TT.amc or one of "
                                f"{sorted(CMU_NAMED_TAKES)}); not converted (subjects 01-10 are reserved)")
        number, take = CMU_NAMED_TAKES[base], stem
    if number in CMU_RESERVED_SUBJECTS:
        return None, stem, f"CMU subject {number:02d} is reserved for independent evaluation (01-10): not converted"
    return f"cmu{number:03d}", take, ""


def convert_asf_amc(name: str, source: str | Path, out_dir: str | Path, *, force: bool = False, joints: str = "rig",
                    log=print) -> Conversion:
    """Convert every accepted take of `source` (HDM05 when name == 'hdm05', else CMU) into out_dir, with the joint
    centres of `joints` (mocap.conventions.JOINT_CONVENTIONS)."""
    hdm05 = name == "hdm05"
    refuse_overwrite(out_dir, name, force)
    src = MocapSource(source)
    report = Conversion(name, "HDM05" if hdm05 else "CMU ASF/AMC", str(source), HDM05_LICENCE if hdm05 else CMU_LICENCE,
                        joints=joints)
    asf_files = {f.name: f for f in src.files(".asf")}
    amc_files = src.files(".amc")
    if not amc_files:
        raise DataError("no .amc takes found", path=source, expected="ASF/AMC files (a folder, clone or .tar.xz)",
                        found="none")
    todo: dict[str, tuple[str, str, str]] = {}  # amc name -> (subject, take, its ASF name)
    for f in amc_files:
        subject, take, why = (hdm05_person if hdm05 else cmu_person)(f.path.stem)
        if subject is None:
            report.skipped.append(f"{f.path.name}: {why}")
            continue
        asf = skeleton_of(f.path, asf_files)
        if asf is None:
            raise DataError("no skeleton (.asf) for this take", path=str(f),
                            expected="an ASF beside it whose name starts the take's name", found=sorted(asf_files)[:5])
        todo[f.name] = (subject, take, asf)
    skeletons = {f.name: (f, text) for f, text in src.read_many([asf_files[a] for _, _, a in todo.values()])}
    parsed: dict[str, asf_amc.ASFSkeleton] = {}
    for f, text in src.read_many([f for f in amc_files if f.name in todo]):
        subject, take, asf = todo[f.name]
        if asf not in parsed:
            asf_file, asf_text = skeletons[asf]
            skel = asf_amc.parse_asf(asf_text, source=str(asf_file))
            check_rig(skel, str(asf_file))
            check_skeleton_units(skel, str(asf_file))
            parsed[asf] = skel
        named = re.search(r"_(\d+)$", f.path.stem) if hdm05 else None
        stated = amc_fps(text) or (float(named.group(1)) if named else None)
        fps = check_fps(stated or RECORDED_FPS, ACCEPTED_FPS, str(f),
                        "from the file name" if named else "stated in the AMC header" if stated else "assumed")
        text, cut = complete_frames(text)
        if cut:
            report.notes.append(f"{f.path.name}: the last frame is incomplete (the file is cut): dropped")
        action = take
        if action in report.positions.get(subject, {}) or any(k.startswith(action + " ") for k in
                                                              report.positions.get(subject, {})):
            action = f"{take} ({f.path.parent.name})"
        report.add_take(subject, action, take_world(parsed[asf], text, str(f)), fps, rigs.CMU_ASF.name,
                        skeleton=PurePosixPath(asf).name)
    for subject in report.subjects:  # each person's bone lengths, for docs/AUGMENTATION.md's conventions
        skel = parsed[next(a for s, _, a in todo.values() if s == subject)]
        m = skel.metres_per_unit
        report.subjects[subject]["femur_tibia_m"] = [round(skel.bones["lfemur"].length * m, 3),
                                                     round(skel.bones["ltibia"].length * m, 3)]
    reserved = ("HDM05 actor 'tr'" if hdm05 else "CMU subjects 01-10 (including the 'walk' = 07 and "
                "'moderndance' = 05 takes of the public copies)")
    return report.write(out_dir, reserved=reserved, log=log)
