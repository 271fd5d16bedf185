"""The sandbox's ASGI layers, each in its own module, in the order a request meets them:

* `guard.RequestStart`   outermost: the request's facts begin (activity id, clock), its id on the
                          answer, slashes merged, collection paths without their trailing slash;
* `journal_recording`     records the request in the tenant's request journal once answered;
* `guard.RequestGuard`   refuses what must never reach Connexion, puts the app's context in the scope;
  (Connexion's routing)
* `operation_tap`         notes the routed operation in the request's facts;
  (Connexion's token check, which notes the tenant)
* `rate_limiting`         counts the tenant's requests, refuses past the cap;
* `fault_injection`       injected faults and delays;
  (Connexion's validation, then the handler)

They read and write the request's facts (`sandbox/request_facts.py`) and the extras' state
(`sandbox/extras/`); none of them keeps state of its own.
"""
