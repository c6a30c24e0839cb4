"""Bytes to text for every text-based format (.txt, .md, .csv, .json, attachments): a BOM, then
UTF-8, then charset-normalizer's detection when it is confident; only undecidable bytes are
refused, with the reason.

Why not charset-normalizer's `best()` alone (measured, docs/FORMATS.md): it breaks ties among the
Western single-byte code pages toward cp1250, which turns French Latin-1 text and cp1252
punctuation into the wrong letters (à -> ŕ, Œ -> Ś); it reads a lone Latin-1 `café` as UTF-16;
and UTF-8 with one stray Latin-1 byte comes back as Japanese cp932. The rule below got all 13
samples of the study exactly right."""

from __future__ import annotations

from .base import LoadError

_BOMS = (
    (b"\x00\x00\xfe\xff", "utf-32-be", "UTF-32"),
    (b"\xff\xfe\x00\x00", "utf-32-le", "UTF-32"),
    (b"\xef\xbb\xbf", "utf-8", "UTF-8"),
    (b"\xff\xfe", "utf-16-le", "UTF-16"),
    (b"\xfe\xff", "utf-16-be", "UTF-16"),
)
WESTERN = "cp1252"
"""The de-facto default of Western text (a superset of Latin-1's printable range): preferred when
charset-normalizer finds it as good as the code page it ranked first."""
MAX_CHAOS = 0.10
"""charset-normalizer's mess measure (0 clean, 1 garbage) above which a guess is not trusted."""
SHORT = 32
"""Fewer bytes than this say too little to detect from: a lone `café` is valid in 20 encodings,
so short mostly-ASCII text is read as cp1252 (short CJK text, mostly high bytes, is detected)."""
SAMPLE = 1 << 20
"""Detection reads at most this much (it costs about 0.2 s per MB); the whole file is then
decoded with the encoding found."""


def decode_text(data: bytes) -> tuple[str, str]:
    """(text, encoding) of `data`, or LoadError saying why it cannot be read as text."""
    if not data.strip():
        raise LoadError("the file is empty")
    for bom, codec, name in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(codec), codec
            except UnicodeDecodeError as exc:
                raise LoadError(f"invalid {name} text ({exc.reason} at byte {exc.start + len(bom)})") from exc
    if b"\x00" in data[:8192]:
        codec = _wide(data)
        if codec is None:
            raise LoadError("binary file (contains NUL bytes), not text")
        try:
            return _checked(data.decode(codec)), codec
        except UnicodeDecodeError:
            raise LoadError(f"binary file (contains NUL bytes), not {codec} text") from None
    try:
        return _checked(data.decode("utf-8")), "utf-8"
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", "replace")
    bad = text.count("\ufffd")
    multibyte = sum(1 for c in text if ord(c) > 127) - bad
    if multibyte >= 4 * bad and bad <= max(3, len(text) // 1000):
        return _checked(text), "utf-8"  # a few stray bytes pasted into UTF-8 text
    codec, why = _detect(data)
    return _checked(data.decode(codec, "replace")), codec


def _wide(data: bytes) -> str | None:
    """UTF-16 or UTF-32 without a BOM, as mostly-ASCII text has it: a NUL in every other (or
    three of four) bytes, always at the same positions. None for anything else with NULs."""
    head = data[:8192]
    zeros = [head[i::4].count(0) for i in range(4)]
    quarter = max(1, len(head) // 4)
    full = [z >= quarter * 0.95 for z in zeros]
    none = [z <= quarter // 50 for z in zeros]
    if len(data) % 4 == 0 and full[2] and full[3] and none[0]:
        return "utf-32-le"
    if len(data) % 4 == 0 and full[0] and full[1] and none[3]:
        return "utf-32-be"
    even, odd = zeros[0] + zeros[2], zeros[1] + zeros[3]
    if len(data) % 2 == 0 and max(even, odd) > len(head) // 8 and min(even, odd) <= len(head) // 50:
        return "utf-16-le" if odd > even else "utf-16-be"
    return None


def _detect(data: bytes) -> tuple[str, str]:
    from charset_normalizer import from_bytes

    results = from_bytes(data[:SAMPLE])
    best = results.best()
    if best is None:
        raise LoadError("binary file, or text in an encoding that cannot be told (no encoding "
                        "decodes it plausibly); save it as UTF-8")
    for match in results:  # a tie among Western code pages goes to cp1252
        if (match.encoding == WESTERN and abs(match.chaos - best.chaos) < 0.005
                and match.coherence >= best.coherence - 0.01):
            best = match
            break
    why = f"{best.encoding}, chaos {best.chaos:.2f}"
    if len(data) < SHORT and sum(b > 127 for b in data) * 2 < len(data):
        try:
            data.decode(WESTERN)
            return WESTERN, f"short text, read as {WESTERN}"
        except UnicodeDecodeError:
            pass
    if best.chaos > MAX_CHAOS:
        raise LoadError(f"text in an encoding that cannot be told with confidence (best guess {why}); "
                        "save it as UTF-8")
    return best.encoding, why


def _checked(text: str) -> str:
    head = text[:8192]
    controls = sum(1 for c in head if ord(c) < 32 and c not in "\t\n\r\f")
    if controls > max(8, len(head) // 20):
        raise LoadError("binary file (mostly control characters), not text")
    return text
