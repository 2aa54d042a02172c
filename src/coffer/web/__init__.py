"""The web app: client security centre now, operations console and public pages later (issue 12).

`create_app(context, routers=(), template_dirs=())` builds one FastAPI app; `WebContext` carries
the services. Routers of other parts use `coffer.web.deps` (sessions, CSRF, rate limits, render)
and may extend the "base.html" template. Never imports a part's hazmat, never holds a key.
"""

from coffer.web.app import REQUEST_BYTES_MAX, create_app
from coffer.web.context import DEFAULT_BUCKETS, WebContext, context_from_config, por_nonce_lookup
from coffer.web.errors import CsrfRefused, NotSignedIn, RateLimited, RequestTooLarge, WebError
from coffer.web.sessions import Bucket, RateLimiter, Session, SessionStore

__all__ = ["create_app", "REQUEST_BYTES_MAX", "WebContext", "DEFAULT_BUCKETS", "por_nonce_lookup", "context_from_config",
           "CsrfRefused", "NotSignedIn", "RateLimited", "RequestTooLarge", "WebError", "Bucket", "RateLimiter",
           "Session", "SessionStore"]
