"""The images of a request: base64 fields decoded to bytes, off the loop.

Every image of a request is an :class:`Upload`: its encoded bytes, or why
there are none (invalid base64, no bytes). :func:`decode_base64` decodes one
field; :func:`decode_uploads` decodes all the fields of a request, in a worker
thread when they are large. An invalid field is an answer like the others,
not an exception, so the rest of its batch is predicted. This module does not
import FastAPI.
"""

import base64
import binascii
from dataclasses import dataclass

import anyio

__all__ = ["Upload", "decode_base64", "decode_uploads"]

# Base64 text above this many characters is decoded in a worker thread: a
# 10 MB body takes milliseconds that the event loop owes other requests,
# while a photo of a few hundred KB decodes faster than the hand-over.
_ON_LOOP_CHARS = 1 << 20


@dataclass(frozen=True)
class Upload:
    """One image of a request: its encoded bytes, or why there are none.

    Attributes
    ----------
    data : bytes or None
        The encoded image file.

    error : str or None
        Why the request holds no image here (invalid base64, ...).
    """

    data: bytes | None = None
    error: str | None = None


def decode_base64(text, what="image_data"):
    """The image bytes of a base64 field, or why it holds none.

    Parameters
    ----------
    text : str
        The field's value; a ``data:image/...;base64,`` prefix is accepted.

    what : str, default="image_data"
        The field's name, for the message.

    Returns
    -------
    upload : Upload
        The bytes, or the error message naming ``what``.

    Examples
    --------
    >>> from hybridclf.serve._predict import decode_base64
    >>> decode_base64("aGk=").data
    b'hi'
    >>> decode_base64("%%", what="images[1]").error
    "The 'images[1]' field is not valid base64 (...). Send the image ..."
    """
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        return Upload(error=f"The '{what}' field is not valid base64 ({exc}). Send "
                      "the image file's bytes encoded with standard base64.")
    if not data:
        return Upload(error=f"The '{what}' field decodes to no bytes. Send a "
                      "non-empty image file.")
    return Upload(data=data)


async def decode_uploads(texts, whats):
    """:func:`decode_base64` of every field, off the event loop when large.

    Parameters
    ----------
    texts : list of str
        The base64 fields of a request.

    whats : list of str
        Their names, for the messages.

    Returns
    -------
    uploads : list of Upload
        One per field, in order.
    """
    def decode_all():
        return [decode_base64(text, what) for text, what in zip(texts, whats)]

    if sum(len(text) for text in texts) <= _ON_LOOP_CHARS:
        return decode_all()
    return await anyio.to_thread.run_sync(decode_all)
