"""After Connexion's routing, before its token check: note which operation the request is for."""

from __future__ import annotations

from ..request_facts import learn_operation


class OperationTap:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            learn_operation(scope)
        await self.app(scope, receive, send)
