"""E-mail messages (.eml) through the standard library's email package: the sender, recipients,
date and subject as a header, the body (the HTML part through markdownify, which keeps its
headings and tables, else the plain part) and text attachments; the subject is the title, the
sender the author, the Date header the date. Other attachments are named, not read."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path

from .base import LOADERS, MAX_FILE_BYTES, LoadError, split_header
from .blocks import Blocks, described, properties
from .encoding import decode_text
from .html import html_to_markdown

ATTACHMENTS = 200


@LOADERS.register(".eml")
def load_eml(path: Path, data: bytes, limit: int = MAX_FILE_BYTES) -> tuple[str, dict[str, str]]:
    if not data.strip():
        raise LoadError("the file is empty")
    try:
        message = BytesParser(policy=policy.default).parsebytes(data)
        if not isinstance(message, EmailMessage) or not (message.keys() or message.get_payload()):
            raise LoadError("not an e-mail message")
        if not any(k.lower() in ("from", "to", "subject", "date", "message-id") for k in message):
            raise LoadError("not an e-mail message (no From, To, Subject or Date header)")
        out = Blocks(limit)
        head = [f"{name}: {' '.join(str(message[name]).split())}"
                for name in ("From", "To", "Cc", "Date", "Subject") if message[name]]
        out.add("\n".join(head))
        body = message.get_body(preferencelist=("html", "plain"))
        if body is not None:
            out.add(_part_text(body))
        others = []
        for n, part in enumerate(message.iter_attachments()):
            name = part.get_filename() or f"attachment {n + 1}"
            if n < ATTACHMENTS and part.get_content_maintype() == "text":
                out.add(f"## Attachment: {name}")
                out.add(_part_text(part))
            else:
                others.append(f"{name} ({part.get_content_type()})")
        if others:
            out.add("Attachments not read here (save them to the library to index them): "
                    + ", ".join(others))
        try:
            created = parsedate_to_datetime(str(message["date"])) if message["date"] else None
        except (TypeError, ValueError, IndexError):
            created = None
        meta = properties(message["subject"], message["from"], created)
    except LoadError:
        raise
    except RecursionError as exc:
        raise LoadError("the message is nested too deeply to read") from exc
    except Exception as exc:  # the parser on bytes that are no e-mail
        raise LoadError(f"not a readable e-mail message ({described(exc)})") from exc
    text, header = split_header(out.text())
    return text, {**meta, **header}


def _part_text(part: EmailMessage) -> str:
    """A text part's content; a missing or unknown charset is detected like a text file's."""
    try:
        text = part.get_content()
    except (LookupError, UnicodeError):
        text = None
    if not isinstance(text, str) or (part.get_content_charset() is None and "\ufffd" in text):
        raw = part.get_payload(decode=True) or b""
        try:
            text = decode_text(raw)[0] if raw.strip() else ""
        except LoadError:
            return ""
    if part.get_content_subtype() == "html":
        text = html_to_markdown(text)
    return text.strip()
