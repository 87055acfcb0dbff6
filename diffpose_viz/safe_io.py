"""Reading `.npz` / `.npy` files without letting them run code.

`np.load(..., allow_pickle=True)` unpickles object arrays with the full
`pickle` machinery: a crafted file can call `os.system`, `builtins.exec` or
anything importable while it is being read. VideoPose3D-style files need
pickles (each key holds a 0-d object array wrapping a dict of arrays), so
this module reads them with a restricted unpickler instead:

- plain (non-object) members are read with `allow_pickle=False`;
- object members are unpickled by `RestrictedUnpickler`, whose `find_class`
  hands out only the few globals that numpy arrays, dtypes, scalars and plain
  containers need (`ALLOWED_GLOBALS`). Any other global - and any persistent
  id - stops the load with `UnsafePickleError` *before* it can be called, so
  a REDUCE of a refused callable never runs.

Bottom layer: imports only numpy and the standard library.
"""
from __future__ import annotations

import _compat_pickle
import ast
import hashlib
import io
import os
import pickle
import stat
import struct
import zipfile
import zlib
from collections import OrderedDict, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from diffpose_viz.closing import Closing

__all__ = [
    "ALLOWED_GLOBALS", "MAX_ARRAY_BYTES", "MAX_INPUT_BYTES", "RestrictedUnpickler", "SafeLoadError", "SafeNpzFile",
    "UnsafePickleError", "check_input_file", "load_npy", "load_npz",
]

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"
_MAX_HEADER = 10000  # numpy's own default limit
#: Largest input file any loader opens, and the largest array one member may decode to (the whole of
#: Human3.6M's 3D and 2D files are ~1 GB): a bound, so a hostile file cannot make us allocate without end.
MAX_INPUT_BYTES = 16 * 2**30
MAX_ARRAY_BYTES = 16 * 2**30
#: deflate cannot expand data more than ~1032:1; a zip member claiming more lies about its size.
_MAX_DEFLATE_RATIO = 1100


class SafeLoadError(ValueError):
    """A file could not be read safely: corrupt, not an npz/npy, or refused content.

    `path`, `key`, `expected` and `found` say which file and member were wrong and how.
    """

    def __init__(self, problem: str, *, path: str | os.PathLike | None = None, key: str | None = None,
                 expected: object = None, found: object = None) -> None:
        self.problem = problem
        self.path = None if path is None else str(path)
        self.key = key
        self.expected = expected
        self.found = found
        where = ": ".join(p for p in (self.path, None if key is None else f"key {key!r}") if p)
        message = f"{where}: {problem}" if where else problem
        if expected is not None or found is not None:
            message += f" (expected {expected}, found {found})"
        super().__init__(message)


class UnsafePickleError(SafeLoadError):
    """An object member's pickle references a global outside `ALLOWED_GLOBALS`; nothing was called."""

    def __init__(self, refused: str, *, path=None, key=None) -> None:
        self.refused = refused
        super().__init__(
            f"refused to unpickle global '{refused}'; the file was not loaded and nothing in it was run",
            path=path, key=key, expected="only numpy arrays, dtypes, scalars and plain containers",
            found=f"global '{refused}'",
        )


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 (hex) of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "named pipe (FIFO)"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"


