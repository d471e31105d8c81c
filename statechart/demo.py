"""``statechart demo``: a realistic store to look at, in well under a minute.

On a fresh SQLite file in a folder of its own, the demo validates every machine, fills the store
with thousands of instances by replaying real lifecycles (seeded random prefixes: an instance
created an hour ago got through its first hour), shows the lifecycle metrics, migrates delivery
and onboarding to their latest versions, renders diagrams, and says what to open and try next.

The population is a small discrete-event simulation on a :class:`VirtualClock` that is the
store's clock: creations, events and due timers are applied in time order, so timers fire when
they are due (a restaurant that never answers cancels the order after 10 minutes) and the
youngest instances are left with pending timers. Steps run many to a transaction.
"""

from __future__ import annotations

import heapq
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import attrs

from .clock import VirtualClock
from .durations import format_duration
from .errors import LoadError, StatechartError
from .examples import EXAMPLE_FOLDERS, examples_root
from .machine import Machine, load
from .migrate.chain import load_step
from .migrate.runner import MigrationSummary, migrate
from .render.graphviz import dot_available, render_dot, render_file, render_migration_dot
from .text_tables import format_table

__all__ = ["DemoResult", "run_demo", "LIFECYCLES", "demo_root"]

Echo = Callable[[str], Any]
#: One lifecycle: (weight, steps); a step is (event, data, seconds after the previous step).
Lifecycle = tuple[float, tuple[tuple[str, Any, float], ...]]

M, H, D = 60.0, 3600.0, 86400.0

LIFECYCLES: dict[str, tuple[Lifecycle, ...]] = {
    "delivery": (
        (6, (("RESTAURANT_ACCEPTED", None, 2 * M), ("FOOD_READY", None, 15 * M),
             ("COURIER_ACCEPTED", {"courier": "courier"}, 1 * M), ("PICKED_UP", None, 8 * M),
             ("DELIVERED", None, 20 * M))),
        (2, (("RESTAURANT_ACCEPTED", None, 3 * M), ("FOOD_READY", None, 18 * M), ("COURIER_DECLINED", None, 1 * M),
             ("COURIER_DECLINED", None, 1 * M), ("COURIER_ACCEPTED", {"courier": "courier"}, 1 * M),
             ("PICKED_UP", None, 10 * M), ("DELIVERED", None, 25 * M))),
        (1, (("RESTAURANT_REJECTED", None, 4 * M),)),
        (1, (("RESTAURANT_ACCEPTED", None, 2 * M), ("CUSTOMER_CANCELED", None, 6 * M))),
        (1, (("RESTAURANT_ACCEPTED", None, 2 * M),)),  # food never reported ready: the 20m timer moves on
        (0.5, ()),  # the restaurant never answers: canceled after 10 minutes
    ),
    "onboarding": (
        (4, ()),  # welcome, a day's wait, the first drip
        (1, (("UNSUBSCRIBED", None, 6 * H),)),
    ),
    "registration": (
        (6, (("ACCOUNT_CREATED", None, 2), ("PROFILE_PROVISIONED", None, 30), ("EMAIL_VERIFIED", None, 20 * M))),
        (2, (("ACCOUNT_CREATED", None, 2), ("EMAIL_VERIFIED", None, 5 * M), ("PROFILE_FAILED", None, 1 * M),
             ("PROFILE_PROVISIONED", None, 1 * M))),
        (1, (("ACCOUNT_CREATED", None, 2), ("PROFILE_FAILED", None, 1 * M), ("PROFILE_FAILED", None, 1 * M),
             ("PROFILE_FAILED", None, 1 * M), ("ACCOUNT_DELETED", None, 10))),
        (1, (("ACCOUNT_CREATED", None, 2), ("PROFILE_PROVISIONED", None, 30))),  # never verifies: expires in 24h
        (0.5, (("ACCOUNT_REJECTED", {"reason": "email_taken"}, 3),)),
        (0.5, (("ACCOUNT_CREATED", None, 2), ("CANCELED_BY_USER", None, 2 * H), ("ACCOUNT_DELETED", None, 20))),
    ),
    "subscription": (
        (4, (("PAYMENT_METHOD_ADDED", None, 3 * D), ("PAYMENT_SUCCEEDED", None, 11 * D + H),
             ("PAYMENT_SUCCEEDED", None, 30 * D), ("PAYMENT_FAILED", None, 30 * D),
             ("PAYMENT_SUCCEEDED", None, 2 * D))),
        (2, (("PAYMENT_METHOD_ADDED", None, 1 * D), ("PAYMENT_SUCCEEDED", None, 13 * D + H),
             ("PAUSE", None, 10 * D), ("RESUME", None, 20 * D))),
        (1, (("PAYMENT_METHOD_ADDED", None, 2 * D), ("PAYMENT_FAILED", None, 12 * D + H))),  # grace, then canceled
        (2, ()),  # never adds a payment method: expires after the trial
        (1, (("CANCEL", None, 5 * D),)),
    ),
    "fulfillment": (
        (6, (("PAYMENT_AUTHORIZED", {}, 20), ("STOCK_RESERVED", None, 40),
             ("SHIPMENT_BOOKED", {"tracking": "tracking"}, 3 * M))),
        (1, (("STOCK_RESERVED", None, 30), ("PAYMENT_DECLINED", None, 1 * M))),
        (1, (("PAYMENT_AUTHORIZED", None, 20), ("OUT_OF_STOCK", None, 2 * M))),
        (1, (("PAYMENT_AUTHORIZED", None, 20), ("STOCK_RESERVED", None, 40), ("NO_CARRIER", None, 30 * M))),
        (0.5, (("STOCK_RESERVED", None, 30),)),  # the payment provider never answers: times out after 15m
    ),
}

