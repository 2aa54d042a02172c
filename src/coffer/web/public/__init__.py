"""Public pages: the proof of reserves (latest signed statements and the public log, and an
inclusion check of a client's private proof by the stand-alone verifier's own code), and the
client's own balances. Nothing here needs an operator; nothing shows one client another's data.
"""

from coffer.web.public.routes import TEMPLATES_DIR, PublicParts, api_router, page_router, public_routers

__all__ = ["PublicParts", "api_router", "page_router", "public_routers", "TEMPLATES_DIR"]
