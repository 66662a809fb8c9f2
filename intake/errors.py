"""Client errors: every rejection of a request's input is one of these, rendered as a 4xx
JSON body `{"error": <code>, "detail": <what was wrong>}` by the gateway."""

from __future__ import annotations

from errors import ServiceError


class ClientError(ServiceError):
    """Bad input from the caller. Never a server fault; never logged as one."""


class EmptyImage(ClientError):
    code = "empty_image"


class CorruptImage(ClientError):
    code = "corrupt_image"


class UnsupportedImageFormat(ClientError):
    status = 415
    code = "unsupported_image_format"


class ImageTooLarge(ClientError):
    status = 413
    code = "image_too_large"


class ImageTooSmall(ClientError):
    code = "image_too_small"


class InvalidBase64(ClientError):
    code = "invalid_base64"


class URLNotAllowed(ClientError):
    code = "url_not_allowed"


class URLFetchFailed(ClientError):
    code = "url_fetch_failed"


class URLTimeout(ClientError):
    code = "url_timeout"