#: Share of the population and how far back instances were created, per machine.
SHARES: dict[str, tuple[float, float]] = {
    "delivery": (0.35, 3 * H),
    "onboarding": (0.25, 3 * D),
    "registration": (0.15, 2 * D),
    "subscription": (0.15, 90 * D),
    "fulfillment": (0.10, 2 * H),
}

MIGRATE = ("delivery", "onboarding")


@attrs.frozen
class DemoResult:
    folder: Path
    database: Path
    store_url: str
    machines_dir: Path
    migrations_dir: Path
    validated: int
    invalid: tuple[str, ...]
    instances: dict[str, int]  # machine -> how many were created
    events: int  # events sent
    timers_fired: int
    pending_timers: int
    migrations: tuple[MigrationSummary, ...]
    files: dict[str, Path]  # "chart", "instance", "migration"
    dot_missing: bool
    seconds: float


def demo_root(cwd: Path | None = None) -> Path:
    """The folder holding ``machines/`` and ``migrations/``: the current directory when it has the
    demo's machines and their migrations, else the examples installed with the package."""
    here = Path.cwd() if cwd is None else Path(cwd)
    if all((here / kind / name).is_dir() for kind in EXAMPLE_FOLDERS for name in MIGRATE):
        return here
    try:
        return examples_root()
    except FileNotFoundError as missing:
        raise StatechartError(str(missing)) from None


