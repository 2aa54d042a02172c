"""The one runtime of every key holder (cold signer, FROST and DKLs23 co-signer): mutual-TLS
transport, pins, governance checks and the guard that runs before anything is signed, dealt or
registered.

Nothing here trusts the coordinator: every decision is made from what the key holder pinned at
its ceremony and what it verifies itself.

* `routes`: the route table of each engine (path, handler, allowed certificate names, whether it
  acts) and the table of processes; plain data, importable without starting anything.
* `server`: the one mutual-TLS server the engines mount on (`KeyholderServer`, `Mount`).
* `client`: the coordinator's one client for every key holder (`KeyholderClient`).
* `limits`: body size, JSON depth, recursion limit: shared with `coffer serve`.
* `hardening`: not dumpable, no core files, the clock-skew rule.
* `process`: start-up and shutdown of a key-holder process.
* `errors`: the transport's typed refusals, each with its rule and HTTP status.
"""
