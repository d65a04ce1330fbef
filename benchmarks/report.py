"""Turn a run's results into ``docs/benchmarks.md`` (tables) and the plot.

Every figure is a median over the interleaved rounds; ratios are to the
untraced variant (``none``) measured in the same rounds.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

VARIANTS = ("none", "otel", "sentry", "agentops")
TRACED = ("otel", "sentry", "agentops")
LABELS = {"none": "no tracing", "otel": "OpenTelemetry", "sentry": "Sentry", "agentops": "agentops-django"}
COLORS = {"none": "#9e9e9e", "otel": "#4c72b0", "sentry": "#8172b3", "agentops": "#dd8452"}


def med(values: Any) -> float | None:
    if isinstance(values, int | float):
        return float(values)
    values = [v for v in values or [] if v is not None]
    return statistics.median(values) if values else None


def fmt(value: float | None, spec: str = ".0f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def check(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


def targets(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target, measured, met) rows."""
    rows: list[tuple[str, str, str]] = []
    for db, table in results.get("inproc", {}).items():
        for path, row in table.items():
            base, otel, ours = med(row["none"]), med(row["otel"]), med(row["agentops"])
            if None in (base, otel, ours):
                continue
            added, otel_added = ours - base, otel - base
            rows.append(
                (
                    f"added µs per request ≤ ½ OpenTelemetry's ({db} {path}, in process)",
                    f"{added:.0f} µs vs OTel {otel_added:.0f} µs",
                    check(added <= otel_added / 2),
                )
            )
    for db, table in results.get("server", {}).items():
        for path, row in table.items():
            base, ours = med(row["none"]), med(row["agentops"])
            if base and ours:
                rows.append(
                    (
                        f"req/s under wrk ≥ 0.9x untraced ({db} {path})",
                        f"{ours / base:.2f}x (rounds {spread(row['agentops'], base)})",
                        check(ours >= 0.9 * base),
                    )
                )
    for db, table in results.get("server_cpu", {}).items():
        for path, row in table.items():
            ours, otel, base = (cpu_per_request(row, v) for v in ("agentops", "otel", "none"))
            if ours is not None and otel is not None and base is not None:
                rows.append(
                    (
                        f"CPU added per traced request (request + writer threads) ≤ ½ OpenTelemetry's ({db} {path})",
                        f"{ours - base:+.0f} µs vs OTel {otel - base:+.0f} µs (totals {ours:.0f} / {otel:.0f} / "
                        f"untraced {base:.0f} µs)",
                        check(ours - base <= (otel - base) / 2),
                    )
                )
    for pool, table in results.get("celery", {}).items():
        base, ours = med(table["none"]["tasks_per_s"]), med(table["agentops"]["tasks_per_s"])
        if base and ours:
            rows.append(
                (f"Celery tasks/s ≥ 0.95x untraced ({pool})", f"{ours / base:.2f}x", check(ours >= 0.95 * base))
            )
    writer = {(w["backend"], w["processes"]): w for w in json_lines(results, "writer")}
    one = writer.get(("postgresql", 1))
    many = [w for (backend, n), w in writer.items() if n > 1]
    if one:
        rows.append(
            (
                "writer ≥ 50,000 spans/s into PostgreSQL from one process",
                f"{one['spans_per_s']:,} spans/s (writer CPU {one['writer_cpu_us']} µs/span, "
                f"database {one['server_cpu_us']} µs/span)",
                check(one["spans_per_s"] >= 50_000),
            )
        )
    for w in many:
        rows.append(
            (
                f"no span lost with {w['processes']} writing processes ({w['backend']})",
                f"{w['stored']:,} of {w['spans']:,} stored, {w['spans_per_s']:,} spans/s",
                check(w["stored"] == w["spans"]),
            )
        )
    if not writer:
        rows.append(("writer ≥ 50,000 spans/s into PostgreSQL from one process", "not run", "n/a"))
    admin = results.get("admin", {})
    rows.append(
        (
            "admin list < 200 ms at 1M traces; 10,000-span trace page < 1 s; overview < 500 ms at 1M traces",
            "see §5" if admin.get("output") else admin.get("missing", "not run"),
            "see §5" if admin.get("output") else "n/a",
        )
    )
    for name, row in user_suite(results).items():
        rows.append(
            (
                f"a user's test suite ≤ 1.05x its wall time without the app ({name})",
                f"{row['ratio']:.2f}x",
                check(row["ratio"] <= 1.05),
            )
        )
    web = results.get("memory", {}).get("web", {})
    for name, row in web.items():
        if "database" not in name or not row.get("rss_kib") or "agentops" not in web:
            continue
        series = row["rss_kib"]
        growth = (series[-1] - series[len(series) // 2]) / 1024
        rows.append(
            (
                f"memory bounded, {name} (RSS growth over the second half of the run)",
                f"{growth:+.1f} MiB; peak {row['peak_kib'] / 1024:.0f} MiB vs "
                f"{web['agentops']['peak_kib'] / 1024:.0f} MiB with the database up",
                check(growth < 10),
            )
        )
    return rows


def spread(values: list[float], base: float) -> str:
    """The min-max of ``values`` as ratios to ``base``."""
    values = [v for v in values if v is not None]
    return f"{min(values) / base:.2f}-{max(values) / base:.2f}x" if values and base else "-"


def feature_costs(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(feature, where it runs, what it costs) rows of the ``features`` and in-process sections."""
    rows: list[tuple[str, str, str]] = []
    for db, row in results.get("query_recording", {}).items():
        if "per_query_us" in row:
            rows.append(
                (
                    f"SQL query recording ({db})",
                    "request or task thread",
                    f"{row['per_query_us']:.2f} µs per query, {row['per_request_us']:.1f} µs per request",
                )
            )
    features = results.get("features", {})
    for db, row in features.get("writer", {}).items():
        every = med(row.get("all", {}).get("writer_cpu_us"))
        for variant, feature in (("no rollup", "overview rollup"), ("no identity", "process identity")):
            without = med(row.get(variant, {}).get("writer_cpu_us"))
            if every is None or without is None:
                continue
            rows.append(
                (
                    f"{feature} ({db})",
                    "database writer thread",
                    f"{every - without:+.1f} µs per span (writer CPU {every:.1f} with it, {without:.1f} without)",
                )
            )
        plain = row.get("no span-name index", {})
        server, server_plain = med(row.get("all", {}).get("server_cpu_us")), med(plain.get("server_cpu_us"))
        if server is not None and server_plain is not None:
            rate, rate_plain = med(row["all"]["spans_per_s"]), med(plain["spans_per_s"])
            rows.append(
                (
                    f"span-name search index, `span:` ({db})",
                    "database server",
                    f"{server - server_plain:+.1f} µs per span (database CPU {server:.1f} with it, "
                    f"{server_plain:.1f} without; {fmt(rate, ',.0f')} vs {fmt(rate_plain, ',.0f')} spans/s)",
                )
            )
    pricing = features.get("pricing", {})
    if pricing.get("price_openai") is not None:
        rows.append(
            (
                "pricing (genai-prices)",
                "thread that ends an LLM call",
                f"{pricing['price_openai']:.1f} µs per priced call ({pricing.get('pricing_share_of_llm_call_pct')} % "
                "of a call to a local stand-in)",
            )
        )
    return rows


def cpu_per_request(row: dict[str, Any], variant: str) -> float | None:
    """Median CPU µs per request of ``variant``: its request thread plus its other threads."""
    cell = row.get(variant) or {}
    request, other = med(cell.get("request")), med(cell.get("other"))
    return None if request is None or other is None else request + other


def json_lines(results: dict[str, Any], section: str) -> list[Any]:
    """The ``{section: ...}`` JSON lines an external script printed."""
    return [
        line[section] for line in results.get(section, {}).get("json", []) if isinstance(line, dict) and section in line
    ]


def user_suite(results: dict[str, Any]) -> dict[str, Any]:
    """``benchmarks/user_suite.py``'s figures: {"db runner": {"without": [s], "with": [s], "ratio": r}}."""
    for line in results.get("user_suite", {}).get("json", []):
        if isinstance(line, dict) and "user_suite" in line:
            return line["user_suite"]
    return {}


def summary(results: dict[str, Any]) -> list[list[str]]:
    """The headline figures, one row per measure, one column per traced variant."""
    rows: list[list[str]] = []
    for db, table in results.get("inproc", {}).items():
        for path in ("/ping", "/db"):
            row = table.get(path)
            base = med(row["none"]) if row else None
            if base is not None:
                cells = [fmt(_minus(med(row[v]), base), "+.0f", " µs") for v in TRACED]
                rows.append([f"added per request, in process, `{path}` ({db})", *cells])
    for db, table in results.get("inproc_background_cpu", {}).items():
        row = table.get("/ping")
        if row:
            cells = [fmt(med(row[v]), ".0f", " µs") for v in TRACED]
            rows.append([f"CPU of background threads per request, `/ping` ({db})", *cells])
    for db, table in results.get("server", {}).items():
        for path in ("/ping", "/db", "/enqueue"):
            row = table.get(path)
            base = med(row["none"]) if row else None
            if base:
                cells = [fmt(_ratio(med(row[v]), base), ".2f", "x") for v in TRACED]
                rows.append([f"requests/s vs untraced, gunicorn + wrk, `{path}` ({db})", *cells])
    for db, table in results.get("server_cpu", {}).items():
        for path in ("/ping", "/db"):
            row = table.get(path)
            base = cpu_per_request(row, "none") if row else None
            if row and base is not None:
                cells = [fmt(_minus(cpu_per_request(row, v), base), "+.0f", " µs") for v in TRACED]
                rows.append([f"CPU added per request under wrk, every thread, `{path}` ({db})", *cells])
    for line in json_lines(results, "writer"):
        if line["processes"] == 1:
            rows.append(
                [f"spans stored per second, one process ({line['backend']})", "-", "-", f"{line['spans_per_s']:,}"]
            )
    for pool, table in results.get("celery", {}).items():
        base = med(table["none"]["tasks_per_s"])
        if base:
            cells = [fmt(_ratio(med(table[v]["tasks_per_s"]), base), ".2f", "x") for v in TRACED]
            rows.append([f"Celery tasks/s vs untraced ({pool})", *cells])
    return rows


README_START = "<!-- benchmarks:summary:start -->"
README_END = "<!-- benchmarks:summary:end -->"


def summary_table(results: dict[str, Any]) -> str:
    """The summary as a markdown table (the README shows it between its markers)."""
    lines = ["| measure | OpenTelemetry | Sentry | agentops-django |", "| --- | ---: | ---: | ---: |"]
    lines += ["| " + " | ".join(row) + " |" for row in summary(results)]
    return "\n".join(lines)


def update_readme(results: dict[str, Any], readme: Path) -> bool:
    """Replace the README's summary table with this run's; False if its markers are missing."""
    text = readme.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return False
    text = text[: start + len(README_START)] + "\n" + summary_table(results) + "\n" + text[end:]
    readme.write_text(text)
    return True


def write(results: dict[str, Any], md_path: Path, png_path: Path) -> None:
    """Write the markdown report and the plot."""
    plotted = plot(results, png_path)
    md_path.write_text(markdown(results, png_path if plotted else None, md_path))


def markdown(results: dict[str, Any], png_path: Path | None, md_path: Path) -> str:
    meta = results["meta"]
    out: list[str] = []
    add = out.append
    command = "python3 benchmarks/run.py" + (" --full" if meta["mode"] == "full" else "")
    add("# Benchmarks\n")
    add(
        f"Generated by `{command}` ({meta['mode']} mode) on {meta['date']}: {meta['cpus']} CPUs, "
        f"load average {meta['load_before'][0]:.2f} before and {meta.get('load_after', [0])[0]:.2f} after, "
        f"Python {meta['python']}, " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + "."
    )
    add(
        "\nVariants, each in processes of its own, measured in turn (A B C D A B C D ...) so that drift "
        "of the machine falls on all alike; figures are medians over the rounds:\n"
        "\n- **none**: no tracing;\n"
        "- **otel**: OpenTelemetry contrib's Django and Celery instrumentations, SDK `TracerProvider`, "
        "`BatchSpanProcessor`, an exporter that discards;\n"
        "- **sentry**: sentry-sdk, `traces_sample_rate=1.0`, Django and Celery integrations, a transport that "
        "discards;\n"
        "- **agentops**: `agentops_django` in `INSTALLED_APPS` with its defaults, writing every span to the "
        "site's database.\n"
    )
    if meta["mode"] != "full":
        add(
            f"> {meta['mode'].capitalize()} mode: short runs on a shared machine; read the figures as rough. "
            "`--full` gives the complete ones.\n"
        )
    if png_path is not None:
        add(f"![benchmarks]({png_path.relative_to(md_path.parent).as_posix()})\n")

    summary_rows = summary(results)
    if summary_rows:
        add("## Summary\n")
        add("| measure | OpenTelemetry | Sentry | agentops-django |\n| --- | ---: | ---: | ---: |")
        for row in summary_rows:
            add("| " + " | ".join(row) + " |")
        add("")

    add("## Targets\n")
    add("| target | measured | met |\n| --- | --- | --- |")
    for target, measured, met in targets(results):
        add(f"| {target} | {measured} | {met} |")
    add("")

    if results.get("inproc"):
        add("## 1. Django requests in process\n")
        add(
            "The WSGI handler called in-process with a prepared environ (Django's default middleware, "
            "`CONN_MAX_AGE=60`): median µs per request, and µs added to the untraced median.\n"
        )
        for db, table in results["inproc"].items():
            add(f"**{db}**\n")
            add("| view | none | otel | sentry | agentops | agentops' added ÷ OTel's |")
            add("| --- | ---: | ---: | ---: | ---: | ---: |")
            for path, row in table.items():
                base = med(row["none"])
                cells = [fmt(base, ".0f", " µs")]
                for variant in TRACED:
                    value = med(row[variant])
                    cells.append("-" if value is None or base is None else f"{value:.0f} µs (+{value - base:.0f})")
                ours, otel = med(row["agentops"]), med(row["otel"])
                ratio = (ours - base) / (otel - base) if None not in (ours, otel, base) and otel != base else None
                add(f"| `{path}` | " + " | ".join(cells) + f" | {fmt(ratio, '.2f')} |")
            add("")

    if results.get("query_recording"):
        add(
            "SQL recording (`RECORD_QUERIES`, on by default), in the agentops process: batches of `SELECT %s` "
            "through Django's cursor with a recorder current and with no wrapper at all, interleaved (µs added "
            "per query; the query alone for scale); the wrapper alone around a no-op; and per request the "
            "recorder's start and summing up (20 queries, two statements).\n"
        )
        add("| database | µs per query | the query alone | wrapper alone | µs per request |")
        add("| --- | ---: | ---: | ---: | ---: |")
        for db, row in results["query_recording"].items():
            cells = [fmt(row.get(key), ".2f") for key in ("per_query_us", "query_us", "wrapper_us")]
            add(f"| {db} | " + " | ".join(cells) + f" | {fmt(row.get('per_request_us'), '.1f')} |")
        add("")

    if results.get("inproc_background_cpu"):
        add(
            "CPU µs per request spent by the other threads of the same process (OpenTelemetry's batch exporter "
            "thread, Sentry's transport worker, agentops' database writer), measured with per-thread CPU clocks "
            "over each batch, the flush at its end included; this is host CPU too, on top of the latency above.\n"
        )
        add("| database | view | none | otel | sentry | agentops |\n| --- | --- | ---: | ---: | ---: | ---: |")
        for db, table in results["inproc_background_cpu"].items():
            for path, row in table.items():
                add(f"| {db} | `{path}` | " + " | ".join(fmt(med(row[v]), ".0f", " µs") for v in VARIANTS) + " |")
        add("")

    if results.get("server"):
        add("## 1b. A real server under load\n")
        add(
            "gunicorn, one sync worker on 127.0.0.1, under `wrk -t1 -c8`: median requests/s over the rounds, its ratio "
            "to untraced and the range of the rounds' ratios (min-max). Rounds are added while a series spreads "
            "wider than 10 % of its median.\n"
        )
        for db, table in results["server"].items():
            add(f"**{db}**\n")
            add("| view | none | otel | sentry | agentops |")
            add("| --- | ---: | ---: | ---: | ---: |")
            for path, row in table.items():
                base = med(row["none"])
                cells = [fmt(base, ".0f", "/s")]
                for variant in TRACED:
                    value = med(row[variant])
                    if value is None or not base:
                        cells.append("-")
                    else:
                        cells.append(f"{value:.0f}/s ({value / base:.2f}x, {spread(row[variant], base)})")
                add(f"| `{path}` | " + " | ".join(cells) + " |")
            add("")
            cpu = results.get("server_cpu", {}).get(db)
            if cpu:
                add(
                    "CPU per request of the worker process, µs (request thread + other threads: the writer, "
                    "exporters), read from the kernel's per-thread clocks once the other threads went idle:\n"
                )
                add("| view | none | otel | sentry | agentops |")
                add("| --- | ---: | ---: | ---: | ---: |")
                for path, row in cpu.items():
                    cells = []
                    for variant in VARIANTS:
                        cell = row.get(variant) or {}
                        request, other = med(cell.get("request")), med(cell.get("other"))
                        cells.append("-" if request is None else f"{request:.0f} + {other:.0f}")
                    add(f"| `{path}` | " + " | ".join(cells) + " |")
                add("")
            loads = results.get("server_load", {}).get(db)
            if loads:
                add(
                    f"{len(loads)} rounds; 1-minute load average at each round's start: "
                    + ", ".join(f"{v:.2f}" for v in loads)
                    + ".\n"
                )

    if results.get("celery"):
        add("## 2. Celery\n")
        add(
            "A real worker on Redis (a dedicated DB number and queue) runs N no-op tasks published beforehand; "
            "throughput is N over the time between a marker task before and after them. Publish cost: median µs "
            f"per `delay()` outside any request. Database: {meta.get('celery_db', '?')}.\n"
        )
        add("| pool | none | otel | sentry | agentops | publish µs none / otel / sentry / agentops |")
        add("| --- | ---: | ---: | ---: | ---: | --- |")
        for pool, table in results["celery"].items():
            base = med(table["none"]["tasks_per_s"])
            cells = [fmt(base, ".0f", "/s")]
            for variant in TRACED:
                value = med(table[variant]["tasks_per_s"])
                cells.append("-" if value is None or not base else f"{value:.0f}/s ({value / base:.2f}x)")
            publish = " / ".join(fmt(med(table[v]["publish_us"]), ".0f") for v in VARIANTS)
            label = "prefork `-c 2`" if pool == "prefork" else pool
            add(f"| {label} | " + " | ".join(cells) + f" | {publish} |")
        add("")
        inproc = results.get("inproc", {})
        for db, table in inproc.items():
            if "/enqueue" in table and "/ping" in table:
                costs = []
                for variant in VARIANTS:
                    enqueue, ping = med(table["/enqueue"][variant]), med(table["/ping"][variant])
                    costs.append(fmt(None if enqueue is None or ping is None else enqueue - ping, ".0f", " µs"))
                add(
                    f"Publishing inside a request (where agentops, OpenTelemetry and Sentry all make a producer span), "
                    f"`/enqueue` minus `/ping` in process on {db}, none / otel / sentry / agentops: "
                    + " / ".join(costs)
                    + "."
                )
        add("")

    sdk = results.get("sdk")
    if sdk:
        add("## 3. The SDK alone\n")
        add(
            "Median µs per operation, spans ended into a `BatchSpanProcessor` whose exporter discards. The floor is "
            "the bare OpenTelemetry SDK. LLM calls go to the stand-in server on loopback with the real `openai` "
            "client (the floor's is the uninstrumented call).\n"
        )
        add("| operation | µs | floor (bare OTel) |\n| --- | ---: | ---: |")
        floor = sdk.get("floor", {})
        ours = sdk.get("agentops", {})
        add(f"| bare OTel span (`start_span().end()`) | - | {fmt(med(floor.get('span')), '.1f')} |")
        add(f"| bare OTel current span (`start_as_current_span`) | - | {fmt(med(floor.get('current_span')), '.1f')} |")
        current = fmt(med(floor.get("current_span")), ".1f")
        add(f"| `start_trace` + `end_trace` | {fmt(med(ours.get('start_end_trace')), '.1f')} | {current} |")
        add(f"| `@agentops.tool` call in a trace | {fmt(med(ours.get('tool_call')), '.1f')} | {current} |")
        if "llm_call" in ours:
            a, b = med(ours["llm_call"]), med(floor["llm_call"])
            add(f"| OpenAI chat completion, instrumented (added) | {a:.0f} (+{a - b:.0f}) | {b:.0f} (uninstrumented) |")
        add("")

    for number, name, title in (("4", "writer", "The database writer"), ("5", "admin", "The admin")):
        entry = results.get(name)
        if entry is None:
            continue
        add(f"## {number}. {title}\n")
        if entry.get("missing"):
            add(entry["missing"] + ".\n")
            continue
        add(f"`{entry.get('command')}` (exit code {entry.get('returncode')}, {entry.get('seconds')} s):\n")
        add("```\n" + entry.get("output", "").strip() + "\n```\n")

    rows = feature_costs(results)
    if rows:
        add("## 4b. What each feature costs\n")
        add(
            "The features added beside the spans, each measured where it runs: SQL recording on the request "
            "thread (§1's in-process measure), the overview's rollup and the process identity in the writer "
            "(`benchmarks/writer.py` with each one off, interleaved with everything on, one process, medians "
            "over the rounds), pricing on the thread that ends an LLM call (`benchmarks/pricing.py`).\n"
        )
        add("| feature | where it runs | cost |\n| --- | --- | --- |")
        for feature, where, cost in rows:
            add(f"| {feature} | {where} | {cost} |")
        add("")

    memory = results.get("memory")
    if memory:
        add("## 6. Memory\n")
        web = memory.get("web", {})
        if web:
            requests = max(row["requests"] for row in web.values())
            add(
                f"A web process (in-process WSGI, `/ping`) over {requests:,} requests (a span each; the untraced "
                "baseline over fewer); agentops with its database up, with its writer pointed at a closed port on "
                "127.0.0.1 (*down*: connections are refused at once), and at a port that accepts and never answers "
                "(*hanging*: each connection waits for its 1 s timeout, so the writer stalls and its queue fills up "
                "to `QUEUE_SIZE`, 20,000 spans by default; spans past it are dropped and counted).\n"
            )
            add("| process | RSS after warm-up | RSS at the end | peak RSS | agentops counters |")
            add("| --- | ---: | ---: | ---: | --- |")
            for name, row in web.items():
                counters = ", ".join(f"{k}={v}" for k, v in sorted(row.get("counters", {}).items())) or "-"
                add(
                    f"| {name} | {row['rss_after_warmup_kib'] / 1024:.1f} MiB | {row['rss_kib'][-1] / 1024:.1f} MiB "
                    f"| {row['peak_kib'] / 1024:.1f} MiB | {counters} |"
                )
            add("")
        worker = memory.get("worker", {})
        if worker:
            tasks = next(iter(worker.values()))["tasks"]
            add(f"A prefork worker child (`-c 1`) over {tasks:,} no-op tasks:\n")
            add("| worker | peak RSS of the child | tasks/s |\n| --- | ---: | ---: |")
            for name, row in worker.items():
                add(f"| {name} | {row['peak_kib'] / 1024:.1f} MiB | {row['tasks_per_s']:.0f} |")
            add("")

    suite = results.get("user_suite")
    if suite is not None:
        add("## 7. A user's test suite\n")
        add(
            "The site of `tests/user_site` (`startproject`, a shop app, an eager Celery task, a dozen ordinary "
            "tests) runs its own suite with and without `agentops_django` in `INSTALLED_APPS`, in turn; a run is "
            "the whole process (start-up, test database, tests, teardown).\n"
        )
        if suite.get("missing"):
            add(suite["missing"] + ".\n")
        else:
            output = "\n".join(line for line in suite.get("output", "").splitlines() if not line.startswith("{"))
            add(f"`{suite.get('command')}` (exit code {suite.get('returncode')}, {suite.get('seconds')} s):\n")
            add("```\n" + output.strip() + "\n```\n")

    profiles = results.get("profiles")
    if profiles:
        add("## Profiles of the hot paths\n")
        add(
            "cProfile of the measured thread only (the writer's background thread is not in it); times are "
            "inflated by the profiler, compare them with each other.\n"
        )
        for name, text in profiles.items():
            add(f"**{name}**\n\n```\n{text}\n```\n")

    add("## How to run\n")
    add(
        "`python3 benchmarks/run.py` (quick mode) or `python3 benchmarks/run.py --full`; `--only inproc,server,...` "
        "runs some sections, `--deadline-minutes N` starts none after N minutes, `--report-only` rewrites this page "
        "from `benchmarks/results.json`. The suite sets up `.venv` and the benchmark-only packages itself. It uses "
        "PostgreSQL and Redis on 127.0.0.1 (database `agentops_bench`, Redis DB 11, queues of its own) and `wrk` "
        "(installed with apt-get when missing and run as root); a section whose server or tool is missing is skipped "
        "and listed below. Every process it starts is stopped at the end, on failure too.\n"
    )

    if results.get("skipped") or results.get("errors"):
        add("## Skipped and failed\n")
        for name, why in results.get("skipped", {}).items():
            add(f"- skipped {name}: {why}")
        for name, why in results.get("errors", {}).items():
            add(f"- **failed** {name}: {why}")
        add("")
    return "\n".join(out) + "\n"


def plot(results: dict[str, Any], path: Path) -> bool:
    """Draw the four panels; False if matplotlib is missing or there is nothing to draw."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    panels = [
        ("inproc", "µs added per request (in process)"),
        ("server", "requests/s vs untraced (gunicorn + wrk)"),
        ("celery", "tasks/s vs untraced (Celery)"),
        ("memory", "web process RSS (MiB) over the run"),
    ]
    if not any(results.get(key) for key, _ in panels):
        return False
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    for ax, (key, title) in zip(axes.flat, panels, strict=True):
        ax.set_title(title, fontsize=11)
        data = results.get(key)
        if not data:
            ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            continue
        if key == "memory":
            for name, row in data.get("web", {}).items():
                series = [v / 1024 for v in row["rss_kib"]]
                step = row["requests"] / max(len(series), 1)
                ax.plot([step * (i + 1) for i in range(len(series))], series, marker="o", label=name)
            ax.set_xlabel("requests")
            ax.legend(fontsize=8)
            continue
        groups: list[tuple[str, dict[str, float | None]]] = []
        if key == "celery":
            for pool, table in data.items():
                base = med(table["none"]["tasks_per_s"])
                groups.append((pool, {v: _ratio(med(table[v]["tasks_per_s"]), base) for v in TRACED}))
        else:
            for db, table in data.items():
                for view, row in table.items():
                    base = med(row["none"])
                    if key == "inproc":
                        values = {v: _minus(med(row[v]), base) for v in TRACED}
                    else:
                        values = {v: _ratio(med(row[v]), base) for v in TRACED}
                    groups.append((f"{db}\n{view}", values))
        width = 0.8 / len(TRACED)
        for i, variant in enumerate(TRACED):
            xs = [g + (i - 1) * width for g in range(len(groups))]
            ys = [values.get(variant) or 0 for _, values in groups]
            ax.bar(xs, ys, width, label=LABELS[variant], color=COLORS[variant])
        ax.set_xticks(range(len(groups)), [label for label, _ in groups], fontsize=8)
        if key != "inproc":
            ax.axhline(1.0, color="black", linewidth=0.8)
            ax.axhline(0.9 if key == "server" else 0.95, color="red", linewidth=0.8, linestyle="--", label="target")
        ax.legend(fontsize=8)
    mode = results["meta"]["mode"]
    fig.suptitle(f"agentops-django vs OpenTelemetry and Sentry ({mode} mode, {results['meta']['date']})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def _minus(value: float | None, base: float | None) -> float | None:
    return None if value is None or base is None else value - base


def _ratio(value: float | None, base: float | None) -> float | None:
    return None if value is None or not base else value / base