def _copy_examples(source: Path, folder: Path) -> Path:
    """Copy the example machines and migrations into the demo's folder (a project of its own)."""
    for kind in EXAMPLE_FOLDERS:
        shutil.copytree(source / kind, folder / kind, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return folder


def _shown(path: Path) -> str:
    """A path as the user should type it: relative to the current directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _folder(folder: str | Path | None) -> Path:
    if folder is None:
        default = Path.cwd() / "statechart-demo"
        if default.exists():
            return Path(tempfile.mkdtemp(prefix="statechart-demo-"))
        default.mkdir(parents=True)
        return default
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _fresh_database(folder: Path) -> Path:
    for n in range(0, 1000):
        path = folder / ("demo.db" if n == 0 else f"demo-{n}.db")
        if not path.exists():
            return path
    raise FileExistsError(f"{folder} holds too many demo databases")  # pragma: no cover


def _table(echo: Echo, headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[int] = ()) -> None:
    for line in format_table(headers, rows, right=right, indent="    "):
        echo(line)


# -- the population -------------------------------------------------------------------------------------------
def _data(name: str, n: int, rng: random.Random) -> dict[str, Any]:
    if name == "delivery":
        return {"order_id": f"D-{10000 + n}"}
    if name == "onboarding":
        return {"email": f"user{n}@example.com"}
    if name == "registration":
        return {"user_id": f"u-{n}", "email": f"new{n}@example.com"}
    if name == "subscription":
        return {"customer": f"c-{n}", "plan": rng.choice(["basic", "basic", "pro", "team"])}
    if name == "fulfillment":
        return {"order_id": f"F-{20000 + n}", "amount": rng.choice([19, 42, 99, 250])}
    return {}


def _payload(template: Any, n: int) -> Any:
    if not template:
        return template
    values = {"courier": f"courier-{n % 40}", "tracking": f"TRK{n:06d}"}
    return {k: values.get(v, v) for k, v in template.items()}


def _plan(machines: Sequence[str], total: int, end: float, rng: random.Random) -> list[tuple]:
    """(time, seq, kind, machine, id, event or data, payload): creations and events, created at
    random moments in the machine's span, each instance following a random prefix of a lifecycle."""
    shares = {m: SHARES[m][0] for m in machines}
    weight = sum(shares.values())
    items: list[tuple] = []
    seq = 0
    for index, name in enumerate(machines):
        count = round(total * shares[name] / weight) if index < len(machines) - 1 else \
            total - sum(round(total * shares[m] / weight) for m in machines[:-1])
        lifecycles = LIFECYCLES[name]
        span = SHARES[name][1]
        for n in range(1, max(count, 0) + 1):
            instance_id = f"{name}-{n:05d}"
            moment = end - span * rng.random() ** 1.5  # more young instances than old ones
            items.append((moment, seq, "create", name, instance_id, _data(name, n, rng), None))
            seq += 1
            steps = rng.choices([s for _, s in lifecycles], weights=[w for w, _ in lifecycles])[0]
            for event, template, after in steps[:rng.randint(len(steps) // 2, len(steps))]:
                moment += after * rng.uniform(0.5, 1.5)
                if moment > end:
                    break
                items.append((moment, seq, "send", name, instance_id, event, _payload(template, n)))
                seq += 1
    heapq.heapify(items)
    return items


def _populate(store: Any, clock: VirtualClock, machines: Sequence[str], total: int, end: float,
              seed: int) -> tuple[dict[str, int], int, int]:
    items = _plan(machines, total, end, random.Random(seed))
    backend = store.backend
    created = {m: 0 for m in machines}
    done: set[str] = set()
    events = fired = 0

    def next_due() -> float | None:
        row = backend.execute("SELECT MIN(due_at) FROM statechart_timers").fetchone()
        return row[0] if row and row[0] is not None else None

    def fire_until(moment: float) -> int:
        count = 0
        while True:
            due = next_due()
            if due is None or due > moment:
                return count
            clock.set(due)
            for receipt in store.fire_due(1000):
                count += 1
                if receipt.done:
                    done.add(receipt.instance_id)

    while items:
        with backend.transaction():
            for _ in range(500):
                if not items:
                    break
                moment, _seq, kind, name, instance_id, what, payload = heapq.heappop(items)
                fired += fire_until(moment)
                clock.set(moment)
                if kind == "create":
                    stored = store.create_many(name, [what], ids=[instance_id], version=1, actor="demo")[0]
                    created[name] += 1
                    if stored.done:
                        done.add(instance_id)
                elif instance_id not in done:
                    receipt = store.send(instance_id, what, payload, actor="demo")
                    events += 1
                    if receipt.done:
                        done.add(instance_id)
    with backend.transaction():
        fired += fire_until(end)
    clock.set(end)
    return created, events, fired


# -- the demo -------------------------------------------------------------------------------------------------
def run_demo(folder: str | Path | None = None, instances: int = 3000, echo: Echo = print, *,
             progress: Callable[[str], Any] | None = None, seed: int = 2024) -> DemoResult:
    """Run the whole demo (see the module docstring); ``progress(label)`` may return a callable
    ``(done, total)`` (with an optional ``close()``) that draws the migration's progress."""
    from .store import Store

    started = time.perf_counter()
    out = _folder(folder)
    database = _fresh_database(out).resolve()
    root = demo_root()
    if root != Path.cwd():  # the installed examples: a copy in the demo folder, to read and edit
        root = _copy_examples(root, out)
    machines_dir, migrations_dir = root / "machines", root / "migrations"
    url = f"sqlite:///{database}"

    echo(f"statechart demo: a store at {database}")
    echo("")
    echo(f"1. Validating the machines in {machines_dir}")
    loaded: list[Machine] = []
    invalid: list[str] = []
    for file in sorted(p for p in machines_dir.rglob("v*.y*ml") if p.suffix in (".yaml", ".yml")):
        try:
            machine = load(file)
        except LoadError as error:
            invalid.append(str(file))
            echo(f"    FAIL {file.relative_to(machines_dir)}: {len(error.problems)} problem(s)")
            for problem in error.problems[:5]:
                echo(f"      {problem}")
            continue
        loaded.append(machine)
        echo(f"    ok   {file.relative_to(machines_dir)}  ({machine.name} v{machine.version}, "
             f"{len(machine.states)} states)")

    end = float(int(time.time()))
    clock = VirtualClock(end - max(span for _, span in SHARES.values()))
    store = Store.open(url, clock=clock)
    try:
        store.register(*loaded)
        versions: dict[str, list[int]] = {}
        for machine in loaded:
            versions.setdefault(machine.name, []).append(machine.version)
        missing = [m for m in MIGRATE if 1 not in versions.get(m, [])]
        if missing:
            raise StatechartError(  # pragma: no cover - the project ships them
                f"the demo needs {', '.join(f'{m} v1' for m in missing)} in {machines_dir}")
        population = [m for m in SHARES if m in versions and (m in MIGRATE or min(versions[m]) == 1)]

        echo("")
        echo(f"2. Creating {instances} instances of {', '.join(population)} by replaying their lifecycles")
        populate_started = time.perf_counter()
        created, events, fired = _populate(store, clock, population, instances, end, seed)
        pending = store.backend.execute("SELECT COUNT(*) FROM statechart_timers").fetchone()[0]
        echo(f"    {sum(created.values())} instances, {events} events, {fired} timers fired, {pending} timers "
             f"pending ({time.perf_counter() - populate_started:.1f}s)")

        echo("")
        echo("3. Lifecycle metrics (store.metrics())")
        metrics = store.metrics(stuck_after=2 * H)
        _table(echo, ("machine", "version", "instances", "active", "done"),
               [(p.machine, f"v{p.version}", p.instances, p.active, p.done) for p in metrics.instances],
               right=(2, 3, 4))
        ev = metrics.events
        echo(f"    events: {ev.applied} applied, {ev.unhandled} unhandled, {ev.rejected} rejected "
             f"(illegal rate {ev.illegal_rate:.1%}); outbox: {metrics.outbox_unpublished} unpublished")
        echo(f"    stuck for {format_duration(metrics.stuck_after)} or more: {metrics.stuck_instances} instance(s)")
        _table(echo, ("machine", "state", "stuck", "longest"),
               [(s.machine, s.state, s.count, format_duration(s.max_seconds))
                for s in sorted(metrics.stuck, key=lambda s: -s.count)[:6]], right=(2, 3))

        # the counts of the migration diagram are the population before the migration
        v1 = store.machine("delivery", 1)
        before = {s: store.count("delivery", version=1, state=s) for s in v1.model.states
                  if s in v1.states and v1.states[s].is_atomic}
        before = {s: n for s, n in before.items() if n}

        echo("")
        echo("4. Migrating to the latest versions")
        summaries = []
        for name in MIGRATE:
            bar = progress(f"migrating {name}") if progress is not None else None
            try:
                summary = migrate(store, name, migrations=migrations_dir, batch_size=500, progress=bar)
            finally:
                if bar is not None and hasattr(bar, "close"):
                    bar.close()
            summaries.append(summary)
            echo(f"    {name} -> v{summary.to_version}: {summary.migrated} migrated, {summary.already_current} "
                 f"already current, {summary.failed} failed in {summary.seconds:.2f}s "
                 f"({summary.rate:,.0f} instances/s)")

        echo("")
        echo("5. Rendering diagrams")
        missing_dot = not dot_available()
        ext = ".dot" if missing_dot else ".svg"
        if missing_dot:
            echo("    Graphviz `dot` is not installed: writing .dot files (render them with "
                 "`dot -Tsvg FILE -o FILE.svg`, or install graphviz for SVG)")
        latest = store.machine("delivery")
        counts = {s: store.count("delivery", version=latest.version, state=s) for s in latest.states
                  if s != "(root)" and latest.states[s].is_atomic}
        files: dict[str, Path] = {}
        files["chart"] = render_file(render_dot(latest, counts={s: n for s, n in counts.items() if n}),
                                     out / f"delivery-v{latest.version}{ext}")
        chosen = None
        for state in ("courier_assigned", "dispatching", "delivering", "preparing", "offered"):
            found = store.list("delivery", version=latest.version, state=state, limit=1)
            if found:
                chosen = found[0]
                break
        if chosen is None:
            chosen = store.list("delivery", limit=1)[0]
        files["instance"] = render_file(render_dot(latest, configuration=chosen.configuration, data=chosen.data,
                                                   instance=chosen.id, revision=chosen.revision,
                                                   pending=chosen.pending_sends, now=store.clock.now()),
                                        out / f"instance-{chosen.id}{ext}")
        step = load_step(migrations_dir / "delivery" / "v1_to_v2.py", "delivery")
        files["migration"] = render_file(
            render_migration_dot(v1, store.machine("delivery", 2), step, counts=before),
            out / f"delivery-v1-to-v2{ext}")
        echo(f"    chart of delivery v{latest.version} (instances per state): {files['chart']}")
        echo(f"    instance {chosen.id} (highlighted): {files['instance']}")
        echo(f"    migration delivery v1 -> v2 (instances per arrow): {files['migration']}")
    finally:
        store.close()

    seconds = time.perf_counter() - started
    echo("")
    echo(f"Done in {seconds:.1f}s. Open:")
    for path in files.values():
        echo(f"    {path}")
    echo("Try next:")
    store_args = f"--store sqlite:///{_shown(database)} --machines {_shown(machines_dir)}"
    echo(f"    statechart instances list --machine delivery --state dispatching {store_args}")
    echo(f"    statechart instances show {chosen.id} {store_args}")
    echo(f"    statechart metrics {store_args}")
    echo(f"    statechart migrations status delivery {store_args} --migrations {_shown(migrations_dir)}")
    return DemoResult(out, database, url, machines_dir, migrations_dir, len(loaded), tuple(invalid), created,
                      events, fired, pending, tuple(summaries), files, missing_dot, seconds)
