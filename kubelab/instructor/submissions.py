"""Submissions on the instructor's disk: student ids, collecting them into nbgrader's layout, and
the namespace each one is graded in.

nbgrader keeps submissions as ``<course>/submitted/<student>/<lab>/``. `collect` fills that from a
folder in the same layout or from a folder of one zip per student (``alice.zip``), refusing what
could escape the target: absolute or ``..`` paths, symlinks, and archives that unpack to more than
`MAX_BYTES`.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from kubelab.errors import KubelabError
from kubelab.i18n import _
from kubelab.labs import Lab

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,62}$")
MAX_BYTES = 50 * 2**20  # a lab submission is a notebook and a few manifests
MAX_FILES = 2000


def check_student(student: str) -> str:
    """Return `student` if it is a usable id, else raise a one-line error."""
    if not STUDENT_ID.match(student):
        raise KubelabError(
            _("bad student id {id}: use letters, digits and . _ @ + - (at most 63)").format(
                id=repr(student)
            )
        )
    return student


def namespace_for(lab: Lab, student: str) -> str:
    """Return the namespace a submission is graded in: readable, unique, a valid DNS label."""
    slug = re.sub(r"[^a-z0-9-]+", "-", student.lower()).strip("-")[:40] or "student"
    digest = hashlib.sha256(student.encode()).hexdigest()[:6]  # Alice and alice differ
    return f"grade-{lab.id[:2]}-{slug}-{digest}"


def submitted(course: Path, lab: Lab) -> list[str]:
    """Return the students who have a submission of `lab` in the course, sorted."""
    root = course / "submitted"
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob(f"*/{lab.id}") if p.is_dir())


@dataclass
class Collected:
    """What `collect` did: students taken in, and items skipped with the reason."""

    students: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _copy_regular(src: Path, dst: Path) -> list[str]:
    """Copy regular files and folders only; return what was left out (symlinks, devices)."""
    left: list[str] = []
    dst.mkdir(parents=True, exist_ok=True)
    for item in sorted(src.iterdir()):
        mode = item.lstat().st_mode
        if stat.S_ISDIR(mode):
            left += _copy_regular(item, dst / item.name)
        elif stat.S_ISREG(mode):
            shutil.copyfile(item, dst / item.name)
        else:
            left.append(str(item))
    return left


def _zip_root(names: list[str]) -> PurePosixPath:
    """Return the folder inside the zip that holds the notebook (zips are made many ways)."""
    notebooks = sorted(
        (PurePosixPath(n) for n in names if n.endswith(".ipynb")), key=lambda p: len(p.parts)
    )
    if not notebooks:
        raise KubelabError(_("no notebook (.ipynb) in it"))
    return notebooks[0].parent


def _unzip(archive: Path, target: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > MAX_FILES or sum(i.file_size for i in infos) > MAX_BYTES:
            raise KubelabError(
                _("too large (over {files} files or {mib} MiB)").format(
                    files=MAX_FILES, mib=MAX_BYTES >> 20
                )
            )
        root = _zip_root([i.filename for i in infos])
        for info in infos:
            name = PurePosixPath(info.filename)
            if name.is_absolute() or ".." in name.parts or "\\" in info.filename:
                raise KubelabError(_("unsafe path {path}").format(path=repr(info.filename)))
            if stat.S_ISLNK(info.external_attr >> 16):
                raise KubelabError(_("symlink {path}").format(path=repr(info.filename)))
            if root.parts and name.parts[: len(root.parts)] != root.parts:
                continue  # beside the notebook's folder: not part of the submission
            out = target.joinpath(*name.parts[len(root.parts) :])
            out.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, out.open("wb") as dst:
                shutil.copyfileobj(src, dst)


def collect(course: Path, lab: Lab, source: Path) -> Collected:
    """Copy submissions of `lab` from `source` into ``<course>/submitted`` (replacing older ones).

    `source` holds ``<student>/<lab>/...`` folders (nbgrader's layout), ``<student>/...`` folders,
    or ``<student>.zip`` files; anything else is reported as skipped.
    """
    if not source.is_dir():
        raise KubelabError(_("no folder {path}").format(path=source))
    done = Collected()
    for item in sorted(source.iterdir()):
        student = item.stem if item.suffix == ".zip" else item.name
        if item.name.startswith("."):
            continue
        if not STUDENT_ID.match(student):
            done.skipped.append(_("{item}: not a student id").format(item=item.name))
            continue
        target = course / "submitted" / student / lab.id
        staging = target.with_name(f".{lab.id}.incoming")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            if item.is_file() and item.suffix == ".zip":
                _unzip(item, staging)
            elif item.is_dir() and not item.is_symlink():
                inner = item / lab.id if (item / lab.id).is_dir() else item
                for left in _copy_regular(inner, staging):
                    done.skipped.append(
                        _("{student}: left out {path} (not a regular file)").format(
                            student=student, path=left
                        )
                    )
            else:
                done.skipped.append(_("{item}: not a folder or a .zip").format(item=item.name))
                continue
            if not any(staging.glob("*.ipynb")):
                raise KubelabError(_("no notebook (.ipynb) at its top level"))
        except (KubelabError, zipfile.BadZipFile, OSError) as err:
            shutil.rmtree(staging, ignore_errors=True)
            done.skipped.append(f"{item.name}: {err}")
            continue
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        done.students.append(student)
    return done
