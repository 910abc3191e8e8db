"""Case photos: checks (type by magic bytes, size, a full decode), content-addressed files under the photo root, rows in case_photos.

Every page that shows or takes photos goes through this module: the unit's feedback (/unit), the
phone report (/report), the console, and the GET /photos/<id> route (api/photos.py).

Durability. An accepted photo is never lost to a crash: the file is written to a temporary name,
fsynced, renamed to its final name and its directory fsynced, all BEFORE the row that refers to it
is committed. A crash in between leaves at worst a file no row names (harmless, and the retry of the
same upload reuses it), never a row without its file.

Idempotency. Files are named by the SHA-256 of their bytes, so the same photo is stored once however
often it is sent; the row is unique per (case, kind, content), so a retried upload answers with the
row the first attempt made instead of adding a second.

The photo root is ``UCC_PHOTO_DIR`` (default ``var/photos`` in the application's directory), read at
each call so a test or a second instance can point it elsewhere; every function
also takes ``root=`` explicitly.
"""
from __future__ import annotations

import base64
import binascii
import io
import os
import re
import uuid
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from PIL import Image
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from config import VAR_DIR
from cases.service import CaseService, ServiceError
from data.db import Database
from data.models import Case, CasePhoto, utcnow
from data.tokens import Principal
from dispatch.city_time import local_iso as _iso

MAX_BYTES = 8 * 1024 * 1024
MAX_MB = MAX_BYTES // (1024 * 1024)
# A phone's 50-megapixel camera fits; a small file claiming more is a decompression bomb, refused
# from its header before a pixel is decoded.
MAX_PIXELS = 50_000_000
# JPEGs are decoded at a reduced scale (DCT scaling reads every byte of the stream all the same):
# a truncated or corrupt file fails, a good one costs a fraction of a full decode.
CHECK_SCALE = (1024, 1024)
KINDS = ("report", "feedback")
KIND_LABELS = {"report": "上报照片", "feedback": "处置照片"}
# Who may attach which kind: reports come from whoever may report (the /report page's roles);
# feedback from the unit doing the work, or the command center on its behalf.
KIND_ROLES = {
    "report": ("admin", "duty_officer", "grid_member", "unit_handler"),
    "feedback": ("admin", "duty_officer", "unit_handler"),
}
# A closed or rejected case is finished: its evidence is frozen.
FROZEN_STATES = ("closed", "rejected")
TYPES_TEXT = "JPEG、PNG、WebP"


@dataclass(frozen=True)
class PhotoType:
    name: str  # jpeg, png, webp
    mime: str
    ext: str


JPEG = PhotoType("jpeg", "image/jpeg", ".jpg")
PNG = PhotoType("png", "image/png", ".png")
WEBP = PhotoType("webp", "image/webp", ".webp")
PIL_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}


def photo_root(root: str | Path | None = None) -> Path:
    if root is not None:
        return Path(root)
    return Path(os.environ.get("UCC_PHOTO_DIR") or VAR_DIR / "photos")


