"""The model-based stateful suite: random sequences of every scheduling operation, each answer
compared with the reference model (model.py).

`ModelMachine` is a Hypothesis `RuleBasedStateMachine`. Its rules open slots (at several
distances from the kit's location, of up to two appointment types, with dates written in
several ISO 8601 forms), book them (for two patients, with `_uuid` or its alias `uuid`),
rebook, update descriptions, cancel, cancel again, delete open and booked slots, read them by
uuid, search (provider, an unknown provider, location and radius, patient, an unknown patient,
appointment type, date windows whose edges are the records' own dates, one second inside or
outside them), open overlapping slots and register patients. After every step it checks:

* the status the contract gives the step in the model's state;
* the answer's record, field by field, against the model;
* read-after-write: the record the step wrote reads back by uuid and through a search that
  must list it (or, once deleted, must not), as the model says;
* every search both ways (model.py): each result satisfies every filter, every record of the
  model that satisfies them is there, with the model's content.

At the end of each sequence every record is compared once more through searches, then removed.
A failure shrinks to the shortest failing sequence and is reported as a numbered shell script
(`Script`): the client id the run used, the secret as a variable, how to get `$ACCESS_TOKEN`,
and each request with the slots it opened held in shell variables.
"""

from __future__ import annotations

import json
import shlex
import uuid as uuidlib
from datetime import datetime, timedelta
from urllib.parse import urlencode

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from .api import Api
from .model import BEARINGS, MILES_PER_KM, Model, Query, Record, destination, miles_between
from .oracle import APPOINTMENT, APPOINTMENTS, PATIENTS, SLOT, SLOTS, parse_datetime, written
from .report import ContractViolation, excerpt, response_line

# Distances (miles, at one of eight bearings) of the model's slots from the kit's location, and the radii its
# searches use: no distance lies within 10 % of a radius, so the rounding of a correct
# implementation's geometry never decides.
DISTANCES = (0.0, 0.4, 6.0, 18.0, 31.0)
RADII = (None, "1mi", "5", "20mi", "25km", "35mi")  # None: the default, 10 miles
MILES_PER_DEGREE_LATITUDE = 69.055
DURATIONS = (15, 30, 60, 90)  # minutes; slots start at least two hours apart (the kit's clock)
SECOND = timedelta(seconds=1)

_TEXT = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"))
NAMES = st.text(_TEXT, min_size=1, max_size=24)
DESCRIPTIONS = st.one_of(st.text(_TEXT, min_size=1, max_size=60), st.text(_TEXT, min_size=250, max_size=1000))


def _lower(value) -> str:
    return str(value).lower()


def _unknown(data, label: str) -> str:
    """An id nobody has used, drawn like every other value (a replayed sequence sends the same)."""
    return str(uuidlib.UUID(int=data.draw(st.integers(0, 2**128 - 1), label=label), version=4))


