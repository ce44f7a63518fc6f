"""A small client of the bot API for ``heat whatif`` (standard library HTTP, one call).

The bearer token goes in the ``Authorization`` header, and again to the worker a standby
redirects to, but only over the scheme of the first request: a redirect from https to
http would send the token in clear, so it is refused.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import urljoin, urlsplit

import msgspec

from heatmap.schema import WhatIf, WhatIfRequest

_REDIRECTS = 3  # a standby answers 307 to the lease holder; more hops mean a loop


class ApiUnreachable(Exception):  # noqa: N818 - reads as what happened
    """The server did not answer; ``str()`` says why."""


class ApiRefused(Exception):  # noqa: N818
    """The server answered with an error: ``status`` and its reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class _KeepMethod(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_: object, **__: object) -> None:
        return None  # 307s are followed below, keeping POST and its body


def post_what_if(base_url: str, request: WhatIfRequest, token: str | None,
                 timeout_s: float = 10.0) -> WhatIf:
    """``POST /v1/whatif`` at ``base_url`` with the bearer ``token`` (following a standby's
    307 redirects, the token re-sent only over the same scheme)."""
    opener = urllib.request.build_opener(_KeepMethod)
    url = urljoin(base_url.rstrip("/") + "/", "v1/whatif")
    scheme = urlsplit(url).scheme
    body = msgspec.json.encode(request)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    for _ in range(_REDIRECTS + 1):
        if not url.startswith(("http://", "https://")):
            raise ApiUnreachable(f"{url}: not an http(s) URL")
        if urlsplit(url).scheme != scheme:
            raise ApiUnreachable(f"{url}: redirected from {scheme} to another scheme; the "
                                 "token is not sent there")
        asked = urllib.request.Request(url, data=body, method="POST",  # noqa: S310 (checked above)
                                       headers=headers)
        try:
            with opener.open(asked, timeout=timeout_s) as response:
                return msgspec.json.decode(response.read(), type=WhatIf)
        except urllib.error.HTTPError as error:
            if error.code in (307, 308) and error.headers.get("Location"):
                url = urljoin(url, error.headers["Location"])
                continue
            raise ApiRefused(error.code, _reason(error.read())) from error
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ApiUnreachable(f"{url}: {reason}") from error
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            raise ApiUnreachable(f"{url} did not answer a what-if ({error})") from error
    raise ApiUnreachable(f"{url}: more than {_REDIRECTS} redirects")


def _reason(body: bytes) -> str:
    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return body.decode(errors="replace")[:200] or "no reason given"
