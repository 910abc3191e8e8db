"""What of a case may be shown to the public (Open311 readers, the citizens' page, the public figures): personal
data masked, in the fields and inside free text."""
from __future__ import annotations

import re

# A mobile number, a landline with its area code, an 18-digit 居民身份证 number, an e-mail address: the personal data
# a citizen or an operator may type into a description or a reply.
_ID_CARD = re.compile(r"(?<!\d)(\d{6})\d{8}(\d{3}[\dXx])(?!\d)")
_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3}-?)\d{3,4}(\d{4})(?!\d)")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")


def mask_text(text: str | None) -> str:
    """`text` with phone numbers, ID-card numbers and e-mail addresses masked (138****5678, 320402********123X,
    a***@example.com)."""
    if not text:
        return ""
    text = _ID_CARD.sub(lambda m: m.group(1) + "********" + m.group(2), text)
    text = _MOBILE.sub(lambda m: m.group(1) + "****" + m.group(2), text)
    text = _LANDLINE.sub(lambda m: m.group(1) + "****" + m.group(2), text)
    return _EMAIL.sub(lambda m: m.group(1) + "***@" + m.group(2), text)


def mask_name(name: str | None) -> str:
    """A person's name as shown to others: the family name kept (张**)."""
    if not name:
        return ""
    return name[0] + "*" * max(1, len(name) - 1)
