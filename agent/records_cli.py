"""``voiceagent records list`` and ``voiceagent records show CALL_ID [--json]``.

For staff and scripts on the server: it prints PHI, to the terminal of whoever may read the
records store; never to a log.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from agent.records import SqliteRecords


def run_records(args: argparse.Namespace) -> int:
    """Carry out a ``records`` subcommand."""
    path = Path(args.data_dir) / "records.sqlite3"
    if not path.exists():
        print(f"voiceagent: no records store at {path}", file=sys.stderr)
        return 1
    store = SqliteRecords(path)
    try:
        if args.records_command == "list":
            for record in store.list(args.limit):
                print(
                    f"{record.started_at:%Y-%m-%d %H:%M}  {record.call_id}  "
                    f"{record.status.value:<12} {record.phase_reached}"
                )
            return 0
        found = store.get(args.call_id)
        if found is None:
            print(f"voiceagent: no record for Call-ID {args.call_id}", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps(found.model_dump(mode="json"), indent=2))
        else:
            data = found.model_dump(mode="json", exclude={"transcript"})
            for section, value in data.items():
                print(f"{section}: {value}")
        return 0
    finally:
        store.close()