def check_input_file(path: str | os.PathLike, what: str = "an input file", *,
                     max_bytes: int = MAX_INPUT_BYTES) -> Path:
    """`path` if it is a regular file of at most `max_bytes`, checked *before* it is opened: a FIFO would
    block the reader forever, a device never ends, a folder is no file. FileNotFoundError when it does not
    exist; SafeLoadError (naming the file, what it should be and what it is) otherwise."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist (expected {what})") from None
    except OSError as err:
        raise SafeLoadError(f"cannot access it ({err.strerror})", path=path, expected=what,
                            found="no access") from None
    if not stat.S_ISREG(st.st_mode):
        raise SafeLoadError("not a regular file", path=path, expected=f"{what} as a regular file",
                            found=f"a {_file_kind(st.st_mode)}")
    if st.st_size > max_bytes:
        raise SafeLoadError("file too large", path=path, expected=f"{what} of at most {max_bytes} bytes",
                            found=f"{st.st_size} bytes")
    return path


def check_array_size(shape: tuple, dtype: np.dtype, available: int | None, path, key: str | None) -> None:
    """Refuse an .npy header whose array would not fit in the bytes that follow it (a lying header) or
    exceeds MAX_ARRAY_BYTES, before anything is allocated."""
    try:
        count = 1
        for n in shape:
            if int(n) < 0:
                raise ValueError
            count *= int(n)
    except (TypeError, ValueError):
        raise SafeLoadError("bad array shape in the .npy header", path=path, key=key,
                            expected="non-negative integer dimensions", found=f"shape {shape!r}") from None
    nbytes = count * dtype.itemsize
    if available is not None and nbytes > available:
        raise SafeLoadError("the .npy header claims more data than the file holds", path=path, key=key,
                            expected=f"{nbytes} bytes for shape {tuple(shape)} of {dtype}",
                            found=f"{available} bytes after the header")
    if nbytes > MAX_ARRAY_BYTES:
        raise SafeLoadError("array too large", path=path, key=key,
                            expected=f"at most {MAX_ARRAY_BYTES} bytes per array",
                            found=f"shape {tuple(shape)} of {dtype} = {nbytes} bytes")


def _latin1_bytes(text: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    """Stand-in for `_codecs.encode` (protocol-2 pickles store bytes as `encode(str, 'latin1')`).

    Only the latin-1 round trip is honoured, so the codec registry cannot be used as a gadget.
    """
    if not isinstance(text, str) or encoding.lower().replace("_", "-") not in ("latin1", "latin-1", "iso-8859-1"):
        raise pickle.UnpicklingError(f"_codecs.encode is only allowed as encode(str, 'latin1'), got {encoding!r}")
    return text.encode("latin1", errors)


def _small_bytes(*args) -> bytes:
    """Stand-in for `bytes`: protocol-2 pickles store b"" as `bytes()`; `bytes(10**12)` is refused."""
    if args and not isinstance(args[0], (str, bytes)):
        raise pickle.UnpicklingError("bytes() is only allowed with no argument or from a string")
    return bytes(*args)


def _numpy_pickle_globals() -> dict[str, Any]:
    """The functions numpy's own pickles call, taken from the running numpy (1.x or 2.x)."""
    probe = np.zeros(1)
    found = {
        "_reconstruct": probe.__reduce__()[0],
        "scalar": np.float64(0).__reduce__()[0],
    }
    try:
        found["_frombuffer"] = probe.__reduce_ex__(5)[0]  # protocol-5 pickles of contiguous arrays
    except Exception:  # noqa: BLE001 - an old numpy without protocol 5 support simply lacks it
        pass
    return found


_NP = _numpy_pickle_globals()

#: (module, name) -> the object handed out. Both `numpy.core` (numpy 1.x files) and `numpy._core`
#: (numpy 2.x files) spellings are accepted; everything else is refused.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    **{(m, "_reconstruct"): _NP["_reconstruct"] for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(m, "scalar"): _NP["scalar"] for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **({(m, "_frombuffer"): _NP["_frombuffer"] for m in ("numpy.core.numeric", "numpy._core.numeric")}
       if "_frombuffer" in _NP else {}),
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_bytes,
    ("builtins", "bytes"): _small_bytes,
    ("collections", "OrderedDict"): OrderedDict,
    ("collections", "defaultdict"): defaultdict,
    **{("builtins", t.__name__): t for t in (dict, list, tuple, str, int, float, bool, complex, set, frozenset,
                                             slice)},
}


