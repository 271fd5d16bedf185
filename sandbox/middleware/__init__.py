"""The sandbox's ASGI layers, in the order a request meets them:

* `entrance.Entrance`     outermost, one layer for three concerns, each in its own module:
                          the request's facts begin (activity id, clock), its id on the answer,
                          slashes merged, collection paths without their trailing slash
                          (`guard.start`); the answer held until the request's writes are
                          durable; refusals of what must never reach Connexion, the app's context
                          in the scope (`guard.RequestGuard`); the request recorded in the
                          tenant's request journal once answered (`journal_recording`);
* `fast_path.FastPath`    the platform's operations, answered past Connexion's per-request layers
                          with Connexion's own validators and decorators; anything unusual goes on:
  (Connexion's routing)
* `operation_tap`         notes the routed operation in the request's facts;
  (Connexion's token check, which notes the tenant)
* `extras_gate`           for the platform's operations only: the tenant's rate limit
                          (`rate_limiting`), then injected faults and delays (`fault_injection`);
  (Connexion's validation, then the handler)

They read and write the request's facts (`sandbox/request_facts.py`) and the extras' state
(`sandbox/extras/`); none of them keeps state of its own.
"""
