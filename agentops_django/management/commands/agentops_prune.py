"""``manage.py agentops_prune``: delete old traces and their spans, in batches.

Without options it applies the retention settings, ``AGENTOPS["RETENTION_DAYS"]``
(default 14) and ``AGENTOPS["RETENTION_MAX_TRACES"]`` (default 100,000).
It also deletes the writer counters of processes silent for as many days,
and the overview's rollup older than ``AGENTOPS["ROLLUP_RETENTION_DAYS"]`` (default 90).
It works on the database of ``AGENTOPS["DATABASE_ALIAS"]``, router or not.
Safe to run while the writer is storing spans; see :mod:`agentops_django.prune`.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from agentops_django import prune


class Command(BaseCommand):
    help = (
        "Delete traces (and their spans) older than --days days and/or beyond the --keep newest. "
        "Defaults come from AGENTOPS['RETENTION_DAYS'] and AGENTOPS['RETENTION_MAX_TRACES']."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, help="Delete traces that started more than this many days ago.")
        parser.add_argument("--keep", type=int, help="Keep only this many newest traces.")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=prune.DEFAULT_BATCH_SIZE,
            help="Traces deleted per transaction (default %(default)s).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be deleted.")

    def handle(self, *args, days=None, keep=None, batch_size=prune.DEFAULT_BATCH_SIZE, dry_run=False, **options):
        if days is None and keep is None:
            days, keep = prune.retention_defaults()
        if days is None and keep is None:
            self.stdout.write("Nothing to do: no --days or --keep given and no retention configured.")
            return
        rules = []
        if days is not None:
            rules.append(f"older than {days} days")
        if keep is not None:
            rules.append(f"beyond the newest {keep}")
        verbosity = options.get("verbosity", 1)

        def progress(result: prune.PruneResult) -> None:
            if verbosity >= 2:
                self.stdout.write(f"  ... {result.traces} traces, {result.spans} spans deleted")

        stats_days = prune.writer_stats_days(days)
        try:
            result = prune.prune(
                days=days,
                keep=keep,
                batch_size=batch_size,
                dry_run=dry_run,
                progress=progress,
                stats_days=stats_days,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(f"{verb} {result.traces} traces and {result.spans} spans ({' or '.join(rules)}).")
        if result.rollup_rows:
            self.stdout.write(
                f"{verb} {result.rollup_rows} overview rollup rows older than {prune.rollup_retention_days()} days."
            )
        if result.writer_stats:
            self.stdout.write(
                f"{verb} the writer counters of {result.writer_stats} processes silent for more than {stats_days} days."
            )
