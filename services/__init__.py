"""Budkavle's services: gateway, tailor, email, teams, intranet, and the embedded runner."""

import warnings

import authlib.deprecate

# Authlib announces, on import, its own move from `authlib.jose` and httpx to newer packages: notices about
# its internals (and oidc-provider-mock's use of them), nothing Budkavle can act on, printed at every start.
# Authlib shows its notices always (a filter of its own, set on import); this one goes in front of it.
warnings.filterwarnings("ignore", message=r"(authlib\.jose module|The httpx module) is deprecated",
                        category=authlib.deprecate.AuthlibDeprecationWarning)
