"""Pinhole cameras with Brown-Conrady distortion, in the VideoPose3D conventions.

Extrinsics are camera-to-world: `orientation` is a scalar-first quaternion
(w, x, y, z) rotating camera axes into world axes and `translation` is the
camera centre in world metres, so world -> camera is R^T (X - t).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class Camera:
    id: str
    res_w: int
    res_h: int
    focal: tuple[float, float]
    center: tuple[float, float]
    radial: tuple[float, float, float] = (0.0, 0.0, 0.0)
    tangential: tuple[float, float] = (0.0, 0.0)
    orientation: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)
    azimuth: float = field(default=0.0, compare=False)

    @classmethod
    def from_dict(cls, d: dict, *, translation_units: str = "m") -> "Camera":
        """Accepts the bandai17/diffpose_viz keys and VideoPose3D's key names."""
        def pick(*names, default=None):
            for n in names:
                if n in d:
                    return d[n]
            if default is not None:
                return default
            raise KeyError(f"camera dict lacks any of {names}; has {sorted(d)}")

        t = np.asarray(pick("translation", default=(0.0, 0.0, 0.0)), dtype=np.float64)
        if translation_units == "mm":
            t = t / 1000.0
        return cls(
            id=str(pick("id", default="cam")),
            res_w=int(pick("res_w")),
            res_h=int(pick("res_h")),
            focal=tuple(float(v) for v in pick("focal", "focal_length")),
            center=tuple(float(v) for v in pick("center")),
            radial=tuple(float(v) for v in pick("radial", "radial_distortion", default=(0.0, 0.0, 0.0))),
            tangential=tuple(float(v) for v in pick("tangential", "tangential_distortion", default=(0.0, 0.0))),
            orientation=tuple(float(v) for v in pick("orientation", default=(1.0, 0.0, 0.0, 0.0))),
            translation=tuple(float(v) for v in t),
            azimuth=float(d.get("azimuth", 0.0)),
        )

    def to_dict(self) -> dict:
        return asdict(self)

    def invalid_field(self) -> tuple[str, str, object] | None:
        """(field, expected, found) for the first parameter that cannot describe a camera (non-finite, or
        a focal length / image size <= 0, or a zero quaternion); None when all are usable."""
        positive = {"res_w": (self.res_w,), "res_h": (self.res_h,), "focal": self.focal}
        finite = {"center": self.center, "radial": self.radial, "tangential": self.tangential,
                  "orientation": self.orientation, "translation": self.translation}
        for name, values in {**positive, **finite}.items():
            v = np.asarray(values, dtype=np.float64)
            found = list(values) if len(values) > 1 else values[0]
            if not np.isfinite(v).all():
                return name, "finite values", found
            if name in positive and not (v > 0).all():
                return name, "values > 0 (pixels)", found
        if not np.linalg.norm(self.orientation) > 0:
            return "orientation", "a non-zero quaternion (w, x, y, z)", list(self.orientation)
        return None

    @property
    def rotation(self) -> np.ndarray:
        """Camera-to-world rotation matrix."""
        return quaternion_to_matrix(np.asarray(self.orientation, dtype=np.float64))

    @property
    def intrinsic_vector(self) -> np.ndarray:
        """VideoPose3D's normalised 9-vector [fx, fy, cx, cy, k1, k2, k3, p1, p2]."""
        f = np.asarray(self.focal) / self.res_w * 2.0
        c = normalize_screen(np.asarray(self.center), self.res_w, self.res_h)
        return np.concatenate([f, c, self.radial, self.tangential]).astype(np.float32)

    def world_to_camera(self, x_world: np.ndarray) -> np.ndarray:
        x = np.asarray(x_world, dtype=np.float64) - np.asarray(self.translation)
        return x @ self.rotation  # row-vector form of R^T x

    def camera_to_world(self, x_cam: np.ndarray) -> np.ndarray:
        return np.asarray(x_cam, dtype=np.float64) @ self.rotation.T + np.asarray(self.translation)

    def project(self, x_cam: np.ndarray, *, distort: bool = True, tangential_order: str = "h36m") -> np.ndarray:
        """Camera-frame points (..., 3) in metres -> pixels (..., 2).

        tangential_order "h36m" is the Human3.6M toolbox form, "vp3d" is
        VideoPose3D's `project_to_2d`; they differ by under half a pixel.
        """
        x_cam = np.asarray(x_cam, dtype=np.float64)
        z = x_cam[..., 2:3]
        if np.any(z <= 0):
            raise ValueError(f"camera {self.id}: {int((z <= 0).sum())} points at or behind the camera (z <= 0)")
        xy = x_cam[..., :2] / z
        if distort:
            k1, k2, k3 = self.radial
            p1, p2 = self.tangential
            r2 = (xy**2).sum(-1, keepdims=True)
            radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
            x, y = xy[..., :1], xy[..., 1:]
            if tangential_order == "h36m":
                tan = p1 * y + p2 * x
                xy = np.concatenate([x * (radial + tan) + p2 * r2, y * (radial + tan) + p1 * r2], -1)
            elif tangential_order == "vp3d":
                tan = p1 * x + p2 * y
                xy = np.concatenate([x * (radial + tan) + p1 * r2, y * (radial + tan) + p2 * r2], -1)
            else:
                raise ValueError(f"tangential_order must be 'h36m' or 'vp3d', got {tangential_order!r}")
        return xy * np.asarray(self.focal) + np.asarray(self.center)

    def back_project(self, uv_px: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Pixels (..., 2) and camera depth z (...) -> camera-frame points, ignoring distortion."""
        uv = (np.asarray(uv_px, dtype=np.float64) - np.asarray(self.center)) / np.asarray(self.focal)
        depth = np.asarray(depth, dtype=np.float64)[..., None]
        return np.concatenate([uv * depth, depth], -1)


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def normalize_screen(xy: np.ndarray, w: float, h: float) -> np.ndarray:
    """Pixels -> [-1, 1] on x, same scale on y (aspect ratio kept): u = 2x/w - 1, v = 2y/w - h/w."""
    xy = np.asarray(xy)
    return xy / w * 2 - np.array([1.0, h / w], dtype=xy.dtype if xy.dtype.kind == "f" else np.float64)


def image_coordinates(uv: np.ndarray, w: float, h: float) -> np.ndarray:
    uv = np.asarray(uv)
    return (uv + np.array([1.0, h / w], dtype=uv.dtype if uv.dtype.kind == "f" else np.float64)) * w / 2


# Public Human3.6M calibration (VideoPose3D's h36m_dataset.py values).
# Translations are camera centres in world millimetres, converted on use.
_H36M_INTRINSICS = [
    ("54138969", 1000, 1002, (1145.04940458804, 1143.78109572365), (512.541504956548, 515.4514869776),
     (-0.207098910824901, 0.247775183068982, -0.00307515035078854), (-0.000975698859470499, -0.00142447157470321), 70),
    ("55011271", 1000, 1000, (1149.67569986785, 1147.59161666764), (508.848621645943, 508.064917088557),
     (-0.194213629607385, 0.240408539138292, 0.00681997559022603), (-0.0016190266374052, -0.0027408943961907), -70),
    ("58860488", 1000, 1000, (1149.14071676148, 1148.7989685676), (519.815837182153, 501.402658888552),
     (-0.208338188251856, 0.255487638640877, -0.00246049749891915), (0.00148438698385668, -0.000759999321030303), 110),
    ("60457274", 1000, 1002, (1145.51133842318, 1144.77392807652), (514.968197319863, 501.882018537695),
     (-0.198384093827848, 0.218323676298049, -0.00894780704152122), (-0.000587205720886302, -0.00181336200488089), -110),
]

_H36M_EXTRINSICS = {
    "S1": [((0.1407056450843811, -0.1500701755285263, -0.755240797996521, 0.6223280429840088), (1841.1070556640625, 4955.28466796875, 1563.4454345703125)),
           ((0.6157187819480896, -0.764836311340332, -0.14833825826644897, 0.11794740706682205), (1761.278564453125, -5078.0068359375, 1606.2650146484375)),
           ((0.14651472866535187, -0.14647851884365082, 0.7653023600578308, -0.6094175577163696), (-1846.7777099609375, 5215.04638671875, 1491.972412109375)),
           ((0.5834008455276489, -0.7853162288665771, 0.14548823237419128, -0.14749594032764435), (-1794.7896728515625, -3722.698974609375, 1574.8927001953125))],
    "S5": [((0.1467377245426178, -0.162370964884758, -0.7551892995834351, 0.6178938746452332), (2097.3916015625, 4880.94482421875, 1605.732421875)),
           ((0.6159758567810059, -0.7626792192459106, -0.15728192031383514, 0.1189815029501915), (2031.7008056640625, -5167.93310546875, 1612.923095703125)),
           ((0.14291371405124664, -0.12907841801643372, 0.7678384780883789, -0.6110143065452576), (-1620.5948486328125, 5171.65869140625, 1496.43701171875)),
           ((0.5920479893684387, -0.7814217805862427, 0.1274748593568802, -0.15036417543888092), (-1637.1737060546875, -3867.3173828125, 1547.033203125))],
    "S6": [((0.1337897777557373, -0.15692396461963654, -0.7571090459823608, 0.6198879480361938), (1935.4517822265625, 4950.24560546875, 1618.0838623046875)),
           ((0.6147197484970093, -0.7628812789916992, -0.16174767911434174, 0.11819244921207428), (1969.803955078125, -5128.73876953125, 1632.77880859375)),
           ((0.1529948115348816, -0.13529130816459656, 0.7646096348762512, -0.6112781167030334), (-1769.596435546875, 5185.361328125, 1476.993408203125)),
           ((0.5916101336479187, -0.7804774045944214, 0.12832270562648773, -0.1561593860387802), (-1721.668701171875, -3884.13134765625, 1540.4879150390625))],
    "S7": [((0.1435241848230362, -0.1631336808204651, -0.7548328638076782, 0.6188824772834778), (1974.512939453125, 4926.3544921875, 1597.8326416015625)),
           ((0.6141672730445862, -0.7638262510299683, -0.1596645563840866, 0.1177929937839508), (1937.0584716796875, -5119.7900390625, 1631.5665283203125)),
           ((0.14550060033798218, -0.12874816358089447, 0.7660516500473022, -0.6127139329910278), (-1741.8111572265625, 5208.24951171875, 1464.8245849609375)),
           ((0.5912848114967346, -0.7821764349937439, 0.12445473670959473, -0.15196487307548523), (-1734.7105712890625, -3832.42138671875, 1548.5830078125))],
    "S8": [((0.14110587537288666, -0.15589867532253265, -0.7561917304992676, 0.619644045829773), (2150.65185546875, 4896.1611328125, 1611.9046630859375)),
           ((0.6169601678848267, -0.7647668123245239, -0.14846350252628326, 0.11158157885074615), (2219.965576171875, -5148.453125, 1613.0440673828125)),
           ((0.1471444070339203, -0.13377119600772858, 0.7670128345489502, -0.6100369691848755), (-1571.2215576171875, 5137.0185546875, 1498.1761474609375)),
           ((0.5927824378013611, -0.7825870513916016, 0.12147816270589828, -0.14631995558738708), (-1476.913330078125, -3896.7412109375, 1547.97216796875))],
    "S9": [((0.15540587902069092, -0.15548215806484222, -0.7532095313072205, 0.6199594736099243), (2044.45849609375, 4935.1171875, 1481.2275390625)),
           ((0.6187839508056641, -0.7634735107421875, -0.14132209122180939, 0.11933995038270950), (1990.959716796875, -5123.810546875, 1568.8048095703125)),
           ((0.13357827067375183, -0.13671036064624786, 0.7689454555511475, -0.6100738644599915), (-1670.9921875, 5211.98583984375, 1528.387939453125)),
           ((0.5879399180412292, -0.7823407053947449, 0.1427614390850067, -0.14794869720935822), (-1696.04345703125, -3827.099853515625, 1591.4127197265625))],
    "S11": [((0.15232472121715546, -0.15442320704460144, -0.7547563314437866, 0.6191070079803467), (2098.440185546875, 4926.5546875, 1500.278564453125)),
            ((0.6189449429512024, -0.7600917220115662, -0.15300633013248444, 0.1255258321762085), (2083.182373046875, -4912.1728515625, 1561.07861328125)),
            ((0.14943228662014008, -0.15650227665901184, 0.7681233882904053, -0.6026304364204407), (-1609.8153076171875, 5177.3359375, 1537.896728515625)),
            ((0.5894251465797424, -0.7818877100944519, 0.13991211354732513, -0.14715361595153809), (-1590.738037109375, -3854.1689453125, 1578.017578125))],
}

H36M_SUBJECTS = tuple(_H36M_EXTRINSICS)


def h36m_cameras(subject: str = "S1") -> list[Camera]:
    """The four Human3.6M cameras of `subject`, in the order of the 2D files."""
    if subject not in _H36M_EXTRINSICS:
        raise KeyError(f"no Human3.6M calibration for subject {subject!r}; known: {list(_H36M_EXTRINSICS)}")
    cams = []
    for (cid, w, h, f, c, k, p, az), (q, t) in zip(_H36M_INTRINSICS, _H36M_EXTRINSICS[subject]):
        cams.append(Camera(id=cid, res_w=w, res_h=h, focal=f, center=c, radial=k, tangential=p,
                           orientation=q, translation=tuple(v / 1000.0 for v in t), azimuth=az))
    return cams