def _normalise(module: str, name: str) -> tuple[str, str]:
    """Python 2 names (`__builtin__.set`, `copy_reg`...) as Python 3 spells them, as pickle itself does."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    return module, name


class _Refused(pickle.UnpicklingError):
    def __init__(self, refused: str) -> None:
        self.refused = refused
        super().__init__(refused)


class RestrictedUnpickler(pickle.Unpickler):
    """A `pickle.Unpickler` that resolves only `ALLOWED_GLOBALS` and no persistent ids.

    Every way a pickle can reach a callable (GLOBAL, STACK_GLOBAL, INST, OBJ, EXT*) goes through
    `find_class`, so a refused name raises before any REDUCE/NEWOBJ/BUILD could call it.
    """

    def __init__(self, file) -> None:
        # latin1 as numpy recommends for Python 2 pickles; Python 3 pickles are unaffected by it.
        super().__init__(file, fix_imports=True, encoding="latin1")

    def find_class(self, module: str, name: str) -> Any:
        obj = ALLOWED_GLOBALS.get(_normalise(module, name))
        if obj is None:
            raise _Refused(f"{module}.{name}")
        return obj

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused(f"persistent id {pid!r}")


# --------------------------------------------------------------------------- npy members
#: Failures of the container (compressed stream, CRC, early end), reported by the caller as a corrupt member/file.
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError)
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, TypeError, KeyError,
                IndexError, UnicodeError, SyntaxError, OverflowError, MemoryError, NotImplementedError, struct.error)


def _read_header(fp, path, key: str | None):
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(fp)
        if version == (2, 0):
            return np.lib.format.read_array_header_2_0(fp)
        if version == (3, 0):  # like 2.0 with a utf-8 header (non-latin-1 field names)
            (length,) = struct.unpack("<I", fp.read(4))
            if length > _MAX_HEADER:
                raise ValueError(f"header of {length} bytes exceeds {_MAX_HEADER}")
            header = ast.literal_eval(fp.read(length).decode("utf8"))
            if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
                raise ValueError(f"bad header {header!r}")
            return tuple(header["shape"]), bool(header["fortran_order"]), np.lib.format.descr_to_dtype(
                header["descr"])
        raise ValueError(f"unsupported .npy format version {version}")
    except _ZIP_ERRORS:
        raise
    except _READ_ERRORS as err:
        raise SafeLoadError(f"corrupt .npy header: {err}", path=path, key=key,
                            expected="a numpy .npy header", found="an unreadable header") from None


def _read_object_payload(fp, path, key: str | None, shape, dtype) -> np.ndarray:
    try:
        arr = RestrictedUnpickler(fp).load()
    except _Refused as err:
        raise UnsafePickleError(err.refused, path=path, key=key) from None
    except _ZIP_ERRORS:
        raise
    except Exception as err:  # noqa: BLE001 - only allowed globals can run, so any failure means "corrupt"
        raise SafeLoadError(f"corrupt pickled object array: {type(err).__name__}: {err}", path=path, key=key,
                            expected="a pickled numpy object array", found="a truncated or invalid pickle") from None
    if not isinstance(arr, np.ndarray):
        raise SafeLoadError("object member does not hold an array", path=path, key=key,
                            expected=f"an object array of shape {shape}", found=type(arr).__name__)
    return arr


def _read_npy_stream(open_stream, path, key: str | None, size: int | None = None) -> np.ndarray:
    """One .npy stream: plain arrays with allow_pickle=False, object arrays with the restricted unpickler.

    `open_stream()` returns a fresh readable stream positioned at the start of the .npy data; `size` is the
    stream's length in bytes (the header's array must fit in what follows it).
    """
    with open_stream() as fp:
        shape, _fortran, dtype = _read_header(fp, path, key)
        if dtype.hasobject:
            return _read_object_payload(fp, path, key, shape, dtype)
        check_array_size(shape, dtype, None if size is None else size - fp.tell(), path, key)
    try:
        with open_stream() as fp:
            return np.lib.format.read_array(fp, allow_pickle=False)
    except _ZIP_ERRORS:
        raise
    except _READ_ERRORS as err:
        raise SafeLoadError(f"corrupt array data: {err}", path=path, key=key,
                            expected=f"{int(np.prod(shape))} values of {dtype} for shape {shape}",
                            found="truncated or unreadable data") from None


# --------------------------------------------------------------------------- npz
class SafeNpzFile(Closing):
    """A read-only `.npz` archive whose members are read like `np.load(...)[key]`, minus code execution.

    `files` lists member keys (without `.npy`); `archive[key]` reads one member. Use as a context
    manager or call `close()`. Every problem is a `SafeLoadError` naming the file and the key.
    """

    def __init__(self, path: str | os.PathLike, data: bytes | None = None) -> None:
        """`data`: the archive's bytes (an upload named `path`) instead of reading the file."""
        if data is None:
            self.path = check_input_file(path, "an npz archive")
            with open(self.path, "rb") as f:
                head = f.read(len(_NPY_MAGIC))
        else:
            self.path, head = Path(path), data[:len(_NPY_MAGIC)]
        if head.startswith(_NPY_MAGIC):
            raise SafeLoadError("not an npz archive", path=self.path, expected="a .npz (zip) archive",
                                found="a single-array .npy file")
        if not head:
            raise SafeLoadError("empty file", path=self.path, expected="a .npz (zip) archive", found="0 bytes")
        if not (head.startswith(_ZIP_MAGIC) or head.startswith(_EMPTY_ZIP_MAGIC)):
            raise SafeLoadError("not an npz archive", path=self.path, expected="a .npz (zip) archive",
                                found=f"a file starting with {head[:4]!r}")
        try:
            self._zip = zipfile.ZipFile(self.path if data is None else io.BytesIO(data))
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
            raise SafeLoadError(f"cannot read as npz: {err}", path=self.path, expected="a complete .npz archive",
                                found="a truncated or corrupt zip file") from None
        names = self._zip.namelist()
        self._members = {n[:-4] if n.endswith(".npy") else n: n for n in names}
        self.files = list(self._members)

    def __contains__(self, key: object) -> bool:
        return key in self._members

    def __iter__(self):
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key: str) -> Any:
        if key not in self._members:
            raise KeyError(f"{self.path}: no member {key!r} (members: {self.files})")
        member = self._members[key]
        try:
            if not member.endswith(".npy"):
                return self._zip.read(member)  # as np.load does for non-.npy members: raw bytes
            return _read_npy_stream(lambda: self._zip.open(member), self.path, key, self._member_size(member, key))
        except SafeLoadError:
            raise
        except _READ_ERRORS as err:
            raise SafeLoadError("corrupt member", path=self.path, key=key, expected="a readable zip member",
                                found=f"a truncated or corrupt entry ({type(err).__name__}: {err})") from None

    def _member_size(self, member: str, key: str) -> int:
        """The member's uncompressed size, refused when deflate could not have produced it from its data."""
        info = self._zip.getinfo(member)
        deflated = info.compress_type == zipfile.ZIP_DEFLATED
        if deflated and info.file_size > _MAX_DEFLATE_RATIO * info.compress_size + 1024:
            raise SafeLoadError("zip member claims an impossible uncompressed size", path=self.path, key=key,
                                expected=f"at most ~{_MAX_DEFLATE_RATIO} x its {info.compress_size} compressed bytes",
                                found=f"{info.file_size} bytes")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise SafeLoadError("zip member sizes disagree", path=self.path, key=key,
                                expected=f"{info.compress_size} bytes (stored)", found=f"{info.file_size} bytes")
        return info.file_size

    def close(self) -> None:
        self._zip.close()


