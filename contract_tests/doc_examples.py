"""The curl examples of the seed document, parsed with their documented responses.

The document ships inside the kit (`contract_tests/data/`), so an installed kit replays it too.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

SEED_DOC = Path(__file__).resolve().parent / "data" / "pokitdok-scheduling-v4.md"
ORIGINAL_HOST = "https://platform.pokitdok.com"
_CURL = re.compile(r"```shell\n(?P<body>\s*curl.*?)```", re.S)
_RESPONSE = re.compile(r"> Response:\s*```\n(?P<body>.*?)```", re.S)


@dataclass
class DocExample:
    title: str
    method: str
    path: str  # with the query string, host removed
    body: dict | None
    documented_response: object | None

    @property
    def id(self) -> str:
        return f"{self.method} {self.path.split('?')[0]}"

    @property
    def changes_state(self) -> bool:
        """Creates, books, updates, cancels or deletes (registering a patient is idempotent)."""
        return self.method != "GET" and not self.path.startswith("/api/v4/schedule/patient/")


def load_examples(doc: Path = SEED_DOC) -> list[DocExample]:
    """Curl blocks, each with the first documented response that follows it.

    Blocks are matched by their own patterns rather than by pairing fences:
    the document has a stray fence after one C# example.
    """
    text = doc.read_text(encoding="utf-8")
    curls = list(_CURL.finditer(text))
    examples = []
    for match in curls:
        titles = re.findall(r"^> (Example .*)$", text[:match.start()], re.M)
        examples.append((match.start(), _parse_curl(titles[-1] if titles else "", match["body"])))
    for response in _RESPONSE.finditer(text):
        before = [example for start, example in examples if start < response.start()]
        if before and before[-1].documented_response is None:
            before[-1].documented_response = json.loads(response["body"])
    return [example for _, example in examples]


def _parse_curl(title: str, command: str) -> DocExample:
    # The document has one typo, "- H"; shlex then sees "-" and "H" as words.
    words = shlex.split(command.replace("- H ", "-H ").replace("\\\n", " "))
    method, body, url = "GET", None, None
    for index, word in enumerate(words):
        if word.startswith("-X") and len(word) > 2:
            method = word[2:]
        elif word == "-X":
            method = words[index + 1]
        elif word == "-d":
            body = json.loads(words[index + 1])
        elif word.startswith(ORIGINAL_HOST):
            url = word
    assert url, f"no URL in {command!r}"
    return DocExample(title, method, url[len(ORIGINAL_HOST):], body, None)


def same_shape(actual, documented, where: str = "response") -> list[str]:
    """Where `actual` differs in shape from the documented answer: every documented key must be
    there with a value of the same JSON type, recursively (extra keys are fine)."""
    problems: list[str] = []
    if isinstance(documented, list):
        if not isinstance(actual, list) or not actual:
            return [f"{where}: expected a non-empty list, got {_short(actual)}"]
        for item in actual:
            problems += same_shape(item, documented[0], f"{where}[]")
    elif isinstance(documented, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {_short(actual)}"]
        for key, value in documented.items():
            if key not in actual:
                problems.append(f"{where}: missing documented field {key!r}")
            else:
                problems += same_shape(actual[key], value, f"{where}.{key}")
    elif type(actual) is not type(documented) and not (_is_number(actual) and _is_number(documented)):
        problems.append(f"{where}: {_short(actual)} is not like the documented {_short(documented)}")
    return problems


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) < 80 else text[:77] + "..."