class Script:
    """The requests of one sequence, as a numbered shell script a developer can paste."""

    def __init__(self, run):
        self.run = run
        self.steps: list[str] = []
        self.names: dict[str, str] = {}  # slot uuid -> shell variable

    def name_slot(self, slot_uuid: str) -> str:
        return self.names.setdefault(_lower(slot_uuid), f"SLOT_{len(self.names) + 1}")

    def _substitute(self, text: str) -> str:
        for slot_uuid, name in self.names.items():
            text = text.replace(slot_uuid, "${" + name + "}")
        return text

    def add(self, note: str, method: str, path: str, query: dict | None, body, answer, *, opens: bool = False):
        url_path = self._substitute(path)
        if query:
            url_path += "?" + self._substitute(urlencode(query, doseq=True))
        words = ["curl -s", f"-X {method}", '-H "Authorization: Bearer $ACCESS_TOKEN"']
        if body is not None:
            text = json.dumps(body, ensure_ascii=False)
            escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`")
            words += ["-H 'Content-Type: application/json'", f'-d "{self._substitute(escaped)}"']
        words.append(f'"$BASE{url_path}"')
        line = " ".join(words)
        got = f"#    got: {excerpt(response_line(answer), 300)}"
        number = len(self.steps) + 1
        if opens:
            slot = self.run.wire.payload(answer) if answer.status_code < 300 else None
            slot_uuid = slot.get("pd_appointment_uuid") if isinstance(slot, dict) else None
            if isinstance(slot_uuid, str):
                name = self.name_slot(slot_uuid)
                unwrap = "d=json.load(sys.stdin); d=d.get('data', d) if isinstance(d, dict) else d; " \
                         "print(d['pd_appointment_uuid'])"
                line = f"{name}=$({line} | python3 -c \"import json,sys; {unwrap}\")"
        self.steps.append(f"# {number}. {note}\n{line}\n{got}")

    def render(self, failing: str) -> str:
        target = self.run.target
        tenant = target.main
        base = target.base_url
        token_url = target.token_url
        header = [
            "#!/bin/sh",
            f"# The shortest failing sequence found (seed {self.run.seed}); its last step fails: {failing}",
        ]
        if target.app is not None:
            header.append("# (an in-process target: serve it, e.g. `pokitdok-sandbox serve`, and set BASE and TOKEN_URL)")
        header += [
            f"BASE={shlex.quote(base)}",
            f"TOKEN_URL={shlex.quote(token_url)}",
            f"CLIENT_ID={shlex.quote(tenant.client_id)}",
            'CLIENT_SECRET="${CLIENT_SECRET:?set CLIENT_SECRET to the secret given to the kit}"',
            "ACCESS_TOKEN=$(curl -s -u \"$CLIENT_ID:$CLIENT_SECRET\" -d grant_type=client_credentials \"$TOKEN_URL\" "
            "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')",
        ]
        return "\n".join(header + self.steps)


class ModelMachine(RuleBasedStateMachine):
    """Set `api` (an Api of the run) on a subclass before running it."""

    api: Api = None
    violations: list = []  # every violation a sequence raised, first first (set a fresh list per run)

    def __init__(self):
        super().__init__()
        self.run = self.api.run
        self.target = self.run.target
        self.wire = self.run.wire
        self.options = self.run.options
        self.model = Model()
        self.script = Script(self.run)
        self.patients = [_lower(p) for p in self.options.patients]
        types = list(dict.fromkeys([self.target.appointment_type] + list(self.target.appointment_types)))
        self.types = types[:2]
        self.first_start: datetime | None = None
        self.last_end: datetime | None = None
        self.failed = False  # a step failed: the end-of-sequence checks would only hide it

    # -- sending and failing ------------------------------------------------------------
    def send(self, note: str, method: str, path: str, *, slot: str | None = None, query: dict | None = None,
             body=None, opens: bool = False):
        params = {"pd_appointment_uuid": slot} if slot is not None else None
        answer = self.api.call(method, path, params=params, query=query, json=body, conform=False)
        self.script.add(note, method, path.format(**(params or {})), query, body, answer, opens=opens)
        try:
            self.api.conforms(method, path, answer, params=params, query=query, body=body, model_checked=True)
        except ContractViolation as violation:
            self.failed = True
            self.violations.append(violation)
            violation.curl = self.script.render(f"{violation.check}")
            violation.args = (violation.render(),)
            violation.recorded = False  # replaces the one-request finding with the sequence's script
            raise
        return answer

    def fail(self, check: str, expected: str, answer, operation: str, actual: str | None = None, rule: str = ""):
        self.failed = True
        violation = ContractViolation(check, expected, answer, operation=operation, actual=actual,
                                      curl=self.script.render(check), rule=rule or check)
        self.violations.append(violation)
        raise violation

    def expect_status(self, answer, status: int, why: str, method: str, path: str) -> None:
        if answer.status_code != status:
            self.fail(f"model: {why}", f"{status} ({why})", answer, f"{method} {path}", rule=f"status of: {why}")

    def payload(self, answer, method: str, path: str):
        try:
            return self.wire.payload(answer)
        except ValueError:
            self.fail("answers are JSON", "a JSON body", answer, f"{method} {path}")

    def compare(self, record: Record, item, answer, method: str, path: str, what: str) -> None:
        differences = record.differences(item)
        if differences:
            self.fail(f"model: {what}", f"the record as the model holds it: {record.view()}", answer,
                      f"{method} {path}", actual="; ".join(differences), rule=f"content of: {what}")

    # -- reading back --------------------------------------------------------------------
    def read_back(self, record: Record, after: str) -> None:
        """An acknowledged write counts once it reads back by uuid and through search."""
        answer = self.send(f"read back {self.script.name_slot(record.uuid)} by uuid", "GET", APPOINTMENT,
                           slot=record.uuid)
        self.expect_status(answer, 200, f"read-after-write: the record {after} reads back by uuid",
                           "GET", APPOINTMENT)
        items = self.payload(answer, "GET", APPOINTMENT)
        if not (isinstance(items, list) and len(items) == 1):
            self.fail("model: read-after-write (by uuid)", "a one-element list", answer, f"GET {APPOINTMENT}")
        self.compare(record, items[0], answer, "GET", APPOINTMENT, f"read-after-write by uuid, {after}")
        # Through search: the record's type in the sequence's whole window, so every other record of
        # the sequence tells whether the filters hold too (search_slots probes the window's edges).
        step = len(self.script.steps)
        query = Query(start=self.first_start, end=self.last_end,
                      appointment_type=record.appointment_type if step % 4 < 2 else None,
                      date_offset=(None, 2, 0)[step % 3])
        if record.booked:
            query.patient = record.patient["_uuid"].lower()
        elif len(self.script.steps) % 2:
            query.provider = record.provider.lower()
        else:  # by place: the smallest radius of the kit's that holds the record
            miles = miles_between(self.options.location, record.location)
            text = next(r for r in ("1mi", "20mi", "35mi", "100mi") if float(r[:-2]) > miles * 1.1)
            query.location, query.radius, query.radius_text = tuple(self.options.location), float(text[:-2]), text
        # now and then in pages of two, which must together be the whole answer
        self.search(query, f"read back {self.script.name_slot(record.uuid)} through search", after,
                    page_size=2 if step % 5 == 4 else None)

    def read_gone(self, slot_uuid: str, start: datetime, end: datetime) -> None:
        answer = self.send(f"the deleted {self.script.name_slot(slot_uuid)} is gone", "GET", APPOINTMENT,
                           slot=slot_uuid)
        self.expect_status(answer, 404, "a deleted slot is 404", "GET", APPOINTMENT)
        # the whole sequence's window: the delete removed that slot only
        self.search(Query(provider=self.options.provider_uuid.lower(), start=min(start, self.first_start),
                          end=max(end, self.last_end)), "a deleted slot is not listed, the others are", "after delete")

    def search(self, query: Query, note: str, after: str = "", page_size: int | None = None) -> list:
        """One search, checked both ways. When the contract pages, the pages are followed through
        `meta.next` (with `page_size`: pages of that many records, which must together be the
        unpaged answer: nothing skipped, nothing twice, in the same order)."""
        params = query.params()
        if page_size is not None and self.wire.paged:
            params = {**params, "limit": page_size}
        answer = self.send(note, "GET", APPOINTMENTS, query=params)
        self.expect_status(answer, 200, "a search with a selector answers 200", "GET", APPOINTMENTS)
        items = self.payload(answer, "GET", APPOINTMENTS)
        if not isinstance(items, list):
            self.fail("model: search answers a list", "a list", answer, f"GET {APPOINTMENTS}")
        items = list(items)
        pages = 0
        while self.wire.paged and self.wire.meta(answer).get("next") and pages < 30:
            link = self.wire.meta(answer)["next"]
            next_params = self._page_params(link, params, answer)
            answer = self.send(f"{note} (the next page, as meta.next links it)", "GET", APPOINTMENTS,
                               query=next_params)
            self.expect_status(answer, 200, "the next page of a search answers 200", "GET", APPOINTMENTS)
            page = self.payload(answer, "GET", APPOINTMENTS)
            items += page if isinstance(page, list) else []
            pages += 1
        problems = self.model.check_search(query, items) + self._strangers(items)
        if problems:
            kind = "search both ways" + (f" ({after})" if after else "")
            if page_size is not None:
                kind += f" (pages of {page_size})"
            self.fail(f"model: {kind}", f"every result matches {query.describe()}, every matching record of "
                      "the run is listed as the model holds it", answer, f"GET {APPOINTMENTS}",
                      actual="\n".join(problems[:8]), rule=f"{kind}: {_problem_kind(problems[0])}")
        if page_size is not None and self.wire.paged:
            whole = self.send(f"{note} (all in one page)", "GET", APPOINTMENTS, query=query.params())
            listed = self.payload(whole, "GET", APPOINTMENTS)
            uuids = [str(i.get("pd_appointment_uuid", "")).lower() for i in items if isinstance(i, dict)]
            wanted = [str(i.get("pd_appointment_uuid", "")).lower() for i in listed or [] if isinstance(i, dict)]
            if isinstance(listed, list) and self.wire.meta(whole).get("count") == len(listed) and uuids != wanted:
                self.fail("model: pages of a search", f"pages of {page_size} following meta.next give the "
                          "unpaged answer, in its order, nothing skipped or twice", whole, f"GET {APPOINTMENTS}",
                          actual=f"pages: {uuids}; unpaged: {wanted}", rule="paging: pages differ from the whole")
        for item in items:
            record = self.model.get(item.get("pd_appointment_uuid", "")) if isinstance(item, dict) else None
            if record is not None:
                record.learn(item)
        return items

    def _strangers(self, items) -> list[str]:
        """Results the run never created, inside the sequence's own times. In a tenant of its own only
        the sequence writes there (the kit's clock gives every part of the run other times), so such a
        record was stored by a request the server refused or answered for another slot."""
        if not self.target.main.fresh or self.first_start is None:
            return []
        problems = []
        for index, item in enumerate(items):
            uuid = str(item.get("pd_appointment_uuid", "")).lower() if isinstance(item, dict) else ""
            start = parse_datetime(item.get("start_date")) if isinstance(item, dict) else None
            if uuid and uuid not in self.model.records and uuid not in self.model.deleted and start is not None \
                    and self.first_start <= start < self.last_end:
                problems.append(f"result {index} ({uuid}, start_date {item.get('start_date')!r}) was never created "
                                "by the run, yet lies among its slots in the run's own tenant (stored by a refused "
                                "request?)")
        return problems

    def _page_params(self, link: str, asked: dict, answer) -> dict:
        """The query of a `meta.next` link; it must be this search, at a later offset."""
        from urllib.parse import parse_qs, urlsplit

        parts = urlsplit(link)
        given = {k: (v if len(v) > 1 else v[0]) for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        same = {k: v for k, v in given.items() if k not in ("limit", "offset")}
        wanted = {k: ([str(x) for x in v] if isinstance(v, list) else str(v)) for k, v in asked.items()
                  if k not in ("limit", "offset")}
        if not parts.path.endswith(APPOINTMENTS) or _normalised(same) != _normalised(wanted):
            self.fail("model: meta.next links the next page", f"a link to {APPOINTMENTS} with the same filters "
                      f"{wanted}", answer, f"GET {APPOINTMENTS}", actual=f"meta.next {link!r}",
                      rule="paging: meta.next is not this search")
        return given

    # -- choosing records -------------------------------------------------------------
    def pick(self, data, deleted_too: bool = True, prefer=None) -> tuple[str, Record | None]:
        """A record of the model (or, now and then, a deleted one); `prefer`: records in the state
        the rule is about, picked most of the time so short sequences reach every transition.
        Records are offered in the order the sequence made them, never by uuid: the server picks the
        uuids, and the same choices must pick the same records when a sequence is replayed."""
        preferred = [uuid for uuid, record in self.model.records.items() if prefer and prefer(record)]
        if preferred and data.draw(st.integers(0, 3), label="preferred state") > 0:
            slot = data.draw(st.sampled_from(preferred), label="slot")
            return slot, self.model.get(slot)
        choices = list(self.model.records)
        if deleted_too and self.model.deleted and data.draw(st.integers(0, 4), label="a deleted one") == 0:
            choices = list(self.model.deleted)
        slot = data.draw(st.sampled_from(choices), label="slot")
        return slot, self.model.get(slot)

    def has_records(self) -> bool:
        return bool(self.model.records)

    def _location(self, miles: float, bearing: float = 0) -> tuple[float, float]:
        """A place `miles` from the kit's location along `bearing` (degrees, 0 north, 90 east): off
        the meridian, only a distance that reads both coordinates finds it where it is."""
        return destination(self.options.location, miles, bearing)

    # -- rules ----------------------------------------------------------------------------
    @initialize(data=st.data())
    def open_slots_and_book_two(self, data):
        """Every sequence starts with records in both states, one patient holding two bookings, so
        short ones reach every transition (and a cancel shows whether it touches that booking only)."""
        for _ in range(3):
            self.open_slot(data)
        self.book(data)
        self.book(data)

    @rule(data=st.data())
    def open_slot(self, data):
        miles = data.draw(st.sampled_from(DISTANCES), label="miles from the kit's location")
        kind = data.draw(st.sampled_from(self.types), label="appointment_type")
        minutes = data.draw(st.sampled_from(DURATIONS), label="minutes")
        offset = data.draw(st.sampled_from([None, 0, 2]), label="date offset")
        micro = data.draw(st.sampled_from([0, 197709]), label="microseconds")
        allotted = self.target.next_slot_start()
        start = allotted + timedelta(minutes=data.draw(st.integers(0, 20), label="offset"), microseconds=micro)
        end = start + timedelta(minutes=minutes)
        place = self._location(miles, data.draw(st.sampled_from(BEARINGS), label="bearing"))
        body = {"pd_provider_uuid": self.options.provider_uuid, "location": list(place), "appointment_type": kind,
                "start_date": written(start, offset), "end_date": written(end, offset)}
        self.target.issued_starts.add(body["start_date"])
        answer = self.send(f"open a slot {miles:g} miles away", "POST", SLOTS, body=body, opens=True)
        slot = self.payload(answer, "POST", SLOTS) if answer.status_code < 300 else None
        if isinstance(slot, dict) and isinstance(slot.get("pd_appointment_uuid"), str):
            self.target.record_slot(self.target.main, slot["pd_appointment_uuid"])
        self.expect_status(answer, self.wire.created, "an open slot of the kit's provider is created", "POST", SLOTS)
        if not isinstance(slot, dict) or not isinstance(slot.get("pd_appointment_uuid"), str):
            self.fail("model: the created slot", "the slot, with its pd_appointment_uuid", answer, f"POST {SLOTS}")
        record = self.model.add(Record(uuid=_lower(slot["pd_appointment_uuid"]), provider=self.options.provider_uuid,
                                       location=place, appointment_type=kind, start=start, end=end,
                                       allotted=allotted))
        record.learn(slot)
        self.first_start = min(self.first_start or start, start)
        self.last_end = max(self.last_end or end, end)
        self.compare(record, slot, answer, "POST", SLOTS, "the answer to opening a slot")
        self.read_back(record, "after it was opened")

    @precondition(has_records)
    @rule(data=st.data())
    def open_an_overlapping_slot(self, data):
        """A slot near another in time: overlapping it at the same place (409), or touching it (ending
        as it starts, starting as it ends) or at the same time at another place (200). The model decides
        which: a slot of the kit's provider is refused when it overlaps one of the run's at the same place."""
        _slot, record = self.pick(data, deleted_too=False)
        shape = data.draw(st.sampled_from(["same times", "5 minutes later", "5 minutes earlier", "ending as it starts",
                                           "starting as it ends", "at the same time elsewhere"]), label="shape")
        miles = None
        if shape == "at the same time elsewhere":
            miles = data.draw(st.sampled_from([d for d in DISTANCES if self._location(d) != tuple(record.location)]),
                              label="miles from the kit's location")
        self.open_next_to(record, shape, miles)

    def open_next_to(self, record: Record, shape: str, miles: float | None = None, check_back: bool = True) -> None:
        start, end, place = record.start, record.end, record.location
        if shape == "5 minutes later":
            start, end = start + timedelta(minutes=5), end + timedelta(minutes=5)
        elif shape == "5 minutes earlier":
            start, end = start - timedelta(minutes=5), end - timedelta(minutes=5)
        elif shape == "ending as it starts":  # 5 minutes: never reaches the slot the kit's clock gave before it
            start, end = start - timedelta(minutes=5), start
        elif shape == "starting as it ends":
            start, end = end, end + timedelta(minutes=5)
        elif shape == "at the same time elsewhere":
            place = self._location(miles)
        if record.allotted is not None and not (record.allotted - timedelta(minutes=5) <= start
                                                and end <= record.allotted + timedelta(minutes=115)):
            # beyond the record's share of the kit's clock another part of the run may hold a slot
            shape, start, end, place = "same times", record.start, record.end, record.location
        clash = self.model.clash(place, start, end)
        if clash is None and any(r.start == start for r in self.model.records.values()):
            # Two slots starting together at different places are ordered by nothing a provider search
            # states, so pages could list them either way: the kit never makes such a tie.
            if shape == "at the same time elsewhere":
                while any(r.start == start for r in self.model.records.values()):
                    start, end = start + timedelta(minutes=1), end + timedelta(minutes=1)
            if shape != "at the same time elsewhere" or (record.allotted is not None
                                                           and end > record.allotted + timedelta(minutes=115)):
                shape, start, end, place = "same times", record.start, record.end, record.location
            clash = self.model.clash(place, start, end)
        body = {"pd_provider_uuid": self.options.provider_uuid, "location": list(place),
                "appointment_type": record.appointment_type, "start_date": start.isoformat(),
                "end_date": end.isoformat()}
        self.target.issued_starts.add(body["start_date"])
        what = f"a slot {shape} {self.script.name_slot(record.uuid)}"
        if clash is not None:
            what += f" (overlapping {self.script.name_slot(clash.uuid)})"
        answer = self.send(f"open {what}", "POST", SLOTS, body=body, opens=clash is None)
        made = self.payload(answer, "POST", SLOTS) if answer.status_code < 300 else None
        if isinstance(made, dict) and isinstance(made.get("pd_appointment_uuid"), str):
            self.target.record_slot(self.target.main, made["pd_appointment_uuid"])
        if clash is not None:
            self.expect_status(answer, 409, "a slot overlapping another of the provider at the same place is refused",
                               "POST", SLOTS)
            if not check_back:
                return
            # a refused slot is not created either
            self.search(Query(provider=self.options.provider_uuid.lower(), start=min(start, clash.start),
                              end=max(end, clash.end)), f"no slot was created by the refused {what}", "after a refusal")
            return
        self.expect_status(answer, self.wire.created, "a slot that only touches another, or overlaps it at another "
                           "place, is created (no overlap at the same place)", "POST", SLOTS)
        if not isinstance(made, dict) or not isinstance(made.get("pd_appointment_uuid"), str):
            self.fail("model: the created slot", "the slot, with its pd_appointment_uuid", answer, f"POST {SLOTS}")
        new = self.model.add(Record(uuid=_lower(made["pd_appointment_uuid"]), provider=self.options.provider_uuid,
                                    location=place, appointment_type=record.appointment_type, start=start, end=end,
                                    allotted=record.allotted))
        new.learn(made)
        self.first_start = min(self.first_start, start)
        self.last_end = max(self.last_end, end)
        self.compare(new, made, answer, "POST", SLOTS, "the answer to opening a slot")
        if check_back:
            self.read_back(new, "after it was opened")

    @precondition(has_records)
    @rule(data=st.data())
    def book(self, data):
        booked_one = data.draw(st.booleans(), label="rebook or double-book a booked slot")
        slot, record = self.pick(data, prefer=lambda r: r.booked == booked_one)
        holders = [r.patient["_uuid"] for r in self.model.records.values() if r.booked]
        if record is not None and not record.booked and holders and data.draw(st.integers(0, 3), label="holder") > 0:
            # mostly a patient who holds a booking already: a cancel must then leave that one alone
            who = data.draw(st.sampled_from(holders), label="patient")
        else:
            who = data.draw(st.sampled_from(self.patients), label="patient")
        alias = data.draw(st.sampled_from(["_uuid", "uuid"]), label="patient id key")
        if record is not None and record.booked and record.patient["_uuid"] == who:
            names = {k: v for k, v in record.patient.items() if k != "_uuid"}  # a rebooking, as first sent
        else:
            names = {"first_name": data.draw(NAMES, label="first_name"), "last_name": data.draw(NAMES, label="last_name")}
        body = {"patient": {alias: who, **names}}
        if data.draw(st.booleans(), label="with a description"):
            body["description"] = data.draw(DESCRIPTIONS, label="description")
        state = "deleted" if record is None else ("open" if not record.booked else
                                                 ("booked by this patient" if record.patient["_uuid"] == who
                                                  else "booked by another patient"))
        answer = self.send(f"book {self.script.name_slot(slot)} ({state}) for patient {who}", "PUT", APPOINTMENT,
                           slot=slot, body=body)
        if record is None:
            self.expect_status(answer, 404, "booking a deleted slot is 404", "PUT", APPOINTMENT)
            return
        if state == "booked by another patient":
            self.expect_status(answer, 409, "a slot booked by another patient is refused", "PUT", APPOINTMENT)
            self.read_back(record, "after a refused booking (unchanged)")
            return
        why = "booking an open slot" if state == "open" else "rebooking by the same patient (idempotent)"
        self.expect_status(answer, 200, why, "PUT", APPOINTMENT)
        record.booked = True
        record.patient = {"_uuid": who, **names}
        if "description" in body:
            record.description = body["description"]
        self.compare(record, self.payload(answer, "PUT", APPOINTMENT), answer, "PUT", APPOINTMENT,
                     f"the answer to {why}")
        self.read_back(record, f"after {why}")

    @precondition(has_records)
    @rule(data=st.data())
    def update_description(self, data):
        slot, record = self.pick(data)
        text = data.draw(DESCRIPTIONS, label="description")
        answer = self.send(f"describe {self.script.name_slot(slot)}", "PUT", APPOINTMENT, slot=slot,
                           body={"description": text})
        if record is None:
            self.expect_status(answer, 404, "updating a deleted slot is 404", "PUT", APPOINTMENT)
            return
        self.expect_status(answer, 200, "a description update (booked or not)", "PUT", APPOINTMENT)
        record.description = text
        self.compare(record, self.payload(answer, "PUT", APPOINTMENT), answer, "PUT", APPOINTMENT,
                     "the answer to a description update")
        self.read_back(record, "after a description update")

    @precondition(has_records)
    @rule(data=st.data())
    def cancel(self, data):
        booked_one = data.draw(st.booleans(), label="cancel a booked slot")
        slot, record = self.pick(data, prefer=lambda r: r.booked == booked_one)
        state = "deleted" if record is None else ("booked" if record.booked else "open")
        answer = self.send(f"cancel {self.script.name_slot(slot)} ({state})", "DELETE", APPOINTMENT, slot=slot)
        if record is None:
            self.expect_status(answer, 404, "cancelling a deleted slot is 404", "DELETE", APPOINTMENT)
            return
        if not record.booked:
            self.expect_status(answer, 409, "cancelling an open slot is refused", "DELETE", APPOINTMENT)
            self.read_back(record, "after a refused cancel (unchanged)")
            return
        self.expect_status(answer, 200, "cancelling a booking", "DELETE", APPOINTMENT)
        former = record.patient["_uuid"].lower()
        record.booked, record.patient = False, None
        self.compare(record, self.payload(answer, "DELETE", APPOINTMENT), answer, "DELETE", APPOINTMENT,
                     "the answer to a cancel (the slot open again)")
        self.read_back(record, "after a cancel (open again, no patient)")
        # the cancel touched that booking only: the patient's other bookings are all still there
        self.search(Query(patient=former, start=self.first_start, end=self.last_end),
                    f"the other bookings of {former} after the cancel", "after a cancel")

    @precondition(has_records)
    @rule(data=st.data())
    def delete_slot(self, data):
        open_one = data.draw(st.booleans(), label="delete an open slot")
        slot, record = self.pick(data, prefer=lambda r: r.booked != open_one)
        state = "deleted" if record is None else ("booked" if record.booked else "open")
        answer = self.send(f"delete {self.script.name_slot(slot)} ({state})", "DELETE", SLOT, slot=slot)
        if record is None:
            self.expect_status(answer, 404, "deleting a deleted slot is 404", "DELETE", SLOT)
            return
        if record.booked:
            self.expect_status(answer, 409, "deleting a booked slot is refused (cancel first)", "DELETE", SLOT)
            self.read_back(record, "after a refused delete (unchanged)")
            return
        self.expect_status(answer, 200, "deleting an open slot", "DELETE", SLOT)
        self.compare(record, self.payload(answer, "DELETE", SLOT), answer, "DELETE", SLOT,
                     "the answer to deleting a slot (the slot deleted)")
        self.model.remove(record.uuid)
        self.target.main.created_slots.pop(record.uuid, None)
        self.read_gone(record.uuid, record.start, record.end)
        method, path, body, what = data.draw(st.sampled_from([
            ("PUT", APPOINTMENT, {"patient": {"_uuid": self.patients[0]}}, "book"),
            ("PUT", APPOINTMENT, {"description": "after its deletion"}, "describe"),
            ("DELETE", APPOINTMENT, None, "cancel"), ("DELETE", SLOT, None, "delete again")]), label="use it")
        answer = self.send(f"{what} the deleted {self.script.name_slot(record.uuid)}", method, path,
                           slot=record.uuid, body=body)
        self.expect_status(answer, 404, f"a deleted slot is 404 (to {what} it too)", method, path)

    @precondition(has_records)
    @rule(data=st.data())
    def get(self, data):
        slot, record = self.pick(data)
        answer = self.send(f"get {self.script.name_slot(slot)}", "GET", APPOINTMENT, slot=slot)
        if record is None:
            self.expect_status(answer, 404, "a deleted slot is 404", "GET", APPOINTMENT)
            return
        self.expect_status(answer, 200, "a slot reads back by uuid", "GET", APPOINTMENT)
        items = self.payload(answer, "GET", APPOINTMENT)
        if not (isinstance(items, list) and len(items) == 1):
            self.fail("model: get by uuid", "a one-element list", answer, f"GET {APPOINTMENT}")
        self.compare(record, items[0], answer, "GET", APPOINTMENT, "get by uuid")

    @rule(data=st.data())
    def get_unknown(self, data):
        unknown = _unknown(data, "uuid")
        method, path = data.draw(st.sampled_from([("GET", APPOINTMENT), ("PUT", APPOINTMENT),
                                                  ("DELETE", APPOINTMENT), ("DELETE", SLOT)]), label="operation")
        body = {"description": "nobody's"} if method == "PUT" else None
        answer = self.send(f"{method} an unknown slot", method, path, slot=unknown, body=body)
        self.expect_status(answer, 404, "an unknown slot is 404", method, path)

    @precondition(has_records)
    @rule(data=st.data())
    def search_slots(self, data):
        kind = data.draw(st.sampled_from(["provider", "unknown provider", "location", "patient", "unknown patient"]),
                         label="search by")
        query = Query()
        if kind == "provider":
            query.provider = self.options.provider_uuid.lower()
        elif kind == "unknown provider":
            query.provider = _unknown(data, "unknown provider")
        elif kind == "location":
            query.location = tuple(self.options.location)
            radius = data.draw(st.sampled_from(RADII), label="radius")
            if radius is not None:
                amount = float(radius.rstrip("mik"))
                query.radius = amount * MILES_PER_KM if radius.endswith("km") else amount
                query.radius_text = radius
            if data.draw(st.booleans(), label="with a provider"):
                query.provider = self.options.provider_uuid.lower()
        elif kind == "patient":
            query.patient = data.draw(st.sampled_from(self.patients), label="patient")
        else:
            query.patient = _unknown(data, "unknown patient")
        if data.draw(st.booleans(), label="with a type"):
            query.appointment_type = data.draw(st.sampled_from(self.types), label="appointment_type")
        records = sorted(self.model.records.values(), key=lambda r: r.start)
        window = data.draw(st.sampled_from(["run", "exact", "start inside", "end inside", "from", "until",
                                            "between"]), label="window")
        first, second = (data.draw(st.sampled_from(records), label="edge record") for _ in range(2))
        if window == "run":
            query.start, query.end = self.first_start, self.last_end
        elif window == "exact":
            query.start, query.end = first.start, first.end
        elif window == "start inside":  # one second after the start: the record is outside
            query.start, query.end = first.start + SECOND, first.end
        elif window == "end inside":
            query.start, query.end = first.start, first.end - SECOND
        elif window == "from":
            query.start, query.end = first.start, self.last_end
        elif window == "until":
            query.start, query.end = self.first_start, first.end
        else:
            low, high = sorted([first, second], key=lambda r: r.start)
            query.start, query.end = low.start, high.end
        query.date_offset = data.draw(st.sampled_from([None, None, 0, 2]), label="date offset")
        page_size = data.draw(st.sampled_from([None, None, 1, 2]), label="page size")
        self.search(query, f"search by {kind}, window {window}" + (f", pages of {page_size}" if page_size else ""),
                    page_size=page_size)

    @rule(data=st.data())
    def register_patient(self, data):
        who = data.draw(st.sampled_from(self.patients + ["unknown"]), label="patient")
        provider = data.draw(st.sampled_from([self.options.provider_uuid, "unknown"]), label="provider")
        patient = who if who != "unknown" else _unknown(data, "unknown patient")
        body = {"pd_patient_uuid": patient,
                "pd_provider_uuid": provider if provider != "unknown" else _unknown(data, "unknown provider")}
        if data.draw(st.booleans(), label="with a location"):
            body["location"] = list(self.options.location)
        answer = self.send(f"register patient {who} with provider {provider}", "POST", PATIENTS, body=body)
        if "unknown" in (who, provider):
            self.expect_status(answer, 404, "registering an unknown patient or with an unknown provider is 404",
                               "POST", PATIENTS)
            return
        self.expect_status(answer, 200, "registering a known patient with a known provider (idempotent)",
                           "POST", PATIENTS)
        registered = self.payload(answer, "POST", PATIENTS)
        shown = registered.get("uuid") if isinstance(registered, dict) else None
        if _lower(shown) != patient:
            self.fail("model: registration answers the patient", f"the patient record with uuid {patient}", answer,
                      f"POST {PATIENTS}", actual=f"uuid {shown!r}")

    # -- the end of each sequence --------------------------------------------------------
    def teardown(self):
        try:
            if self.model.records and self.first_start is not None and not self.failed:
                self.refusals_at_the_end()
                self.search(Query(provider=self.options.provider_uuid.lower(), start=self.first_start,
                                  end=self.last_end), "at the end: every open slot of the sequence", "at the end")
                for who in self.patients:
                    self.search(Query(patient=who, start=self.first_start, end=self.last_end),
                                f"at the end: the bookings of {who}", "at the end")
                for selector in ("provider", "patient"):
                    query = Query(start=self.first_start, end=self.last_end)
                    setattr(query, selector, str(uuidlib.UUID(int=len(self.script.steps), version=4)))
                    self.search(query, f"at the end: an unknown {selector} has none of them", "at the end")
        finally:
            self._clean_up()

    def refusals_at_the_end(self):
        """Whatever the sequence did, the refusals of the contract hold in its final state: an
        overlapping slot, cancelling an open slot, deleting a booked one, another patient's booking."""
        records = list(self.model.records.values())
        first = records[0]
        body = {"pd_provider_uuid": self.options.provider_uuid, "location": list(first.location),
                "appointment_type": first.appointment_type, "start_date": (first.start + timedelta(minutes=5)).isoformat(),
                "end_date": (first.end + timedelta(minutes=5)).isoformat()}
        answer = self.send(f"at the end: a slot overlapping {self.script.name_slot(first.uuid)}", "POST", SLOTS,
                           body=body)
        if answer.status_code < 300:
            made = self.payload(answer, "POST", SLOTS)
            if isinstance(made, dict) and isinstance(made.get("pd_appointment_uuid"), str):
                self.target.record_slot(self.target.main, made["pd_appointment_uuid"])
        self.expect_status(answer, 409, "a slot overlapping another of the provider at the same place is refused",
                           "POST", SLOTS)
        # and one that only touches it, or overlaps it elsewhere, is created (checked by the searches at the end)
        shape = ("ending as it starts", "at the same time elsewhere", "starting as it ends")[len(self.script.steps) % 3]
        self.open_next_to(first, shape, next(d for d in DISTANCES if self._location(d) != tuple(first.location)),
                          check_back=False)
        for gone in list(self.model.deleted)[-1:]:
            answer = self.send(f"at the end: book the deleted {self.script.name_slot(gone)}", "PUT", APPOINTMENT,
                               slot=gone, body={"patient": {"_uuid": self.patients[0]}})
            self.expect_status(answer, 404, "a deleted slot is 404 (to book it too)", "PUT", APPOINTMENT)
        open_one = next((r for r in records if not r.booked), None)
        if open_one is not None:
            answer = self.send(f"at the end: cancel the open {self.script.name_slot(open_one.uuid)}", "DELETE",
                               APPOINTMENT, slot=open_one.uuid)
            self.expect_status(answer, 409, "cancelling an open slot is refused", "DELETE", APPOINTMENT)
        booked = next((r for r in records if r.booked), None)
        if booked is not None:
            answer = self.send(f"at the end: delete the booked {self.script.name_slot(booked.uuid)}", "DELETE",
                               SLOT, slot=booked.uuid)
            self.expect_status(answer, 409, "deleting a booked slot is refused (cancel first)", "DELETE", SLOT)
            other = next(p for p in self.patients if p != booked.patient["_uuid"].lower())
            answer = self.send(f"at the end: another patient books {self.script.name_slot(booked.uuid)}", "PUT",
                               APPOINTMENT, slot=booked.uuid, body={"patient": {"_uuid": other}})
            self.expect_status(answer, 409, "a slot booked by another patient is refused", "PUT", APPOINTMENT)

    def _clean_up(self):
        tenant = self.target.main
        for record in list(self.model.records.values()):
            try:
                path = f"/schedule/appointments/{record.uuid}"
                if record.booked:
                    self.target.request("DELETE", path, tenant=tenant)
                gone = self.target.request("DELETE", f"/schedule/slots/{record.uuid}", tenant=tenant)
                if gone.status_code < 300:
                    tenant.created_slots.pop(record.uuid, None)
            except Exception:  # noqa: BLE001 - left for the run's own cleanup, which reports leftovers
                pass


def _normalised(params: dict) -> dict:
    """Query parameters compared as values: dates and numbers as the kit reads them."""
    from .oracle import parse_datetime

    out = {}
    for key, value in params.items():
        values = value if isinstance(value, list) else [value]
        if key == "location" and len(values) == 1:
            values = str(values[0]).split(",")
        normal = []
        for item in values:
            moment = parse_datetime(item) if key in ("start_date", "end_date") else None
            try:
                normal.append(moment.isoformat() if moment else (float(item) if key == "location" else str(item).lower()))
            except ValueError:
                normal.append(str(item))
        out[key] = normal
    return out


def _problem_kind(problem: str) -> str:
    """A problem line without its values: the rule part that names the kind of mismatch."""
    for marker, kind in (("breaks the filter: patient_uuid", "patient filter"),
                         ("breaks the filter: a search without patient_uuid", "open slots only"),
                         ("breaks the filter: appointment_type", "appointment_type filter"),
                         ("breaks the filter: start_date", "start_date filter"),
                         ("breaks the filter: end_date", "end_date filter"),
                         ("belongs to provider", "pd_provider_uuid filter"),
                         ("outside the radius", "location radius"),
                         ("is missing", "a matching record is missing"),
                         ("listed twice", "a record listed twice"),
                         ("deleted by the run", "a deleted record listed"),
                         ("then distance", "order by distance"),
                         ("ordered by start date", "order"),
                         ("never created by the run", "a record the run never created"),
                         ("not a list", "not a list")):
        if marker in problem:
            return kind
    return "a listed record differs from the model"


def machine_settings(run, examples: int, steps: int) -> settings:
    return settings(max_examples=examples, stateful_step_count=steps, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck), derandomize=False, print_blob=False,
                    report_multiple_bugs=False)
