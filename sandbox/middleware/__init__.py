"""The sandbox's ASGI layers, in the order a request meets them (docs/architecture.md):

* `entrance.Entrance`     outermost, one layer for three concerns, each in its own module:
                          the request's facts begin (activity id, clock), its id on the answer,
                          slashes merged, collection paths without their trailing slash
                          (`guard.start`); the answer held until the request's writes are
                          durable; refusals of what must never reach the pipeline, the app's
                          context in the scope (`guard.RequestGuard`); the request recorded in the
                          tenant's request journal once answered (`journal_recording`);
  (Connexion's exception layer and Swagger UI, for what follows)
* `pipeline.Pipeline`     every request under the API base and to the token endpoint: routing,
                          token and scopes, the extras (`extras_gate`: the tenant's rate limit,
                          `rate_limiting`, then injected faults and delays, `fault_injection`),
                          parameters and body checked, the handler called, its answer written;
  (Connexion's router, for the routes outside the contract: the console, `/`, `/healthz`)

They read and write the request's facts (`sandbox/request_facts.py`) and the extras' state
(`sandbox/extras/`); none of them keeps state of its own. Errors are answered by `answers.py`.
"""