def load_npz(path: str | os.PathLike, keys: Iterable[str] | None = None) -> dict[str, Any]:
    """Every member (or those in `keys`) of an npz, as `dict(np.load(path, allow_pickle=True))` would give.

    Object arrays are rebuilt by `RestrictedUnpickler`; a refused global raises `UnsafePickleError`.
    """
    with SafeNpzFile(path) as npz:
        wanted = npz.files if keys is None else list(keys)
        missing = [k for k in wanted if k not in npz]
        if missing:
            raise SafeLoadError("missing key", path=path, key=missing[0], expected=f"key {missing[0]!r}",
                                found=f"keys {npz.files}")
        return {k: npz[k] for k in wanted}


def load_npy(path: str | os.PathLike) -> np.ndarray:
    """One `.npy` file, as `np.load(path, allow_pickle=True)` would give, minus code execution."""
    path = check_input_file(path, "a .npy file")
    with open(path, "rb") as f:
        head = f.read(len(_NPY_MAGIC))
    if head != _NPY_MAGIC:
        raise SafeLoadError("not a .npy file", path=path, expected="a numpy .npy file",
                            found="0 bytes" if not head else f"a file starting with {head[:4]!r}")
    try:
        return _read_npy_stream(lambda: open(path, "rb"), path, None, path.stat().st_size)
    except _ZIP_ERRORS as err:
        raise SafeLoadError("truncated file", path=path, expected="a complete .npy file",
                            found=f"{type(err).__name__}: {err}") from None
