"""The entrance: the sandbox's one outer ASGI layer, ahead of Connexion's and of the pipeline.

In one pass over each request, each concern in its own module:

* the request's facts begin (activity id, clock), slashes are merged (`guard.start`);
* the answer carries the activity id in `X-Activity-Id`, and starts only once the changes the
  request made are durable (`Store.defer_durability` and `Store.settle`: the TinyDB journal's
  group commit);
* the guard refuses what must never reach the pipeline (`guard.RequestGuard`);
* the request is recorded in its tenant's request journal once answered, refusals of the guard
  included (`journal_recording.JournalRecorder`).

They were three layers, each wrapping the next call and two of them the answer's `send`; a
request now goes through one call and one wrapper.
"""

from __future__ import annotations

from ..context import SCOPE_KEY
from .. import answers
from ..errors import Unavailable
from ..request_facts import facts_of
from ..stores import StoreUnavailable
from .guard import RequestGuard, start
from .journal_recording import MAX_ERROR_BODY, JournalRecorder


class Entrance:
    def __init__(self, app, context, max_body_bytes: int, recorder: JournalRecorder):
        self.app = app
        self.context = context
        self.guard = RequestGuard(context, max_body_bytes)
        self.recorder = recorder
        self.store = context.tenants.store

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            scope[SCOPE_KEY] = self.context
            await self.app(scope, receive, send)
            return
        scope = start(scope)
        stamp = (b"x-activity-id", facts_of(scope).activity_id.encode())
        unsynced = self.store.defer_durability()
        journaled = self.recorder.journaled(scope)
        status, error_body, replaced = 500, [], False

        async def answer(message):
            nonlocal status, replaced
            if replaced:  # the answer of a write that was rolled back: a 503 went instead
                return
            if message["type"] == "http.response.start":
                try:
                    await self.store.settle(unsynced)
                except StoreUnavailable as exc:  # a failed fsync rolled this request's change back
                    replaced, status = True, 503
                    await answers.send(scope, send, Unavailable(str(exc)), headers=(stamp,))
                    return
                status = message["status"]
                message = dict(message, headers=[*message.get("headers", ()), stamp])
            elif journaled and status >= 400 and message["type"] == "http.response.body":
                if sum(map(len, error_body)) < MAX_ERROR_BODY:
                    error_body.append(message.get("body", b""))
            await send(message)

        try:
            admitted = await self.guard.admit(scope, receive, answer)
            if admitted is not None:
                await self.app(*admitted, answer)
        finally:
            try:
                await self.store.settle(unsynced)  # (no answer was sent)
            except StoreUnavailable:
                pass  # nobody to tell: no answer went out
            if journaled:
                self.recorder.record(scope, status, b"".join(error_body))
