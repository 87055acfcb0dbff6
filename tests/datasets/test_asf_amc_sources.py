"""The HDM05 and CMU ASF/AMC converters (`diffpose-viz data hdm05|cmu_asf --from PATH`) on tiny Vicon-rig
ASF/AMC takes this test writes: folders, .tar.xz archives laid out like the public copies, reserved people,
wrong rig / units / frame rate, truncated and non-archives, no overwrite."""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from diffpose_viz.cli import main
from diffpose_viz.datasets import asf_amc_sources as conv
from diffpose_viz.datasets.vp3d import load_3d
from diffpose_viz.errors import DataError
from diffpose_viz.mocap import conventions

UNIT_M = 0.0254 / 0.45  # CMU length unit
# (bone, parent, direction, length in CMU units, dof); Y up, the subject faces +z
BONES = [
    ("lhipjoint", "root", (1, -1, 0.3), 2.5, ""), ("lfemur", "lhipjoint", (0, -1, 0), 7.2, "rx ry rz"),
    ("ltibia", "lfemur", (0, -1, 0), 7.4, "rx"), ("lfoot", "ltibia", (0, 0, 1), 2.5, "rx rz"),
    ("rhipjoint", "root", (-1, -1, 0.3), 2.5, ""), ("rfemur", "rhipjoint", (0, -1, 0), 7.2, "rx ry rz"),
    ("rtibia", "rfemur", (0, -1, 0), 7.4, "rx"), ("rfoot", "rtibia", (0, 0, 1), 2.5, "rx rz"),
    ("lowerback", "root", (0, 1, 0), 2.1, "rx ry rz"), ("upperback", "lowerback", (0, 1, 0), 2.1, "rx ry rz"),
    ("thorax", "upperback", (0, 1, 0), 2.1, "rx ry rz"), ("lowerneck", "thorax", (0, 1, 0), 1.7, "rx ry rz"),
    ("upperneck", "lowerneck", (0, 1, 0), 1.7, "rx ry rz"), ("head", "upperneck", (0, 1, 0), 1.7, "rx ry rz"),
    ("lclavicle", "thorax", (1, 0.2, 0), 3.2, "ry rz"), ("lhumerus", "lclavicle", (1, 0, 0), 5.0, "rx ry rz"),
    ("lradius", "lhumerus", (1, 0, 0), 3.4, "rx"), ("rclavicle", "thorax", (-1, 0.2, 0), 3.2, "ry rz"),
    ("rhumerus", "rclavicle", (-1, 0, 0), 5.0, "rx ry rz"), ("rradius", "rhumerus", (-1, 0, 0), 3.4, "rx"),
]


def asf_text(length_unit: float = 0.45, rename: dict | None = None, femur: float = 7.2) -> str:
    rename = rename or {}
    lines = [":version 1.10", ":name VICON", ":units", "  mass 1.0", f"  length {length_unit}", "  angle deg",
             ":root", "   order TX TY TZ RX RY RZ", "   axis XYZ", "   position 0 0 0", "   orientation 0 0 0",
             ":bonedata"]
    for k, (name, _, direction, length, dof) in enumerate(BONES, 1):
        d = np.asarray(direction, float) / np.linalg.norm(direction)
        lines += ["  begin", f"     id {k}", f"     name {rename.get(name, name)}",
                  f"     direction {d[0]:.6f} {d[1]:.6f} {d[2]:.6f}",
                  f"     length {femur if name.endswith('femur') else length}", "     axis 0 0 0 XYZ"]
        if dof:
            lines.append(f"    dof {dof}")
        lines.append("  end")
    lines += [":hierarchy", "  begin"]
    children: dict[str, list[str]] = {}
    for name, parent, *_ in BONES:
        children.setdefault(parent, []).append(rename.get(name, name))
    lines += [f"    {rename.get(p, p)} {' '.join(c)}" for p, c in children.items()]
    lines += ["  end"]
    return "\n".join(lines) + "\n"