def sniff(data: bytes) -> PhotoType | None:
    """The image type the bytes really are (magic bytes), whatever the file is called."""
    head = bytes(data[:16])
    if head[:3] == b"\xff\xd8\xff":
        return JPEG
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return PNG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    return None


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def check_photo(data, filename: str = "") -> PhotoType:
    """The photo's type when it is acceptable; otherwise ServiceError 400 with a message for people.
    Pages call this before creating anything, so that a bad photo creates no case."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ServiceError(400, "bad_photo", "照片数据无效")
    size = len(data)
    if size == 0:
        raise ServiceError(400, "empty_photo", "照片是空文件，请重新拍摄或选择")
    if size > MAX_BYTES:
        raise ServiceError(400, "photo_too_large", f"照片过大（{_mb(size)}），最大 {MAX_MB} MB")
    kind = sniff(data)
    if kind is None:
        ext = Path(filename or "").suffix.lower().lstrip(".")
        named = f"（{ext.upper()}）" if ext else ""
        raise ServiceError(400, "bad_photo_type", f"不支持的文件类型{named}：只接受 {TYPES_TEXT} 图片")
    _decode(bytes(data), kind)
    return kind


def _decode(data: bytes, kind: PhotoType) -> None:
    """Decode the whole image (not only its first bytes): a truncated or corrupt file, or one whose
    header claims more than MAX_PIXELS, is refused with a 400 before anything is written."""
    broken = ServiceError(400, "bad_photo", "照片文件已损坏或不完整，无法识别，请重新拍摄或选择")
    try:
        with Image.open(io.BytesIO(data), formats=[PIL_FORMATS[kind.name]]) as img:
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise ServiceError(400, "photo_too_large",
                                   f"照片像素过多（{width}×{height}），最多 {MAX_PIXELS // 1_000_000} 百万像素")
            if kind is PNG:
                img.verify()  # every chunk's checksum, up to IEND (a PNG cut after its pixels too)
        with Image.open(io.BytesIO(data), formats=[PIL_FORMATS[kind.name]]) as img:
            if kind is JPEG:
                img.draft("RGB", CHECK_SCALE)
            img.load()
    except ServiceError:
        raise
    except Exception:  # noqa: BLE001 - any failure to decode untrusted bytes means a broken image
        raise broken from None


_DATA_URL = re.compile(r"^data:([^,]*?)(;base64)?,", re.IGNORECASE)


def decode_data_url(contents: str) -> bytes:
    """The bytes of a browser upload (a data: URL, as dcc.Upload gives it). Too-large input is
    refused from its length, before decoding it."""
    if not isinstance(contents, str):
        raise ServiceError(400, "bad_photo", "照片数据无效")
    m = _DATA_URL.match(contents)
    if not m or not m.group(2):
        raise ServiceError(400, "bad_photo", "照片数据无效，请重新选择")
    body = contents[m.end():]
    if len(body) * 3 // 4 > MAX_BYTES + 3:
        raise ServiceError(400, "photo_too_large", f"照片过大（约 {_mb(len(body) * 3 // 4)}），最大 {MAX_MB} MB")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise ServiceError(400, "bad_photo", "照片数据无效，请重新选择")


def _clean_name(filename: str) -> str:
    name = Path(str(filename or "").replace("\\", "/")).name
    name = "".join(ch for ch in name if ch.isprintable())
    return name[:200]


def _check_role(principal: Principal | None, kind: str) -> None:
    if principal is None:
        return  # trusted in-process callers (imports, scripts), as CaseService.get(principal=None)
    if principal.role == "wall":
        raise ServiceError(403, "forbidden", "大屏只能查看，不能上传照片")
    if principal.role not in KIND_ROLES[kind]:
        raise ServiceError(403, "forbidden", f"当前角色不能上传{KIND_LABELS[kind]}")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # some platforms cannot open a directory; the file itself is synced
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _store(root: Path, digest: str, kind: PhotoType, data: bytes) -> str:
    """Write the bytes under their content name durably; returns the path relative to the root."""
    rel = f"{digest[:2]}/{digest}{kind.ext}"
    final = root / rel
    if final.is_file() and final.stat().st_size == len(data):
        return rel  # the same content, stored by an earlier upload (only ever renamed in whole)
    folder = final.parent
    created = not folder.is_dir()
    folder.mkdir(parents=True, exist_ok=True)
    if created:
        _fsync_dir(folder.parent)
    tmp = folder / f".{digest}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(folder)
    return rel




def photo_dict(row: CasePhoto) -> dict:
    return {"id": row.id, "url": f"/photos/{row.id}", "kind": row.kind,
            "kind_label": KIND_LABELS.get(row.kind, row.kind), "uploaded_at": _iso(row.uploaded_at), "actor": row.actor, "case_id": row.case_id,
            "filename": row.filename, "size": row.size, "mime": row.mime}


def _existing(s, case_id: int, kind: str, digest: str) -> CasePhoto | None:
    return s.scalar(select(CasePhoto).where(CasePhoto.case_id == case_id, CasePhoto.kind == kind,
                                            CasePhoto.sha256 == digest))


def save_photo(cases: CaseService, case_id: int, data: bytes, filename: str, kind: str, actor: str,
               principal: Principal | None, *, root: str | Path | None = None) -> dict:
    """Attach a photo to a case; returns it as list_photos shows it. Raises ServiceError 400 (bad
    kind, empty, too big, not JPEG/PNG/WebP), 404 (no such case), 403 (the principal may not see
    the case or may not add this kind) or 422 (the case is closed), having written nothing. Who may
    see the case is the case service's rule (CaseService.visible_case)."""
    if kind not in KINDS:
        raise ServiceError(400, "bad_request", f"照片类别须为 {' 或 '.join(KINDS)}")
    if not isinstance(case_id, int) or isinstance(case_id, bool):
        raise ServiceError(400, "bad_request", "案件编号须为整数")
    _check_role(principal, kind)  # the role alone may decide: before reading anything
    ptype = check_photo(data, filename)
    data = bytes(data)
    digest = sha256(data).hexdigest()
    db = cases.db
    with db.session() as s:
        case = cases.visible_case(s, case_id, principal)
        if kind == "feedback" and principal is not None and principal.role == "unit_handler" \
                and principal.unit_code != case.unit_code:
            raise ServiceError(403, "not_your_unit", "该案件不属于您的单位，不能上传处置照片")
        if case.state in FROZEN_STATES:
            raise ServiceError(422, "case_frozen", "案件已结案或不予立案，不能再添加照片")
        found = _existing(s, case_id, kind, digest)
        if found is not None:
            return photo_dict(found)
    # The read transaction is over: the file is written and synced with no database lock held,
    # then the row goes in its own short transaction.
    try:
        rel = _store(photo_root(root), digest, ptype, data)
    except OSError as exc:
        raise ServiceError(503, "storage_failed", f"照片保存失败（{exc.strerror or exc}），请稍后重试")
    row = CasePhoto(case_id=case_id, kind=kind, sha256=digest, mime=ptype.mime, size=len(data), path=rel,
                    filename=_clean_name(filename), actor=str(actor or "")[:100], uploaded_at=utcnow())
    try:
        with db.session() as s:
            s.add(row)
            s.flush()
            out = photo_dict(row)
    except IntegrityError:
        # A concurrent twin of this upload won the unique index: answer with its row.
        with db.session() as s:
            found = _existing(s, case_id, kind, digest)
            if found is None:
                raise
            return photo_dict(found)
    return out


def list_photos(db: Database, case_id: int) -> list[dict]:
    """The case's photos, oldest first, with those of the reports merged into it (their case_id
    says which); each with id, url, kind, uploaded_at, actor."""
    merged = select(Case.id).where(Case.merged_into_id == case_id)
    with db.session() as s:
        rows = s.scalars(select(CasePhoto).where(or_(CasePhoto.case_id == case_id, CasePhoto.case_id.in_(merged)))
                         .order_by(CasePhoto.uploaded_at, CasePhoto.id)).all()
        return [photo_dict(r) for r in rows]


def photo_file(db: Database, photo_id: int, *, root: str | Path | None = None) -> dict | None:
    """Where a photo's bytes are, for serving: case_id, path (absolute), mime, sha256; None when
    there is no such photo. Whether the asker may see the case is the caller's check."""
    with db.session() as s:
        row = s.get(CasePhoto, photo_id)
        if row is None:
            return None
        return {"id": row.id, "case_id": row.case_id, "path": photo_root(root) / row.path, "mime": row.mime,
                "sha256": row.sha256, "size": row.size}
