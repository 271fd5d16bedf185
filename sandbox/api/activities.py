"""GET /activities/, GET and PUT /activities/{activity_id}: the caller's requests as activities
(any valid token; each client sees its own)."""

from .. import activities
from ..context import current
from . import one, page


def _entries(user) -> list[dict]:
    return current().extras.request_journal.entries(user)


async def list_activities(user, parent_id=None, limit=None, offset=None):
    # No sandbox activity has sub-activities (they come from batch uploads): with parent_id, none match.
    found = [] if parent_id is not None else [activities.of_entry(entry) for entry in _entries(user)]
    return page(found, limit, offset)


async def get_activity(user, activity_id):
    journal = current().extras.request_journal
    return one(activities.find(_entries(user), activity_id, journal.capacity))


async def update_activity(user, activity_id, body):
    journal = current().extras.request_journal
    return one(activities.transition(activities.find(_entries(user), activity_id, journal.capacity),
                                     body["transition"]))
