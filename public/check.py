"""The human check of the citizens' report form, offline: four digits drawn by the server (Pillow), named by a token
signed with the app's secret (itsdangerous), expiring, and good for one try.

The token carries only a random nonce and its time; the digits are an HMAC of the nonce under the secret, so the
token (readable by anyone: itsdangerous signs, it does not encrypt) does not give them away, and the image can be
drawn again from the token alone. A try — right or wrong — uses the nonce up (PublicThrottle.first_use), so one
image cannot be guessed at ten thousand times; the form then shows a new one.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import io
import random
import secrets

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from PIL import Image, ImageDraw, ImageFilter, ImageFont

TTL_S = 600  # ten minutes to fill the form
DIGITS = 4
SIZE = (176, 64)
_SALT = "ucc-public-human-check"


class CheckFailed(Exception):
    """A refused answer: its Chinese message."""


class HumanCheck:
    """`secret`: the app's SECRET_KEY; `first_use(nonce)`: True once per nonce (the shared store)."""

    def __init__(self, secret: str, first_use, ttl_s: int = TTL_S):
        self.secret = secret.encode() if isinstance(secret, str) else secret
        self.serializer = URLSafeTimedSerializer(secret, salt=_SALT)
        self.first_use = first_use
        self.ttl_s = ttl_s

    def new(self) -> str:
        """A fresh token."""
        return self.serializer.dumps(secrets.token_urlsafe(12))

    def _digest(self, nonce: str) -> bytes:
        return hmac.new(self.secret, b"public-check:" + nonce.encode(), hashlib.sha256).digest()

    def answer_of(self, nonce: str) -> str:
        return f"{int.from_bytes(self._digest(nonce)[:8], 'big') % 10 ** DIGITS:0{DIGITS}d}"

    def nonce_of(self, token: str, max_age: int | None = None) -> str:
        """The token's nonce; CheckFailed when it is not ours or has expired."""
        try:
            nonce = self.serializer.loads(str(token or ""), max_age=self.ttl_s if max_age is None else max_age)
        except SignatureExpired:
            raise CheckFailed("验证码已过期，请输入新图片中的数字") from None
        except BadSignature:
            raise CheckFailed("验证码无效，请输入图片中的数字") from None
        if not isinstance(nonce, str):
            raise CheckFailed("验证码无效，请输入图片中的数字")
        return nonce

    def verify(self, token: str, answer: str) -> None:
        """None when `answer` is the token's digits, first time; CheckFailed otherwise (wrong, expired, reused)."""
        nonce = self.nonce_of(token)
        typed = "".join(str(answer or "").split()).translate(_FULL_WIDTH)
        if not self.first_use(nonce):
            raise CheckFailed("验证码已使用过，请输入新图片中的数字")
        if not typed:
            raise CheckFailed("请输入图片中的 4 位数字")
        if not hmac.compare_digest(typed.encode(), self.answer_of(nonce).encode()):
            raise CheckFailed("验证码不正确，请输入新图片中的数字")

    def image(self, token: str) -> bytes:
        """The token's digits as a PNG: each digit turned and shifted a little over lines and dots, drawn the same way
        each time for one token (the randomness is seeded by the nonce's HMAC)."""
        nonce = self.nonce_of(token, max_age=self.ttl_s + 60)
        digits = self.answer_of(nonce)
        rnd = random.Random(self._digest(nonce)[8:])
        width, height = SIZE
        img = Image.new("RGB", SIZE, (238, 244, 252))
        draw = ImageDraw.Draw(img)
        for _ in range(5):  # faint lines behind the digits
            draw.line([(rnd.randint(0, width), rnd.randint(0, height)) for _ in range(2)],
                      fill=(rnd.randint(150, 200), rnd.randint(170, 210), rnd.randint(200, 235)), width=2)
        font = ImageFont.load_default(size=40)
        step = (width - 24) // DIGITS
        for i, digit in enumerate(digits):
            glyph = Image.new("RGBA", (step + 12, height), (0, 0, 0, 0))
            colour = (rnd.randint(10, 60), rnd.randint(40, 90), rnd.randint(110, 170), 255)
            ImageDraw.Draw(glyph).text((6, 6), digit, font=font, fill=colour)
            glyph = glyph.rotate(rnd.uniform(-25, 25), resample=Image.Resampling.BICUBIC, expand=False)
            img.paste(glyph, (12 + i * step + rnd.randint(-3, 3), rnd.randint(-4, 4)), glyph)
        for _ in range(90):  # speckle
            x, y = rnd.randrange(width), rnd.randrange(height)
            draw.point((x, y), fill=(rnd.randint(80, 160),) * 3)
        draw.line([(0, rnd.randint(20, height - 20)), (width, rnd.randint(20, height - 20))],
                  fill=(60, 90, 150), width=1)
        img = img.filter(ImageFilter.SMOOTH)
        out = io.BytesIO()
        img.save(out, "PNG", optimize=True)
        return out.getvalue()

    def data_url(self, token: str) -> str:
        return "data:image/png;base64," + base64.b64encode(self.image(token)).decode()


# digits typed on a Chinese keyboard in full width (０–９) count as the digits they are
_FULL_WIDTH = str.maketrans("０１２３４５６７８９", "0123456789")
