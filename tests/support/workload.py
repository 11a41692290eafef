"""A mixed write workload that keeps a ledger of every accepted command, and its reference model.

Writers send creates, replaces, patches and deletes through the command API. Each cold contact
has one writer, so its accepted order is the writer's send order; each hot contact is patched
by every writer, each on a field of its own, so its final state is known whatever the
interleaving. The ledger holds only commands answered ``202``: a 503 is not an acceptance.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from contacts_domain import empty_fields, normalize_contact
from support.auth import api_session

#: The field each writer owns on the hot contacts.
HOT_FIELDS = ("company", "job_title", "notes", "last_name")
NAMES = ("Ada", "Grace", "Rosa", "Alan", "Edsger", "Barbara")
COMPANIES = (None, "Acme", "Initech", "Globex", "Umbrella")


@dataclass(frozen=True)
class Command:
    """One accepted command: what was asked and the operation to check."""

    operation_id: str
    contact_id: str
    kind: str  # created | replaced | patched | deleted
    data: dict[str, Any]


@dataclass
class Ledger:
    accepted: list[Command] = field(default_factory=list)
    refused: int = 0  # 503 (a dependency down): not accepted, nothing promised
    #: (monotonic time the request started, contact id) of every 503 on an existing contact.
    refusals: list[tuple[float, str]] = field(default_factory=list)

    def uncertain(self, fault_started: float, slack_s: float = 0.1) -> set[str]:
        """Contacts refused a command that was in flight when the fault began: its message may
        have reached the queue before the connection broke (a lost reply), so their in-order
        state is unknown. Commands started after that were refused before reaching SQS."""
        return {cid for started, cid in self.refusals if started <= fault_started + slack_s}

    unexpected: list[str] = field(default_factory=list)  # any other answer: a defect
    lock: threading.Lock = field(default_factory=threading.Lock)

    def by_contact(self) -> dict[str, list[Command]]:
        grouped: dict[str, list[Command]] = {}
        for command in self.accepted:
            grouped.setdefault(command.contact_id, []).append(command)
        return grouped


def normalized(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    if kind == "deleted":
        return {}
    return normalize_contact(data, partial=kind == "patched", default_region="US")


class Workload:
    """Drive ``writers`` threads against ``command_url`` until ``stop()``, as the session's API
    key (``default``), or with ``headers`` (another workspace's credentials)."""

    def __init__(
        self,
        command_url: str,
        *,
        writers: int = 4,
        seed: int = 0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.command_url = command_url
        self.headers = headers
        self.writers = writers
        self.rng = random.Random(seed)
        self.ledger = Ledger()
        self.hot: list[str] = []
        self.cold: dict[int, list[str]] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._session = threading.local()

    # -- sending --------------------------------------------------------------------------

    def _http(self) -> requests.Session:
        if not hasattr(self._session, "s"):
            self._session.s = api_session()
            self._session.s.headers.update(self.headers or {})
        return self._session.s  # type: ignore[no-any-return]

    def send(self, method: str, contact_id: str | None, kind: str, data: dict[str, Any]) -> bool:
        """Send one command; record it when accepted. Returns whether it was accepted."""
        url = f"{self.command_url}/v1/contacts" + (f"/{contact_id}" if contact_id else "")
        started = time.monotonic()
        try:
            answer = self._http().request(method, url, json=data or None, timeout=15)
        except requests.RequestException as exc:
            with self.ledger.lock:
                self.ledger.unexpected.append(f"{method} {url}: {exc!r}")
            return False
        with self.ledger.lock:
            if answer.status_code == 202:
                body = answer.json()
                self.ledger.accepted.append(
                    Command(body["operation_id"], body["id"], kind, normalized(kind, data))
                )
                return True
            if answer.status_code == 503 and "Retry-After" in answer.headers:
                self.ledger.refused += 1
                if contact_id:
                    self.ledger.refusals.append((started, contact_id))
                return False
            self.ledger.unexpected.append(f"{method} {url}: {answer.status_code} {answer.text}")
            return False

    def setup(self, cold_per_writer: int = 4, hot: int = 3) -> None:
        """Create the hot and cold contacts (before any fault)."""
        for i in range(hot):
            assert self.send("POST", None, "created", {"first_name": f"Hot{i}"})
            self.hot.append(self.ledger.accepted[-1].contact_id)
        for w in range(self.writers):
            self.cold[w] = []
            for i in range(cold_per_writer):
                assert self.send("POST", None, "created", {"first_name": f"W{w}C{i}"})
                self.cold[w].append(self.ledger.accepted[-1].contact_id)

    def start(self, pause_s: float = 0.02) -> None:
        for w in range(self.writers):
            rng = random.Random(self.rng.random())
            thread = threading.Thread(target=self._writer, args=(w, rng, pause_s), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _writer(self, w: int, rng: random.Random, pause_s: float) -> None:
        counter = 0
        while not self._stop.is_set():
            counter += 1
            if rng.random() < 0.4 and w < len(HOT_FIELDS):
                name = HOT_FIELDS[w]
                value = f"w{w}-{counter}" if name != "last_name" else rng.choice(NAMES)
                self.send("PATCH", rng.choice(self.hot), "patched", {name: value})
            else:
                cid = rng.choice(self.cold[w])
                kind = rng.choice(["replaced", "patched", "patched", "deleted"])
                if kind == "replaced":
                    data = {"first_name": rng.choice(NAMES), "company": rng.choice(COMPANIES)}
                    self.send("PUT", cid, kind, data)
                elif kind == "patched":
                    self.send("PATCH", cid, kind, {"company": rng.choice(COMPANIES)})
                else:
                    self.send("DELETE", cid, kind, {})
            time.sleep(pause_s)


@dataclass(frozen=True)
class Expected:
    fields: dict[str, Any] | None  # None: absent or deleted
    outcomes: dict[str, tuple[str, str | None]]  # operation id → (status, reason)


def expected_state(commands: list[Command]) -> Expected:
    """Apply one contact's accepted commands in accepted order with plain last-write semantics.

    Valid for contacts with one writer, and for hot contacts (only patches of disjoint fields
    after the create, so the interleaving of writers does not matter).
    """
    model: dict[str, Any] | None = None
    outcomes: dict[str, tuple[str, str | None]] = {}
    for command in commands:
        if command.kind in ("created", "replaced"):
            model = {**empty_fields(), **command.data}
            outcomes[command.operation_id] = ("applied", None)
        elif model is None:
            outcomes[command.operation_id] = ("rejected", "not_found")
        elif command.kind == "deleted":
            model = None
            outcomes[command.operation_id] = ("applied", None)
        else:
            model.update(command.data)
            outcomes[command.operation_id] = ("applied", None)
    return Expected(model, outcomes)