def amc_text(frames: int = 240, cut_last: bool = False) -> str:
    """A slow walk: the root moves along x, the thighs swing (rx) at 0.5 Hz; 120 fps."""
    lines = [":FULLY-SPECIFIED", ":DEGREES"]
    for f in range(frames):
        t = f / 120
        swing = 20 * np.sin(np.pi * t)
        lines += [str(f + 1), f"root {10 * t:.4f} 17.0 0 0 0 0"]
        for name, _, _, _, dof in BONES:
            if not dof:
                continue
            vals = [0.0] * len(dof.split())
            if name in ("lfemur", "rfemur"):
                vals[0] = swing if name[0] == "l" else -swing
            lines.append(f"{name} " + " ".join(f"{v:.4f}" for v in vals))
    if cut_last:
        lines = lines[:-5]
    return "\n".join(lines) + "\n"


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def pack(archive: Path, files: dict[str, str]) -> Path:
    with tarfile.open(archive, "w:xz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


HDM05 = {  # the JointLearning-HDM05 layout: one class per folder, the actor's ASF copied beside its takes
    "hdm05/train/1/HDM_bd.asf": asf_text(), "hdm05/train/1/HDM_bd_walk_001_120.amc": amc_text(),
    "hdm05/train/2/HDM_bd.asf": asf_text(), "hdm05/train/2/HDM_bd_walk_001_120.amc": amc_text(),
    "hdm05/train/1/HDM_dg.asf": asf_text(femur=8.0), "hdm05/train/1/HDM_dg_squat_003_120.amc": amc_text(),
    "hdm05/test/1/HDM_tr.asf": asf_text(), "hdm05/test/1/HDM_tr_walk_001_120.amc": amc_text(),
}


def test_hdm05_archive_converts_each_actor_and_refuses_tr(tmp_path):
    report = conv.convert_asf_amc("hdm05", pack(tmp_path / "hdm05.tar.xz", HDM05), tmp_path / "out", log=None)
    assert set(report.subjects) == {"bd", "dg"}
    assert any("HDM_tr_walk" in s and "reserved" in s for s in report.skipped)
    assert report.subjects["bd"]["takes"] == 2 and report.frames == 3 * 60  # 240 frames at 120 fps -> 60 at 30
    mocap = load_3d(report.out)
    assert sorted(mocap.positions["bd"]) == ["walk_001", "walk_001 (2)"]
    pose = mocap.positions["dg"]["squat_003"]
    thigh = np.linalg.norm(pose[:, 2] - pose[:, 1], axis=-1)
    assert np.allclose(thigh, 8.0 * UNIT_M, rtol=1e-3)  # each person keeps their own bones, in metres
    assert pose[:, [3, 6], 2].min() == pytest.approx(0.08, abs=1e-3) and (pose[:, 10, 2] > pose[:, 0, 2] + 0.3).all()
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["people"] == 2 and "CC BY-SA" in saved["licence"]
    assert "HDM05 actor 'tr'" in (tmp_path / "out" / "SOURCES.md").read_text()


def test_cmu_takes_by_number_and_by_name_reserved_refused(tmp_path):
    src = write(tmp_path / "cmu", {
        "motion-out/assets/asf/mjackson.asf": asf_text(), "motion-out/assets/amc/mjackson/131_01.amc": amc_text(),
        "mocap-r/extdata/lambada.asf": asf_text(), "mocap-r/extdata/lambada.amc": amc_text(cut_last=True),
        "mocap-r/extdata/walk.asf": asf_text(), "mocap-r/extdata/walk.amc": amc_text(),  # CMU 07
        "x/07_01.asf": asf_text(), "x/07_01.amc": amc_text(), "x/mystery.asf": asf_text(), "x/mystery.amc": amc_text(),
    })
    report = conv.convert_asf_amc("cmu_asf", src, tmp_path / "out", log=None)
    assert set(report.subjects) == {"cmu131", "cmu055"}
    skipped = " | ".join(report.skipped)
    assert "walk.amc: CMU subject 07 is reserved" in skipped and "07_01.amc: CMU subject 07 is reserved" in skipped
    assert "mystery.amc: cannot tell the CMU subject" in skipped
    assert any("lambada.amc" in n and "incomplete" in n for n in report.notes)  # a cut last frame is dropped
    assert report.subjects["cmu055"]["frames"] == 60  # 239 complete frames -> 60 at 30 fps


@pytest.mark.parametrize("files, message", [
    ({"HDM_bd.asf": asf_text(rename={"lfemur": "LeftThigh"}), "HDM_bd_x_001_120.amc": amc_text()},
     "not the Vicon/CMU ASF rig"),
    ({"HDM_bd.asf": asf_text(length_unit=0.045), "HDM_bd_x_001_120.amc": amc_text()}, "wrong units"),
    ({"HDM_bd.asf": asf_text(), "HDM_bd_x_001_25.amc": amc_text()}, r"wrong frame rate .*found 25 fps"),
    ({"HDM_tr.asf": asf_text(), "HDM_tr_x_001_120.amc": amc_text()}, "actor 'tr' is reserved"),
    ({"HDM_bd_x_001_120.amc": amc_text()}, "no .asf. for this take|no skeleton"),
])
def test_bad_files_are_refused_naming_them(tmp_path, files, message):
    write(tmp_path / "src", files)
    with pytest.raises(DataError, match=message) as err:
        conv.convert_asf_amc("hdm05", tmp_path / "src", tmp_path / "out", log=None)
    assert "src" in str(err.value)  # the file (or folder) is named
    assert not (tmp_path / "out").exists()


def test_truncated_or_fake_archive_is_one_line(tmp_path):
    good = pack(tmp_path / "hdm05.tar.xz", HDM05).read_bytes()
    (tmp_path / "cut.tar.xz").write_bytes(good[: len(good) // 2])
    (tmp_path / "fake.tar.xz").write_text("not an archive\n")
    for name in ("cut.tar.xz", "fake.tar.xz"):
        with pytest.raises(DataError, match="not a readable archive") as err:
            conv.convert_asf_amc("hdm05", tmp_path / name, tmp_path / "out", log=None)
        assert name in str(err.value) and "\n" not in str(err.value)


def test_archive_members_cannot_escape(tmp_path):
    """Members with '..' or absolute paths, and links, are never listed, read or written anywhere."""
    archive = tmp_path / "evil.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        for name, text in {**HDM05, "../HDM_bk_x_001_120.amc": amc_text(), "/tmp/HDM_bk.asf": asf_text()}.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
        link = tarfile.TarInfo("hdm05/train/1/HDM_bk_y_001_120.amc")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    report = conv.convert_asf_amc("hdm05", archive, tmp_path / "out", log=None)
    assert set(report.subjects) == {"bd", "dg"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.tar.xz", "out"]


def test_no_overwrite_without_force_and_the_cli(tmp_path, capsys):
    src = write(tmp_path / "src", {k.split("/")[-1]: v for k, v in HDM05.items() if "/1/" in k and "train" in k})
    out = tmp_path / "out"
    assert main(["data", "hdm05", "--from", str(src), "--out-dir", str(out)]) == 0
    assert "2 people" in capsys.readouterr().out
    before = (out / "data_3d_hdm05.npz").stat().st_mtime_ns
    assert main(["data", "hdm05", "--from", str(src), "--out-dir", str(out)]) == 1
    err = capsys.readouterr().err
    assert "already converted; pass --force" in err and len(err.strip().splitlines()) == 1
    assert (out / "data_3d_hdm05.npz").stat().st_mtime_ns == before
    assert main(["data", "hdm05", "--from", str(src), "--out-dir", str(out), "--force"]) == 0
    assert main(["data", "cmu_asf"]) == 1
    assert "--from PATH is required" in capsys.readouterr().err


def test_harmonised_joints_move_only_shoulders_and_hips_into_their_own_folder(tmp_path, monkeypatch, capsys):
    """`--joints harmonised` writes data/cache/<what>_harmonised: the same takes, each person's shoulder and hip
    spacing at bandai17's proportion of their leg (mocap.conventions), every other joint the rig's."""
    archive = pack(tmp_path / "hdm05.tar.xz", HDM05)
    monkeypatch.chdir(tmp_path)
    assert main(["data", "hdm05", "--from", str(archive)]) == 0
    assert main(["data", "hdm05", "--from", str(archive), "--joints", "harmonised"]) == 0
    assert "joint centres: harmonised" in capsys.readouterr().out
    rig, harmonised = (load_3d(Path(f"data/cache/{d}/data_3d_hdm05.npz")) for d in ("hdm05", "hdm05_harmonised"))
    assert harmonised.metadata["joint_convention"] == "harmonised" and rig.metadata["joint_convention"] == "rig"
    report = json.loads(Path("data/cache/hdm05_harmonised/report.json").read_text())
    for subject, femur in (("bd", 7.2), ("dg", 8.0)):
        leg = (femur + 7.4) * UNIT_M
        factors = report["subjects"][subject]["harmonised"]
        assert factors["leg_m"] == pytest.approx(leg, rel=1e-3)
        for action, before in rig.positions[subject].items():
            after = harmonised.positions[subject][action]
            kept = [j for j in range(17) if j not in conventions.MOVED_JOINTS]
            assert np.allclose(after[:, kept], before[:, kept])
            width = np.linalg.norm(after[:, 11] - after[:, 14], axis=-1)
            assert np.allclose(width, conventions.SHOULDER_WIDTH_PER_LEG * leg, rtol=0.02)
            assert not np.allclose(after[:, [1, 4, 11, 14]], before[:, [1, 4, 11, 14]])
